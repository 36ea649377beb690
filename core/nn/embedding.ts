// Embeddings. The sinusoidal time embedding of the Transformer (Vaswani et al. 2017), as DDPM uses it to
// tell the network the timestep: for d dims, factor_j = 10000^(j / (d/2)) for j < d/2, and
// emb(t) = [sin(t / factor_0..d/2-1), cos(t / factor_0..d/2-1)] (sines first, as the reference UNet).
// And torch.nn.Embedding, a learned vector per index (a class label, for the conditional UNet).
import { allocate, Tensor, type DType } from '../tensor.ts';
import { indexSelect } from '../ops/shape.ts';
import type { Rng } from '../random.ts';
import { Module, parameter } from './module.ts';

/** torch.nn.Embedding: weight [count, dim], initialised N(0, 1) as PyTorch does; forward picks rows. */
export class Embedding extends Module {
  weight: Tensor;
  constructor(
    readonly count: number,
    readonly dim: number,
    rng: Rng,
  ) {
    super();
    this.weight = parameter(rng.randn([count, dim]));
  }
  /** The rows of `indices` (integers in 0..count-1), as [indices.length, dim]. */
  forward(indices: ArrayLike<number>): Tensor {
    return indexSelect(this.weight, 0, indices);
  }
}

export function timeEmbedding(t: ArrayLike<number>, dim: number, dtype: DType = 'float32'): Tensor {
  if (dim % 2 !== 0 || dim < 2) throw new Error(`timeEmbedding: dimension must be even, got ${dim}`);
  const half = dim / 2;
  const out = allocate(dtype, t.length * dim);
  for (let b = 0; b < t.length; b++) {
    for (let j = 0; j < half; j++) {
      // PyTorch computes the factor in float32; rounding it the same way keeps parity at large t
      const factor = Math.fround(Math.pow(10000, Math.fround(j / half)));
      const angle = Math.fround(t[b] / factor);
      out[b * dim + j] = Math.sin(angle);
      out[b * dim + half + j] = Math.cos(angle);
    }
  }
  return new Tensor(out, [t.length, dim]);
}
