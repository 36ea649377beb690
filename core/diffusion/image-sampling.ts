// Training and drawing images from a UNet with any of the samplers, for any objective of the config:
// the pieces stage:mnist's train and sample commands (and the data-parallel workers) share. Every sampler works in sigma coordinates
// (core/diffusion/samplers.ts); this file turns a config into the denoiser and the list of sigmas.
import { Rng } from '../random.ts';
import { Tensor } from '../tensor.ts';
import type { UNet } from '../nn/unet.ts';
import type { StageConfig } from '../config.ts';
import { Progress } from '../progress.ts';
import { DdpmSchedule } from './ddpm.ts';
import { edmSigmas } from './edm.ts';
import {
  ddpmDenoiser,
  ddpmDraw,
  ddpmLoss,
  edmDenoiser,
  edmDraw,
  edmLoss,
  type ImageNet,
  type NoiseDraw,
} from './objectives.ts';
import { ancestralSample, clipDenoiser, ddimSample, heunSample, sigmaOfAlphaBar } from './samplers.ts';

export const IMAGE_SAMPLERS = ['ddim', 'ddpm', 'heun'] as const;
export type ImageSampler = (typeof IMAGE_SAMPLERS)[number];

/** The UNet as the objectives see it: EDM feeds it a fractional time (c_noise), DDPM integer t. */
export function netOf(unet: UNet, cfg: StageConfig): ImageNet {
  const fractionalTime = cfg.diffusion_params.objective === 'edm';
  return (x, t) => unet.forward(x, t, { fractionalTime });
}

/** The DDPM schedule of the config. */
export function scheduleOf(cfg: StageConfig): DdpmSchedule {
  const d = cfg.diffusion_params;
  // cosine (Nichol & Dhariwal 2021) has no beta_start / beta_end: they apply to linear only
  return DdpmSchedule.of(d.beta_schedule, d.num_timesteps, d.beta_start, d.beta_end);
}

/** The config's training objective, split into its random draw and the loss given that draw. */
export type ImageObjective = {
  draw(x0: Tensor, rng: Rng): NoiseDraw;
  loss(net: ImageNet, x0: Tensor, draw: NoiseDraw): Tensor;
};

export function objectiveOf(cfg: StageConfig): ImageObjective {
  const d = cfg.diffusion_params;
  if (d.objective === 'edm') {
    const opts = { sigmaData: d.sigma_data, pMean: d.p_mean, pStd: d.p_std };
    return {
      draw: (x0, rng) => edmDraw(x0, opts, rng),
      loss: (net, x0, draw) => edmLoss(net, x0, opts, draw),
    };
  }
  const schedule = scheduleOf(cfg);
  return {
    draw: (x0, rng) => ddpmDraw(x0, schedule, rng),
    loss: (net, x0, draw) =>
      ddpmLoss(net, x0, schedule, d.prediction, draw, { minSnrGamma: d.min_snr_gamma }),
  };
}

/** The noise levels a sampler visits, from pure noise down to 0. */
export function samplerSigmas(cfg: StageConfig, sampler: ImageSampler, steps: number): number[] {
  const d = cfg.diffusion_params;
  if (d.objective === 'edm' && sampler !== 'ddpm')
    return edmSigmas({ n: steps, sigmaMin: 0.002, sigmaMax: 80 });
  // the DDPM schedule's own timesteps, evenly spaced from T-1 to 0 (all T for the ancestral sampler)
  const schedule = scheduleOf(cfg);
  const n = sampler === 'ddpm' ? schedule.T : Math.min(steps, schedule.T);
  const ts = Array.from({ length: n }, (_, i) =>
    Math.round(((schedule.T - 1) * (n - 1 - i)) / Math.max(1, n - 1)),
  );
  return [...ts.map((t) => sigmaOfAlphaBar(schedule.alphaBar[t])), 0];
}

/** Draws `count` images with the (EMA) model, in [0, 1], and snapshots along the way for the ddpm grids. */
export function drawSamples(
  ema: UNet,
  cfg: StageConfig,
  opts: {
    sampler: ImageSampler;
    steps: number;
    count: number;
    seed: number;
    quiet: boolean;
    /** Clamp each x0 prediction to the data's range [-1, 1] before the step (diffusers' `clip_sample`). */
    clipX0?: boolean;
  },
) {
  const d = cfg.diffusion_params;
  const net = netOf(ema, cfg);
  const model =
    d.objective === 'edm'
      ? edmDenoiser(net, { sigmaData: d.sigma_data, pMean: d.p_mean, pStd: d.p_std })
      : ddpmDenoiser(net, scheduleOf(cfg), d.prediction);
  const denoise = opts.clipX0 ? clipDenoiser(model, -1, 1) : model;
  const sigmas = samplerSigmas(cfg, opts.sampler, opts.steps);
  const size = cfg.model_params.im_size;
  const channels = cfg.model_params.im_channels;
  const perImage = channels * size * size;
  const images = new Float32Array(opts.count * perImage);
  // Snapshots of x_t, and of the x0 predicted from it, at t = T, 0.8 T, ..., 0 (the reference's figure):
  // `at` is the index into sigmas, so f = 1 (pure noise) is index 0 and f = 0 the last.
  const T = d.num_timesteps;
  const last = sigmas.length - 1;
  const snapshots = [1, 0.8, 0.6, 0.4, 0.2, 0].map((f) => ({
    t: Math.round(f * T),
    at: Math.round((1 - f) * last),
    xt: new Float32Array(images.length),
    x0: new Float32Array(images.length),
  }));
  const vp = (i: number) => Math.sqrt(1 + sigmas[i] ** 2); // VE sample / vp = the DDPM x_t
  const rng = new Rng(opts.seed);
  const batch = 100;
  const bar = new Progress(Math.ceil(opts.count / batch) * (sigmas.length - 1), `sample ${opts.sampler}`, {
    quiet: opts.quiet,
    unit: 'step',
  });
  for (let start = 0; start < opts.count; start += batch) {
    const n = Math.min(batch, opts.count - start);
    const xStart = rng.randn([n, channels, size, size], { std: sigmas[0] });
    // the sampler calls keep(i, x, x0) after step i: x0 was predicted at sigmas[i], x is at sigmas[i + 1]
    const keep = (i: number, x: Tensor, x0: Tensor) => {
      bar.tick(1);
      for (const snap of snapshots) {
        if (snap.at === i + 1) snap.xt.set(toUnit(x, vp(i + 1)), start * perImage);
        if (snap.at === i) snap.x0.set(toUnit(x0, 1), start * perImage);
      }
    };
    for (const snap of snapshots) if (snap.at === 0) snap.xt.set(toUnit(xStart, vp(0)), start * perImage);
    const out =
      opts.sampler === 'heun'
        ? heunSample(denoise, sigmas, xStart, keep)
        : opts.sampler === 'ddpm'
          ? ancestralSample(denoise, sigmas, xStart, rng, keep)
          : ddimSample(denoise, sigmas, xStart, keep);
    images.set(toUnit(out, 1), start * perImage);
    for (const snap of snapshots)
      if (snap.at === last)
        snap.x0.set(images.subarray(start * perImage, (start + n) * perImage), start * perImage);
  }
  return { images, snapshots };
}

/** Images in [-1, 1] (divided by `scale` first, to bring a noisy VE sample to VP) -> [0, 1], clamped. */
export function toUnit(x: Tensor, scale: number): Float32Array {
  return Float32Array.from(x.data, (v) => Math.min(1, Math.max(0, (v / scale + 1) / 2)));
}
