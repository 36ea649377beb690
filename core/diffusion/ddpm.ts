// The DDPM noise schedule and ancestral sampler (Ho et al. 2020), as a diffusers-style scheduler: an
// object holding the schedule's numbers, with `addNoise` (the forward process in one jump) and `step`
// (one reverse step). Its betas are linear (the paper's) or cosine (Nichol & Dhariwal 2021); what the
// network predicts (eps, x0 or v) is read by core/diffusion/targets.ts, and the sampling loop lives apart.
//
// Timesteps are 0-based, as in the reference code: t = 0 .. T-1, and x_t is the data after t + 1
// noising steps, so alphaBar[t] = prod_{s <= t} (1 - beta_s) already includes beta_t. The paper's
// x_1 .. x_T are our x_0 .. x_{T-1}, and the paper's clean x_0 is what the last step (t = 0) returns.
import { Tensor, allocate } from '../tensor.ts';
import type { Rng } from '../random.ts';
import { UsageError, type FlagSpec } from '../cli.ts';
import { posteriorEps, type GaussianMixture } from './mixture.ts';
import {
  checkOutput,
  NoiseSchedule,
  stepOptions,
  type ReverseVariance,
  type StepOptions,
} from './schedule.ts';
import { predictionFlag, type Prediction } from './targets.ts';

export type { ReverseVariance } from './schedule.ts';

/** Reads a --variance flag; anything but the two choices is a usage error of `command`. */
export function reverseVarianceFlag(value: string, command: string): ReverseVariance {
  if (value === 'betaTilde' || value === 'beta') return value;
  throw new UsageError(
    `--variance must be betaTilde or beta, got '${value}'`,
    `usage: npm run ${command} -- --help`,
  );
}

export type BetaSchedule = 'linear' | 'cosine';
export const BETA_SCHEDULES: readonly BetaSchedule[] = ['linear', 'cosine'];

/** Reads a --beta-schedule flag; anything else is a usage error of `command` naming the choices. */
export function betaScheduleFlag(value: string, command: string): BetaSchedule {
  if ((BETA_SCHEDULES as readonly string[]).includes(value)) return value as BetaSchedule;
  throw new UsageError(
    `--beta-schedule must be one of ${BETA_SCHEDULES.join(', ')}, got '${value}'`,
    `usage: npm run ${command} -- --help`,
  );
}

/** The flags of the toy DDPM stages that choose the schedule and the prediction target. */
export const DDPM_FLAGS = {
  'beta-schedule': {
    type: 'string',
    default: 'linear',
    help: 'linear (beta 1e-4..0.02, the paper) or cosine',
  },
  prediction: { type: 'string', default: 'eps', help: 'what the network predicts: eps, x0 or v' },
} as const satisfies Record<string, FlagSpec>;

/** The flag of the DDPM stages that sample with the ancestral step: its variance, betaTilde or beta. */
export const VARIANCE_FLAG = {
  variance: { type: 'string', default: 'betaTilde', help: 'reverse-step variance, betaTilde or beta' },
} as const satisfies Record<string, FlagSpec>;

/** The values of DDPM_FLAGS, checked; a bad one is a usage error naming the flag and its choices. */
export function ddpmFlagValues(
  flags: { 'beta-schedule': string; prediction: string },
  command: string,
): { betaSchedule: BetaSchedule; prediction: Prediction } {
  return {
    betaSchedule: betaScheduleFlag(flags['beta-schedule'], command),
    prediction: predictionFlag(flags.prediction, command),
  };
}

/**
 * The cosine schedule's alphaBar as a function of u = t / T in [0, 1] (Nichol & Dhariwal 2021, eq. 17):
 * alphaBar(u) = f(u) / f(0), f(u) = cos^2(((u + s) / (1 + s)) pi / 2). The offset s = 0.008 keeps beta
 * from being vanishingly small near u = 0.
 */
export function cosineAlphaBar(u: number, s = 0.008): number {
  const f = (v: number) => Math.cos(((v + s) / (1 + s)) * (Math.PI / 2)) ** 2;
  return f(u) / f(0);
}

export class DdpmSchedule extends NoiseSchedule {
  readonly name: string;
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

  constructor(betas: ArrayLike<number>, name = 'DdpmSchedule') {
    if (betas.length < 1) throw new Error('DdpmSchedule: needs at least one beta');
    super(betas.length);
    this.name = name;
    const T = betas.length;
    for (let t = 0; t < T; t++) {
      if (!(betas[t] > 0 && betas[t] < 1)) {
        throw new Error(`DdpmSchedule: beta[${t}] = ${betas[t]} is not in (0, 1)`);
      }
    }
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
      `linear ${betaStart}..${betaEnd}`,
    );
  }

  /**
   * The cosine schedule (Nichol & Dhariwal 2021, eq. 17): beta_t = 1 - alphaBar((t+1)/T) / alphaBar(t/T),
   * clipped at 0.999 (which only the last step reaches, where alphaBar(1) = 0), so that
   * alphaBar[t] = cosineAlphaBar((t + 1) / T) until the clip: the noise rises slowly at both ends.
   */
  static cosine(T = 1000, s = 0.008): DdpmSchedule {
    if (!Number.isInteger(T) || T < 2)
      throw new Error(`DdpmSchedule.cosine: T must be an integer >= 2, got ${T}`);
    return new DdpmSchedule(
      Array.from({ length: T }, (_, t) =>
        Math.min(1 - cosineAlphaBar((t + 1) / T, s) / cosineAlphaBar(t / T, s), 0.999),
      ),
      'cosine',
    );
  }

  /** The schedule a config or flag names: linear from betaStart to betaEnd, or cosine (which has no such ends). */
  static of(kind: BetaSchedule, T: number, betaStart = 1e-4, betaEnd = 0.02): DdpmSchedule {
    return kind === 'cosine' ? DdpmSchedule.cosine(T) : DdpmSchedule.linear(T, betaStart, betaEnd);
  }

  /** sqrt(alphaBar_t): how much of x_0 is left in x_t. */
  signal(t: number): number {
    return Math.sqrt(this.alphaBar[this.check(t)]);
  }

  /** sqrt(1 - alphaBar_t): the standard deviation of the noise in x_t. */
  noise(t: number): number {
    return Math.sqrt(1 - this.alphaBar[this.check(t)]);
  }

  override alphaBarAt(t: number): number {
    return this.alphaBar[this.check(t)];
  }

  /**
   * One ancestral step, x_t -> x_{t-1} (Algorithm 2), for a batch all at timestep t, in the reference's form:
   *   x_{t-1} = (x_t - beta_t / sqrt(1 - alphaBar_t) eps) / sqrt(alpha_t) + sqrt(betaTilde_t) z,  z ~ N(0, I),
   * and no noise at t = 0, whose output is the sample. An x0 or v output is first turned into the eps
   * it implies. Sampling only: the result has no gradient.
   */
  override step(
    xt: Tensor,
    output: Tensor,
    t: number,
    rng: Rng,
    opts: StepOptions | ReverseVariance = {},
  ): Tensor {
    const { prediction = 'eps', variance = 'betaTilde' } = stepOptions(opts);
    this.check(t);
    checkOutput(xt, output, prediction);
    const epsPred = prediction === 'eps' ? output : this.estimate(prediction, output, xt, t).eps;
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
}

/** A network at sampling time: a batch x_t, all at timestep t -> its output (eps, x0 or v). */
export type Model = (xt: Tensor, t: number) => Tensor;
/** A model whose output is the noise eps. */
export type EpsModel = Model;

export type SampleOptions = {
  /** What the model's output is (default eps). */
  prediction?: Prediction;
  variance?: ReverseVariance;
  onStep?: (t: number, x: Tensor) => void;
};

/**
 * The sampling loop: from x_{T-1} (pure noise, N(0, s_{T-1}^2 I): N(0, I) for DDPM) down through t = T-1, ..., 0, one
 * `step` per timestep for the whole batch at once, with any schedule. `onStep(t, x)` sees x_{t-1}
 * after each step (for progress bars and snapshots); the return value is the final sample.
 */
export function ddpmSample(
  schedule: NoiseSchedule,
  model: Model,
  xT: Tensor,
  rng: Rng,
  opts: SampleOptions = {},
): Tensor {
  const stepOpts = { prediction: opts.prediction, variance: opts.variance };
  let x = xT;
  for (let t = schedule.T - 1; t >= 0; t--) {
    x = schedule.step(x, model(x, t), t, rng, stepOpts);
    opts.onStep?.(t, x);
  }
  return x;
}

/**
 * The sampling loop, also keeping x_t at the timesteps in `keep` (x_{T-1}, the starting noise, if
 * T-1 is among them): for plots of the samples on their way. Snapshots come in the order sampled.
 */
export function ddpmTrajectory(
  schedule: NoiseSchedule,
  model: Model,
  xT: Tensor,
  rng: Rng,
  keep: number[],
  opts: SampleOptions = {},
): { sample: Tensor; snapshots: { t: number; x: Tensor }[] } {
  const snapshots = keep.includes(schedule.T - 1) ? [{ t: schedule.T - 1, x: xT }] : [];
  const sample = ddpmSample(schedule, model, xT, rng, {
    ...opts,
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
export function exactEpsModel(schedule: NoiseSchedule, data: GaussianMixture): EpsModel {
  return (xt, t) => posteriorEps(data, xt, schedule.signal(t), schedule.noise(t));
}
