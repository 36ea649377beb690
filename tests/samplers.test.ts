// The image samplers on data whose exact denoiser is known in closed form: x0 ~ N(0, s^2) per pixel has
// D(x, sigma) = x s^2 / (s^2 + sigma^2), and the probability-flow ODE carries x(sigma_max) to
// x(0) = x(sigma_max) s / sqrt(s^2 + sigma_max^2) exactly (each pixel is scaled along the way).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { edmSigmas, Rng, Tensor } from '../core/index.ts';
import { clipDenoiser, ddimSample, heunSample, type Denoiser } from '../core/diffusion/samplers.ts';

const s = 0.5;
const gaussD: Denoiser = (x, sigma) =>
  new Tensor(
    x.data.map((v) => (v * s * s) / (s * s + sigma * sigma)),
    x.shape,
  );

/** The largest relative error of a sampler's output against the exact flow, with `steps` EDM levels. */
function odeError(sample: typeof ddimSample, steps: number): number {
  const sigmas = edmSigmas({ n: steps, sigmaMin: 0.002, sigmaMax: 80 });
  const xStart = new Rng(1).randn([64], { std: 80 });
  const out = sample(gaussD, sigmas, xStart);
  // the exact flow from sigma_max down to sigma_min, then the last step's D at sigma_min
  const sMin = sigmas[sigmas.length - 2];
  const exact = (v: number) =>
    ((v * Math.sqrt(s * s + sMin * sMin)) / Math.sqrt(s * s + 80 * 80)) * ((s * s) / (s * s + sMin * sMin));
  return Math.max(...Array.from(out.data, (v, i) => Math.abs(v / exact(xStart.data[i]) - 1)));
}

test('DDIM (Euler) converges to the probability-flow ODE at first order, Heun at second', () => {
  // four times the steps: a first-order method's error falls about 4x, a second-order one's about 16x
  const [ddim50, ddim200] = [50, 200].map((n) => odeError(ddimSample, n));
  const [heun50, heun200] = [50, 200].map((n) => odeError(heunSample, n));
  assert.ok(ddim200 / ddim50 > 0.15 && ddim200 / ddim50 < 0.4, `DDIM: ${ddim50} -> ${ddim200}`);
  assert.ok(heun200 / heun50 < 0.1, `Heun: ${heun50} -> ${heun200}`);
  assert.ok(heun50 < ddim50 / 5, `Heun-50 ${heun50} vs DDIM-50 ${ddim50}`);
});

test('clipDenoiser clamps the x0 estimate to the range and leaves values inside it alone', () => {
  const wide: Denoiser = (x) => new Tensor(Float32Array.from([-3, -1, 0.25, 1, 2]), x.shape);
  const x = new Tensor(new Float32Array(5), [5]);
  assert.equal(Array.from(clipDenoiser(wide, -1, 1)(x, 1).data), [-1, -1, 0.25, 1, 1]);
  // a sampler whose every estimate lies inside the range takes the same path with or without the clip
  const sigmas = edmSigmas({ n: 10, sigmaMin: 0.002, sigmaMax: 80 });
  const start = new Rng(2).randn([32], { std: 80 });
  const plain = ddimSample(gaussD, sigmas, start).data;
  const clipped = ddimSample(clipDenoiser(gaussD, -10, 10), sigmas, start).data;
  assert.equal(Array.from(clipped), Array.from(plain));
});

test.run();
