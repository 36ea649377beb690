// Stage 3d: how the density evolves through the noise levels, and how training closes the gap.
// For Gaussian-mixture data the noised marginal is known exactly: q(x_t) is the mixture with means
// sqrt(alphaBar_t) mu_k and variances alphaBar_t s_k^2 + 1 - alphaBar_t. At several t we compare three
// things: data noised forward in one jump, the model's reverse samples, and that exact q(x_t). The
// distance from the reverse samples to q(x_t) (1-Wasserstein) is measured at checkpoints during
// training, so the reader sees it shrink, and next to it the distance 1000 exact samples would have.
// --beta-schedule and --prediction as in stage:ddpm.
import { Adam, cosineLr, mseLoss, noGrad } from '../core/index.ts';
import { DdpmSchedule } from '../core/diffusion/ddpm.ts';
import { predictionDenoiser } from '../core/diffusion/objectives.ts';
import { AncestralScheduler, sampleTrajectory, scheduleLevels } from '../core/diffusion/schedulers.ts';
import { DDPM_FLAGS, ddpmFlagValues, T_FLAG } from './lib/flags.ts';
import { TARGET_NAMES } from '../core/diffusion/targets.ts';
import { axisMarginal, gaussian, sampleMixture, type GaussianMixture } from '../core/diffusion/mixture.ts';
import { DdpmMlp } from '../core/diffusion/nets.ts';
import { runMain, UsageError } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { densityCurve, wasserstein1 } from '../core/stats.ts';
import { histogramChart, lineChart, lossChart, panelGrid } from '../plots/index.ts';

const DATA: Record<string, { mixture: GaussianMixture; about: string }> = {
  bimodal: {
    mixture: [
      { weight: 0.3, mean: [-1], std: 0.1 },
      { weight: 0.7, mean: [1], std: 0.1 },
    ],
    about: '0.3 N(-1, 0.1^2) + 0.7 N(1, 0.1^2)',
  },
  gaussian: { mixture: gaussian([1], 0.01), about: 'N(1, 0.01^2), the data of stage 1' },
};

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup(
    'stage:ddpm-detailed',
    { steps: 8000, out: 'out/ddpm-detailed' },
    {
      ...T_FLAG,
      data: { type: 'string', default: 'bimodal', help: `the data: ${Object.keys(DATA).join(' or ')}` },
      checkpoints: {
        type: 'int',
        default: 4,
        min: 1,
        max: 20,
        help: 'how many times to measure: ... steps/16, steps/4, steps',
      },
      ...DDPM_FLAGS,
    },
  );
  const { betaSchedule, prediction } = ddpmFlagValues(flags, 'stage:ddpm-detailed');
  const chosen = DATA[flags.data];
  if (!chosen)
    throw new UsageError(`--data must be one of ${Object.keys(DATA).join(', ')}, got '${flags.data}'`);
  const data = chosen.mixture;
  const schedule = DdpmSchedule.of(betaSchedule, flags.T, 1e-4, 0.02);
  const T = schedule.T;
  const sigmaData = Math.min(...data.map((c) => c.std)); // the finest detail: each component's spread

  // The timesteps we watch, and at each the exact density and the distance 1000 exact samples have
  // from it (the floor: no model can be judged more precisely than that with 1000 samples).
  const count = 1000;
  const watched = [600, 300, 150, 80, 40, 20, 5, 0].filter((t) => t < T);
  const exact = watched.map((t) => axisMarginal(schedule.marginal(data, t)));
  const forward = watched.map((t) => {
    const x0 = sampleMixture(data, count, rng);
    return schedule.addNoise(x0, rng.randn([count, 1]), t).data;
  });
  const floor = forward.map((xs, i) => wasserstein1(xs, exact[i]));
  const dataFloor = wasserstein1(sampleMixture(data, count, rng).data, axisMarginal(data));

  // Training as in stage:ddpm, pausing at checkpoints (steps/64, steps/16, steps/4, steps by default)
  // to sample 1000 points and measure the distance at every watched t.
  const model = new DdpmMlp(schedule, { dim: 1, width: 32, sigmaData, prediction }, rng);
  const scheduler = new AncestralScheduler(scheduleLevels(schedule)).setTimesteps(T);
  const denoise = predictionDenoiser((xt, t) => model.forward(xt, t), schedule, prediction);
  const optimizer = new Adam(model.parameters(), { lr: 3e-3 });
  const batch = 32;
  const checkpoints = Array.from({ length: flags.checkpoints }, (_, k) =>
    Math.max(1, Math.round(flags.steps / 4 ** (flags.checkpoints - 1 - k))),
  );
  const losses: number[] = [];
  const distances: number[][] = [];
  const sampleDistances: number[] = [];
  let reverse: Float32Array[] = [];
  let sample: ArrayLike<number> = [];
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
    if (checkpoints.includes(step + 1)) {
      const start = scheduler.initNoise([count, 1], rng);
      const run = noGrad(() => sampleTrajectory(scheduler, denoise, start, rng, watched));
      reverse = run.snapshots.map((s) => s.x.data as Float32Array);
      sample = run.sample.data;
      distances.push(reverse.map((xs, i) => wasserstein1(xs, exact[i])));
      sampleDistances.push(wasserstein1(sample, axisMarginal(data)));
    }
  }

  // The table: one row per checkpoint, one column per watched t.
  const header = [
    'step'.padStart(7),
    ...watched.map((t) => `t=${t}`.padStart(9)),
    'samples'.padStart(9),
  ].join('');
  const row = (label: string, values: number[]) =>
    [label.padStart(7), ...values.map((v) => v.toPrecision(3).padStart(9))].join('');
  console.log(`1-Wasserstein distance from the reverse samples to the exact q(x_t), data ${chosen.about}:`);
  console.log(header);
  checkpoints.forEach((s, k) => console.log(row(String(s), [...distances[k], sampleDistances[k]])));
  console.log(row('floor', [...floor, dataFloor]) + '   <- what 1000 exact samples score');

  // Files: the reverse samples (x_{-1}, the model's output), summary, loss, the distances against
  // training steps, and at each watched t the forward, reverse and exact densities.
  const files = out();
  files.writeCsv('samples.csv', ['x'], [sample]);
  const seconds = secondsSince(started);
  files.writeJson('summary.json', {
    ...{ data: flags.data, about: chosen.about, betaSchedule, prediction, T, watched, checkpoints },
    ...{ wasserstein1: distances, floor },
    ...{ samplesWasserstein1: sampleDistances, samplesFloor: dataFloor },
    ...{ seed: flags.seed, steps: flags.steps, seconds },
  });
  lossChart(losses, `Training loss (MSE on ${TARGET_NAMES[prediction]})`).save(
    files.record(files.path('loss.png')),
  );
  lineChart({
    title: 'Distance from the reverse samples to the exact q(x_t), during training',
    xLabel: 'training step',
    yLabel: '1-Wasserstein distance',
    logX: true,
    logY: true,
    series: watched.map((t, i) => ({ name: `t = ${t}`, x: checkpoints, y: distances.map((d) => d[i]) })),
  }).save(files.record(files.path('distance.png')));
  const panels = watched.map((t, i) => {
    const density = densityCurve(exact[i]);
    return histogramChart({
      title: `t = ${t}: W1 ${distances[distances.length - 1][i].toPrecision(2)}, floor ${floor[i].toPrecision(2)}`,
      xLabel: 'x_t',
      samples: reverse[i],
      name: 'reverse samples',
      extraHistograms: [{ name: 'data noised forward', samples: forward[i] }],
      curves: [{ name: 'exact q(x_t)', x: density.x, y: density.y }],
      range: density.range,
      bins: 40,
      legend: i === 0,
      width: 380,
      height: 270,
    });
  });
  panelGrid(panels, { cols: 4, title: `The density through the noise levels: ${chosen.about}` }).save(
    files.record(files.path('detailed.png')),
  );

  console.log(`${seconds.toFixed(1)}s`);
  console.log(files.report());
});
