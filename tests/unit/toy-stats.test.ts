// The measuring tools of the toy stages: erf, the 1-Wasserstein distance to a mixture, the per-mode
// statistics, and mixture sampling.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sampleMixture, squareSpikes } from '../../core/diffusion/mixture.ts';
import { Rng } from '../../core/index.ts';
import {
  erf,
  gaussianMixtureCdf,
  modeStats,
  normalCdf,
  wasserstein1,
  type Mixture1d,
} from '../../core/stats.ts';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

test('erf and the normal CDF match tabulated values', () => {
  // Abramowitz & Stegun table 7.1
  close(erf(0), 0, 1e-9, 'erf 0');
  close(erf(0.5), 0.5204998778, 2e-7, 'erf 0.5');
  close(erf(1), 0.8427007929, 2e-7, 'erf 1');
  close(erf(-1.5), -0.9661051465, 2e-7, 'erf -1.5');
  close(normalCdf(1.96), 0.9750021049, 2e-7, 'Phi(1.96)');
  close(normalCdf(3, 1, 2), normalCdf(1), 1e-15, 'standardised');
});

/** |F_n - F| integrated on a fine grid: slow, simple and independent of the exact method. */
function bruteW1(samples: number[], mix: Mixture1d, lo: number, hi: number): number {
  const xs = [...samples].sort((a, b) => a - b);
  const n = 400000;
  const h = (hi - lo) / n;
  let total = 0;
  let k = 0;
  for (let i = 0; i < n; i++) {
    const x = lo + (i + 0.5) * h;
    while (k < xs.length && xs[k] <= x) k++;
    total += Math.abs(k / xs.length - gaussianMixtureCdf(x, mix)) * h;
  }
  return total;
}

test('wasserstein1 equals brute-force integration of |F_n - F|', () => {
  const mix: Mixture1d = [
    { weight: 0.3, mean: -1, std: 0.2 },
    { weight: 0.7, mean: 1.5, std: 0.5 },
  ];
  const rng = new Rng(2);
  for (const shift of [0, 0.3]) {
    const samples = Array.from(
      { length: 300 },
      () => (rng.uniform() < 0.4 ? -1 : 1.2) + 0.4 * rng.normal() + shift,
    );
    close(wasserstein1(samples, mix), bruteW1(samples, mix, -6, 8), 2e-5, `shift ${shift}`);
  }
  // a sample far outside the mixture's range counts in full
  close(wasserstein1([10], [{ weight: 1, mean: 0, std: 1 }]), 10, 1e-6, 'one point at 10 vs N(0, 1)');
});

test('wasserstein1: a shifted Gaussian is as far as the shift; exact samples are near 0', () => {
  const rng = new Rng(4);
  const n = 20000;
  const samples = Array.from({ length: n }, () => rng.normal());
  const target: Mixture1d = [{ weight: 1, mean: 0, std: 1 }];
  assert.ok(wasserstein1(samples, target) < 0.02, `exact samples: ${wasserstein1(samples, target)}`);
  close(
    wasserstein1(
      samples.map((v) => v + 0.5),
      target,
    ),
    0.5,
    0.02,
    'shifted by 0.5',
  );
  assert.throws(() => wasserstein1([1, NaN], target), /NaN/);
});

test('modeStats assigns samples to the nearest centre and measures each mode', () => {
  const centres = [
    [-1, -1],
    [1, 1],
  ];
  // three points near (-1,-1), one near (1,1), one in the middle that is nearer (1,1)
  const data = [-1.1, -1, -0.9, -1, -1, -1.2, 1, 1.1, 0.1, 0.2];
  const [a, b] = modeStats(data, 2, centres);
  assert.is(a.count, 3);
  assert.is(b.count, 2);
  close(a.share, 0.6, 1e-12, 'share');
  close(a.mean[0], -1, 1e-12, 'mean x');
  close(a.mean[1], -1.0666666666666667, 1e-12, 'mean y');
  close(a.std[0], Math.sqrt(0.02 / 3), 1e-12, 'std x');
  close(b.centreError, Math.hypot(0.55 - 1, 0.65 - 1), 1e-12, 'centre error');
  const [, empty] = modeStats([-1, -1], 2, centres);
  assert.is(empty.count, 0);
  assert.ok(Number.isNaN(empty.std[0]));
});

test('sampleMixture draws each spike with its weight and spread', () => {
  const rng = new Rng(9);
  const data = squareSpikes(0.01);
  const x = sampleMixture(data, 40000, rng);
  assert.equal(x.shape, [40000, 2]);
  for (const m of modeStats(
    x.data,
    2,
    data.map((c) => c.mean),
  )) {
    close(m.share, 0.25, 0.01, 'share');
    m.std.forEach((s) => close(s, 0.01, 0.0003, 'std'));
    assert.ok(m.centreError < 0.001, `centre error ${m.centreError}`);
  }
});

test.run();
