// Optimiser updates against values worked out by hand from PyTorch's update rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Adam, AdamW, Linear, Rng, SGD, parameter, tensor, type Tensor } from '../../core/index.ts';
import { Ema, PowerEma } from '../../core/ema.ts';

function withGrad(values: number[], grad: number[]): Tensor {
  const p = parameter(tensor(values, undefined, { dtype: 'float64' }));
  p.grad = tensor(grad, undefined, { dtype: 'float64' });
  return p;
}
const close = (a: number[], b: number[], tol = 1e-12) =>
  assert.ok(
    a.every((v, i) => Math.abs(v - b[i]) < tol),
    `${a} != ${b}`,
  );

test('SGD: p -= lr * g', () => {
  const p = withGrad([1, -2], [0.5, 1]);
  new SGD([p], { lr: 0.1 }).step();
  close(p.toArray(), [0.95, -2.1]);
});

test('SGD with momentum 0.9 and weight decay: two steps by hand', () => {
  const p = withGrad([1], [0.5]);
  const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
  opt.step(); // d = 0.5 + 0.01 * 1 = 0.51; b = 0.51; p = 1 - 0.051 = 0.949
  close(p.toArray(), [0.949]);
  p.grad = tensor([0.5], undefined, { dtype: 'float64' });
  opt.step(); // d = 0.5 + 0.00949 = 0.50949; b = 0.9 * 0.51 + 0.50949 = 0.96849; p = 0.949 - 0.096849
  close(p.toArray(), [0.852151]);
});

test('SGD nesterov: p -= lr * (d + mu * b)', () => {
  const p = withGrad([0], [1]);
  new SGD([p], { lr: 0.1, momentum: 0.5, nesterov: true }).step(); // b = 1; step = 1 + 0.5 = 1.5
  close(p.toArray(), [-0.15]);
});

test('Adam: first step moves every coordinate by lr (bias correction)', () => {
  const p = withGrad([1, 2, 3], [0.1, -3, 1e-3]);
  new Adam([p], { lr: 0.01 }).step();
  // m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2: step = lr * g / (|g| + eps)
  close(p.toArray(), [
    1 - 0.01 * (0.1 / (0.1 + 1e-8)),
    2 + 0.01 * (3 / (3 + 1e-8)),
    3 - 0.01 * (1e-3 / (1e-3 + 1e-8)),
  ]);
});

test('Adam: second step by hand', () => {
  const p = withGrad([1], [1]);
  const opt = new Adam([p], { lr: 0.1 });
  opt.step();
  p.grad = tensor([-1], undefined, { dtype: 'float64' });
  opt.step();
  // m2 = 0.9 * 0.1 + 0.1 * (-1) = -0.01; v2 = 0.999 * 0.001 + 0.001 = 0.001999
  // mhat = -0.01 / 0.19; vhat = 0.001999 / (1 - 0.999^2)
  const mhat = -0.01 / (1 - 0.81);
  const vhat = 0.001999 / (1 - 0.999 ** 2);
  const first = 1 - 0.1 / (1 + 1e-8);
  close(p.toArray(), [first - (0.1 * mhat) / (Math.sqrt(vhat) + 1e-8)]);
});

test('Adam weight decay is L2 (added to the gradient); AdamW decays the weight directly', () => {
  const a = withGrad([2], [0]);
  new Adam([a], { lr: 0.1, weightDecay: 0.5 }).step(); // g = 0 + 0.5 * 2 = 1 -> step lr
  close(a.toArray(), [2 - 0.1 * (1 / (1 + 1e-8))]);
  const w = withGrad([2], [1]);
  new AdamW([w], { lr: 0.1, weightDecay: 0.5 }).step(); // p = 2 (1 - 0.05) - 0.1
  close(w.toArray(), [2 * 0.95 - 0.1 * (1 / (1 + 1e-8))]);
});

test('AdamW defaults to weight decay 0.01, Adam to 0', () => {
  assert.is(new AdamW([withGrad([1], [1])]).weightDecay, 0.01);
  assert.is(new Adam([withGrad([1], [1])]).weightDecay, 0);
});

test('parameters without a gradient are left alone', () => {
  const p = withGrad([1], [1]);
  p.grad = null;
  new Adam([p]).step();
  close(p.toArray(), [1]);
});

// One weight followed through three EMA updates: the shadow starts as a copy of the model, then each
// update mixes in the model's current weight, 1, 2, 3, with the decay expected at that step. The shadow
// stores each average in its weights' dtype, so the expected values are rounded the same way.
function checkEmaTrace(warmup: boolean, decays: number[]): void {
  const [model, shadow] = [
    new Linear(1, 1, new Rng(0), { bias: false }),
    new Linear(1, 1, new Rng(1), { bias: false }),
  ];
  const round = shadow.weight.data instanceof Float32Array ? Math.fround : (x: number) => x;
  const ema = new Ema(model, shadow, 0.9, warmup);
  let want = shadow.weight.data[0];
  decays.forEach((d, step) => {
    model.weight.data[0] = step + 1;
    ema.update(step);
    want = round(d * want + (1 - d) * (step + 1));
    close([shadow.weight.data[0]], [want]);
  });
}

test('EMA with warm-up: decay min(0.9, (1 + step) / (10 + step)) = 0.1, 2/11, 0.25', () => {
  checkEmaTrace(true, [0.1, 2 / 11, 0.25]);
});

test('EMA without warm-up uses the configured decay from the first step', () => {
  checkEmaTrace(false, [0.9, 0.9, 0.9]);
});

test('Ema.warmupSteps is the first step whose warm-up decay reaches the configured one', () => {
  for (const d of [0.9, 0.999, 0.9995]) {
    const n = Ema.warmupSteps(d);
    assert.ok((1 + n) / (10 + n) >= d - 1e-15 && (1 + n - 1) / (10 + n - 1) < d, `${d}: ${n}`);
  }
  assert.is(Ema.warmupSteps(0.9995), 17990);
});

test('PowerEma: gamma from sigma_rel as EDM2 tabulates it (0.05 -> 16.97, 0.10 -> 6.94)', () => {
  assert.ok(Math.abs(PowerEma.gammaOf(0.05) - 16.97) < 0.01, `${PowerEma.gammaOf(0.05)}`);
  assert.ok(Math.abs(PowerEma.gammaOf(0.1) - 6.94) < 0.01, `${PowerEma.gammaOf(0.1)}`);
  assert.throws(() => PowerEma.gammaOf(0.3), /sigma_rel must be in/);
});

test('PowerEma weighs step t by about t^gamma: on a ramp w_t = t it sits (gamma + 1) / (gamma + 2) of the way', () => {
  // sum t^(gamma + 1) / sum t^gamma over t = 1..T is about T (gamma + 1) / (gamma + 2); an EMA of fixed
  // length would instead trail the ramp by a fixed number of steps, whatever T
  for (const rel of [0.05, 0.15]) {
    const [model, shadow] = [
      new Linear(1, 1, new Rng(0), { bias: false }),
      new Linear(1, 1, new Rng(1), { bias: false }),
    ];
    const ema = new PowerEma(model, shadow, rel);
    const g = ema.gamma;
    for (const T of [500, 2000]) {
      for (let step = T === 500 ? 0 : 500; step < T; step++) {
        model.weight.data[0] = step + 1;
        ema.update(step);
      }
      const want = (T * (g + 1)) / (g + 2);
      assert.ok(
        Math.abs(shadow.weight.data[0] - want) / want < 0.01,
        `${rel} ${T}: ${shadow.weight.data[0]} vs ${want}`,
      );
    }
  }
});

test.run();
