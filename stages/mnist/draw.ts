// Drawing images from a checkpoint's EMA UNet as its config says (objective, sampler, guidance): what
// `sample`, training's previews and the page (web/) share. No files and no terminal here; a caller that
// watches passes onStep.
import { Rng, tidy, type UNet } from '../../core/index.ts';
import type { ImageNet } from '../../core/diffusion/objectives.ts';
import {
  guidedDenoiser,
  imageNet,
  imageScheduler,
  sampleImages,
  type ImageSampler,
  type StepView,
  type UNetForward,
} from '../../core/diffusion/image.ts';
import { clipDenoiser, type Denoiser } from '../../core/diffusion/schedulers.ts';
import { objectiveOf, type DatasetParams, type StageConfig } from '../lib/config.ts';

/** Images per sampler batch (guidance runs twice as many through the UNet at once). */
export const BATCH = 100;

export type Guidance = { scale: number; interval: [number, number] };

/**
 * The guidance a class-conditional checkpoint samples with unless --guidance and --guidance-interval say
 * otherwise, per data set: the scale W, and the noise levels sigma where it applies, each chosen on the
 * data set's committed checkpoint (docs/mnist-class.md, docs/rgb.md).
 */
export const GUIDANCE: Record<DatasetParams['name'], Guidance> = {
  mnist: { scale: 1.75, interval: [0.5, 5] },
  shapes: { scale: 2, interval: [0.5, 5] },
};

/** n samples spread evenly over `classes`, in order: sample i asks for classes[floor(i k / n)]. */
export function spreadLabels(n: number, classes: number[]): number[] {
  return Array.from({ length: n }, (_, i) => classes[Math.floor((i * classes.length) / n)]);
}

export type DrawOptions = {
  sampler: ImageSampler;
  steps: number;
  count: number;
  seed: number;
  'clip-x0'?: boolean;
  fractions?: number[];
  labels?: number[];
  guidance?: number;
  interval?: [number, number];
  /** What runs the forward passes (default: the model, on this thread). */
  forward?: UNetForward;
  /** Called after every sampler step of every batch. */
  onStep?: (view: StepView) => void;
};

/**
 * `count` images from the EMA model in [0, 1], `BATCH` at a time; for a conditional model, image i
 * asked for class `labels[i]` with guidance W. At each fraction f of the way from pure noise (1) to the
 * data (0), x_t and the predicted x0, labelled t = f T.
 */
export function drawImages(ema: UNet, cfg: StageConfig, opts: DrawOptions) {
  const objective = objectiveOf(cfg);
  // each forward pass reuses the previous one's buffers (core/buffer-pool.ts): same shapes every step
  const untidy = imageNet(opts.forward ?? ema, objective);
  const net: ImageNet = (x, t, labels) => tidy(() => untidy(x, t, labels));
  const { labels, guidance = 1 } = opts;
  const denoiserFor = (batch?: number[]): Denoiser => {
    const model = batch
      ? guidedDenoiser((l) => objective.denoiser(net, l), batch, guidance, ema.nullLabel, opts.interval)
      : objective.denoiser(net);
    // diffusers' clip_sample: a clean image lies in [-1, 1], so its estimate is clamped there
    return opts['clip-x0'] ? clipDenoiser(model, -1, 1) : model;
  };
  const scheduler = imageScheduler(objective, opts.sampler, opts.steps);
  const { im_channels: c, im_size: size } = cfg.model_params;
  const last = scheduler.steps;
  const fractions = opts.fractions ?? [];
  const { images, snapshots } = sampleImages(denoiserFor, scheduler, {
    count: opts.count,
    shape: [c, size, size],
    rng: new Rng(opts.seed),
    labels,
    batch: BATCH,
    keep: fractions.map((f) => Math.round((1 - f) * last)),
    onStep: opts.onStep,
  });
  const T = cfg.diffusion_params.num_timesteps;
  return { images, snapshots: snapshots.map((s, i) => ({ ...s, t: Math.round(fractions[i] * T) })) };
}
