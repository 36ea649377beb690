// Stage 1: diffusion on a 1-D Gaussian, in about a hundred lines.
// Data y ~ N(1, 0.01^2). We add noise at ten levels sigma_0 > ... > sigma_9 (EDM spacing), train a small
// MLP D(x, sigma) to remove one level's worth of noise, then start from pure noise and apply D once per
// level. Watch the histogram narrow onto the target: the run must recover both the mean and the spread.
// The model and the training step are in stages/toys/gauss1d.ts, which the page (web/) trains too.
import { runMain } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { sampleMean, sampleStd } from '../core/stats.ts';
import { levelHistograms, lossChart } from '../plots/index.ts';
import { animateHistograms } from '../plots/terminal.ts';
import { histogramPanels } from './lib/toy-plots.ts';
import { Gauss1d } from './toys/gauss1d.ts';

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup('stage:1d', { steps: 12000, out: 'out/1d' });

  // Data, noise levels, the denoiser D(x, sigma) and Adam, from the seeded rng.
  const toy = new Gauss1d(rng);
  const { muData, sigmaData, sigmas } = toy;

  // Training: a batch of 32 at random levels per step, the loss in units of sigma (see gauss1d.ts).
  const losses: number[] = [];
  const bar = new Progress(flags.steps, 'train', { quiet: flags.quiet });
  for (let step = 0; step < flags.steps; step++) {
    const loss = toy.trainStep(step, flags.steps);
    losses.push(loss);
    bar.tick(1, `loss ${loss.toFixed(4)}`);
  }

  // Sampling: start from N(0, sigma_max^2) and remove one level of noise at a time.
  const history = toy.sample(1000);
  const x = history[toy.levels];
  const [mean, std] = [sampleMean(x), sampleStd(x)];
  if (!flags.quiet) await animateHistograms(history, sigmas, { lo: -3, hi: 3, target: muData });

  // Files: the samples, a summary, the loss curve, and the samples at each level against the exact
  // density of the data noised to that level, N(mu, sigma_data^2 + sigma_i^2).
  const files = out();
  files.writeCsv('samples.csv', ['x'], [x]);
  const seconds = secondsSince(started);
  const goal = { mean: muData, std: sigmaData };
  files.writeJson('summary.json', { mean, std, goal, seed: flags.seed, steps: flags.steps, seconds });
  lossChart(losses, 'Training loss (MSE on the noise, in units of sigma)').save(
    files.record(files.path('loss.png')),
  );
  const titles = sigmas.map((s, i) =>
    i === 0 ? 'start: N(0, 1) noise' : `step ${i}: sigma ${s.toPrecision(2)}`,
  );
  const levelsTitle = 'Samples after each denoising step vs the exact noised density';
  levelHistograms(histogramPanels(history, toy.exact(), titles), levelsTitle).save(
    files.record(files.path('levels.png')),
  );

  console.log(
    `samples: mean ${mean.toFixed(4)} std ${std.toFixed(4)} | goal: mean 1.0000 std 0.0100 | ${seconds.toFixed(1)}s`,
  );
  console.log(files.report());
});
