// Samplers that work for any trained model, written in the "variance exploding" coordinates of Karras
// et al. 2022: a noisy sample is x = x0 + sigma n. A DDPM x_t (variance preserving) is the same point
// scaled: x_t = x / sqrt(1 + sigma^2), with alphaBar_t = 1 / (1 + sigma_t^2). Every model is wrapped as a
// denoiser D(x, sigma) ~ E[x0 | x], and each sampler only needs D and a decreasing list of sigmas.
import { Tensor, allocate } from '../tensor.ts';
import type { Rng } from '../random.ts';

/** A batch at one noise level -> the estimate of the clean batch. */
export type Denoiser = (x: Tensor, sigma: number) => Tensor;
export type StepHook = (i: number, x: Tensor, x0: Tensor) => void;

/**
 * D clamped to [lo, hi]: a clean sample cannot leave the data's range, so neither should its estimate.
 * This is DDIM's `clip_sample` in diffusers; the sampler then steps towards the clamped x0.
 */
export function clipDenoiser(denoise: Denoiser, lo: number, hi: number): Denoiser {
  return (x, sigma) => {
    const x0 = denoise(x, sigma);
    return new Tensor(
      x0.data.map((v) => Math.min(hi, Math.max(lo, v))),
      x0.shape,
    );
  };
}

/** sigma of the VE view of a DDPM step with signal level alphaBar. */
export const sigmaOfAlphaBar = (alphaBar: number): number => Math.sqrt((1 - alphaBar) / alphaBar);

/** Elementwise a x + b y, written out: samplers run thousands of these without needing a graph. */
function combine(a: number, x: Tensor, b: number, y: Tensor): Tensor {
  const out = allocate(x.dtype, x.size);
  for (let i = 0; i < out.length; i++) out[i] = a * x.data[i] + b * y.data[i];
  return new Tensor(out, x.shape);
}

/**
 * DDIM (Song et al. 2021), eta = 0, which in these coordinates is Euler's method on the probability-flow
 * ODE dx/dsigma = (x - D(x, sigma)) / sigma (Karras et al. 2022, sec. 3):
 * x_next = D + (sigma_next / sigma) (x - D). The last sigma should be 0, where x_next = D.
 */
export function ddimSample(denoise: Denoiser, sigmas: number[], xStart: Tensor, onStep?: StepHook): Tensor {
  let x = xStart;
  for (let i = 0; i + 1 < sigmas.length; i++) {
    const x0 = denoise(x, sigmas[i]);
    const r = sigmas[i + 1] / sigmas[i];
    x = combine(r, x, 1 - r, x0);
    onStep?.(i, x, x0);
  }
  return x;
}

/** EDM's deterministic second-order sampler (Heun's method, Algorithm 1 of Karras et al. 2022). */
export function heunSample(denoise: Denoiser, sigmas: number[], xStart: Tensor, onStep?: StepHook): Tensor {
  let x = xStart;
  for (let i = 0; i + 1 < sigmas.length; i++) {
    const [s, next] = [sigmas[i], sigmas[i + 1]];
    const x0 = denoise(x, s);
    const d = combine(1 / s, x, -1 / s, x0); // dx/dsigma at s
    const euler = combine(1, x, next - s, d);
    if (next === 0) {
      x = euler;
    } else {
      // the slope again at the Euler point, and the average of the two slopes
      const x0Next = denoise(euler, next);
      const dNext = combine(1 / next, euler, -1 / next, x0Next);
      x = combine(1, x, (next - s) / 2, combine(1, d, 1, dNext));
    }
    onStep?.(i, x, x0);
  }
  return x;
}

/**
 * The ancestral DDPM sampler (Ho et al. 2020, Algorithm 2) on any decreasing sigma grid ending at 0:
 * in VP coordinates, x_{t-1} ~ q(x_{t-1} | x_t, x0 = D) = N(c0 x0 + ct x_t, betaTilde) with
 * alphaBar = 1 / (1 + sigma^2), beta_t = 1 - alphaBar_t / alphaBar_{t-1},
 * c0 = sqrt(alphaBar_{t-1}) beta_t / (1 - alphaBar_t), ct = sqrt(alpha_t) (1 - alphaBar_{t-1}) / (1 - alphaBar_t),
 * betaTilde = (1 - alphaBar_{t-1}) / (1 - alphaBar_t) beta_t (eq. 7). With the x0 a model's eps implies,
 * this is the reference's update written through x0.
 */
export function ancestralSample(
  denoise: Denoiser,
  sigmas: number[],
  xStart: Tensor,
  rng: Rng,
  onStep?: StepHook,
): Tensor {
  let x = xStart;
  for (let i = 0; i + 1 < sigmas.length; i++) {
    const [s, next] = [sigmas[i], sigmas[i + 1]];
    const x0 = denoise(x, s);
    const ab = 1 / (1 + s * s);
    const abPrev = 1 / (1 + next * next);
    const beta = 1 - ab / abPrev;
    const c0 = (Math.sqrt(abPrev) * beta) / (1 - ab);
    const ct = (Math.sqrt(1 - beta) * (1 - abPrev)) / (1 - ab);
    const sd = Math.sqrt(((1 - abPrev) / (1 - ab)) * beta);
    // work in VP coordinates (x_t = x sqrt(ab)), then return to VE ones for the next denoiser call
    const out = allocate(x.dtype, x.size);
    const toVp = Math.sqrt(ab);
    const toVe = 1 / Math.sqrt(abPrev);
    for (let k = 0; k < out.length; k++) {
      const mean = c0 * x0.data[k] + ct * toVp * x.data[k];
      out[k] = (next > 0 ? mean + sd * rng.normal() : mean) * toVe;
    }
    x = new Tensor(out, x.shape);
    onStep?.(i, x, x0);
  }
  return x;
}
