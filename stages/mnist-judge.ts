// Trains the judge that scores generated digits (core/eval/judge.ts): a small CNN classifier trained
// with this project's own core on the 8,000 training digits, checked on the 2,000 held out, and saved
// to stages/mnist/judge.safetensors. `npm run judge:train` reproduces the committed file.
import { AdamW, crossEntropy, Rng, Tensor, cosineLr } from '../core/index.ts';
import { mkdirSync } from 'node:fs';
import { runMain } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { stageSetup } from './lib/stage.ts';
import { mnistSplit, PIXELS } from '../core/data/mnist.ts';
import { DigitJudge, featureStats, judgeOutputs, judgeSamples } from '../core/eval/judge.ts';
import { moduleTensors, writeSafetensors } from '../core/io/safetensors.ts';

/** A batch of digits, each shifted by up to 2 pixels (zero fill): cheap augmentation for robustness. */
function shiftedBatch(images: Float32Array, indices: number[], rng: Rng): Tensor {
  const out = new Float32Array(indices.length * PIXELS);
  indices.forEach((idx, k) => {
    const dx = rng.int(-2, 3);
    const dy = rng.int(-2, 3);
    for (let y = 0; y < 28; y++) {
      const sy = y - dy;
      if (sy < 0 || sy >= 28) continue;
      for (let x = 0; x < 28; x++) {
        const sx = x - dx;
        if (sx >= 0 && sx < 28) out[k * PIXELS + y * 28 + x] = images[idx * PIXELS + sy * 28 + sx];
      }
    }
  });
  return new Tensor(out, [indices.length, 1, 28, 28]);
}

runMain(async () => {
  const { flags, rng } = await stageSetup('judge:train', { steps: 800, out: 'stages/mnist' });
  const { train, test } = mnistSplit();
  const judge = new DigitJudge(rng);
  // weight decay keeps the features general: without it, training digits sat far from held-out ones
  const optimizer = new AdamW(judge.parameters(), { lr: 2e-3, weightDecay: 0.05 });
  const batch = 64;
  const bar = new Progress(flags.steps, 'judge', { quiet: flags.quiet, unit: 'step' });
  let order: number[] = [];
  for (let step = 0; step < flags.steps; step++) {
    if (order.length < batch) order = order.concat(rng.permutation(train.count));
    const idx = order.splice(0, batch);
    optimizer.lr = cosineLr(2e-3, step, flags.steps);
    const loss = crossEntropy(
      judge.forward(shiftedBatch(train.images, idx, rng)),
      idx.map((i) => train.labels[i]),
    );
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    bar.tick(1, `loss ${loss.item().toFixed(4)}`);
  }

  // Held-out accuracy, and the reference scores of real digits and of uniform noise.
  const { logits } = judgeOutputs(judge, test.images, test.count);
  let correct = 0;
  for (let i = 0; i < test.count; i++) {
    const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
    if (row.indexOf(Math.max(...row)) === test.labels[i]) correct++;
  }
  const accuracy = correct / test.count;
  const real = featureStats(judgeOutputs(judge, test.images, test.count).features, test.count);
  // Real digits as "samples": 500 of the held-out ones (the count the quality bar is judged on), and 500
  // training digits, which the judge has seen (so their features sit a little apart from held-out ones)
  const heldOutScores = judgeSamples(judge, test.images.slice(0, 500 * PIXELS), 500, real);
  const realScores = judgeSamples(judge, train.images.slice(0, 500 * PIXELS), 500, real);
  const noise = rng.rand([500 * PIXELS]).data as Float32Array;
  const noiseScores = judgeSamples(judge, noise, 500, real);
  const fmt = (s: { confident: number; entropy: number; fid: number }) =>
    `confident ${s.confident.toFixed(3)} entropy ${s.entropy.toFixed(3)} FID ${s.fid.toFixed(1)}`;
  console.log(`held-out accuracy ${(100 * accuracy).toFixed(2)}% on ${test.count} digits`);
  console.log(`500 held-out digits:       ${fmt(heldOutScores)}`);
  console.log(`500 training digits:       ${fmt(realScores)}`);
  console.log(`500 uniform-noise images:  ${fmt(noiseScores)}`);
  if (accuracy < 0.97)
    throw new Error(`the judge reached only ${(100 * accuracy).toFixed(2)}%, below the 97% bar`);

  mkdirSync(flags.out, { recursive: true });
  const path = `${flags.out}/judge.safetensors`;
  writeSafetensors(path, moduleTensors(judge), {
    accuracy: String(accuracy),
    steps: String(flags.steps),
    seed: String(flags.seed),
    heldOut: JSON.stringify(heldOutScores),
    train: JSON.stringify(realScores),
    noise: JSON.stringify(noiseScores),
    command: `npm run judge:train -- --seed ${flags.seed} --steps ${flags.steps}`,
  });
  console.log(`wrote ${path}`);
});
