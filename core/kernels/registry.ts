// The kernel registry, after TensorFlow.js: each hot kernel has one name and one implementation per
// backend. Ops call `kernels()` and never know which backend answered. The plain TypeScript backend
// ('ts') implements every kernel and is the readable reference; faster backends register the kernels
// they accelerate and fall back to 'ts' for the rest. Float64 tensors (used for gradient checks)
// always run on 'ts'.
import type { Storage } from '../tensor.ts';

/** C[m,n] (+)= op(A)[m,k] * op(B)[k,n], row-major; op(A) = A^T when transA (A stored [k,m]). */
export interface GemmArgs {
  a: Storage;
  b: Storage;
  c: Storage;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Add into C instead of overwriting it. */
  accumulate: boolean;
}

/**
 * The geometry of a 2-D convolution over a batch: input [batch, channels, height, width], a kh x kw
 * window moved by strideH/strideW over the input zero-padded by padH/padW, giving outH x outW positions.
 */
export interface ConvGeometry {
  batch: number;
  channels: number;
  height: number;
  width: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  outH: number;
  outW: number;
}

/**
 * im2col writes cols[(c, i, j), (b, oy, ox)] = x[b, c, oy * strideH - padH + i, ox * strideW - padW + j]
 * (0 in the padding): cols is [channels * kh * kw, batch * outH * outW], so a whole batch's convolution
 * is one gemm. col2im is its adjoint: it adds every cols entry back onto the pixel it was read from.
 */
export interface Im2colArgs extends ConvGeometry {
  x: Storage;
  cols: Storage;
}

/**
 * The three products of a convolution layer over a batch, in the geometry of conv2d: images x
 * [batch, channels, height, width], weight w [cout, channels kh kw], and output-side matrices
 * channel-major [cout, batch outH outW] (the layout a single gemm produces), or batch-major (the layers'
 * layout [batch, cout, outH, outW]) where a flag says so.
 *   forward:         out = w im2col(x)
 *   backward filter: gw = gy im2col(x)^T
 *   backward input:  gx += col2im(w^T gy)
 * conv_transpose2d is the same three with the roles of forward and backward-input swapped.
 */
export interface ConvForwardArgs extends ConvGeometry {
  x: Storage;
  w: Storage;
  out: Storage;
  cout: number;
  /** Added to each output channel (none when absent). */
  bias?: Storage | null;
  /** Write out as [B, Cout, Hout Wout], the layers' layout, instead of the product's [Cout, B Hout Wout]. */
  batchMajor?: boolean;
}

export interface ConvBackwardFilterArgs extends ConvGeometry {
  x: Storage;
  gy: Storage;
  gw: Storage;
  cout: number;
  /** gy is [B, Cout, Hout Wout], the layers' layout, instead of the product's [Cout, B Hout Wout]. */
  gyBatchMajor?: boolean;
}

export interface ConvBackwardInputArgs extends ConvGeometry {
  w: Storage;
  gy: Storage;
  gx: Storage;
  cout: number;
  /** gy is [B, Cout, Hout Wout], the layers' layout, instead of the product's [Cout, B Hout Wout]. */
  gyBatchMajor?: boolean;
}

/** GroupNorm over x [batch, channels, spatial]: statistics per (sample, group of channels/groups). */
export interface GroupNormArgs {
  x: Storage;
  batch: number;
  channels: number;
  spatial: number;
  groups: number;
  /** Per-channel scale and shift, or null for none (scale 1, shift 0). */
  weight: Storage | null;
}

export interface GroupNormForwardArgs extends GroupNormArgs {
  bias: Storage | null;
  eps: number;
  /** out = silu(GroupNorm(x)) instead of GroupNorm(x): the two first steps of a ResNet layer's halves. */
  silu?: boolean;
  out: Storage;
  /** Written: mean and 1/sqrt(var + eps) of each (sample, group), [batch * groups], for the backward. */
  mean: Storage;
  rstd: Storage;
}

export interface GroupNormBackwardArgs extends GroupNormArgs {
  mean: Storage;
  rstd: Storage;
  /** The forward pass's silu: gy is then d(loss)/d(silu(y)), and y = GroupNorm(x) is recomputed with bias. */
  silu?: boolean;
  bias?: Storage | null;
  /** d(loss)/d(out), and the gradients to write (null when not needed). */
  gy: Storage;
  gx: Storage | null;
  gWeight: Storage | null;
  gBias: Storage | null;
}

/** Softmax along the rows of a [rows, cols] matrix. */
export interface SoftmaxArgs {
  x: Storage;
  out: Storage;
  rows: number;
  cols: number;
}

/** gx = y * (gy - sum(gy * y)) row by row, for y = softmax(x). */
export interface SoftmaxBackwardArgs {
  y: Storage;
  gy: Storage;
  gx: Storage;
  rows: number;
  cols: number;
}

/**
 * One Adam step in place (Kingma & Ba 2015, PyTorch's arrangement): with gi = g + l2 p,
 * m = b1 m + (1 - b1) gi, v = b2 v + (1 - b2) gi^2, p = p decay - stepSize m / (sqrt(v) / sqrtBc2 + eps),
 * where stepSize = lr / (1 - b1^t), sqrtBc2 = sqrt(1 - b2^t), decay = 1 - lr wd for AdamW (else 1).
 */
export interface AdamArgs {
  p: Storage;
  g: Storage;
  m: Storage;
  v: Storage;
  b1: number;
  b2: number;
  eps: number;
  l2: number;
  decay: number;
  stepSize: number;
  sqrtBc2: number;
}

/** SiLU, x sigmoid(x), elementwise; its backward gx = g (s + x s (1 - s)) with s = sigmoid(x). */
export interface SiluArgs {
  x: Storage;
  out: Storage;
}

export interface SiluBackwardArgs {
  x: Storage;
  g: Storage;
  gx: Storage;
}

/**
 * Scaled dot-product attention (Vaswani et al. 2017, eq. 1) for `batch` x `heads` independent (query,
 * key, value) sets: out_i = sum_j softmax_j(scale q_i . k_j) v_j, with d features per head. Position i
 * of head h of item b starts at (b lq + i) qStride + h d in q (likewise in k and v with lk and kvStride,
 * and in out with lq and outStride): contiguous [batch, lq, d] sets are heads 1 and strides d, and a
 * packed projection [B, L, 3 H d] is read in place as q = qkv, k = qkv + H d, v = qkv + 2 H d with
 * stride 3 H d, writing [B, L, H d]. No [lq, lk] score matrix of a whole set need exist at once.
 */
export interface AttentionArgs {
  q: Storage;
  k: Storage;
  v: Storage;
  out: Storage;
  batch: number;
  heads: number;
  lq: number;
  lk: number;
  d: number;
  qStride: number;
  kvStride: number;
  outStride: number;
  scale: number;
}

/**
 * Attention's gradients, in AttentionArgs' layout: gOut is laid out as out (outStride), and gq, gk and
 * gv are written where q, k and v are read (qStride, kvStride), each head's d features of each
 * position, so a packed [B, L, 3 H d] gradient is written whole by the three. The probabilities are
 * recomputed from q and k (memory-efficient attention, Rabe & Staats 2021; FlashAttention-2's backward,
 * Dao 2023): with P = softmax(scale q k^T), dP = gOut v^T and dS = P (dP - rowsum(dP P)),
 *   gq = scale dS k,   gk = scale dS^T q,   gv = P^T gOut.
 */
export interface AttentionBackwardArgs {
  q: Storage;
  k: Storage;
  v: Storage;
  gOut: Storage;
  gq: Storage;
  gk: Storage;
  gv: Storage;
  batch: number;
  heads: number;
  lq: number;
  lk: number;
  d: number;
  qStride: number;
  kvStride: number;
  outStride: number;
  scale: number;
}

export interface KernelSet {
  gemm(args: GemmArgs): void;
  im2col(args: Im2colArgs): void;
  col2im(args: Im2colArgs): void;
  conv2dForward(args: ConvForwardArgs): void;
  conv2dBackwardFilter(args: ConvBackwardFilterArgs): void;
  conv2dBackwardInput(args: ConvBackwardInputArgs): void;
  groupNormForward(args: GroupNormForwardArgs): void;
  groupNormBackward(args: GroupNormBackwardArgs): void;
  softmaxForward(args: SoftmaxArgs): void;
  softmaxBackward(args: SoftmaxBackwardArgs): void;
  attentionForward(args: AttentionArgs): void;
  attentionBackward(args: AttentionBackwardArgs): void;
  adamUpdate(args: AdamArgs): void;
  siluForward(args: SiluArgs): void;
  siluBackward(args: SiluBackwardArgs): void;
}

export type KernelName = keyof KernelSet;

/**
 * What a backend says about itself when it registers (core/kernels/select.ts reads it; the core never
 * imports a backend): whether it can run here, how to make it ready, and how it shares the cores.
 */
export interface BackendInfo {
  /** Where 'auto' ranks it when two backends time alike: lower first. */
  rank: number;
  /** Why this JavaScript engine cannot run it; absent when it can. */
  unavailable?: string;
  /** Makes it ready (loads a library, learns its mode) and says what will run, e.g. 'wasm (2 threads)'. */
  activate: () => string | Promise<string>;
  /** The module that registers it: a worker thread (core/parallel/) imports it to register it there too. */
  module?: string;
  /** Fixes its kernel threads (data-parallel training shares the cores out); null: its default. */
  setThreads?: (n: number | null) => void;
  /** One device shared by every thread (a GPU): data-parallel training then runs one thread. */
  shared?: boolean;
}

const backends = new Map<string, Partial<KernelSet>>();
const infos = new Map<string, BackendInfo>();
let active = 'ts';

/**
 * Adds kernels to backend `name` (a backend may register them in several files, or load them later);
 * `info` describes the backend, once.
 */
export function registerBackend(name: string, impls: Partial<KernelSet>, info?: BackendInfo): void {
  backends.set(name, { ...backends.get(name), ...impls });
  if (info) infos.set(name, info);
}

/** The description a backend registered, or undefined for one that gave none (such as 'auto'). */
export function backendInfo(name: string): BackendInfo | undefined {
  return infos.get(name);
}

export function setBackend(name: string): void {
  if (!backends.has(name)) {
    throw new Error(`unknown backend '${name}' (available: ${[...backends.keys()].join(', ')})`);
  }
  active = name;
}

export function getBackend(): string {
  return active;
}

/** The kernels one backend registered itself (no fallback), for parity tests and the bench. */
export function backendKernels(name: string): Partial<KernelSet> {
  const impls = backends.get(name);
  if (!impls) throw new Error(`unknown backend '${name}'`);
  return impls;
}

export function listBackends(): string[] {
  return [...backends.keys()];
}

/** The implementation of kernel `name` on the active backend, or the reference one. */
export function kernel<K extends KernelName>(name: K, float64 = false): KernelSet[K] {
  const impl = float64 ? undefined : backends.get(active)?.[name];
  const reference = backends.get('ts')?.[name];
  const chosen = impl ?? reference;
  if (!chosen) throw new Error(`kernel '${name}' has no implementation (is core/kernels/ts.ts loaded?)`);
  return chosen as KernelSet[K];
}
