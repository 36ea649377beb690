// Training objectives for an image network net(x, t), and the denoiser each one implies for sampling.
//
//   ddpm  Ho et al. 2020: t ~ U{0..T-1}, x_t = a_t x0 + s_t eps (a_t = sqrt(alphaBar_t), s_t = sqrt(1 - alphaBar_t)
//         for DDPM's schedules, any (a_t, s_t) of core/diffusion/schedule.ts), the net predicts eps (or x0,
//         or v = a_t eps - s_t x0; core/diffusion/targets.ts), loss = MSE, optionally min-SNR weighted.
//   edm   Karras et al. 2022: sigma ~ logNormal(P_mean, P_std), x = x0 + sigma n, and the net is wrapped
//         as D(x, sigma) = c_skip x + c_out net(c_in x, c_noise) (Table 1), trained with the weight that
//         makes every sigma's loss of unit size, which is plain MSE on net's output against
//         (x0 - c_skip x) / c_out.
import { mseLoss } from '../ops/loss.ts';
import { mul } from '../ops/elementwise.ts';
import { slice } from '../ops/shape.ts';
import { noGrad, Tensor } from '../tensor.ts';
import type { Rng } from '../random.ts';
import { DdpmSchedule, type BetaSchedule } from './ddpm.ts';
import type { NoiseSchedule } from './schedule.ts';
import { edmLevels, sigmaLevels, type Denoiser, type LevelRule } from './schedulers.ts';
import { combine, fromPrediction, lossWeight, predictionTarget, type Prediction } from './targets.ts';

export type { Prediction } from './targets.ts';
/**
 * The network: a batch of images and one (possibly fractional) timestep per image, and for a
 * class-conditional network one label per image.
 */
export type ImageNet = (x: Tensor, t: number[], labels?: number[]) => Tensor;

export type EdmOptions = { sigmaData: number; pMean: number; pStd: number };

/** The range of sigma that EDM's time input maps onto the network's 0..1000 timesteps (log-linearly). */
export const EDM_SIGMA_RANGE: [number, number] = [0.002, 80];

/** EDM's noise input, rescaled to the reference UNet's timestep range: ln(sigma) mapped onto 0..1000. */
export function edmTime(sigma: number): number {
  const [lo, hi] = EDM_SIGMA_RANGE;
  return (1000 * (Math.log(sigma) - Math.log(lo))) / (Math.log(hi) - Math.log(lo));
}

/** EDM's preconditioning (Table 1): c_skip, c_out, c_in for data of standard deviation sigmaData. */
export function edmScalings(sigma: number, sigmaData: number) {
  const s2 = sigma * sigma + sigmaData * sigmaData;
  return {
    cSkip: (sigmaData * sigmaData) / s2,
    cOut: (sigma * sigmaData) / Math.sqrt(s2),
    cIn: 1 / Math.sqrt(s2),
  };
}

/**
 * The random half of a training step: one noise level per image (DDPM's timestep t, or EDM's sigma)
 * and the noise itself, shaped like the batch. Drawn once for the whole batch, so that a batch split
 * across threads (core/parallel/) trains on exactly the numbers the unsplit batch would.
 */
export type NoiseDraw = { levels: number[]; noise: Tensor; labels?: number[] };

/**
 * Classifier-free guidance's training (Ho & Salimans 2022): each label replaced by `nullLabel`, "no
 * class", with probability `p`, one uniform draw per label, so that one network learns both the
 * conditional and the unconditional denoiser.
 */
export function dropLabels(labels: ArrayLike<number>, p: number, nullLabel: number, rng: Rng): number[] {
  return Array.from(labels, (y) => (rng.uniform() < p ? nullLabel : y));
}

/** Images from..to of a draw: the share of one data-parallel worker. */
export function sliceDraw(draw: NoiseDraw, from: number, to: number): NoiseDraw {
  const labels = draw.labels?.slice(from, to);
  return {
    levels: draw.levels.slice(from, to),
    noise: slice(draw.noise, 0, from, to),
    ...(labels ? { labels } : {}),
  };
}

/** DDPM's draw: t ~ U{0..T-1} per image, then eps ~ N(0, I). */
export function ddpmDraw(x0: Tensor, schedule: NoiseSchedule, rng: Rng): NoiseDraw {
  const levels = schedule.sampleTimesteps(x0.shape[0], rng);
  return { levels, noise: rng.randn(x0.shape) };
}

/** The DDPM objective's loss on a batch of clean images x0 [B, C, H, W], with any schedule. */
export function ddpmLoss(
  net: ImageNet,
  x0: Tensor,
  schedule: NoiseSchedule,
  prediction: Prediction,
  draw: NoiseDraw,
  opts: { minSnrGamma?: number } = {},
): Tensor {
  const batch = x0.shape[0];
  const { levels: t, noise: eps } = draw;
  const [a, s] = [t.map((v) => schedule.signal(v)), t.map((v) => schedule.noise(v))];
  const xt = combine(a, x0, s, eps);
  const out = net(xt, t, draw.labels);
  const target = predictionTarget(prediction, x0, eps, a, s);
  if (!(opts.minSnrGamma && opts.minSnrGamma > 0)) return mseLoss(out, target);
  // Min-SNR-gamma (Hang et al. 2023, eq. 7): weight each timestep so that its error in x0 counts
  // min(SNR_t, gamma), SNR_t = a_t^2 / s_t^2. The target's squared error is lossWeight times x0's, so
  // divide by it (for eps that is min(SNR, gamma) / SNR, for v on a VP schedule min(SNR, gamma) / (1 + SNR)).
  // The low-noise timesteps, which plain MSE on eps weights by their huge SNR, are capped.
  const gamma = opts.minSnrGamma;
  const w = t.map((_, i) => Math.min((a[i] / s[i]) ** 2, gamma) / lossWeight(prediction, a[i], s[i]));
  const root = new Tensor(Float32Array.from(w, Math.sqrt), [batch, ...x0.shape.slice(1).map(() => 1)]);
  return mseLoss(mul(out, root), mul(target, root)); // mean of w_i (out - target)^2
}

/** EDM's draw: ln(sigma) ~ N(P_mean, P_std^2) per image, then n ~ N(0, I). */
export function edmDraw(x0: Tensor, opts: EdmOptions, rng: Rng): NoiseDraw {
  const levels = Array.from({ length: x0.shape[0] }, () => Math.exp(opts.pMean + opts.pStd * rng.normal()));
  return { levels, noise: rng.randn(x0.shape) };
}

/** The EDM objective's loss on a batch of clean images x0. */
export function edmLoss(net: ImageNet, x0: Tensor, opts: EdmOptions, draw: NoiseDraw): Tensor {
  const { levels: sigma, noise: n } = draw;
  const x = combine(1, x0, sigma, n); // x0 + sigma n
  const c = sigma.map((s) => edmScalings(s, opts.sigmaData));
  const input = combine(
    c.map((k) => k.cIn),
    x,
    0,
    x,
  );
  // target (x0 - c_skip x) / c_out
  const target = combine(
    c.map((k) => 1 / k.cOut),
    x0,
    c.map((k) => -k.cSkip / k.cOut),
    x,
  );
  return mseLoss(net(input, sigma.map(edmTime), draw.labels), target);
}

/** A network told integer timesteps, as the toy DDPM nets are: x_t and t -> its output. */
export type TimestepNet = (xt: Tensor, t: number) => Tensor;

/**
 * The denoiser a net trained on a schedule implies (the ddpm objective, and the toy DDPM stages): at a
 * level of the schedule (level.t) the net sees x_t at t, and its output, read as `prediction`, is turned
 * into x0. A level without t (another schedule's) is met at the timestep whose sigma = s / a is
 * nearest, with x rescaled to that timestep's a_t.
 */
export function predictionDenoiser(
  net: TimestepNet,
  schedule: NoiseSchedule,
  prediction: Prediction,
): Denoiser {
  const logSigmas = Array.from({ length: schedule.T }, (_, t) => Math.log(schedule.sigma(t)));
  return (x, level) =>
    noGrad(() => {
      const t = level.t ?? nearestTimestep(logSigmas, Math.log(level.s / level.a));
      const [a, s] = [schedule.signal(t), schedule.noise(t)];
      const xt = level.a === a ? x : combine(a / level.a, x, 0, x); // a_t x0 + s_t eps
      return fromPrediction(prediction, net(xt, t), xt, a, s).x0;
    });
}

function nearestTimestep(logSigmas: number[], logSigma: number): number {
  let best = 0;
  for (let t = 1; t < logSigmas.length; t++) {
    if (Math.abs(logSigmas[t] - logSigma) < Math.abs(logSigmas[best] - logSigma)) best = t;
  }
  return best;
}

/**
 * The denoiser of an EDM-trained net: D(x, sigma) = c_skip x + c_out net(c_in x, c_noise), sigma = s / a;
 * a conditional net is told `labels`.
 */
export function edmDenoiser(net: ImageNet, opts: EdmOptions, labels?: number[]): Denoiser {
  return (x, level) =>
    noGrad(() => {
      const sigma = level.s / level.a;
      const { cSkip, cOut, cIn } = edmScalings(sigma, opts.sigmaData);
      const xv = level.a === 1 ? x : combine(1 / level.a, x, 0, x); // x / a = x0 + sigma eps
      const out = net(combine(cIn, xv, 0, xv), new Array<number>(x.shape[0]).fill(edmTime(sigma)), labels);
      return combine(cSkip, xv, cOut, out);
    });
}

/** A DDPM schedule as plain numbers, to rebuild it elsewhere (a worker thread). */
export type ScheduleSpec = { kind: BetaSchedule; T: number; betaStart: number; betaEnd: number };

export function scheduleOf(spec: ScheduleSpec): DdpmSchedule {
  // cosine (Nichol & Dhariwal 2021) has no beta_start / beta_end: they apply to linear only
  return DdpmSchedule.of(spec.kind, spec.T, spec.betaStart, spec.betaEnd);
}

/**
 * An image objective as plain numbers. `schedule` is the DDPM schedule: the ddpm objective trains on
 * it, and the ancestral sampler walks its timesteps under either objective.
 */
export type ObjectiveSpec =
  | { kind: 'ddpm'; schedule: ScheduleSpec; prediction: Prediction; minSnrGamma: number }
  | ({ kind: 'edm'; schedule: ScheduleSpec } & EdmOptions);

/** A training objective for an image network, and how to sample what it trained. */
export interface ImageObjective {
  readonly spec: ObjectiveSpec;
  /** EDM tells the net a fractional time (c_noise); DDPM integer timesteps. */
  readonly fractionalTime: boolean;
  /** The random half of a training step. */
  draw(x0: Tensor, rng: Rng): NoiseDraw;
  /** The loss of a batch, given its draw. */
  loss(net: ImageNet, x0: Tensor, draw: NoiseDraw): Tensor;
  /** The trained net as a denoiser, for the schedulers; a conditional net told `labels`. */
  denoiser(net: ImageNet, labels?: number[]): Denoiser;
  /**
   * The levels a sampler walks, in EDM's coordinates (x = x0 + sigma eps): the ancestral one ('ddpm')
   * the DDPM schedule's timesteps; the ODE ones ('ode') EDM's levels under EDM, the schedule's under DDPM.
   */
  levels(kind: 'ddpm' | 'ode'): LevelRule;
}

export function makeObjective(spec: ObjectiveSpec): ImageObjective {
  const schedule = scheduleOf(spec.schedule);
  if (spec.kind === 'edm') {
    const opts = { sigmaData: spec.sigmaData, pMean: spec.pMean, pStd: spec.pStd };
    const [sigmaMin, sigmaMax] = EDM_SIGMA_RANGE;
    return {
      spec,
      fractionalTime: true,
      draw: (x0, rng) => edmDraw(x0, opts, rng),
      loss: (net, x0, draw) => edmLoss(net, x0, opts, draw),
      denoiser: (net, labels) => edmDenoiser(net, opts, labels),
      levels: (kind) => (kind === 'ddpm' ? sigmaLevels(schedule) : edmLevels({ sigmaMin, sigmaMax })),
    };
  }
  const { prediction, minSnrGamma } = spec;
  return {
    spec,
    fractionalTime: false,
    draw: (x0, rng) => ddpmDraw(x0, schedule, rng),
    loss: (net, x0, draw) => ddpmLoss(net, x0, schedule, prediction, draw, { minSnrGamma }),
    denoiser: (net, labels) =>
      predictionDenoiser(
        (xt, t) => net(xt, new Array<number>(xt.shape[0]).fill(t), labels),
        schedule,
        prediction,
      ),
    levels: () => sigmaLevels(schedule),
  };
}
