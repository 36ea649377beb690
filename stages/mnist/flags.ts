// The flags of stage:mnist's three commands, declared once; each command takes a subset.
import type { FlagSpec, Flags } from '../lib/cli.ts';
import { BACKEND_FLAG } from '../lib/flags.ts';

/**
 * The guidance a class-conditional checkpoint samples with unless --guidance and --guidance-interval say
 * otherwise: the scale W, and the noise levels sigma where it applies (docs/mnist-class.md measures them).
 */
export const GUIDANCE = { scale: 2, interval: [0.5, 5] as [number, number] };

const FLAGS = {
  config: {
    type: 'string',
    default: 'stages/mnist/fast.json',
    help: 'training config (JSON): fast.json, about 30 minutes here; default.json, the long recipe of the committed checkpoint',
  },
  set: {
    type: 'list',
    placeholder: 'SECTION.FIELD=VALUE',
    help: 'override a config field, e.g. --set train_params.lr=2e-4 (repeatable; checked like the file)',
  },
  checkpoint: {
    type: 'string',
    default: 'stages/mnist/default.safetensors',
    help: 'checkpoint to sample from',
  },
  out: { type: 'string', default: 'out/mnist', help: 'folder for the checkpoint, log, samples and scores' },
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
    help: 'every N minutes of training, draw 8 digits from the EMA weights under the progress bar and judge 32; at 2, 5% of the training time here (0: no preview)',
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
    help: "a class-conditional checkpoint's digits: all (N spread over 0..9, a grid row each; the default) or a list like 0,3,7",
  },
  guidance: {
    type: 'string',
    default: '',
    help: `classifier-free guidance W of a class-conditional checkpoint: D = D_uncond + W (D_cond - D_uncond), 1 none, 0 unconditional (default ${GUIDANCE.scale}, the W recommended by measurement)`,
  },
  'guidance-interval': {
    type: 'string',
    default: '',
    help: `guide only at noise levels sigma in LO,HI, the conditional prediction alone elsewhere; all: every level (default ${GUIDANCE.interval.join(',')}, measured)`,
  },
  'clip-x0': { type: 'boolean', help: 'clamp each x0 prediction to [-1, 1] before the step' },
  quiet: { type: 'boolean', help: 'no progress bar' },
  ...BACKEND_FLAG,
} as const satisfies Record<string, FlagSpec>;

/** The flags of one command: a subset of FLAGS, in their declared order. */
function pick<K extends keyof typeof FLAGS>(...names: K[]): Pick<typeof FLAGS, K> {
  return Object.fromEntries(names.map((k) => [k, FLAGS[k]])) as Pick<typeof FLAGS, K>;
}

export const TRAIN_FLAGS = pick(
  ...(['config', 'set', 'out', 'seed', 'fresh', 'minutes', 'snapshot-minutes', 'preview-minutes'] as const),
  ...(['no-sample', 'quiet', 'backend', 'threads'] as const),
);
export const SAMPLE_FLAGS = {
  ...pick(
    'checkpoint',
    'n',
    'steps',
    'sampler',
    'classes',
    'guidance',
    'guidance-interval',
    'seed',
    'clip-x0',
  ),
  out: { ...FLAGS.out, default: 'out/mnist-samples', help: 'output folder' },
  ...pick('quiet', 'backend'),
} as const;
export const JUDGE_FLAGS = pick('backend');

export type TrainFlags = Flags<typeof TRAIN_FLAGS>;
export type SampleFlags = Flags<typeof SAMPLE_FLAGS>;
export type JudgeFlags = Flags<typeof JUDGE_FLAGS> & { positionals: string[] };
