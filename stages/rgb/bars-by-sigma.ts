// Where a shapes model loses the stripes: held-out stripes images, noised to each level sigma and denoised
// once by the checkpoint's EMA weights (asked for "stripes"), and the share of those estimates of x0
// whose bars are still parallel (core/eval/stripes.ts). Sampling decides an image's layout at the high
// levels; a model that cannot keep real bars parallel there cannot draw them from noise.
//   npm run rgb:bars -- CHECKPOINT... [--n 100] [--seed 7]
import { Rng, Tensor, UNet } from '../../core/index.ts';
import { SHAPE_CLASSES } from '../../core/data/shapes.ts';
import { imageNet, toUnit } from '../../core/diffusion/image.ts';
import { parallelBarsShare } from '../../core/eval/stripes.ts';
import { readCheckpoint, restoreCheckpoint } from '../../core/io/checkpoint.ts';
import { useBackend } from '../../core/kernels/select.ts';
import { parseFlags, runMain, usageLine, UsageError } from '../lib/cli.ts';
import { objectiveOf, validateConfig } from '../lib/config.ts';
import '../lib/flags.ts'; // registers the backends
import { pickImages, shapes } from '../mnist/data.ts';

const SIGMAS = [0.1, 0.25, 0.5, 1, 2];
const COMMAND = 'rgb:bars';
const SPEC = {
  n: { type: 'int', default: 100, min: 1, max: 333, help: 'held-out stripes images to noise and denoise' },
  seed: { type: 'int', default: 7, help: 'seed of the noise' },
} as const;

runMain(async () => {
  const flags = parseFlags(COMMAND, SPEC, process.argv.slice(2), 'CHECKPOINT...');
  if (flags.positionals.length === 0)
    throw new UsageError('name at least one checkpoint', usageLine(COMMAND, SPEC, 'CHECKPOINT...'));
  await useBackend('wasm');
  const data = shapes(28);
  const { test } = data.split();
  const stripes = SHAPE_CLASSES.indexOf('stripes');
  const which = [...test.labels.keys()].filter((i) => test.labels[i] === stripes).slice(0, flags.n);
  const n = which.length;
  const pixels = 3 * 28 * 28;
  const x0 = pickImages(test.images, which, pixels).map((v) => 2 * v - 1); // the model's [-1, 1]
  const eps = new Rng(flags.seed).randn([n, 3, 28, 28]).data as Float32Array; // the same noise at every level
  // every checkpoint is read and checked before any work
  const models = flags.positionals.map((path) => {
    const ckpt = readCheckpoint(path);
    const cfg = validateConfig(ckpt.config);
    const { im_size: size, num_classes: classes } = cfg.model_params;
    if (cfg.dataset_params.name !== 'shapes' || size !== 28 || !classes)
      throw new Error(`${path}: expected a class-conditional shapes checkpoint at 28x28`);
    return { path, ckpt, cfg };
  });
  console.log(`share of ${n} held-out stripes whose x0 estimate D(x0 + sigma eps; sigma) has parallel bars`);
  console.log(['checkpoint', ...SIGMAS.map((s) => `sigma ${s}`)].join(' | '));
  for (const { path, ckpt, cfg } of models) {
    const ema = new UNet(cfg.model_params, new Rng(0));
    restoreCheckpoint(ckpt, path, { ema });
    const objective = objectiveOf(cfg);
    const denoise = objective.denoiser(imageNet(ema, objective), new Array<number>(n).fill(stripes));
    const shares = SIGMAS.map((sigma) => {
      const x = new Tensor(
        x0.map((v, i) => v + sigma * eps[i]),
        [n, 3, 28, 28],
      );
      return parallelBarsShare(toUnit(denoise(x, { s: sigma, a: 1 }), 1), n, 28).toFixed(2);
    });
    console.log([path, ...shares].join(' | '));
  }
});
