// The 'wasm' backend: hand-assembled WebAssembly SIMD kernels, multi-threaded across the machine's
// cores. A program registers it by importing this file; where the engine does not validate SIMD it
// registers as unavailable, saying why. The engine is created lazily on the first call.
import { cpuCount, envVar, isNode, sharedMemory } from '../../env.ts';
import type { Storage } from '../../tensor.ts';
import { registerBackend } from '../registry.ts';
import { gemmModuleBytes } from './gemm-module.ts';
import { WasmEngine } from './engine.ts';

let threadsSet: number | null = null;

/**
 * Threads for the wasm kernels: as set below, else DIFFUSION_THREADS, else one per core (at most 4);
 * one in a page that is not cross-origin isolated, where threads cannot share memory.
 */
export function wasmThreads(): number {
  if (!sharedMemory()) return 1;
  if (threadsSet !== null) return threadsSet;
  const env = Number(envVar('DIFFUSION_THREADS'));
  return Number.isInteger(env) && env >= 1 ? env : Math.min(4, cpuCount());
}

/**
 * Fixes the engine's thread count (data-parallel training shares the cores out between its threads);
 * null goes back to the default. A running engine with another count is replaced between calls.
 */
export function setWasmThreads(n: number | null): void {
  threadsSet = n;
  if (instance && instance.threads !== wasmThreads()) {
    instance.destroy();
    instance = null;
  }
}

/** Whether this JavaScript engine runs WebAssembly SIMD (validated on the kernels' own module). */
function simdSupported(): boolean {
  try {
    return WebAssembly.validate(gemmModuleBytes(false, 1));
  } catch {
    return false;
  }
}

export const wasmAvailable = simdSupported();

let instance: WasmEngine | null = null;

/** The engine, created on first use; float64 operands are refused (they run on the ts backend). */
function engine(...arrays: Storage[]): WasmEngine {
  if (!arrays.every((a) => a instanceof Float32Array)) {
    throw new Error('wasm kernels: float32 operands only (float64 runs on the ts backend)');
  }
  return created();
}

function created(): WasmEngine {
  instance ??= new WasmEngine(wasmThreads());
  return instance;
}

registerBackend(
  'wasm',
  wasmAvailable
    ? {
        gemm: (a) => engine(a.a, a.b, a.c).gemm(a),
        conv2dForward: (a) => engine(a.x, a.w, a.out).conv2dForward(a),
        conv2dBackwardFilter: (a) => engine(a.x, a.gy, a.gw).conv2dBackwardFilter(a),
        conv2dBackwardInput: (a) => engine(a.w, a.gy, a.gx).conv2dBackwardInput(a),
        softmaxForward: (a) => engine(a.x, a.out).softmaxForward(a),
        softmaxBackward: (a) => engine(a.y, a.gy, a.gx).softmaxBackward(a),
        attentionForward: (a) => engine(a.q, a.k, a.v, a.out).attentionForward(a),
        attentionBackward: (a) => engine(a.q, a.k, a.v, a.gOut).attentionBackward(a),
        siluForward: (a) => engine(a.x, a.out).siluForward(a),
        siluBackward: (a) => engine(a.x, a.g, a.gx).siluBackward(a),
        groupNormForward: (a) => engine(a.x, a.out, a.mean, a.rstd).groupNormForward(a),
        groupNormBackward: (a) => engine(a.x, a.gy, a.mean, a.rstd).groupNormBackward(a),
      }
    : {},
  {
    rank: 0,
    unavailable: wasmAvailable ? undefined : 'this JavaScript engine has no WebAssembly SIMD',
    activate: async () => {
      if (!isNode) await created().ready(); // a page's workers start only while this thread waits (threads.ts)
      return `wasm (${wasmThreads()} thread${wasmThreads() > 1 ? 's' : ''})`;
    },
    module: import.meta.url,
    setThreads: setWasmThreads,
  },
);
