// The DDPM schedule, forward noising, the ancestral scheduler's step and the closed-form marginal,
// against values computed by hand (or by an independent float64 loop in Python, quoted below) and by
// simulation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DdpmSchedule } from '../../core/diffusion/ddpm.ts';
import { predictionDenoiser } from '../../core/diffusion/objectives.ts';
import { AncestralScheduler, sampleLoop, scheduleLevels } from '../../core/diffusion/schedulers.ts';
import {
  exactDenoiser,
  gaussian,
  noisedMixture,
  posteriorEps,
  sampleMixture,
  type GaussianMixture,
} from '../../core/diffusion/mixture.ts';
import { matmul, noGrad, reshape, Rng, slice, tensor } from '../../core/index.ts';
import { EpsMlp, LevelMlps, levelLinear } from '../../core/diffusion/nets.ts';
import { gradcheck, rand64 } from '../helpers/gradcheck.ts';
import { sampleMean, sampleStd } from '../../core/stats.ts';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

test('linear schedule: beta, alphaBar and betaTilde equal the hand-computed values', () => {
  const s = DdpmSchedule.linear(1000, 1e-4, 0.02);
  assert.is(s.T, 1000);
  // beta_t = 1e-4 + t (0.02 - 1e-4) / 999
  close(s.betas[0], 1e-4, 1e-18, 'beta_0');
  close(s.betas[1], 1e-4 + 0.0199 / 999, 1e-18, 'beta_1');
  close(s.betas[999], 0.02, 1e-17, 'beta_999');
  // alphaBar_0 = 1 - beta_0; alphaBar_1 = (1 - beta_0)(1 - beta_1): the product includes beta_t itself
  close(s.alphaBar[0], 0.9999, 1e-16, 'alphaBar_0');
  close(s.alphaBar[1], 0.9999 * (1 - (1e-4 + 0.0199 / 999)), 1e-16, 'alphaBar_1');
  // cumprod in Python (float64): 0.07858724288177821 and 4.0358297653756754e-05
  close(s.alphaBar[499], 0.07858724288177821, 1e-13, 'alphaBar_499');
  close(s.alphaBar[999], 4.0358297653756754e-5, 1e-15, 'alphaBar_999');
  // betaTilde_t = (1 - alphaBar_{t-1}) / (1 - alphaBar_t) beta_t, and 0 at t = 0
  assert.is(s.betaTilde[0], 0);
  const hand1 = ((1 - 0.9999) / (1 - s.alphaBar[1])) * s.betas[1];
  close(s.betaTilde[1], hand1, 1e-18, 'betaTilde_1');
  close(s.betaTilde[1], 5.4531876613021935e-5, 1e-15, 'betaTilde_1 (Python)');
  close(s.betaTilde[499], 0.01003135541461369, 1e-13, 'betaTilde_499 (Python)');
  for (let t = 1; t < 1000; t++) assert.ok(s.betaTilde[t] < s.betas[t] && s.alphaBar[t] < s.alphaBar[t - 1]);
  close(s.alphas[7], 1 - s.betas[7], 0, 'alpha = 1 - beta');
});

test('addNoise jumps to x_t = sqrt(alphaBar_t) x_0 + sqrt(1 - alphaBar_t) eps, one t per sample', () => {
  const s = DdpmSchedule.linear(10, 0.1, 0.5);
  const x0 = tensor([[1, 2], [3, 4], [5, 6]], undefined, { dtype: 'float64' }); // prettier-ignore
  const eps = tensor([[0.5, -1], [2, 0], [-3, 1]], undefined, { dtype: 'float64' }); // prettier-ignore
  const ts = [0, 4, 9];
  const xt = s.addNoise(x0, eps, ts);
  assert.equal(xt.shape, [3, 2]);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 2; j++) {
      const ab = s.alphaBar[ts[i]];
      const hand = Math.sqrt(ab) * x0.data[2 * i + j] + Math.sqrt(1 - ab) * eps.data[2 * i + j];
      close(xt.data[2 * i + j], hand, 1e-14, `x_t[${i},${j}]`);
    }
  }
  const same = s.addNoise(x0, eps, 4);
  close(
    same.data[0],
    Math.sqrt(s.alphaBar[4]) * 1 + Math.sqrt(1 - s.alphaBar[4]) * 0.5,
    1e-14,
    'one t for all',
  );
});

/** The ancestral scheduler through every timestep of `s` (level i is timestep T-1-i). */
const ancestral = (s: DdpmSchedule, variance?: 'beta') =>
  new AncestralScheduler(scheduleLevels(s), { variance }).setTimesteps(s.T);

test("the ancestral step is Ho et al.'s update (eq. 11 and Algorithm 2), with no noise at t = 0", () => {
  const s = DdpmSchedule.linear(50);
  const xt = tensor([0.3, -1.2, 2], [3, 1], { dtype: 'float64' });
  const eps = tensor([0.1, -0.4, 1.5], [3, 1], { dtype: 'float64' });
  // a network that predicts this eps whatever it is given
  const denoise = predictionDenoiser(() => eps, s, 'eps');
  const scheduler = ancestral(s);
  for (const t of [0, 1, 30, 49]) {
    const rng = new Rng(7);
    const z = new Rng(7);
    assert.is(scheduler.levels[s.T - 1 - t].t, t);
    const out = scheduler.step(denoise, xt, s.T - 1 - t, rng).prevSample;
    for (let i = 0; i < 3; i++) {
      const mean =
        (xt.data[i] - (s.betas[t] / Math.sqrt(1 - s.alphaBar[t])) * eps.data[i]) / Math.sqrt(s.alphas[t]);
      const hand = t === 0 ? mean : mean + Math.sqrt(s.betaTilde[t]) * z.normal();
      close(out.data[i], hand, 1e-12, `x_${t - 1}[${i}]`);
    }
    if (t === 0) assert.is(rng.uniform(), new Rng(7).uniform(), 't = 0 must not draw noise');
  }
  // the other variance choice: beta_t instead of betaTilde_t
  const z = new Rng(3);
  const out = ancestral(s, 'beta').step(denoise, xt, s.T - 1 - 30, new Rng(3)).prevSample;
  const mean =
    (xt.data[0] - (s.betas[30] / Math.sqrt(1 - s.alphaBar[30])) * eps.data[0]) / Math.sqrt(s.alphas[30]);
  close(out.data[0], mean + Math.sqrt(s.betas[30]) * z.normal(), 1e-12, 'variance beta');
});

test('the closed-form marginal q(x_t) of a mixture matches forward-noised samples', () => {
  const s = DdpmSchedule.linear(1000);
  const data: GaussianMixture = [
    { weight: 0.3, mean: [-1], std: 0.1 },
    { weight: 0.7, mean: [1], std: 0.1 },
  ];
  const t = 150;
  const q = s.marginal(data, t);
  const ab = s.alphaBar[t];
  // by hand: means sqrt(alphaBar) mu_k, variances alphaBar s_k^2 + 1 - alphaBar
  close(q[0].mean[0], -Math.sqrt(ab), 1e-15, 'mean_0');
  close(q[1].std, Math.sqrt(ab * 0.01 + 1 - ab), 1e-15, 'std_1');
  assert.equal(
    q.map((c) => c.weight),
    [0.3, 0.7],
  );
  const rng = new Rng(11);
  const n = 200000;
  const xt = s.addNoise(sampleMixture(data, n, rng), rng.randn([n, 1]), t).data;
  const mixMean = 0.3 * q[0].mean[0] + 0.7 * q[1].mean[0];
  const mixVar =
    0.3 * (q[0].std ** 2 + q[0].mean[0] ** 2) + 0.7 * (q[1].std ** 2 + q[1].mean[0] ** 2) - mixMean ** 2;
  close(sampleMean(xt), mixMean, 0.01, 'sample mean of x_t');
  close(sampleStd(xt) ** 2, mixVar, 0.01, 'sample variance of x_t');
});

test('posteriorEps equals E[eps | x] by numerical integration over x_0', () => {
  const data: GaussianMixture = [
    { weight: 0.25, mean: [-1], std: 0.2 },
    { weight: 0.75, mean: [0.5], std: 0.05 },
  ];
  const [a, s] = [0.8, 0.6];
  const xs = [-1.5, -0.2, 0.3, 0.9];
  const exact = posteriorEps(data, tensor(xs, [4, 1], { dtype: 'float64' }), a, s).data;
  xs.forEach((x, i) => {
    // E[eps | x] = int p(x0) N(x; a x0, s^2) (x - a x0) / s dx0 / int p(x0) N(x; a x0, s^2) dx0
    let num = 0;
    let den = 0;
    for (let k = 0; k <= 200000; k++) {
      const x0 = -3 + (6 * k) / 200000;
      const prior = data.reduce(
        (p, c) => p + (c.weight / c.std) * Math.exp(-0.5 * ((x0 - c.mean[0]) / c.std) ** 2),
        0,
      );
      const like = Math.exp(-0.5 * ((x - a * x0) / s) ** 2);
      num += prior * like * ((x - a * x0) / s);
      den += prior * like;
    }
    close(exact[i], num / den, 1e-6, `E[eps | x = ${x}]`);
  });
});

test('with the exact denoiser, the sampler ends where the linear-Gaussian recursion says it must', () => {
  // For Gaussian data N(mu, s^2) every step is x_{t-1} = A_t x_t + b_t + sd_t z, so the final mean and
  // variance follow m <- A m + b, v <- A^2 v + sd^2 from N(0, 1): computed here independently.
  const s = DdpmSchedule.linear(200);
  const [mu, sd] = [1, 0.01];
  let [m, v] = [0, 1];
  for (let t = s.T - 1; t >= 0; t--) {
    const ab = s.alphaBar[t];
    const vt = ab * sd * sd + 1 - ab;
    const c = s.betas[t] / Math.sqrt(1 - ab);
    const A = (1 - (c * Math.sqrt(1 - ab)) / vt) / Math.sqrt(s.alphas[t]);
    const b = (c * Math.sqrt(1 - ab) * Math.sqrt(ab) * mu) / vt / Math.sqrt(s.alphas[t]);
    [m, v] = [A * m + b, A * A * v + (t > 0 ? s.betaTilde[t] : 0)];
  }
  const data = gaussian([mu], sd);
  const rng = new Rng(5);
  const n = 20000;
  const x = sampleLoop(ancestral(s), exactDenoiser(data), rng.randn([n, 1], { dtype: 'float64' }), rng).data;
  close(sampleMean(x), m, 4 * (Math.sqrt(v) / Math.sqrt(n)), 'final mean');
  close(sampleStd(x), Math.sqrt(v), 4 * Math.sqrt(v / (2 * n)), 'final std');
  // and the recursion's own verdict on this data: the ancestral sampler shrinks the spread
  assert.ok(Math.sqrt(v) < 0.0075, `final std ${Math.sqrt(v)}`);
  // noising a mixture with a = 1 is EDM's x = y + n: the same function serves both
  close(noisedMixture(data, 1, 0.5)[0].std, Math.hypot(0.5, sd), 1e-15, 'EDM noising');
});

test('bad schedules, timesteps and shapes are refused with one clear error', () => {
  assert.throws(() => new DdpmSchedule([0.1, 1.2]), /beta\[1\] = 1.2 is not in \(0, 1\)/);
  assert.throws(() => DdpmSchedule.linear(1), /T must be an integer >= 2/);
  const s = DdpmSchedule.linear(10);
  const x = tensor([1, 2], [2, 1]);
  const scheduler = ancestral(s);
  const denoise = predictionDenoiser(() => tensor([1, 2, 3], [3, 1]), s, 'eps');
  assert.throws(() => scheduler.step(denoise, x, 10, new Rng(0)), /step 10 is outside 0..9/);
  assert.throws(
    () => scheduler.step(denoise, x, 3, new Rng(0)),
    /the predicted eps \[3,1\] and x_t \[2,1\] differ/,
  );
  assert.throws(
    () => new AncestralScheduler(scheduleLevels(s)).step(denoise, x, 0, new Rng(0)),
    /call setTimesteps first/,
  );
  assert.throws(() => s.addNoise(x, x, [1, 2, 3]), /addNoise: 3 timesteps for x0 of shape \[2,1\]/);
  assert.throws(() => s.addNoise(x, x, [1, 12]), /timestep 12 is outside/);
});

test('levelLinear: equals a batched matmul, and its backward passes a float64 gradient check', () => {
  const rng = new Rng(1);
  const x = rand64(rng, [3, 4, 2]);
  const w = rand64(rng, [3, 2, 5]);
  const ours = levelLinear(x, w);
  const reference = matmul(x, w);
  ours.data.forEach((v, i) => close(v, reference.data[i], 1e-12, `element ${i}`));
  const { maxError, worst } = gradcheck(levelLinear, [x, w]);
  assert.ok(maxError < 1e-6, worst);
});

test('the level nets: net t on its own gives what it gives among all T; EpsMlp takes one t or one per row', () => {
  const s = DdpmSchedule.linear(6);
  const rng = new Rng(2);
  const nets = new LevelMlps(s, { dim: 2, width: 4, sigmaData: 0.1, muData: [0.5, -0.5] }, rng);
  const x = rng.randn([6, 3, 2]);
  const all = noGrad(() => nets.forwardAll(x));
  for (const t of [0, 3, 5]) {
    const alone = noGrad(() => nets.forward(reshape(slice(x, 0, t, t + 1), [3, 2]), t));
    alone.data.forEach((v, i) => close(v, all.data[t * 6 + i], 1e-6, `net ${t} element ${i}`));
  }
  const eps = new EpsMlp(s, { dim: 2, width: 8, sigmaData: 0.1 }, rng);
  const rows = rng.randn([3, 2]);
  const one = noGrad(() => eps.forward(rows, 4));
  const each = noGrad(() => eps.forward(rows, [4, 4, 4]));
  assert.equal(one.toArray(), each.toArray());
  assert.throws(() => eps.forward(rows, [1, 2]), /2 timesteps for 3 rows/);
  assert.throws(() => nets.forward(rows, 6), /timestep 6 is outside 0..5/);
});

test.run();
