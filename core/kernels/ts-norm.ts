// Reference GroupNorm and softmax kernels in plain TypeScript. Each is one fused loop with a
// hand-derived backward, so a normalisation costs a few passes over memory instead of a dozen small
// ops. Sums are accumulated in float64 (JavaScript numbers) whatever the storage type.
import type { Storage } from '../tensor.ts';
import {
  registerBackend,
  type GroupNormBackwardArgs,
  type GroupNormForwardArgs,
  type SoftmaxArgs,
  type SoftmaxBackwardArgs,
} from './registry.ts';

/**
 * GroupNorm (Wu & He 2018): for each sample and group of channels, with mean mu and biased variance
 * var over the group's channels and positions, xhat = (x - mu) / sqrt(var + eps), out = xhat w_c + b_c.
 */
export function groupNormForwardTs(args: GroupNormForwardArgs): void {
  const { x, out, weight, bias, mean, rstd, batch, channels, spatial, groups, eps, silu } = args;
  const perGroup = channels / groups;
  const count = perGroup * spatial;
  for (let b = 0; b < batch; b++) {
    for (let g = 0; g < groups; g++) {
      const start = (b * channels + g * perGroup) * spatial; // a group is one contiguous block
      let sum = 0;
      for (let i = 0; i < count; i++) sum += x[start + i];
      const mu = sum / count;
      let squares = 0; // two passes: the variance of numbers far from 0 stays accurate
      for (let i = 0; i < count; i++) {
        const d = x[start + i] - mu;
        squares += d * d;
      }
      const r = 1 / Math.sqrt(squares / count + eps);
      mean[b * groups + g] = mu;
      rstd[b * groups + g] = r;
      for (let cg = 0; cg < perGroup; cg++) {
        const c = g * perGroup + cg;
        const scale = weight === null ? r : weight[c] * r;
        const shift = (bias === null ? 0 : bias[c]) - mu * scale;
        const o = start + cg * spatial;
        if (!silu) for (let s = 0; s < spatial; s++) out[o + s] = x[o + s] * scale + shift;
        else {
          for (let s = 0; s < spatial; s++) {
            const y = x[o + s] * scale + shift;
            out[o + s] = y / (1 + Math.exp(-y));
          }
        }
      }
    }
  }
}

/**
 * With N elements per group, gyhat = gy w_c, and sums taken over the group:
 *   dx = r (gyhat - sum(gyhat) / N - xhat sum(gyhat xhat) / N),
 *   dw_c = sum over samples and positions of gy xhat,  db_c = sum of gy.
 * Per channel only two sums of gy are needed (sum gy and sum gy x), since xhat = (x - mu) r.
 */
export function groupNormBackwardTs(args: GroupNormBackwardArgs): void {
  const { x, gx, gWeight, gBias, weight, mean, rstd, batch, channels, spatial, groups } = args;
  const gy = args.silu ? groupNormSiluGradient(args) : args.gy;
  const perGroup = channels / groups;
  const count = perGroup * spatial;
  gWeight?.fill(0);
  gBias?.fill(0);
  for (let b = 0; b < batch; b++) {
    for (let g = 0; g < groups; g++) {
      const mu = mean[b * groups + g];
      const r = rstd[b * groups + g];
      const start = (b * channels + g * perGroup) * spatial;
      let sumGyhat = 0;
      let sumGyhatXhat = 0;
      for (let cg = 0; cg < perGroup; cg++) {
        const c = g * perGroup + cg;
        const o = start + cg * spatial;
        let sumGy = 0;
        let sumGyX = 0;
        for (let s = 0; s < spatial; s++) {
          sumGy += gy[o + s];
          sumGyX += gy[o + s] * x[o + s];
        }
        const gyXhat = (sumGyX - mu * sumGy) * r; // sum of gy xhat over this channel
        const w = weight === null ? 1 : weight[c];
        if (gWeight) gWeight[c] += gyXhat;
        if (gBias) gBias[c] += sumGy;
        sumGyhat += w * sumGy;
        sumGyhatXhat += w * gyXhat;
      }
      if (!gx) continue;
      // dx = a_c gy + k1 x + k0, with a_c = w_c r, k1 = -r^2 sum(gyhat xhat) / N and
      // k0 = -r sum(gyhat) / N - k1 mu
      const k1 = (-r * r * sumGyhatXhat) / count;
      const k0 = (-r * sumGyhat) / count - k1 * mu;
      for (let cg = 0; cg < perGroup; cg++) {
        const c = g * perGroup + cg;
        const a = (weight === null ? 1 : weight[c]) * r;
        const o = start + cg * spatial;
        for (let s = 0; s < spatial; s++) gx[o + s] = a * gy[o + s] + k1 * x[o + s] + k0;
      }
    }
  }
}

/**
 * Where SiLU followed the norm, the gradient at the norm's output: gy silu'(y), with y = xhat w_c + b_c
 * recomputed from the saved statistics and silu'(y) = s + y s (1 - s), s = sigmoid(y).
 */
export function groupNormSiluGradient(args: GroupNormBackwardArgs): Storage {
  const { x, gy, weight, mean, rstd, batch, channels, spatial, groups } = args;
  const bias = args.bias ?? null;
  const perGroup = channels / groups;
  const out = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      const bg = b * groups + Math.floor(c / perGroup);
      const scale = (weight === null ? 1 : weight[c]) * rstd[bg];
      const shift = (bias === null ? 0 : bias[c]) - mean[bg] * scale;
      for (let i = (b * channels + c) * spatial, end = i + spatial; i < end; i++) {
        const y = x[i] * scale + shift;
        const s = 1 / (1 + Math.exp(-y));
        out[i] = gy[i] * s * (1 + y * (1 - s));
      }
    }
  }
  return out;
}

/** softmax(x)_j = exp(x_j - max x) / sum_k exp(x_k - max x): subtracting the max avoids overflow. */
export function softmaxForwardTs({ x, out, rows, cols }: SoftmaxArgs): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j] > max) max = x[o + j];
    let sum = 0;
    for (let j = 0; j < cols; j++) {
      const e = Math.exp(x[o + j] - max);
      out[o + j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = 0; j < cols; j++) out[o + j] *= inv;
  }
}

/** The Jacobian of softmax is diag(y) - y y^T, so gx = y * (gy - <gy, y>) row by row. */
export function softmaxBackwardTs({ y, gy, gx, rows, cols }: SoftmaxBackwardArgs): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += gy[o + j] * y[o + j];
    for (let j = 0; j < cols; j++) gx[o + j] = y[o + j] * (gy[o + j] - dot);
  }
}

registerBackend('ts', {
  groupNormForward: groupNormForwardTs,
  groupNormBackward: groupNormBackwardTs,
  softmaxForward: softmaxForwardTs,
  softmaxBackward: softmaxBackwardTs,
});
