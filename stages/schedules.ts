// Stage 4: the two design choices the earlier stages fixed, side by side: how much noise each timestep
// adds (the schedule), and what the network predicts (the target). One function per section:
//   1. compareSchedules: a_t = sqrt(alphaBar_t) and s_t = sqrt(1 - alphaBar_t) against t for six
//      schedules and EDM's levels, and how much signal each leaves at t = T;
//   2. noiseOneDigit: one MNIST digit noised under the linear and the cosine schedule;
//   3. targetsInOneCurrency: eps, x0 and v counted in one currency, the error in x0: where each
//      objective spends its loss, and the smallest loss each target can reach on the four spikes;
//   4. mnistSnr: the signal-to-noise ratio of MNIST scaled to [0, 1] and to [-1, 1];
//   5. trainEachTarget, x0Errors: stage:ddpm-multimodal's network trained to predict each of eps, x0
//      and v, and why x0 fails.
import { Adam, cosineLr, mseLoss, noGrad, Rng, Tensor } from '../core/index.ts';
import { DdpmSchedule } from '../core/diffusion/ddpm.ts';
import { EdmSchedule, InterpolationSchedule, type NoiseSchedule } from '../core/diffusion/schedule.ts';
import { lossWeight, PREDICTIONS, type Prediction } from '../core/diffusion/targets.ts';
import {
  bestTargetLoss,
  exactDenoiser,
  sampleMixture,
  squareSpikes,
  type GaussianMixture,
} from '../core/diffusion/mixture.ts';
import { DdpmMlp } from '../core/diffusion/nets.ts';
import { predictionDenoiser } from '../core/diffusion/objectives.ts';
import { AncestralScheduler, sampleLoop, scheduleLevels } from '../core/diffusion/schedulers.ts';
import { loadAllDigits, PIXELS, SIDE, type Digits } from '../core/data/mnist.ts';
import { modeStats, sampleMean } from '../core/stats.ts';
import { imageGrid, lineChart } from '../plots/index.ts';
import { scatterLevels } from '../plots/scatter-levels.ts';
import { scheduleCurves, targetCharts, TARGET_COLORS } from '../plots/schedules.ts';
import { runMain } from './lib/cli.ts';
import type { OutputDir } from './lib/output.ts';
import { Progress } from './lib/progress.ts';
import { T_FLAG } from './lib/flags.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { column, rings } from './lib/toy-plots.ts';

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup(
    'stage:schedules',
    { steps: 8000, out: 'out/schedules' },
    T_FLAG,
  );
  const T = flags.T;
  const files = out();
  const linear = DdpmSchedule.linear(T, 1e-4, 0.02);
  const cosine = DdpmSchedule.cosine(T);
  const table = compareSchedules(linear, cosine, files);
  const digits = loadAllDigits();
  noiseOneDigit(digits, linear, cosine, rng, files);
  const spikes = squareSpikes(0.01);
  const { watched, best } = targetsInOneCurrency(linear, spikes, rng, files);
  const variance01 = mnistSnr(digits, linear, cosine, files);
  const { runs, judged } = trainEachTarget(linear, spikes, flags, files);
  const x0Error = x0Errors(runs, linear, spikes, watched, best, rng, files);

  const seconds = secondsSince(started);
  files.writeJson('summary.json', {
    ...{ T, schedules: table, mnistPixelVariance01: variance01, experiment: judged },
    ...{ x0Error: { t: watched, leastPossible: x0Error.leastX0 } },
    ...{ x0ErrorByNet: Object.fromEntries(x0Error.byNet.map((e) => [e.name, e.rmse])) },
    ...{ seed: flags.seed, steps: flags.steps, seconds },
  });
  console.log(`\n${seconds.toFixed(1)}s`);
  console.log(files.report());
});

/**
 * 1. The schedules. DDPM's linear betas; a larger start; Nichol & Dhariwal's cosine; two beta ranges
 * that end too low and too high; the straight line from data to noise; and EDM's levels in their
 * variance-preserving view, x_t = (x0 + sigma_t eps) / sqrt(1 + sigma_t^2). Plots a_t, s_t and the SNR,
 * and prints what is left of the data at the last timestep and where signal and noise are equal.
 */
function compareSchedules(linear: DdpmSchedule, cosine: DdpmSchedule, files: OutputDir) {
  const T = linear.T;
  const ts = Array.from({ length: T }, (_, t) => t);
  const schedules: { name: string; schedule: NoiseSchedule; vpView?: boolean; dashed?: boolean }[] = [
    { name: 'linear 1e-4..0.02 (DDPM)', schedule: linear },
    { name: 'linear 1e-3..0.02', schedule: DdpmSchedule.linear(T, 1e-3, 0.02) },
    { name: 'cosine (s = 0.008)', schedule: cosine },
    { name: 'linear 1e-3..3e-3 (low end)', schedule: DdpmSchedule.linear(T, 1e-3, 3e-3) },
    { name: 'linear 1e-3..0.1 (high end)', schedule: DdpmSchedule.linear(T, 1e-3, 0.1) },
    { name: 'interpolation (1 - t/T, t/T)', schedule: new InterpolationSchedule(T), dashed: true },
    { name: 'EDM sigma 0.002..80 (VP view)', schedule: new EdmSchedule(T), vpView: true, dashed: true },
  ];
  // a_t and s_t as plotted: EDM's a = 1, s = sigma becomes 1 / sqrt(1 + sigma^2), sigma / sqrt(1 + sigma^2)
  const coefficients = schedules.map(({ schedule, vpView }) => ({
    signal: ts.map((t) => (vpView ? Math.sqrt(schedule.alphaBarAt(t)) : schedule.signal(t))),
    noise: ts.map((t) => (vpView ? Math.sqrt(1 - schedule.alphaBarAt(t)) : schedule.noise(t))),
  }));
  scheduleCurves(
    schedules.map((s, i) => ({ name: s.name, ...coefficients[i], dashed: s.dashed })),
    `Noise schedules, T = ${T}: x_t = a_t x0 + s_t eps`,
  ).save(files.record(files.path('schedules.png')));

  const crossing = (schedule: NoiseSchedule) => ts.find((t) => schedule.snr(t) < 1) ?? NaN;
  const table = schedules.map(({ name, schedule }, i) => ({
    name,
    alphaBarT: schedule.alphaBarAt(T - 1),
    signalT: coefficients[i].signal[T - 1],
    snrBelow1: crossing(schedule),
  }));
  const widths = [32, 12, 11, 18];
  console.log(
    `\nat t = T (our t = ${T - 1}); alphaBar_T = a^2 / (a^2 + s^2) is the share of x_T's variance that is signal`,
  );
  console.log(row(['schedule', 'alphaBar_T', 'a_T', 'SNR < 1 from t ='], widths));
  for (const r of table) {
    const cells = [r.name, r.alphaBarT.toExponential(2), r.signalT.toPrecision(3), String(r.snrBelow1)];
    console.log(row(cells, widths));
  }
  return table;
}

/** 2. One digit, noised at eight evenly spaced t under each schedule, with the same eps, in [-1, 1]. */
function noiseOneDigit(
  digits: Digits,
  linear: DdpmSchedule,
  cosine: DdpmSchedule,
  rng: Rng,
  files: OutputDir,
) {
  const T = linear.T;
  const pick = rng.int(0, digits.count);
  const x0 = new Tensor(
    Float32Array.from(digits.images.subarray(pick * PIXELS, (pick + 1) * PIXELS), (v) => 2 * v - 1),
    [1, 1, SIDE, SIDE],
  );
  const eps = rng.randn(x0.shape);
  const shown = Array.from({ length: 8 }, (_, k) => Math.round((k * (T - 1)) / 7));
  const rows = [linear, cosine].map((s) => shown.map((t) => s.addNoise(x0, eps, t).data));
  imageGrid({
    data: Float32Array.from(rows.flat().flatMap((img) => Array.from(img))),
    n: 16,
    channels: 1,
    height: SIDE,
    width: SIDE,
    nrow: 8,
    range: [-1, 1],
    scale: 3,
    rowLabels: ['linear', 'cosine'],
    colLabels: shown.map((t) => `t = ${t}`),
    title: `A digit (label ${digits.labels[pick]}) noised to x_t, same eps in every image; rows: schedule, columns: t`,
  }).save(files.record(files.path('digit.png')));
}

/**
 * 3. The targets in one currency. An output error e moves the x0 estimate by e s/a (eps), e (x0) or
 * e s (v), so each objective weights the x0 error by w_t = SNR_t, 1 or 1 + SNR_t (targets.ts). Next to
 * that, on the four spikes of stage:multimodal, the least loss each target allows at each t, from the
 * exact posterior: eps cannot be told from the data's own spread once s_t is as small as it (low
 * noise), x0 cannot be told at all once the signal is gone (high noise), and v is as hard at both ends
 * as each of the others at its own.
 */
function targetsInOneCurrency(linear: DdpmSchedule, spikes: GaussianMixture, rng: Rng, files: OutputDir) {
  const T = linear.T;
  const watched = [...new Set(Array.from({ length: 40 }, (_, k) => Math.round(T ** (k / 39)) - 1))];
  const weights = recordOf((p) => watched.map((t) => lossWeight(p, linear.signal(t), linear.noise(t))));
  const best = watched.map((t) => bestTargetLoss(spikes, linear.signal(t), linear.noise(t), 4000, rng));
  targetCharts(
    watched,
    weights,
    recordOf((p) => best.map((b) => b[p])),
    {
      weights: { eps: 'eps: w = SNR_t', x0: 'x0: w = 1', v: 'v: w = 1 + SNR_t' },
      bestLoss: 'The least loss each target allows (four spikes, std 0.01)',
    },
    `Prediction targets on the linear schedule (T = ${T})`,
  ).save(files.record(files.path('targets.png')));
  return { watched, best };
}

/**
 * 4. The same schedule is a different schedule for differently scaled data: what noise has to drown is
 * the data's variation, so the SNR that matters is a_t^2 Var(x0) / s_t^2, with Var the per-pixel
 * variance over the digits. Scaling [0, 1] to [-1, 1] multiplies it by 4.
 */
function mnistSnr(digits: Digits, linear: DdpmSchedule, cosine: DdpmSchedule, files: OutputDir): number {
  const T = linear.T;
  const ts = Array.from({ length: T }, (_, t) => t);
  let variance01 = 0;
  for (let p = 0; p < PIXELS; p++) {
    let [sum, sq] = [0, 0];
    for (let i = 0; i < digits.count; i++) {
      const v = digits.images[i * PIXELS + p];
      [sum, sq] = [sum + v, sq + v * v];
    }
    variance01 += (sq / digits.count - (sum / digits.count) ** 2) / PIXELS;
  }
  const scalings = [
    { name: '[0, 1]', variance: variance01 },
    { name: '[-1, 1]', variance: 4 * variance01 },
  ];
  const snrSeries = [linear, cosine].flatMap((s, i) =>
    scalings.map((d, j) => ({
      name: `${i === 0 ? 'linear' : 'cosine'}, data in ${d.name} (variance ${d.variance.toFixed(3)})`,
      x: ts,
      y: ts.map((t) => s.snr(t) * d.variance),
      dashed: j === 0,
      color: i === 0 ? ([31, 119, 180] as const) : ([44, 160, 44] as const),
    })),
  );
  lineChart({
    title: "MNIST's signal-to-noise ratio a_t^2 Var(x0) / s_t^2, by scaling",
    xLabel: 'timestep t',
    yLabel: 'SNR (log scale)',
    logY: true,
    series: [
      ...snrSeries,
      { name: 'SNR = 1', x: [0, T - 1], y: [1, 1], color: [120, 120, 120], lineWidth: 1 },
    ],
  }).save(files.record(files.path('snr.png')));
  const snrCrossing = snrSeries.map(
    (s) => `${s.name.replace(/ \(.*/, '')}: t = ${s.y.findIndex((v) => v < 1)}`,
  );
  console.log(`\nMNIST's SNR falls below 1 at\n  ${snrCrossing.join('\n  ')}`);
  return variance01;
}

type Run = { name: string; sample: Tensor; model?: DdpmMlp };

/**
 * 5. The experiment: stage:ddpm-multimodal's network and training loop (linear schedule), once per
 * target, each from the same seed, so every run sees the same initial weights, batches, timesteps and
 * noise. Only the regression target of the loss, and how its output is read when sampling, change.
 * Judged, as in the toy ladder, by the samples near each spike. The network's input c_in x_t is scaled
 * for the spikes' width (sigma_data = 0.01, c_in = 70 at t = 0), which suits eps and v; a fourth run
 * gives the x0 net the plain x_t instead (sigma_data = 1, c_in = 1), so that what belongs to the target
 * and what to that scaling can be told apart.
 */
function trainEachTarget(
  linear: DdpmSchedule,
  spikes: GaussianMixture,
  flags: { seed: number; steps: number; quiet: boolean },
  files: OutputDir,
) {
  const centres = spikes.map((c) => c.mean);
  const count = 1000;
  const configs = [
    ...PREDICTIONS.map((prediction) => ({ name: prediction, prediction, sigmaData: 0.01 })),
    { name: 'x0, c_in 1', prediction: 'x0' as const, sigmaData: 1 },
  ];
  const scheduler = new AncestralScheduler(scheduleLevels(linear)).setTimesteps(linear.T);
  const runs: Run[] = [];
  for (const { name, prediction, sigmaData } of configs) {
    const r = new Rng(`${flags.seed}/experiment`);
    const model = new DdpmMlp(linear, { dim: 2, width: 64, sigmaData, prediction }, r);
    const optimizer = new Adam(model.parameters(), { lr: 3e-3 });
    const bar = new Progress(flags.steps, `train ${name}`, { quiet: flags.quiet });
    for (let step = 0; step < flags.steps; step++) {
      optimizer.lr = cosineLr(3e-3, step, flags.steps);
      const y = sampleMixture(spikes, 128, r);
      const t = linear.sampleTimesteps(128, r);
      const noise = r.randn([128, 2]);
      const xt = linear.addNoise(y, noise, t);
      const loss = mseLoss(model.forward(xt, t), linear.target(prediction, y, noise, t));
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      bar.tick(1, `loss ${loss.item().toFixed(4)}`);
    }
    const denoise = predictionDenoiser((x, t) => model.forward(x, t), linear, prediction);
    const sample = noGrad(() => sampleLoop(scheduler, denoise, scheduler.initNoise([count, 2], r), r));
    runs.push({ name, sample, model });
  }
  // the same sampler with the exact E[x0 | x_t]: what a perfect network would give
  const exactRng = new Rng(`${flags.seed}/exact`);
  const xStart = scheduler.initNoise([count, 2], exactRng);
  runs.push({ name: 'exact', sample: sampleLoop(scheduler, exactDenoiser(spikes), xStart, exactRng) });

  const judged = runs.map(({ name, sample }) => {
    const modes = modeStats(sample.data, 2, centres);
    return {
      target: name,
      shares: modes.map((m) => m.share),
      meanStd: sampleMean(modes.flatMap((m) => m.std)),
      maxCentreError: Math.max(...modes.map((m) => m.centreError)),
      within5Std: countNear(sample.data, centres, 0.05) / count,
    };
  });
  const judgedWidths = [12, 20, 11, 12, 13];
  console.log(`\nfour spikes (std 0.01), ${flags.steps} training steps per target, ${count} samples each:`);
  console.log(row(['target', 'shares', 'spike std', 'centre off', 'within 0.05'], judgedWidths));
  for (const j of judged) {
    const shares = j.shares.map((v) => `${(100 * v).toFixed(0)}%`).join(' ');
    const near = `${(100 * j.within5Std).toFixed(1)}%`;
    console.log(
      row([j.target, shares, j.meanStd.toFixed(4), j.maxCentreError.toFixed(4), near], judgedWidths),
    );
  }
  console.log('goal: 25% each, std 0.0100, centred, all within 0.05 (5 std) of a spike');

  const panels = [
    ...judged.map((j, i) => ({
      title: `${j.target}: ${(100 * j.within5Std).toFixed(1)}% within 0.05`,
      x: column(runs[i].sample, 0),
      y: column(runs[i].sample, 1),
      rings: rings(spikes),
      range: [-1.6, 1.6] as [number, number],
    })),
    ...judged.map((j, i) => ({
      title: `${j.target}: std ${j.meanStd.toPrecision(2)}, zoom (1, 1)`,
      x: column(runs[i].sample, 0),
      y: column(runs[i].sample, 1),
      rings: rings(spikes),
      range: [0.94, 1.06] as [number, number],
    })),
  ];
  const title = `DDPM on four spikes, the network trained to predict eps, x0 or v (${flags.steps} steps each, seed ${flags.seed})`;
  scatterLevels(panels, title, { cols: runs.length }).save(files.record(files.path('experiment.png')));
  return { runs, judged };
}

/**
 * 5, why: each trained net's error in x0 at each t, on freshly noised data, next to the least possible
 * (section 3) and to the error of taking x_t / a_t as it is, sigma_t. Where a net is worse than that,
 * the sampler's last steps push samples off the spikes instead of onto them.
 */
function x0Errors(
  runs: Run[],
  linear: DdpmSchedule,
  spikes: GaussianMixture,
  watched: number[],
  best: Record<Prediction, number>[],
  rng: Rng,
  files: OutputDir,
) {
  const T = linear.T;
  const byNet = runs.flatMap(({ name, model }) =>
    model ? [{ name, model, rmse: watched.map((t) => x0Rmse(model, linear, spikes, t, rng)) }] : [],
  );
  const nearest = (t: number) => watched.reduce((a, b) => (Math.abs(b - t) < Math.abs(a - t) ? b : a));
  const shownTs = [...new Set([0, 5, 20, 100, 300, T - 1].map(nearest))];
  console.log(`\nroot mean squared error of each net's x0 at t (per coordinate):`);
  const errorWidths = [16, ...shownTs.map(() => 10)];
  console.log(row(['t', ...shownTs.map(String)], errorWidths));
  const at = (values: number[], t: number) => values[watched.indexOf(t)].toExponential(2);
  for (const e of byNet) {
    console.log(row([e.name, ...shownTs.map((t) => at(e.rmse, t))], errorWidths));
  }
  const leastX0 = best.map((b) => Math.sqrt(b.x0));
  const asIs = watched.map((t) => linear.sigma(t));
  console.log(row(['least possible', ...shownTs.map((t) => at(leastX0, t))], errorWidths));
  console.log(row(['x_t / a_t', ...shownTs.map((t) => at(asIs, t))], errorWidths));
  lineChart({
    title: "Each trained net's error in x0, against the least possible",
    xLabel: 'timestep t + 1 (log scale)',
    yLabel: 'RMSE of the x0 estimate',
    logX: true,
    logY: true,
    series: [
      ...byNet.map((e) => ({
        name: `net trained on ${e.name}`,
        x: watched.map((t) => t + 1),
        y: e.rmse,
        color: e.name === e.model.prediction ? TARGET_COLORS[e.model.prediction] : ([230, 140, 20] as const),
      })),
      { name: 'least possible', x: watched.map((t) => t + 1), y: leastX0, dashed: true, color: [0, 0, 0] },
      {
        name: 'x_t / a_t as it is: sigma_t',
        x: watched.map((t) => t + 1),
        y: asIs,
        dashed: true,
        color: [150, 150, 150],
      },
    ],
  }).save(files.record(files.path('experiment-x0-error.png')));
  return { byNet, leastX0 };
}

function recordOf(f: (p: Prediction) => number[]): Record<Prediction, number[]> {
  return { eps: f('eps'), x0: f('x0'), v: f('v') };
}

/** How many rows of the [n, 2] array lie within `r` of some centre on both axes. */
function countNear(data: ArrayLike<number>, centres: number[][], r: number): number {
  let n = 0;
  for (let i = 0; i < data.length / 2; i++) {
    if (centres.some(([cx, cy]) => Math.abs(data[2 * i] - cx) < r && Math.abs(data[2 * i + 1] - cy) < r)) n++;
  }
  return n;
}

/** Cells padded to the widths, the first left-aligned and the others right-aligned. */
function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('');
}

/** The root mean squared error of a trained net's x0 estimate at timestep t, over 2000 fresh draws. */
function x0Rmse(model: DdpmMlp, schedule: DdpmSchedule, data: GaussianMixture, t: number, rng: Rng): number {
  const n = 2000;
  const x0 = sampleMixture(data, n, rng);
  const xt = schedule.addNoise(x0, rng.randn(x0.shape), t);
  const { x0: estimate } = schedule.estimate(
    model.prediction,
    noGrad(() => model.forward(xt, t)),
    xt,
    t,
  );
  let sum = 0;
  for (let i = 0; i < x0.size; i++) sum += (estimate.data[i] - x0.data[i]) ** 2;
  return Math.sqrt(sum / x0.size);
}
