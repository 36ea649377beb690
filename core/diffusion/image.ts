// Drawing images from a trained UNet: the objective says how the net becomes a denoiser and which levels
// each sampler walks; a scheduler (core/diffusion/schedulers.ts) does the stepping, in batches.
import type { Rng } from '../random.ts';
import { noGrad, type Tensor } from '../tensor.ts';
import { concat, slice } from '../ops/shape.ts';
import { combine } from './targets.ts';
import type { UNet } from '../nn/unet.ts';
import type { ImageNet, ImageObjective } from './objectives.ts';
import {
  AncestralScheduler,
  DdimScheduler,
  HeunScheduler,
  sampleLoop,
  type Denoiser,
  type Scheduler,
} from './schedulers.ts';

export const IMAGE_SAMPLERS = ['ddim', 'ddpm', 'heun'] as const;
export type ImageSampler = (typeof IMAGE_SAMPLERS)[number];

/** What runs a UNet's forward pass: the UNet itself, or core/parallel's ParallelForward of it. */
export type UNetForward = Pick<UNet, 'forward'>;

/** The UNet as its objective trains and samples it: EDM tells it a fractional time (c_noise), DDPM integer t. */
export function imageNet(unet: UNetForward, objective: ImageObjective): ImageNet {
  const fractionalTime = objective.fractionalTime;
  return (x, t, labels) => unet.forward(x, t, { fractionalTime, labels });
}

/**
 * Classifier-free guidance (Ho & Salimans 2022), in the denoiser's output space:
 * D = D_uncond + W (D_cond - D_uncond), the two halves from one batched forward pass of [x; x] told
 * [labels; no class]. W = 1 is the conditional denoiser alone (and costs one pass), W = 0 the
 * unconditional one; W > 1 pushes each sample towards what makes it its class. Given `interval`
 * [sigmaLo, sigmaHi], guidance applies only at noise levels sigma = s / a inside it and the conditional
 * denoiser alone serves elsewhere (Kynkäänniemi et al. 2024: guidance at high noise mostly costs
 * diversity, at low noise it does little).
 */
export function guidedDenoiser(
  denoiserFor: (labels: number[]) => Denoiser,
  labels: number[],
  guidance: number,
  nullLabel: number,
  interval: readonly [number, number] = [0, Infinity],
): Denoiser {
  const cond = denoiserFor(labels);
  if (guidance === 1) return cond;
  const both = denoiserFor([...labels, ...labels.map(() => nullLabel)]);
  return (x, level) => {
    const sigma = level.s / level.a;
    if (sigma < interval[0] || sigma > interval[1]) return cond(x, level);
    const n = x.shape[0];
    const out = noGrad(() => both(concat([x, x], 0), level));
    return combine(guidance, slice(out, 0, 0, n), 1 - guidance, slice(out, 0, n, 2 * n));
  };
}

/**
 * The scheduler a sampler name stands for, its levels set: DDIM or Heun in `steps` steps on the
 * objective's ODE levels, or the ancestral sampler through every timestep of the DDPM schedule.
 */
export function imageScheduler(objective: ImageObjective, sampler: ImageSampler, steps: number): Scheduler {
  if (sampler === 'ddpm') {
    return new AncestralScheduler(objective.levels('ddpm')).setTimesteps(objective.spec.schedule.T);
  }
  const Kind = sampler === 'heun' ? HeunScheduler : DdimScheduler;
  return new Kind(objective.levels('ode')).setTimesteps(steps);
}

export type ImageSnapshot = { at: number; xt: Float32Array; x0: Float32Array };

/** One sampler step, for a caller that watches: the batch's x_t after it and its estimate of x0, in [0, 1]. */
export type StepView = { step: number; steps: number; start: number; xt: () => Float32Array; x0: () => Float32Array }; // prettier-ignore

/**
 * Draws `count` images of `shape` [channels, height, width], `batch` at a time, and maps them from the
 * data's [-1, 1] to [0, 1]; image i of a conditional model is asked for class `labels[i]`
 * (`denoiserFor` makes each batch's denoiser from its labels). `keep` lists levels (indices into
 * scheduler.levels) at which to keep the samples x_t, seen as the variance-preserving
 * x_t = x / sqrt(a^2 + s^2) (DDPM's own), and the estimate of x0 made there; at the last level the
 * estimate is the sample. `onStep` is called after every step with a view of the batch (images from
 * `start`), which converts x_t and x0 only if asked.
 */
export function sampleImages(
  denoiserFor: (labels?: number[]) => Denoiser,
  scheduler: Scheduler,
  opts: {
    count: number;
    shape: readonly [number, number, number];
    rng: Rng;
    labels?: number[];
    batch?: number;
    keep?: number[];
    onStep?: (view: StepView) => void;
  },
): { images: Float32Array; snapshots: ImageSnapshot[] } {
  const { count, shape, rng, batch = 100 } = opts;
  const perImage = shape[0] * shape[1] * shape[2];
  const images = new Float32Array(count * perImage);
  const last = scheduler.levels.length - 1;
  const snapshots = (opts.keep ?? []).map((at) => ({
    at,
    xt: new Float32Array(images.length),
    x0: new Float32Array(images.length),
  }));
  const vp = (i: number) => {
    const { a, s } = scheduler.levels[i];
    return Math.sqrt(a * a + s * s);
  };
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const xStart = scheduler.initNoise([n, ...shape], rng);
    const denoise = denoiserFor(opts.labels?.slice(start, start + n));
    for (const snap of snapshots) if (snap.at === 0) snap.xt.set(toUnit(xStart, vp(0)), start * perImage);
    // after step i, x0 was estimated at level i and x is at level i + 1
    const out = sampleLoop(scheduler, denoise, xStart, rng, (i, x, x0) => {
      opts.onStep?.({ step: i, steps: scheduler.steps, start, xt: () => toUnit(x, vp(i + 1)), x0: () => toUnit(x0, 1) }); // prettier-ignore
      for (const snap of snapshots) {
        if (snap.at === i + 1) snap.xt.set(toUnit(x, vp(i + 1)), start * perImage);
        if (snap.at === i) snap.x0.set(toUnit(x0, 1), start * perImage);
      }
    });
    images.set(toUnit(out, 1), start * perImage);
    for (const snap of snapshots)
      if (snap.at === last)
        snap.x0.set(images.subarray(start * perImage, (start + n) * perImage), start * perImage);
  }
  return { images, snapshots };
}

/** Images in [-1, 1] (divided by `scale` first, to bring a noisy sample to DDPM's x_t) -> [0, 1], clamped. */
export function toUnit(x: Tensor, scale: number): Float32Array {
  return Float32Array.from(x.data, (v) => Math.min(1, Math.max(0, (v / scale + 1) / 2)));
}
