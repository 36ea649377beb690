// Samplers as diffusers-style schedulers: an object that chooses the noise levels to visit
// (`setTimesteps`), noises data to one of them (`addNoise`) and takes one reverse step (`step`). The
// toy DDPM stages and the image stage share these three, and one loop (`sampleLoop`) drives any of them.
//
// A level is a pair (a, s): x = a x0 + s eps (core/diffusion/schedule.ts). DDPM's timesteps are
// variance preserving (a^2 + s^2 = 1), EDM's levels variance exploding (a = 1, s = sigma); a sample stays
// in the coordinates of its levels, so the toy stages plot x_t as the paper defines it. Every step is
// written through the noise level sigma = s / a of x / a = x0 + sigma eps, where DDIM and Heun are
// Euler's and Heun's methods on the probability-flow ODE (Karras et al. 2022, sec. 3), and the ancestral
// step is a draw from the posterior q(x_next | x, x0) (Ho et al. 2020, eq. 7). Any network serves once it
// is wrapped as a Denoiser, an estimate of x0 (core/diffusion/objectives.ts wraps eps, x0 and v
// networks and EDM's preconditioned ones).
import { allocate, Tensor } from '../tensor.ts';
import type { Rng } from '../random.ts';
import { edmSigmas, type EdmLevelOptions } from './edm.ts';
import type { NoiseSchedule } from './schedule.ts';
import { combine } from './targets.ts';

/** A noise level, x = a x0 + s eps; `t` is the schedule's timestep, for networks that are told t. */
export type Level = { a: number; s: number; t?: number };

/** A network at sampling time: a batch x at one level -> its estimate of the clean batch, E[x0 | x]. */
export type Denoiser = (x: Tensor, level: Level) => Tensor;

/**
 * The levels a sampler visits in `steps` steps, noisiest first and ending with the clean data (s = 0),
 * and the std of the noise it starts from (diffusers' init_noise_sigma).
 */
export type LevelRule = (steps: number) => { levels: Level[]; initStd: number };

/** Karras et al.'s levels (EDM, eq. 5), from sigma_max down to sigma_min, then 0; starts from N(0, sigma_max^2). */
export function edmLevels(opts: Omit<EdmLevelOptions, 'n'>): LevelRule {
  return (steps) => {
    const sigmas = edmSigmas({ ...opts, n: steps });
    return { levels: sigmas.map((s) => ({ a: 1, s })), initStd: sigmas[0] };
  };
}

/**
 * A schedule's own timesteps, `steps` of them evenly spaced from T-1 down to 0 (all T when steps >= T),
 * then the clean data; starts from the schedule's prior, N(0, I) for DDPM (Algorithm 2).
 */
export function scheduleLevels(schedule: NoiseSchedule): LevelRule {
  return (steps) => {
    const levels: Level[] = spacedTimesteps(schedule.T, steps).map((t) => ({
      a: schedule.signal(t),
      s: schedule.noise(t),
      t,
    }));
    return { levels: [...levels, { a: 1, s: 0 }], initStd: schedule.priorStd };
  };
}

/**
 * The same timesteps seen in EDM's coordinates, x / a_t = x0 + sigma_t eps (a = 1, s = sigma_t, with
 * sigma_t = sqrt((1 - alphaBar_t) / alphaBar_t)), starting from N(0, sigma_max^2) as EDM's samplers do:
 * the image stage samples every objective this way, so DDIM and Heun are EDM's ODE steps on any schedule.
 */
export function sigmaLevels(schedule: NoiseSchedule): LevelRule {
  return (steps) => {
    const levels: Level[] = spacedTimesteps(schedule.T, steps).map((t) => {
      const alphaBar = schedule.alphaBarAt(t);
      return { a: 1, s: Math.sqrt((1 - alphaBar) / alphaBar), t };
    });
    return { levels: [...levels, { a: 1, s: 0 }], initStd: levels[0].s };
  };
}

/** `steps` timesteps of T evenly spaced from T-1 down to 0 (all T when steps >= T). */
function spacedTimesteps(T: number, steps: number): number[] {
  const n = Math.min(steps, T);
  return Array.from({ length: n }, (_, i) => Math.round(((T - 1) * (n - 1 - i)) / Math.max(1, n - 1)));
}

export type StepResult = { prevSample: Tensor; x0: Tensor };

export abstract class Scheduler {
  /** The levels of the last setTimesteps: noisiest first, the clean data last. */
  levels: Level[] = [];
  /** The std of the starting noise. */
  initNoiseStd = 1;

  constructor(private readonly rule: LevelRule) {}

  /** Chooses the levels for `steps` steps (diffusers' set_timesteps). */
  setTimesteps(steps: number): this {
    if (!(Number.isInteger(steps) && steps >= 1)) {
      throw new Error(`setTimesteps: steps must be an integer >= 1, got ${steps}`);
    }
    ({ levels: this.levels, initStd: this.initNoiseStd } = this.rule(steps));
    return this;
  }

  /** How many steps lead from the first level to the clean data. */
  get steps(): number {
    return Math.max(0, this.levels.length - 1);
  }

  /** Pure noise at the first level, N(0, initNoiseStd^2 I). */
  initNoise(shape: readonly number[], rng: Rng): Tensor {
    return rng.randn(shape, { std: this.initNoiseStd });
  }

  /** The forward process in one jump to level i: a x0 + s eps. */
  addNoise(x0: Tensor, eps: Tensor, i: number): Tensor {
    const { a, s } = this.level(i);
    return combine(a, x0, s, eps);
  }

  /** One step from level i to level i + 1: the new sample, and the x0 estimate it stepped towards. */
  abstract step(denoise: Denoiser, x: Tensor, i: number, rng: Rng): StepResult;

  protected level(i: number): Level {
    if (this.levels.length === 0) throw new Error('scheduler: no levels yet (call setTimesteps first)');
    if (!(Number.isInteger(i) && i >= 0 && i < this.levels.length)) {
      throw new Error(`scheduler: level ${i} is outside 0..${this.levels.length - 1}`);
    }
    return this.levels[i];
  }

  /** Levels i and i + 1 of step i, checked. */
  protected pair(i: number): [Level, Level] {
    if (this.levels.length === 0) throw new Error('scheduler: no levels yet (call setTimesteps first)');
    if (!(Number.isInteger(i) && i >= 0 && i < this.steps)) {
      throw new Error(`scheduler: step ${i} is outside 0..${this.steps - 1}`);
    }
    return [this.levels[i], this.levels[i + 1]];
  }
}

/** x scaled by k, or x itself when k = 1 (EDM's levels never rescale). */
const scaled = (x: Tensor, k: number) => (k === 1 ? x : combine(k, x, 0, x));

/**
 * DDIM (Song et al. 2021) with eta = 0: x_next = a' x0 + s' eps, eps the noise the estimate implies,
 * (x - a x0) / s. For sigma = s / a this is Euler's method on the probability-flow ODE,
 * x'/a' = x0 + (sigma' / sigma)(x / a - x0); at the last level (s' = 0) it returns the estimate.
 */
export class DdimScheduler extends Scheduler {
  step(denoise: Denoiser, x: Tensor, i: number): StepResult {
    const [level, next] = this.pair(i);
    const { a, s } = level;
    const x0 = denoise(x, level);
    const r = next.s / s;
    return { prevSample: combine(r, x, next.a - a * r, x0), x0 };
  }
}

/**
 * EDM's deterministic second-order sampler (Heun's method, Algorithm 1 of Karras et al. 2022) on
 * y = x / a, whose flow is dy/dsigma = (y - D) / sigma: an Euler step, then the slope again at its end
 * and the average of the two (no second evaluation on the last step, to sigma = 0).
 */
export class HeunScheduler extends Scheduler {
  step(denoise: Denoiser, x: Tensor, i: number): StepResult {
    const [level, next] = this.pair(i);
    const { a, s } = level;
    const [sigma, sigmaNext] = [s / a, next.s / next.a];
    const x0 = denoise(x, level);
    const y = scaled(x, 1 / a);
    const d = combine(1 / sigma, y, -1 / sigma, x0); // dy/dsigma at sigma
    const euler = combine(1, y, sigmaNext - sigma, d);
    if (sigmaNext === 0) return { prevSample: scaled(euler, next.a), x0 };
    const x0Next = denoise(scaled(euler, next.a), next);
    const dNext = combine(1 / sigmaNext, euler, -1 / sigmaNext, x0Next);
    const y2 = combine(1, y, (sigmaNext - sigma) / 2, combine(1, d, 1, dNext));
    return { prevSample: scaled(y2, next.a), x0 };
  }
}

/** The variance of each ancestral step (Ho et al., sec. 3.2): diffusers' 'fixed_small' and 'fixed_large'. */
export type ReverseVariance = 'betaTilde' | 'beta';

/**
 * The ancestral sampler (Ho et al. 2020, Algorithm 2) on any levels: a draw from q(x' | x, x0) with x0
 * the estimate. In terms of sigma = s / a the forward process adds noise of variance sigma^2 - sigma'^2
 * to x' / a', so with r = sigma'^2 / sigma^2 the posterior has
 *   mean      a' (x0 + r (x / a - x0))
 *   variance  betaTilde = s'^2 (1 - r)      ((1 - alphaBar') / (1 - alphaBar) beta for DDPM, eq. 7)
 * or, with variance 'beta', the forward step's own beta = s^2 - (a / a')^2 s'^2 (beta_t for DDPM).
 * The last step, to the clean data, returns the estimate and adds no noise.
 */
export class AncestralScheduler extends Scheduler {
  constructor(
    rule: LevelRule,
    readonly opts: { variance?: ReverseVariance } = {},
  ) {
    super(rule);
  }

  step(denoise: Denoiser, x: Tensor, i: number, rng: Rng): StepResult {
    const [level, next] = this.pair(i);
    const { a, s } = level;
    const x0 = denoise(x, level);
    const r = ((next.s * a) / (next.a * s)) ** 2;
    const variance =
      this.opts.variance === 'beta' ? s * s - (a / next.a) ** 2 * next.s * next.s : next.s * next.s * (1 - r);
    const sd = next.s > 0 ? Math.sqrt(Math.max(0, variance)) : 0;
    // p = a' r / a, written so that it stays finite where no signal is left (a = 0, r = 0)
    const [p, q] = [(next.s * next.s * a) / (next.a * s * s), next.a * (1 - r)];
    const out = allocate(x.dtype, x.size);
    for (let k = 0; k < out.length; k++) {
      const mean = p * x.data[k] + q * x0.data[k];
      out[k] = sd > 0 ? mean + sd * rng.normal() : mean;
    }
    return { prevSample: new Tensor(out, x.shape), x0 };
  }
}

/**
 * D clamped to [lo, hi]: a clean sample cannot leave the data's range, so neither should its estimate.
 * This is DDIM's `clip_sample` in diffusers; the sampler then steps towards the clamped x0.
 */
export function clipDenoiser(denoise: Denoiser, lo: number, hi: number): Denoiser {
  return (x, level) => {
    const x0 = denoise(x, level);
    return new Tensor(
      x0.data.map((v) => Math.min(hi, Math.max(lo, v))),
      x0.shape,
    );
  };
}

/**
 * The sampling loop: every step of `scheduler` (after setTimesteps) from `x`, at its first level, to
 * the clean data. `onStep(i, x, x0)` sees the sample at level i + 1 and the estimate made at level i.
 * A step that yields NaN or an infinity stops the loop with an error saying where: a sample that is not
 * a number is never returned as if it were one.
 */
export function sampleLoop(
  scheduler: Scheduler,
  denoise: Denoiser,
  x: Tensor,
  rng: Rng,
  onStep?: (i: number, x: Tensor, x0: Tensor) => void,
): Tensor {
  for (let i = 0; i < scheduler.steps; i++) {
    const { prevSample, x0 } = scheduler.step(denoise, x, i, rng);
    const bad = prevSample.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      const { s, a } = scheduler.levels[i];
      throw new Error(
        `sampling: step ${i + 1} of ${scheduler.steps} (from noise level sigma = ${(s / a).toPrecision(3)}) gave ${prevSample.data[bad]} at element ${bad}; the model or its weights produce non-finite values`,
      );
    }
    x = prevSample;
    onStep?.(i, x, x0);
  }
  return x;
}

/**
 * The sampling loop, also keeping the sample at the timesteps `keep` (levels carrying one of them), in
 * the order sampled: the toy stages plot x_t on its way down. The starting noise counts if its
 * level's t is kept.
 */
export function sampleTrajectory(
  scheduler: Scheduler,
  denoise: Denoiser,
  xStart: Tensor,
  rng: Rng,
  keep: number[],
  onStep?: () => void,
): { sample: Tensor; snapshots: { t: number; x: Tensor }[] } {
  const kept = (i: number) => {
    const t = scheduler.levels[i].t;
    return t !== undefined && keep.includes(t) ? t : null;
  };
  const first = kept(0);
  const snapshots = first === null ? [] : [{ t: first, x: xStart }];
  const sample = sampleLoop(scheduler, denoise, xStart, rng, (i, x) => {
    const t = kept(i + 1);
    if (t !== null) snapshots.push({ t, x });
    onStep?.();
  });
  return { sample, snapshots };
}
