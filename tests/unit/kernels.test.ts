// Every registered backend's gemm against a plain float64 triple loop, on odd shapes and every
// transpose/accumulate combination, and its SiLU, attention and GroupNorm kernels against the ts ones
// (the convolutions: conv-kernels.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../core/index.ts';
import { listBackends, backendKernels } from '../../core/kernels/registry.ts';
import '../../core/kernels/ts.ts';
import '../../core/kernels/wasm/index.ts';
import '../../gpu/backend.ts';

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
  [66, 40, 4100], // a deep A (a weight gradient's), packed by both threads, with a ragged last panel
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

/**
 * Element by element, absolute-or-relative: |got - want| < 1e-6 scale + 1e-5 |want| (backward outputs
 * can be tiny differences of larger terms; `scale` is the size of those terms).
 */
function close(got: Float32Array, want: Float32Array, scale: number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) < 1e-6 * scale + 1e-5 * Math.abs(want[i]),
      `${what}[${i}]: ${got[i]} vs ${want[i]}`,
    );
  }
}

for (const backend of listBackends()) {
  const own = backendKernels(backend);
  const ref = backendKernels('ts');
  if (backend === 'ts' || !own.softmaxForward || !own.siluForward) continue;
  test(`${backend} softmax and SiLU (forward and backward) equal the ts kernels`, () => {
    const rng = new Rng(9);
    for (const [rows, cols] of [
      [1, 1],
      [3, 7],
      [5, 196],
      [33, 49],
      [700, 5],
    ]) {
      const x = rng.randn([rows * cols], { std: 4 }).data as Float32Array;
      const gy = rng.randn([rows * cols]).data as Float32Array;
      const [a, b] = [new Float32Array(rows * cols), new Float32Array(rows * cols)];
      own.softmaxForward?.({ x, out: a, rows, cols });
      ref.softmaxForward?.({ x, out: b, rows, cols });
      close(a, b, 1, `softmax ${rows}x${cols}`);
      const [c, d] = [new Float32Array(rows * cols), new Float32Array(rows * cols)];
      own.softmaxBackward?.({ y: b, gy, gx: c, rows, cols });
      ref.softmaxBackward?.({ y: b, gy, gx: d, rows, cols });
      close(c, d, 4, `softmax backward ${rows}x${cols}`);
    }
    for (const n of [1, 3, 4, 17, 100003]) {
      const x = rng.randn([n], { std: 5 }).data as Float32Array;
      const g = rng.randn([n]).data as Float32Array;
      const [a, b, c, d] = [0, 1, 2, 3].map(() => new Float32Array(n));
      own.siluForward?.({ x, out: a });
      ref.siluForward?.({ x, out: b });
      close(a, b, 10, `silu ${n}`);
      own.siluBackward?.({ x, g, gx: c });
      ref.siluBackward?.({ x, g, gx: d });
      close(c, d, 4, `silu backward ${n}`);
    }
  });
}

for (const backend of listBackends()) {
  const own = backendKernels(backend).attentionBackward;
  const ref = backendKernels('ts').attentionBackward;
  if (backend === 'ts' || !own || !ref) continue;
  test(`${backend} attention's gradients equal the ts kernel's, over every block and thread split`, () => {
    const rng = new Rng(14);
    // contiguous sets [sets, l, d]: size 1; lengths and depths off the 4- and 8-wide panels;
    // cross-attention; one set; 300 and 784 queries, which go in several blocks (the last one short);
    // no keys; no queries
    const contiguous = (sets: number, lq: number, lk: number, d: number) => ({
      layout: { batch: sets, heads: 1, lq, lk, d, qStride: d, kvStride: d, outStride: d },
      packed: false,
    });
    // and heads read in place from a packed [B, L, 3 H d] projection, gradients written the same way
    const packed = (batch: number, heads: number, l: number, d: number) => {
      const [qStride, outStride] = [3 * heads * d, heads * d];
      return {
        layout: { batch, heads, lq: l, lk: l, d, qStride, kvStride: qStride, outStride },
        packed: true,
      };
    };
    for (const { layout, packed: inPlace } of [
      contiguous(1, 1, 1, 1),
      contiguous(2, 5, 7, 3),
      contiguous(3, 13, 200, 20),
      contiguous(1, 300, 196, 16),
      contiguous(8, 49, 49, 16),
      contiguous(2, 784, 784, 8),
      contiguous(2, 3, 0, 4),
      contiguous(2, 0, 3, 4),
      packed(3, 4, 49, 16),
      packed(2, 2, 13, 5),
    ]) {
      const { batch, heads, lq, lk, d } = layout;
      const E = heads * d; // where k and v start in a packed row
      const randn = (n: number) => rng.randn([n], { std: 2 }).data as Float32Array;
      // q, k, v: three arrays, or one packed array read at offsets 0, E and 2E
      const qkv = inPlace
        ? [randn(batch * lq * 3 * E)]
        : [lq, lk, lk].map((l) => randn(batch * heads * l * d));
      const [q, k, v] = inPlace ? [0, E, 2 * E].map((at) => qkv[0].subarray(at)) : qkv;
      const gOut = randn(batch * lq * E);
      // each output starts as junk (NaN), so an entry a kernel leaves unwritten fails
      const outs = () => {
        if (!inPlace) return [lq, lk, lk].map((l) => new Float32Array(batch * heads * l * d).fill(NaN));
        const g = new Float32Array(qkv[0].length).fill(NaN);
        return [0, E, 2 * E].map((at) => g.subarray(at));
      };
      const [mine, theirs] = [outs(), outs()];
      const args = { ...layout, q, k, v, gOut, scale: 1 / Math.sqrt(d) };
      own({ ...args, gq: mine[0], gk: mine[1], gv: mine[2] });
      ref({ ...args, gq: theirs[0], gk: theirs[1], gv: theirs[2] });
      const what = `${batch}x${heads}x${lq}x${lk}x${d}${inPlace ? ' packed' : ''}`;
      ['gq', 'gk', 'gv'].forEach((name, i) =>
        close(mine[i], theirs[i], 4 * (1 + Math.sqrt(Math.max(lq, lk))), `${name} ${what}`),
      );
    }
  });
}

for (const backend of listBackends()) {
  const own = backendKernels(backend).attentionForward;
  const ref = backendKernels('ts').attentionForward;
  if (backend === 'ts' || !own || !ref) continue;
  test(`${backend} attention equals the ts kernel, over every block and thread split`, () => {
    const rng = new Rng(13);
    // [batch, lq, lk, d]: size 1; lengths and depths off the 4- and 8-wide panels; cross-attention
    // (lq != lk); one set (fewer sets than threads); 784 keys, where queries go in several blocks
    for (const [batch, lq, lk, d] of [
      [1, 1, 1, 1],
      [2, 5, 7, 3],
      [3, 13, 200, 20],
      [1, 196, 196, 16],
      [8, 49, 49, 16],
      [2, 784, 784, 8],
      [2, 3, 0, 4],
    ]) {
      const [q, k, v] = [lq, lk, lk].map((l) => rng.randn([batch * l * d], { std: 2 }).data as Float32Array);
      const [a, b] = [0, 1].map(() => rng.randn([batch * lq * d]).data as Float32Array); // junk to overwrite
      const scale = 1 / Math.sqrt(d);
      const layout = { heads: 1, qStride: d, kvStride: d, outStride: d };
      own({ q, k, v, out: a, batch, lq, lk, d, scale, ...layout });
      ref({ q, k, v, out: b, batch, lq, lk, d, scale, ...layout });
      close(a, b, 1 + Math.sqrt(lk), `attention ${batch}x${lq}x${lk}x${d}`);
    }
    // heads read in place from a packed projection [B, L, 3 H d] and written side by side as [B, L, H d],
    // against the same sets copied out contiguously; the output's other entries must stay as they were
    for (const [batch, heads, l, d] of [
      [3, 2, 13, 5],
      [2, 4, 196, 16],
      [1, 3, 7, 8],
    ]) {
      const E = heads * d;
      const qkv = rng.randn([batch * l * 3 * E]).data as Float32Array;
      const scale = 1 / Math.sqrt(d);
      const packed = rng.randn([batch * l * E]).data as Float32Array; // junk to overwrite
      own({ q: qkv, k: qkv.subarray(E), v: qkv.subarray(2 * E), out: packed, batch, heads, lq: l, lk: l, d, scale, qStride: 3 * E, kvStride: 3 * E, outStride: E }); // prettier-ignore
      const part = (which: number) => {
        const x = new Float32Array(batch * heads * l * d);
        for (let b = 0; b < batch; b++)
          for (let h = 0; h < heads; h++)
            for (let i = 0; i < l; i++)
              for (let c = 0; c < d; c++)
                x[((b * heads + h) * l + i) * d + c] = qkv[(b * l + i) * 3 * E + which * E + h * d + c];
        return x;
      };
      const sets = new Float32Array(batch * heads * l * d);
      const layout = { heads: 1, qStride: d, kvStride: d, outStride: d };
      ref({ q: part(0), k: part(1), v: part(2), out: sets, batch: batch * heads, lq: l, lk: l, d, scale, ...layout }); // prettier-ignore
      const want = new Float32Array(batch * l * E);
      for (let b = 0; b < batch; b++)
        for (let h = 0; h < heads; h++)
          for (let i = 0; i < l; i++)
            for (let c = 0; c < d; c++)
              want[(b * l + i) * E + h * d + c] = sets[((b * heads + h) * l + i) * d + c];
      close(packed, want, 1 + Math.sqrt(l), `packed attention ${batch}x${heads}x${l}x${d}`);
    }
  });
}

for (const backend of listBackends()) {
  const own = backendKernels(backend);
  const ref = backendKernels('ts');
  if (backend === 'ts' || !own.groupNormForward || !own.groupNormBackward) continue;
  test(`${backend} GroupNorm (forward and backward) equals the ts kernels`, () => {
    const rng = new Rng(11);
    // spatial sizes with and without a tail of fewer than 4; a mean far from 0 (offset 50) tests the
    // centring; affine or not
    for (const [batch, channels, spatial, groups, offset, affine] of [
      [1, 1, 1, 1, 0, true],
      [2, 4, 7, 2, 0, false],
      [3, 16, 49, 8, 50, true],
      [2, 32, 196, 8, 0, true],
      [1, 8, 5, 8, 3, true],
    ] as const) {
      for (const silu of [false, true]) {
        const n = batch * channels * spatial;
        const x = rng.randn([n], { std: 2 }).data as Float32Array;
        for (let i = 0; i < n; i++) x[i] += offset;
        const gy = rng.randn([n]).data as Float32Array;
        const weight = affine ? (rng.randn([channels]).data as Float32Array) : null;
        const bias = affine ? (rng.randn([channels]).data as Float32Array) : null;
        const dims = { batch, channels, spatial, groups, eps: 1e-5, silu };
        const [outA, outB] = [new Float32Array(n), new Float32Array(n)];
        const stats = () => [new Float32Array(batch * groups), new Float32Array(batch * groups)];
        const [meanA, rstdA] = stats();
        const [meanB, rstdB] = stats();
        const what = `${batch}x${channels}x${spatial}/${groups}${offset ? ` + ${offset}` : ''}${silu ? ', then SiLU' : ''}`;
        // x is float32: an offset makes every x - mu lose float32 digits of |x| before any kernel runs
        const big = 1 + offset;
        own.groupNormForward?.({ ...dims, x, weight, bias, out: outA, mean: meanA, rstd: rstdA });
        ref.groupNormForward?.({ ...dims, x, weight, bias, out: outB, mean: meanB, rstd: rstdB });
        close(outA, outB, big, `groupNorm ${what}`);
        close(meanA, meanB, big, `mean ${what}`);
        close(rstdA, rstdB, 1, `rstd ${what}`);
        const grads = () =>
          [new Float32Array(n), affine ? new Float32Array(channels) : null, affine ? new Float32Array(channels) : null] as const; // prettier-ignore
        const [gxA, gwA, gbA] = grads();
        const [gxB, gwB, gbB] = grads();
        const back = { ...dims, x, gy, weight, bias, mean: meanB, rstd: rstdB };
        own.groupNormBackward?.({ ...back, gx: gxA, gWeight: gwA, gBias: gbA });
        ref.groupNormBackward?.({ ...back, gx: gxB, gWeight: gwB, gBias: gbB });
        close(gxA, gxB, 4 * big, `groupNorm backward ${what}`);
        if (gwA && gwB && gbA && gbB) {
          close(gwA, gwB, Math.sqrt(n) * big, `gWeight ${what}`);
          close(gbA, gbB, Math.sqrt(n), `gBias ${what}`);
        }
      }
    }
  });
}

test.run();
