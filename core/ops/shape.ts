// Ops that move numbers without changing them: reshape, permute, concat, slice and gather.
// Each backward moves the gradient back the way the forward moved the data.
import ndarray from 'ndarray';
import ops from 'ndarray-ops';
import { allocate, allocateOutput, opResult, resultDtype, Tensor, type Storage } from '../tensor.ts';
import { formatShape, normalizeAxis, shapeSize } from '../shape.ts';

export function reshape(a: Tensor, shape: readonly number[]): Tensor {
  const inferred = shape.indexOf(-1);
  const known = shape.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const target = shape.map((d) => (d === -1 ? a.size / known : d));
  if (shape.filter((d) => d === -1).length > 1 || (inferred >= 0 && !Number.isInteger(a.size / known))) {
    throw new Error(`reshape: cannot reshape ${formatShape(a.shape)} to ${formatShape(shape)}`);
  }
  if (shapeSize(target) !== a.size) {
    throw new Error(`reshape: cannot reshape ${formatShape(a.shape)} to ${formatShape(shape)}`);
  }
  // Storage is contiguous, so a reshape shares it; the gradient is reshaped back the same way (and
  // may be adopted as it is: the engine drops this node's gradient after the call)
  return opResult('reshape', a.data, target, [a], (g) => a.accumulateGrad(g, true));
}

/** Strided copy: dst (contiguous, shape `shape`) = src viewed through `srcStrides`. */
function permuteCopy(src: Storage, shape: number[], srcStrides: number[], dst: Storage): void {
  const from = ndarray(src, shape, srcStrides);
  const to = ndarray(dst, shape);
  ops.assign(to, from);
}

/** Reorders the axes: out.shape[i] = a.shape[perm[i]], like torch.permute. */
export function permute(a: Tensor, perm: readonly number[]): Tensor {
  const nd = a.ndim;
  const axes = perm.map((p) => normalizeAxis('permute', p, nd));
  if (axes.length !== nd || new Set(axes).size !== nd) {
    throw new Error(
      `permute: ${formatShape(perm)} is not a permutation of the ${nd} axes of ${formatShape(a.shape)}`,
    );
  }
  const strides = a.strides;
  const outShape = axes.map((p) => a.shape[p]);
  const out = allocateOutput(a.dtype, a.size);
  permuteCopy(
    a.data,
    outShape,
    axes.map((p) => strides[p]),
    out,
  );
  return opResult('permute', out, outShape, [a], (g) => {
    // out axis i came from input axis axes[i]; read the gradient back through the inverse permutation
    const inverse = new Array<number>(nd);
    axes.forEach((p, i) => (inverse[p] = i));
    const gStrides = outShape.map((_, i) => shapeSize(outShape.slice(i + 1)));
    const ga = allocateOutput(a.dtype, a.size);
    permuteCopy(
      g,
      [...a.shape],
      inverse.map((i) => gStrides[i]),
      ga,
    );
    a.accumulateGrad(ga, true);
  });
}

/** Swaps two axes (torch.transpose). */
export function transpose(a: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const perm = a.shape.map((_, i) => i);
  const d0 = normalizeAxis('transpose', dim0, a.ndim);
  const d1 = normalizeAxis('transpose', dim1, a.ndim);
  [perm[d0], perm[d1]] = [perm[d1], perm[d0]];
  return permute(a, perm);
}

/** Joins tensors along an axis; all other dims must agree. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('concat: needs at least one tensor');
  const first = tensors[0];
  const ax = normalizeAxis('concat', axis, first.ndim);
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new Error(
        `concat: cannot join ${formatShape(first.shape)} and ${formatShape(t.shape)} along axis ${axis}`,
      );
    }
  }
  const outer = shapeSize(first.shape.slice(0, ax));
  const inner = shapeSize(first.shape.slice(ax + 1));
  const widths = tensors.map((t) => t.shape[ax] * inner);
  const rowWidth = widths.reduce((p, w) => p + w, 0);
  const dtype = resultDtype(...tensors);
  const out = allocateOutput(dtype, outer * rowWidth);
  let start = 0;
  tensors.forEach((t, k) => {
    for (let o = 0; o < outer; o++) {
      out.set(t.data.subarray(o * widths[k], (o + 1) * widths[k]), o * rowWidth + start);
    }
    start += widths[k];
  });
  const shape = [...first.shape];
  shape[ax] = rowWidth / inner;
  return opResult('concat', out, shape, tensors, (g) => {
    let begin = 0;
    tensors.forEach((t, k) => {
      if (t.requiresGrad) {
        const gt = allocateOutput(t.dtype, t.size);
        for (let o = 0; o < outer; o++) {
          gt.set(g.subarray(o * rowWidth + begin, o * rowWidth + begin + widths[k]), o * widths[k]);
        }
        t.accumulateGrad(gt, true);
      }
      begin += widths[k];
    });
  });
}

/** Elements start..end-1 (end exclusive, negatives count from the end) along one axis. */
export function slice(a: Tensor, axis: number, start: number, end?: number): Tensor {
  const ax = normalizeAxis('slice', axis, a.ndim);
  const dim = a.shape[ax];
  const s = start < 0 ? start + dim : start;
  const e = end === undefined ? dim : end < 0 ? end + dim : end;
  if (!(0 <= s && s <= e && e <= dim)) {
    throw new Error(
      `slice: range ${start}..${end ?? dim} is out of bounds for axis ${axis} of ${formatShape(a.shape)}`,
    );
  }
  const outer = shapeSize(a.shape.slice(0, ax));
  const inner = shapeSize(a.shape.slice(ax + 1));
  const width = (e - s) * inner;
  const out = allocateOutput(a.dtype, outer * width);
  for (let o = 0; o < outer; o++) {
    out.set(a.data.subarray(o * dim * inner + s * inner, o * dim * inner + e * inner), o * width);
  }
  const shape = [...a.shape];
  shape[ax] = e - s;
  return opResult('slice', out, shape, [a], (g) => {
    const ga = allocate(a.dtype, a.size);
    for (let o = 0; o < outer; o++)
      ga.set(g.subarray(o * width, (o + 1) * width), o * dim * inner + s * inner);
    a.accumulateGrad(ga, true);
  });
}

/** Picks entries along an axis by index (torch.index_select); repeated indices add their gradients. */
export function indexSelect(a: Tensor, axis: number, indices: ArrayLike<number>): Tensor {
  const ax = normalizeAxis('indexSelect', axis, a.ndim);
  const dim = a.shape[ax];
  const idx = Array.from(indices);
  for (const i of idx) {
    if (!Number.isInteger(i) || i < 0 || i >= dim) {
      throw new Error(`indexSelect: index ${i} is out of range for axis ${axis} of ${formatShape(a.shape)}`);
    }
  }
  const outer = shapeSize(a.shape.slice(0, ax));
  const inner = shapeSize(a.shape.slice(ax + 1));
  const out = allocateOutput(a.dtype, outer * idx.length * inner);
  for (let o = 0; o < outer; o++) {
    idx.forEach((i, j) => {
      const src = (o * dim + i) * inner;
      out.set(a.data.subarray(src, src + inner), (o * idx.length + j) * inner);
    });
  }
  const shape = [...a.shape];
  shape[ax] = idx.length;
  return opResult('indexSelect', out, shape, [a], (g) => {
    const ga = allocate(a.dtype, a.size);
    for (let o = 0; o < outer; o++) {
      idx.forEach((i, j) => {
        const dst = (o * dim + i) * inner;
        const src = (o * idx.length + j) * inner;
        for (let q = 0; q < inner; q++) ga[dst + q] += g[src + q];
      });
    }
    a.accumulateGrad(ga, true);
  });
}
