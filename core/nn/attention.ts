// torch.nn.MultiheadAttention with its packed parameters, so state_dicts move between the two unchanged:
// in_proj_weight [3E, E] holds W_q, W_k, W_v stacked in that order, in_proj_bias [3E] their biases, and
// out_proj is a Linear(E, E). With H heads of d = E / H dims each (Vaswani et al. 2017, eq. 1):
//   head_h = softmax(Q_h K_h^T / sqrt(d)) V_h,   out = concat(head_1..head_H) W_o^T + b_o.
import { Tensor } from '../tensor.ts';
import type { Rng } from '../random.ts';
import { formatShape } from '../shape.ts';
import { attention, packedSelfAttention } from '../ops/attention.ts';
import { linear } from '../ops/matmul.ts';
import { permute, reshape, slice, transpose } from '../ops/shape.ts';
import { Module, parameter } from './module.ts';
import { Linear } from './layers.ts';

export class MultiheadAttention extends Module {
  // Field names are PyTorch's state_dict keys.
  in_proj_weight: Tensor;
  in_proj_bias: Tensor;
  out_proj: Linear;
  readonly headDim: number;
  readonly batchFirst: boolean;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    rng: Rng,
    opts: { batchFirst?: boolean } = {},
  ) {
    super();
    if (!Number.isInteger(numHeads) || numHeads < 1 || embedDim % numHeads !== 0) {
      throw new Error(
        `MultiheadAttention: ${numHeads} heads do not divide the embedding dimension ${embedDim}`,
      );
    }
    this.headDim = embedDim / numHeads;
    this.batchFirst = opts.batchFirst ?? false;
    // PyTorch's init: xavier_uniform for the packed projection, zero biases, Linear's default for out_proj
    const bound = Math.sqrt(6 / (embedDim + 3 * embedDim));
    this.in_proj_weight = parameter(rng.rand([3 * embedDim, embedDim], { lo: -bound, hi: bound }));
    this.in_proj_bias = parameter(new Tensor(new Float32Array(3 * embedDim), [3 * embedDim]));
    this.out_proj = new Linear(embedDim, embedDim, rng);
    this.out_proj.bias?.data.fill(0);
  }

  /**
   * Attention of `query` [B, L, E] over `key`, `value` [B, S, E] ([L, B, E] and [S, B, E] unless
   * batchFirst); self-attention when key and value are omitted. Returns [B, L, E] (or [L, B, E]).
   */
  forward(query: Tensor, key: Tensor = query, value: Tensor = key): Tensor {
    const E = this.embedDim;
    for (const [name, t] of [
      ['query', query],
      ['key', key],
      ['value', value],
    ] as const) {
      if (t.ndim !== 3 || t.shape[2] !== E) {
        throw new Error(
          `MultiheadAttention: ${name} ${formatShape(t.shape)} must be 3-D with ${E} features last`,
        );
      }
    }
    const batchFirst = (t: Tensor) => (this.batchFirst ? t : transpose(t, 0, 1));
    const [q0, k0, v0] = [batchFirst(query), batchFirst(key), batchFirst(value)];
    if (k0.shape[0] !== q0.shape[0] || k0.shape[1] !== v0.shape[1] || k0.shape[0] !== v0.shape[0]) {
      throw new Error(
        `MultiheadAttention: query ${formatShape(query.shape)}, key ${formatShape(key.shape)} and value ${formatShape(value.shape)} disagree on batch or length`,
      );
    }
    if (query === key && key === value) {
      // self-attention: one product with the packed weight; the kernels read each head of q, k and v
      // in place and write them side by side, and their gradients the same way
      const qkv = linear(q0, this.in_proj_weight, this.in_proj_bias);
      const out = this.out_proj.forward(packedSelfAttention(qkv, this.numHeads));
      return this.batchFirst ? out : transpose(out, 0, 1);
    }
    const project = (x: Tensor, i: number) =>
      linear(
        x,
        slice(this.in_proj_weight, 0, i * E, (i + 1) * E),
        slice(this.in_proj_bias, 0, i * E, (i + 1) * E),
      );
    const [q, k, v] = [project(q0, 0), project(k0, 1), project(v0, 2)];
    // [B, L, E] -> [B, H, L, d]: each head attends on its own slice of the features
    const heads = (t: Tensor) =>
      permute(reshape(t, [t.shape[0], t.shape[1], this.numHeads, this.headDim]), [0, 2, 1, 3]);
    const attended = attention(heads(q), heads(k), heads(v)); // [B, H, L, d]
    const [B, L] = [q0.shape[0], q0.shape[1]];
    const merged = reshape(permute(attended, [0, 2, 1, 3]), [B, L, E]);
    const out = this.out_proj.forward(merged);
    return this.batchFirst ? out : transpose(out, 0, 1);
  }
}
