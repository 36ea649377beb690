// 2-D convolution and its transpose, as PyTorch defines them (cross-correlation, NCHW, weight
// [out, in, kh, kw] for conv2d and [in, out, kh, kw] for conv_transpose2d).
//
// conv2d lays every input window of the whole batch out as a column (im2col), so the convolution is one
// matrix product W [Cout, Cin kh kw] x cols [Cin kh kw, B Hout Wout]: a single big gemm per layer.
// Its backward is two more products: dW = dY cols^T, and dcols = W^T dY folded back onto the input
// by col2im (the adjoint of im2col).
// conv_transpose2d *is* that input-gradient map: its forward is conv2d's dx computation and its
// backward uses conv2d's forward, which makes it short and correct by construction.
import { allocate, allocateOutput, dataAs, opResult, resultDtype, Tensor, type Storage } from '../tensor.ts';
import { formatShape } from '../shape.ts';
import { kernel, type ConvGeometry } from '../kernels/registry.ts';
import '../kernels/ts.ts';
import '../kernels/ts-conv.ts';

export type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows/columns at the bottom/right of the output, to pick one of the sizes a stride allows. */
  outputPadding?: Pair;
}

function pair(op: string, name: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`${op}: ${name} must be an integer >= ${min} (or a pair of them), got ${String(v)}`);
  }
  return p;
}

/** d(loss)/d(bias[c]) = the sum of the output gradient over the batch and positions of channel c. */
function biasGrad(g: Storage, bias: Tensor, batch: number, channels: number, plane: number): void {
  const gb = allocate(bias.dtype, channels);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < channels; c++) {
      let acc = 0;
      const o = (b * channels + c) * plane;
      for (let p = 0; p < plane; p++) acc += g[o + p];
      gb[c] += acc;
    }
  }
  bias.accumulateGrad(gb, true);
}

/** The shared argument checks: x [B, C, H, W], a 4-D weight, a bias of `outChannels` or none. */
function checkInputs(op: string, x: Tensor, weight: Tensor, bias: Tensor | null, inAxis: number) {
  if (x.ndim !== 4)
    throw new Error(`${op}: input must be [batch, channels, height, width], got ${formatShape(x.shape)}`);
  if (weight.ndim !== 4 || weight.shape[inAxis] !== x.shape[1]) {
    const layout = inAxis === 1 ? '[out, in, kh, kw]' : '[in, out, kh, kw]';
    throw new Error(
      `${op}: weight ${formatShape(weight.shape)} (${layout}) does not match input ${formatShape(x.shape)} with ${x.shape[1]} channels`,
    );
  }
  const outChannels = weight.shape[1 - inAxis];
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outChannels)) {
    throw new Error(`${op}: bias ${formatShape(bias.shape)} does not match ${outChannels} output channels`);
  }
  return outChannels;
}

/** PyTorch's F.conv2d: out[b, o, y, x] = bias[o] + sum_{c,i,j} w[o, c, i, j] xpad[b, c, y s + i, x s + j]. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  const op = 'conv2d';
  const cout = checkInputs(op, x, weight, bias, 1);
  const [strideH, strideW] = pair(op, 'stride', opts.stride ?? 1, 1);
  const [padH, padW] = pair(op, 'padding', opts.padding ?? 0, 0);
  const [batch, channels, height, width] = x.shape;
  const [kh, kw] = [weight.shape[2], weight.shape[3]];
  const outH = Math.floor((height + 2 * padH - kh) / strideH) + 1;
  const outW = Math.floor((width + 2 * padW - kw) / strideW) + 1;
  if (outH < 1 || outW < 1) {
    throw new Error(
      `${op}: input ${formatShape(x.shape)} padded by ${padH}x${padW} is smaller than the ${kh}x${kw} kernel`,
    );
  }
  const geo: ConvGeometry = {
    batch,
    channels,
    height,
    width,
    kh,
    kw,
    strideH,
    strideW,
    padH,
    padW,
    outH,
    outW,
  };
  const dtype = resultDtype(x, weight, ...(bias ? [bias] : []));
  const f64 = dtype === 'float64';
  const X = dataAs(x, dtype);
  const W = dataAs(weight, dtype);
  const plane = outH * outW;
  const N = batch * plane;
  // [Cout, B P] = W [Cout, K] cols [K, B P] + bias, written out as [B, Cout, P]
  const out = allocateOutput(dtype, cout * N);
  const b = bias ? dataAs(bias, dtype) : null;
  kernel('conv2dForward', f64)({ ...geo, x: X, w: W, out, cout, bias: b, batchMajor: true });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return opResult(op, out, [batch, cout, outH, outW], inputs, (g) => {
    // dY in the layers' layout [B, Cout, P]; the kernels read it as the [Cout, B P] of the product
    if (weight.requiresGrad) {
      const gw = allocateOutput(weight.dtype, weight.size); // dW = dY cols^T (windows recomputed, not kept)
      kernel('conv2dBackwardFilter', f64)({ ...geo, x: X, gy: g, gyBatchMajor: true, gw, cout });
      weight.accumulateGrad(gw, true);
    }
    if (x.requiresGrad) {
      const gx = allocateOutput(x.dtype, x.size); // dcols = W^T dY, folded back onto the pixels
      kernel('conv2dBackwardInput', f64)({ ...geo, w: W, gy: g, gyBatchMajor: true, gx, cout });
      x.accumulateGrad(gx, true);
    }
    if (bias?.requiresGrad) biasGrad(g, bias, batch, cout, plane);
  });
}

/**
 * PyTorch's F.conv_transpose2d with weight [in, out, kh, kw]: the gradient of conv2d(., weight) with
 * respect to its input, so every input pixel scatters w[c, :, :, :] x[b, c, y, x] onto the output
 * window at (y s - p, x s - p). Output size (H - 1) s - 2 p + k + outputPadding.
 */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  opts: ConvTranspose2dOptions = {},
): Tensor {
  const op = 'convTranspose2d';
  const cout = checkInputs(op, x, weight, bias, 0);
  const [strideH, strideW] = pair(op, 'stride', opts.stride ?? 1, 1);
  const [padH, padW] = pair(op, 'padding', opts.padding ?? 0, 0);
  const [extraH, extraW] = pair(op, 'outputPadding', opts.outputPadding ?? 0, 0);
  if (extraH >= strideH || extraW >= strideW) {
    throw new Error(
      `${op}: outputPadding ${extraH}x${extraW} must be smaller than the stride ${strideH}x${strideW}`,
    );
  }
  const [batch, cin, inH, inW] = x.shape;
  const [kh, kw] = [weight.shape[2], weight.shape[3]];
  const outH = (inH - 1) * strideH - 2 * padH + kh + extraH;
  const outW = (inW - 1) * strideW - 2 * padW + kw + extraW;
  if (outH < 1 || outW < 1) {
    throw new Error(
      `${op}: input ${formatShape(x.shape)} gives an empty output (${outH}x${outW}) with padding ${padH}x${padW}`,
    );
  }
  // The conv2d this is the adjoint of: input = our output [B, Cout, outH, outW], positions = our input.
  const geo: ConvGeometry = {
    batch,
    channels: cout,
    height: outH,
    width: outW,
    kh,
    kw,
    strideH,
    strideW,
    padH,
    padW,
    outH: inH,
    outW: inW,
  };
  const dtype = resultDtype(x, weight, ...(bias ? [bias] : []));
  const f64 = dtype === 'float64';
  const W = dataAs(weight, dtype); // [Cin, K] with K = Cout kh kw: the adjoint conv's [cout, K] weight
  const plane = inH * inW;
  const X = dataAs(x, dtype); // [B, Cin, P]: the adjoint conv's output gradient, batch-major
  const out = allocateOutput(dtype, batch * cout * outH * outW); // col2im(W^T x): the adjoint conv's input gradient
  kernel('conv2dBackwardInput', f64)({ ...geo, w: W, gy: X, gyBatchMajor: true, gx: out, cout: cin });
  if (bias) {
    const outPlane = outH * outW;
    for (let b = 0; b < batch; b++)
      for (let c = 0; c < cout; c++) {
        const o = (b * cout + c) * outPlane;
        for (let p = 0; p < outPlane; p++) out[o + p] += bias.data[c];
      }
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return opResult(op, out, [batch, cout, outH, outW], inputs, (g) => {
    if (x.requiresGrad) {
      const gx = allocateOutput(dtype, cin * batch * plane); // dx = W windows(dY): the adjoint conv's forward
      kernel('conv2dForward', f64)({ ...geo, x: g, w: W, out: gx, cout: cin, batchMajor: true });
      x.accumulateGrad(gx, true);
    }
    if (weight.requiresGrad) {
      const gw = allocateOutput(weight.dtype, weight.size); // dW = x windows(dY)^T, [Cin, K]
      kernel('conv2dBackwardFilter', f64)({ ...geo, x: g, gy: X, gyBatchMajor: true, gw, cout: cin });
      weight.accumulateGrad(gw, true);
    }
    if (bias?.requiresGrad) biasGrad(g, bias, batch, cout, outH * outW);
  });
}
