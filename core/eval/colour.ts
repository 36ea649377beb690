// A colour score a person can read: summarise each image by its mean hue and mean saturation, bin those
// pairs into a hue x saturation histogram, and compare two sets by the total-variation distance between
// their histograms (0 = the same colour statistics, 1 = no colour in common). It sees only colour, not
// shape: a model can score well here and still draw the wrong shapes, and the reverse. It compares
// distributions, not images: when hues are uniform over a set (as in the shapes data), a change that maps
// that distribution onto itself, such as swapping the red and blue channels, goes unseen.

/** HSV of an RGB colour in [0, 1]; h in [0, 1) (0 red, 1/3 green, 2/3 blue), h = 0 for greys. */
export function rgbToHsv(r: number, g: number, b: number): [number, number, number] {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  return [hue(r, g, b, max, max - min), max > 0 ? (max - min) / max : 0, max];
}

/** RGB in [0, 1] of an HSV colour; h wraps (any real number), s and v in [0, 1]. */
export function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const f = (n: number): number => {
    const k = (n + 6 * (h - Math.floor(h))) % 6;
    return v - v * s * Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

/** The hue in [0, 1) given the channel maximum and the chroma max - min (0 when there is none). */
function hue(r: number, g: number, b: number, max: number, chroma: number): number {
  if (chroma <= 0) return 0;
  let h: number;
  if (max === r) h = (g - b) / chroma;
  else if (max === g) h = 2 + (b - r) / chroma;
  else h = 4 + (r - g) / chroma;
  h /= 6;
  return h < 0 ? h + 1 : h >= 1 ? h - 1 : h;
}

function checkImages(images: Float32Array, count: number, size: number, what: string): void {
  if (!Number.isInteger(count) || count < 0 || !Number.isInteger(size) || size <= 0)
    throw new Error(`${what}: count (${count}) and size (${size}) must be a whole count and a positive size`);
  const expected = count * 3 * size * size;
  if (images.length !== expected)
    throw new Error(
      `${what}: images has ${images.length} values, but count*3*size*size = ${count}*3*${size}*${size} = ${expected}`,
    );
}

/**
 * Each image's mean hue and mean saturation: hue as the saturation-weighted circular mean of pixel hues
 * (grey pixels have no hue, so they get no weight; an all-grey image gets hue 0), in [0, 1); saturation
 * the plain mean HSV saturation. images: [count, 3, H, W] planar in [0, 1].
 */
export function meanHueSaturation(
  images: Float32Array,
  count: number,
  size: number,
): { hue: Float64Array; saturation: Float64Array } {
  checkImages(images, count, size, 'meanHueSaturation');
  const plane = size * size;
  const hues = new Float64Array(count);
  const saturation = new Float64Array(count);
  for (let n = 0; n < count; n++) {
    const base = n * 3 * plane;
    let cos = 0;
    let sin = 0;
    let satSum = 0;
    for (let p = 0; p < plane; p++) {
      const r = images[base + p];
      const g = images[base + plane + p];
      const b = images[base + 2 * plane + p];
      const max = Math.max(r, g, b);
      const chroma = max - Math.min(r, g, b);
      const s = max > 0 ? chroma / max : 0;
      const angle = 2 * Math.PI * hue(r, g, b, max, chroma);
      cos += s * Math.cos(angle);
      sin += s * Math.sin(angle);
      satSum += s;
    }
    const h = cos === 0 && sin === 0 ? 0 : Math.atan2(sin, cos) / (2 * Math.PI);
    hues[n] = h < 0 ? (h + 1) % 1 : h;
    saturation[n] = satSum / plane;
  }
  return { hue: hues, saturation };
}

/** A normalised 2-D histogram (hueBins x satBins, default 12 x 4, row-major by hue) of those pairs. */
export function hueSaturationHistogram(
  images: Float32Array,
  count: number,
  size: number,
  bins: { hue: number; saturation: number } = { hue: 12, saturation: 4 },
): Float64Array {
  if (!(
    Number.isInteger(bins.hue) &&
    bins.hue > 0 &&
    Number.isInteger(bins.saturation) &&
    bins.saturation > 0
  ))
    throw new Error(`hueSaturationHistogram: bins must be positive integers, got ${JSON.stringify(bins)}`);
  const { hue: hues, saturation } = meanHueSaturation(images, count, size);
  const histogram = new Float64Array(bins.hue * bins.saturation);
  for (let n = 0; n < count; n++) {
    const h = Math.floor(hues[n] * bins.hue) % bins.hue; // hue wraps: 1.0 is red again
    const s = Math.min(bins.saturation - 1, Math.max(0, Math.floor(saturation[n] * bins.saturation)));
    histogram[h * bins.saturation + s] += 1 / count;
  }
  return histogram;
}

/** Total-variation distance between two normalised histograms: half the L1 difference, in [0, 1]. */
export function histogramDistance(p: Float64Array, q: Float64Array): number {
  if (p.length !== q.length)
    throw new Error(`histogramDistance: histograms have different lengths (${p.length} vs ${q.length})`);
  let l1 = 0;
  for (let i = 0; i < p.length; i++) l1 += Math.abs(p[i] - q[i]);
  return l1 / 2;
}

/** The distance between the hue/saturation histograms of two image sets of the same size. */
export function colourDistance(
  a: Float32Array,
  countA: number,
  b: Float32Array,
  countB: number,
  size: number,
): number {
  return histogramDistance(hueSaturationHistogram(a, countA, size), hueSaturationHistogram(b, countB, size));
}
