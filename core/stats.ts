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

/**
 * The error function, by Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7): enough for
 * CDFs and distances between distributions, which is all it is used for here.
 */
/**
 * The density of a 1-D mixture drawn as a curve over +-4 std of its components: `points` evenly spaced
 * x, their densities, and the range they span (for a histogram under the curve).
 */
export function densityCurve(
  mixture: Mixture1d,
  points = 300,
): { x: number[]; y: number[]; range: [number, number] } {
  const lo = Math.min(...mixture.map((c) => c.mean - 4 * c.std));
  const hi = Math.max(...mixture.map((c) => c.mean + 4 * c.std));
  const x = Array.from({ length: points }, (_, k) => lo + ((hi - lo) * k) / (points - 1));
  return { x, y: x.map((v) => gaussianMixturePdf(v, mixture)), range: [lo, hi] };
}

export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-a * a));
}

export function normalCdf(x: number, mu = 0, sigma = 1): number {
  return 0.5 * (1 + erf((x - mu) / (sigma * Math.SQRT2)));
}

export function gaussianMixtureCdf(x: number, mixture: Mixture1d): number {
  return mixture.reduce((p, c) => p + c.weight * normalCdf(x, c.mean, c.std), 0);
}

/**
 * An antiderivative of the mixture's CDF: for one Gaussian, the integral of Phi((x - mu) / s) from
 * -infinity to x is s (z Phi(z) + phi(z)) with z = (x - mu) / s.
 */
function mixtureCdfIntegral(x: number, mixture: Mixture1d): number {
  return mixture.reduce((acc, c) => {
    const z = (x - c.mean) / c.std;
    return acc + c.weight * c.std * (z * normalCdf(z) + Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI));
  }, 0);
}

/**
 * The 1-Wasserstein distance between the empirical distribution of `samples` and a 1-D Gaussian
 * mixture: W1 = integral over x of |F_n(x) - F(x)|, where F_n is the samples' CDF. Between two sorted
 * samples F_n is a constant c, and c - F changes sign at most once, so each piece integrates exactly
 * through the antiderivative of F. In the units of x: how far, on average, mass has to move.
 */
export function wasserstein1(samples: ArrayLike<number>, mixture: Mixture1d): number {
  const xs = Float64Array.from(samples).sort();
  const n = xs.length;
  if (n === 0) throw new Error('wasserstein1: no samples');
  if (!xs.every(Number.isFinite)) throw new Error('wasserstein1: samples contain NaN or infinity');
  const G = (x: number) => mixtureCdfIntegral(x, mixture);
  const F = (x: number) => gaussianMixtureCdf(x, mixture);
  // integral of |c - F| over [a, b], splitting where F crosses c (found by bisection)
  const piece = (a: number, b: number, c: number): number => {
    if (b <= a) return 0;
    const signed = (lo: number, hi: number) => c * (hi - lo) - (G(hi) - G(lo));
    if (F(a) >= c || F(b) <= c) return Math.abs(signed(a, b));
    let [lo, hi] = [a, b];
    for (let i = 0; i < 60; i++) {
      const mid = 0.5 * (lo + hi);
      if (F(mid) < c) lo = mid;
      else hi = mid;
    }
    return Math.abs(signed(a, lo)) + Math.abs(signed(lo, b));
  };
  // below the smallest sample F_n = 0: the integral of F is G itself
  let total = G(xs[0]);
  for (let i = 0; i + 1 < n; i++) total += piece(xs[i], xs[i + 1], (i + 1) / n);
  // above the largest F_n = 1: the integral of 1 - F from x_n to infinity is the mean minus x_n plus G(x_n)
  const mean = mixture.reduce((m, c) => m + c.weight * c.mean, 0);
  total += mean - xs[n - 1] + G(xs[n - 1]);
  return total;
}

/** Per-axis mean and population std of the rows of an [n, d] array stored row-major. */
export function axisStats(data: ArrayLike<number>, d: number): { mean: number[]; std: number[] } {
  const n = data.length / d;
  const mean = new Array<number>(d).fill(0);
  const std = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += data[i * d + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j] += (data[i * d + j] - mean[j]) ** 2 / n;
  return { mean, std: std.map(Math.sqrt) };
}

export type ModeStats = {
  centre: number[];
  count: number;
  /** count / all samples */
  share: number;
  mean: number[];
  /** per-axis population std of the samples assigned to this mode */
  std: number[];
  /** Euclidean distance from the mode's sample mean to its centre */
  centreError: number;
};

/**
 * Assigns every sample (a row of the [n, d] array) to its nearest centre, then measures each mode:
 * its share of the samples, and the mean and per-axis spread of the samples it got. An empty mode
 * has count 0 and NaN statistics.
 */
export function modeStats(data: ArrayLike<number>, d: number, centres: number[][]): ModeStats[] {
  const n = data.length / d;
  const members: number[][] = centres.map(() => []);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestDist = Infinity;
    centres.forEach((c, k) => {
      let dist = 0;
      for (let j = 0; j < d; j++) dist += (data[i * d + j] - c[j]) ** 2;
      if (dist < bestDist) [best, bestDist] = [k, dist];
    });
    members[best].push(i);
  }
  return centres.map((centre, k) => {
    const rows = members[k].flatMap((i) => Array.from({ length: d }, (_, j) => data[i * d + j]));
    const { mean, std } =
      rows.length > 0 ? axisStats(rows, d) : { mean: centre.map(() => NaN), std: centre.map(() => NaN) };
    const centreError = Math.hypot(...mean.map((m, j) => m - centre[j]));
    return { centre, count: members[k].length, share: members[k].length / n, mean, std, centreError };
  });
}
