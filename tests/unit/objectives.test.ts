// The objectives built on the schedules: each target's loss weight against the error in x0, the best
// loss a target can reach on Gaussian data, ddpmLoss and its denoiser, and min-SNR weighting.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DdpmSchedule } from '../../core/diffusion/ddpm.ts';
import { EdmSchedule, InterpolationSchedule } from '../../core/diffusion/schedule.ts';
import { fromPrediction, lossWeight, predictionTarget, PREDICTIONS } from '../../core/diffusion/targets.ts';
import { bestTargetLoss, gaussian } from '../../core/diffusion/mixture.ts';
import { ddpmDraw, ddpmLoss, predictionDenoiser } from '../../core/diffusion/objectives.ts';
import { Rng, Tensor, tensor } from '../../core/index.ts';
import { SCHEDULES } from '../helpers/schedules.ts';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);

test('lossWeight: the squared error of each target is w times the squared error in x0', () => {
  const rng = new Rng(8);
  for (const { schedule, ts } of SCHEDULES) {
    for (const t of ts.filter((v) => schedule.signal(v) > 0)) {
      const [a, s] = [schedule.signal(t), schedule.noise(t)];
      const x0 = rng.randn([50, 1], { dtype: 'float64' });
      const eps = rng.randn([50, 1], { dtype: 'float64' });
      const xt = new Tensor(
        Float64Array.from(x0.data, (v, i) => a * v + s * eps.data[i]),
        x0.shape,
      );
      // a wrong x0 estimate, and the eps it implies given the same x_t
      const wrongX0 = new Tensor(
        Float64Array.from(x0.data, (v) => v + 0.01 * rng.normal()),
        x0.shape,
      );
      const wrongEps = fromPrediction('x0', wrongX0, xt, a, s).eps;
      let dx0 = 0;
      for (let i = 0; i < 50; i++) dx0 += (wrongX0.data[i] - x0.data[i]) ** 2;
      for (const p of PREDICTIONS) {
        const right = predictionTarget(p, x0, eps, a, s);
        const wrong = predictionTarget(p, wrongX0, wrongEps, a, s);
        let dy = 0;
        for (let i = 0; i < 50; i++) dy += (wrong.data[i] - right.data[i]) ** 2;
        const w = lossWeight(p, a, s);
        close(dy / dx0, w, 1e-6 * Math.max(1, w), `${schedule.name} t=${t} ${p}`);
      }
    }
  }
  // the named special cases on a variance-preserving schedule
  const lin = DdpmSchedule.linear(1000);
  close(lossWeight('eps', lin.signal(10), lin.noise(10)), lin.snr(10), 1e-9, 'w_eps = SNR');
  close(lossWeight('v', lin.signal(10), lin.noise(10)), 1 + lin.snr(10), 1e-9, 'w_v = 1 + SNR');
});

test('bestTargetLoss matches the closed form for Gaussian data', () => {
  // x0 ~ N(mu, sd^2): Var(x0 | x) = s^2 sd^2 / (a^2 sd^2 + s^2), Var(eps | x) = a^2 sd^2 / (a^2 sd^2 + s^2),
  // and v's error is (a^2 + s^2) / s times x0's.
  const sd = 0.4;
  const lin = DdpmSchedule.linear(1000);
  for (const t of [3, 200, 700]) {
    const [a, s] = [lin.signal(t), lin.noise(t)];
    const best = bestTargetLoss(gaussian([1, -1], sd), a, s, 40000, new Rng(t));
    const total = a * a * sd * sd + s * s;
    const x0 = (s * s * sd * sd) / total;
    const expected = { eps: (a * a * sd * sd) / total, x0, v: x0 * ((a * a + s * s) / s) ** 2 };
    for (const p of PREDICTIONS) close(best[p], expected[p], 0.03 * expected[p], `t=${t} ${p}`);
  }
});

test('ddpmLoss regresses onto the chosen target with any schedule; predictionDenoiser reads it back as x0', () => {
  // One clean image, so a perfect net is known in closed form: eps = (x_t - a x0) / s, and its target.
  const image = tensor([0.3, -0.6, 0.9, 0.1], [1, 1, 2, 2]);
  const x0 = new Tensor(
    Float32Array.from({ length: 8 * 4 }, (_, k) => image.data[k % 4]),
    [8, 1, 2, 2],
  );
  for (const schedule of [DdpmSchedule.cosine(50), new EdmSchedule(50), new InterpolationSchedule(50)]) {
    for (const p of PREDICTIONS) {
      const perfect = (xt: Tensor, t: number[]) => {
        const out = new Float32Array(xt.size);
        t.forEach((ti, i) => {
          const [a, s] = [schedule.signal(ti), schedule.noise(ti)];
          for (let k = 0; k < 4; k++) {
            const e = (xt.data[4 * i + k] - a * image.data[k]) / s;
            out[4 * i + k] = p === 'eps' ? e : p === 'x0' ? image.data[k] : a * e - s * image.data[k];
          }
        });
        return new Tensor(out, xt.shape);
      };
      const loss = ddpmLoss(perfect, x0, schedule, p, ddpmDraw(x0, schedule, new Rng(1))).item();
      assert.ok(loss < 1e-8, `${schedule.name} ${p}: perfect net has loss ${loss}`);
      // the same draws with a net that outputs 0: the loss is the mean square of the target
      const zero = (xt: Tensor) => new Tensor(new Float32Array(xt.size), xt.shape);
      const zeroLoss = ddpmLoss(zero, x0, schedule, p, ddpmDraw(x0, schedule, new Rng(1))).item();
      const rng = new Rng(1);
      const t = schedule.sampleTimesteps(8, rng);
      const eps = rng.randn(x0.shape);
      const target = predictionTarget(p, x0, eps, ...schedule.coefficients(t));
      const meanSquare = Array.from(target.data).reduce((acc, v) => acc + v * v, 0) / target.size;
      close(zeroLoss, meanSquare, 1e-5 * meanSquare, `${schedule.name} ${p}: zero net`);
      // the denoiser returns the clean image at the schedule's own levels, told t and in x_t's own
      // coordinates, or seen as x0 + sigma eps with no t (it then finds the timestep of that sigma)
      const denoise = predictionDenoiser((xt, t) => perfect(xt, [t, t]), schedule, p);
      for (const ti of [0, 20, 48]) {
        const z = new Rng(ti).randn([2, 1, 2, 2], { std: 1 });
        const [a, s, sigma] = [schedule.signal(ti), schedule.noise(ti), schedule.sigma(ti)];
        const at = (scale: number, noise: number) =>
          new Tensor(
            Float32Array.from(z.data, (v, k) => scale * image.data[k % 4] + noise * v),
            z.shape,
          );
        const told = denoise(at(a, s), { a, s, t: ti });
        const found = denoise(at(1, sigma), { a: 1, s: sigma });
        for (const [d, how] of [
          [told, 'told t'],
          [found, 'from sigma'],
        ] as const) {
          d.data.forEach((v, k) =>
            close(
              v,
              image.data[k % 4],
              2e-4 * (1 + sigma),
              `${schedule.name} ${p} t=${ti} ${how} pixel ${k}`,
            ),
          );
        }
      }
    }
  }
});

test('min-SNR-gamma weights the error in x0 of each timestep by min(SNR_t, gamma), whatever the target', () => {
  const schedule = DdpmSchedule.cosine(50);
  const x0 = new Rng(3).randn([16, 1, 2, 2]);
  const zero = (xt: Tensor) => new Tensor(new Float32Array(xt.size), xt.shape);
  for (const p of PREDICTIONS) {
    for (const gamma of [0.5, 5]) {
      const loss = ddpmLoss(zero, x0, schedule, p, ddpmDraw(x0, schedule, new Rng(1)), {
        minSnrGamma: gamma,
      }).item();
      // the same draws; the zero output read back as an x0 estimate, its error weighted by min(SNR, gamma)
      const rng = new Rng(1);
      const t = schedule.sampleTimesteps(16, rng);
      const eps = rng.randn(x0.shape);
      let expected = 0;
      t.forEach((ti, i) => {
        const [a, s] = [schedule.signal(ti), schedule.noise(ti)];
        const one = (v: Tensor) => new Tensor(v.data.slice(4 * i, 4 * i + 4), [1, 1, 2, 2]);
        const xt = one(x0).data.map((v, k) => a * v + s * eps.data[4 * i + k]);
        const x0hat = fromPrediction(p, zero(one(x0)), new Tensor(xt, [1, 1, 2, 2]), a, s).x0;
        const err = Array.from(x0hat.data).reduce((acc, v, k) => acc + (v - x0.data[4 * i + k]) ** 2, 0) / 4;
        expected += (Math.min(schedule.snr(ti), gamma) * err) / t.length;
      });
      close(loss, expected, 1e-4 * expected, `${p} gamma ${gamma}`);
    }
  }
  // gamma = 0 is plain MSE
  const plain = ddpmLoss(zero, x0, schedule, 'eps', ddpmDraw(x0, schedule, new Rng(1))).item();
  close(
    ddpmLoss(zero, x0, schedule, 'eps', ddpmDraw(x0, schedule, new Rng(1)), { minSnrGamma: 0 }).item(),
    plain,
    0,
    'gamma 0',
  );
});

test.run();
