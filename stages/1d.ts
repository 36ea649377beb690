// Stage 1: diffusion on a 1-D Gaussian, in about a hundred lines.
// Data y ~ N(1, 0.01^2). We add noise at ten levels sigma_0 > ... > sigma_9 (EDM spacing), train a small
// MLP D(x, sigma) to remove one level's worth of noise, then start from pure noise and apply D once per
// level. Watch the histogram narrow onto the target: the run must recover both the mean and the spread.
import {
  Adam,
  add,
  column,
  concat,
  cosineLr,
  div,
  edmSigmas,
  full,
  levelTarget,
  log,
} from '../core/index.ts';
import { mlp, Module, mseLoss, mul, noGrad, sqrt, square, sub } from '../core/index.ts';
import type { Rng, Sequential, Tensor } from '../core/index.ts';
import { runMain } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { sampleMean, sampleStd } from '../core/stats.ts';
import { levelHistograms, lossChart } from '../plots/index.ts';
import { animateHistograms } from '../plots/terminal.ts';
import { histogramPanels } from './lib/toy-plots.ts';

// D(x, sigma) = sigma * F(c_in x, c_in, ln(sigma) / 4), with EDM's scalings (Karras et al. 2022, Table 1):
// c_in = 1 / sqrt(sigma^2 + sigma_data^2) puts x at unit scale at every level, the output is the noise
// in units of sigma, and ln(sigma) / 4 tells F the level. F also sees c_in itself, so that the data's
// offset (x is centred on 1, not 0) is a linear function of its inputs: c_in x - c_in mu.
class Denoiser extends Module {
  net: Sequential;
  constructor(
    width: number,
    readonly sigmaData: number,
    rng: Rng,
  ) {
    super();
    this.net = mlp([3, width, width, 1], rng);
  }
  forward(x: Tensor, sigma: Tensor): Tensor {
    const cIn = div(1, sqrt(add(square(sigma), this.sigmaData ** 2)));
    return mul(sigma, this.net.forward(concat([mul(cIn, x), cIn, div(log(sigma), 4)], 1)));
  }
}

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup('stage:1d', { steps: 12000, out: 'out/1d' });

  // Data and noise levels: sigma_max = 1 drowns the data; sigma_min = sigma_data / 10 barely touches it.
  const muData = 1;
  const sigmaData = 0.01;
  const sigmas = edmSigmas({ n: 10, sigmaMin: sigmaData / 10, sigmaMax: 1, rho: 7 }); // 10 levels, then 0
  const N = sigmas.length - 1;

  // Training. For clean y and noise n ~ N(0, sigma_i^2), the noisy x = y + n should become
  // y + n * sigma_{i+1} / sigma_i one level down (noise of std sigma_{i+1}). D must therefore remove
  // x - (y + n sigma_{i+1} / sigma_i) = n (1 - sigma_{i+1} / sigma_i).
  const denoiser = new Denoiser(32, sigmaData, rng);
  const optimizer = new Adam(denoiser.parameters(), { lr: 3e-3 });
  const batch = 32;
  const losses: number[] = [];
  const bar = new Progress(flags.steps, 'train', { quiet: flags.quiet });
  for (let step = 0; step < flags.steps; step++) {
    optimizer.lr = cosineLr(3e-3, step, flags.steps); // a decaying rate lets the last steps settle precisely
    const level = Array.from({ length: batch }, () => rng.int(0, N)); // a random level per sample
    const sigma = column(level.map((i) => sigmas[i]));
    const sigmaNext = column(level.map((i) => sigmas[i + 1]));
    const y = rng.randn([batch, 1], { mean: muData, std: sigmaData });
    const n = mul(rng.randn([batch, 1]), sigma);
    const target = levelTarget(n, sigma, sigmaNext);
    // Dividing prediction and target by sigma weighs every level alike; otherwise the errors at
    // sigma = 1 would drown those at sigma = 0.001, where the final spread is decided.
    const loss = mseLoss(div(denoiser.forward(add(y, n), sigma), sigma), div(target, sigma));
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    losses.push(loss.item());
    bar.tick(1, `loss ${loss.item().toFixed(4)}`);
  }

  // Sampling: start from N(0, sigma_max^2) and remove one level of noise at a time.
  const count = 1000;
  let x = rng.randn([count, 1], { std: sigmas[0] });
  const history: Float32Array[] = [x.data as Float32Array];
  noGrad(() => {
    for (let i = 0; i < N; i++) {
      x = sub(x, denoiser.forward(x, full([count, 1], sigmas[i])));
      history.push(x.data as Float32Array);
    }
  });
  const [mean, std] = [sampleMean(x.data), sampleStd(x.data)];
  if (!flags.quiet) await animateHistograms(history, sigmas, { lo: -3, hi: 3, target: muData });

  // Files: the samples, a summary, the loss curve, and the samples at each level against the exact
  // density of the data noised to that level, N(mu, sigma_data^2 + sigma_i^2).
  const files = out();
  files.writeCsv('samples.csv', ['x'], [x.data]);
  const seconds = secondsSince(started);
  const goal = { mean: muData, std: sigmaData };
  files.writeJson('summary.json', { mean, std, goal, seed: flags.seed, steps: flags.steps, seconds });
  lossChart(losses, 'Training loss (MSE on the noise, in units of sigma)').save(
    files.record(files.path('loss.png')),
  );
  const exact = sigmas.map((s) => [{ weight: 1, mean: muData, std: Math.hypot(sigmaData, s) }]);
  const titles = sigmas.map((s, i) =>
    i === 0 ? 'start: N(0, 1) noise' : `step ${i}: sigma ${s.toPrecision(2)}`,
  );
  const levelsTitle = 'Samples after each denoising step vs the exact noised density';
  levelHistograms(histogramPanels(history, exact, titles), levelsTitle).save(
    files.record(files.path('levels.png')),
  );

  console.log(
    `samples: mean ${mean.toFixed(4)} std ${std.toFixed(4)} | goal: mean 1.0000 std 0.0100 | ${seconds.toFixed(1)}s`,
  );
  console.log(files.report());
});
