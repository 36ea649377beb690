// Training checkpoints as safetensors: the model's weights under `model.`, the EMA weights under `ema.`,
// the optimiser's buffers under `optim.`, and in the metadata the config and the training state (step,
// images seen, seconds of training, the data-loader's position). A "release" checkpoint keeps only
// `ema.` (what sampling uses), which is enough for `sample` and a quarter of the size. Extra EMAs tracked
// for comparison (train_params.ema_sigma_rels) go under their own prefixes, e.g. `ema_sigma0.05.`.
import { Tensor } from '../tensor.ts';
import type { Module } from '../nn/module.ts';
import type { Optimizer } from '../optim.ts';
import {
  loadModule,
  moduleTensors,
  readSafetensors,
  requireFinite,
  writeSafetensors,
  type SafetensorsFile,
} from './safetensors.ts';

export type TrainingState = { step: number; images: number; seconds: number };

export function saveCheckpoint(
  path: string,
  parts: {
    model?: Module;
    ema: Module;
    optimizer?: Optimizer;
    extras?: ReadonlyMap<string, Module>;
    config: unknown;
    state: TrainingState;
  },
): void {
  const tensors = moduleTensors(parts.ema, 'ema.');
  for (const [name, m] of parts.extras ?? [])
    for (const [k, t] of moduleTensors(m, `${name}.`)) tensors.set(k, t);
  if (parts.model) for (const [k, t] of moduleTensors(parts.model, 'model.')) tensors.set(k, t);
  if (parts.optimizer) {
    for (const [k, buf] of parts.optimizer.stateBuffers())
      tensors.set(`optim.${k}`, new Tensor(buf, [buf.length]));
  }
  writeSafetensors(path, tensors, {
    format: 'diffusion-ts checkpoint 1',
    config: JSON.stringify(parts.config),
    state: JSON.stringify({ ...parts.state, optimizerSteps: parts.optimizer?.stepCount ?? 0 }),
  });
}

export type Checkpoint = {
  file: SafetensorsFile;
  config: unknown;
  state: TrainingState & { optimizerSteps: number };
  full: boolean;
};

/** Reads a checkpoint's metadata; errors name the file and what is wrong. */
export function readCheckpoint(path: string): Checkpoint {
  return parseCheckpoint(readSafetensors(path), path);
}

/** A checkpoint from a parsed safetensors file (a page fetches the bytes); errors name `path`. */
export function parseCheckpoint(file: SafetensorsFile, path: string): Checkpoint {
  const meta = file.metadata;
  if (!meta.config || !meta.state)
    throw new Error(`${path}: not a training checkpoint (no config/state metadata)`);
  let config: unknown;
  let state: unknown;
  try {
    config = JSON.parse(meta.config);
    state = JSON.parse(meta.state);
  } catch {
    throw new Error(`${path}: the checkpoint's metadata is not valid JSON`);
  }
  const full = [...file.tensors.keys()].some((k) => k.startsWith('model.'));
  return { file, config, state: checkState(state, path), full };
}

/** The training state of the metadata: counts that are whole and not negative, seconds finite. */
function checkState(state: unknown, path: string): Checkpoint['state'] {
  const s = (typeof state === 'object' && state !== null ? state : {}) as Record<string, unknown>;
  const count = (key: string, whole: boolean) => {
    const v = s[key] ?? (key === 'optimizerSteps' ? 0 : undefined);
    const ok = typeof v === 'number' && Number.isFinite(v) && v >= 0 && (!whole || Number.isInteger(v));
    if (!ok) {
      throw new Error(
        `${path}: the checkpoint's state.${key} is ${JSON.stringify(v)}, not ${whole ? 'a whole number' : 'a number'} >= 0`,
      );
    }
    return v as number;
  };
  return {
    step: count('step', true),
    images: count('images', true),
    seconds: count('seconds', false),
    optimizerSteps: count('optimizerSteps', true),
  };
}

/** Loads the EMA weights (and, for a full checkpoint, the model and the optimiser) into live objects. */
export function restoreCheckpoint(
  ckpt: Checkpoint,
  path: string,
  parts: { ema: Module; model?: Module; optimizer?: Optimizer; extras?: ReadonlyMap<string, Module> },
): void {
  loadModule(ckpt.file, parts.ema, 'ema.', path);
  for (const [name, m] of parts.extras ?? []) loadModule(ckpt.file, m, `${name}.`, path);
  if (parts.model) {
    if (!ckpt.full)
      throw new Error(`${path}: a release checkpoint (EMA weights only) cannot resume training`);
    loadModule(ckpt.file, parts.model, 'model.', path);
  }
  if (parts.optimizer) {
    const saved = new Map<string, ArrayLike<number>>();
    for (const [k, t] of ckpt.file.tensors) {
      if (!k.startsWith('optim.')) continue;
      requireFinite(k, t, path);
      saved.set(k.slice(6), t.data);
    }
    try {
      parts.optimizer.loadStateBuffers(saved, ckpt.state.optimizerSteps);
    } catch (e) {
      throw new Error(`${path}: ${(e as Error).message}`);
    }
  }
}
