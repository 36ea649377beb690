// gpu.js kernels against their TypeScript twins in every gpu.js mode Node offers here: plain
// JavaScript (cpu), WebAssembly SIMD (webasm, synchronous) and the async contract (webasm threads).
// The same kernels are checked on webgl2 and webgpu in headless Chromium by tests/browser.test.ts; the
// cases for im2col, col2im, the conv2d forward pass, GroupNorm and softmax are shared with it (gpu/parity.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GPU } from 'gpu.js';
import { Adam, parameter, Rng, tensor } from '../../core/index.ts';
import { gemmTs } from '../../core/kernels/ts.ts';
import { backendKernels } from '../../core/kernels/registry.ts';
import '../../gpu/backend.ts';
import { GpuKernels } from '../../gpu/kernels.ts';
import { parity } from '../helpers/parity.ts';

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

  test(`gpu.js ${mode}: im2col, col2im, the conv2d forward pass, GroupNorm and softmax equal their TypeScript twins`, async () => {
    const kernels = new GpuKernels(new GPU({ mode }));
    const rng = new Rng(5);
    const results = await parity(kernels, (n) => rng.randn([n]).data as Float32Array);
    // the bar of tests/kernels.test.ts: error below 1e-5 sqrt(terms summed) (1 + |want|)
    for (const r of results) {
      assert.ok(r.cases > 0, `${r.kernel}: no case ran`);
      assert.ok(r.worst < 1e-5, `${mode} ${r.kernel}: error ${r.worst} at ${r.where}`);
    }
    // gpu.js falls back silently (to cpu) when a backend cannot take a kernel: insist on the one asked for
    assert.equal([...kernels.ran], [mode === 'async' ? 'webasm' : mode]);
    if (mode === 'async') {
      for (const key of ['im2col', 'col2im', 'gnApply', 'gnGx', 'softmaxDivide', 'softmaxGx']) {
        assert.ok(kernels.threaded.has(key), `async: ${key} never ran on webasm's worker threads`);
      }
    }
    await kernels.destroy();
  });
}

test('gpu kernels reject float64 arrays and arrays too short for the shape, naming them', () => {
  const kernels = new GpuKernels(new GPU({ mode: 'cpu' }));
  const geo = { batch: 1, channels: 2, height: 3, width: 3, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, outH: 3, outW: 3 }; // prettier-ignore
  assert.throws(
    () => kernels.im2col({ ...geo, x: new Float64Array(18), cols: new Float32Array(162) }),
    /gpu im2col: x must be a Float32Array/,
  );
  assert.throws(
    () => kernels.col2im({ ...geo, x: new Float32Array(18), cols: new Float32Array(100) }),
    /gpu col2im: cols has 100 elements; the shape given needs 162/,
  );
  const gn = { x: new Float32Array(12), batch: 1, channels: 4, spatial: 3, groups: 3, weight: null };
  assert.throws(
    () => kernels.groupNormBackward({ ...gn, mean: new Float32Array(3), rstd: new Float32Array(3), gy: new Float32Array(12), gx: null, gWeight: null, gBias: null }), // prettier-ignore
    /gpu groupNormBackward: 4 channels cannot be split into 3 groups/,
  );
});

test('past 2^24 elements the gpu kernels refuse, and the gpu backend runs the ts twin instead', () => {
  // gpu.js indexes in float32: on webasm this im2col read wrong pixels past element 2^24 before the check
  const side = 4097; // 4097^2 = 2^24 + 8193 pixels, copied one to one by a 1x1 window
  const geo = { batch: 1, channels: 1, height: side, width: side, kh: 1, kw: 1, strideH: 1, strideW: 1, padH: 0, padW: 0, outH: side, outW: side }; // prettier-ignore
  const x = new Float32Array(side * side).map((_, i) => i % 1009);
  const kernels = new GpuKernels(new GPU({ mode: 'webasm' }));
  assert.throws(() => kernels.im2col({ ...geo, x, cols: new Float32Array(x.length) }), /more than the 2\^24/);
  const cols = new Float32Array(x.length);
  backendKernels('gpu').im2col?.({ ...geo, x, cols });
  assert.ok(
    cols.every((v, i) => v === x[i]),
    'the gpu backend im2col past 2^24 elements',
  );
});

test.run();
