// GroupNorm and softmax as gpu.js kernels. Each reduction (a group's mean, a row's max) is a small
// kernel with one thread per group or row that loops over it, feeding an elementwise kernel with one
// thread per output element. Sums accumulate in float32 here (the TypeScript twins use float64), so
// where a float64 formula cancels harmlessly the float32 one is rearranged (see GN_APPLY, GN_SUM_GY_XHAT).
import type {
  GroupNormBackwardArgs,
  GroupNormForwardArgs,
  SoftmaxArgs,
  SoftmaxBackwardArgs,
} from '../core/kernels/registry.ts';
import { after, all, divmod, f32, type Launcher, type MaybePromise } from './launch.ts';
import { groupNormSiluGradient } from '../core/kernels/ts-norm.ts';
import { siluForwardTs } from '../core/kernels/ts.ts';

// --- GroupNorm (Wu & He 2018) -------------------------------------------------------------------------
// Constants: batch, channels, spatial, groups, perGroup = channels / groups, count = perGroup spatial.
// Group (b, g) is the contiguous block of `count` elements starting at (b groups + g) count.

/** mu = sum(x) / N over the group: thread = b groups + g. */
const GN_MEAN = `function (x) {
  let sum = 0;
  for (let s = 0; s < this.constants.count; s++) sum += x[this.thread.x * this.constants.count + s];
  return sum / this.constants.count;
}`;

/** 1 / sqrt(var + eps), the biased variance taken about the mean (two passes, as the ts twin). */
const GN_RSTD = `function (x, mean) {
  const mu = mean[this.thread.x];
  let squares = 0;
  for (let s = 0; s < this.constants.count; s++) {
    const d = x[this.thread.x * this.constants.count + s] - mu;
    squares += d * d;
  }
  return 1 / Math.sqrt(squares / this.constants.count + this.constants.eps);
}`;

/**
 * out = (x - mu) r w_c + b_c. (The ts twin folds this into x (w_c r) + (b_c - mu w_c r), exact enough
 * in float64; in float32 that form cancels badly when r is large, so the difference comes first.)
 */
const GN_APPLY = `function (x, mean, rstd, weight, bias) {
  ${divmod('bg', 'inGroup', 'this.thread.x', 'this.constants.count')}
  ${divmod('bc', 's', 'this.thread.x', 'this.constants.spatial')}
  ${divmod('b', 'c', 'bc', 'this.constants.channels')}
  return (x[this.thread.x] - mean[bg]) * (weight[c] * rstd[bg]) + bias[c];
}`;

/** Per (sample, channel): sum of gy (thread = b channels + c) ... */
const GN_SUM_GY = `function (gy) {
  let sum = 0;
  for (let s = 0; s < this.constants.spatial; s++) sum += gy[this.thread.x * this.constants.spatial + s];
  return sum;
}`;

/**
 * ... and sum of gy xhat = sum of gy (x - mu) r. (The ts twin takes sum(gy x) - mu sum(gy) instead; in
 * float32 that difference cancels, and a group of one element, whose xhat is exactly 0, amplifies the
 * rounding by r = 1 / sqrt(eps).)
 */
const GN_SUM_GY_XHAT = `function (gy, x, mean, rstd) {
  ${divmod('b', 'c', 'this.thread.x', 'this.constants.channels')}
  ${divmod('g', 'cg', 'c', 'this.constants.perGroup')}
  const bg = b * this.constants.groups + g;
  const mu = mean[bg];
  let sum = 0;
  for (let s = 0; s < this.constants.spatial; s++) {
    const o = this.thread.x * this.constants.spatial + s;
    sum += gy[o] * (x[o] - mu);
  }
  return sum * rstd[bg];
}`;

/** k1 = -r^2 sum(gyhat xhat) / N per group (thread = b groups + g), with gyhat = gy w_c. */
const GN_K1 = `function (sumGyXhat, weight, rstd) {
  ${divmod('b', 'g', 'this.thread.x', 'this.constants.groups')}
  const r = rstd[this.thread.x];
  let acc = 0;
  for (let cg = 0; cg < this.constants.perGroup; cg++) {
    const c = g * this.constants.perGroup + cg;
    acc += weight[c] * sumGyXhat[b * this.constants.channels + c];
  }
  return -r * r * acc / this.constants.count;
}`;

/** k0 = -r sum(gyhat) / N per group. */
const GN_K0 = `function (sumGy, weight, rstd) {
  ${divmod('b', 'g', 'this.thread.x', 'this.constants.groups')}
  let acc = 0;
  for (let cg = 0; cg < this.constants.perGroup; cg++) {
    const c = g * this.constants.perGroup + cg;
    acc += weight[c] * sumGy[b * this.constants.channels + c];
  }
  return -rstd[this.thread.x] * acc / this.constants.count;
}`;

/**
 * dx = w_c r gy + k1 (x - mu) + k0 (ts-norm.ts derives it, and folds k1 mu into k0: in float32 the
 * difference is taken first, as in the forward).
 */
const GN_GX = `function (x, gy, weight, mean, rstd, k1, k0) {
  ${divmod('bg', 'inGroup', 'this.thread.x', 'this.constants.count')}
  ${divmod('bc', 's', 'this.thread.x', 'this.constants.spatial')}
  ${divmod('b', 'c', 'bc', 'this.constants.channels')}
  return weight[c] * rstd[bg] * gy[this.thread.x] + k1[bg] * (x[this.thread.x] - mean[bg]) + k0[bg];
}`;

/** dw_c = sum over samples of sum(gy xhat) on channel c (thread = c). */
const GN_GWEIGHT = `function (sumGyXhat) {
  let acc = 0;
  for (let b = 0; b < this.constants.batch; b++) acc += sumGyXhat[b * this.constants.channels + this.thread.x];
  return acc;
}`;

/** db_c = sum over samples of sum(gy) on channel c. */
const GN_GBIAS = `function (sumGy) {
  let acc = 0;
  for (let b = 0; b < this.constants.batch; b++) acc += sumGy[b * this.constants.channels + this.thread.x];
  return acc;
}`;

function groupNormShape(op: string, a: { batch: number; channels: number; spatial: number; groups: number }) {
  const { batch, channels, spatial, groups } = a;
  if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new Error(`gpu ${op}: ${channels} channels cannot be split into ${groups} groups`);
  }
  const perGroup = channels / groups;
  return { batch, channels, spatial, groups, perGroup, count: perGroup * spatial };
}

/** weight, or ones when there is none (scale 1); bias, or zeros (shift 0). */
function perChannel(
  op: string,
  name: string,
  a: GroupNormForwardArgs['weight'],
  channels: number,
  fill: number,
) {
  return a === null ? new Float32Array(channels).fill(fill) : f32(op, name, a, channels);
}

export function groupNormForwardGpu(k: Launcher, args: GroupNormForwardArgs): MaybePromise<void> {
  const op = 'groupNormForward';
  const dims = groupNormShape(op, args);
  const { batch, channels, groups } = dims;
  const size = batch * channels * dims.spatial;
  const x = f32(op, 'x', args.x, size);
  const out = f32(op, 'out', args.out, size);
  const meanOut = f32(op, 'mean', args.mean, batch * groups);
  const rstdOut = f32(op, 'rstd', args.rstd, batch * groups);
  const weight = perChannel(op, 'weight', args.weight, channels, 1);
  const bias = perChannel(op, 'bias', args.bias, channels, 0);
  if (size === 0) return;
  const withEps = { ...dims, eps: args.eps };
  return after(k.launch(GN_MEAN, 'gnMean', batch * groups, dims, x), (mean) =>
    after(k.launch(GN_RSTD, 'gnRstd', batch * groups, withEps, x, mean), (rstd) =>
      after(k.launch(GN_APPLY, 'gnApply', size, dims, x, mean, rstd, weight, bias), (y) => {
        meanOut.set(mean);
        rstdOut.set(rstd);
        out.set(y);
        // the SiLU of a fused norm-then-SiLU, here on the CPU (this backend has no SiLU kernel)
        if (args.silu) siluForwardTs({ x: out, out });
      }),
    ),
  );
}

export function groupNormBackwardGpu(k: Launcher, args: GroupNormBackwardArgs): MaybePromise<void> {
  const op = 'groupNormBackward';
  const dims = groupNormShape(op, args);
  const { batch, channels, groups } = dims;
  const size = batch * channels * dims.spatial;
  const x = f32(op, 'x', args.x, size);
  // after a fused SiLU, the gradient at the norm's output, computed on the CPU (as in the forward)
  const gy = f32(op, 'gy', args.silu ? groupNormSiluGradient(args) : args.gy, size);
  const mean = f32(op, 'mean', args.mean, batch * groups);
  const rstd = f32(op, 'rstd', args.rstd, batch * groups);
  const weight = perChannel(op, 'weight', args.weight, channels, 1);
  const gx = args.gx && f32(op, 'gx', args.gx, size);
  const gWeight = args.gWeight && f32(op, 'gWeight', args.gWeight, channels);
  const gBias = args.gBias && f32(op, 'gBias', args.gBias, channels);
  if (size === 0) {
    gWeight?.fill(0);
    gBias?.fill(0);
    return;
  }
  const sums = all([
    k.launch(GN_SUM_GY, 'gnSumGy', batch * channels, dims, gy),
    k.launch(GN_SUM_GY_XHAT, 'gnSumGyXhat', batch * channels, dims, gy, x, mean, rstd),
  ]);
  return after(sums, ([sumGy, sumGyXhat]) => {
    const work: MaybePromise<void>[] = [];
    if (gWeight) {
      const w = k.launch(GN_GWEIGHT, 'gnGWeight', channels, dims, sumGyXhat);
      work.push(after(w, (r) => gWeight.set(r)));
    }
    if (gBias) work.push(after(k.launch(GN_GBIAS, 'gnGBias', channels, dims, sumGy), (r) => gBias.set(r)));
    if (gx) {
      const coefficients = all([
        k.launch(GN_K1, 'gnK1', batch * groups, dims, sumGyXhat, weight, rstd),
        k.launch(GN_K0, 'gnK0', batch * groups, dims, sumGy, weight, rstd),
      ]);
      const dx = after(coefficients, ([k1, k0]) =>
        after(k.launch(GN_GX, 'gnGx', size, dims, x, gy, weight, mean, rstd, k1, k0), (r) => gx.set(r)),
      );
      work.push(dx);
    }
    return after(all(work), () => undefined);
  });
}

// --- Softmax along rows -------------------------------------------------------------------------------

/** The row's max (thread = row), subtracted before exp so that exp cannot overflow. */
const SOFTMAX_MAX = `function (x) {
  let m = x[this.thread.x * this.constants.cols];
  for (let j = 0; j < this.constants.cols; j++) m = Math.max(m, x[this.thread.x * this.constants.cols + j]);
  return m;
}`;

/** e = exp(x - max) per element: exp is the costly part (in webasm above all), so it is taken once. */
const SOFTMAX_EXP = `function (x, max) {
  ${divmod('r', 'j', 'this.thread.x', 'this.constants.cols')}
  return Math.exp(x[this.thread.x] - max[r]);
}`;

/** sum_j e_j over the row. */
const SOFTMAX_SUM = `function (e) {
  let sum = 0;
  for (let j = 0; j < this.constants.cols; j++) sum += e[this.thread.x * this.constants.cols + j];
  return sum;
}`;

const SOFTMAX_DIVIDE = `function (e, sum) {
  ${divmod('r', 'j', 'this.thread.x', 'this.constants.cols')}
  return e[this.thread.x] / sum[r];
}`;

/** <gy, y> over the row. */
const SOFTMAX_DOT = `function (gy, y) {
  let dot = 0;
  for (let j = 0; j < this.constants.cols; j++) {
    const o = this.thread.x * this.constants.cols + j;
    dot += gy[o] * y[o];
  }
  return dot;
}`;

/** gx = y (gy - <gy, y>): the Jacobian of softmax is diag(y) - y y^T. */
const SOFTMAX_GX = `function (y, gy, dot) {
  ${divmod('r', 'j', 'this.thread.x', 'this.constants.cols')}
  return y[this.thread.x] * (gy[this.thread.x] - dot[r]);
}`;

export function softmaxForwardGpu(k: Launcher, args: SoftmaxArgs): MaybePromise<void> {
  const { rows, cols } = args;
  const x = f32('softmaxForward', 'x', args.x, rows * cols);
  const out = f32('softmaxForward', 'out', args.out, rows * cols);
  if (rows * cols === 0) return;
  const c = { cols };
  const e = after(k.launch(SOFTMAX_MAX, 'softmaxMax', rows, c, x), (max) =>
    k.launch(SOFTMAX_EXP, 'softmaxExp', rows * cols, c, x, max),
  );
  return after(e, (ev) =>
    after(k.launch(SOFTMAX_SUM, 'softmaxSum', rows, c, ev), (sum) =>
      after(k.launch(SOFTMAX_DIVIDE, 'softmaxDivide', rows * cols, c, ev, sum), (y) => out.set(y)),
    ),
  );
}

export function softmaxBackwardGpu(k: Launcher, args: SoftmaxBackwardArgs): MaybePromise<void> {
  const { rows, cols } = args;
  const y = f32('softmaxBackward', 'y', args.y, rows * cols);
  const gy = f32('softmaxBackward', 'gy', args.gy, rows * cols);
  const gx = f32('softmaxBackward', 'gx', args.gx, rows * cols);
  if (rows * cols === 0) return;
  const c = { cols };
  return after(k.launch(SOFTMAX_DOT, 'softmaxDot', rows, c, gy, y), (dot) =>
    after(k.launch(SOFTMAX_GX, 'softmaxGx', rows * cols, c, y, gy, dot), (r) => gx.set(r)),
  );
}
