// gpu.js kernels against their TypeScript twins in every gpu.js mode Node offers here: plain
// JavaScript (cpu), WebAssembly SIMD (webasm, synchronous) and the async contract (webasm threads).
// The same kernels are checked on webgl2 and webgpu in headless Chromium by tests/browser.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GPU } from 'gpu.js';
import { Adam, parameter, Rng, tensor } from '../core/index.ts';
import { gemmTs } from '../core/kernels/ts.ts';
import { GpuKernels } from '../gpu/kernels.ts';

const MODES = ['cpu', 'webasm', 'async'] as const;
const SHAPES = [
  [1, 1, 1],
  [3, 5, 7],
  [16, 9, 33],
  [31, 17, 64],
];

function closeTo(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i]));
    assert.ok(err < tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

for (const mode of MODES) {
  test(`gpu.js ${mode}: gemm equals the TypeScript gemm on odd shapes and every transpose`, async () => {
    const kernels = new GpuKernels(new GPU({ mode }));
    const rng = new Rng(3);
    for (const [m, n, k] of SHAPES) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = rng.randn([m * k]).data as Float32Array;
          const b = rng.randn([k * n]).data as Float32Array;
          const c0 = rng.randn([m * n]).data as Float32Array;
          for (const accumulate of [false, true]) {
            const want = c0.slice();
            gemmTs({ a, b, c: want, m, n, k, transA, transB, accumulate });
            const got = c0.slice();
            await kernels.gemm({ a, b, c: got, m, n, k, transA, transB, accumulate });
            closeTo(got, want, 1e-5, `${mode} ${m}x${n}x${k} ${transA} ${transB} ${accumulate}`);
          }
        }
      }
    }
    await kernels.destroy();
  });

  test(`gpu.js ${mode}: three Adam steps equal core/optim.ts's Adam`, async () => {
    const kernels = new GpuKernels(new GPU({ mode }));
    const rng = new Rng(4);
    const n = 37;
    const p0 = rng.randn([n]).data as Float32Array;
    const ref = parameter(tensor(p0));
    const opt = new Adam([ref], { lr: 0.01, weightDecay: 0.1 });
    const p = p0.slice();
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    for (let step = 1; step <= 3; step++) {
      const g = rng.randn([n]).data as Float32Array;
      ref.grad = tensor(g);
      opt.step();
      const stepSize = 0.01 / (1 - 0.9 ** step);
      const sqrtBc2 = Math.sqrt(1 - 0.999 ** step);
      await kernels.adam({ p, g, m, v, b1: 0.9, b2: 0.999, eps: 1e-8, l2: 0.1, decay: 1, stepSize, sqrtBc2 });
    }
    closeTo(p, ref.data, 1e-5, `${mode} adam`);
    await kernels.destroy();
  });
}

test.run();
