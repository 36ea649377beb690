// The judge: a small CNN classifier of MNIST digits, trained by this project's own core
// (stages/mnist-judge.ts), used to score generated digits the way FID scores images with Inception:
//   confident share  the fraction of samples classified with probability > 0.9 (do they look like digits?)
//   class entropy    the entropy of the predicted-class histogram over log(10) (1 = all ten equally often)
//   MNIST-FID        the Fréchet distance between the judge's penultimate features of the samples and of
//                    the held-out real digits (Heusel et al. 2017, with this judge instead of Inception)
import { Conv2d } from '../nn/conv.ts';
import { Linear } from '../nn/layers.ts';
import { Module } from '../nn/module.ts';
import { relu } from '../ops/elementwise.ts';
import { reshape } from '../ops/shape.ts';
import { noGrad, Tensor } from '../tensor.ts';
import { Rng } from '../random.ts';
import { loadModule, readSafetensors } from '../io/safetensors.ts';
import { frechetDistance, meanAndCovariance } from './linalg.ts';

export const FEATURES = 64;
const PIXELS_PER_IMAGE = 28 * 28;

export class DigitJudge extends Module {
  conv1: Conv2d;
  conv2: Conv2d;
  conv3: Conv2d;
  fc1: Linear;
  fc2: Linear;
  constructor(rng: Rng) {
    super();
    this.conv1 = new Conv2d(1, 32, 3, rng, { padding: 1 }); // 28x28
    this.conv2 = new Conv2d(32, 32, 3, rng, { stride: 2, padding: 1 }); // -> 14x14
    this.conv3 = new Conv2d(32, 64, 3, rng, { stride: 2, padding: 1 }); // -> 7x7
    this.fc1 = new Linear(64 * 7 * 7, FEATURES, rng);
    this.fc2 = new Linear(FEATURES, 10, rng);
  }
  /** The penultimate features of images [N, 1, 28, 28] with grey levels in [0, 1]. */
  features(x: Tensor): Tensor {
    const h = relu(this.conv3.forward(relu(this.conv2.forward(relu(this.conv1.forward(x))))));
    return relu(this.fc1.forward(reshape(h, [x.shape[0], -1])));
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.features(x));
  }
}

export type JudgeScores = {
  confident: number;
  entropy: number;
  fid: number;
  samples: number;
  classes: number[];
  /**
   * With the digit each sample was asked to be (a class-conditional model): the share the judge
   * classifies as that digit, over all samples and per asked digit (null for a digit never asked).
   */
  asked?: { accuracy: number; perDigit: (number | null)[] };
};
export type FeatureStats = { mean: Float64Array; cov: Float64Array };

/** Logits and features of `count` images (in [0, 1], [count, 784]) in batches, without a graph. */
export function judgeOutputs(judge: DigitJudge, images: Float32Array, count: number, batch = 250) {
  const logits = new Float32Array(count * 10);
  const features = new Float32Array(count * FEATURES);
  noGrad(() => {
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      const x = new Tensor(images.slice(start * 784, (start + n) * 784), [n, 1, 28, 28]);
      const f = judge.features(x);
      features.set(f.data, start * FEATURES);
      logits.set(judge.fc2.forward(f).data, start * 10);
    }
  });
  return { logits, features };
}

export function featureStats(features: Float32Array, count: number): FeatureStats {
  return meanAndCovariance(features, count, FEATURES);
}

/**
 * Refuses what the judge cannot score honestly: anything but `count` images of 28x28 grey levels in
 * [0, 1], naming the first bad value.
 */
export function checkImages(images: Float32Array, count: number): void {
  if (!(Number.isInteger(count) && count >= 1) || images.length !== count * PIXELS_PER_IMAGE) {
    throw new Error(`judge: ${images.length} values are not ${count} images of 28x28`);
  }
  const bad = images.findIndex((v) => !(v >= 0 && v <= 1));
  if (bad >= 0) {
    const [image, pixel] = [Math.floor(bad / PIXELS_PER_IMAGE), bad % PIXELS_PER_IMAGE];
    throw new Error(
      `judge: sample ${image} has ${images[bad]} at pixel ${pixel}; samples must be finite grey levels in [0, 1]`,
    );
  }
}

/**
 * The three scores of `count` generated images against the statistics of real held-out digits, and,
 * given the digit each was `asked` to be, the share classified as that digit.
 */
export function judgeSamples(
  judge: DigitJudge,
  images: Float32Array,
  count: number,
  real: FeatureStats,
  asked?: ArrayLike<number>,
): JudgeScores {
  checkImages(images, count);
  if (
    asked &&
    (asked.length !== count || !Array.from(asked).every((y) => Number.isInteger(y) && y >= 0 && y < 10))
  ) {
    throw new Error(`judge: the asked digits must be ${count} integers in 0..9`);
  }
  const { logits, features } = judgeOutputs(judge, images, count);
  const classes = new Array<number>(10).fill(0);
  const [hits, tries] = [new Array<number>(10).fill(0), new Array<number>(10).fill(0)];
  let confident = 0;
  for (let i = 0; i < count; i++) {
    const row = logits.subarray(i * 10, i * 10 + 10);
    const max = Math.max(...row);
    let s = 0;
    for (const z of row) s += Math.exp(z - max);
    const best = row.indexOf(max);
    classes[best]++;
    if (1 / s > 0.9) confident++; // probability of the top class = exp(0) / sum
    if (asked) {
      tries[asked[i]]++;
      if (best === asked[i]) hits[asked[i]]++;
    }
  }
  let entropy = 0;
  for (const c of classes) if (c > 0) entropy -= (c / count) * Math.log(c / count);
  const fid = frechetDistance(featureStats(features, count), real);
  const scores = {
    confident: confident / count,
    entropy: entropy / Math.log(10),
    fid,
    samples: count,
    classes,
  };
  if (!asked) return scores;
  const accuracy = hits.reduce((a, b) => a + b, 0) / count;
  return {
    ...scores,
    asked: { accuracy, perDigit: hits.map((h, d) => (tries[d] > 0 ? h / tries[d] : null)) },
  };
}

/** The committed judge (stages/mnist/judge.safetensors), and the feature statistics of the held-out digits. */
export function loadJudge(path: string, heldOut: { images: Float32Array; count: number }) {
  const judge = new DigitJudge(new Rng(0));
  loadModule(readSafetensors(path), judge, '', path);
  const real = featureStats(judgeOutputs(judge, heldOut.images, heldOut.count).features, heldOut.count);
  return { judge, real };
}
