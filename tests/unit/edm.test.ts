// The EDM noise levels and the one-level denoising target.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { edmSigmas, levelTarget, Rng, sub, tensor } from '../../core/index.ts';

test('EDM levels equal the closed form sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho', () => {
  const s = edmSigmas({ n: 10, sigmaMin: 0.001, sigmaMax: 1, rho: 7 });
  assert.is(s.length, 11);
  assert.is(s[0], 1);
  assert.ok(Math.abs(s[9] - 0.001) < 1e-15);
  assert.is(s[10], 0);
  // i = 5 by hand: (1 + 5/9 (0.001^(1/7) - 1))^7
  const hand = Math.pow(1 + (5 / 9) * (Math.pow(0.001, 1 / 7) - 1), 7);
  assert.ok(Math.abs(s[5] - hand) < 1e-15);
  assert.ok(Math.abs(s[5] - 0.0498373395) < 1e-9, `sigma_5 = ${s[5]}`); // numpy gives 0.04983733951
  for (let i = 1; i < 11; i++) assert.ok(s[i] < s[i - 1]);
});

test('removing the target from x = y + n leaves y plus exactly the next level of noise', () => {
  const sigmas = edmSigmas({ n: 10, sigmaMin: 0.001, sigmaMax: 1 });
  const rng = new Rng(0);
  for (let i = 0; i < 10; i++) {
    const y = rng.randn([50], { mean: 1, std: 0.01, dtype: 'float64' });
    const z = rng.randn([50], { dtype: 'float64' });
    const sigma = tensor(new Array(50).fill(sigmas[i]), [50], { dtype: 'float64' });
    const next = tensor(new Array(50).fill(sigmas[i + 1]), [50], { dtype: 'float64' });
    const n = tensor(
      z.toArray().map((v) => v * sigmas[i]),
      [50],
      { dtype: 'float64' },
    );
    const x = tensor(
      y.toArray().map((v, k) => v + n.data[k]),
      [50],
      { dtype: 'float64' },
    );
    const after = sub(x, levelTarget(n, sigma, next));
    // y + n sigma_{i+1} / sigma_i = y + z sigma_{i+1}
    after
      .toArray()
      .forEach((v, k) => assert.ok(Math.abs(v - (y.data[k] + z.data[k] * sigmas[i + 1])) < 1e-14));
  }
});

test('edmSigmas refuses a bad configuration', () => {
  assert.throws(() => edmSigmas({ n: 1, sigmaMin: 0.1, sigmaMax: 1 }), /edmSigmas/);
  assert.throws(() => edmSigmas({ n: 5, sigmaMin: 2, sigmaMax: 1 }), /edmSigmas/);
});

test.run();
