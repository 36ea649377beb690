// What the data-parallel thread and its workers say to each other (data-parallel.ts, grad-worker.ts).
import type { UNetConfig } from '../nn/unet-config.ts';
import type { ObjectiveSpec } from '../diffusion/objectives.ts';
import type { Tensor } from '../tensor.ts';
import { envVar, isNode } from '../env.ts';
import { adoptAutoLock, setKernelThreads, useBackend } from '../kernels/select.ts';

/** workerData: the model to build, the backend to run it on, and the shared weight and gradient arrays. */
export type WorkerSetup = {
  model: UNetConfig;
  objective: ObjectiveSpec;
  backend: string;
  /** The modules that register the backends (core/kernels/select.ts backendModules). */
  backendModules: string[];
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  kernelThreads: number;
  /** The starting thread's lock under which 'auto' measures (core/kernels/auto.ts). */
  autoLock: Int32Array | null;
};

/** One share of a batch: images, their noise levels and their noise. */
export type GradRequest = {
  x0: Float32Array;
  shape: readonly number[];
  levels: number[];
  noise: Float32Array;
  /** A conditional model's labels, one per image. */
  labels?: number[];
};

/** The share's mean loss (its gradient is in the worker's slot), or what went wrong; `ready` on start. */
export type GradReply = { loss: number } | { ready: string } | { error: string };

/**
 * A worker's start (grad-worker.ts, forward-worker.ts): registers the backends the main thread's program
 * registered (the core imports none itself), takes its share of the cores and activates the backend.
 * Returns the backend's description.
 */
export async function startWorkerBackend(setup: {
  backendModules: string[];
  kernelThreads: number;
  backend: string;
  autoLock: Int32Array | null;
}): Promise<string> {
  // a page's worker bundle imports its backends itself (web/forward-worker.ts)
  if (isNode) for (const url of setup.backendModules) await import(url);
  if (!envVar('DIFFUSION_THREADS')) setKernelThreads(setup.kernelThreads);
  adoptAutoLock(setup.autoLock); // 'auto' measures one thread at a time, the starting one included
  return useBackend(setup.backend);
}

/** Every parameter's values (or gradients) one after another, in parameters() order, into `flat`. */
export function copyOut(params: Tensor[], flat: Float32Array, grads = false): void {
  let at = 0;
  for (const p of params) {
    const src = grads ? p.grad?.data : p.data;
    if (src) flat.set(src, at);
    else flat.fill(0, at, at + p.size);
    at += p.size;
  }
}

/** The inverse of copyOut for values: `flat` back into the parameters. */
export function copyIn(flat: Float32Array, params: Tensor[]): void {
  let at = 0;
  for (const p of params) {
    p.data.set(flat.subarray(at, at + p.size));
    at += p.size;
  }
}
