// The basic layers. Initialisation follows PyTorch's defaults so that a model here starts from the
// same distribution of weights as the reference scripts.
import { Tensor } from '../tensor.ts';
import type { Rng } from '../random.ts';
import { linear } from '../ops/matmul.ts';
import { relu, sigmoid, silu, tanh } from '../ops/elementwise.ts';
import { Module, ModuleList, parameter } from './module.ts';

/** A module with one tensor in and one out, so it can sit in a Sequential. */
export interface Layer {
  forward(x: Tensor): Tensor;
}

/**
 * PyTorch's default init for Linear and Conv layers: kaiming_uniform with a = sqrt(5), which works
 * out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight, and the same bound for the bias.
 */
export function uniformInit(shape: number[], fanIn: number, rng: Rng): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return parameter(rng.rand(shape, { lo: -bound, hi: bound }));
}

export class Linear extends Module implements Layer {
  weight: Tensor;
  bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    rng: Rng,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = uniformInit([outFeatures, inFeatures], inFeatures, rng);
    this.bias = opts.bias === false ? null : uniformInit([outFeatures], inFeatures, rng);
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class ReLU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class SiLU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class Tanh extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Sigmoid extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Identity extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Layers applied in order; children are named 0, 1, 2... as in torch.nn.Sequential. */
export class Sequential extends ModuleList<Module & Layer> implements Layer {
  constructor(...layers: (Module & Layer)[]) {
    super(layers);
  }
  forward(x: Tensor): Tensor {
    return this.items.reduce((h, layer) => layer.forward(h), x);
  }
}

/** A multilayer perceptron: Linear layers of the given sizes with an activation between each pair. */
export function mlp(
  sizes: number[],
  rng: Rng,
  activation: () => Module & Layer = () => new ReLU(),
): Sequential {
  const layers: (Module & Layer)[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    if (i > 0) layers.push(activation());
    layers.push(new Linear(sizes[i], sizes[i + 1], rng));
  }
  return new Sequential(...layers);
}
