// The flags of the image stage's three commands, declared once; each command takes a subset, and each
// program (stage:mnist, stage:rgb) its own defaults: config, checkpoint and output folder.
import type { FlagSpec, Flags } from '../lib/cli.ts';
import { BACKEND_FLAG } from '../lib/flags.ts';
import { MNIST, shapes, type ImageData } from './data.ts';
import { GUIDANCE } from './draw.ts';
import type { DatasetParams } from '../lib/config.ts';

/** A program of the image stage: its name, its defaults, and the data set of images of a given size. */
export type ImageStage = {
  command: string;
  config: string;
  configHelp: string;
  checkpoint: string;
  out: string;
  /** the data set of its checkpoints (which guidance `sample` defaults to) */
  dataset: DatasetParams['name'];
  dataFor: (size: number) => ImageData;
};

export const MNIST_STAGE: ImageStage = {
  command: 'stage:mnist',
  config: 'stages/mnist/fast.json',
  configHelp: 'fast.json, about 20 minutes here; default.json, the long recipe of the committed checkpoint',
  checkpoint: 'stages/mnist/default.safetensors',
  out: 'out/mnist',
  dataset: 'mnist',
  dataFor: () => MNIST,
};

export const RGB_STAGE: ImageStage = {
  command: 'stage:rgb',
  config: 'stages/rgb/shapes.json',
  configHelp: 'shapes.json, the recipe of the committed checkpoint',
  checkpoint: 'stages/rgb/shapes.safetensors',
  out: 'out/rgb',
  dataset: 'shapes',
  dataFor: (size) => shapes(size === 32 ? 32 : 28),
};

/** Every flag of the three commands, with `stage`'s defaults. */
function allFlags(stage: ImageStage) {
  return {
    config: { type: 'string', default: stage.config, help: `training config (JSON): ${stage.configHelp}` },
    set: {
      type: 'list',
      placeholder: 'SECTION.FIELD=VALUE',
      help: 'override a config field, e.g. --set train_params.lr=2e-4 (repeatable; checked like the file)',
    },
    checkpoint: { type: 'string', default: stage.checkpoint, help: 'checkpoint to sample from' },
    out: { type: 'string', default: stage.out, help: 'folder for the checkpoint, log, samples and scores' },
    seed: { type: 'int', default: 0, help: 'random seed' },
    fresh: { type: 'boolean', help: 'ignore an existing checkpoint and start over' },
    minutes: {
      type: 'float',
      default: 0,
      min: 0,
      help: 'stop after this many minutes of training (0: run num_steps)',
    },
    'snapshot-minutes': {
      type: 'float',
      default: 0,
      min: 0,
      help: 'also keep an EMA snapshot every N minutes',
    },
    'preview-minutes': {
      type: 'float',
      default: 2,
      min: 0,
      help: 'every N minutes of training, draw 8 images from the EMA weights under the progress bar and judge 32; at 2, 5% of the training time here (0: no preview)',
    },
    'no-sample': { type: 'boolean', help: 'skip sampling and judging at the end' },
    threads: {
      type: 'int',
      default: 0,
      min: 0,
      max: 64,
      help: 'threads that split each batch (0: one per core, at most 4; 1 on the gpu backend)',
    },
    n: { type: 'int', default: 100, min: 1, max: 100000, help: 'number of samples' },
    steps: { type: 'int', default: 50, min: 1, max: 10000, help: 'sampler steps (ddim, heun)' },
    sampler: { type: 'string', default: 'ddim', help: 'ddim | ddpm | heun' },
    classes: {
      type: 'string',
      default: '',
      help: "a class-conditional checkpoint's classes: all (N spread over every class in order, a grid row each; the default) or a list of class numbers like 0,3,7",
    },
    guidance: {
      type: 'string',
      default: '',
      help: `classifier-free guidance W of a class-conditional checkpoint: D = D_uncond + W (D_cond - D_uncond), 1 none, 0 unconditional (default ${GUIDANCE[stage.dataset].scale} for ${stage.dataset}, the W recommended by measurement)`,
    },
    'guidance-interval': {
      type: 'string',
      default: '',
      help: `guide only at noise levels sigma in LO,HI, the conditional prediction alone elsewhere; all: every level (default ${GUIDANCE[stage.dataset].interval.join(',')} for ${stage.dataset}, measured)`,
    },
    'clip-x0': { type: 'boolean', help: 'clamp each x0 prediction to [-1, 1] before the step' },
    quiet: { type: 'boolean', help: 'no progress bar' },
    ...BACKEND_FLAG,
  } as const satisfies Record<string, FlagSpec>;
}

/** The flags of each command of `stage`: subsets of allFlags, in their declared order. */
export function stageFlags(stage: ImageStage) {
  const all = allFlags(stage);
  const pick = <K extends keyof typeof all>(...names: K[]): Pick<typeof all, K> =>
    Object.fromEntries(names.map((k) => [k, all[k]])) as Pick<typeof all, K>;
  const train = pick(
    ...(['config', 'set', 'out', 'seed', 'fresh', 'minutes', 'snapshot-minutes', 'preview-minutes'] as const),
    ...(['no-sample', 'quiet', 'backend', 'threads'] as const),
  );
  const sample = {
    ...pick('checkpoint', 'n', 'steps', 'sampler', 'classes', 'guidance', 'guidance-interval', 'seed', 'clip-x0'), // prettier-ignore
    out: { ...all.out, default: `${stage.out}-samples`, help: 'output folder' },
    ...pick('quiet', 'backend', 'threads'),
  } as const;
  return { train, sample, judge: pick('backend') };
}

export const { train: TRAIN_FLAGS, sample: SAMPLE_FLAGS, judge: JUDGE_FLAGS } = stageFlags(MNIST_STAGE);

export type TrainFlags = Flags<typeof TRAIN_FLAGS>;
export type SampleFlags = Flags<typeof SAMPLE_FLAGS>;
export type JudgeFlags = Flags<typeof JUDGE_FLAGS> & { positionals: string[] };
