// `npm run stage:mnist -- sample` (and stage:rgb's): images from a checkpoint's EMA weights (by default
// the stage's committed one, e.g. stages/mnist/default.safetensors), with DDIM, Heun or the 1000-step
// ancestral sampler; from a class-conditional checkpoint, the classes asked for (--classes) with
// classifier-free guidance (--guidance). Writes samples.safetensors ([N, C, H, W] in [0, 1], and the
// class asked of each) and a grid; the ancestral sampler also writes the reference's figure, x_t and
// the predicted x0 at t = T, 0.8 T, ..., 0.
import { Rng, Tensor, UNet } from '../../core/index.ts';
import { IMAGE_SAMPLERS } from '../../core/diffusion/image.ts';
import { defaultThreads } from '../../core/parallel/data-parallel.ts';
import { ParallelForward } from '../../core/parallel/parallel-forward.ts';
import { readCheckpoint, restoreCheckpoint } from '../../core/io/checkpoint.ts';
import { writeSafetensors } from '../../core/io/safetensors.ts';
import { imageGrid } from '../../plots/index.ts';
import { validateConfig, type StageConfig } from '../lib/config.ts';
import { UsageError } from '../lib/cli.ts';
import { choiceFlag } from '../lib/flags.ts';
import { OutputDir } from '../lib/output.ts';
import { Progress } from '../lib/progress.ts';
import { dataOf, pickImages } from './data.ts';
import { BATCH, drawImages, GUIDANCE, spreadLabels, type DrawOptions, type Guidance } from './draw.ts';
import type { ImageStage, SampleFlags } from './flags.ts';

export async function sample(flags: SampleFlags, stage: ImageStage): Promise<void> {
  const command = `${stage.command} -- sample`;
  const sampler = choiceFlag(flags.sampler, IMAGE_SAMPLERS, 'sampler', command);
  const ckpt = readCheckpoint(flags.checkpoint);
  const cfg = validateConfig(ckpt.config);
  const { labels, guidance, interval } = conditioning(
    flags,
    cfg.model_params.num_classes ?? 0,
    GUIDANCE[cfg.dataset_params.name],
    command,
  );
  const ema = new UNet(cfg.model_params, new Rng(0));
  restoreCheckpoint(ckpt, flags.checkpoint, { ema });
  const out = new OutputDir(flags.out);
  // the reference's figure: x_t and the x0 predicted from it at t = T, 0.8 T, ..., 0
  const fractions = sampler === 'ddpm' ? [1, 0.8, 0.6, 0.4, 0.2, 0] : [];
  const { images, snapshots } = await drawSamplesSplit(ema, cfg, {
    ...{ ...flags, sampler, count: flags.n, fractions },
    ...{ labels: labels ?? undefined, guidance, interval, log: console.log },
  });
  const grid = gridShape(flags.n, labels, dataOf(cfg).classNames);
  writeSamples(out, images, flags.n, cfg, grid, labels);
  for (const { t, xt, x0 } of snapshots) {
    const tag = String(t).padStart(4, '0');
    saveGrid(out, `xt_t${tag}.png`, xt, cfg, grid, `x_t at t = ${t}`);
    saveGrid(out, `x0_t${tag}.png`, x0, cfg, grid, `predicted x0 at t = ${t}`);
  }
  console.log(out.report());
}

/**
 * What --classes and --guidance ask of a checkpoint with `classes` classes (0: unconditional): the class
 * asked of each sample (N spread evenly over the chosen classes, in order) and the guidance W. An
 * unconditional checkpoint refuses both.
 */
function conditioning(
  flags: SampleFlags,
  classes: number,
  recommended: Guidance,
  command: string,
): { labels: number[] | null; guidance: number; interval?: [number, number] } {
  const usage = `usage: npm run ${command} --help`;
  if (classes === 0) {
    if (flags.classes !== '' || flags.guidance !== '' || flags['guidance-interval'] !== '') {
      throw new UsageError(
        `--classes and --guidance need a class-conditional checkpoint; ${flags.checkpoint} has no classes`,
        usage,
      );
    }
    return { labels: null, guidance: 1 };
  }
  const text = flags.guidance.trim();
  const guidance = text === '' ? recommended.scale : Number(text);
  if (!(text === '' || (Number.isFinite(guidance) && guidance >= 0))) {
    throw new UsageError(`--guidance expects a number >= 0, got '${flags.guidance}'`, usage);
  }
  const list =
    flags.classes === '' || flags.classes === 'all' ? [...Array(classes).keys()] : flags.classes.split(',');
  const digits = list.map((d) => (typeof d === 'number' ? d : Number(d.trim())));
  digits.forEach((d, i) => {
    if (!(Number.isInteger(d) && d >= 0 && d < classes)) {
      throw new UsageError(`--classes: '${list[i]}' is not a class of this checkpoint (0..${classes - 1}); give all or a list like 0,3,7`, usage); // prettier-ignore
    }
  });
  return {
    labels: spreadLabels(flags.n, digits),
    guidance,
    interval: guidanceInterval(flags, recommended, usage),
  };
}

/** --guidance-interval LO,HI: two noise levels 0 <= LO < HI (HI may be inf); all: every level. */
function guidanceInterval(flags: SampleFlags, recommended: Guidance, usage: string): [number, number] {
  const text = flags['guidance-interval'].trim();
  if (text === '') return recommended.interval;
  if (text === 'all') return [0, Infinity];
  const [lo, hi, ...rest] = text.split(',').map((v) => (v.trim() === 'inf' ? Infinity : Number(v.trim())));
  if (rest.length > 0 || !(lo >= 0 && hi > lo) || Number.isNaN(hi)) {
    throw new UsageError(
      `--guidance-interval expects all, or two noise levels LO,HI with 0 <= LO < HI (HI may be inf), got '${text}'`,
      usage,
    );
  }
  return [lo, hi];
}

/** A grid picture: the images it shows (indices into the batch), `columns` to a row, and each row's name. */
export type GridShape = { columns: number; picked: number[]; rowLabels?: string[] };

/** The first `shown` of `n` images, `columns` to a row. */
export function firstImages(n: number, columns: number, shown: number): GridShape {
  return { columns, picked: [...Array(Math.min(n, shown)).keys()] };
}

/**
 * With labels, one row per asked class, named by `classNames`: the first images of each, as many as the
 * class asked least often has (at most 20). Without, a square of the first images.
 */
export function gridShape(n: number, labels: number[] | null, classNames?: readonly string[]): GridShape {
  if (labels && labels.length > 0) {
    // a row per class asked, as long as the class asked least often (N need not divide evenly)
    const kinds = [...new Set(labels)];
    const rows = kinds.map((k) => [...labels.keys()].filter((i) => labels[i] === k));
    const columns = Math.min(20, ...rows.map((r) => r.length));
    const picked = rows.flatMap((r) => r.slice(0, columns));
    return { columns, picked, rowLabels: classNames && kinds.map((k) => classNames[k]) };
  }
  const side = Math.max(1, Math.round(Math.sqrt(Math.min(n, 100))));
  return firstImages(n, side, side * side);
}

/** drawImages (draw.ts) with a progress bar, unless quiet. */
export function drawSamples(ema: UNet, cfg: StageConfig, opts: DrawOptions & { quiet: boolean }) {
  let bar: Progress | null = null;
  // the bar is made at the first step, when the step count is known; its clock counts that step too
  const since = performance.now();
  return drawImages(ema, cfg, {
    ...opts,
    onStep: (view) => {
      bar ??= new Progress(Math.ceil(opts.count / BATCH) * view.steps, `sample ${opts.sampler}`, {
        quiet: opts.quiet,
        unit: 'step',
        since,
      });
      bar.tick(1);
    },
  });
}

/**
 * drawSamples with each batch split between `threads` threads (0: one per core), each holding a copy of
 * the weights (core/parallel/parallel-forward.ts); the samples are the same as on one thread.
 */
export async function drawSamplesSplit(
  ema: UNet,
  cfg: StageConfig,
  opts: Parameters<typeof drawSamples>[2] & { threads: number; backend: string; log: (line: string) => void },
) {
  const threads = opts.threads || defaultThreads(opts.backend);
  const forward = await ParallelForward.start(ema, { threads, backend: opts.backend, maxBatch: 2 * BATCH });
  opts.log(forward.description);
  try {
    return drawSamples(ema, cfg, { ...opts, forward });
  } finally {
    forward.close();
  }
}

/** The images `grid` picks from a batch, as a labelled grid PNG in `out`. */
export function saveGrid(
  out: OutputDir,
  file: string,
  images: Float32Array,
  cfg: StageConfig,
  grid: GridShape,
  title: string,
) {
  const { im_channels: c, im_size: s } = cfg.model_params;
  const size = c * s * s;
  const picked = grid.picked.filter((i) => (i + 1) * size <= images.length);
  const data = pickImages(images, picked, size);
  imageGrid({
    data,
    n: picked.length,
    channels: c === 3 ? 3 : 1,
    height: s,
    width: s,
    nrow: grid.columns,
    rowLabels: grid.rowLabels,
    title: title.replace('{n}', String(picked.length)),
  }).save(out.record(out.path(file)));
}

/**
 * samples.safetensors ([count, C, H, W] in [0, 1], the class asked of each as I32, and the data set's
 * name) and grid.png.
 */
export function writeSamples(
  out: OutputDir,
  images: Float32Array,
  count: number,
  cfg: StageConfig,
  grid: GridShape,
  labels: number[] | null = null,
): void {
  const { im_channels: c, im_size: s } = cfg.model_params;
  const path = out.path('samples.safetensors');
  const tensors = new Map([['samples', new Tensor(images, [count, c, s, s])]]);
  if (labels) tensors.set('labels', new Tensor(Float32Array.from(labels), [count]));
  const data = dataOf(cfg);
  const meta = { range: '[0, 1]', dataset: data.name };
  writeSafetensors(path, tensors, meta, { int32: labels ? ['labels'] : [] });
  out.record(path);
  const shown = grid.picked.length < count ? `{n} of ${count}` : '{n}';
  const title = `${shown} samples${labels ? `, a row per ${data.noun} asked` : ''}`;
  saveGrid(out, 'grid.png', images, cfg, grid, title);
}
