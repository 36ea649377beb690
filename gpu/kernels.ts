// The hot kernels written for gpu.js. gpu.js turns each kernel body into GLSL (webgl2, headlessgl),
// WGSL (webgpu), WebAssembly with SIMD (webasm) or plain JavaScript (cpu), and runs one "thread" per
// output element. The bodies are given as source text, because a bundler or TypeScript runner may
// rewrite a function's source in ways the gpu.js parser does not expect.
//
// Shapes enter as constants (loop bounds must be constants: gpu.js caps loops over an argument at
// loopMaxIterations, and silently truncates them), so each shape compiles its own kernel, once.
// Every method here returns its result, or a Promise of it when the GPU instance runs in async mode
// (webgpu, or webasm with threads); the synchronous backend in backend.ts uses sync modes only.
// gemm and Adam are here; im2col/col2im and conv2d's forward pass in kernels-conv.ts, GroupNorm and softmax in kernels-norm.ts.
import type {
  AdamArgs,
  ConvForwardArgs,
  GemmArgs,
  GroupNormBackwardArgs,
  GroupNormForwardArgs,
  Im2colArgs,
  SoftmaxArgs,
  SoftmaxBackwardArgs,
} from '../core/kernels/registry.ts';
import { after, all, f32, Launcher, type MaybePromise } from './launch.ts';
import { col2imGpu, conv2dForwardGpu, im2colGpu } from './kernels-conv.ts';
import {
  groupNormBackwardGpu,
  groupNormForwardGpu,
  softmaxBackwardGpu,
  softmaxForwardGpu,
} from './kernels-norm.ts';

export type { MaybePromise } from './launch.ts';

/** C = op(A) op(B) flattened: thread x is the output element i * n + j. */
const GEMM_SOURCE = `function (a, b) {
  const i = Math.floor(this.thread.x / this.constants.n);
  const j = this.thread.x - i * this.constants.n;
  let sum = 0;
  for (let p = 0; p < this.constants.k; p++) {
    sum += a[i * this.constants.sai + p * this.constants.sap] * b[p * this.constants.sbp + j * this.constants.sbj];
  }
  return sum;
}`;

/**
 * Adam's update (Kingma & Ba 2015), one kernel per updated array (m and v from the old state, then p):
 * m' = b1 m + (1 - b1) g, v' = b2 v + (1 - b2) g^2, p' = p decay - stepSize m' / (sqrt(v') / sqrtBc2 + eps).
 */
const ADAM_M_SOURCE = `function (m, g, p) {
  const gi = g[this.thread.x] + this.constants.l2 * p[this.thread.x];
  return this.constants.b1 * m[this.thread.x] + (1 - this.constants.b1) * gi;
}`;
const ADAM_V_SOURCE = `function (v, g, p) {
  const gi = g[this.thread.x] + this.constants.l2 * p[this.thread.x];
  return this.constants.b2 * v[this.thread.x] + (1 - this.constants.b2) * gi * gi;
}`;
const ADAM_P_SOURCE = `function (p, m, v, decay, stepSize, sqrtBc2) {
  const denom = Math.sqrt(v[this.thread.x]) / sqrtBc2 + this.constants.eps;
  return p[this.thread.x] * decay - stepSize * m[this.thread.x] / denom;
}`;

export class GpuKernels extends Launcher {
  gemm({ a, b, c, m, n, k, transA, transB, accumulate }: GemmArgs): MaybePromise<void> {
    const A = f32('gemm', 'a', a, m * k);
    const B = f32('gemm', 'b', b, k * n);
    const C = f32('gemm', 'c', c, m * n);
    if (m * n === 0) return;
    const constants = {
      n,
      k,
      sai: transA ? 1 : k,
      sap: transA ? m : 1,
      sbp: transB ? 1 : n,
      sbj: transB ? k : 1,
    };
    return after(this.launch(GEMM_SOURCE, 'gemm', m * n, constants, A, B), (r) => {
      if (!accumulate) C.set(r);
      else for (let i = 0; i < m * n; i++) C[i] += r[i];
    });
  }

  adam(args: AdamArgs): MaybePromise<void> {
    const n = args.p.length;
    const [p, g, m, v] = (['p', 'g', 'm', 'v'] as const).map((name) => f32('adam', name, args[name], n));
    const c = { b1: args.b1, b2: args.b2, l2: args.l2 };
    const moments = all([
      this.launch(ADAM_M_SOURCE, 'adamM', n, c, m, g, p),
      this.launch(ADAM_V_SOURCE, 'adamV', n, c, v, g, p),
    ]);
    return after(moments, ([mNew, vNew]) => {
      m.set(mNew);
      v.set(vNew);
      // the per-step numbers are arguments, not constants, so the kernel compiles once
      const { decay, stepSize, sqrtBc2 } = args;
      const pNew = this.launch(
        ADAM_P_SOURCE,
        'adamP',
        n,
        { eps: args.eps },
        p,
        m,
        v,
        decay,
        stepSize,
        sqrtBc2,
      );
      return after(pNew, (r) => p.set(r));
    });
  }

  im2col(args: Im2colArgs): MaybePromise<void> {
    return im2colGpu(this, args);
  }

  conv2dForward(args: ConvForwardArgs): MaybePromise<void> {
    return conv2dForwardGpu(this, args);
  }

  /** Adds onto args.x, like the TypeScript col2im. */
  col2im(args: Im2colArgs): MaybePromise<void> {
    return col2imGpu(this, args);
  }

  groupNormForward(args: GroupNormForwardArgs): MaybePromise<void> {
    return groupNormForwardGpu(this, args);
  }

  groupNormBackward(args: GroupNormBackwardArgs): MaybePromise<void> {
    return groupNormBackwardGpu(this, args);
  }

  softmaxForward(args: SoftmaxArgs): MaybePromise<void> {
    return softmaxForwardGpu(this, args);
  }

  softmaxBackward(args: SoftmaxBackwardArgs): MaybePromise<void> {
    return softmaxBackwardGpu(this, args);
  }
}
