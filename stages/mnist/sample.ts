// `npm run stage:mnist -- sample`: digits from a checkpoint's EMA weights (by default the committed
// stages/mnist/default.safetensors), with DDIM, Heun or the 1000-step ancestral sampler. Writes
// samples.safetensors ([N, C, H, W] in [0, 1]) and a grid; the ancestral sampler also writes the
// reference's figure, x_t and the predicted x0 at t = T, 0.8 T, ..., 0.
import { Rng, Tensor, UNet } from '../../core/index.ts';
import { imageNet, imageScheduler, IMAGE_SAMPLERS, sampleImages } from '../../core/diffusion/image.ts';
import { clipDenoiser } from '../../core/diffusion/schedulers.ts';
import { readCheckpoint, restoreCheckpoint } from '../../core/io/checkpoint.ts';
import { writeSafetensors } from '../../core/io/safetensors.ts';
import { useBackend } from '../../core/kernels/select.ts';
import { imageGrid } from '../../plots/index.ts';
import { objectiveOf, validateConfig, type StageConfig } from '../lib/config.ts';
import { choiceFlag } from '../lib/flags.ts';
import { OutputDir } from '../lib/output.ts';
import { Progress } from '../lib/progress.ts';
import type { SampleFlags } from './flags.ts';

export async function sample(flags: SampleFlags): Promise<void> {
  const sampler = choiceFlag(flags.sampler, IMAGE_SAMPLERS, 'sampler', 'stage:mnist -- sample');
  const ckpt = readCheckpoint(flags.checkpoint);
  const cfg = validateConfig(ckpt.config);
  console.log(await useBackend(flags.backend));
  const ema = new UNet(cfg.model_params, new Rng(0));
  restoreCheckpoint(ckpt, flags.checkpoint, { ema });
  const out = new OutputDir(flags.out);
  // the reference's figure: x_t and the x0 predicted from it at t = T, 0.8 T, ..., 0
  const fractions = sampler === 'ddpm' ? [1, 0.8, 0.6, 0.4, 0.2, 0] : [];
  const { images, snapshots } = drawDigits(ema, cfg, { ...flags, sampler, count: flags.n, fractions });
  const rows = Math.max(1, Math.round(Math.sqrt(Math.min(flags.n, 100))));
  writeSamples(out, images, flags.n, cfg, rows);
  for (const { t, xt, x0 } of snapshots) {
    const tag = String(t).padStart(4, '0');
    saveGrid(out, `xt_t${tag}.png`, xt, cfg, rows, `x_t at t = ${t}`);
    saveGrid(out, `x0_t${tag}.png`, x0, cfg, rows, `predicted x0 at t = ${t}`);
  }
  console.log(out.report());
}

/**
 * `count` images from the EMA model in [0, 1], with a progress bar; and, at each fraction f of the way
 * from pure noise (1) to the data (0), x_t and the predicted x0, labelled t = f T.
 */
export function drawDigits(
  ema: UNet,
  cfg: StageConfig,
  opts: {
    sampler: (typeof IMAGE_SAMPLERS)[number];
    steps: number;
    count: number;
    seed: number;
    quiet: boolean;
    'clip-x0'?: boolean;
    fractions?: number[];
  },
) {
  const objective = objectiveOf(cfg);
  const model = objective.denoiser(imageNet(ema, objective));
  // diffusers' clip_sample: a clean digit lies in [-1, 1], so its estimate is clamped there
  const denoise = opts['clip-x0'] ? clipDenoiser(model, -1, 1) : model;
  const scheduler = imageScheduler(objective, opts.sampler, opts.steps);
  const { im_channels: c, im_size: size } = cfg.model_params;
  const batch = 100;
  const bar = new Progress(Math.ceil(opts.count / batch) * scheduler.steps, `sample ${opts.sampler}`, {
    quiet: opts.quiet,
    unit: 'step',
  });
  const last = scheduler.steps;
  const fractions = opts.fractions ?? [];
  const { images, snapshots } = sampleImages(denoise, scheduler, {
    count: opts.count,
    shape: [c, size, size],
    rng: new Rng(opts.seed),
    batch,
    keep: fractions.map((f) => Math.round((1 - f) * last)),
    onStep: () => bar.tick(1),
  });
  const T = cfg.diffusion_params.num_timesteps;
  return { images, snapshots: snapshots.map((s, i) => ({ ...s, t: Math.round(fractions[i] * T) })) };
}

/** The first rows x rows images of a batch as a labelled grid PNG in `out`. */
export function saveGrid(
  out: OutputDir,
  file: string,
  images: Float32Array,
  cfg: StageConfig,
  rows: number,
  title: string,
) {
  const { im_channels: c, im_size: s } = cfg.model_params;
  const shown = Math.min(images.length / (c * s * s), rows * rows);
  imageGrid({
    data: images.subarray(0, shown * c * s * s),
    n: shown,
    channels: c === 3 ? 3 : 1,
    height: s,
    width: s,
    nrow: rows,
    title: title.replace('{n}', String(shown)),
  }).save(out.record(out.path(file)));
}

/** samples.safetensors ([count, C, H, W] in [0, 1]) and grid.png. */
export function writeSamples(
  out: OutputDir,
  images: Float32Array,
  count: number,
  cfg: StageConfig,
  rows: number,
): void {
  const { im_channels: c, im_size: s } = cfg.model_params;
  const path = out.path('samples.safetensors');
  writeSafetensors(path, new Map([['samples', new Tensor(images, [count, c, s, s])]]), { range: '[0, 1]' });
  out.record(path);
  saveGrid(out, 'grid.png', images, cfg, rows, '{n} samples');
}
