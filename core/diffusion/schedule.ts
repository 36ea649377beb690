// Noise schedules as diffusers-style scheduler objects, one class per schedule, one interface for all.
//
// A schedule says how noisy timestep t is: x_t = a_t x0 + s_t eps, eps ~ N(0, I), for t = 0 .. T-1
// (0-based, as in the reference code: timestep t is the paper's t + 1, already noised once). It speaks in
// the two numbers (a_t, s_t), the signal and the noise, rather than alphaBar alone, because not every
// schedule is variance preserving:
//   DdpmSchedule          a = sqrt(alphaBar), s = sqrt(1 - alphaBar), a^2 + s^2 = 1 (linear or cosine betas)
//   InterpolationSchedule a = 1 - t/T, s = t/T: a straight line from data to noise, a^2 + s^2 < 1 between
//   EdmSchedule           a = 1, s = sigma_t: Karras et al.'s "variance exploding" levels
// Two views tie them together. sigma_t = s_t / a_t is the noise level of x_t / a_t = x0 + sigma_t eps (the
// coordinates of core/diffusion/schedulers.ts), and alphaBar_t = a^2 / (a^2 + s^2) = 1 / (1 + sigma_t^2) is
// the variance-preserving schedule with the same signal-to-noise ratio, SNR = a^2 / s^2 = 1 / sigma^2.
//
// Every schedule gets addNoise (the forward jump), its training target and the reading of a network's
// output (eps, x0 or v) from this base class; the reverse steps are the schedulers' (schedulers.ts),
// which walk any schedule's timesteps (scheduleLevels).
import { formatShape } from '../shape.ts';
import { tensor, Tensor } from '../tensor.ts';
import { add, mul } from '../ops/elementwise.ts';
import type { Rng } from '../random.ts';
import { edmSigmas } from './edm.ts';
import { noisedMixture, type GaussianMixture } from './mixture.ts';
import { fromPrediction, predictionTarget, type PerSample, type Prediction } from './targets.ts';

export abstract class NoiseSchedule {
  /** For messages and legends, e.g. 'linear 0.0001..0.02'. */
  abstract readonly name: string;
  readonly T: number;

  constructor(T: number) {
    if (!Number.isInteger(T) || T < 1) throw new Error(`noise schedule: T must be an integer >= 1, got ${T}`);
    this.T = T;
  }

  /** a_t: how much of x0 is left in x_t. */
  abstract signal(t: number): number;
  /** s_t: the standard deviation of the noise in x_t. */
  abstract noise(t: number): number;

  /**
   * The std of x_{T-1} for data of unit variance, sqrt(a^2 + s^2): what sampling starts from (1 for the
   * variance-preserving schedules, whose prior is N(0, I)).
   */
  get priorStd(): number {
    return Math.hypot(this.signal(this.T - 1), this.noise(this.T - 1));
  }

  /** sigma_t = s_t / a_t, the noise level of x_t / a_t (Infinity where no signal is left). */
  sigma(t: number): number {
    return this.noise(t) / this.signal(t);
  }

  /** The variance-preserving view: a^2 / (a^2 + s^2) = 1 / (1 + sigma^2); alphaBar_t itself for DDPM. */
  alphaBarAt(t: number): number {
    const [a, s] = [this.signal(t), this.noise(t)];
    return (a * a) / (a * a + s * s);
  }

  /** Signal-to-noise ratio a_t^2 / s_t^2 for data of unit variance. */
  snr(t: number): number {
    return (this.signal(t) / this.noise(t)) ** 2;
  }

  /** n timesteps drawn uniformly from 0..T-1, as in training (Algorithm 1). */
  sampleTimesteps(n: number, rng: Rng): number[] {
    return Array.from({ length: n }, () => rng.int(0, this.T));
  }

  /**
   * The forward process in one jump: x_t = a_t x0 + s_t eps (eq. 4 of Ho et al. for DDPM), with one
   * timestep per sample (the first axis of x0), or one for all.
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

  /** The training target for `prediction` at timesteps t (diffusers' get_velocity, for all three). */
  target(prediction: Prediction, x0: Tensor, eps: Tensor, t: number | ArrayLike<number>): Tensor {
    const [a, s] = this.coefficients(t);
    return predictionTarget(prediction, x0, eps, a, s);
  }

  /** A network's output at timesteps t, read as `prediction`: the x0 and eps it implies. */
  estimate(
    prediction: Prediction,
    output: Tensor,
    xt: Tensor,
    t: number | ArrayLike<number>,
  ): { x0: Tensor; eps: Tensor } {
    const [a, s] = this.coefficients(t);
    return fromPrediction(prediction, output, xt, a, s);
  }

  /** The exact law of x_t for mixture data: means a_t mu_k, variances a_t^2 s_k^2 + s_t^2. */
  marginal(data: GaussianMixture, t: number): GaussianMixture {
    return noisedMixture(data, this.signal(t), this.noise(t));
  }

  /** (a, s) for one timestep or one per sample. */
  coefficients(t: number | ArrayLike<number>): [PerSample, PerSample] {
    if (typeof t === 'number') return [this.signal(t), this.noise(t)];
    const ts = Array.from(t);
    return [ts.map((v) => this.signal(v)), ts.map((v) => this.noise(v))];
  }

  protected check(t: number): number {
    if (!Number.isInteger(t) || t < 0 || t >= this.T) {
      throw new Error(`${this.name}: timestep ${t} is outside 0..${this.T - 1}`);
    }
    return t;
  }
}

/**
 * The plain linear interpolation from data to noise, x_t = (1 - t/T) x0 + (t/T) eps for the paper's
 * t = 1..T (our timestep t - 1), as in rectified flow. At the last timestep no signal is left (a = 0),
 * so an eps prediction cannot say what x0 was there: sample it with x0 or v. Not variance preserving:
 * halfway, x_t = (x0 + eps) / 2 has variance 1/2 for unit-variance data.
 */
export class InterpolationSchedule extends NoiseSchedule {
  readonly name: string;
  constructor(T = 1000) {
    super(T);
    this.name = `interpolation, T = ${T}`;
  }
  signal(t: number): number {
    return 1 - (this.check(t) + 1) / this.T;
  }
  noise(t: number): number {
    return (this.check(t) + 1) / this.T;
  }
}

/**
 * Karras et al.'s noise levels (EDM, eq. 5) as a schedule: x_t = x0 + sigma_t eps with the T levels of
 * edmSigmas, smallest first (sigma_min at t = 0, sigma_max at T-1). a_t = 1 (variance exploding); its
 * variance-preserving view is alphaBar_t = 1 / (1 + sigma_t^2), x_t / sqrt(1 + sigma_t^2).
 */
export class EdmSchedule extends NoiseSchedule {
  readonly name: string;
  /** sigma_0 < ... < sigma_{T-1}. */
  readonly sigmas: Float64Array;
  constructor(T = 1000, opts: { sigmaMin?: number; sigmaMax?: number; rho?: number } = {}) {
    super(T);
    const { sigmaMin = 0.002, sigmaMax = 80, rho = 7 } = opts;
    this.sigmas = Float64Array.from(edmSigmas({ n: T, sigmaMin, sigmaMax, rho }).slice(0, T).reverse());
    this.name = `EDM sigma ${sigmaMin}..${sigmaMax}, rho ${rho}`;
  }
  signal(t: number): number {
    this.check(t);
    return 1;
  }
  noise(t: number): number {
    return this.sigmas[this.check(t)];
  }
}
