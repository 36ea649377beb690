// `npm run stage:mnist` (and stage:rgb): trains a config's UNet on its data set's training images (the
// 8,000 training digits, or the 12,000 shapes), scaled to [-1, 1] as the reference does, with DDPM's or
// EDM's objective; saves checkpoints (every few minutes, on Ctrl-C, at the end) and resumes from them
// exactly; then samples the EMA weights and judges the samples.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { Adam, cosineLr, Rng, stepScope, Tensor, UNet } from '../../core/index.ts';
import { Ema, PowerEma } from '../../core/ema.ts';
import {
  readCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
  type TrainingState,
} from '../../core/io/checkpoint.ts';
import { dropLabels } from '../../core/diffusion/objectives.ts';
import { DataParallel, defaultThreads } from '../../core/parallel/data-parallel.ts';
import { ConfigError, objectiveOf, readConfig, validateConfig, type StageConfig } from '../lib/config.ts';
import { OutputDir } from '../lib/output.ts';
import { Progress } from '../lib/progress.ts';
import { imageGrid } from '../../plots/index.ts';
import { dataOf, pickImages, type ImageData, type Images } from './data.ts';
import type { TrainFlags } from './flags.ts';
import { formatScores, judgeImages } from './judge.ts';
import { Preview } from './preview.ts';
import { drawSamplesSplit, firstImages, gridShape, writeSamples } from './sample.ts';
import { GUIDANCE, spreadLabels } from './draw.ts';

export async function train(flags: TrainFlags): Promise<void> {
  const cfg = readConfig(flags.config, flags.set); // a bad config stops here, before anything is built
  const tp = cfg.train_params;
  const out = new OutputDir(flags.out);
  const ckptPath = out.path(tp.ckpt_name);

  // Data: the config's training images in [-1, 1].
  const dataset = dataOf(cfg);
  const { train } = dataset.split();
  const data = train.images.map((v) => 2 * v - 1); // (Float32Array.from with a map function is 10x slower)
  if (dataset.name !== 'mnist') console.log(`data: ${train.count.toLocaleString('en')} ${dataset.noun}s (${dataset.classNames.join(', ')}), ${dataset.channels}x${dataset.size}x${dataset.size}`); // prettier-ignore
  realGrid(out, dataset, train);

  // Model, its EMA and the optimiser: resumed from the checkpoint, or started from init_from's weights.
  const run = buildRun(cfg, flags, ckptPath);
  const { unet, emaNet, ema, optimizer, extras } = run;
  console.log(
    `UNet: ${unet.numParameters().toLocaleString('en')} parameters; ${cfg.diffusion_params.objective} objective; batch ${tp.batch_size}`,
  );

  // The batch is split between threads, each with a copy of the model (core/parallel/).
  const objective = objectiveOf(cfg);
  const threads = flags.threads || defaultThreads(flags.backend);
  const parallel = await DataParallel.start(unet, objective, {
    threads,
    backend: flags.backend,
    batch: tp.batch_size,
  });
  console.log(parallel.description);
  let state = run.state;
  const save = () =>
    saveCheckpoint(ckptPath, {
      model: unet,
      ema: emaNet,
      optimizer,
      extras: shadows(extras),
      config: cfg,
      state,
    });
  /** The EMA weights (and each extra EMA's, as `<stem>-sigma0.05.safetensors`) as release checkpoints. */
  const release = (stem: string) => {
    saveCheckpoint(out.path(`${stem}.safetensors`), { ema: emaNet, config: cfg, state });
    for (const [name, e] of extras)
      saveCheckpoint(out.path(`${stem}-${name}.safetensors`), { ema: e.shadow, config: cfg, state });
    return out.path(`${stem}.safetensors`);
  };
  const log = startLog(out, state.step);
  const snapshots = snapshotClock(flags['snapshot-minutes'], state.seconds);
  const every = flags['preview-minutes'];
  const preview = every > 0 ? new Preview(out, cfg, dataset, every, flags.seed, state) : null;
  const stop = interruptible();
  const budget = flags.minutes > 0 ? flags.minutes * 60 : Infinity;
  const bar = new Progress(tp.num_steps - state.step, 'train', { quiet: flags.quiet, unit: 'step' });
  let smooth = NaN;
  let lastCkpt = state.seconds;

  // Training: every step draws its batch, noise levels and noise from a generator seeded by
  // (seed, step), so a resumed run continues exactly as an uninterrupted one would.
  while (state.step < tp.num_steps && state.seconds < budget) {
    const t0 = performance.now();
    const rng = new Rng(`${flags.seed}/${state.step}`);
    const { x0, idx } = drawBatch(data, dataset, train.count, tp.batch_size, rng);
    const warm = tp.warmup_steps > 0 ? Math.min(1, (state.step + 1) / tp.warmup_steps) : 1;
    optimizer.lr = warm * (tp.lr_schedule === 'cosine' ? cosineLr(tp.lr, state.step, tp.num_steps) : tp.lr);
    const draw = objective.draw(x0, rng);
    // a conditional model learns each image's label, and "no class" for a share of them
    if (unet.class_emb) {
      const labels = idx.map((i) => train.labels[i]);
      draw.labels = dropLabels(labels, tp.cond_drop_prob, unet.nullLabel, rng);
    }
    // the step's arrays go back to a pool for the next step to reuse (core/buffer-pool.ts): fresh
    // memory costs more than the arithmetic of many of the layers
    const loss = await stepScope(optimizer.params, async () => {
      const value = await parallel.lossAndGrad(x0, draw);
      if (Number.isFinite(value)) optimizer.step();
      return value;
    });
    if (!Number.isFinite(loss)) {
      throw new Error(
        `the loss became ${loss} at step ${state.step}; stopping. The last good checkpoint is kept${existsSync(ckptPath) ? ` at ${ckptPath}` : ' (none was written yet)'}`,
      );
    }
    ema.update(state.step);
    for (const e of extras.values()) e.update(state.step);
    const seconds = (performance.now() - t0) / 1000;
    state = { step: state.step + 1, images: state.images + tp.batch_size, seconds: state.seconds + seconds };
    smooth = Number.isNaN(smooth) ? loss : 0.98 * smooth + 0.02 * loss;
    appendFileSync(
      log,
      `${state.step},${state.images},${state.seconds.toFixed(2)},${loss.toPrecision(6)},${optimizer.lr.toPrecision(4)}\n`,
    );
    bar.tick(1, `loss ${smooth.toFixed(4)} ${(tp.batch_size / seconds).toFixed(1)} img/s`);
    if (state.seconds - lastCkpt >= tp.ckpt_every_seconds) {
      save();
      lastCkpt = state.seconds;
    }
    const minutes = snapshots.due(state.seconds);
    if (minutes !== null) release(`snapshot-${String(minutes).padStart(3, '0')}min`);
    if (preview?.due(state.seconds)) preview.take(emaNet, state, (text) => bar.footer(text));
    if (await stop.requested()) {
      save();
      console.log(`\ninterrupted at step ${state.step}: saved ${ckptPath}; run the same command to resume`);
      process.exit(130);
    }
  }
  stop.release();
  parallel.close();
  save();
  out.record(ckptPath);
  // the EMA weights alone (a quarter of the checkpoint): what `sample` needs, and what a release ships
  out.record(release('ema'));
  out.record(log);
  console.log(`trained ${state.step} steps, ${state.images} images, ${(state.seconds / 60).toFixed(1)} min`);
  const cost = preview?.finish(emaNet, state, (text) => (flags.quiet ? undefined : console.error(text)));
  if (cost) console.log(cost);
  if (!flags['no-sample']) await sampleAndJudge(out, emaNet, cfg, dataset, state, flags);
  console.log(out.report());
}

/** real.png: the first ten training images of each class, a row per class, to hold the samples against. */
function realGrid(out: OutputDir, dataset: ImageData, train: Images): void {
  const { channels, size, classNames } = dataset;
  const pixels = channels * size * size;
  const picked = classNames.flatMap((_, k) => {
    const rows = [...train.labels.keys()].filter((i) => train.labels[i] === k);
    return rows.slice(0, 10);
  });
  const data = pickImages(train.images, picked, pixels);
  const title = `Training ${dataset.noun}s, a row per class`;
  imageGrid({ data, n: picked.length, channels, height: size, width: size, nrow: 10, rowLabels: [...classNames], title }) // prettier-ignore
    .save(out.record(out.path('real.png')));
}

type Run = {
  unet: UNet;
  emaNet: UNet;
  ema: Ema;
  /** train_params.ema_sigma_rels' power-function EMAs, by name ('sigma0.05') */
  extras: Map<string, PowerEma>;
  optimizer: Adam;
  state: TrainingState;
};

/** The extra EMAs' weights as a checkpoint stores them, under `ema_<name>.` ('ema_sigma0.05.'). */
function shadows(extras: Run['extras']) {
  return new Map([...extras].map(([name, e]) => [`ema_${name}`, e.shadow]));
}

/** The model, its EMA and Adam, resumed from `ckptPath` when it exists (and --fresh is not given). */
function buildRun(cfg: StageConfig, flags: TrainFlags, ckptPath: string): Run {
  const tp = cfg.train_params;
  const unet = new UNet(cfg.model_params, new Rng(flags.seed));
  const emaNet = new UNet(cfg.model_params, new Rng(flags.seed));
  const ema = new Ema(unet, emaNet, tp.ema_decay, tp.ema_warmup === 'inverse');
  const extras = new Map(
    tp.ema_sigma_rels.map((rel) => {
      const shadow = new UNet(cfg.model_params, new Rng(flags.seed));
      return [`sigma${rel}`, new PowerEma(unet, shadow, rel)];
    }),
  );
  const optimizer = new Adam(unet.parameters(), { lr: tp.lr });
  const run = { unet, emaNet, ema, extras, optimizer, state: { step: 0, images: 0, seconds: 0 } };
  if (existsSync(ckptPath) && !flags.fresh) {
    const ckpt = readCheckpoint(ckptPath);
    if (JSON.stringify(validateConfig(ckpt.config)) !== JSON.stringify(cfg)) {
      throw new Error(
        `${ckptPath} was trained with a different config; use --fresh to start over, or another --out`,
      );
    }
    restoreCheckpoint(ckpt, ckptPath, { ema: emaNet, model: unet, optimizer, extras: shadows(extras) });
    run.state = { step: ckpt.state.step, images: ckpt.state.images, seconds: ckpt.state.seconds };
    console.log(
      `resuming from ${ckptPath}: step ${run.state.step}, ${run.state.images} images, ${(run.state.seconds / 60).toFixed(1)} min trained`,
    );
  }
  if (run.state.step === 0 && tp.init_from) run.state = initFrom(cfg, unet, emaNet);
  return run;
}

/**
 * A continuation: a fresh learning-rate schedule from a finished run's EMA weights (train_params.init_from).
 * Images and minutes go on counting from that run, so the log and the scores state the whole training.
 */
function initFrom(cfg: StageConfig, unet: UNet, emaNet: UNet): TrainingState {
  const tp = cfg.train_params;
  let init;
  try {
    init = readCheckpoint(tp.init_from);
  } catch (e) {
    throw new ConfigError(`config: train_params.init_from: ${(e as Error).message}`);
  }
  const same = JSON.stringify(validateConfig(init.config).model_params) === JSON.stringify(cfg.model_params);
  if (!same) throw new ConfigError(`config: train_params.init_from: ${tp.init_from} has other model_params`);
  restoreCheckpoint(init, tp.init_from, { ema: unet });
  restoreCheckpoint(init, tp.init_from, { ema: emaNet });
  const state = { step: 0, images: init.state.images, seconds: init.state.seconds };
  console.log(
    `starting from ${tp.init_from}'s EMA weights: ${state.images} images, ${(state.seconds / 60).toFixed(1)} min trained before`,
  );
  const reached = Ema.warmupSteps(tp.ema_decay);
  if (tp.ema_warmup === 'inverse' && reached > tp.num_steps)
    console.log(
      `note: with ema_warmup 'inverse' the EMA decay reaches ${tp.ema_decay} only at step ${reached} of ${tp.num_steps}; "ema_warmup": "none" averages with it from the start`,
    );
  return state;
}

/** A batch of `size` images drawn with replacement, as [size, C, H, W], and which images they are. */
function drawBatch(
  data: Float32Array,
  { channels: c, size: s }: ImageData,
  count: number,
  size: number,
  rng: Rng,
): { x0: Tensor; idx: number[] } {
  const pixels = c * s * s;
  const idx = Array.from({ length: size }, () => rng.int(0, count));
  const x0 = new Tensor(pickImages(data, idx, pixels), [size, c, s, s]);
  return { x0, idx };
}

/**
 * The training log (step, images, seconds, loss, lr): a new one for a fresh run; on resume, the rows
 * after the checkpoint's step (a crash or a kill between saves) are dropped, since they run again.
 */
function startLog(out: OutputDir, step: number): string {
  const log = out.path('train-log.csv');
  if (step === 0) out.writeFile('train-log.csv', 'step,images,seconds,loss,lr\n');
  else if (existsSync(log)) {
    const rows = readFileSync(log, 'utf8').trim().split('\n');
    out.writeFile(
      'train-log.csv',
      rows.filter((r, i) => i === 0 || Number(r.split(',')[0]) <= step).join('\n') + '\n',
    );
  }
  return log;
}

/** Every `every` minutes of training (0: never), the minute mark that has just been passed. */
function snapshotClock(every: number, seconds: number) {
  let next = every > 0 ? (Math.floor(seconds / 60 / every) + 1) * every * 60 : Infinity;
  return {
    due(now: number): number | null {
      if (now < next) return null;
      const minutes = Math.round(next / 60);
      next += every * 60;
      return minutes;
    },
  };
}

/** Ctrl-C between steps: `requested()` yields to the event loop so the signal is noticed, and says whether it came. */
function interruptible() {
  let interrupted = false;
  const onSigint = () => (interrupted = true);
  process.on('SIGINT', onSigint);
  return {
    requested: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return interrupted;
    },
    release: () => process.off('SIGINT', onSigint),
  };
}

/**
 * The config's sampler on the EMA weights, the samples judged; scores.json holds both. A conditional
 * model is asked for every class in turn, with the default guidance.
 */
async function sampleAndJudge(
  out: OutputDir,
  emaNet: UNet,
  cfg: StageConfig,
  dataset: ImageData,
  state: TrainingState,
  flags: TrainFlags,
): Promise<void> {
  const tp = cfg.train_params;
  const classes = cfg.model_params.num_classes ?? 0;
  const labels = classes > 0 ? spreadLabels(tp.num_samples, [...Array(classes).keys()]) : undefined;
  const recommended = GUIDANCE[cfg.dataset_params.name];
  const guidance = classes > 0 ? recommended.scale : 1;
  const { images } = await drawSamplesSplit(emaNet, cfg, {
    ...{ threads: flags.threads, backend: flags.backend, log: () => undefined },
    sampler: tp.sampler,
    steps: tp.sample_steps,
    count: tp.num_samples,
    seed: flags.seed,
    quiet: flags.quiet,
    labels,
    guidance,
    interval: recommended.interval,
  });
  const rows = tp.num_grid_rows;
  const grid = labels
    ? gridShape(tp.num_samples, labels, dataset.classNames)
    : firstImages(tp.num_samples, rows, rows * rows);
  writeSamples(out, images, tp.num_samples, cfg, grid, labels ?? null);
  const scores = judgeImages(dataset, images, tp.num_samples, labels);
  out.writeJson('scores.json', {
    ...scores,
    sampler: tp.sampler,
    steps: tp.sample_steps,
    ...(labels ? { guidance, guidanceInterval: recommended.interval } : {}),
    trainedSteps: state.step,
    trainedImages: state.images,
    trainedMinutes: state.seconds / 60,
  });
  console.log(`judge: ${formatScores(scores, dataset)}`);
}
