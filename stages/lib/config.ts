// The image stage's config: the reference's sections (diffusion_params, model_params, train_params) and
// fields, plus the options this project adds (objective, prediction, EDM's constants, schedules).
// Every field is checked before anything is built, and an error names the field and what it expects.
import { readFileSync } from 'node:fs';
import { SHAPE_CLASSES } from '../../core/data/shapes.ts';
import { MAX_SIGMA_REL } from '../../core/ema.ts';
import { validateUNetConfig, type CheckedUNetConfig } from '../../core/nn/unet-config.ts';
import { makeObjective, type ImageObjective, type ObjectiveSpec } from '../../core/diffusion/objectives.ts';

export type DiffusionParams = {
  num_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: 'linear' | 'cosine';
  /** What the network predicts under the ddpm objective. */
  prediction: 'eps' | 'x0' | 'v';
  /** ddpm: the reference objective; edm: Karras et al. 2022's preconditioning and log-normal sigmas. */
  objective: 'ddpm' | 'edm';
  sigma_data: number;
  p_mean: number;
  p_std: number;
  /** ddpm objective: Min-SNR-gamma loss weighting with this gamma (Hang et al. 2023); 0 = plain MSE. */
  min_snr_gamma: number;
};

export type TrainParams = {
  task_name: string;
  batch_size: number;
  lr: number;
  /** 'constant', or 'cosine' decay to 0 over num_steps, after `warmup_steps` of linear warm-up */
  lr_schedule: 'constant' | 'cosine';
  warmup_steps: number;
  num_steps: number;
  ema_decay: number;
  /** 'inverse': decay min(ema_decay, (1 + step) / (10 + step)), for runs from random weights; 'none': ema_decay
   * from the first step, for runs that start from trained weights (init_from). */
  ema_warmup: 'inverse' | 'none';
  /** Seconds of training between periodic checkpoints. */
  ckpt_every_seconds: number;
  ckpt_name: string;
  /** A checkpoint whose EMA weights start a fresh run (continue a finished run with a new lr schedule). */
  init_from: string;
  num_samples: number;
  num_grid_rows: number;
  sampler: 'ddim' | 'ddpm' | 'heun';
  sample_steps: number;
  /**
   * A class-conditional model (model_params.num_classes): the chance that a training label is replaced
   * by "no class", which teaches the unconditional half of classifier-free guidance (Ho & Salimans 2022).
   */
  cond_drop_prob: number;
  /**
   * sigma_rel of EDM2 power-function EMAs (core/ema.ts) kept beside the ema_decay one, to compare EMA
   * lengths within one run: each is saved in checkpoints, snapshots and at the end; sampling uses the
   * ema_decay one unless pointed at another's file. Empty: none.
   */
  ema_sigma_rels: number[];
};

/** Which images the stage trains on: MNIST's digits (stage:mnist) or the coloured shapes drawn in code (stage:rgb). */
export type DatasetParams = { name: 'mnist' | 'shapes' };

export type StageConfig = {
  dataset_params: DatasetParams;
  diffusion_params: DiffusionParams;
  model_params: CheckedUNetConfig;
  train_params: TrainParams;
};

export class ConfigError extends Error {}

export type Field = {
  /** 'numbers': a list of numbers, each within min and max */
  kind: 'int' | 'number' | 'string' | 'numbers';
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** The bounds themselves are excluded: (min, max) rather than [min, max]. */
  exclusive?: boolean;
  /** For strings: what the value must look like, and how to say so. */
  pattern?: { test: RegExp; says: string };
  default?: number | string | readonly number[];
};

/**
 * Bounds keep a config's allocations possible: a schedule of num_timesteps numbers, a batch of
 * batch_size images, num_samples images at the end, a grid of num_grid_rows^2 images. A file name, not
 * a path, for what the run writes into its own folder.
 */
const FILE_NAME = { test: /^(?!\.\.?$)[^/\\]+$/, says: 'a file name (no folder, no ..)' };

const DATASET: Record<keyof DatasetParams, Field> = {
  name: { kind: 'string', choices: ['mnist', 'shapes'], default: 'mnist' },
};

/**
 * What each data set's images are: the model's im_channels and im_size must match, num_classes too. The
 * one place these facts are written; stages/mnist/data.ts builds each set's description from them.
 */
export const DATASET_SHAPES = {
  mnist: { channels: 1, sizes: [28], classes: 10 },
  shapes: { channels: 3, sizes: [28, 32], classes: SHAPE_CLASSES.length },
} as const;

const DIFFUSION: Record<keyof DiffusionParams, Field> = {
  num_timesteps: { kind: 'int', min: 2, max: 100000 },
  // every beta of a schedule lies in (0, 1), the linear ones between these two
  beta_start: { kind: 'number', min: 0, max: 1, exclusive: true },
  beta_end: { kind: 'number', min: 0, max: 1, exclusive: true },
  beta_schedule: { kind: 'string', choices: ['linear', 'cosine'], default: 'linear' },
  prediction: { kind: 'string', choices: ['eps', 'x0', 'v'], default: 'eps' },
  objective: { kind: 'string', choices: ['ddpm', 'edm'], default: 'ddpm' },
  sigma_data: { kind: 'number', min: 0, default: 0.5 },
  p_mean: { kind: 'number', default: -1.2 },
  p_std: { kind: 'number', min: 0, default: 1.2 },
  min_snr_gamma: { kind: 'number', min: 0, default: 0 },
};

const TRAIN: Record<keyof TrainParams, Field> = {
  task_name: { kind: 'string', default: 'mnist' },
  batch_size: { kind: 'int', min: 1, max: 1024 },
  lr: { kind: 'number', min: 0 },
  lr_schedule: { kind: 'string', choices: ['constant', 'cosine'], default: 'constant' },
  warmup_steps: { kind: 'int', min: 0, default: 0 },
  num_steps: { kind: 'int', min: 1 },
  ema_decay: { kind: 'number', min: 0, max: 0.999999, default: 0.999 },
  ema_warmup: { kind: 'string', choices: ['inverse', 'none'], default: 'inverse' },
  ckpt_every_seconds: { kind: 'number', min: 1, default: 300 },
  ckpt_name: { kind: 'string', default: 'checkpoint.safetensors', pattern: FILE_NAME },
  init_from: { kind: 'string', default: '' },
  num_samples: { kind: 'int', min: 1, max: 100000, default: 100 },
  num_grid_rows: { kind: 'int', min: 1, max: 100, default: 10 },
  sampler: { kind: 'string', choices: ['ddim', 'ddpm', 'heun'], default: 'ddim' },
  sample_steps: { kind: 'int', min: 1, max: 10000, default: 50 },
  cond_drop_prob: { kind: 'number', min: 0, max: 1, default: 0.1 },
  ema_sigma_rels: { kind: 'numbers', min: 0, max: MAX_SIGMA_REL, exclusive: true, default: [] },
};

/** A field's bounds as an interval, e.g. [0, inf) or (0, 1). */
function bounds(f: Field): string {
  const [open, close] = f.exclusive ? ['(', ')'] : ['[', ']'];
  return `${open}${f.min ?? '-inf'}, ${f.max ?? 'inf'}${close}`;
}

/** Whether a number lies within a field's bounds. */
function inRange(f: Field, v: number): boolean {
  if (f.exclusive) return (f.min === undefined || v > f.min) && (f.max === undefined || v < f.max);
  return (f.min === undefined || v >= f.min) && (f.max === undefined || v <= f.max);
}

/** The fields of the two sections this file checks itself (model_params: core/nn/unet-config.ts). */
export const CONFIG_FIELDS = {
  dataset_params: DATASET,
  diffusion_params: DIFFUSION,
  train_params: TRAIN,
} as const;

function section<T>(
  raw: Record<string, unknown>,
  name: string,
  fields: Record<string, Field>,
  optional = false,
): T {
  const src = optional && raw[name] === undefined ? {} : raw[name];
  if (typeof src !== 'object' || src === null || Array.isArray(src)) {
    throw new ConfigError(`config: section '${name}' is missing or not an object`);
  }
  const obj = src as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(key in fields)) throw new ConfigError(`config: unknown field ${name}.${key}`);
  }
  const out: Record<string, number | string | number[]> = {};
  for (const [key, f] of Object.entries(fields)) {
    const path = `${name}.${key}`;
    let v = obj[key];
    if (v === undefined) {
      if (f.default === undefined) throw new ConfigError(`config: missing field ${path}`);
      v = f.default;
    }
    if (f.kind === 'string') {
      if (typeof v !== 'string')
        throw new ConfigError(`config: ${path} must be a string, got ${JSON.stringify(v)}`);
      if (f.choices && !f.choices.includes(v)) {
        throw new ConfigError(`config: ${path} must be one of ${f.choices.join(', ')}; got '${v}'`);
      }
      if (f.pattern && !f.pattern.test.test(v)) {
        throw new ConfigError(`config: ${path} must be ${f.pattern.says}; got ${JSON.stringify(v)}`);
      }
    } else if (f.kind === 'numbers') {
      const ok =
        Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x) && inRange(f, x));
      if (!ok) {
        throw new ConfigError(
          `config: ${path} must be a list of numbers in ${bounds(f)}, got ${JSON.stringify(v)}`,
        );
      }
      v = [...(v as number[])];
    } else {
      const ok = typeof v === 'number' && Number.isFinite(v) && (f.kind === 'number' || Number.isInteger(v));
      if (!ok)
        throw new ConfigError(
          `config: ${path} must be ${f.kind === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`,
        );
      if (!inRange(f, v as number)) {
        throw new ConfigError(`config: ${path} = ${String(v)} is outside ${bounds(f)}`);
      }
    }
    out[key] = v as number | string | number[];
  }
  return out as T;
}

/** Checks a parsed config; throws a ConfigError naming the first bad field. */
export function validateConfig(raw: unknown): StageConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError('config: must be a JSON object');
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!['diffusion_params', 'model_params', 'train_params', 'dataset_params'].includes(key)) {
      throw new ConfigError(`config: unknown section '${key}'`);
    }
  }
  const diffusion = section<DiffusionParams>(obj, 'diffusion_params', DIFFUSION);
  if (diffusion.beta_end <= diffusion.beta_start) {
    throw new ConfigError('config: diffusion_params.beta_end must be larger than beta_start');
  }
  let model: CheckedUNetConfig;
  try {
    model = validateUNetConfig(obj.model_params);
  } catch (e) {
    throw new ConfigError(`config: model_params: ${(e as Error).message.replace(/^UNet config: /, '')}`);
  }
  const train = section<TrainParams>(obj, 'train_params', TRAIN);
  const dataset = section<DatasetParams>(obj, 'dataset_params', DATASET, true);
  checkDataset(dataset, model);
  return { dataset_params: dataset, diffusion_params: diffusion, model_params: model, train_params: train };
}

/** The model must take the data set's images and, when conditional, have one class per class of it. */
function checkDataset(dataset: DatasetParams, model: CheckedUNetConfig): void {
  const want = DATASET_SHAPES[dataset.name];
  const sizes = want.sizes as readonly number[];
  if (model.im_channels !== want.channels || !sizes.includes(model.im_size)) {
    throw new ConfigError(
      `config: dataset ${dataset.name} has ${want.channels}-channel images of ${sizes.map((s) => `${s}x${s}`).join(' or ')}; model_params has im_channels ${model.im_channels}, im_size ${model.im_size}`,
    );
  }
  const classes = model.num_classes ?? 0;
  if (classes !== 0 && classes !== want.classes) {
    throw new ConfigError(
      `config: dataset ${dataset.name} has ${want.classes} classes; model_params.num_classes is ${classes}`,
    );
  }
}

/**
 * Applies command-line overrides to a parsed config, before it is checked like the file: each is
 * `section.field=value` (a dotted path; a number indexes a list), the value read as JSON where it parses
 * (numbers, true/false, [lists]) and as a string otherwise, so `train_params.lr=2e-4` is a number and
 * `train_params.ema_warmup=none` a string.
 */
export function applyOverrides(raw: unknown, sets: readonly string[]): unknown {
  const root = structuredClone(raw) as Record<string, unknown>;
  for (const set of sets) {
    const eq = set.indexOf('=');
    const path = eq > 0 ? set.slice(0, eq).split('.') : [];
    if (path.length < 2 || path.some((k) => k === '')) {
      throw new ConfigError(`--set '${set}': expects section.field=value, e.g. train_params.lr=2e-4`);
    }
    const text = set.slice(eq + 1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = text;
    }
    // a path walks the config's own fields only: '__proto__.x=1' must not reach Object.prototype
    const reserved = path.find((k) => ['__proto__', 'constructor', 'prototype'].includes(k));
    if (reserved) throw new ConfigError(`--set '${set}': '${reserved}' cannot name a config field`);
    // a section a file may leave out can still be set from the command line
    if (path[0] === 'dataset_params' && root.dataset_params === undefined) root.dataset_params = {};
    let node: unknown = root;
    for (const [i, key] of path.slice(0, -1).entries()) {
      const next = Object.hasOwn(node as object, key) ? (node as Record<string, unknown>)[key] : undefined;
      if (typeof next !== 'object' || next === null) {
        throw new ConfigError(
          `--set '${set}': the config has no ${path.slice(0, i + 1).join('.')} to set a field in`,
        );
      }
      node = next;
    }
    (node as Record<string, unknown>)[path[path.length - 1]] = value;
  }
  return root;
}

/** Reads, overrides (see applyOverrides) and checks a config file. */
export function readConfig(path: string, sets: readonly string[] = []): StageConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(
      `config: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config: ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`config: ${path} must hold a JSON object`);
  }
  return validateConfig(applyOverrides(raw, sets));
}

/**
 * The one place where a config becomes the maths' objects: the objective (and its DDPM schedule) as
 * plain numbers. core/diffusion/ never sees the config itself.
 */
export function objectiveSpec(cfg: StageConfig): ObjectiveSpec {
  const d = cfg.diffusion_params;
  const schedule = {
    kind: d.beta_schedule,
    T: d.num_timesteps,
    betaStart: d.beta_start,
    betaEnd: d.beta_end,
  };
  if (d.objective === 'edm') {
    return { kind: 'edm', schedule, sigmaData: d.sigma_data, pMean: d.p_mean, pStd: d.p_std };
  }
  return { kind: 'ddpm', schedule, prediction: d.prediction, minSnrGamma: d.min_snr_gamma };
}

/** The config's training objective. */
export function objectiveOf(cfg: StageConfig): ImageObjective {
  return makeObjective(objectiveSpec(cfg));
}
