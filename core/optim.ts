// Optimisers with PyTorch's defaults and update rules (torch.optim.SGD, Adam, AdamW), so that a
// learning rate tuned for the reference scripts means the same thing here.
import { allocate, Tensor, type Storage } from './tensor.ts';
import { kernel } from './kernels/registry.ts';
import './kernels/ts.ts';

export abstract class Optimizer {
  lr: number;
  stepCount = 0;
  constructor(
    readonly params: Tensor[],
    lr: number,
  ) {
    if (!(lr > 0)) throw new Error(`optimizer: learning rate must be positive, got ${lr}`);
    this.lr = lr;
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  /** Applies one update from the gradients in `p.grad`; parameters without a gradient are skipped. */
  step(): void {
    this.stepCount++;
    this.params.forEach((p, i) => {
      if (p.grad) this.update(i, p.data, p.grad.data);
    });
  }

  protected abstract update(index: number, p: Storage, g: Storage): void;

  /** Per-parameter state buffers, by name, for checkpoints (the live arrays: load by writing into them). */
  abstract stateBuffers(): Map<string, Storage>;

  /** Restores state saved by stateBuffers() (and the step count); every buffer must be present. */
  loadStateBuffers(saved: Map<string, ArrayLike<number>>, stepCount: number): void {
    for (const [name, buf] of this.stateBuffers()) {
      const src = saved.get(name);
      if (!src || src.length !== buf.length)
        throw new Error(`optimizer state: '${name}' is missing or has the wrong size`);
      buf.set(src);
    }
    this.stepCount = stepCount;
  }
}

export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private readonly buffers: (Storage | null)[];

  constructor(
    params: Tensor[],
    opts: { lr: number; momentum?: number; dampening?: number; weightDecay?: number; nesterov?: boolean },
  ) {
    super(params, opts.lr);
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.buffers = params.map(() => null);
  }

  protected update(index: number, p: Storage, g: Storage): void {
    const { momentum: mu, dampening, weightDecay: wd, nesterov, lr } = this;
    let buf = this.buffers[index];
    const first = buf === null;
    if (mu !== 0 && buf === null)
      buf = this.buffers[index] = allocate(p instanceof Float64Array ? 'float64' : 'float32', p.length);
    for (let i = 0; i < p.length; i++) {
      let d = g[i] + wd * p[i];
      if (buf) {
        // b_t = mu b_{t-1} + (1 - dampening) d_t, with b_1 = d_1 (PyTorch)
        buf[i] = first ? d : mu * buf[i] + (1 - dampening) * d;
        d = nesterov ? d + mu * buf[i] : buf[i];
      }
      p[i] -= lr * d;
    }
  }

  stateBuffers(): Map<string, Storage> {
    const out = new Map<string, Storage>();
    this.buffers.forEach((b, i) => b && out.set(`${i}.momentum_buffer`, b));
    return out;
  }
}

export type AdamOptions = { lr?: number; betas?: [number, number]; eps?: number; weightDecay?: number };

/**
 * Adam (Kingma & Ba 2015): m_t = b1 m + (1 - b1) g, v_t = b2 v + (1 - b2) g^2,
 * p -= lr * (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps).
 * Weight decay is the L2 kind (added to g), as in torch.optim.Adam; AdamW below decouples it.
 */
export class Adam extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  protected readonly decoupled: boolean = false;
  private readonly m: Storage[];
  private readonly v: Storage[];

  constructor(params: Tensor[], opts: AdamOptions = {}, decoupledDefaultDecay?: number) {
    super(params, opts.lr ?? 1e-3);
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? decoupledDefaultDecay ?? 0;
    this.m = params.map((p) => allocate(p.dtype, p.size));
    this.v = params.map((p) => allocate(p.dtype, p.size));
  }

  protected update(index: number, p: Storage, g: Storage): void {
    const { beta1: b1, beta2: b2, eps, lr, weightDecay: wd, stepCount: t } = this;
    kernel(
      'adamUpdate',
      p instanceof Float64Array,
    )({
      p,
      g,
      m: this.m[index],
      v: this.v[index],
      b1,
      b2,
      eps,
      l2: this.decoupled ? 0 : wd,
      decay: this.decoupled ? 1 - lr * wd : 1,
      stepSize: lr / (1 - Math.pow(b1, t)),
      sqrtBc2: Math.sqrt(1 - Math.pow(b2, t)),
    });
  }

  stateBuffers(): Map<string, Storage> {
    const out = new Map<string, Storage>();
    this.params.forEach((_, i) => {
      out.set(`${i}.exp_avg`, this.m[i]);
      out.set(`${i}.exp_avg_sq`, this.v[i]);
    });
    return out;
  }
}

/** AdamW (Loshchilov & Hutter 2019): the decay shrinks p directly, p *= 1 - lr wd; default wd 0.01. */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;
  constructor(params: Tensor[], opts: AdamOptions = {}) {
    super(params, opts, 0.01);
  }
}

/** Cosine decay from `peak` at step 0 to 0 at `total` (Loshchilov & Hutter 2017, without restarts). */
export function cosineLr(peak: number, step: number, total: number): number {
  return 0.5 * peak * (1 + Math.cos((Math.PI * Math.min(step, total)) / total));
}
