// Stage 4: the reference UNet trained as a diffusion model on real MNIST digits.
//   npm run stage:mnist                                  train the default config (resuming when a
//                                                        checkpoint exists), then sample and judge
//   npm run stage:mnist -- sample --checkpoint FILE ...  draw digits from a checkpoint
//   npm run stage:mnist -- judge DIR                     score DIR/samples.safetensors
// The data: 8,000 training digits scaled to [-1, 1] as the reference does. The model: the config-driven
// UNet of core/nn/unet.ts. The objective: DDPM's (predict the noise added at a random timestep), or EDM's
// preconditioned one (config diffusion_params.objective). Sampling uses the EMA of the weights.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Adam, cosineLr, Rng, Tensor, UNet } from '../core/index.ts';
import { parseFlags, runMain, usageLine, UsageError } from '../core/cli.ts';
import { ConfigError, readConfig, validateConfig, type StageConfig } from '../core/config.ts';
import { mnistSplit, PIXELS } from '../core/data/mnist.ts';
import {
  drawSamples,
  IMAGE_SAMPLERS,
  objectiveOf,
  type ImageSampler,
} from '../core/diffusion/image-sampling.ts';
import { Ema } from '../core/ema.ts';
import { judgeSamples, loadJudge } from '../core/eval/judge.ts';
import { readCheckpoint, restoreCheckpoint, saveCheckpoint } from '../core/io/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../core/io/safetensors.ts';
import { useBackend } from '../core/kernels/select.ts';
import { BACKEND_FLAG } from '../core/stage.ts';
import { DataParallel, defaultThreads } from '../core/parallel/data-parallel.ts';
import { OutputDir } from '../core/output.ts';
import { Progress } from '../core/progress.ts';
import { imageGrid } from '../plots/index.ts';

const JUDGE = 'stages/mnist/judge.safetensors';

/** The first rows x rows images of a batch as a labelled grid PNG in `out`. */
function saveGrid(
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

function writeSamples(
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

function judgeImages(images: Float32Array, count: number) {
  const { test } = mnistSplit();
  const { judge, real } = loadJudge(JUDGE, test);
  return judgeSamples(judge, images, count, real);
}

const fmtScores = (s: { confident: number; entropy: number; fid: number; samples: number }) =>
  `confident ${s.confident.toFixed(3)} | class entropy ${s.entropy.toFixed(3)} | MNIST-FID ${s.fid.toFixed(1)} (${s.samples} samples)`;

// ---- train ----

async function train(argv: string[]) {
  const flags = parseFlags(
    'stage:mnist',
    {
      config: { type: 'string', default: 'stages/mnist/default.json', help: 'training config (JSON)' },
      out: {
        type: 'string',
        default: 'out/mnist',
        help: 'folder for the checkpoint, log, samples and scores',
      },
      seed: { type: 'int', default: 0, help: 'random seed' },
      fresh: { type: 'boolean', help: 'ignore an existing checkpoint and start over' },
      minutes: {
        type: 'float',
        default: 0,
        min: 0,
        help: 'stop after this many minutes of training (0: run num_steps)',
      },
      'snapshot-minutes': {
        type: 'float',
        default: 0,
        min: 0,
        help: 'also keep an EMA snapshot every N minutes',
      },
      'no-sample': { type: 'boolean', help: 'skip sampling and judging at the end' },
      quiet: { type: 'boolean', help: 'no progress bar' },
      ...BACKEND_FLAG,
      threads: {
        type: 'int',
        default: 0,
        min: 0,
        help: 'threads that split each batch (0: one per core, at most 4; 1 on the gpu backend)',
      },
    },
    argv,
  );
  const cfg = readConfig(flags.config); // a bad config stops here, before anything is built
  const tp = cfg.train_params;
  const out = new OutputDir(flags.out);
  const ckptPath = out.path(tp.ckpt_name);

  // Data: the 8,000 training digits in [-1, 1].
  const { train } = mnistSplit();
  const data = train.images.map((v) => 2 * v - 1); // (Float32Array.from with a map function is 10x slower)

  // Model, its EMA, the optimiser; resumed from the checkpoint when there is one.
  const unet = new UNet(cfg.model_params, new Rng(flags.seed));
  const emaNet = new UNet(cfg.model_params, new Rng(flags.seed));
  const ema = new Ema(unet, emaNet, tp.ema_decay, tp.ema_warmup === 'inverse');
  const optimizer = new Adam(unet.parameters(), { lr: tp.lr });
  let state = { step: 0, images: 0, seconds: 0 };
  if (existsSync(ckptPath) && !flags.fresh) {
    const ckpt = readCheckpoint(ckptPath);
    if (JSON.stringify(validateConfig(ckpt.config)) !== JSON.stringify(cfg)) {
      throw new Error(
        `${ckptPath} was trained with a different config; use --fresh to start over, or another --out`,
      );
    }
    restoreCheckpoint(ckpt, ckptPath, { ema: emaNet, model: unet, optimizer });
    state = { step: ckpt.state.step, images: ckpt.state.images, seconds: ckpt.state.seconds };
    console.log(
      `resuming from ${ckptPath}: step ${state.step}, ${state.images} images, ${(state.seconds / 60).toFixed(1)} min trained`,
    );
  }
  if (state.step === 0 && tp.init_from) {
    // A continuation: a fresh lr schedule from a finished run's EMA weights. Images and minutes go on
    // counting from that run, so the log and the scores state the whole training.
    let init;
    try {
      init = readCheckpoint(tp.init_from);
    } catch (e) {
      throw new ConfigError(`config: train_params.init_from: ${(e as Error).message}`);
    }
    const same =
      JSON.stringify(validateConfig(init.config).model_params) === JSON.stringify(cfg.model_params);
    if (!same)
      throw new ConfigError(`config: train_params.init_from: ${tp.init_from} has other model_params`);
    restoreCheckpoint(init, tp.init_from, { ema: unet });
    restoreCheckpoint(init, tp.init_from, { ema: emaNet });
    state = { step: 0, images: init.state.images, seconds: init.state.seconds };
    console.log(
      `starting from ${tp.init_from}'s EMA weights: ${state.images} images, ${(state.seconds / 60).toFixed(1)} min trained before`,
    );
    const reached = Ema.warmupSteps(tp.ema_decay);
    if (tp.ema_warmup === 'inverse' && reached > tp.num_steps)
      console.log(
        `note: with ema_warmup 'inverse' the EMA decay reaches ${tp.ema_decay} only at step ${reached} of ${tp.num_steps}; "ema_warmup": "none" averages with it from the start`,
      );
  }
  console.log(
    `UNet: ${unet.numParameters().toLocaleString('en')} parameters; ${cfg.diffusion_params.objective} objective; batch ${tp.batch_size}`,
  );

  // The batch is split between threads, each with a copy of the model (core/parallel/).
  const threads = flags.threads || defaultThreads(flags.backend);
  const parallel = await DataParallel.start(unet, cfg, { threads, backend: flags.backend });
  console.log(parallel.description);
  const objective = objectiveOf(cfg);
  const save = () => saveCheckpoint(ckptPath, { model: unet, ema: emaNet, optimizer, config: cfg, state });
  let interrupted = false;
  const onSigint = () => (interrupted = true);
  process.on('SIGINT', onSigint);
  const log = out.path('train-log.csv');
  if (state.step === 0) out.writeFile('train-log.csv', 'step,images,seconds,loss,lr\n');
  else if (existsSync(log)) {
    // steps logged after the checkpoint (a crash or a kill between saves) will be run again
    const rows = readFileSync(log, 'utf8').trim().split('\n');
    out.writeFile(
      'train-log.csv',
      rows.filter((r, i) => i === 0 || Number(r.split(',')[0]) <= state.step).join('\n') + '\n',
    );
  }
  const budget = flags.minutes > 0 ? flags.minutes * 60 : Infinity;
  const total = tp.num_steps;
  const bar = new Progress(total - state.step, 'train', { quiet: flags.quiet, unit: 'step' });
  let smooth = NaN;
  let lastCkpt = state.seconds;
  let nextSnapshot =
    flags['snapshot-minutes'] > 0
      ? (Math.floor(state.seconds / 60 / flags['snapshot-minutes']) + 1) * flags['snapshot-minutes'] * 60
      : Infinity;

  // Training: every step draws its batch, timesteps and noise from a generator seeded by (seed, step),
  // so a resumed run continues exactly as an uninterrupted one would.
  while (state.step < total && state.seconds < budget) {
    const t0 = performance.now();
    const rng = new Rng(`${flags.seed}/${state.step}`);
    const idx = Array.from({ length: tp.batch_size }, () => rng.int(0, train.count));
    const x0 = new Tensor(new Float32Array(idx.length * PIXELS), [idx.length, 1, 28, 28]);
    idx.forEach((i, k) => x0.data.set(data.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS));
    const warm = tp.warmup_steps > 0 ? Math.min(1, (state.step + 1) / tp.warmup_steps) : 1;
    optimizer.lr = warm * (tp.lr_schedule === 'cosine' ? cosineLr(tp.lr, state.step, total) : tp.lr);
    const value = await parallel.lossAndGrad(x0, objective.draw(x0, rng));
    if (!Number.isFinite(value)) {
      throw new Error(
        `the loss became ${value} at step ${state.step}; stopping. The last good checkpoint is kept${existsSync(ckptPath) ? ` at ${ckptPath}` : ' (none was written yet)'}`,
      );
    }
    optimizer.step();
    ema.update(state.step);
    state = {
      step: state.step + 1,
      images: state.images + tp.batch_size,
      seconds: state.seconds + (performance.now() - t0) / 1000,
    };
    smooth = Number.isNaN(smooth) ? value : 0.98 * smooth + 0.02 * value;
    appendFileSync(
      log,
      `${state.step},${state.images},${state.seconds.toFixed(2)},${value.toPrecision(6)},${optimizer.lr.toPrecision(4)}\n`,
    );
    bar.tick(
      1,
      `loss ${smooth.toFixed(4)} ${(tp.batch_size / ((performance.now() - t0) / 1000)).toFixed(1)} img/s`,
    );
    if (state.seconds - lastCkpt >= tp.ckpt_every_seconds) {
      save();
      lastCkpt = state.seconds;
    }
    if (state.seconds >= nextSnapshot) {
      const minutes = Math.round(nextSnapshot / 60);
      saveCheckpoint(out.path(`snapshot-${String(minutes).padStart(3, '0')}min.safetensors`), {
        ema: emaNet,
        config: cfg,
        state,
      });
      nextSnapshot += flags['snapshot-minutes'] * 60;
    }
    await new Promise((resolve) => setImmediate(resolve)); // let Ctrl-C be noticed between steps
    if (interrupted) {
      save();
      console.log(`\ninterrupted at step ${state.step}: saved ${ckptPath}; run the same command to resume`);
      process.exit(130);
    }
  }
  process.off('SIGINT', onSigint);
  parallel.close();
  save();
  out.record(ckptPath);
  // the EMA weights alone (a quarter of the checkpoint): what `sample` needs, and what a release ships
  saveCheckpoint(out.record(out.path('ema.safetensors')), { ema: emaNet, config: cfg, state });
  out.record(log);
  console.log(`trained ${state.step} steps, ${state.images} images, ${(state.seconds / 60).toFixed(1)} min`);
  if (!flags['no-sample']) {
    const { images } = drawSamples(emaNet, cfg, {
      sampler: tp.sampler,
      steps: tp.sample_steps,
      count: tp.num_samples,
      seed: flags.seed,
      quiet: flags.quiet,
    });
    writeSamples(out, images, tp.num_samples, cfg, tp.num_grid_rows);
    const scores = judgeImages(images, tp.num_samples);
    out.writeJson('scores.json', {
      ...scores,
      sampler: tp.sampler,
      steps: tp.sample_steps,
      trainedSteps: state.step,
      trainedImages: state.images,
      trainedMinutes: state.seconds / 60,
    });
    console.log(`judge: ${fmtScores(scores)}`);
  }
  console.log(out.report());
}

// ---- sample ----

async function sample(argv: string[]) {
  const flags = parseFlags(
    'stage:mnist -- sample',
    {
      checkpoint: {
        type: 'string',
        default: 'stages/mnist/default.safetensors',
        help: 'checkpoint to sample from',
      },
      n: { type: 'int', default: 100, min: 1, help: 'number of samples' },
      steps: { type: 'int', default: 50, min: 1, help: 'sampler steps (ddim, heun)' },
      sampler: { type: 'string', default: 'ddim', help: 'ddim | ddpm | heun' },
      seed: { type: 'int', default: 0, help: 'random seed' },
      'clip-x0': { type: 'boolean', help: 'clamp each x0 prediction to [-1, 1] before the step' },
      out: { type: 'string', default: 'out/mnist-samples', help: 'output folder' },
      quiet: { type: 'boolean', help: 'no progress bar' },
      ...BACKEND_FLAG,
    },
    argv,
  );
  if (!(IMAGE_SAMPLERS as readonly string[]).includes(flags.sampler))
    throw new UsageError(`--sampler must be ddim, ddpm or heun; got '${flags.sampler}'`);
  const sampler = flags.sampler as ImageSampler;
  const ckpt = readCheckpoint(flags.checkpoint);
  const cfg = validateConfig(ckpt.config);
  console.log(await useBackend(flags.backend));
  const emaNet = new UNet(cfg.model_params, new Rng(0));
  restoreCheckpoint(ckpt, flags.checkpoint, { ema: emaNet });
  const out = new OutputDir(flags.out);
  const { images, snapshots } = drawSamples(emaNet, cfg, {
    sampler,
    steps: flags.steps,
    count: flags.n,
    seed: flags.seed,
    quiet: flags.quiet,
    clipX0: flags['clip-x0'],
  });
  const rows = Math.max(1, Math.round(Math.sqrt(Math.min(flags.n, 100))));
  writeSamples(out, images, flags.n, cfg, rows);
  if (sampler === 'ddpm') {
    // the reference's figure: x_t and the x0 prediction at t = 1000, 800, ..., 0
    snapshots.forEach(({ t, xt, x0 }) => {
      const tag = String(t).padStart(4, '0');
      saveGrid(out, `xt_t${tag}.png`, xt, cfg, rows, `x_t at t = ${t}`);
      saveGrid(out, `x0_t${tag}.png`, x0, cfg, rows, `predicted x0 at t = ${t}`);
    });
  }
  console.log(out.report());
}

// ---- judge ----

async function judge(argv: string[]) {
  const spec = { ...BACKEND_FLAG } as const;
  const flags = parseFlags('stage:mnist -- judge', spec, argv, 'DIR');
  if (flags.positionals.length !== 1) {
    const got = flags.positionals.length;
    throw new UsageError(
      `judge needs one folder holding samples.safetensors, got ${got} argument${got === 1 ? '' : 's'}`,
      usageLine('stage:mnist -- judge', spec, 'DIR'),
    );
  }
  const dir = flags.positionals[0];
  const path = join(dir, 'samples.safetensors');
  const samples = readSafetensors(path).tensors.get('samples');
  if (
    !samples ||
    samples.ndim !== 4 ||
    samples.shape[1] !== 1 ||
    samples.shape[2] !== 28 ||
    samples.shape[3] !== 28
  ) {
    throw new Error(`${path}: needs a tensor 'samples' of shape [N, 1, 28, 28]`);
  }
  await useBackend(flags.backend); // the judge's features of 2,000 real digits are most of the work
  const scores = judgeImages(samples.data as Float32Array, samples.shape[0]);
  mkdirSync(dir, { recursive: true });
  new OutputDir(dir).writeJson('scores.json', scores);
  console.log(fmtScores(scores));
}

runMain(async () => {
  const argv = process.argv.slice(2);
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'train';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  if (command === 'train') await train(rest);
  else if (command === 'sample') await sample(rest);
  else if (command === 'judge') await judge(rest);
  else
    throw new UsageError(
      `unknown command '${command}' (train, sample, judge)`,
      'usage: npm run stage:mnist -- [train|sample|judge] [flags]',
    );
});
