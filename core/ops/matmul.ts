// Matrix products, on the `gemm` kernel of the active backend.
//   matmul: C = A B with batch dims broadcast;  dA = dC B^T,  dB = A^T dC.
//   linear: y = x W^T + b (PyTorch's nn.Linear) over any leading dims of x.
import { allocate, allocateOutput, dataAs, opResult, resultDtype, Tensor, type Storage } from '../tensor.ts';
import { broadcastShapes, broadcastStrides, formatShape, shapeSize } from '../shape.ts';
import { kernel } from '../kernels/registry.ts';
import '../kernels/ts.ts';

/** Offsets (in matrices) into each operand for every position of the broadcast batch shape. */
function batchOffsets(batch: readonly number[], ownBatch: readonly number[]): number[] {
  const strides = broadcastStrides(ownBatch, batch);
  const total = shapeSize(batch);
  const offsets = new Array<number>(total);
  for (let idx = 0; idx < total; idx++) {
    let rest = idx;
    let off = 0;
    for (let d = batch.length - 1; d >= 0; d--) {
      const coord = rest % batch[d];
      rest = (rest - coord) / batch[d];
      off += coord * strides[d];
    }
    offsets[idx] = off;
  }
  return offsets;
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim < 2 || b.ndim < 2 || a.shape[a.ndim - 1] !== b.shape[b.ndim - 2]) {
    throw new Error(`matmul: cannot multiply ${formatShape(a.shape)} by ${formatShape(b.shape)}`);
  }
  const m = a.shape[a.ndim - 2];
  const k = a.shape[a.ndim - 1];
  const n = b.shape[b.ndim - 1];
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes('matmul', aBatch, bBatch);
  } catch {
    throw new Error(
      `matmul: cannot multiply ${formatShape(a.shape)} by ${formatShape(b.shape)} (batch dims)`,
    );
  }
  const dtype = resultDtype(a, b);
  const f64 = dtype === 'float64';
  const gemm = kernel('gemm', f64);
  const A = dataAs(a, dtype);
  const B = dataAs(b, dtype);
  const aOff = batchOffsets(batch, aBatch);
  const bOff = batchOffsets(batch, bBatch);
  const count = aOff.length;
  const out = allocateOutput(dtype, count * m * n);
  const view = (s: Storage, matrix: number, size: number) => s.subarray(matrix * size, (matrix + 1) * size);
  for (let i = 0; i < count; i++) {
    gemm({
      a: view(A, aOff[i], m * k),
      b: view(B, bOff[i], k * n),
      c: view(out, i, m * n),
      m,
      n,
      k,
      transA: false,
      transB: false,
      accumulate: false,
    });
  }
  // an operand broadcast over the batch gathers its gradient from several products; one that is not
  // has its gradient written by exactly one, so that gemm can store instead of adding
  const aShared = shapeSize(aBatch) !== count;
  const bShared = shapeSize(bBatch) !== count;
  return opResult('matmul', out, [...batch, m, n], [a, b], (g) => {
    if (a.requiresGrad) {
      // dA[i] += dC[i] B[i]^T, accumulated over batch positions that shared one A matrix
      const ga = aShared ? allocate(a.dtype, a.size) : allocateOutput(a.dtype, a.size);
      for (let i = 0; i < count; i++) {
        gemm({
          a: view(g, i, m * n),
          b: view(B, bOff[i], k * n),
          c: view(ga, aOff[i], m * k),
          m,
          n: k,
          k: n,
          transA: false,
          transB: true,
          accumulate: aShared,
        });
      }
      a.accumulateGrad(ga, true);
    }
    if (b.requiresGrad) {
      const gb = bShared ? allocate(b.dtype, b.size) : allocateOutput(b.dtype, b.size);
      for (let i = 0; i < count; i++) {
        gemm({
          a: view(A, aOff[i], m * k),
          b: view(g, i, m * n),
          c: view(gb, bOff[i], k * n),
          m: k,
          n,
          k: m,
          transA: true,
          transB: false,
          accumulate: bShared,
        });
      }
      b.accumulateGrad(gb, true);
    }
  });
}

/** y = x W^T + b for x of shape [..., in], W [out, in], b [out] (or no bias). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const inF = weight.shape[1];
  const outF = weight.shape[0];
  if (weight.ndim !== 2 || x.ndim < 1 || x.shape[x.ndim - 1] !== inF) {
    throw new Error(
      `linear: input ${formatShape(x.shape)} does not match weight ${formatShape(weight.shape)}`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new Error(
      `linear: bias ${formatShape(bias.shape)} does not match weight ${formatShape(weight.shape)}`,
    );
  }
  const dtype = resultDtype(x, weight, ...(bias ? [bias] : []));
  const X = dataAs(x, dtype);
  const W = dataAs(weight, dtype);
  const rows = x.size / inF;
  const gemm = kernel('gemm', dtype === 'float64');
  const out = allocateOutput(dtype, rows * outF); // the bias rows or the gemm's store write it whole
  if (bias) for (let r = 0; r < rows; r++) out.set(bias.data, r * outF);
  gemm({
    a: X,
    b: W,
    c: out,
    m: rows,
    n: outF,
    k: inF,
    transA: false,
    transB: true,
    accumulate: bias !== null,
  });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return opResult('linear', out, [...x.shape.slice(0, -1), outF], inputs, (g) => {
    if (x.requiresGrad) {
      const gx = allocateOutput(x.dtype, x.size); // dx = dy W
      gemm({ a: g, b: W, c: gx, m: rows, n: inF, k: outF, transA: false, transB: false, accumulate: false });
      x.accumulateGrad(gx, true);
    }
    if (weight.requiresGrad) {
      const gw = allocateOutput(weight.dtype, weight.size); // dW = dy^T x
      gemm({ a: g, b: X, c: gw, m: outF, n: inF, k: rows, transA: true, transB: false, accumulate: false });
      weight.accumulateGrad(gw, true);
    }
    if (bias?.requiresGrad) {
      const gb = allocate(bias.dtype, outF); // db = sum of dy over rows
      for (let r = 0; r < rows; r++) for (let j = 0; j < outF; j++) gb[j] += g[r * outF + j];
      bias.accumulateGrad(gb, true);
    }
  });
}
