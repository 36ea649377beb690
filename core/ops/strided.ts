// Strided copies that broadcasting and reductions are built from. Every op's tensors are contiguous;
// these loops read one array through arbitrary strides (0 for a broadcast dimension) and write or
// accumulate into another, one innermost row at a time so the inner loop stays tight.
import { allocate, type DType, type Storage } from '../tensor.ts';
import { broadcastStrides, sameShape, shapeSize, stridesOf } from '../shape.ts';

/**
 * Calls `row(offA, offB)` for every position of `shape` except the last dimension, where `offA` and
 * `offB` are the starting offsets under strides `sa` and `sb`.
 */
function forEachRow(
  shape: readonly number[],
  sa: readonly number[],
  sb: readonly number[],
  row: (offA: number, offB: number) => void,
): void {
  const nd = shape.length;
  if (nd <= 1) {
    row(0, 0);
    return;
  }
  const rows = shapeSize(shape.slice(0, nd - 1));
  if (rows === 0) return;
  const counter = new Array<number>(nd - 1).fill(0);
  let offA = 0;
  let offB = 0;
  for (let r = 0; r < rows; r++) {
    row(offA, offB);
    // advance the odometer over the leading dims
    for (let d = nd - 2; d >= 0; d--) {
      counter[d]++;
      offA += sa[d];
      offB += sb[d];
      if (counter[d] < shape[d]) break;
      offA -= sa[d] * shape[d];
      offB -= sb[d] * shape[d];
      counter[d] = 0;
    }
  }
}

/** `src` (shape `from`) broadcast to shape `to`, materialised contiguously. */
export function expandData(
  src: Storage,
  from: readonly number[],
  to: readonly number[],
  dtype: DType,
): Storage {
  if (sameShape(from, to)) return src;
  const out = allocate(dtype, shapeSize(to));
  if (src.length === 1) {
    out.fill(src[0]);
    return out;
  }
  const nd = to.length;
  const inner = nd === 0 ? 1 : to[nd - 1];
  const sIn = broadcastStrides(from, to);
  const step = nd === 0 ? 0 : sIn[nd - 1];
  const sOut = stridesOf(to);
  forEachRow(to, sIn, sOut, (offIn, offOut) => {
    for (let j = 0; j < inner; j++) out[offOut + j] = src[offIn + j * step];
  });
  return out;
}

/**
 * Sums `g` (shape `from`) down to shape `to`, the inverse of broadcasting `to` up to `from`: the
 * gradient of a broadcast input is the sum of the gradients of every place it was copied to.
 */
export function sumToShape(
  g: Storage,
  from: readonly number[],
  to: readonly number[],
  dtype: DType,
): Storage {
  if (sameShape(from, to)) return g;
  const out = allocate(dtype, shapeSize(to));
  const nd = from.length;
  const inner = nd === 0 ? 1 : from[nd - 1];
  const sOut = broadcastStrides(to, from);
  const step = nd === 0 ? 0 : sOut[nd - 1];
  const sIn = stridesOf(from);
  forEachRow(from, sIn, sOut, (offIn, offOut) => {
    if (step === 0) {
      let acc = 0;
      for (let j = 0; j < inner; j++) acc += g[offIn + j];
      out[offOut] += acc;
    } else {
      for (let j = 0; j < inner; j++) out[offOut + j * step] += g[offIn + j];
    }
  });
  return out;
}
