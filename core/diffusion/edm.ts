import { div, mul, sub } from '../ops/elementwise.ts';
import type { Tensor } from '../tensor.ts';

// Noise levels from "Elucidating the Design Space of Diffusion-Based Generative Models"
// (Karras et al. 2022, eq. 5): N levels spaced evenly in sigma^(1/rho), from sigma_max down to
// sigma_min, then a final 0. rho = 7 spends most levels at small sigma, where detail is decided.

export type EdmLevelOptions = { n: number; sigmaMin: number; sigmaMax: number; rho?: number };

/** [sigma_0 = sigma_max, ..., sigma_{N-1} = sigma_min, 0]: N + 1 numbers. */
export function edmSigmas({ n, sigmaMin, sigmaMax, rho = 7 }: EdmLevelOptions): number[] {
  if (!(n >= 2) || !(sigmaMax > sigmaMin) || !(sigmaMin > 0)) {
    throw new Error(
      `edmSigmas: need n >= 2 and sigmaMax > sigmaMin > 0 (got n=${n}, ${sigmaMax}, ${sigmaMin})`,
    );
  }
  const hi = Math.pow(sigmaMax, 1 / rho);
  const lo = Math.pow(sigmaMin, 1 / rho);
  const sigmas: number[] = [];
  for (let i = 0; i < n; i++) sigmas.push(Math.pow(hi + (i / (n - 1)) * (lo - hi), rho));
  sigmas.push(0);
  return sigmas;
}

/**
 * What a one-level denoiser must remove. A clean y with noise n ~ N(0, sigma^2) is x = y + n; one
 * level down it should be y + n * (sigmaNext / sigma), whose noise has std sigmaNext. So the part to
 * subtract is x - (y + n sigmaNext / sigma) = n (1 - sigmaNext / sigma).
 */
export function levelTarget(noise: Tensor, sigma: Tensor, sigmaNext: Tensor): Tensor {
  return mul(noise, sub(1, div(sigmaNext, sigma)));
}
