// Finite-difference gradient checking, shared by the op and layer tests.
// The analytic gradient of L = sum(f(inputs) * R), R a fixed random tensor (so every output element
// matters, with its own weight), is compared with central differences (L(x + h) - L(x - h)) / 2h in
// float64. A backward that is wrong by even 1% fails the tolerance used here.
import { Rng, Tensor, mul, sum, noGrad, type DType } from '../../core/index.ts';

export type GradcheckResult = { maxError: number; worst: string };

export function gradcheck(
  f: (...inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { h?: number; seed?: number } = {},
): GradcheckResult {
  const h = opts.h ?? 1e-6;
  const rng = new Rng(opts.seed ?? 123);
  for (const t of inputs) {
    if (t.dtype !== 'float64') throw new Error('gradcheck: inputs must be float64');
    t.requiresGrad = true;
    t.grad = null;
  }
  const out0 = f(...inputs);
  const weights = rng.randn(out0.shape, { dtype: 'float64' });
  const loss = () => noGrad(() => sum(mul(f(...inputs), weights)).item());
  sum(mul(out0, weights)).backward();
  let maxError = 0;
  let worst = '';
  inputs.forEach((t, k) => {
    const analytic = t.grad?.data ?? new Float64Array(t.size);
    for (let i = 0; i < t.size; i++) {
      const saved = t.data[i];
      t.data[i] = saved + h;
      const up = loss();
      t.data[i] = saved - h;
      const down = loss();
      t.data[i] = saved;
      const numeric = (up - down) / (2 * h);
      // relative to the size of the gradient, with a floor so that tiny gradients compare absolutely
      const err = Math.abs(numeric - analytic[i]) / Math.max(1, Math.abs(numeric));
      if (err > maxError) {
        maxError = err;
        worst = `input ${k} element ${i}: numeric ${numeric}, analytic ${analytic[i]}`;
      }
    }
  });
  return { maxError, worst };
}

/** A random float64 tensor for gradient checks, optionally kept away from 0 (for log, sqrt, relu). */
export function rand64(
  rng: Rng,
  shape: number[],
  opts: { positive?: boolean; awayFromZero?: boolean } = {},
): Tensor {
  const t = rng.randn(shape, { dtype: 'float64' as DType });
  for (let i = 0; i < t.size; i++) {
    if (opts.positive) t.data[i] = 0.5 + Math.abs(t.data[i]);
    else if (opts.awayFromZero) t.data[i] = Math.sign(t.data[i] || 1) * (0.2 + Math.abs(t.data[i]));
  }
  return t;
}
