// Summary statistics and exact densities used to judge what a stage learned.

export function sampleMean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

/** Population standard deviation (divides by n), like numpy's default. */
export function sampleStd(xs: ArrayLike<number>): number {
  const m = sampleMean(xs);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] - m) ** 2;
  return Math.sqrt(s / xs.length);
}

export function gaussianPdf(x: number, mu: number, sigma: number): number {
  const z = (x - mu) / sigma;
  return Math.exp(-0.5 * z * z) / (sigma * Math.sqrt(2 * Math.PI));
}

/** A 1-D Gaussian mixture: components with weights summing to 1. */
export type Mixture1d = { weight: number; mean: number; std: number }[];

export function gaussianMixturePdf(x: number, mixture: Mixture1d): number {
  return mixture.reduce((p, c) => p + c.weight * gaussianPdf(x, c.mean, c.std), 0);
}
