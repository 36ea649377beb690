// Every op's backward against central differences in float64, including broadcasting cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '../../core/index.ts';
import { Rng, Tensor, opResult, allocate } from '../../core/index.ts';
import { gradcheck, rand64 } from '../helpers/gradcheck.ts';

const rng = new Rng(7);
const TOL = 1e-6;

function check(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]) {
  test(`gradient of ${name}`, () => {
    const { maxError, worst } = gradcheck(f, inputs);
    assert.ok(maxError < TOL, `${name}: max error ${maxError} at ${worst}`);
  });
}

const r = (shape: number[], o = {}) => rand64(rng, shape, o);

// binary ops with broadcasting
check('add [2,3]+[3]', T.add, [r([2, 3]), r([3])]);
check('add [2,1,4]+[3,1]', T.add, [r([2, 1, 4]), r([3, 1])]);
check('add [2,3,2,2]+[2,3,1,1] (a value per channel)', T.add, [r([2, 3, 2, 2]), r([2, 3, 1, 1])]);
check('add [2,3,1]+[2,3,4] (the smaller first)', T.add, [r([2, 3, 1]), r([2, 3, 4])]);
check('add [2,3,2,2]+[1,3,1,1] (a value per channel for every item)', T.add, [
  r([2, 3, 2, 2]),
  r([1, 3, 1, 1]),
]);
check('add tensor+number', (a) => T.add(a, 2.5), [r([4])]);
check('sub [3,1]-[1,4]', T.sub, [r([3, 1]), r([1, 4])]);
check('sub number-tensor', (a) => T.sub(1, a), [r([2, 2])]);
check('mul [2,3,4]*[4]', T.mul, [r([2, 3, 4]), r([4])]);
check('mul [2,3]*[] (scalar tensor)', T.mul, [r([2, 3]), r([])]);
check('div [2,3]/[2,1]', T.div, [r([2, 3]), r([2, 1], { awayFromZero: true })]);
check('pow x^3', (a) => T.pow(a, 3), [r([5])]);
check('pow x^y', T.pow, [r([2, 3], { positive: true }), r([3])]);

// add's values against index arithmetic, for each way its operands can broadcast
test('add broadcasts by index', () => {
  const pairs: [number[], number[]][] = [
    [
      [2, 3, 4, 5],
      [2, 3, 1, 1],
    ], // a run per channel, added without expanding
    [
      [2, 3, 1, 1],
      [2, 3, 4, 5],
    ],
    [[2, 3, 4], []],
    [
      [2, 3, 4],
      [1, 1],
    ],
    [
      [2, 3, 4, 5],
      [1, 3, 1, 1],
    ], // a value per channel, shared by the batch
    [
      [2, 3, 4, 10],
      [3, 4, 1],
    ],
    [
      [2, 3, 4, 5],
      [3, 4, 1],
    ], // runs too short for the fast path
    [
      [2, 3, 4],
      [3, 1],
    ],
    [
      [2, 3, 4],
      [2, 1, 4],
    ], // the general path
    [
      [2, 1, 4],
      [3, 1],
    ],
    [
      [2, 3],
      [2, 3],
    ],
  ];
  for (const [sa, sb] of pairs) {
    const [a, b] = [rng.randn(sa), rng.randn(sb)];
    const out = T.add(a, b);
    const shape = out.shape;
    // offset into an operand of shape s (right-aligned) for the output position idx
    const at = (s: number[], idx: number[]) =>
      s.reduce((o, d, i) => o * d + (d === 1 ? 0 : idx[i + idx.length - s.length]), 0);
    for (let i = 0; i < out.size; i++) {
      const idx = shape.map(
        (_, k) => Math.floor(i / shape.slice(k + 1).reduce((p, d) => p * d, 1)) % shape[k],
      );
      const want = a.data[at(sa, idx)] + b.data[at(sb, idx)];
      assert.ok(
        Math.abs(out.data[i] - want) < 1e-6,
        `[${sa}] + [${sb}] at ${idx}: ${out.data[i]} vs ${want}`,
      );
    }
  }
});

// unary ops
check('neg', T.neg, [r([6])]);
check('exp', T.exp, [r([6])]);
check('log', T.log, [r([6], { positive: true })]);
check('sqrt', T.sqrt, [r([6], { positive: true })]);
check('sin', T.sin, [r([6])]);
check('cos', T.cos, [r([6])]);
check('tanh', T.tanh, [r([6])]);
check('sigmoid', T.sigmoid, [r([6])]);
check('relu', T.relu, [r([6], { awayFromZero: true })]);
check('silu', T.silu, [r([6])]);
check('abs', T.abs, [r([6], { awayFromZero: true })]);
check('square', T.square, [r([6])]);

// reductions
check('sum all', (a) => T.sum(a), [r([2, 3])]);
check('sum axis 1', (a) => T.sum(a, 1), [r([2, 3, 4])]);
check('sum axes [0,2] keepdim', (a) => T.sum(a, [0, 2], true), [r([2, 3, 4])]);
check('mean all', (a) => T.mean(a), [r([3, 4])]);
check('mean axis -1', (a) => T.mean(a, -1), [r([3, 4])]);

// products
check('matmul [3,4]@[4,5]', T.matmul, [r([3, 4]), r([4, 5])]);
check('matmul batched [2,3,4]@[4,2]', T.matmul, [r([2, 3, 4]), r([4, 2])]);
check('matmul broadcast [2,1,3,4]@[3,4,2]', T.matmul, [r([2, 1, 3, 4]), r([3, 4, 2])]);
// one tensor reaching the loss by several paths: the first gradient to arrive is adopted without a
// copy (accumulateGrad's `owned`), and the later ones must add into it, not into a shared buffer
check('a tensor used four times', (a) => T.add(T.matmul(a, a), T.mul(T.softmax(a), T.permute(a, [1, 0]))), [
  r([3, 3]),
]);
check('linear with bias', T.linear, [r([2, 3, 4]), r([5, 4]), r([5])]);
check('linear without bias', (x, w) => T.linear(x, w, null), [r([3, 4]), r([2, 4])]);

// moving numbers
check('reshape', (a) => T.reshape(a, [3, -1]), [r([2, 3, 2])]);
check('permute', (a) => T.permute(a, [2, 0, 1]), [r([2, 3, 4])]);
check('transpose', (a) => T.transpose(a, 0, 2), [r([2, 3, 4])]);
check('concat axis 1', (a, b) => T.concat([a, b], 1), [r([2, 3]), r([2, 2])]);
check('concat axis 0 three inputs', (a, b, c) => T.concat([a, b, c], 0), [r([1, 3]), r([2, 3]), r([1, 3])]);
check('slice', (a) => T.slice(a, 1, 1, 3), [r([2, 4, 2])]);
check('slice negative', (a) => T.slice(a, -1, -2), [r([3, 5])]);
check('indexSelect with repeats', (a) => T.indexSelect(a, 0, [2, 0, 2]), [r([3, 2])]);
check('mseLoss', T.mseLoss, [r([3, 2]), r([3, 2])]);
check('a composite: mean(silu(x W^T + b)^2)', (x, w, b) => T.mean(T.square(T.silu(T.linear(x, w, b)))), [
  r([4, 3]),
  r([2, 3]),
  r([2]),
]);

test('a backward that is wrong by 1% fails the gradient check', () => {
  const wrongSquare = (a: Tensor) => {
    const out = allocate(a.dtype, a.size);
    for (let i = 0; i < a.size; i++) out[i] = a.data[i] * a.data[i];
    return opResult('wrongSquare', out, a.shape, [a], (g) => {
      const ga = allocate(a.dtype, a.size);
      for (let i = 0; i < a.size; i++) ga[i] = 1.01 * 2 * a.data[i] * g[i];
      a.accumulateGrad(ga);
    });
  };
  const { maxError } = gradcheck(wrongSquare, [r([5], { awayFromZero: true })]);
  assert.ok(maxError > 1e-3, `the check should have caught it, error ${maxError}`);
});

test('forward values match hand-computed ones', () => {
  const a = T.tensor([
    [1, 2],
    [3, 4],
  ]);
  assert.equal(T.matmul(a, a).toArray(), [7, 10, 15, 22]);
  assert.equal(T.add(a, T.tensor([10, 20])).toArray(), [11, 22, 13, 24]);
  assert.equal(T.sum(a, 0).toArray(), [4, 6]);
  assert.equal(T.mean(a, 1, true).shape, [2, 1]);
  assert.equal(T.permute(T.tensor([1, 2, 3, 4, 5, 6], [1, 2, 3]), [2, 1, 0]).toArray(), [1, 4, 2, 5, 3, 6]);
  assert.equal(T.concat([a, a], 1).toArray(), [1, 2, 1, 2, 3, 4, 3, 4]);
  assert.equal(T.slice(a, 1, 1).toArray(), [2, 4]);
  assert.equal(T.indexSelect(a, 0, [1, 1]).toArray(), [3, 4, 3, 4]);
  assert.ok(Math.abs(T.mseLoss(a, T.zeros([2, 2])).item() - 7.5) < 1e-7);
});

test('shape errors name the op and both shapes', () => {
  assert.throws(
    () => T.matmul(T.zeros([32, 3]), T.zeros([2, 16])),
    /matmul: cannot multiply \[32,3\] by \[2,16\]/,
  );
  assert.throws(() => T.add(T.zeros([3, 2]), T.zeros([4])), /add: cannot broadcast \[3,2\] with \[4\]/);
  assert.throws(() => T.reshape(T.zeros([6]), [4, 2]), /reshape: cannot reshape \[6\] to \[4,2\]/);
  assert.throws(
    () => T.concat([T.zeros([2, 3]), T.zeros([3, 3])], 1),
    /concat: cannot join \[2,3\] and \[3,3\]/,
  );
  assert.throws(
    () => T.mseLoss(T.zeros([2]), T.zeros([3])),
    /mseLoss: prediction \[2\] and target \[3\] differ/,
  );
  assert.throws(
    () => T.linear(T.zeros([2, 3]), T.zeros([4, 5]), null),
    /linear: input \[2,3\] does not match weight \[4,5\]/,
  );
  assert.throws(() => T.sum(T.zeros([2, 3]), 2), /sum: axis 2 is out of range/);
});

test('gradients accumulate over repeated use and leaves keep theirs', () => {
  const x = T.tensor([3], undefined, { requiresGrad: true });
  const y = T.add(T.mul(x, x), x); // dy/dx = 2x + 1 = 7
  y.backward();
  assert.equal(x.grad?.toArray(), [7]);
});

test('noGrad records no graph', () => {
  const x = T.tensor([1, 2], undefined, { requiresGrad: true });
  const y = T.noGrad(() => T.mul(x, 2));
  assert.not.ok(y.requiresGrad);
  assert.throws(() => y.backward(), /does not require grad/);
});

test.run();
