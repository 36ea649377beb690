// The one table of registry kernels: every name of KernelSet, what it computes, what decides its speed
// (the shape key), what it writes, and a small instance to calibrate on. The 'auto' backend
// (select.ts, auto.ts) dispatches exactly these names, and a test checks that docs/performance.md lists
// exactly these; TypeScript refuses a KernelSet entry this table lacks.
import type { Storage } from '../tensor.ts';
import type { ConvGeometry, KernelName, KernelSet } from './registry.ts';

type Args<K extends KernelName> = Parameters<KernelSet[K]>[0];

export type KernelSpec<K extends KernelName> = {
  /** What it computes, in a line (for the docs). */
  about: string;
  /** What decides the speed: the shape, not the numbers. */
  key: (args: Args<K>) => string;
  /** The arrays the kernel writes (restored between timing runs, since some kernels accumulate). */
  outputs: (args: Args<K>) => (Storage | null)[];
  /** A small instance, timed once per process on every backend (see auto.ts). */
  calibration: () => Args<K>;
};

const f = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i));
const geometry = (g: ConvGeometry) =>
  `${g.batch}x${g.channels}x${g.height}x${g.width}k${g.kh}x${g.kw}s${g.strideH}x${g.strideW}p${g.padH}x${g.padW}`; // prettier-ignore

// the calibration shapes: a 3x3 convolution of 16 channels over 4 images of 14x14, GroupNorm of 32 channels
const GEO: ConvGeometry = { batch: 4, channels: 16, height: 14, width: 14, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, outH: 14, outW: 14 }; // prettier-ignore
const K = 16 * 9;
const N = 4 * 196;
const GN = () => ({ batch: 4, channels: 32, spatial: 196, groups: 8, weight: f(32) });
const convKey = (a: ConvGeometry & { cout: number }) => `${geometry(a)}o${a.cout}`;

export const KERNELS: { [K in KernelName]: KernelSpec<K> } = {
  gemm: {
    about: 'C (+)= op(A) op(B), row-major, either operand transposed',
    key: (a) =>
      `${a.m}x${a.n}x${a.k}${a.transA ? 'T' : 'N'}${a.transB ? 'T' : 'N'}${a.accumulate ? '+' : ''}`,
    outputs: (a) => [a.c],
    calibration: () => ({ a: f(128 * 128), b: f(128 * 128), c: f(128 * 128), m: 128, n: 128, k: 128, transA: false, transB: false, accumulate: false }), // prettier-ignore
  },
  im2col: {
    about: "a batch's convolution windows as the columns of one matrix",
    key: geometry,
    outputs: (a) => [a.cols],
    calibration: () => ({ ...GEO, x: f(4 * 16 * 196), cols: f(K * N) }),
  },
  col2im: {
    about: "im2col's adjoint: each column entry added back onto its pixel",
    key: geometry,
    outputs: (a) => [a.x],
    calibration: () => ({ ...GEO, x: f(4 * 16 * 196), cols: f(K * N) }),
  },
  conv2dForward: {
    about: 'a convolution layer over a batch: w im2col(x)',
    key: convKey,
    outputs: (a) => [a.out],
    calibration: () => ({ ...GEO, x: f(4 * 16 * 196), w: f(16 * K), out: f(16 * N), cout: 16 }),
  },
  conv2dBackwardFilter: {
    about: "the convolution's weight gradient: gy im2col(x)^T",
    key: convKey,
    outputs: (a) => [a.gw],
    calibration: () => ({ ...GEO, x: f(4 * 16 * 196), gy: f(16 * N), gw: f(16 * K), cout: 16 }),
  },
  conv2dBackwardInput: {
    about: "the convolution's input gradient: col2im(w^T gy), written whole",
    key: convKey,
    outputs: (a) => [a.gx],
    calibration: () => ({ ...GEO, w: f(16 * K), gy: f(16 * N), gx: f(4 * 16 * 196), cout: 16 }),
  },
  groupNormForward: {
    about:
      'GroupNorm: normalise each (sample, group), then scale and shift per channel (then SiLU, if asked)',
    key: (a) => `${a.batch}x${a.channels}x${a.spatial}g${a.groups}`,
    outputs: (a) => [a.out, a.mean, a.rstd],
    calibration: () => ({
      ...GN(),
      x: f(4 * 32 * 196),
      bias: f(32),
      eps: 1e-5,
      out: f(4 * 32 * 196),
      mean: f(32),
      rstd: f(32),
    }),
  },
  groupNormBackward: {
    about: "GroupNorm's gradients for the input, the scale and the shift (through the SiLU, if it had one)",
    key: (a) => `${a.batch}x${a.channels}x${a.spatial}g${a.groups}${a.gx ? 'x' : ''}${a.gWeight ? 'w' : ''}`,
    outputs: (a) => [a.gx, a.gWeight, a.gBias],
    calibration: () => ({ ...GN(), x: f(4 * 32 * 196), mean: f(32), rstd: f(32), gy: f(4 * 32 * 196), gx: f(4 * 32 * 196), gWeight: f(32), gBias: f(32) }), // prettier-ignore
  },
  softmaxForward: {
    about: 'softmax along the rows of a matrix',
    key: (a) => `${a.rows}x${a.cols}`,
    outputs: (a) => [a.out],
    calibration: () => ({ x: f(512 * 196), out: f(512 * 196), rows: 512, cols: 196 }),
  },
  softmaxBackward: {
    about: "softmax's gradient, row by row: y (gy - sum(gy y))",
    key: (a) => `${a.rows}x${a.cols}`,
    outputs: (a) => [a.gx],
    calibration: () => ({ y: f(512 * 196), gy: f(512 * 196), gx: f(512 * 196), rows: 512, cols: 196 }),
  },
  attentionForward: {
    about: 'attention: softmax(scale q k^T) v, a block of queries at a time',
    key: (a) => `${a.batch}x${a.heads}x${a.lq}x${a.lk}x${a.d}`,
    outputs: (a) => [a.out],
    calibration: () => ({ q: f(16 * 196 * 16), k: f(16 * 196 * 16), v: f(16 * 196 * 16), out: f(16 * 196 * 16), batch: 16, heads: 1, lq: 196, lk: 196, d: 16, qStride: 16, kvStride: 16, outStride: 16, scale: 0.25 }), // prettier-ignore
  },
  attentionBackward: {
    about: "attention's gradients for q, k and v, the probabilities recomputed a block of queries at a time",
    key: (a) => `${a.batch}x${a.heads}x${a.lq}x${a.lk}x${a.d}`,
    outputs: (a) => [a.gq, a.gk, a.gv],
    calibration: () => ({ q: f(16 * 196 * 16), k: f(16 * 196 * 16), v: f(16 * 196 * 16), gOut: f(16 * 196 * 16), gq: f(16 * 196 * 16), gk: f(16 * 196 * 16), gv: f(16 * 196 * 16), batch: 16, heads: 1, lq: 196, lk: 196, d: 16, qStride: 16, kvStride: 16, outStride: 16, scale: 0.25 }), // prettier-ignore
  },
  adamUpdate: {
    about: 'one Adam (or AdamW) step in place, PyTorch-style',
    key: (a) => `${a.p.length}`,
    outputs: (a) => [a.p, a.m, a.v],
    calibration: () => ({ p: f(65536), g: f(65536), m: f(65536), v: f(65536).map(Math.abs), b1: 0.9, b2: 0.999, eps: 1e-8, l2: 0, decay: 1, stepSize: 1e-3, sqrtBc2: 0.03 }), // prettier-ignore
  },
  siluForward: {
    about: 'SiLU, x sigmoid(x), elementwise',
    key: (a) => `${a.x.length}`,
    outputs: (a) => [a.out],
    calibration: () => ({ x: f(65536), out: f(65536) }),
  },
  siluBackward: {
    about: "SiLU's gradient, elementwise",
    key: (a) => `${a.x.length}`,
    outputs: (a) => [a.gx],
    calibration: () => ({ x: f(65536), g: f(65536), gx: f(65536) }),
  },
};

/** Every registry kernel, in the table's order. */
export const KERNEL_NAMES = Object.keys(KERNELS) as KernelName[];
