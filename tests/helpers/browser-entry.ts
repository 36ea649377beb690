// Bundled for headless Chromium by tests/browser.test.ts: runs the gpu/ kernels on a real WebGL2 or
// WebGPU context (SwiftShader) and compares them with the TypeScript kernels in the page.
import { GPU } from 'gpu.js';
import { gemmTs } from '../../core/kernels/ts.ts';
import { GpuKernels } from '../../gpu/kernels.ts';
import { parity as kernelParity, type Worst } from './parity.ts';

export type Report = {
  /** Every backend that ran a kernel, and which one ran each kernel (by its key in gpu/). */
  ran: string[];
  ranBy: Record<string, string>;
  /** Whether kernels handed textures to each other (gpu.js's pipeline mode, GL only). */
  pipeline: boolean;
  /** gemm and Adam: the worst |got - want| / (1 + |want|). */
  worst: number;
  where: string;
  /** im2col, col2im, GroupNorm and softmax (gpu/parity.ts), with any error a kernel threw. */
  kernels: Worst[];
};

// A small deterministic generator: this page must not depend on Math.random either.
function seeded(seed: number): (n: number) => Float32Array {
  let s = seed >>> 0;
  return (n) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[i] = s / 2 ** 31 - 1;
    }
    return out;
  };
}

function filled(n: number, seed: number): Float32Array {
  return seeded(seed)(n);
}

async function parity(mode: 'webgl2' | 'webgpu'): Promise<Report> {
  const kernels = new GpuKernels(new GPU({ mode }));
  let worst = 0;
  let where = '';
  const check = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
      if (!(err <= worst)) [worst, where] = [Number.isNaN(err) ? Infinity : err, `${what}[${i}]: ${got[i]} vs ${want[i]}`]; // prettier-ignore
    }
  };
  let seed = 1;
  for (const [m, n, k] of [
    [1, 1, 1],
    [3, 5, 7],
    [16, 9, 33],
    [31, 17, 64],
    [70, 130, 300],
  ]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = filled(m * k, seed++);
        const b = filled(k * n, seed++);
        const c0 = filled(m * n, seed++);
        for (const accumulate of [false, true]) {
          const want = c0.slice();
          gemmTs({ a, b, c: want, m, n, k, transA, transB, accumulate });
          const got = c0.slice();
          await kernels.gemm({ a, b, c: got, m, n, k, transA, transB, accumulate });
          check(got, want, `gemm ${m}x${n}x${k} tA=${transA} tB=${transB} acc=${accumulate}`);
        }
      }
    }
  }
  // Adam: one step from zero state against the closed form (m = (1-b1) g, v = (1-b2) g^2).
  const p = filled(101, 99);
  const g = filled(101, 100);
  const want = p.map((pi, i) => {
    const m = 0.1 * g[i];
    const v = 0.001 * g[i] * g[i];
    return pi - (0.01 / 0.1) * (m / (Math.sqrt(v) / Math.sqrt(0.001) + 1e-8));
  });
  const got = p.slice();
  await kernels.adam({
    p: got,
    g,
    m: new Float32Array(101),
    v: new Float32Array(101),
    b1: 0.9,
    b2: 0.999,
    eps: 1e-8,
    l2: 0,
    decay: 1,
    stepSize: 0.01 / 0.1,
    sqrtBc2: Math.sqrt(0.001),
  });
  check(got, want, 'adam');
  const others = await kernelParity(kernels, seeded(7));
  const ranBy = Object.fromEntries(kernels.ranBy);
  await kernels.destroy();
  return { ran: [...kernels.ran], ranBy, pipeline: kernels.pipeline, worst, where, kernels: others };
}

(globalThis as unknown as { parity: typeof parity }).parity = parity;
