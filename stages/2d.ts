// Stage 2a: the 1-D program in two dimensions, with as few changes as possible.
// Data y ~ N((1, 1), 0.01^2 I). The same ten EDM noise levels, the same one-level denoiser (now with
// two inputs and two outputs), the same sampler: start from noise and apply D once per level. Watch the
// cloud shrink onto the point (1, 1): the run must recover the mean and the spread on both axes.
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
import { EdmDenoiser } from '../core/diffusion/nets.ts';
import { gaussian, noisedMixture, sampleMixture } from '../core/diffusion/mixture.ts';
import { runMain } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { axisStats } from '../core/stats.ts';
import { lossChart } from '../plots/index.ts';
import { scatterLevels } from '../plots/scatter-levels.ts';
import { animateScatters } from '../plots/terminal-levels.ts';
import { rings } from './lib/toy-plots.ts';

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup('stage:2d', { steps: 12000, out: 'out/2d' });

  // Data and noise levels, exactly as in stage 1 but in 2-D.
  const sigmaData = 0.01;
  const data = gaussian([1, 1], sigmaData);
  const sigmas = edmSigmas({ n: 10, sigmaMin: sigmaData / 10, sigmaMax: 1, rho: 7 }); // 10 levels, then 0
  const N = sigmas.length - 1;

  // Training: the 1-D loop with [batch, 2] tensors. D must remove n (1 - sigma_{i+1} / sigma_i).
  // The one change that matters: batches of 128, not 32. Two coordinates must now be right at the
  // smallest levels, where the final spread is decided; with 64, one seed in four still came out
  // two thirds too wide on one axis.
  const denoiser = new EdmDenoiser(2, 32, sigmaData, rng);
  const optimizer = new Adam(denoiser.parameters(), { lr: 3e-3 });
  const batch = 128;
  const losses: number[] = [];
  const bar = new Progress(flags.steps, 'train', { quiet: flags.quiet });
  for (let step = 0; step < flags.steps; step++) {
    optimizer.lr = cosineLr(3e-3, step, flags.steps);
    const level = Array.from({ length: batch }, () => rng.int(0, N)); // a random level per sample
    const sigma = column(level.map((i) => sigmas[i]));
    const sigmaNext = column(level.map((i) => sigmas[i + 1]));
    const y = sampleMixture(data, batch, rng);
    const n = mul(rng.randn([batch, 2]), sigma);
    const target = levelTarget(n, sigma, sigmaNext);
    const loss = mseLoss(div(denoiser.forward(add(y, n), sigma), sigma), div(target, sigma));
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    losses.push(loss.item());
    bar.tick(1, `loss ${loss.item().toFixed(4)}`);
  }

  // Sampling: start from N(0, sigma_max^2 I) and remove one level of noise at a time.
  const count = 1000;
  let x = rng.randn([count, 2], { std: sigmas[0] });
  const history: Tensor[] = [x];
  noGrad(() => {
    for (let i = 0; i < N; i++) {
      x = sub(x, denoiser.forward(x, full([count, 1], sigmas[i])));
      history.push(x);
    }
  });
  const { mean, std } = axisStats(x.data, 2);
  const xs = (t: Tensor) => t.data.filter((_, k) => k % 2 === 0);
  const ys = (t: Tensor) => t.data.filter((_, k) => k % 2 === 1);
  if (!flags.quiet) {
    const frames = history.map((h, i) => {
      const s = axisStats(h.data, 2);
      const at = s.mean.map((m, j) => `${m.toFixed(3)}±${s.std[j].toFixed(3)}`).join(', ');
      return {
        label: `level ${i}/${N}  sigma ${sigmas[i].toPrecision(3).padEnd(8)} x, y = ${at}`,
        x: xs(h),
        y: ys(h),
      };
    });
    await animateScatters(frames, { xRange: [-3, 3], yRange: [-3, 3] });
  }

  // Files: samples, summary, loss curve, and the cloud after each step against the exact noised data
  // N((1, 1), (sigma_data^2 + sigma_i^2) I), zoomed to +-4 of its std so the last panels are readable.
  const files = out();
  files.writeCsv('samples.csv', ['x', 'y'], [xs(x), ys(x)]);
  const seconds = secondsSince(started);
  const goal = { mean: [1, 1], std: sigmaData };
  files.writeJson('summary.json', { mean, std, goal, seed: flags.seed, steps: flags.steps, seconds });
  lossChart(losses, 'Training loss (MSE on the noise, in units of sigma)').save(
    files.record(files.path('loss.png')),
  );
  const panels = history.map((h, i) => {
    const exact = noisedMixture(data, 1, sigmas[i]);
    const half = 4 * exact[0].std;
    return {
      title: i === 0 ? 'start: noise, std 1' : `step ${i}: sigma ${sigmas[i].toPrecision(2)}`,
      x: xs(h),
      y: ys(h),
      rings: rings(exact),
      range: [1 - half, 1 + half] as [number, number],
    };
  });
  const title = 'Samples after each denoising step vs the exact noised density (2 std circle)';
  scatterLevels(panels, title).save(files.record(files.path('levels.png')));

  const fmt = (v: number[], d: number) => v.map((u) => u.toFixed(d)).join(', ');
  console.log(
    `samples: mean (${fmt(mean, 4)}) std (${fmt(std, 4)}) | goal: mean (1, 1) std 0.0100 | ${seconds.toFixed(1)}s`,
  );
  console.log(files.report());
});
