// Reductions over axes. The backward of a sum copies the output gradient back to every input position
// that was summed (a broadcast), so sum and broadcasting are each other's gradients.
import { allocate, opResult, Tensor } from '../tensor.ts';
import { normalizeAxis, shapeSize } from '../shape.ts';
import { expandData, sumToShape } from './strided.ts';

/** The reduced axes (all when none are given) and the kept-dims shape of the result. */
function reducedShape(op: string, shape: readonly number[], axes?: number | number[]) {
  const list = axes === undefined ? shape.map((_, i) => i) : Array.isArray(axes) ? axes : [axes];
  const set = new Set(list.map((a) => normalizeAxis(op, a, shape.length)));
  const kept = shape.map((d, i) => (set.has(i) ? 1 : d));
  const squeezed = shape.filter((_, i) => !set.has(i));
  return { kept, squeezed, count: shapeSize(shape) / Math.max(1, shapeSize(kept)) };
}

export function sum(a: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const { kept, squeezed } = reducedShape('sum', a.shape, axes);
  const out = sumToShape(a.data, a.shape, kept, a.dtype);
  const data = out === a.data ? out.slice() : out;
  return opResult('sum', data, keepdim ? kept : squeezed, [a], (g) => {
    a.accumulateGrad(expandData(g, kept, a.shape, a.dtype), true); // a new array, or g itself: ours
  });
}

export function mean(a: Tensor, axes?: number | number[], keepdim = false): Tensor {
  const { kept, squeezed, count } = reducedShape('mean', a.shape, axes);
  const data = sumToShape(a.data, a.shape, kept, a.dtype).slice();
  for (let i = 0; i < data.length; i++) data[i] /= count;
  return opResult('mean', data, keepdim ? kept : squeezed, [a], (g) => {
    const ga = expandData(g, kept, a.shape, a.dtype);
    const scaled = allocate(a.dtype, ga.length);
    for (let i = 0; i < ga.length; i++) scaled[i] = ga[i] / count; // each input counts 1/count
    a.accumulateGrad(scaled, true);
  });
}
