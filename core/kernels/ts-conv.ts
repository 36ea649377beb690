// Reference im2col / col2im in plain TypeScript. A convolution becomes one matrix product once every
// input window is laid out as a column: cols [channels * kh * kw, batch * outH * outW]. Both kernels walk
// cols row by row (one (c, i, j) tap of the kernel at a time), so writes to cols are sequential, and
// they compute the range of output columns whose tap lands inside the image once per row instead of
// testing every pixel.
import { allocate, dtypeOf, type Storage } from '../tensor.ts';
import {
  kernel,
  registerBackend,
  type ConvBackwardFilterArgs,
  type ConvBackwardInputArgs,
  type ConvForwardArgs,
  type Im2colArgs,
} from './registry.ts';

/** The output positions o in [lo, hi) for which o * stride - pad + tap lies in [0, size). */
export function validRange(tap: number, size: number, stride: number, pad: number, outSize: number) {
  const lo = Math.min(outSize, Math.max(0, Math.ceil((pad - tap) / stride)));
  const hi = Math.max(lo, Math.min(outSize, Math.floor((size - 1 + pad - tap) / stride) + 1));
  return [lo, hi];
}

export function im2colTs(args: Im2colArgs): void {
  const { x, cols, batch, channels, height, width, kh, kw, strideH, strideW, padH, padW, outH, outW } = args;
  const plane = outH * outW;
  const n = batch * plane;
  let row = 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < kh; i++) {
      const [oyLo, oyHi] = validRange(i, height, strideH, padH, outH);
      for (let j = 0; j < kw; j++, row++) {
        const [oxLo, oxHi] = validRange(j, width, strideW, padW, outW);
        for (let b = 0; b < batch; b++) {
          const image = (b * channels + c) * height * width;
          const start = row * n + b * plane;
          // plain loops: short rows, and a subarray per row would allocate millions of small objects
          for (let o = start; o < start + oyLo * outW; o++) cols[o] = 0; // window rows above the image
          for (let oy = oyLo; oy < oyHi; oy++) {
            const dst = start + oy * outW;
            const src = image + (oy * strideH - padH + i) * width - padW + j;
            for (let ox = 0; ox < oxLo; ox++) cols[dst + ox] = 0;
            for (let ox = oxLo; ox < oxHi; ox++) cols[dst + ox] = x[src + ox * strideW];
            for (let ox = oxHi; ox < outW; ox++) cols[dst + ox] = 0;
          }
          for (let o = start + oyHi * outW; o < start + plane; o++) cols[o] = 0; // and below it
        }
      }
    }
  }
}

/** The adjoint of im2col: x[pixel] += every cols entry im2col would have read from that pixel. */
export function col2imTs(args: Im2colArgs): void {
  const { x, cols, batch, channels, height, width, kh, kw, strideH, strideW, padH, padW, outH, outW } = args;
  const plane = outH * outW;
  const n = batch * plane;
  let row = 0;
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < kh; i++) {
      const [oyLo, oyHi] = validRange(i, height, strideH, padH, outH);
      for (let j = 0; j < kw; j++, row++) {
        const [oxLo, oxHi] = validRange(j, width, strideW, padW, outW);
        for (let b = 0; b < batch; b++) {
          const image = (b * channels + c) * height * width;
          for (let oy = oyLo; oy < oyHi; oy++) {
            const from = row * n + b * plane + oy * outW;
            const to = image + (oy * strideH - padH + i) * width - padW + j;
            for (let ox = oxLo; ox < oxHi; ox++) x[to + ox * strideW] += cols[from + ox];
          }
        }
      }
    }
  }
}

// The convolution products composed from the kernels above and gemm, each taken from the registry, so
// a backend that accelerates only gemm (or only im2col) still speeds up every convolution.

export function conv2dForwardTs(a: ConvForwardArgs): void {
  const f64 = a.x instanceof Float64Array;
  const K = a.channels * a.kh * a.kw;
  const plane = a.outH * a.outW;
  const N = a.batch * plane;
  const cols = allocate(dtypeOf(a.x), K * N);
  kernel('im2col', f64)({ ...a, cols });
  const y = a.batchMajor ? allocate(dtypeOf(a.x), a.cout * N) : a.out; // [Cout, B P]
  kernel('gemm', f64)({ a: a.w, b: cols, c: y, m: a.cout, n: N, k: K, transA: false, transB: false, accumulate: false }); // prettier-ignore
  const bias = a.bias ?? null;
  if (!a.batchMajor) {
    if (bias) for (let c = 0; c < a.cout; c++) for (let j = 0; j < N; j++) y[c * N + j] += bias[c];
    return;
  }
  for (let c = 0; c < a.cout; c++) {
    const shift = bias === null ? 0 : bias[c];
    for (let b = 0; b < a.batch; b++) {
      const [from, to] = [(c * a.batch + b) * plane, (b * a.cout + c) * plane];
      for (let p = 0; p < plane; p++) a.out[to + p] = y[from + p] + shift;
    }
  }
}

/**
 * [B, C, P] -> [C, B, P]: batch-major planes as the channel-major matrix the gemm wants, written into
 * `out` from offset `at` (a new array when none is given; src itself for one image).
 */
export function toChannelMajor(
  src: Storage,
  batch: number,
  channels: number,
  plane: number,
  out?: Storage,
  at = 0,
): Storage {
  if (batch === 1 && !out) return src;
  const dst = out ?? allocate(dtypeOf(src), batch * channels * plane);
  for (let b = 0; b < batch; b++)
    for (let c = 0; c < channels; c++)
      dst.set(
        src.subarray((b * channels + c) * plane, (b * channels + c + 1) * plane),
        at + (c * batch + b) * plane,
      );
  return dst;
}

/** The output-side gradient as the product's [Cout, B Hout Wout], whichever layout it came in. */
function gyMatrix(a: ConvBackwardFilterArgs | ConvBackwardInputArgs): Storage {
  return a.gyBatchMajor ? toChannelMajor(a.gy, a.batch, a.cout, a.outH * a.outW) : a.gy;
}

export function conv2dBackwardFilterTs(a: ConvBackwardFilterArgs): void {
  const f64 = a.x instanceof Float64Array;
  const K = a.channels * a.kh * a.kw;
  const N = a.batch * a.outH * a.outW;
  const cols = allocate(dtypeOf(a.x), K * N);
  kernel('im2col', f64)({ ...a, cols });
  kernel(
    'gemm',
    f64,
  )({
    a: gyMatrix(a),
    b: cols,
    c: a.gw,
    m: a.cout,
    n: K,
    k: N,
    transA: false,
    transB: true,
    accumulate: false,
  });
}

export function conv2dBackwardInputTs(a: ConvBackwardInputArgs): void {
  const f64 = a.gy instanceof Float64Array;
  const K = a.channels * a.kh * a.kw;
  const N = a.batch * a.outH * a.outW;
  const cols = allocate(dtypeOf(a.gy), K * N);
  kernel(
    'gemm',
    f64,
  )({
    a: a.w,
    b: gyMatrix(a),
    c: cols,
    m: K,
    n: N,
    k: a.cout,
    transA: true,
    transB: false,
    accumulate: false,
  });
  a.gx.fill(0); // col2im adds each window back onto its pixels
  kernel('col2im', f64)({ ...a, x: a.gx, cols });
}

registerBackend('ts', {
  im2col: im2colTs,
  col2im: col2imTs,
  conv2dForward: conv2dForwardTs,
  conv2dBackwardFilter: conv2dBackwardFilterTs,
  conv2dBackwardInput: conv2dBackwardInputTs,
});
