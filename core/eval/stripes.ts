// A check a person can read for the shapes set's hardest class: do an image's saturated pixels form
// parallel bars? The judge cannot say: it calls any striped texture "stripes", even uniform noise.
//
// Parallel bars of period p put the energy of the shape's mask into two opposite points of its
// 2-D spectrum, at frequency 1/p along the bars' normal (and their harmonics on the same line). A tangle
// of worm-like strokes of the same width spreads that energy over a ring of every direction; a disc,
// square or cross has little energy at the bars' frequencies. So the score of one image is the share of
// its mask's spectral energy, in the bars' band of frequencies, that lies within a narrow wedge of one
// direction (the best one): near 1 for bars, near the wedge's share of the half-plane for no direction.
import { rgbToHsv } from './colour.ts';

/** The bars' periods in the shapes set span 3 to 7.3 pixels at 28x28; the band leaves a margin. */
const PERIOD_MIN = 2.5;
const PERIOD_MAX = 8;
/** Half-width of the direction wedge, and the step of the directions tried. */
const WEDGE_HALF = Math.PI / 12;
const DIRECTION_STEP = Math.PI / 60;
/**
 * The mask: shapes are drawn at saturation 0.6 to 1 on backgrounds of 0.05 to 0.35, so a pixel's
 * saturation, ramped from 0.4 to 0.55, says how much of it belongs to the shape.
 */
const SAT_LO = 0.4;
const SAT_HI = 0.55;

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** The soft shape mask [size * size] of the image at `offset` in planar RGB images, values in [0, 1]. */
export function saturationMask(images: Float32Array, offset: number, size: number): Float32Array {
  const plane = size * size;
  const mask = new Float32Array(plane);
  for (let p = 0; p < plane; p++) {
    const [, s] = rgbToHsv(
      clamp01(images[offset + p]),
      clamp01(images[offset + plane + p]),
      clamp01(images[offset + 2 * plane + p]),
    );
    mask[p] = clamp01((s - SAT_LO) / (SAT_HI - SAT_LO));
  }
  return mask;
}

/**
 * The power |F(kx, ky)|^2 of the 2-D DFT of a size x size mask (mean removed), [size * size] with
 * frequency index (ky, kx) at ky * size + kx, each in 0..size-1 (size - k is frequency -k).
 * Separable: a DFT of every row, then of every column; size^3 work, a few thousand operations at 28.
 */
export function powerSpectrum(mask: Float32Array, size: number): Float64Array {
  const n = size * size;
  let mean = 0;
  for (let p = 0; p < n; p++) mean += mask[p];
  mean /= n;
  const re = Float64Array.from(mask, (v) => v - mean);
  const im = new Float64Array(n);
  const turns = { cos: new Float64Array(size), sin: new Float64Array(size) };
  for (let k = 0; k < size; k++) {
    turns.cos[k] = Math.cos((2 * Math.PI * k) / size);
    turns.sin[k] = Math.sin((2 * Math.PI * k) / size);
  }
  const [rowRe, rowIm] = [new Float64Array(n), new Float64Array(n)];
  for (let y = 0; y < size; y++) dftLine(re, im, y * size, 1, size, turns, rowRe, rowIm);
  const [outRe, outIm] = [new Float64Array(n), new Float64Array(n)];
  for (let x = 0; x < size; x++) dftLine(rowRe, rowIm, x, size, size, turns, outRe, outIm);
  return outRe.map((r, k) => r * r + outIm[k] * outIm[k]);
}

/**
 * One line of a 2-D array, its `size` values at `start`, `start + step`, ...: out[k] = sum_j v[j]
 * e^{-2 pi i k j / size}, written back along the same line. `turns` holds cos and sin of 2 pi m / size.
 */
function dftLine(
  re: Float64Array,
  im: Float64Array,
  start: number,
  step: number,
  size: number,
  turns: { cos: Float64Array; sin: Float64Array },
  outRe: Float64Array,
  outIm: Float64Array,
): void {
  for (let k = 0; k < size; k++) {
    let sumRe = 0;
    let sumIm = 0;
    for (let j = 0; j < size; j++) {
      const m = (k * j) % size;
      const [a, b] = [re[start + j * step], im[start + j * step]];
      sumRe += a * turns.cos[m] + b * turns.sin[m];
      sumIm += b * turns.cos[m] - a * turns.sin[m];
    }
    outRe[start + k * step] = sumRe;
    outIm[start + k * step] = sumIm;
  }
}

/**
 * The bars score of one mask: of its spectral energy at periods PERIOD_MIN..PERIOD_MAX pixels (scaled
 * with the image: the set's lengths are given at 28x28), the largest share within ±WEDGE_HALF of one
 * direction. 0 when the band holds no energy (a blank or flat image).
 */
export function barsScore(mask: Float32Array, size: number): number {
  const power = powerSpectrum(mask, size);
  const scale = size / 28;
  const [kLo, kHi] = [size / (PERIOD_MAX * scale), size / (PERIOD_MIN * scale)];
  const angles: number[] = [];
  const energies: number[] = [];
  let total = 0;
  for (let ky = 0; ky < size; ky++) {
    for (let kx = 0; kx < size; kx++) {
      const fx = kx <= size / 2 ? kx : kx - size;
      const fy = ky <= size / 2 ? ky : ky - size;
      const k = Math.hypot(fx, fy);
      if (k < kLo || k > kHi) continue;
      // a real mask's spectrum is symmetric, so a direction and its opposite are one: fold to [0, pi)
      let a = Math.atan2(fy, fx);
      if (a < 0) a += Math.PI;
      if (a >= Math.PI) a -= Math.PI;
      angles.push(a);
      energies.push(power[ky * size + kx]);
      total += power[ky * size + kx];
    }
  }
  if (!(total > 0)) return 0;
  let best = 0;
  for (let theta = 0; theta < Math.PI; theta += DIRECTION_STEP) {
    let e = 0;
    for (let i = 0; i < angles.length; i++) {
      let d = Math.abs(angles[i] - theta);
      if (d > Math.PI / 2) d = Math.PI - d;
      if (d <= WEDGE_HALF) e += energies[i];
    }
    best = Math.max(best, e);
  }
  return best / total;
}

/** The bars score of each of `count` planar RGB images [count, 3, size, size] in [0, 1]. */
export function barsScores(images: Float32Array, count: number, size: number): Float64Array {
  const stride = 3 * size * size;
  if (images.length !== count * stride)
    throw new Error(`barsScores: expected ${count} images of 3x${size}x${size}, got ${images.length} values`);
  const scores = new Float64Array(count);
  for (let i = 0; i < count; i++) scores[i] = barsScore(saturationMask(images, i * stride, size), size);
  return scores;
}

/**
 * The score at or above which an image's bars count as parallel: between what real stripes score and
 * what every other real class scores (docs/rgb.md has the measured distributions).
 */
export const BARS_THRESHOLD = 0.6;

/** The share of `count` planar RGB images [count, 3, size, size] whose bars score reaches BARS_THRESHOLD. */
export function parallelBarsShare(images: Float32Array, count: number, size: number): number {
  if (count === 0) return 0;
  return barsScores(images, count, size).filter((s) => s >= BARS_THRESHOLD).length / count;
}
