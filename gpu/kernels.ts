// The hot kernels written for gpu.js. gpu.js turns each kernel body into GLSL (webgl2, headlessgl),
// WGSL (webgpu), WebAssembly with SIMD (webasm) or plain JavaScript (cpu), and runs one "thread" per
// output element. The bodies are given as source text, because a bundler or TypeScript runner may
// rewrite a function's source in ways the gpu.js parser does not expect.
//
// Shapes enter as constants (loop bounds must be constants: gpu.js caps loops over an argument at
// loopMaxIterations, and silently truncates them), so each shape compiles its own kernel, once.
// Every method here returns its result, or a Promise of it when the GPU instance runs in async mode
// (webgpu, or webasm with threads); the synchronous backend in backend.ts uses sync modes only.
import { GPU, type IKernelRunShortcut, type KernelOutput } from 'gpu.js';
import type { AdamArgs, GemmArgs } from '../core/kernels/registry.ts';

export type MaybePromise<T> = T | Promise<T>;

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

function flat(out: KernelOutput): Float32Array {
  if (out instanceof Float32Array) return out;
  throw new Error('gpu kernel: expected a flat Float32Array result');
}

export class GpuKernels {
  private readonly cache = new Map<string, IKernelRunShortcut>();
  /** The backends that actually ran this instance's kernels (gpu.js may fall back, e.g. to cpu). */
  readonly ran = new Set<string>();

  constructor(readonly gpu: GPU) {}

  /** The gpu.js mode that actually runs kernels (after its own fallbacks). */
  get mode(): string {
    return this.gpu.mode;
  }

  /** Notes which backend ran kernel `k` (readable only after its first call). */
  private note(k: IKernelRunShortcut): void {
    const impl = (k as unknown as { kernel?: { constructor?: { mode?: string; name?: string } } }).kernel
      ?.constructor;
    // the GL kernels all report mode 'gpu'; their class names tell WebGL, WebGL2 and headless GL apart
    const byClass: Record<string, string> = {
      WebGLKernel: 'webgl',
      WebGL2Kernel: 'webgl2',
      HeadlessGLKernel: 'headlessgl',
    };
    const mode = (impl?.name && byClass[impl.name]) || impl?.mode;
    if (mode) this.ran.add(mode);
  }

  private kernel(
    source: string,
    key: string,
    size: number,
    constants: Record<string, number>,
  ): IKernelRunShortcut {
    const id = `${key}|${size}|${JSON.stringify(constants)}`;
    let k = this.cache.get(id);
    if (!k) {
      k = this.gpu.createKernel(source, {
        output: [size],
        constants,
        precision: 'single',
        tactic: 'precision',
      });
      this.cache.set(id, k);
    }
    return k;
  }

  gemm({ a, b, c, m, n, k, transA, transB, accumulate }: GemmArgs): MaybePromise<void> {
    if (!(a instanceof Float32Array) || !(b instanceof Float32Array)) {
      throw new Error('gpu gemm: float32 operands only (float64 runs on the ts backend)');
    }
    const constants = {
      n,
      k,
      sai: transA ? 1 : k,
      sap: transA ? m : 1,
      sbp: transB ? 1 : n,
      sbj: transB ? k : 1,
    };
    const run = this.kernel(GEMM_SOURCE, 'gemm', m * n, constants);
    const write = (out: KernelOutput) => {
      this.note(run);
      const r = flat(out);
      if (!accumulate) c.set(r.subarray(0, m * n));
      else for (let i = 0; i < m * n; i++) c[i] += r[i];
    };
    const out = run(a.subarray(0, m * k), b.subarray(0, k * n)) as KernelOutput | Promise<KernelOutput>;
    return out instanceof Promise ? out.then(write) : write(out);
  }

  adam(args: AdamArgs): MaybePromise<void> {
    const [p, g, m, v] = [args.p, args.g, args.m, args.v].map((a) => {
      if (!(a instanceof Float32Array)) throw new Error('gpu adam: float32 arrays only');
      return a;
    });
    const n = p.length;
    const c = { b1: args.b1, b2: args.b2, l2: args.l2 };
    const mNew = this.kernel(ADAM_M_SOURCE, 'adamM', n, c)(m, g, p) as KernelOutput | Promise<KernelOutput>;
    const vNew = this.kernel(ADAM_V_SOURCE, 'adamV', n, c)(v, g, p) as KernelOutput | Promise<KernelOutput>;
    const finish = (mk: KernelOutput, vk: KernelOutput) => {
      m.set(flat(mk));
      v.set(flat(vk));
      // the per-step numbers are arguments, not constants, so the kernel compiles once
      const update = this.kernel(ADAM_P_SOURCE, 'adamP', n, { eps: args.eps });
      const pNew = update(p, m, v, args.decay, args.stepSize, args.sqrtBc2) as
        KernelOutput | Promise<KernelOutput>;
      const done = (r: KernelOutput) => {
        this.note(update);
        p.set(flat(r));
      };
      return pNew instanceof Promise ? pNew.then(done) : done(pNew);
    };
    if (mNew instanceof Promise || vNew instanceof Promise) {
      return Promise.all([mNew, vNew]).then(([mk, vk]) => finish(mk, vk));
    }
    return finish(mNew, vNew);
  }

  destroy(): Promise<void> {
    return this.gpu.destroy();
  }
}
