// Scaled dot-product attention, softmax(q k^T / sqrt(d)) v (Vaswani et al. 2017, eq. 1), over the last
// two axes of [..., L, d] queries and [..., S, d] keys and values.
// When no gradient is asked for (sampling, evaluation), one fused kernel runs it a block of queries at a
// time, so the [..., L, S] score tensor is never built: at 28x28 (784 positions) that tensor alone is
// hundreds of megabytes per layer. When a gradient is asked for, it is composed from matmul and softmax,
// whose backward passes need the probabilities kept.
import { isGradEnabled, allocate, resultDtype, Tensor } from '../tensor.ts';
import { formatShape } from '../shape.ts';
import { kernel } from '../kernels/registry.ts';
import { div } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { transpose } from './shape.ts';
import { softmax } from './softmax.ts';
import '../kernels/ts-attention.ts';

export function attention(q: Tensor, k: Tensor, v: Tensor): Tensor {
  const n = q.ndim;
  const lead = q.shape.slice(0, -2);
  const [lq, d] = q.shape.slice(-2);
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
  if (isGradEnabled() && [q, k, v].some((t) => t.requiresGrad)) {
    const scores = matmul(div(q, Math.sqrt(d)), transpose(k, -2, -1));
    return matmul(softmax(scores, -1), v);
  }
  const dtype = resultDtype(q, k, v);
  const as = (t: Tensor) => (t.dtype === dtype ? t.data : Float64Array.from(t.data));
  const out = allocate(dtype, q.size);
  const batch = lead.reduce((a, b) => a * b, 1);
  kernel(
    'attentionForward',
    dtype === 'float64',
  )({
    ...{ q: as(q), k: as(k), v: as(v), out },
    ...{ batch, lq, lk, d, scale: 1 / Math.sqrt(d) },
  });
  return new Tensor(out, q.shape, { op: 'attention' });
}
