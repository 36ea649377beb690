// The shapes data set (core/data/shapes.ts) and the hue/saturation colour score (core/eval/colour.ts):
// determinism, balance, range, colour, that the six classes are told apart by a simple shape test, and
// that the colour score separates real images from noise, greys and wrong hues.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { drawShapes, SHAPE_CLASSES, type ImageSet } from '../../core/data/shapes.ts';
import {
  colourDistance,
  histogramDistance,
  hsvToRgb,
  hueSaturationHistogram,
  meanHueSaturation,
  rgbToHsv,
} from '../../core/eval/colour.ts';
import { barsScores, parallelBarsShare, powerSpectrum } from '../../core/eval/stripes.ts';
import { Rng } from '../../core/index.ts';
import { pickImages } from '../../stages/mnist/data.ts';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  const [x, y] = [a, b].map((f) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  return x.length === y.length && x.every((byte, i) => byte === y[i]);
}

/** The pixels of image n as [r, g, b] triples (the data are planar, one channel plane after another). */
function pixel(set: ImageSet, n: number, p: number): [number, number, number] {
  const plane = set.size * set.size;
  const o = n * 3 * plane + p;
  return [set.images[o], set.images[o + plane], set.images[o + 2 * plane]];
}

/** An image set transformed pixel by pixel. */
function mapPixels(
  set: ImageSet,
  f: (rgb: [number, number, number]) => [number, number, number],
): Float32Array {
  const plane = set.size * set.size;
  const out = new Float32Array(set.images.length);
  for (let n = 0; n < set.count; n++) {
    for (let p = 0; p < plane; p++) {
      const [r, g, b] = f(pixel(set, n, p));
      const o = n * 3 * plane + p;
      out[o] = r;
      out[o + plane] = g;
      out[o + 2 * plane] = b;
    }
  }
  return out;
}

test('the same seed gives identical bytes, a different seed different images', () => {
  const a = drawShapes(24, 7);
  assert.ok(sameBytes(a.images, drawShapes(24, 7).images), 'numeric seed not reproducible');
  assert.ok(
    sameBytes(drawShapes(12, 'x').images, drawShapes(12, 'x').images),
    'string seed not reproducible',
  );
  const b = drawShapes(24, 8);
  const differing = a.images.filter((x, i) => Math.abs(x - b.images[i]) > 1e-3).length;
  assert.ok(differing > 0.5 * a.images.length, `only ${differing} of ${a.images.length} values differ`);
});

test('labels are i % 6 and balanced; shapes and metadata are as documented', () => {
  const set = drawShapes(60, 'balance');
  assert.is(set.count, 60);
  assert.is(set.channels, 3);
  assert.is(set.size, 28);
  assert.is(set.images.length, 60 * 3 * 28 * 28);
  assert.is(set.labels.length, 60);
  set.labels.forEach((label, i) => assert.is(label, i % 6, `label of image ${i}`));
  const perClass = SHAPE_CLASSES.map((_, k) => set.labels.filter((l) => l === k).length);
  assert.equal(perClass, [10, 10, 10, 10, 10, 10]);
});

test('values are finite, within [0, 1], and use the range', () => {
  const set = drawShapes(120, 'range');
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of set.images) {
    assert.ok(Number.isFinite(x) && x >= 0 && x <= 1, `value ${x} out of [0, 1]`);
    lo = Math.min(lo, x);
    hi = Math.max(hi, x);
  }
  assert.ok(lo < 0.1 && hi > 0.9, `values only span [${lo}, ${hi}]`);
});

test('the images are in colour: channels differ, and every image has a strongly coloured shape', () => {
  const set = drawShapes(120, 'colour');
  const plane = 28 * 28;
  let chromaSum = 0;
  for (let n = 0; n < set.count; n++) {
    let strongest = 0;
    for (let p = 0; p < plane; p++) {
      const [r, g, b] = pixel(set, n, p);
      const chroma = Math.max(r, g, b) - Math.min(r, g, b);
      chromaSum += chroma;
      strongest = Math.max(strongest, chroma);
    }
    // the shape's chroma is value * saturation >= 0.7 * 0.6
    assert.ok(strongest >= 0.4, `image ${n}: strongest chroma ${strongest}`);
  }
  const meanChroma = chromaSum / (set.count * plane);
  assert.ok(meanChroma > 0.1, `mean chroma ${meanChroma}: the channels hardly differ`);
});

test('size 32 draws the same scenes, scaled; other sizes and bad counts throw', () => {
  const small = drawShapes(12, 'sizes', 28);
  const large = drawShapes(12, 'sizes', 32);
  assert.is(large.size, 32);
  assert.is(large.images.length, 12 * 3 * 32 * 32);
  assert.ok(large.images.every((x) => x >= 0 && x <= 1));
  const meanChannel = (set: ImageSet, n: number, c: number): number => {
    const plane = set.size * set.size;
    const start = (n * 3 + c) * plane;
    return set.images.subarray(start, start + plane).reduce((s, x) => s + x, 0) / plane;
  };
  for (let n = 0; n < 12; n++)
    for (let c = 0; c < 3; c++)
      close(meanChannel(large, n, c), meanChannel(small, n, c), 0.03, `image ${n} channel ${c} mean`);
  for (const size of [27, 64, 0, NaN]) assert.throws(() => drawShapes(6, 1, size), /28 or 32/);
  assert.throws(() => drawShapes(-1, 1), /count/);
  assert.throws(() => drawShapes(2.5, 1), /count/);
});

/**
 * A rotation-, position- and scale-invariant shape signature: with the shape's mask taken as its
 * saturated pixels (the shape has saturation >= 0.6, the background <= 0.35), the fraction of pixels
 * that are shape in rings around the mask's centroid, at radii in units of the mask's RMS radius.
 */
function radialProfile(set: ImageSet, n: number): number[] {
  const { size } = set;
  const mask: boolean[] = [];
  let area = 0;
  let cx = 0;
  let cy = 0;
  for (let p = 0; p < size * size; p++) {
    const [, s] = rgbToHsv(...pixel(set, n, p));
    mask.push(s > 0.5);
    if (s > 0.5) [area, cx, cy] = [area + 1, cx + (p % size), cy + Math.floor(p / size)];
  }
  [cx, cy] = [cx / area, cy / area];
  const radius = (p: number) => Math.hypot((p % size) - cx, Math.floor(p / size) - cy);
  const rms = Math.sqrt(mask.reduce((s, m, p) => s + (m ? radius(p) ** 2 : 0), 0) / area);
  const bins = 8;
  const shape = new Array<number>(bins).fill(0);
  const all = new Array<number>(bins).fill(0);
  mask.forEach((m, p) => {
    const k = Math.floor(radius(p) / rms / 0.25);
    if (k < bins) [all[k], shape[k]] = [all[k] + 1, shape[k] + (m ? 1 : 0)];
  });
  return shape.map((x, k) => (all[k] > 0 ? x / all[k] : 0));
}

test('the six classes are told apart by a simple shape test (nearest mean radial profile)', () => {
  // Class means from one seed classify another seed's images: a class drawn like another would be
  // confused with it about half the time.
  const fit = drawShapes(300, 'classes-fit');
  const check = drawShapes(300, 'classes-check');
  const centroids = SHAPE_CLASSES.map((_, k) => {
    const profiles = Array.from({ length: fit.count }, (_, n) => n).filter((n) => fit.labels[n] === k);
    const sum = new Array<number>(8).fill(0);
    for (const n of profiles) radialProfile(fit, n).forEach((x, j) => (sum[j] += x / profiles.length));
    return sum;
  });
  const correct = SHAPE_CLASSES.map(() => 0);
  for (let n = 0; n < check.count; n++) {
    const profile = radialProfile(check, n);
    const distances = centroids.map((c) => c.reduce((s, x, j) => s + (x - profile[j]) ** 2, 0));
    if (distances.indexOf(Math.min(...distances)) === check.labels[n]) correct[check.labels[n]]++;
  }
  correct.forEach((right, k) =>
    assert.ok(right >= 45, `${SHAPE_CLASSES[k]}: only ${right} of 50 classified correctly`),
  );
});

test('rgbToHsv and hsvToRgb are inverse, with red at hue 0, green 1/3, blue 2/3', () => {
  assert.equal(rgbToHsv(1, 0, 0), [0, 1, 1]);
  close(rgbToHsv(0, 1, 0)[0], 1 / 3, 1e-12, 'green hue');
  close(rgbToHsv(0, 0, 0.5)[0], 2 / 3, 1e-12, 'blue hue');
  assert.equal(rgbToHsv(0.4, 0.4, 0.4), [0, 0, 0.4]);
  const rng = new Rng('hsv');
  for (let i = 0; i < 200; i++) {
    const rgb = [rng.uniform(), rng.uniform(), rng.uniform()] as const;
    hsvToRgb(...rgbToHsv(...rgb)).forEach((x, c) => close(x, rgb[c], 1e-12, `round trip ${rgb}`));
  }
});

test('meanHueSaturation: solid red is hue 0 saturation 1, grey has saturation 0; wrong lengths throw', () => {
  const size = 4;
  const plane = size * size;
  const images = new Float32Array(3 * 3 * plane);
  images.fill(1, 0, plane); // image 0: pure red
  images.fill(0.5, 3 * plane, 6 * plane); // image 1: grey
  images.fill(1, 6 * plane + 2 * plane, 9 * plane); // image 2: pure blue
  const { hue, saturation } = meanHueSaturation(images, 3, size);
  close(Math.min(hue[0], 1 - hue[0]), 0, 1e-9, 'red hue');
  close(saturation[0], 1, 1e-9, 'red saturation');
  close(saturation[1], 0, 1e-9, 'grey saturation');
  close(hue[2], 2 / 3, 1e-9, 'blue hue');
  assert.throws(() => meanHueSaturation(images, 4, size), /144 values.*192/);
  assert.throws(() => colourDistance(images, 3, images, 3, 5), /meanHueSaturation/);
});

test('histogramDistance: 0 for identical, 1 for disjoint; histograms are normalised', () => {
  const p = new Float64Array([0.5, 0.5, 0, 0]);
  assert.is(histogramDistance(p, p), 0);
  assert.is(histogramDistance(p, new Float64Array([0, 0, 0.25, 0.75])), 1);
  close(histogramDistance(p, new Float64Array([0.5, 0, 0.5, 0])), 0.5, 1e-12, 'half overlap');
  assert.throws(() => histogramDistance(p, new Float64Array(3)), /lengths/);
  const set = drawShapes(60, 'histogram');
  const h = hueSaturationHistogram(set.images, set.count, 28);
  assert.is(h.length, 12 * 4);
  close(
    h.reduce((s, x) => s + x, 0),
    1,
    1e-9,
    'histogram total',
  );
  assert.is(hueSaturationHistogram(set.images, set.count, 28, { hue: 6, saturation: 2 }).length, 12);
});

test('colourDistance: two real sets are close; noise, greys and squeezed hues are far', () => {
  // (Swapping red and blue would not do as a "wrong colours" set: the shapes' hues are uniform, and the
  // swap maps a uniform hue distribution onto itself, so the histograms stay alike.)
  const a = drawShapes(600, 'colour-a');
  const b = drawShapes(600, 'colour-b');
  const real = colourDistance(a.images, a.count, b.images, b.count, 28);
  const rng = new Rng('colour-noise');
  const noise = mapPixels(a, () => [rng.uniform(), rng.uniform(), rng.uniform()]);
  const grey = mapPixels(a, ([r, g, bl]) => {
    const l = 0.299 * r + 0.587 * g + 0.114 * bl;
    return [l, l, l];
  });
  const squeezed = mapPixels(a, (rgb) => {
    const [h, s, v] = rgbToHsv(...rgb);
    return hsvToRgb(h / 4, s, v); // every hue into red..yellow
  });
  assert.ok(real < 0.2, `real vs real ${real}`);
  for (const [name, images] of [
    ['uniform noise', noise],
    ['greys', grey],
    ['squeezed hues', squeezed],
  ] as const) {
    const d = colourDistance(a.images, a.count, images, a.count, 28);
    assert.ok(d > 0.5 && d > 3 * real, `real vs ${name}: ${d}, real vs real: ${real}`);
  }
});

test('powerSpectrum: a cosine of 4 cycles across a row puts its energy at frequencies +-4 alone', () => {
  const size = 28;
  const mask = new Float32Array(size * size);
  for (let p = 0; p < mask.length; p++) mask[p] = 0.5 + 0.5 * Math.cos((2 * Math.PI * 4 * (p % size)) / size);
  const power = powerSpectrum(mask, size);
  const total = power.reduce((a, b) => a + b, 0);
  const at = power[4] + power[size - 4]; // (ky 0, kx 4) and (ky 0, kx -4)
  close(at / total, 1, 1e-9, 'share at kx = +-4');
  close(power[4], power[size - 4], 1e-9 * total, 'a real mask has a symmetric spectrum');
});

test('parallel bars: real stripes have them, no other real class does, nor noise, nor bars in two directions', () => {
  const set = drawShapes(600, 'bars');
  const plane = 3 * 28 * 28;
  const ofClass = (k: number, images = set.images) => {
    const which = [...set.labels.keys()].filter((i) => set.labels[i] === k);
    return { images: pickImages(images, which, plane), count: which.length };
  };
  const share = ({ images, count }: { images: Float32Array; count: number }) =>
    parallelBarsShare(images, count, 28);
  const stripes = SHAPE_CLASSES.indexOf('stripes');
  assert.ok(share(ofClass(stripes)) >= 0.95, `real stripes: ${share(ofClass(stripes))}`);
  for (let k = 0; k < SHAPE_CLASSES.length; k++) {
    if (k !== stripes) assert.ok(share(ofClass(k)) <= 0.02, `real ${SHAPE_CLASSES[k]}: ${share(ofClass(k))}`);
  }
  const rng = new Rng('bars-noise');
  assert.ok(share(ofClass(stripes, mapPixels(set, () => [rng.uniform(), rng.uniform(), rng.uniform()]))) <= 0.02); // prettier-ignore
  // Each stripes image laid over itself turned by 90 degrees (at each pixel the more saturated of the
  // two): as many bars, in two directions at right angles.
  const crossed = ofClass(stripes);
  for (let n = 0; n < crossed.count; n++) {
    const copy = crossed.images.slice(n * plane, (n + 1) * plane);
    const rgb = (p: number) => [copy[p], copy[p + 784], copy[p + 1568]] as const;
    for (let p = 0; p < 784; p++) {
      const turned = (p % 28) * 28 + (27 - Math.floor(p / 28)); // the pixel that lands on p
      if (rgbToHsv(...rgb(turned))[1] > rgbToHsv(...rgb(p))[1]) {
        for (let c = 0; c < 3; c++) crossed.images[n * plane + c * 784 + p] = copy[c * 784 + turned];
      }
    }
  }
  const scores = barsScores(crossed.images, crossed.count, 28);
  const median = [...scores].sort((a, b) => a - b)[scores.length >> 1];
  assert.ok(share(crossed) <= 0.05, `bars in two directions: ${share(crossed)} (median score ${median})`);
});

test.run();
