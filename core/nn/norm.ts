// torch.nn.GroupNorm: weight (scale) starts at 1 and bias (shift) at 0, one of each per channel.
import { full, zeros, type Tensor } from '../tensor.ts';
import { groupNorm } from '../ops/norm.ts';
import { Module, parameter } from './module.ts';
import type { Layer } from './layers.ts';

export class GroupNorm extends Module implements Layer {
  weight: Tensor | null;
  bias: Tensor | null;
  readonly eps: number;
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    opts: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    this.eps = opts.eps ?? 1e-5;
    if (!Number.isInteger(numGroups) || numGroups < 1 || numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm: ${numChannels} channels cannot be split into ${numGroups} groups`);
    }
    const affine = opts.affine ?? true;
    this.weight = affine ? parameter(full([numChannels], 1)) : null;
    this.bias = affine ? parameter(zeros([numChannels])) : null;
  }
  /** With `silu`, silu(GroupNorm(x)) in one op: what GroupNorm then nn.SiLU compute. */
  forward(x: Tensor, opts: { silu?: boolean } = {}): Tensor {
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps, opts);
  }
}
