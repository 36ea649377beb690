// The DDPM noise schedule (Ho et al. 2020): an object holding the schedule's numbers (betas, alphaBar,
// betaTilde), with `addNoise` (the forward process in one jump) from NoiseSchedule. Its betas are linear
// (the paper's) or cosine (Nichol & Dhariwal 2021); what the network predicts (eps, x0 or v) is read by
// core/diffusion/targets.ts, and the reverse steps are the schedulers' (core/diffusion/schedulers.ts).
//
// Timesteps are 0-based, as in the reference code: t = 0 .. T-1, and x_t is the data after t + 1
// noising steps, so alphaBar[t] = prod_{s <= t} (1 - beta_s) already includes beta_t. The paper's
// x_1 .. x_T are our x_0 .. x_{T-1}, and the paper's clean x_0 is what the last step (t = 0) returns.
import { NoiseSchedule } from './schedule.ts';

export type BetaSchedule = 'linear' | 'cosine';
export const BETA_SCHEDULES: readonly BetaSchedule[] = ['linear', 'cosine'];

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

  /** Sampling starts from x_{T-1} ~ N(0, I) (Algorithm 2). */
  override get priorStd(): number {
    return 1;
  }
}
