// Choosing the backend: `--backend ts|wasm|gpu|auto` on every program, or DIFFUSION_BACKEND.
// 'auto' (the default) measures; see auto.ts. Backends that need a big import (gpu.js) load on demand.
import { wasmAvailable, wasmThreads } from './wasm/index.ts';
import { backendKernels, registerBackend, setBackend, type KernelName, type KernelSet } from './registry.ts';
import { AutoSelector } from './auto.ts';
import './ts.ts';

export const BACKENDS = ['auto', 'ts', 'wasm', 'gpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

const KERNELS: KernelName[] = [
  'gemm',
  'im2col',
  'col2im',
  'conv2dForward',
  'conv2dBackwardFilter',
  'conv2dBackwardInput',
  'groupNormForward',
  'groupNormBackward',
  'softmaxForward',
  'softmaxBackward',
  'adamUpdate',
  'siluForward',
  'siluBackward',
];

export function defaultBackend(): string {
  return process.env.DIFFUSION_BACKEND ?? 'auto';
}

/** Loads the gpu.js backend and runs one tiny kernel to learn which gpu.js mode really runs. */
async function loadGpu(): Promise<string> {
  const { gpuKernels } = await import('../../gpu/backend.ts');
  const k = gpuKernels();
  k.gemm({ a: new Float32Array(1), b: new Float32Array(1), c: new Float32Array(1), m: 1, n: 1, k: 1, transA: false, transB: false, accumulate: false }); // prettier-ignore
  return [...k.ran].join('+') || k.mode;
}

let selector: AutoSelector | null = null;

/** Activates a backend and returns a one-line description of what will run. */
export async function useBackend(name: string, opts: { log?: (line: string) => void } = {}): Promise<string> {
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new Error(`unknown backend '${name}' (choose one of ${BACKENDS.join(', ')})`);
  }
  const wasmText = `wasm (${wasmThreads()} thread${wasmThreads() > 1 ? 's' : ''})`;
  if (name === 'ts') {
    setBackend('ts');
    return 'backend ts (plain TypeScript)';
  }
  if (name === 'wasm') {
    if (!wasmAvailable) throw new Error('backend wasm: this JavaScript engine has no WebAssembly SIMD');
    setBackend('wasm');
    return `backend ${wasmText}`;
  }
  const gpuMode = await loadGpu();
  if (name === 'gpu') {
    setBackend('gpu');
    return `backend gpu (gpu.js ${gpuMode})`;
  }
  const order = [...(wasmAvailable ? ['wasm'] : []), 'ts', 'gpu'];
  selector = new AutoSelector(order, backendKernels, `wasm${wasmThreads()}-gpu_${gpuMode}`, opts.log);
  const dispatch: Partial<KernelSet> = {};
  for (const k of KERNELS) (dispatch as Record<string, unknown>)[k] = selector.dispatcher(k);
  registerBackend('auto', dispatch);
  setBackend('auto');
  return `backend auto: fastest per kernel and shape, measured, among ${[wasmAvailable ? wasmText : '', 'ts', `gpu (gpu.js ${gpuMode})`].filter(Boolean).join(', ')}`;
}

/** What 'auto' chose so far (empty for the other backends). */
export function autoDecisions(): Map<string, string> {
  return selector?.decisions() ?? new Map();
}
