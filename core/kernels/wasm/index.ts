// The 'wasm' backend: hand-assembled WebAssembly SIMD kernels, multi-threaded across the machine's
// cores. Registered only where the engine validates SIMD; created lazily on the first call.
import { availableParallelism } from 'node:os';
import { registerBackend, type GemmArgs } from '../registry.ts';
import { WasmGemm, wasmSimdSupported } from './gemm.ts';

/** Threads for the wasm kernels: DIFFUSION_THREADS, else one per core (at most 4). */
export function wasmThreads(): number {
  const env = Number(process.env.DIFFUSION_THREADS);
  return Number.isInteger(env) && env >= 1 ? env : Math.min(4, availableParallelism());
}

let instance: WasmGemm | null = null;

export const wasmAvailable = wasmSimdSupported();

if (wasmAvailable) {
  registerBackend('wasm', {
    gemm(args: GemmArgs) {
      if (
        !(args.c instanceof Float32Array) ||
        !(args.a instanceof Float32Array) ||
        !(args.b instanceof Float32Array)
      ) {
        throw new Error('wasm gemm: float32 operands only (float64 runs on the ts backend)');
      }
      instance ??= new WasmGemm(wasmThreads());
      instance.gemm(args);
    },
  });
}
