// Softmax along the last axis, fused: one kernel forward and one backward (gx = y (gy - <gy, y>)),
// instead of exp, sum and div composed as separate ops.
import { allocateOutput, opResult, Tensor } from '../tensor.ts';
import { formatShape, normalizeAxis } from '../shape.ts';
import { kernel } from '../kernels/registry.ts';
import '../kernels/ts-norm.ts';

export function softmax(x: Tensor, axis = -1): Tensor {
  if (x.ndim === 0) throw new Error('softmax: input is a scalar; it needs at least one axis');
  if (normalizeAxis('softmax', axis, x.ndim) !== x.ndim - 1) {
    throw new Error(
      `softmax: only the last axis is supported (got axis ${axis} of ${formatShape(x.shape)}); transpose first`,
    );
  }
  const cols = x.shape[x.ndim - 1];
  const rows = cols === 0 ? 0 : x.size / cols;
  const f64 = x.dtype === 'float64';
  const out = allocateOutput(x.dtype, x.size);
  kernel('softmaxForward', f64)({ x: x.data, out, rows, cols });
  return opResult('softmax', out, x.shape, [x], (g) => {
    const gx = allocateOutput(x.dtype, x.size);
    kernel('softmaxBackward', f64)({ y: out, gy: g, gx, rows, cols });
    x.accumulateGrad(gx, true);
  });
}
