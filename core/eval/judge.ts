// The judge: a small CNN classifier of a stage's images (MNIST digits, or the RGB stage's shapes),
// trained by this project's own core (stages/mnist-judge.ts), used to score generated images the way FID
// scores images with Inception:
//   confident share  the fraction of samples classified with probability > 0.9 (do they look like digits?)
//   class entropy    the entropy of the predicted-class histogram over log(classes) (1 = all equally often)
//   FID              the Fréchet distance between the judge's penultimate features of the samples and of
//                    the held-out real images (Heusel et al. 2017, with this judge instead of Inception);
//                    MNIST-FID on digits
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

/** The images a judge takes, [N, channels, size, size] in [0, 1], and how many classes it tells apart. */
export type JudgeShape = { channels: number; size: number; classes: number };
export const DIGITS: JudgeShape = { channels: 1, size: 28, classes: 10 };

export class ImageJudge extends Module {
  conv1: Conv2d;
  conv2: Conv2d;
  conv3: Conv2d;
  fc1: Linear;
  fc2: Linear;
  constructor(
    rng: Rng,
    readonly shape: JudgeShape = DIGITS,
  ) {
    super();
    const { channels, size, classes } = shape;
    if (size % 4 !== 0) throw new Error(`ImageJudge: image size ${size} is not a multiple of 4`);
    this.conv1 = new Conv2d(channels, 32, 3, rng, { padding: 1 }); // 28x28
    this.conv2 = new Conv2d(32, 32, 3, rng, { stride: 2, padding: 1 }); // -> 14x14
    this.conv3 = new Conv2d(32, 64, 3, rng, { stride: 2, padding: 1 }); // -> 7x7
    this.fc1 = new Linear(64 * (size / 4) ** 2, FEATURES, rng);
    this.fc2 = new Linear(FEATURES, classes, rng);
  }
  /** The penultimate features of images [N, channels, size, size] with values in [0, 1]. */
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
   * With the class each sample was asked to be (a class-conditional model): the share the judge
   * classifies as that class, over all samples and per asked class (null for a class never asked).
   */
  asked?: { accuracy: number; perClass: (number | null)[] };
};
export type FeatureStats = { mean: Float64Array; cov: Float64Array };

/** Logits and features of `count` images (in [0, 1], [count, C * H * W]) in batches, without a graph. */
export function judgeOutputs(judge: ImageJudge, images: Float32Array, count: number, batch = 250) {
  const { channels: c, size: s, classes } = judge.shape;
  const pixels = c * s * s;
  const logits = new Float32Array(count * classes);
  const features = new Float32Array(count * FEATURES);
  noGrad(() => {
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      const x = new Tensor(images.slice(start * pixels, (start + n) * pixels), [n, c, s, s]);
      const f = judge.features(x);
      features.set(f.data, start * FEATURES);
      logits.set(judge.fc2.forward(f).data, start * classes);
    }
  });
  return { logits, features };
}

export function featureStats(features: Float32Array, count: number): FeatureStats {
  return meanAndCovariance(features, count, FEATURES);
}

/**
 * Refuses what the judge cannot score honestly: anything but `count` images of the judge's shape with
 * values in [0, 1], naming the first bad value.
 */
export function checkImages(images: Float32Array, count: number, shape: JudgeShape = DIGITS): void {
  const { channels: c, size: s } = shape;
  const pixels = c * s * s;
  if (!(Number.isInteger(count) && count >= 1) || images.length !== count * pixels) {
    const what = c === 1 ? `${s}x${s}` : `${c}x${s}x${s}`;
    throw new Error(`judge: ${images.length} values are not ${count} images of ${what}`);
  }
  const bad = images.findIndex((v) => !(v >= 0 && v <= 1));
  if (bad >= 0) {
    const [image, at] = [Math.floor(bad / pixels), bad % pixels];
    // a grey image's values are its pixels; a colour image's are channel-major (CHW)
    const where = c === 1 ? `pixel ${at}` : `channel ${Math.floor(at / (s * s))}, pixel ${at % (s * s)}`;
    const what = c === 1 ? 'finite grey levels' : 'finite colour values';
    throw new Error(
      `judge: sample ${image} has ${images[bad]} at ${where}; samples must be ${what} in [0, 1]`,
    );
  }
}

/**
 * The three scores of `count` generated images against the statistics of real held-out digits, and,
 * given the digit each was `asked` to be, the share classified as that digit.
 */
export function judgeSamples(
  judge: ImageJudge,
  images: Float32Array,
  count: number,
  real: FeatureStats,
  asked?: ArrayLike<number>,
): JudgeScores {
  const k = judge.shape.classes;
  checkImages(images, count, judge.shape);
  if (
    asked &&
    (asked.length !== count || !Array.from(asked).every((y) => Number.isInteger(y) && y >= 0 && y < k))
  ) {
    throw new Error(`judge: the asked classes must be ${count} integers in 0..${k - 1}`);
  }
  const { logits, features } = judgeOutputs(judge, images, count);
  const classes = new Array<number>(k).fill(0);
  const [hits, tries] = [new Array<number>(k).fill(0), new Array<number>(k).fill(0)];
  let confident = 0;
  for (let i = 0; i < count; i++) {
    const row = logits.subarray(i * k, i * k + k);
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
    entropy: entropy / Math.log(k),
    fid,
    samples: count,
    classes,
  };
  if (!asked) return scores;
  const accuracy = hits.reduce((a, b) => a + b, 0) / count;
  return {
    ...scores,
    asked: { accuracy, perClass: hits.map((h, d) => (tries[d] > 0 ? h / tries[d] : null)) },
  };
}

/** A committed judge (e.g. stages/mnist/judge.safetensors), and the feature statistics of the held-out images. */
export function loadJudge(
  path: string,
  heldOut: { images: Float32Array; count: number },
  shape: JudgeShape = DIGITS,
) {
  const judge = new ImageJudge(new Rng(0), shape);
  loadModule(readSafetensors(path), judge, '', path);
  const real = featureStats(judgeOutputs(judge, heldOut.images, heldOut.count).features, heldOut.count);
  return { judge, real };
}
