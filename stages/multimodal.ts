// Stage 2b: four narrow Gaussians (std 0.01, equal weights) at (-1,-1), (-1,1), (1,-1), (1,1), with
// stage:2d's ten EDM noise levels, one-level target and sampler. Only the network changes: stage:2d's
// EdmDenoiser, trained here, strands 150-400 of 1,000 samples between the spikes (std 0.1-0.3 per spike
// where the goal is 0.01), so this stage's network (SpikeDenoiser, core/diffusion/spike-nets.ts)
// guesses which spike x came from instead. Watch the cloud split into four spikes level by level, and
// count what lands where.
import {
  Adam,
  add,
  column,
  cosineLr,
  div,
  edmSigmas,
  full,
  levelTarget,
  mseLoss,
  mul,
  noGrad,
  sub,
} from '../core/index.ts';
import type { Tensor } from '../core/index.ts';
import { SpikeDenoiser } from '../core/diffusion/spike-nets.ts';
import { noisedMixture, posteriorEps, sampleMixture, squareSpikes } from '../core/diffusion/mixture.ts';
import { runMain } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { modeStats, type ModeStats } from '../core/stats.ts';
import { lossChart } from '../plots/index.ts';
import { scatterLevels } from '../plots/scatter-levels.ts';
import { animateScatters } from '../plots/terminal-levels.ts';
import { rings } from './lib/toy-plots.ts';

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup('stage:multimodal', {
    steps: 12000,
    out: 'out/multimodal',
  });

  const sigmaData = 0.01; // the width of each spike: the finest detail to get right, as in stage 1
  const data = squareSpikes(sigmaData);
  const centres = data.map((c) => c.mean);
  const sigmas = edmSigmas({ n: 10, sigmaMin: sigmaData / 10, sigmaMax: 1, rho: 7 }); // 10 levels, then 0
  const N = sigmas.length - 1;

  // Training: stage:2d's loop on the new data, with the SpikeDenoiser, and the error measured in units
  // of the gain: as the error in the guessed centre, which counts every level alike (in units of sigma,
  // as in stage:2d, the lowest levels would count a few hundred times more than the first).
  const denoiser = new SpikeDenoiser(2, 32, sigmaData, rng);
  const optimizer = new Adam(denoiser.parameters(), { lr: 3e-3 });
  const batch = 128;
  const losses: number[] = [];
  const bar = new Progress(flags.steps, 'train', { quiet: flags.quiet });
  for (let step = 0; step < flags.steps; step++) {
    optimizer.lr = cosineLr(3e-3, step, flags.steps);
    const level = Array.from({ length: batch }, () => rng.int(0, N));
    const sigma = column(level.map((i) => sigmas[i]));
    const sigmaNext = column(level.map((i) => sigmas[i + 1]));
    const y = sampleMixture(data, batch, rng);
    const n = mul(rng.randn([batch, 2]), sigma);
    const target = levelTarget(n, sigma, sigmaNext);
    const gain = denoiser.gain(sigma, sigmaNext);
    const loss = mseLoss(div(denoiser.forward(add(y, n), sigma, sigmaNext), gain), div(target, gain));
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    losses.push(loss.item());
    bar.tick(1, `loss ${loss.item().toFixed(4)}`);
  }

  // Sampling, once with the network and once with the exact one-level denoiser of this mixture,
  // (1 - sigma_{i+1} / sigma_i) E[n | x]: the best any network could do with these ten levels.
  const count = 1000;
  const exactDenoiser = (x: Tensor, i: number) =>
    mul(posteriorEps(data, x, 1, sigmas[i]), sigmas[i] - sigmas[i + 1]); // E[n | x] = sigma E[eps | x]
  const sample = (denoise: (x: Tensor, i: number) => Tensor) => {
    const history = [rng.randn([count, 2], { std: sigmas[0] })];
    noGrad(() => {
      for (let i = 0; i < N; i++) history.push(sub(history[i], denoise(history[i], i)));
    });
    return history;
  };
  const history = sample((x, i) =>
    denoiser.forward(x, full([count, 1], sigmas[i]), full([count, 1], sigmas[i + 1])),
  );
  const x = history[N];
  const modes = modeStats(x.data, 2, centres);
  const exactModes = modeStats(sample(exactDenoiser)[N].data, 2, centres);

  const xs = (t: Tensor) => t.data.filter((_, k) => k % 2 === 0);
  const ys = (t: Tensor) => t.data.filter((_, k) => k % 2 === 1);
  const shares = (ms: ModeStats[]) => ms.map((m) => `${(100 * m.share).toFixed(0)}%`).join(' ');
  if (!flags.quiet) {
    const frames = history.map((h, i) => ({
      label: `level ${i}/${N}  sigma ${sigmas[i].toPrecision(3).padEnd(7)} nearest-spike shares ${shares(modeStats(h.data, 2, centres))}`,
      x: xs(h),
      y: ys(h),
    }));
    await animateScatters(frames, { xRange: [-2.5, 2.5], yRange: [-2.5, 2.5] });
  }

  // Files: samples, summary with per-spike statistics, loss, and the cloud after each level against
  // the exact noised density (circles of 2 std around each spike).
  const files = out();
  files.writeCsv('samples.csv', ['x', 'y'], [xs(x), ys(x)]);
  const seconds = secondsSince(started);
  const goal = { share: 0.25, std: sigmaData, centres };
  files.writeJson('summary.json', {
    modes,
    exactDenoiser: exactModes,
    goal,
    seed: flags.seed,
    steps: flags.steps,
    seconds,
  });
  lossChart(losses, 'Training loss (MSE of the guessed spike centre)').save(
    files.record(files.path('loss.png')),
  );
  const panels = history.map((h, i) => ({
    title: i === 0 ? 'start: noise, std 1' : `step ${i}: sigma ${sigmas[i].toPrecision(2)}`,
    x: xs(h),
    y: ys(h),
    rings: rings(noisedMixture(data, 1, sigmas[i])),
  }));
  const title = 'Four spikes: samples after each denoising step vs the exact noised density';
  scatterLevels(panels, title, { range: [-3, 3] }).save(files.record(files.path('levels.png')));

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
