// The 'gpu' backend: the kernels of gpu/kernels.ts on a synchronous gpu.js instance. gpu.js picks
// headlessgl or webgl2 where a GL context exists, else its WebAssembly (SIMD) backend, else plain
// JavaScript; DIFFUSION_GPU_MODE forces one (cpu, webasm, webgl2, headlessgl, gpu). The autograd engine
// is synchronous, so this backend never uses the Promise-returning modes (async, webgpu): on this
// machine their threads did not repay the extra copies (see README, "Backends"), and WebGPU has no
// synchronous readback at all.
import { GPU } from 'gpu.js';
import { registerBackend, type AdamArgs, type GemmArgs } from '../core/kernels/registry.ts';
import { GpuKernels } from './kernels.ts';

export const SYNC_GPU_MODES = ['gpu', 'cpu', 'webasm', 'webgl2', 'webgl', 'headlessgl'] as const;
export type SyncGpuMode = (typeof SYNC_GPU_MODES)[number];

let kernels: GpuKernels | null = null;

export function gpuKernels(): GpuKernels {
  if (!kernels) {
    const requested = process.env.DIFFUSION_GPU_MODE ?? 'gpu';
    if (!(SYNC_GPU_MODES as readonly string[]).includes(requested)) {
      throw new Error(`DIFFUSION_GPU_MODE must be one of ${SYNC_GPU_MODES.join(', ')}; got '${requested}'`);
    }
    kernels = new GpuKernels(new GPU({ mode: requested as SyncGpuMode }));
  }
  return kernels;
}

function sync(result: void | Promise<void>): void {
  if (result instanceof Promise) throw new Error('gpu backend: a synchronous gpu.js mode returned a Promise');
}

registerBackend('gpu', {
  gemm(args: GemmArgs) {
    sync(gpuKernels().gemm(args));
  },
  adamUpdate(args: AdamArgs) {
    sync(gpuKernels().adam(args));
  },
});
