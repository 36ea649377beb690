// Scaled dot-product attention, softmax(q k^T / sqrt(d)) v (Vaswani et al. 2017, eq. 1), over the last
// two axes of [..., L, d] queries and [..., S, d] keys and values, as two registry kernels:
// `attentionForward` a block of queries at a time, and for the gradients `attentionBackward`, which
// recomputes each block's probabilities from q and k (memory-efficient attention, Rabe & Staats 2021,
// with FlashAttention-2's backward, Dao 2023). No [..., L, S] score tensor is ever whole, in either
// direction; the op keeps only q, k and v for its backward.
import { allocateOutput, dataAs, opResult, resultDtype, Tensor } from '../tensor.ts';
import { formatShape } from '../shape.ts';
import { kernel } from '../kernels/registry.ts';
import '../kernels/ts-attention.ts';

export function attention(q: Tensor, k: Tensor, v: Tensor): Tensor {
  const { sets, lq, lk, d } = geometry(q, k, v);
  const dtype = resultDtype(q, k, v);
  const f64 = dtype === 'float64';
  const [Q, K, V] = [dataAs(q, dtype), dataAs(k, dtype), dataAs(v, dtype)];
  const scale = 1 / Math.sqrt(d);
  const out = allocateOutput(dtype, q.size);
  kernel(
    'attentionForward',
    f64,
  )({
    ...{ q: Q, k: K, v: V, out, batch: sets, heads: 1, lq, lk, d },
    ...{ qStride: d, kvStride: d, outStride: d, scale },
  });
  return opResult('attention', out, q.shape, [q, k, v], (g) => {
    const [gq, gk, gv] = [q.size, k.size, v.size].map((n) => allocateOutput(dtype, n)); // written whole
    kernel(
      'attentionBackward',
      f64,
    )({
      ...{ q: Q, k: K, v: V, gOut: g, gq, gk, gv, batch: sets, heads: 1, lq, lk, d },
      ...{ qStride: d, kvStride: d, outStride: d, scale },
    });
    if (q.requiresGrad) q.accumulateGrad(gq, true);
    if (k.requiresGrad) k.accumulateGrad(gk, true);
    if (v.requiresGrad) v.accumulateGrad(gv, true);
  });
}

/**
 * Self-attention of `heads` heads read in place from a packed projection qkv [B, L, 3E] (q, k and v
 * side by side, each head's d = E / heads features contiguous within them) and written as [B, L, E]
 * with the heads side by side: what MultiheadAttention computes between its two projections, without
 * splitting q, k, v or permuting to [B, H, L, d] and back. Its gradient is written the same way, as
 * one [B, L, 3E] tensor.
 */
export function packedSelfAttention(qkv: Tensor, heads: number): Tensor {
  const [B, L, E3] = qkv.shape;
  const E = E3 / 3;
  if (qkv.ndim !== 3 || !Number.isInteger(E) || E % heads !== 0) {
    throw new Error(`packedSelfAttention: qkv ${formatShape(qkv.shape)} is not [B, L, 3E] with E divisible by ${heads} heads`); // prettier-ignore
  }
  const d = E / heads;
  const f64 = qkv.dtype === 'float64';
  const data = qkv.data;
  const layout = { batch: B, heads, lq: L, lk: L, d, qStride: 3 * E, kvStride: 3 * E, outStride: E };
  const scale = 1 / Math.sqrt(d);
  const out = allocateOutput(qkv.dtype, B * L * E);
  kernel('attentionForward', f64)({ q: data, k: data.subarray(E), v: data.subarray(2 * E), out, ...layout, scale }); // prettier-ignore
  return opResult('attention', out, [B, L, E], [qkv], (g) => {
    const gqkv = allocateOutput(qkv.dtype, qkv.size); // written whole: q, k and v each write their third
    kernel(
      'attentionBackward',
      f64,
    )({
      ...{ q: data, k: data.subarray(E), v: data.subarray(2 * E), gOut: g },
      ...{ gq: gqkv, gk: gqkv.subarray(E), gv: gqkv.subarray(2 * E), ...layout, scale },
    });
    qkv.accumulateGrad(gqkv, true);
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
