// Trains the judge that scores generated images (core/eval/judge.ts): a small CNN classifier trained
// with this project's own core on a data set's training images (the 8,000 training digits, or the
// 12,000 shapes of stage:rgb), checked on the 2,000 held out, and saved beside the stage's checkpoints
// (stages/mnist/judge.safetensors, stages/rgb/judge.safetensors). `npm run judge:train` reproduces the
// committed MNIST judge, `npm run judge:train -- --data shapes` the shapes' one.
import { AdamW, crossEntropy, Rng, Tensor, cosineLr } from '../core/index.ts';
import { mkdirSync } from 'node:fs';
import { basename } from 'node:path';
import { runMain, UsageError } from './lib/cli.ts';
import { Progress } from './lib/progress.ts';
import { stageSetup } from './lib/stage.ts';
import { PIXELS } from '../core/data/mnist.ts';
import { drawShapes } from '../core/data/shapes.ts';
import { ImageJudge, featureStats, judgeOutputs } from '../core/eval/judge.ts';
import { moduleTensors, writeSafetensors } from '../core/io/safetensors.ts';
import { MNIST, pickImages, shapes, type ImageData } from './mnist/data.ts';
import { scoreImages } from './mnist/judge.ts';

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

/**
 * A training batch: digits each shifted by up to 2 pixels; shapes as they are (their positions already
 * vary, and a shift's zero fill would paint borders no real image has).
 */
function batchOf(data: ImageData, images: Float32Array, indices: number[], rng: Rng): Tensor {
  if (data.name === 'mnist') return shiftedBatch(images, indices, rng);
  const { channels: c, size: s } = data;
  return new Tensor(pickImages(images, indices, c * s * s), [indices.length, c, s, s]);
}

const DEFAULT_OUT = "the data set's stage folder";

runMain(async () => {
  const { flags, rng } = await stageSetup(
    'judge:train',
    { steps: 800, out: DEFAULT_OUT },
    {
      data: { type: 'string', default: 'mnist', help: 'the images to judge: mnist or shapes' },
      size: { type: 'int', default: 28, help: 'image size of the shapes: 28 or 32' },
    },
  );
  if (
    !['mnist', 'shapes'].includes(flags.data) ||
    (flags.data === 'shapes' && ![28, 32].includes(flags.size))
  )
    throw new UsageError(
      `--data must be mnist or shapes (of --size 28 or 32)`,
      'usage: npm run judge:train -- --help',
    );
  const data = flags.data === 'mnist' ? MNIST : shapes(flags.size);
  const pixels = data.channels * data.size ** 2;
  const classes = data.classNames.length;
  const { test } = data.split();
  // the shapes' judge learns from four times the stage's training set, drawn afresh: it generalised
  // better than from the stage's 12,000 (docs/rgb.md)
  const train = data.name === 'mnist' ? data.split().train : drawShapes(48000, 'shapes-judge', data.size);
  const judge = new ImageJudge(rng, { channels: data.channels, size: data.size, classes });
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
      judge.forward(batchOf(data, train.images, idx, rng)),
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
    const row = Array.from(logits.subarray(i * classes, (i + 1) * classes));
    if (row.indexOf(Math.max(...row)) === test.labels[i]) correct++;
  }
  const accuracy = correct / test.count;
  const real = featureStats(judgeOutputs(judge, test.images, test.count).features, test.count);
  // Real images as "samples": 500 of the held-out ones (the count the quality bar is judged on), and 500
  // training images, which the judge has seen (so their features sit a little apart from held-out ones)
  const scoresOf = (images: Float32Array) => scoreImages({ judge, real, test }, data, images, 500);
  const heldOutScores = scoresOf(test.images.slice(0, 500 * pixels));
  const realScores = scoresOf(train.images.slice(0, 500 * pixels));
  const noiseScores = scoresOf(rng.rand([500 * pixels]).data as Float32Array);
  const fmt = (s: ReturnType<typeof scoresOf>) =>
    `confident ${s.confident.toFixed(3)} entropy ${s.entropy.toFixed(3)} FID ${s.fid.toFixed(1)}${s.colour === undefined ? '' : ` colour ${s.colour.toFixed(3)}`}`;
  const noun = `${data.noun}s:`.padEnd(14); // the score columns line up with the noise row's
  console.log(`held-out accuracy ${(100 * accuracy).toFixed(2)}% on ${test.count} ${data.noun}s`);
  console.log(`500 held-out ${noun}${fmt(heldOutScores)}`);
  console.log(`500 training ${noun}${fmt(realScores)}`);
  console.log(`500 uniform-noise images:  ${fmt(noiseScores)}`);
  if (accuracy < 0.97)
    throw new Error(`the judge reached only ${(100 * accuracy).toFixed(2)}%, below the 97% bar`);

  const path = flags.out === DEFAULT_OUT ? data.judge : `${flags.out}/${basename(data.judge)}`;
  mkdirSync(path.slice(0, path.lastIndexOf('/')), { recursive: true });
  writeSafetensors(path, moduleTensors(judge), {
    accuracy: String(accuracy),
    steps: String(flags.steps),
    seed: String(flags.seed),
    heldOut: JSON.stringify(heldOutScores),
    train: JSON.stringify(realScores),
    noise: JSON.stringify(noiseScores),
    command: `npm run judge:train -- ${data.name === 'mnist' ? '' : `--data ${data.name} --size ${data.size} `}--seed ${flags.seed} --steps ${flags.steps}`,
  });
  console.log(`wrote ${path}`);
});
