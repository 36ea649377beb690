// Stage 3: DDPM (Ho et al. 2020) on the 1-D data of stage 1, y ~ N(1, 0.01^2).
// T = 1000 noise steps with beta rising linearly from 1e-4 to 0.02. Training noises a clean sample to a
// random step t in one jump and teaches one network, told t by a sinusoidal embedding, to predict the
// noise eps it added. Sampling starts from N(0, 1) and takes all T ancestral steps back, each a draw
// from q(x_{t-1} | x_t, x_0) around the x_0 the predicted noise implies (no noise at the last step).
// --beta-schedule cosine and --prediction x0|v swap in the other schedule and targets of stage:schedules.
import { Adam, cosineLr, mseLoss, noGrad } from '../core/index.ts';
import { DdpmSchedule } from '../core/diffusion/ddpm.ts';
import { TARGET_NAMES } from '../core/diffusion/targets.ts';
import { exactDenoiser, gaussian, sampleMixture } from '../core/diffusion/mixture.ts';
import { DdpmMlp } from '../core/diffusion/nets.ts';
import { predictionDenoiser } from '../core/diffusion/objectives.ts';
import {
  AncestralScheduler,
  sampleLoop,
  sampleTrajectory,
  scheduleLevels,
} from '../core/diffusion/schedulers.ts';
import { runMain } from './lib/cli.ts';
import { DDPM_FLAGS, ddpmFlagValues, VARIANCE_FLAG, varianceFlagValue, T_FLAG } from './lib/flags.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { sampleMean, sampleStd } from '../core/stats.ts';
import { lossChart } from '../plots/index.ts';
import { reverseHistograms, scheduleChart } from './lib/toy-plots.ts';
import { animateHistograms } from '../plots/terminal.ts';

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup(
    'stage:ddpm',
    { steps: 12000, out: 'out/ddpm' },
    {
      ...T_FLAG,
      ...VARIANCE_FLAG,
      ...DDPM_FLAGS,
    },
  );
  const variance = varianceFlagValue(flags, 'stage:ddpm');
  const { betaSchedule, prediction } = ddpmFlagValues(flags, 'stage:ddpm');

  // Data and schedule. On the linear schedule alphaBar_t falls from 0.9999 (noise std 0.01: as wide as
  // the data itself) to 4e-5 (pure noise). Timesteps are 0-based, t = 0 .. T-1 (see core/diffusion/ddpm.ts).
  const sigmaData = 0.01;
  const data = gaussian([1], sigmaData);
  const schedule = DdpmSchedule.of(betaSchedule, flags.T, 1e-4, 0.02);

  // Training (Algorithm 1): x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps; loss |eps - eps_theta(x_t, t)|^2
  // (or the same with x0 or v = sqrt(alphaBar_t) eps - sqrt(1 - alphaBar_t) x_0 as the target).
  const model = new DdpmMlp(schedule, { dim: 1, width: 32, sigmaData, prediction }, rng);
  const optimizer = new Adam(model.parameters(), { lr: 3e-3 });
  const batch = 32;
  const losses: number[] = [];
  const bar = new Progress(flags.steps, 'train', { quiet: flags.quiet });
  for (let step = 0; step < flags.steps; step++) {
    optimizer.lr = cosineLr(3e-3, step, flags.steps);
    const x0 = sampleMixture(data, batch, rng);
    const t = schedule.sampleTimesteps(batch, rng);
    const eps = rng.randn([batch, 1]);
    const loss = mseLoss(
      model.forward(schedule.addNoise(x0, eps, t), t),
      schedule.target(prediction, x0, eps, t),
    );
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    losses.push(loss.item());
    bar.tick(1, `loss ${loss.item().toFixed(4)}`);
  }

  // Sampling (Algorithm 2): the ancestral scheduler visits all T timesteps, one batched step each for
  // all 1000 points, stepping towards the x0 the network's output implies; a few x_t are kept to plot.
  const count = 1000;
  const keep = [schedule.T - 1, 600, 300, 150, 80, 40, 20, 10, 5, 2, 0].filter((t) => t < schedule.T);
  const scheduler = new AncestralScheduler(scheduleLevels(schedule), { variance }).setTimesteps(schedule.T);
  const denoise = predictionDenoiser((xt, t) => model.forward(xt, t), schedule, prediction);
  const sampleBar = new Progress(schedule.T, 'sample', { quiet: flags.quiet, unit: 'steps' });
  const start = scheduler.initNoise([count, 1], rng);
  const { sample: x, snapshots } = noGrad(() =>
    sampleTrajectory(scheduler, denoise, start, rng, keep, () => sampleBar.tick()),
  );
  const [mean, std] = [sampleMean(x.data), sampleStd(x.data)];

  // The same sampler with the exact E[x0 | x_t] instead of the network: the best any network can do.
  // For this data its spread is set by the sampler: the last step returns the mean of x given x_0,
  // whose noise is as wide as the data, and betaTilde < beta in the steps before shrinks it further.
  const ideal = sampleLoop(scheduler, exactDenoiser(data), scheduler.initNoise([count, 1], rng), rng);
  const exact = { mean: sampleMean(ideal.data), std: sampleStd(ideal.data) };

  if (!flags.quiet) {
    const noise = [...snapshots.map((s) => schedule.noise(s.t)), 0];
    await animateHistograms([...snapshots.map((s) => s.x.data), x.data], noise, { lo: -3, hi: 3, target: 1 });
  }

  // Files: samples, summary, loss, the schedule, and the samples at several t against the exact q(x_t).
  const files = out();
  files.writeCsv('samples.csv', ['x'], [x.data]);
  const seconds = secondsSince(started);
  const goal = { mean: 1, std: sigmaData };
  files.writeJson('summary.json', {
    ...{ mean, std, goal, exactDenoiser: exact, variance, betaSchedule, prediction, T: schedule.T },
    ...{ seed: flags.seed, steps: flags.steps, seconds },
  });
  lossChart(losses, `Training loss (MSE on ${TARGET_NAMES[prediction]})`).save(
    files.record(files.path('loss.png')),
  );
  scheduleChart(schedule, betaSchedule === 'cosine' ? 'Cosine' : 'Linear').save(
    files.record(files.path('schedule.png')),
  );
  const title = `Reverse samples at several t vs the exact q(x_t) (${betaSchedule}, ${prediction}, variance ${variance})`;
  reverseHistograms(schedule, data, snapshots, x, title).save(files.record(files.path('levels.png')));

  console.log(
    `samples: mean ${mean.toFixed(4)} std ${std.toFixed(4)} | with the exact denoiser: mean ${exact.mean.toFixed(4)} std ${exact.std.toFixed(4)} | goal: mean 1.0000 std 0.0100 | ${seconds.toFixed(1)}s`,
  );
  console.log(files.report());
});
