// The DDPM noise schedule and ancestral sampler (Ho et al. 2020), as a diffusers-style scheduler: an
// object holding the schedule's numbers, with `addNoise` (the forward process in one jump) and `step`
// (one reverse step). It deals only in numbers and in the noise eps: how a network's output becomes
// eps (the prediction parametrisation) and the sampling loop live apart from it.
//
// Timesteps are 0-based, as in the reference code: t = 0 .. T-1, and x_t is the data after t + 1
// noising steps, so alphaBar[t] = prod_{s <= t} (1 - beta_s) already includes beta_t. The paper's
// x_1 .. x_T are our x_0 .. x_{T-1}, and the paper's clean x_0 is what the last step (t = 0) returns.
import { add, mul } from '../ops/elementwise.ts';
import { Tensor, allocate, tensor } from '../tensor.ts';
import { formatShape } from '../shape.ts';
import type { Rng } from '../random.ts';
import { UsageError } from '../cli.ts';
import { noisedMixture, posteriorEps, type GaussianMixture } from './mixture.ts';

/**
 * The variance of each reverse step, the two choices of Ho et al. (sec. 3.2), diffusers' 'fixed_small'
 * and 'fixed_large': betaTilde_t is right when the data is a single point, beta_t when it is N(0, I).
 */
export type ReverseVariance = 'betaTilde' | 'beta';

/** Reads a --variance flag; anything but the two choices is a usage error of `command`. */
export function reverseVarianceFlag(value: string, command: string): ReverseVariance {
  if (value === 'betaTilde' || value === 'beta') return value;
  throw new UsageError(
    `--variance must be betaTilde or beta, got '${value}'`,
    `usage: npm run ${command} -- --help`,
  );
}

export class DdpmSchedule {
  readonly T: number;
  /** beta_t: the variance of the noise added by step t (eq. 2). */
  readonly betas: Float64Array;
  /** alpha_t = 1 - beta_t. */
  readonly alphas: Float64Array;
  /** alphaBar_t = alpha_0 alpha_1 ... alpha_t, so q(x_t | x_0) = N(sqrt(alphaBar_t) x_0, (1 - alphaBar_t) I) (eq. 4). */
  readonly alphaBar: Float64Array;
  /**
   * The variance of q(x_{t-1} | x_t, x_0) (eq. 7): betaTilde_t = (1 - alphaBar_{t-1}) / (1 - alphaBar_t) beta_t,
   * with alphaBar_{-1} = 1, so betaTilde_0 = 0: the last step adds no noise.
   */
  readonly betaTilde: Float64Array;

  constructor(betas: ArrayLike<number>) {
    const T = betas.length;
    if (T < 1) throw new Error('DdpmSchedule: needs at least one beta');
    for (let t = 0; t < T; t++) {
      if (!(betas[t] > 0 && betas[t] < 1)) {
        throw new Error(`DdpmSchedule: beta[${t}] = ${betas[t]} is not in (0, 1)`);
      }
    }
    this.T = T;
    this.betas = Float64Array.from(betas);
    this.alphas = this.betas.map((b) => 1 - b);
    this.alphaBar = new Float64Array(T);
    this.betaTilde = new Float64Array(T);
    let prod = 1;
    for (let t = 0; t < T; t++) {
      const previous = prod; // alphaBar_{t-1}, 1 before the first step
      prod *= this.alphas[t];
      this.alphaBar[t] = prod;
      this.betaTilde[t] = ((1 - previous) / (1 - prod)) * this.betas[t];
    }
  }

  /** DDPM's schedule: T betas evenly spaced from betaStart to betaEnd (1e-4 to 0.02 in the paper). */
  static linear(T = 1000, betaStart = 1e-4, betaEnd = 0.02): DdpmSchedule {
    if (!Number.isInteger(T) || T < 2)
      throw new Error(`DdpmSchedule.linear: T must be an integer >= 2, got ${T}`);
    return new DdpmSchedule(
      Array.from({ length: T }, (_, t) => betaStart + ((betaEnd - betaStart) * t) / (T - 1)),
    );
  }

  /** sqrt(alphaBar_t): how much of x_0 is left in x_t. */
  signal(t: number): number {
    return Math.sqrt(this.alphaBar[this.check(t)]);
  }

  /** sqrt(1 - alphaBar_t): the standard deviation of the noise in x_t. */
  noise(t: number): number {
    return Math.sqrt(1 - this.alphaBar[this.check(t)]);
  }

  /** n timesteps drawn uniformly from 0..T-1, as in training (Algorithm 1). */
  sampleTimesteps(n: number, rng: Rng): number[] {
    return Array.from({ length: n }, () => rng.int(0, this.T));
  }

  /**
   * The forward process in one jump (eq. 4): x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps,
   * with one timestep per sample (the first axis of x0), or one for all.
   */
  addNoise(x0: Tensor, eps: Tensor, t: number | ArrayLike<number>): Tensor {
    if (formatShape(x0.shape) !== formatShape(eps.shape)) {
      throw new Error(`addNoise: x0 ${formatShape(x0.shape)} and eps ${formatShape(eps.shape)} differ`);
    }
    const ts = typeof t === 'number' ? null : Array.from(t);
    if (ts && (x0.ndim === 0 || ts.length !== x0.shape[0])) {
      throw new Error(`addNoise: ${ts.length} timesteps for x0 of shape ${formatShape(x0.shape)}`);
    }
    // one coefficient per sample, shaped [n, 1, ...] to broadcast over the sample's other axes
    const shape = ts ? [ts.length, ...x0.shape.slice(1).map(() => 1)] : [];
    const coef = (f: (t: number) => number) =>
      tensor(ts ? ts.map(f) : [f(t as number)], shape, { dtype: x0.dtype });
    return add(
      mul(
        coef((s) => this.signal(s)),
        x0,
      ),
      mul(
        coef((s) => this.noise(s)),
        eps,
      ),
    );
  }

  /**
   * One ancestral step, x_t -> x_{t-1} (Algorithm 2), for a batch all at timestep t:
   *   x_{t-1} = (x_t - beta_t / sqrt(1 - alphaBar_t) eps) / sqrt(alpha_t) + sqrt(betaTilde_t) z,  z ~ N(0, I),
   * and no noise at t = 0, whose output is the sample. Sampling only: the result has no gradient.
   */
  step(xt: Tensor, epsPred: Tensor, t: number, rng: Rng, variance: ReverseVariance = 'betaTilde'): Tensor {
    this.check(t);
    if (formatShape(xt.shape) !== formatShape(epsPred.shape)) {
      throw new Error(
        `step: x_t ${formatShape(xt.shape)} and predicted eps ${formatShape(epsPred.shape)} differ`,
      );
    }
    const epsScale = this.betas[t] / Math.sqrt(1 - this.alphaBar[t]);
    const invSqrtAlpha = 1 / Math.sqrt(this.alphas[t]);
    const sd = t > 0 ? Math.sqrt(variance === 'beta' ? this.betas[t] : this.betaTilde[t]) : 0;
    const out = allocate(xt.dtype, xt.size);
    for (let i = 0; i < out.length; i++) {
      const mean = (xt.data[i] - epsScale * epsPred.data[i]) * invSqrtAlpha;
      out[i] = sd > 0 ? mean + sd * rng.normal() : mean;
    }
    return new Tensor(out, xt.shape);
  }

  /** The exact q(x_t) of mixture data: means sqrt(alphaBar_t) mu_k, variances alphaBar_t s_k^2 + 1 - alphaBar_t. */
  marginal(data: GaussianMixture, t: number): GaussianMixture {
    return noisedMixture(data, this.signal(t), this.noise(t));
  }

  private check(t: number): number {
    if (!Number.isInteger(t) || t < 0 || t >= this.T) {
      throw new Error(`DdpmSchedule: timestep ${t} is outside 0..${this.T - 1}`);
    }
    return t;
  }
}

/** Predicts the noise in a batch x_t, all at timestep t. */
export type EpsModel = (xt: Tensor, t: number) => Tensor;

/**
 * The sampling loop: from x_{T-1} (pure noise, usually N(0, I)) down through t = T-1, ..., 0, one
 * `step` per timestep for the whole batch at once. `onStep(t, x)` sees x_{t-1} after each step (for
 * progress bars and snapshots); the return value is the final sample.
 */
export function ddpmSample(
  schedule: DdpmSchedule,
  epsModel: EpsModel,
  xT: Tensor,
  rng: Rng,
  opts: { variance?: ReverseVariance; onStep?: (t: number, x: Tensor) => void } = {},
): Tensor {
  let x = xT;
  for (let t = schedule.T - 1; t >= 0; t--) {
    x = schedule.step(x, epsModel(x, t), t, rng, opts.variance);
    opts.onStep?.(t, x);
  }
  return x;
}

/**
 * The sampling loop, also keeping x_t at the timesteps in `keep` (x_{T-1}, the starting noise, if
 * T-1 is among them): for plots of the samples on their way. Snapshots come in the order sampled.
 */
export function ddpmTrajectory(
  schedule: DdpmSchedule,
  epsModel: EpsModel,
  xT: Tensor,
  rng: Rng,
  keep: number[],
  opts: { variance?: ReverseVariance; onStep?: (t: number, x: Tensor) => void } = {},
): { sample: Tensor; snapshots: { t: number; x: Tensor }[] } {
  const snapshots = keep.includes(schedule.T - 1) ? [{ t: schedule.T - 1, x: xT }] : [];
  const sample = ddpmSample(schedule, epsModel, xT, rng, {
    variance: opts.variance,
    onStep: (t, x) => {
      if (t > 0 && keep.includes(t - 1)) snapshots.push({ t: t - 1, x });
      opts.onStep?.(t, x);
    },
  });
  return { sample, snapshots };
}

/**
 * The best possible noise predictor for mixture data, E[eps | x_t] in closed form: sampling with it
 * shows what the sampler itself does, so a network's result can be judged against it.
 */
export function exactEpsModel(schedule: DdpmSchedule, data: GaussianMixture): EpsModel {
  return (xt, t) => posteriorEps(data, xt, schedule.signal(t), schedule.noise(t));
}
