// Stage 3c: DDPM on the four spikes of stage:multimodal. The schedule and the ancestral sampler are
// stage:ddpm's; the network is not: stage:ddpm's DdpmMlp, trained here, left 1-6 of 1,000 samples
// stranded between the spikes on most seeds (a spike's std up to 0.06 where the goal is 0.01), so this
// stage uses stage:multimodal's idea in DDPM's terms (DdpmSpikeNet, core/diffusion/spike-nets.ts): guess
// the centre of the spike x_t came from, from an input on which the border between spikes stays put at
// every t. It is still trained on the MSE of stage:ddpm's target (eps by default), so --prediction keeps
// its meaning. Watch the cloud split as t runs down, and count what lands where. --beta-schedule and
// --prediction as in stage:ddpm.
import { Adam, cosineLr, mseLoss, noGrad } from '../core/index.ts';
import type { Tensor } from '../core/index.ts';
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
import { exactDenoiser, sampleMixture, squareSpikes } from '../core/diffusion/mixture.ts';
import { DdpmSpikeNet } from '../core/diffusion/spike-nets.ts';
import { runMain } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { modeStats, type ModeStats } from '../core/stats.ts';
import { lossChart } from '../plots/index.ts';
import { reverseScatters } from './lib/toy-plots.ts';
import { animateScatters } from '../plots/terminal-levels.ts';

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup(
    'stage:ddpm-multimodal',
    { steps: 12000, out: 'out/ddpm-multimodal' },
    {
      ...T_FLAG,
      ...VARIANCE_FLAG,
      ...DDPM_FLAGS,
    },
  );
  const variance = varianceFlagValue(flags, 'stage:ddpm-multimodal');
  const { betaSchedule, prediction } = ddpmFlagValues(flags, 'stage:ddpm-multimodal');

  const sigmaData = 0.01; // the width of each spike: c_in and c_out are set for that detail
  const data = squareSpikes(sigmaData);
  const centres = data.map((c) => c.mean);
  const schedule = DdpmSchedule.of(betaSchedule, flags.T, 1e-4, 0.02);

  // Training: stage:ddpm's loop and loss (MSE on the --prediction target, eps by default), with the
  // spike-centre network. That loss matters: measured on F's own error instead (every t counted alike,
  // stage:multimodal's loss), or on x0's (--prediction x0, nearly the same weights), F was loose at low
  // noise, where it alone sets where a spike's samples end: spike means came out 0.02-0.05 off centre.
  // eps weighs F's error at t by sigma_t^2 / (sigma_t^2 + sigma_data^2)^2, most where sigma_t ~ sigma_data.
  const model = new DdpmSpikeNet(schedule, { dim: 2, width: 64, sigmaData, prediction }, rng);
  const optimizer = new Adam(model.parameters(), { lr: 3e-3 });
  const batch = 128;
  const losses: number[] = [];
  const bar = new Progress(flags.steps, 'train', { quiet: flags.quiet });
  for (let step = 0; step < flags.steps; step++) {
    optimizer.lr = cosineLr(3e-3, step, flags.steps);
    const x0 = sampleMixture(data, batch, rng);
    const t = schedule.sampleTimesteps(batch, rng);
    const eps = rng.randn([batch, 2]);
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

  // Sampling, with the network and with the exact E[x0 | x_t] for comparison.
  const count = 1000;
  const T = schedule.T;
  const keep = [T - 1, 500, 300, 200, 150, 100, 60, 30, 10, 0].filter((t) => t < T);
  const sampleBar = new Progress(T, 'sample', { quiet: flags.quiet, unit: 'steps' });
  const scheduler = new AncestralScheduler(scheduleLevels(schedule), { variance }).setTimesteps(T);
  const denoise = predictionDenoiser((xt, t) => model.forward(xt, t), schedule, prediction);
  const start = scheduler.initNoise([count, 2], rng);
  const { sample: x, snapshots } = noGrad(() =>
    sampleTrajectory(scheduler, denoise, start, rng, keep, () => sampleBar.tick()),
  );
  const modes = modeStats(x.data, 2, centres);
  const ideal = sampleLoop(scheduler, exactDenoiser(data), scheduler.initNoise([count, 2], rng), rng);
  const exactModes = modeStats(ideal.data, 2, centres);

  const xs = (t: Tensor) => t.data.filter((_, k) => k % 2 === 0);
  const ys = (t: Tensor) => t.data.filter((_, k) => k % 2 === 1);
  const shares = (ms: ModeStats[]) => ms.map((m) => `${(100 * m.share).toFixed(0)}%`).join(' ');
  if (!flags.quiet) {
    const frames = [...snapshots, { t: -1, x }].map((s) => ({
      label: `${s.t < 0 ? 'samples' : `x_${s.t}`.padEnd(7)}  noise std ${s.t < 0 ? '0' : schedule.noise(s.t).toPrecision(3)}  nearest-spike shares ${shares(modeStats(s.x.data, 2, centres))}`,
      x: xs(s.x),
      y: ys(s.x),
    }));
    await animateScatters(frames, { xRange: [-2.5, 2.5], yRange: [-2.5, 2.5] });
  }

  const files = out();
  files.writeCsv('samples.csv', ['x', 'y'], [xs(x), ys(x)]);
  const seconds = secondsSince(started);
  const goal = { share: 0.25, std: sigmaData, centres };
  files.writeJson('summary.json', {
    ...{ modes, exactDenoiser: exactModes, goal, variance, betaSchedule, prediction, T },
    ...{ seed: flags.seed, steps: flags.steps, seconds },
  });
  lossChart(losses, `Training loss (MSE on ${TARGET_NAMES[prediction]})`).save(
    files.record(files.path('loss.png')),
  );
  const title = `DDPM on four spikes (${betaSchedule}, ${prediction}): reverse samples at several t vs the exact q(x_t)`;
  reverseScatters(schedule, data, snapshots, x, title).save(files.record(files.path('levels.png')));

  const describe = (ms: ModeStats[]) =>
    ms
      .map(
        (m) =>
          `(${m.centre.join(',')}): ${(100 * m.share).toFixed(1)}% std ${m.std.map((s) => s.toFixed(4)).join('/')} off ${m.centreError.toFixed(4)}`,
      )
      .join('\n  ');
  console.log(`samples by nearest spike:\n  ${describe(modes)}`);
  console.log(`with the exact denoiser:\n  ${describe(exactModes)}`);
  console.log(`goal: 25% each, std 0.0100, centred | ${seconds.toFixed(1)}s`);
  console.log(files.report());
});
