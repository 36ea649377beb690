// Shared by the layer tests: elementwise comparison with a reference, and the finite-difference check
// registered as a test per op or module (float64 copies, every parameter perturbed).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Module, Pair, Tensor } from '../../core/index.ts';
import { gradcheck } from './gradcheck.ts';

const TOL = 1e-6;

export const two = (p: Pair = 0): [number, number] => (typeof p === 'number' ? [p, p] : [p[0], p[1]]);

export function close(actual: Tensor, expected: ArrayLike<number>, tol = 1e-10, what = '') {
  assert.is(actual.size, expected.length, `${what}: size`);
  let worst = 0;
  for (let i = 0; i < actual.size; i++) worst = Math.max(worst, Math.abs(actual.data[i] - expected[i]));
  assert.ok(worst < tol, `${what}: max difference ${worst}`);
}

export function checkGrad(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]) {
  test(`gradient of ${name}`, () => {
    const { maxError, worst } = gradcheck(f, inputs);
    assert.ok(maxError < TOL, `${name}: max error ${maxError} at ${worst}`);
  });
}

export function layerCheck(name: string, layer: Module & { forward(x: Tensor): Tensor }, x: Tensor) {
  const params = layer.toDtype('float64').parameters();
  checkGrad(name, (input) => layer.forward(input), [x, ...params]);
}
