// Training objectives for an image network net(x, t), and the denoiser each one implies for sampling.
//
//   ddpm  Ho et al. 2020: t ~ U{0..T-1}, x_t = sqrt(alphaBar_t) x0 + sqrt(1 - alphaBar_t) eps, the net
//         predicts eps (or x0, or v = sqrt(alphaBar) eps - sqrt(1 - alphaBar) x0), loss = MSE.
//   edm   Karras et al. 2022: sigma ~ logNormal(P_mean, P_std), x = x0 + sigma n, and the net is wrapped
//         as D(x, sigma) = c_skip x + c_out net(c_in x, c_noise) (Table 1), trained with the weight that
//         makes every sigma's loss of unit size, which is plain MSE on net's output against
//         (x0 - c_skip x) / c_out.
import { allocate, Tensor } from '../tensor.ts';
import { mseLoss } from '../ops/loss.ts';
import { noGrad } from '../tensor.ts';
import type { Rng } from '../random.ts';
import type { DdpmSchedule } from './ddpm.ts';
import type { Denoiser } from './samplers.ts';

export type Prediction = 'eps' | 'x0' | 'v';
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

/** Per-image scalars a_i, b_i -> a_i x_i + b_i y_i over [batch, ...] tensors (no graph). */
function perImage(a: number[], x: Tensor, b: number[], y: Tensor): Tensor {
  const per = x.size / a.length;
  const out = allocate(x.dtype, x.size);
  for (let i = 0; i < a.length; i++) {
    for (let k = i * per; k < (i + 1) * per; k++) out[k] = a[i] * x.data[k] + b[i] * y.data[k];
  }
  return new Tensor(out, x.shape);
}

/** The DDPM objective's loss on a batch of clean images x0 [B, C, H, W]. */
export function ddpmLoss(
  net: ImageNet,
  x0: Tensor,
  schedule: DdpmSchedule,
  prediction: Prediction,
  rng: Rng,
): Tensor {
  const batch = x0.shape[0];
  const t = schedule.sampleTimesteps(batch, rng);
  const eps = rng.randn(x0.shape);
  const signal = t.map((s) => schedule.signal(s));
  const noise = t.map((s) => schedule.noise(s));
  const xt = perImage(signal, x0, noise, eps);
  const target =
    prediction === 'eps'
      ? eps
      : prediction === 'x0'
        ? x0
        : perImage(
            signal,
            eps,
            noise.map((n) => -n),
            x0,
          ); // v = sqrt(ab) eps - sqrt(1 - ab) x0
  return mseLoss(net(xt, t), target);
}

/** The EDM objective's loss on a batch of clean images x0. */
export function edmLoss(net: ImageNet, x0: Tensor, opts: EdmOptions, rng: Rng): Tensor {
  const batch = x0.shape[0];
  const sigma = Array.from({ length: batch }, () => Math.exp(opts.pMean + opts.pStd * rng.normal()));
  const n = rng.randn(x0.shape);
  const x = perImage(new Array<number>(batch).fill(1), x0, sigma, n); // x0 + sigma n
  const c = sigma.map((s) => edmScalings(s, opts.sigmaData));
  const input = perImage(
    c.map((k) => k.cIn),
    x,
    new Array<number>(batch).fill(0),
    x,
  );
  // target (x0 - c_skip x) / c_out
  const target = perImage(
    c.map((k) => 1 / k.cOut),
    x0,
    c.map((k) => -k.cSkip / k.cOut),
    x,
  );
  return mseLoss(net(input, sigma.map(edmTime)), target);
}

/**
 * The denoiser a DDPM-trained net implies: at level sigma the VP input is x / sqrt(1 + sigma^2) at the
 * timestep whose alphaBar is nearest 1 / (1 + sigma^2) (samplers visit the schedule's own levels), and
 * the prediction is turned into x0.
 */
export function ddpmDenoiser(net: ImageNet, schedule: DdpmSchedule, prediction: Prediction): Denoiser {
  return (x, sigma) =>
    noGrad(() => {
      const ab = 1 / (1 + sigma * sigma);
      const t = nearestTimestep(schedule, ab);
      const [a, s] = [schedule.signal(t), schedule.noise(t)];
      const xt = perImage([a], x, [0], x); // x sqrt(ab)
      const out = net(xt, new Array<number>(x.shape[0]).fill(t));
      const batch = x.shape[0];
      const ones = (v: number) => new Array<number>(batch).fill(v);
      if (prediction === 'x0') return out;
      if (prediction === 'eps') return perImage(ones(1 / a), xt, ones(-s / a), out); // (x_t - s eps) / a
      return perImage(ones(a), xt, ones(-s), out); // x0 = a x_t - s v
    });
}

function nearestTimestep(schedule: DdpmSchedule, alphaBar: number): number {
  let best = 0;
  for (let t = 1; t < schedule.T; t++) {
    if (Math.abs(schedule.alphaBar[t] - alphaBar) < Math.abs(schedule.alphaBar[best] - alphaBar)) best = t;
  }
  return best;
}

/** The denoiser of an EDM-trained net: D(x, sigma) = c_skip x + c_out net(c_in x, c_noise). */
export function edmDenoiser(net: ImageNet, opts: EdmOptions): Denoiser {
  return (x, sigma) =>
    noGrad(() => {
      const { cSkip, cOut, cIn } = edmScalings(sigma, opts.sigmaData);
      const batch = x.shape[0];
      const ones = (v: number) => new Array<number>(batch).fill(v);
      const out = net(perImage(ones(cIn), x, ones(0), x), ones(edmTime(sigma)));
      return perImage(ones(cSkip), x, ones(cOut), out);
    });
}
