// Noise schedules and prediction targets: the cosine schedule's closed form, the eps <-> x0 <-> v
// conversions, and the forward and reverse steps of every schedule against their stated laws (the
// objectives built on them: objectives.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cosineAlphaBar, DdpmSchedule } from '../../core/diffusion/ddpm.ts';
import { EdmSchedule, InterpolationSchedule, NoiseSchedule } from '../../core/diffusion/schedule.ts';
import {
  fromPrediction,
  predictionTarget,
  PREDICTIONS,
  type Prediction,
} from '../../core/diffusion/targets.ts';
import { predictionDenoiser } from '../../core/diffusion/objectives.ts';
import {
  AncestralScheduler,
  sampleLoop,
  scheduleLevels,
  type ReverseVariance,
} from '../../core/diffusion/schedulers.ts';
import { Rng, Tensor, tensor } from '../../core/index.ts';
import { sampleMean, sampleStd } from '../../core/stats.ts';
import { SCHEDULES } from '../helpers/schedules.ts';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

test('cosine schedule: alphaBar at t = 0, T/2 and T equals the hand-computed values', () => {
  const f = (u: number) => Math.cos(((u + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  // the continuous alphaBar(u) = f(u) / f(0)
  assert.is(cosineAlphaBar(0), 1);
  close(cosineAlphaBar(0.5), f(0.5) / f(0), 1e-16, 'alphaBar(1/2) by hand');
  close(cosineAlphaBar(0.5), 0.49384359044063775, 1e-15, 'alphaBar(1/2) (Python, float64)');
  assert.ok(cosineAlphaBar(1) < 1e-32, `alphaBar(1) = ${cosineAlphaBar(1)}: cos(pi/2)^2 is 0 up to rounding`);
  // the discrete schedule, T = 1000: our timestep t is the paper's t + 1, so paper t = T/2 is our 499
  // and paper t = T our 999. The betas telescope, alphaBar[t] = alphaBar((t+1)/T), until the clip at
  // 0.999, which only the last beta reaches (1 - alphaBar(1) / alphaBar(0.999) = 1 - 1.5e-27).
  const s = DdpmSchedule.cosine(1000);
  close(s.alphaBar[499], f(0.5) / f(0), 1e-13, 'alphaBar at paper t = T/2');
  close(s.alphaBar[998], f(0.999) / f(0), 1e-17, 'alphaBar at paper t = T - 1');
  assert.is(s.betas[999], 0.999);
  for (let t = 0; t < 999; t++) assert.ok(s.betas[t] < 0.999, `beta[${t}] = ${s.betas[t]} clipped`);
  close(s.alphaBar[999], (f(0.999) / f(0)) * 0.001, 1e-20, 'alphaBar at paper t = T');
  // numpy's cumprod of the same clipped betas (and diffusers' betas_for_alpha_bar): 2.4287669070348567e-09
  close(s.alphaBar[999], 2.4287669070348567e-9, 1e-21, 'alphaBar at paper t = T (Python)');
  close(s.alphaBar[0], f(0.001) / f(0), 1e-17, 'alphaBar at paper t = 1');
  assert.is(s.signal(499), Math.sqrt(s.alphaBar[499]));
  assert.is(s.alphaBarAt(7), s.alphaBar[7]);
});

test('the other schedules: interpolation and EDM levels, and the VP view alphaBar = 1 / (1 + sigma^2)', () => {
  const lerp = new InterpolationSchedule(10);
  // paper t = 1..T is our 0..T-1: x_t = (1 - t/T) x0 + (t/T) eps
  assert.is(lerp.signal(0), 0.9);
  assert.is(lerp.noise(0), 0.1);
  assert.is(lerp.signal(4), 0.5);
  assert.is(lerp.signal(9), 0);
  assert.is(lerp.sigma(9), Infinity);
  close(lerp.alphaBarAt(4), 0.5, 1e-15, 'interpolation halfway: equal signal and noise');
  const edm = new EdmSchedule(18, { sigmaMin: 0.002, sigmaMax: 80 });
  close(edm.noise(0), 0.002, 1e-15, 'sigma_min first');
  close(edm.noise(17), 80, 1e-12, 'sigma_max last');
  assert.is(edm.signal(5), 1);
  for (let t = 0; t < 18; t++) {
    close(edm.alphaBarAt(t), 1 / (1 + edm.noise(t) ** 2), 1e-15, `EDM alphaBar ${t}`);
    if (t > 0) assert.ok(edm.noise(t) > edm.noise(t - 1));
  }
  const lin = DdpmSchedule.linear(1000);
  close(lin.sigma(500), Math.sqrt((1 - lin.alphaBar[500]) / lin.alphaBar[500]), 1e-12, 'DDPM sigma');
  close(lin.snr(500), lin.alphaBar[500] / (1 - lin.alphaBar[500]), 1e-12, 'DDPM SNR');
});

/** The ancestral scheduler through every timestep of `schedule`: step T-1-t takes x_t to x_{t-1}. */
const ancestral = (schedule: NoiseSchedule, variance?: ReverseVariance) =>
  new AncestralScheduler(scheduleLevels(schedule), { variance }).setTimesteps(schedule.T);

/** One ancestral step from x_t, the network's output read as `prediction`. */
function reverseStep(
  schedule: NoiseSchedule,
  xt: Tensor,
  output: Tensor,
  t: number,
  rng: Rng,
  opts: { prediction?: Prediction; variance?: ReverseVariance } = {},
): Tensor {
  const denoise = predictionDenoiser(() => output, schedule, opts.prediction ?? 'eps');
  return ancestral(schedule, opts.variance).step(denoise, xt, schedule.T - 1 - t, rng).prevSample;
}

test('eps <-> x0 <-> v round-trip to float32 precision on every schedule', () => {
  const rng = new Rng(3);
  const u = 2 ** -24; // float32's unit roundoff
  for (const { schedule, ts } of SCHEDULES) {
    for (const t of ts) {
      const [a, s] = [schedule.signal(t), schedule.noise(t)];
      const x0 = rng.randn([200, 3]);
      const eps = rng.randn([200, 3]);
      const xt = schedule.addNoise(x0, eps, t); // float32, as every stage stores it
      // x_t and v hold terms of size (a + s) max|x0, eps|, stored to float32's roundoff u; recovering x0
      // or eps divides that rounding by a or s (or multiplies it by (a + s) / (a^2 + s^2) <= 1/a + 1/s):
      // so the round trip is exact to a few roundoffs of the stored terms, times 1/a + 1/s
      const size = Math.max(...[x0, eps].flatMap((v) => Array.from(v.data, Math.abs)));
      const tol = 8 * u * (a + s) * size * (1 / a + 1 / s);
      // eps -> (x0, v) -> eps, and x0 -> v -> x0, all through x_t
      for (const p of PREDICTIONS) {
        const target = predictionTarget(p, x0, eps, a, s);
        const back = fromPrediction(p, target, xt, a, s);
        const v = predictionTarget('v', back.x0, back.eps, a, s);
        const again = fromPrediction('v', v, xt, a, s);
        for (let i = 0; i < x0.size; i++) {
          const what = `${schedule.name} t=${t} from ${p}`;
          close(again.x0.data[i], x0.data[i], tol, `${what}: x0[${i}]`);
          close(again.eps.data[i], eps.data[i], tol, `${what}: eps[${i}]`);
        }
      }
      // v is a eps - s x0 exactly
      const v = predictionTarget('v', x0, eps, a, s);
      close(v.data[5], a * eps.data[5] - s * x0.data[5], 4 * u * size, 'v by hand');
    }
  }
});

test('addNoise of each schedule has mean a_t mu and variance a_t^2 sd^2 + s_t^2 on 100k samples', () => {
  const rng = new Rng(11);
  const n = 100000;
  const [mu, sd] = [0.7, 0.3];
  for (const { schedule, ts } of SCHEDULES) {
    for (const t of ts) {
      const x0 = rng.randn([n, 1], { mean: mu, std: sd });
      const xt = schedule.addNoise(x0, rng.randn([n, 1]), t).data;
      const [a, s] = [schedule.signal(t), schedule.noise(t)];
      const variance = a * a * sd * sd + s * s;
      // 5 standard errors: the mean's is sqrt(var / n), a Gaussian sample variance's var sqrt(2 / n)
      const what = `${schedule.name} t=${t}`;
      close(sampleMean(xt), a * mu, 5 * Math.sqrt(variance / n), `${what}: mean`);
      close(sampleStd(xt) ** 2, variance, 5 * variance * Math.sqrt(2 / n), `${what}: variance`);
    }
  }
});

test("the ancestral step equals Ho et al.'s form of the DDPM step, for eps, x0 and v outputs", () => {
  // the reference's update, x_{t-1} = (x_t - beta_t / sqrt(1 - alphaBar_t) eps) / sqrt(alpha_t) + sd z,
  // by hand, from the eps each output implies; the scheduler steps through x0 (diffusers' arrangement)
  const s = DdpmSchedule.cosine(100);
  const rng = new Rng(5);
  const xt = rng.randn([4, 2], { dtype: 'float64' });
  const x0 = rng.randn([4, 2], { dtype: 'float64' });
  for (const t of [0, 1, 40, 99]) {
    const eps = fromPrediction('x0', x0, xt, s.signal(t), s.noise(t)).eps;
    for (const prediction of PREDICTIONS) {
      const out = predictionTarget(prediction, x0, eps, s.signal(t), s.noise(t));
      for (const variance of ['betaTilde', 'beta'] as const) {
        const step = reverseStep(s, xt, out, t, new Rng(9), { prediction, variance });
        const z = new Rng(9);
        const sd = t === 0 ? 0 : Math.sqrt(variance === 'beta' ? s.betas[t] : s.betaTilde[t]);
        xt.data.forEach((x, i) => {
          const mean =
            (x - (s.betas[t] / Math.sqrt(1 - s.alphaBar[t])) * eps.data[i]) / Math.sqrt(s.alphas[t]);
          const hand = sd > 0 ? mean + sd * z.normal() : mean;
          close(step.data[i], hand, 1e-11, `t=${t} ${prediction} ${variance} element ${i}`);
        });
      }
    }
  }
});

test('one reverse step with the exact x0 keeps every schedule on its marginal q(x_{t-1} | x0)', () => {
  // From x_t ~ N(a_t x0, s_t^2) with the true x0 as the estimate, the draw is N(a_{t-1} x0, s_{t-1}^2):
  // this checks the step's x0 and eps coefficients (any variance betaTilde keeps the marginal).
  const rng = new Rng(21);
  const n = 100000;
  const point = 0.8;
  for (const { schedule, ts } of SCHEDULES) {
    for (const t of ts.filter((v) => v > 0)) {
      const x0 = tensor(new Array<number>(n).fill(point), [n, 1]);
      const xt = schedule.addNoise(x0, rng.randn([n, 1]), t);
      for (const prediction of ['x0', 'v'] as Prediction[]) {
        const eps = fromPrediction('x0', x0, xt, schedule.signal(t), schedule.noise(t)).eps;
        const out = predictionTarget(prediction, x0, eps, schedule.signal(t), schedule.noise(t));
        const prev = reverseStep(schedule, xt, out, t, rng, { prediction }).data;
        const [a, s] = [schedule.signal(t - 1), schedule.noise(t - 1)];
        const what = `${schedule.name} t=${t} ${prediction}`;
        close(sampleMean(prev), a * point, 5 * (s / Math.sqrt(n)) + 1e-6 * a, `${what}: mean`);
        close(sampleStd(prev), s, 5 * s * Math.sqrt(1 / (2 * n)) + 1e-6, `${what}: std`);
      }
    }
  }
});

test('for a fixed x_t, the step draws from q(x_{t-1} | x_t, x0), by Gaussian conditioning', () => {
  // x_{t-1} = a_{t-1} x0 + s_{t-1} z and x_t = (a_t / a_{t-1}) x_{t-1} + noise of variance beta_t, so
  // (x_{t-1}, x_t) given x0 is Gaussian with Cov = (a_t / a_{t-1}) s_{t-1}^2 and Var(x_t) = s_t^2:
  //   mean a_{t-1} x0 + Cov / s_t^2 (x_t - a_t x0),  variance s_{t-1}^2 - Cov^2 / s_t^2.
  // With variance 'beta' the mean is the same and the variance beta_t = s_t^2 - (a_t / a_{t-1})^2 s_{t-1}^2.
  const rng = new Rng(33);
  const n = 100000;
  const [point, fixed] = [0.8, 0.35];
  for (const { schedule, ts } of SCHEDULES) {
    for (const t of ts.filter((v) => v > 0)) {
      const [a, s] = [schedule.signal(t), schedule.noise(t)];
      const [aPrev, sPrev] = [schedule.signal(t - 1), schedule.noise(t - 1)];
      const x0 = tensor(new Array<number>(n).fill(point), [n, 1], { dtype: 'float64' });
      const xt = tensor(new Array<number>(n).fill(fixed), [n, 1], { dtype: 'float64' });
      const cov = (a / aPrev) * sPrev * sPrev;
      const mean = aPrev * point + (cov / (s * s)) * (fixed - a * point);
      const posterior = sPrev * sPrev - (cov * cov) / (s * s);
      const beta = s * s - (a / aPrev) ** 2 * sPrev * sPrev;
      for (const [variance, expected] of [
        ['betaTilde', posterior],
        ['beta', beta],
      ] as const) {
        const prev = reverseStep(schedule, xt, x0, t, rng, { prediction: 'x0', variance }).data;
        const what = `${schedule.name} t=${t} ${variance}`;
        const sd = Math.sqrt(expected);
        close(sampleMean(prev), mean, 5 * (sd / Math.sqrt(n)) + 1e-12, `${what}: mean`);
        close(sampleStd(prev), sd, 5 * sd * Math.sqrt(1 / (2 * n)) + 1e-12, `${what}: std`);
      }
    }
  }
});

test('the interpolation samples from x0 or v at its last step, and refuses eps there by name', () => {
  const lerp = new InterpolationSchedule(20);
  const rng = new Rng(4);
  // the exact x0 model of data N(0.5, 0.1^2): E[x0 | x_t] = 0.5 + a 0.1^2 / (a^2 0.1^2 + s^2) (x_t - 0.5 a)
  const exactX0 = (xt: Tensor, t: number) => {
    const [a, s] = [lerp.signal(t), lerp.noise(t)];
    const gain = (a * 0.01) / (a * a * 0.01 + s * s);
    return new Tensor(
      Float32Array.from(xt.data, (x) => 0.5 + gain * (x - a * 0.5)),
      xt.shape,
    );
  };
  const out = sampleLoop(
    ancestral(lerp),
    predictionDenoiser(exactX0, lerp, 'x0'),
    rng.randn([20000, 1]),
    rng,
  );
  close(sampleMean(out.data), 0.5, 0.005, 'mean of the samples');
  assert.ok(sampleStd(out.data) > 0.05 && sampleStd(out.data) < 0.12, `std ${sampleStd(out.data)}`);
  assert.throws(
    () => reverseStep(lerp, tensor([0.1], [1, 1]), tensor([0.2], [1, 1]), 19, rng),
    /an eps prediction cannot give x0 where the signal a_t is 0/,
  );
});

test('schedules and steps refuse bad values with one clear message', () => {
  assert.throws(() => DdpmSchedule.cosine(1), /DdpmSchedule.cosine: T must be an integer >= 2/);
  assert.throws(() => new InterpolationSchedule(0), /T must be an integer >= 1/);
  assert.throws(() => new InterpolationSchedule(5).signal(5), /timestep 5 is outside 0..4/);
  const lin = DdpmSchedule.linear(10);
  assert.throws(
    () =>
      reverseStep(lin, tensor([1, 2], [2, 1]), tensor([1, 2, 3], [3, 1]), 3, new Rng(0), { prediction: 'v' }),
    /the predicted v \[3,1\] and x_t \[2,1\] differ/,
  );
  assert.throws(() => ancestral(lin).setTimesteps(0), /steps must be an integer >= 1, got 0/);
  assert.throws(
    () => fromPrediction('x0', tensor([1, 2], [2, 1]), tensor([1, 2], [1, 2]), 0.5, 0.5),
    /the predicted x0 \[2,1\] and x_t \[1,2\] differ/,
  );
});

test.run();
