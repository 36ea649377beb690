// The image samplers on data whose exact denoiser is known in closed form: x0 ~ N(0, s^2) per pixel has
// D(x, sigma) = x s^2 / (s^2 + sigma^2), and the probability-flow ODE carries x(sigma_max) to
// x(0) = x(sigma_max) s / sqrt(s^2 + sigma_max^2) exactly (each pixel is scaled along the way).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng, Tensor } from '../../core/index.ts';
import { DdpmSchedule } from '../../core/diffusion/ddpm.ts';
import {
  AncestralScheduler,
  clipDenoiser,
  DdimScheduler,
  edmLevels,
  HeunScheduler,
  sampleLoop,
  scheduleLevels,
  sigmaLevels,
  type Denoiser,
} from '../../core/diffusion/schedulers.ts';

const s = 0.5;
const gaussD: Denoiser = (x, { a, s: noise }) => {
  const sigma = noise / a;
  return new Tensor(
    x.data.map((v) => (v / a) * ((s * s) / (s * s + sigma * sigma))),
    x.shape,
  );
};
const levels = edmLevels({ sigmaMin: 0.002, sigmaMax: 80 });

/** The largest relative error of a sampler's output against the exact flow, with `steps` EDM levels. */
function odeError(Kind: typeof DdimScheduler | typeof HeunScheduler, steps: number): number {
  const scheduler = new Kind(levels).setTimesteps(steps);
  const xStart = scheduler.initNoise([64], new Rng(1));
  const out = sampleLoop(scheduler, gaussD, xStart, new Rng(0));
  // the exact flow from sigma_max down to sigma_min, then the last step's D at sigma_min
  const sMin = scheduler.levels[scheduler.levels.length - 2].s;
  const exact = (v: number) =>
    ((v * Math.sqrt(s * s + sMin * sMin)) / Math.sqrt(s * s + 80 * 80)) * ((s * s) / (s * s + sMin * sMin));
  return Math.max(...Array.from(out.data, (v, i) => Math.abs(v / exact(xStart.data[i]) - 1)));
}

test('DDIM (Euler) converges to the probability-flow ODE at first order, Heun at second', () => {
  // four times the steps: a first-order method's error falls about 4x, a second-order one's about 16x
  const [ddim50, ddim200] = [50, 200].map((n) => odeError(DdimScheduler, n));
  const [heun50, heun200] = [50, 200].map((n) => odeError(HeunScheduler, n));
  assert.ok(ddim200 / ddim50 > 0.15 && ddim200 / ddim50 < 0.4, `DDIM: ${ddim50} -> ${ddim200}`);
  assert.ok(heun200 / heun50 < 0.1, `Heun: ${heun50} -> ${heun200}`);
  assert.ok(heun50 < ddim50 / 5, `Heun-50 ${heun50} vs DDIM-50 ${ddim50}`);
});

test('clipDenoiser clamps the x0 estimate to the range and leaves values inside it alone', () => {
  const wide: Denoiser = (x) => new Tensor(Float32Array.from([-3, -1, 0.25, 1, 2]), x.shape);
  const x = new Tensor(new Float32Array(5), [5]);
  assert.equal(Array.from(clipDenoiser(wide, -1, 1)(x, { a: 1, s: 1 }).data), [-1, -1, 0.25, 1, 1]);
  // a sampler whose every estimate lies inside the range takes the same path with or without the clip
  const scheduler = new DdimScheduler(levels).setTimesteps(10);
  const start = scheduler.initNoise([32], new Rng(2));
  const plain = sampleLoop(scheduler, gaussD, start, new Rng(0)).data;
  const clipped = sampleLoop(scheduler, clipDenoiser(gaussD, -10, 10), start, new Rng(0)).data;
  assert.equal(Array.from(clipped), Array.from(plain));
});

test("every scheduler takes the same path in DDPM's coordinates as in EDM's: x_t = a_t (x0 + sigma_t eps)", () => {
  const schedule = DdpmSchedule.cosine(100);
  for (const Kind of [DdimScheduler, HeunScheduler, AncestralScheduler]) {
    const vp = new Kind(scheduleLevels(schedule)).setTimesteps(20);
    const ve = new Kind(sigmaLevels(schedule)).setTimesteps(20);
    assert.equal(
      vp.levels.map((l) => l.t),
      ve.levels.map((l) => l.t),
    );
    const startVe = new Rng(4).randn([16], { std: ve.initNoiseStd, dtype: 'float64' });
    const startVp = new Tensor(
      startVe.data.map((v) => v * vp.levels[0].a),
      startVe.shape,
    );
    const seen: number[][] = [];
    const outVp = sampleLoop(vp, gaussD, startVp, new Rng(5), (i, x) => seen.push([i, x.data[0]]));
    const outVe = sampleLoop(ve, gaussD, startVe, new Rng(5), (i, x) => {
      const [j, v] = seen.shift() ?? [];
      assert.is(j, i);
      const want = x.data[0] * vp.levels[i + 1].a; // the same point, in DDPM's coordinates
      assert.ok(Math.abs(v - want) < 1e-9 * (1 + Math.abs(want)), `${Kind.name} step ${i}: ${v} vs ${want}`);
    });
    outVp.data.forEach((v, k) => assert.ok(Math.abs(v - outVe.data[k]) < 1e-9, `${Kind.name} sample ${k}`));
  }
});

test.run();
