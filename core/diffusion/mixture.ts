// Gaussian mixtures: the toy data of the ladder, and what is known exactly about them once noised.
//
// Every toy data set here is a mixture of isotropic Gaussians: component k has weight w_k, a mean
// mu_k (a point in d dimensions) and a standard deviation s_k on every axis. Adding noise keeps it a
// mixture, so the density at every noise level, and the best possible noise prediction, are known in
// closed form. That is what lets a stage measure how far its network is from ideal.
import { allocate, Tensor } from '../tensor.ts';
import type { Rng } from '../random.ts';
import { formatShape } from '../shape.ts';
import type { Mixture1d } from '../stats.ts';
import type { Denoiser } from './schedulers.ts';
import { combine, fromPrediction, predictionTarget, type Prediction } from './targets.ts';

export type Component = { weight: number; mean: number[]; std: number };
export type GaussianMixture = Component[];

/** One Gaussian N(mean, std^2 I). */
export function gaussian(mean: number[], std: number): GaussianMixture {
  return checkMixture([{ weight: 1, mean, std }]);
}

/** Four equal, narrow Gaussians at the corners (-1,-1), (-1,1), (1,-1), (1,1) of a square. */
export function squareSpikes(std = 0.01): GaussianMixture {
  const corners = [
    [-1, -1],
    [-1, 1],
    [1, -1],
    [1, 1],
  ];
  return checkMixture(corners.map((mean) => ({ weight: 0.25, mean, std })));
}

/** Throws one clear error for an empty mixture, mixed dimensions, bad weights or stds. */
export function checkMixture(mix: GaussianMixture): GaussianMixture {
  if (mix.length === 0) throw new Error('mixture: needs at least one component');
  const d = mix[0].mean.length;
  let total = 0;
  mix.forEach((c, k) => {
    if (c.mean.length !== d || d === 0) {
      throw new Error(`mixture: component ${k} has ${c.mean.length} dimensions, component 0 has ${d}`);
    }
    if (!(c.weight > 0) || !(c.std >= 0)) {
      throw new Error(`mixture: component ${k} needs weight > 0 and std >= 0 (got ${c.weight}, ${c.std})`);
    }
    total += c.weight;
  });
  if (Math.abs(total - 1) > 1e-9) throw new Error(`mixture: weights sum to ${total}, not 1`);
  return mix;
}

export function mixtureDim(mix: GaussianMixture): number {
  return mix[0].mean.length;
}

/** n draws as an [n, d] tensor: a component by its weight, then a Gaussian draw from it. */
export function sampleMixture(mix: GaussianMixture, n: number, rng: Rng): Tensor {
  const d = mixtureDim(mix);
  const out = allocate('float32', n * d);
  for (let i = 0; i < n; i++) {
    let u = rng.uniform();
    let k = 0;
    while (k < mix.length - 1 && u >= mix[k].weight) u -= mix[k++].weight;
    for (let j = 0; j < d; j++) out[i * d + j] = mix[k].mean[j] + mix[k].std * rng.normal();
  }
  return new Tensor(out, [n, d]);
}

/**
 * The law of x = a x0 + s eps with x0 from the mixture and eps ~ N(0, I): each component keeps its
 * weight, its mean becomes a mu_k and its variance a^2 s_k^2 + s^2. DDPM's q(x_t) is a = sqrt(alphaBar_t),
 * s = sqrt(1 - alphaBar_t); EDM's noised data is a = 1, s = sigma.
 */
export function noisedMixture(mix: GaussianMixture, a: number, s: number): GaussianMixture {
  return mix.map((c) => ({
    weight: c.weight,
    mean: c.mean.map((m) => a * m),
    std: Math.sqrt(a * a * c.std * c.std + s * s),
  }));
}

/** The 1-D marginal along one axis, e.g. to draw the exact density under a histogram. */
export function axisMarginal(mix: GaussianMixture, axis = 0): Mixture1d {
  return mix.map((c) => ({ weight: c.weight, mean: c.mean[axis], std: c.std }));
}

/**
 * The best possible noise prediction, E[eps | x] for x = a x0 + s eps (Tweedie's formula). Within
 * component k, x and eps are jointly Gaussian, so E[eps | x, k] = s (x - a mu_k) / (a^2 s_k^2 + s^2);
 * over the mixture these are weighted by the posterior probability of each component,
 * r_k(x) proportional to w_k N(x; a mu_k, (a^2 s_k^2 + s^2) I). `x` is [n, d]; computed in float64.
 */
export function posteriorEps(mix: GaussianMixture, x: Tensor, a: number, s: number): Tensor {
  return posteriorMean(mix, x, a, s, (c, k, xj, j) => (s * (xj - a * c.mean[j])) / k);
}

/** The best possible estimate of the clean data, E[x0 | x]: E[x0 | x, k] = mu_k + a s_k^2 (x - a mu_k) / (a^2 s_k^2 + s^2). */
export function posteriorX0(mix: GaussianMixture, x: Tensor, a: number, s: number): Tensor {
  return posteriorMean(
    mix,
    x,
    a,
    s,
    (c, k, xj, j) => c.mean[j] + (a * c.std * c.std * (xj - a * c.mean[j])) / k,
  );
}

/** The denoiser that knows the data: E[x0 | x] at every level, the best any network could do. */
export function exactDenoiser(mix: GaussianMixture): Denoiser {
  return (x, level) => posteriorX0(mix, x, level.a, level.s);
}

/**
 * sum_k r_k(x) m_k(x): a conditional mean given component k, `perComponent(c, v_k, x_j, j)` with
 * v_k = a^2 s_k^2 + s^2 the variance of x within it, weighted by the component's posterior probability.
 */
function posteriorMean(
  mix: GaussianMixture,
  x: Tensor,
  a: number,
  s: number,
  perComponent: (c: Component, variance: number, xj: number, j: number) => number,
): Tensor {
  const d = mixtureDim(mix);
  if (x.ndim !== 2 || x.shape[1] !== d) {
    throw new Error(`posterior mean: x must be [n, ${d}] for this mixture, got ${formatShape(x.shape)}`);
  }
  const n = x.shape[0];
  const variances = mix.map((c) => a * a * c.std * c.std + s * s);
  const logR = new Float64Array(mix.length);
  const out = allocate(x.dtype, n * d);
  for (let i = 0; i < n; i++) {
    let top = -Infinity;
    mix.forEach((c, k) => {
      let sq = 0;
      for (let j = 0; j < d; j++) sq += (x.data[i * d + j] - a * c.mean[j]) ** 2;
      logR[k] = Math.log(c.weight) - 0.5 * d * Math.log(variances[k]) - sq / (2 * variances[k]);
      top = Math.max(top, logR[k]);
    });
    let total = 0;
    for (let k = 0; k < mix.length; k++) total += logR[k] = Math.exp(logR[k] - top);
    for (let j = 0; j < d; j++) {
      let e = 0;
      mix.forEach((c, k) => {
        e += (logR[k] / total) * perComponent(c, variances[k], x.data[i * d + j], j);
      });
      out[i * d + j] = e;
    }
  }
  return new Tensor(out, [n, d]);
}

/**
 * The smallest mean squared error, per coordinate, that a network predicting eps, x0 or v can reach on
 * x = a x0 + s eps with x0 from the mixture: E|y - E[y | x]|^2 for each target y. E[eps | x] is exact
 * (posteriorEps) and E[x0 | x], E[v | x] follow from it linearly; the outer mean is over n draws.
 */
export function bestTargetLoss(
  mix: GaussianMixture,
  a: number,
  s: number,
  n: number,
  rng: Rng,
): Record<Prediction, number> {
  const d = mixtureDim(mix);
  const x0 = sampleMixture(mix, n, rng);
  const x0d = new Tensor(Float64Array.from(x0.data), x0.shape);
  const eps = rng.randn([n, d], { dtype: 'float64' });
  const x = combine(a, x0d, s, eps);
  const epsHat = posteriorEps(mix, x, a, s);
  const hat = { eps: epsHat, x0: fromPrediction('eps', epsHat, x, a, s).x0 };
  const loss = (p: Prediction) => {
    const y = predictionTarget(p, x0d, eps, a, s);
    const yHat = predictionTarget(p, hat.x0, hat.eps, a, s);
    let sum = 0;
    for (let i = 0; i < y.size; i++) sum += (y.data[i] - yHat.data[i]) ** 2;
    return sum / y.size;
  };
  return { eps: loss('eps'), x0: loss('x0'), v: loss('v') };
}
