// Scaled dot-product attention, softmax(q k^T / sqrt(d)) v (Vaswani et al. 2017, eq. 1), over the last
// two axes of [..., L, d] queries and [..., S, d] keys and values. Three ways to run it, one answer:
//   - no gradient asked for (sampling, evaluation): one fused kernel, `attentionForward`, a block of
//     queries at a time;
//   - a gradient, small score tensors: composed from matmul and softmax, which keep the probabilities
//     for their backward passes (the fastest when they fit);
//   - a gradient, score tensors past SCORE_LIMIT elements (e.g. 784 positions at 28x28): in blocks of
//     query rows, keeping only q, k, v; the backward recomputes each block's probabilities, as
//     memory-efficient attention does (Rabe & Staats 2021), so no [..., L, S] tensor is ever whole.
import {
  allocateOutput,
  dataAs,
  isGradEnabled,
  opResult,
  resultDtype,
  Tensor,
  type Storage,
} from '../tensor.ts';
import { formatShape } from '../shape.ts';
import { kernel } from '../kernels/registry.ts';
import { div } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { transpose } from './shape.ts';
import { softmax } from './softmax.ts';
import '../kernels/ts-attention.ts';

/** Score elements (batch x heads x L x S) above which a tracked attention runs in blocks. */
export const SCORE_LIMIT = 1 << 24;
/** Score elements per query block of the blocked path (a megabyte of float32). */
const BLOCK_SCORES = 1 << 18;

export function attention(q: Tensor, k: Tensor, v: Tensor): Tensor {
  const { sets, lq, lk, d } = geometry(q, k, v);
  if (isGradEnabled() && [q, k, v].some((t) => t.requiresGrad)) {
    if (sets * lq * lk > SCORE_LIMIT) return blockedAttention(q, k, v);
    const scores = matmul(div(q, Math.sqrt(d)), transpose(k, -2, -1));
    return matmul(softmax(scores, -1), v);
  }
  const dtype = resultDtype(q, k, v);
  const out = allocateOutput(dtype, q.size);
  kernel(
    'attentionForward',
    dtype === 'float64',
  )({
    ...{ q: dataAs(q, dtype), k: dataAs(k, dtype), v: dataAs(v, dtype), out },
    ...{ batch: sets, heads: 1, lq, lk, d, qStride: d, kvStride: d, outStride: d, scale: 1 / Math.sqrt(d) },
  });
  return new Tensor(out, q.shape, { op: 'attention' });
}

/**
 * Self-attention of `heads` heads without gradients, read in place from a packed projection qkv
 * [B, L, 3E] (q, k and v side by side, each head's d = E / heads features contiguous within them) and
 * written as [B, L, E] with the heads side by side: what MultiheadAttention computes between its two
 * projections, without splitting q, k, v or permuting to [B, H, L, d] and back. For sampling; a tracked
 * qkv is refused (MultiheadAttention composes the permutes and `attention` then).
 */
export function packedSelfAttention(qkv: Tensor, heads: number): Tensor {
  const [B, L, E3] = qkv.shape;
  const E = E3 / 3;
  if (qkv.ndim !== 3 || !Number.isInteger(E) || E % heads !== 0) {
    throw new Error(`packedSelfAttention: qkv ${formatShape(qkv.shape)} is not [B, L, 3E] with E divisible by ${heads} heads`); // prettier-ignore
  }
  if (qkv.requiresGrad) throw new Error('packedSelfAttention: runs without gradients only');
  const d = E / heads;
  const data = qkv.data;
  const out = allocateOutput(qkv.dtype, B * L * E);
  kernel(
    'attentionForward',
    qkv.dtype === 'float64',
  )({
    ...{ q: data, k: data.subarray(E), v: data.subarray(2 * E), out },
    ...{
      batch: B,
      heads,
      lq: L,
      lk: L,
      d,
      qStride: 3 * E,
      kvStride: 3 * E,
      outStride: E,
      scale: 1 / Math.sqrt(d),
    },
  });
  return new Tensor(out, [B, L, E], { op: 'attention' });
}

/**
 * Attention with gradients in blocks of `rows` query rows (by default as many as keep a block's scores
 * near BLOCK_SCORES). Per block, with q already scaled by 1 / sqrt(d):
 *   forward   S = q k^T, P = softmax(S), out = P v
 *   backward  dP = dOut v^T, dS = P (dP - rowsum(dP P)), dq = dS k / sqrt(d), dk += dS^T q, dv += P^T dOut
 */
export function blockedAttention(q: Tensor, k: Tensor, v: Tensor, rows?: number): Tensor {
  const { sets, lq, lk, d } = geometry(q, k, v);
  const dtype = resultDtype(q, k, v);
  const f64 = dtype === 'float64';
  const [gemm, softmaxF, softmaxB] = [
    kernel('gemm', f64),
    kernel('softmaxForward', f64),
    kernel('softmaxBackward', f64),
  ];
  const scale = 1 / Math.sqrt(d);
  // every buffer below is written whole before it is read (gk and gv by their first block's store)
  const Q = allocateOutput(dtype, q.size);
  for (let i = 0; i < Q.length; i++) Q[i] = q.data[i] * scale;
  const [K, V] = [dataAs(k, dtype), dataAs(v, dtype)];
  const block = Math.max(1, Math.min(lq, rows ?? Math.floor(BLOCK_SCORES / Math.max(1, lk))));
  const S = allocateOutput(dtype, block * lk);
  const P = allocateOutput(dtype, block * lk);
  const sub = (x: Storage, at: number, n: number) => x.subarray(at, at + n);
  /** For set b and rows i0..i0+m of it: the probabilities P of the block, recomputed. */
  const probabilities = (b: number, i0: number, m: number) => {
    const qb = sub(Q, (b * lq + i0) * d, m * d);
    gemm({ a: qb, b: sub(K, b * lk * d, lk * d), c: S, m, n: lk, k: d, transA: false, transB: true, accumulate: false }); // prettier-ignore
    softmaxF({ x: S.subarray(0, m * lk), out: P.subarray(0, m * lk), rows: m, cols: lk });
    return qb;
  };
  const blocks = (fn: (b: number, i0: number, m: number) => void) => {
    for (let b = 0; b < sets; b++) for (let i0 = 0; i0 < lq; i0 += block) fn(b, i0, Math.min(block, lq - i0));
  };

  const out = allocateOutput(dtype, q.size);
  blocks((b, i0, m) => {
    probabilities(b, i0, m);
    const o = sub(out, (b * lq + i0) * d, m * d);
    gemm({ a: P, b: sub(V, b * lk * d, lk * d), c: o, m, n: d, k: lk, transA: false, transB: false, accumulate: false }); // prettier-ignore
  });

  return opResult('attention', out, q.shape, [q, k, v], (g) => {
    const [gq, gk, gv] = [q.size, k.size, v.size].map((n) => allocateOutput(dtype, n));
    const dP = allocateOutput(dtype, block * lk);
    blocks((b, i0, m) => {
      const qb = probabilities(b, i0, m);
      const [kb, vb] = [sub(K, b * lk * d, lk * d), sub(V, b * lk * d, lk * d)];
      const [gkb, gvb] = [sub(gk, b * lk * d, lk * d), sub(gv, b * lk * d, lk * d)];
      const go = sub(g, (b * lq + i0) * d, m * d);
      const first = i0 === 0;
      gemm({ a: P, b: go, c: gvb, m: lk, n: d, k: m, transA: true, transB: false, accumulate: !first });
      gemm({ a: go, b: vb, c: dP, m, n: lk, k: d, transA: false, transB: true, accumulate: false });
      const [y, gy] = [P.subarray(0, m * lk), dP.subarray(0, m * lk)];
      softmaxB({ y, gy, gx: S.subarray(0, m * lk), rows: m, cols: lk }); // dS, in S's room
      const gqb = sub(gq, (b * lq + i0) * d, m * d);
      gemm({ a: S, b: kb, c: gqb, m, n: d, k: lk, transA: false, transB: false, accumulate: false });
      gemm({ a: S, b: qb, c: gkb, m: lk, n: d, k: m, transA: true, transB: false, accumulate: !first });
    });
    for (let i = 0; i < gq.length; i++) gq[i] *= scale;
    if (q.requiresGrad) q.accumulateGrad(gq, true);
    if (k.requiresGrad) k.accumulateGrad(gk, true);
    if (v.requiresGrad) v.accumulateGrad(gv, true);
  });
}

function geometry(q: Tensor, k: Tensor, v: Tensor) {
  const n = q.ndim;
  const lk = k.shape[n - 2];
  const agree =
    n >= 2 &&
    k.ndim === n &&
    v.ndim === n &&
    k.shape.every((s, i) => s === (i === n - 2 ? lk : q.shape[i])) &&
    v.shape.every((s, i) => s === k.shape[i]);
  if (!agree) {
    throw new Error(
      `attention: query ${formatShape(q.shape)}, key ${formatShape(k.shape)} and value ${formatShape(v.shape)} must be [..., L, d], [..., S, d], [..., S, d]`,
    );
  }
  const [lq, d] = q.shape.slice(-2);
  return { sets: q.shape.slice(0, -2).reduce((a, b) => a * b, 1), lq, lk, d };
}
