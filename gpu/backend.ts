// The 'gpu' backend: the kernels of gpu/kernels.ts on a synchronous gpu.js instance. gpu.js picks
// headlessgl or webgl2 where a GL context exists, else its WebAssembly (SIMD) backend, else plain
// JavaScript; DIFFUSION_GPU_MODE forces one (cpu, webasm, webgl2, headlessgl, gpu). The autograd engine
// is synchronous, so this backend never uses the Promise-returning modes (async, webgpu): on this
// machine their threads did not repay the extra copies (see docs/performance.md), and WebGPU has no
// synchronous readback at all.
import { GPU } from 'gpu.js';
import { envVar } from '../core/env.ts';
import { registerBackend } from '../core/kernels/registry.ts';
import { adamTs, gemmTs } from '../core/kernels/ts.ts';
import { col2imTs, conv2dForwardTs, im2colTs } from '../core/kernels/ts-conv.ts';
import {
  groupNormBackwardTs,
  groupNormForwardTs,
  softmaxBackwardTs,
  softmaxForwardTs,
} from '../core/kernels/ts-norm.ts';
import { GpuKernels } from './kernels.ts';
import './index.ts'; // the backend's description, for programs that import this file directly
import { TooLargeError, type MaybePromise } from './launch.ts';

export const SYNC_GPU_MODES = ['gpu', 'cpu', 'webasm', 'webgl2', 'webgl', 'headlessgl'] as const;
export type SyncGpuMode = (typeof SYNC_GPU_MODES)[number];

let kernels: GpuKernels | null = null;

export function gpuKernels(): GpuKernels {
  if (!kernels) {
    const requested = envVar('DIFFUSION_GPU_MODE') ?? 'gpu';
    if (!(SYNC_GPU_MODES as readonly string[]).includes(requested)) {
      throw new Error(`DIFFUSION_GPU_MODE must be one of ${SYNC_GPU_MODES.join(', ')}; got '${requested}'`);
    }
    kernels = new GpuKernels(new GPU({ mode: requested as SyncGpuMode }));
  }
  return kernels;
}

/**
 * The gpu.js kernel, synchronously; or, for arrays past 2^24 elements, where gpu.js's float32 indices
 * would silently read the wrong elements (see launch.ts), the TypeScript twin. The check runs before
 * the gpu.js kernel writes anything.
 */
function gpuOrTs<A>(gpu: (k: GpuKernels, args: A) => MaybePromise<void>, ts: (args: A) => void) {
  return (args: A): void => {
    let result: MaybePromise<void>;
    try {
      result = gpu(gpuKernels(), args);
    } catch (err) {
      if (err instanceof TooLargeError) return ts(args);
      throw err;
    }
    if (result instanceof Promise)
      throw new Error('gpu backend: a synchronous gpu.js mode returned a Promise');
  };
}

// the kernels gpu/kernels.ts implements (the rest fall back to ts)
registerBackend('gpu', {
  gemm: gpuOrTs((k, a) => k.gemm(a), gemmTs),
  im2col: gpuOrTs((k, a) => k.im2col(a), im2colTs),
  col2im: gpuOrTs((k, a) => k.col2im(a), col2imTs),
  conv2dForward: gpuOrTs((k, a) => k.conv2dForward(a), conv2dForwardTs),
  groupNormForward: gpuOrTs((k, a) => k.groupNormForward(a), groupNormForwardTs),
  groupNormBackward: gpuOrTs((k, a) => k.groupNormBackward(a), groupNormBackwardTs),
  softmaxForward: gpuOrTs((k, a) => k.softmaxForward(a), softmaxForwardTs),
  softmaxBackward: gpuOrTs((k, a) => k.softmaxBackward(a), softmaxBackwardTs),
  adamUpdate: gpuOrTs((k, a) => k.adam(a), adamTs),
});

/** Runs one tiny kernel to learn which gpu.js mode really runs, and says so: 'gpu (gpu.js webasm)'. */
export function describeGpu(): string {
  const k = gpuKernels();
  k.gemm({ a: new Float32Array(1), b: new Float32Array(1), c: new Float32Array(1), m: 1, n: 1, k: 1, transA: false, transB: false, accumulate: false }); // prettier-ignore
  return `gpu (gpu.js ${[...k.ran].join('+') || k.mode})`;
}
