// Stage 2b: four narrow Gaussians (std 0.01, equal weights) at (-1,-1), (-1,1), (1,-1), (1,1), with
// stage:2d's ten EDM noise levels, one-level target and sampler. Only the network changes: stage:2d's
// EdmDenoiser, trained here, strands 150-400 of 1,000 samples between the spikes (std 0.1-0.3 per spike
// where the goal is 0.01), so this stage's network (SpikeDenoiser, core/diffusion/spike-nets.ts)
// guesses which spike x came from instead. Watch the cloud split into four spikes level by level, and
// count what lands where. The model and the training step are in stages/toys/spikes.ts, which the page
// (web/) trains too.
import type { Tensor } from '../core/index.ts';
import { noisedMixture } from '../core/diffusion/mixture.ts';
import { runMain } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { secondsSince, stageSetup } from './lib/stage.ts';
import { modeStats, type ModeStats } from '../core/stats.ts';
import { lossChart } from '../plots/index.ts';
import { scatterLevels } from '../plots/scatter-levels.ts';
import { animateScatters } from '../plots/terminal-levels.ts';
import { rings } from './lib/toy-plots.ts';
import { FourSpikes } from './toys/spikes.ts';

runMain(async () => {
  const { flags, rng, out, started } = await stageSetup('stage:multimodal', {
    steps: 12000,
    out: 'out/multimodal',
  });

  // Data, noise levels, the SpikeDenoiser and Adam, from the seeded rng (stages/toys/spikes.ts).
  const toy = new FourSpikes(rng);
  const { sigmaData, data, centres, sigmas, levels: N } = toy;

  // Training: stage:2d's loop on the new data, the loss measured as the error in the guessed centre.
  const losses: number[] = [];
  const bar = new Progress(flags.steps, 'train', { quiet: flags.quiet });
  for (let step = 0; step < flags.steps; step++) {
    const loss = toy.trainStep(step, flags.steps);
    losses.push(loss);
    bar.tick(1, `loss ${loss.toFixed(4)}`);
  }

  // Sampling, once with the network and once with the exact one-level denoiser of this mixture: the
  // best any network could do with these ten levels.
  const count = 1000;
  const history = toy.sample(count);
  const x = history[N];
  const modes = modeStats(x.data, 2, centres);
  const exactModes = modeStats(toy.sampleExact(count)[N].data, 2, centres);

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
