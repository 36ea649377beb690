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
import type { NoiseSchedule } from './schedule.ts';
import type { Denoiser } from './samplers.ts';
import { combine, fromPrediction, lossWeight, predictionTarget, type Prediction } from './targets.ts';

export type { Prediction } from './targets.ts';
/** The network: a batch of images and one (possibly fractional) timestep per image. */
export type ImageNet = (x: Tensor, t: number[]) => Tensor;

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
export type NoiseDraw = { levels: number[]; noise: Tensor };

/** Images from..to of a draw: the share of one data-parallel worker. */
export function sliceDraw(draw: NoiseDraw, from: number, to: number): NoiseDraw {
  return { levels: draw.levels.slice(from, to), noise: slice(draw.noise, 0, from, to) };
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
  const out = net(xt, t);
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
  return mseLoss(net(input, sigma.map(edmTime)), target);
}

/**
 * The denoiser a DDPM-trained net implies, for any schedule. The samplers work in the coordinates
 * x = x0 + sigma n; the net was trained on x_t = a_t x0 + s_t eps, which is a_t x at sigma = s_t / a_t.
 * So at level sigma the net sees a_t x at the timestep whose sigma_t is nearest (samplers visit the
 * schedule's own levels), and its output is read as `prediction` and turned into x0.
 */
export function ddpmDenoiser(net: ImageNet, schedule: NoiseSchedule, prediction: Prediction): Denoiser {
  const logSigmas = Array.from({ length: schedule.T }, (_, t) => Math.log(schedule.sigma(t)));
  return (x, sigma) =>
    noGrad(() => {
      const t = nearestTimestep(logSigmas, Math.log(sigma));
      const [a, s] = [schedule.signal(t), schedule.noise(t)];
      const xt = combine(a, x, 0, x); // a_t x
      const out = net(xt, new Array<number>(x.shape[0]).fill(t));
      return fromPrediction(prediction, out, xt, a, s).x0;
    });
}

function nearestTimestep(logSigmas: number[], logSigma: number): number {
  let best = 0;
  for (let t = 1; t < logSigmas.length; t++) {
    if (Math.abs(logSigmas[t] - logSigma) < Math.abs(logSigmas[best] - logSigma)) best = t;
  }
  return best;
}

/** The denoiser of an EDM-trained net: D(x, sigma) = c_skip x + c_out net(c_in x, c_noise). */
export function edmDenoiser(net: ImageNet, opts: EdmOptions): Denoiser {
  return (x, sigma) =>
    noGrad(() => {
      const { cSkip, cOut, cIn } = edmScalings(sigma, opts.sigmaData);
      const out = net(combine(cIn, x, 0, x), new Array<number>(x.shape[0]).fill(edmTime(sigma)));
      return combine(cSkip, x, cOut, out);
    });
}
