// Stage 3b: DDPM with one small network per noise level instead of one network told t.
// The data, schedule and sampler are those of stage:ddpm; only the model changes: T independent
// two-layer MLPs, net t trained only on samples noised to step t. Nothing is shared between levels,
// so no net needs a time input, but each one sees only 1/T of the training data.
// --beta-schedule and --prediction as in stage:ddpm.
import { Adam, cosineLr, mseLoss, noGrad, reshape } from '../core/index.ts';
import { DdpmSchedule } from '../core/diffusion/ddpm.ts';
import { predictionDenoiser } from '../core/diffusion/objectives.ts';
import {
  AncestralScheduler,
  sampleLoop,
  sampleTrajectory,
  scheduleLevels,
} from '../core/diffusion/schedulers.ts';
import { DDPM_FLAGS, ddpmFlagValues, VARIANCE_FLAG, varianceFlagValue, T_FLAG } from './lib/flags.ts';
import { TARGET_NAMES } from '../core/diffusion/targets.ts';
import { exactDenoiser, gaussian, sampleMixture } from '../core/diffusion/mixture.ts';
import { LevelMlps } from '../core/diffusion/nets.ts';
import { runMain } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { sampleMean, sampleStd } from '../core/stats.ts';
import { lossChart } from '../plots/index.ts';
import { reverseHistograms } from './lib/toy-plots.ts';
import { animateHistograms } from '../plots/terminal.ts';

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup(
    'stage:ddpm-levels',
    { steps: 600, out: 'out/ddpm-levels' },
    {
      T: { ...T_FLAG.T, help: 'number of noise steps, and of networks' },
      ...VARIANCE_FLAG,
      ...DDPM_FLAGS,
    },
  );
  const variance = varianceFlagValue(flags, 'stage:ddpm-levels');
  const { betaSchedule, prediction } = ddpmFlagValues(flags, 'stage:ddpm-levels');

  const sigmaData = 0.01;
  const data = gaussian([1], sigmaData);
  const schedule = DdpmSchedule.of(betaSchedule, flags.T, 1e-4, 0.02);
  const T = schedule.T;

  // The model: net t sees x_t centred and scaled as if the data were N(mu, sigma_data^2). Near t = 0
  // x_t is 1 +- 0.014, an offset seventy times its spread, and a net alone with its own few samples
  // learnt that offset hopelessly slowly; so mu is measured from the training data first (a shared
  // network learns it from all levels at once, see stage:ddpm).
  const muData = sampleMean(sampleMixture(data, 10000, rng).data);
  const nets = new LevelMlps(schedule, { dim: 1, width: 16, sigmaData, muData: [muData], prediction }, rng);
  const optimizer = new Adam(nets.parameters(), { lr: 1e-2 });

  // Training: every step gives every level 8 fresh samples of its own, so each net gets a gradient
  // each step (4800 samples each over the 600 steps); the T nets run at once as one batched computation.
  const perLevel = 8;
  const levels = Array.from({ length: T }, (_, t) => t);
  const losses: number[] = [];
  const bar = new Progress(flags.steps, 'train', { quiet: flags.quiet });
  for (let step = 0; step < flags.steps; step++) {
    optimizer.lr = cosineLr(1e-2, step, flags.steps);
    const x0 = reshape(sampleMixture(data, T * perLevel, rng), [T, perLevel, 1]);
    const eps = rng.randn([T, perLevel, 1]);
    const target = schedule.target(prediction, x0, eps, levels);
    const loss = mseLoss(nets.forwardAll(schedule.addNoise(x0, eps, levels)), target);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    losses.push(loss.item());
    bar.tick(1, `loss ${loss.item().toFixed(4)}`);
  }

  // Sampling: as in stage:ddpm, with net t making the prediction at step t.
  const count = 1000;
  const keep = [T - 1, 600, 300, 150, 80, 40, 20, 10, 5, 2, 0].filter((t) => t < T);
  const sampleBar = new Progress(T, 'sample', { quiet: flags.quiet, unit: 'steps' });
  const scheduler = new AncestralScheduler(scheduleLevels(schedule), { variance }).setTimesteps(T);
  const denoise = predictionDenoiser((xt, t) => nets.forward(xt, t), schedule, prediction);
  const start = scheduler.initNoise([count, 1], rng);
  const { sample: x, snapshots } = noGrad(() =>
    sampleTrajectory(scheduler, denoise, start, rng, keep, () => sampleBar.tick()),
  );
  const [mean, std] = [sampleMean(x.data), sampleStd(x.data)];
  const ideal = sampleLoop(scheduler, exactDenoiser(data), scheduler.initNoise([count, 1], rng), rng);
  const exact = { mean: sampleMean(ideal.data), std: sampleStd(ideal.data) };

  if (!flags.quiet) {
    const noise = [...snapshots.map((s) => schedule.noise(s.t)), 0];
    await animateHistograms([...snapshots.map((s) => s.x.data), x.data], noise, { lo: -3, hi: 3, target: 1 });
  }

  const files = out();
  files.writeCsv('samples.csv', ['x'], [x.data]);
  const seconds = secondsSince(started);
  const goal = { mean: 1, std: sigmaData };
  files.writeJson('summary.json', {
    ...{ mean, std, goal, exactDenoiser: exact, variance, betaSchedule, prediction, T, networks: T, muData },
    ...{ seed: flags.seed, steps: flags.steps, seconds },
  });
  lossChart(losses, `Training loss (MSE on ${TARGET_NAMES[prediction]}, averaged over the ${T} nets)`).save(
    files.record(files.path('loss.png')),
  );
  const title = `One net per level: reverse samples at several t vs the exact q(x_t)`;
  reverseHistograms(schedule, data, snapshots, x, title).save(files.record(files.path('levels.png')));

  console.log(
    `samples: mean ${mean.toFixed(4)} std ${std.toFixed(4)} | with the exact denoiser: mean ${exact.mean.toFixed(4)} std ${exact.std.toFixed(4)} | goal: mean 1.0000 std 0.0100 | ${seconds.toFixed(1)}s`,
  );
  console.log(files.report());
});
