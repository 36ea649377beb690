// Every registered backend's kernels against a plain float64 triple loop, on odd shapes and every
// transpose/accumulate combination.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../core/index.ts';
import { listBackends, backendKernels } from '../core/kernels/registry.ts';
import '../core/kernels/ts.ts';
import '../core/kernels/wasm/index.ts';
import '../gpu/backend.ts';

function naiveGemm(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  tA: boolean,
  tB: boolean,
) {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++)
        s += (tA ? a[p * m + i] : a[i * k + p]) * (tB ? b[j * k + p] : b[p * n + j]);
      c[i * n + j] = s;
    }
  return c;
}

const shapes = [
  [1, 1, 1],
  [4, 4, 4],
  [5, 7, 3],
  [17, 33, 9],
  [32, 1, 32],
  [3, 64, 65],
  [64, 70, 129],
  [130, 600, 520], // several depth blocks and column blocks, two threads
  [9, 1100, 33],
];

for (const backend of listBackends()) {
  const gemm = backendKernels(backend).gemm;
  if (!gemm) continue;
  test(`${backend} gemm equals the triple loop on odd shapes, all transposes, with and without accumulate`, () => {
    const rng = new Rng(11);
    for (const [m, n, k] of shapes) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = rng.randn([m * k]).data as Float32Array;
          const b = rng.randn([k * n]).data as Float32Array;
          const c0 = rng.randn([m * n]).data as Float32Array;
          const ref = naiveGemm(a, b, m, n, k, transA, transB);
          for (const accumulate of [false, true]) {
            const c = c0.slice();
            gemm({ a, b, c, m, n, k, transA, transB, accumulate });
            for (let i = 0; i < m * n; i++) {
              const want = ref[i] + (accumulate ? c0[i] : 0);
              const tol = 1e-5 * Math.sqrt(k) * (1 + Math.abs(want));
              assert.ok(
                Math.abs(c[i] - want) < tol,
                `${m}x${n}x${k} tA=${transA} tB=${transB} acc=${accumulate} [${i}]: ${c[i]} vs ${want}`,
              );
            }
          }
        }
      }
    }
  });
}

test.run();
