// Convolution layers with PyTorch's parameter layout and default initialisation, so their state_dict
// entries load into torch.nn.Conv2d / ConvTranspose2d unchanged.
import type { Tensor } from '../tensor.ts';
import type { Rng } from '../random.ts';
import { conv2d, convTranspose2d, type Pair } from '../ops/conv.ts';
import { Module } from './module.ts';
import { uniformInit, type Layer } from './layers.ts';

function kernelSize(k: Pair): [number, number] {
  return typeof k === 'number' ? [k, k] : [k[0], k[1]];
}

/** torch.nn.Conv2d: weight [out, in, kh, kw], init U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in kh kw. */
export class Conv2d extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: Pair;
  readonly padding: Pair;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: Pair,
    rng: Rng,
    opts: { stride?: Pair; padding?: Pair; bias?: boolean } = {},
  ) {
    super();
    const [kh, kw] = kernelSize(kernel);
    const fanIn = inChannels * kh * kw;
    this.weight = uniformInit([outChannels, inChannels, kh, kw], fanIn, rng);
    this.bias = opts.bias === false ? null : uniformInit([outChannels], fanIn, rng);
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

/**
 * torch.nn.ConvTranspose2d: weight [in, out, kh, kw]. PyTorch computes the init's fan_in from dim 1 of
 * the weight, which here is out kh kw, and we do the same so the initial weights match in distribution.
 */
export class ConvTranspose2d extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: Pair;
  readonly padding: Pair;
  readonly outputPadding: Pair;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: Pair,
    rng: Rng,
    opts: { stride?: Pair; padding?: Pair; outputPadding?: Pair; bias?: boolean } = {},
  ) {
    super();
    const [kh, kw] = kernelSize(kernel);
    const fanIn = outChannels * kh * kw;
    this.weight = uniformInit([inChannels, outChannels, kh, kw], fanIn, rng);
    this.bias = opts.bias === false ? null : uniformInit([outChannels], fanIn, rng);
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.outputPadding = opts.outputPadding ?? 0;
  }
  forward(x: Tensor): Tensor {
    const { stride, padding, outputPadding } = this;
    return convTranspose2d(x, this.weight, this.bias, { stride, padding, outputPadding });
  }
}
