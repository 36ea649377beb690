// im2col and its adjoint col2im as gpu.js kernels, both gather-style: one thread per element written.
// im2col: each thread is one entry of cols and reads the one pixel its window tap lands on (or 0 in the
// padding). col2im: each thread is one pixel and sums the cols entries of every window tap that read it,
// so no two threads ever write the same place (a scatter would need atomics GPUs do not give gpu.js).
import type { ConvForwardArgs, ConvGeometry, Im2colArgs } from '../core/kernels/registry.ts';
import {
  after,
  divmod,
  f32,
  MAX_ELEMENTS,
  TooLargeError,
  type Launcher,
  type MaybePromise,
} from './launch.ts';

/**
 * cols[(c, i, j), (b, oy, ox)] = x[b, c, oy strideH - padH + i, ox strideW - padW + j], 0 outside the
 * image: thread t is row (c, i, j) = t / n, column (b, oy, ox) = t mod n of cols [C kh kw, n = B outH outW].
 */
const IM2COL_SOURCE = `function (x) {
  const n = this.constants.batch * this.constants.outH * this.constants.outW;
  ${divmod('row', 'col', 'this.thread.x', 'n')}
  ${divmod('c', 'tap', 'row', 'this.constants.kh * this.constants.kw')}
  ${divmod('i', 'j', 'tap', 'this.constants.kw')}
  ${divmod('b', 'pos', 'col', 'this.constants.outH * this.constants.outW')}
  ${divmod('oy', 'ox', 'pos', 'this.constants.outW')}
  const y = oy * this.constants.strideH - this.constants.padH + i;
  const xx = ox * this.constants.strideW - this.constants.padW + j;
  let v = 0;
  if (y >= 0 && y < this.constants.height && xx >= 0 && xx < this.constants.width) {
    v = x[((b * this.constants.channels + c) * this.constants.height + y) * this.constants.width + xx];
  }
  return v;
}`;

/**
 * x[b, c, y, x] + the sum of cols[(c, i, j), (b, oy, ox)] over the taps (i, j) and window positions
 * (oy, ox) with oy strideH - padH + i = y and ox strideW - padW + j = x: for each tap, the position is
 * (y + padH - i) / strideH, which must be a whole number inside the output. Taps are summed in the same
 * (i, j) order as the TypeScript col2im, starting from the old x, since col2im adds onto x.
 */
const COL2IM_SOURCE = `function (x, cols) {
  const n = this.constants.batch * this.constants.outH * this.constants.outW;
  ${divmod('bc', 'pix', 'this.thread.x', 'this.constants.height * this.constants.width')}
  ${divmod('b', 'c', 'bc', 'this.constants.channels')}
  ${divmod('y', 'xx', 'pix', 'this.constants.width')}
  let sum = x[this.thread.x];
  for (let i = 0; i < this.constants.kh; i++) {
    ${divmod('oy', 'ry', 'y + this.constants.padH - i', 'this.constants.strideH')}
    for (let j = 0; j < this.constants.kw; j++) {
      ${divmod('ox', 'rx', 'xx + this.constants.padW - j', 'this.constants.strideW')}
      if (ry == 0 && rx == 0 && oy >= 0 && oy < this.constants.outH && ox >= 0 && ox < this.constants.outW) {
        const row = (c * this.constants.kh + i) * this.constants.kw + j;
        sum += cols[row * n + (b * this.constants.outH + oy) * this.constants.outW + ox];
      }
    }
  }
  return sum;
}`;

/**
 * The convolution's product and bias in one: out = W cols + bias, W [Cout, K] and cols [K, N = B P] as
 * im2col lays them out, written straight in the layout asked for. Thread t is one output element: in
 * the layers' layout [B, Cout, P] (batch major) t = (b Cout + c) P + p; in the product's [Cout, B P],
 * t = c B P + b P + p. The sum runs over k in order, as the gemm kernel's does.
 */
const convProductSource = (batchMajor: boolean) => `function (w, cols, bias) {
  const P = this.constants.outH * this.constants.outW;
  const N = this.constants.batch * P;
  ${batchMajor ? divmod('b', 'rest', 'this.thread.x', 'this.constants.cout * P') : divmod('c', 'rest', 'this.thread.x', 'N')}
  ${batchMajor ? divmod('c', 'p', 'rest', 'P') : divmod('b', 'p', 'rest', 'P')}
  const col = b * P + p;
  let sum = 0;
  for (let k = 0; k < this.constants.K; k++) {
    sum += w[c * this.constants.K + k] * cols[k * N + col];
  }
  return sum + bias[c];
}`;

function geometry(g: ConvGeometry): Record<string, number> {
  const { batch, channels, height, width, kh, kw, strideH, strideW, padH, padW, outH, outW } = g;
  return { batch, channels, height, width, kh, kw, strideH, strideW, padH, padW, outH, outW };
}

export function im2colGpu(k: Launcher, args: Im2colArgs): MaybePromise<void> {
  const g = geometry(args);
  const pixels = g.batch * g.channels * g.height * g.width;
  const size = g.channels * g.kh * g.kw * g.batch * g.outH * g.outW;
  const x = f32('im2col', 'x', args.x, pixels);
  const cols = f32('im2col', 'cols', args.cols, size);
  if (size === 0) return;
  return after(k.launch(IM2COL_SOURCE, 'im2col', size, g, x), (r) => cols.set(r));
}

export function col2imGpu(k: Launcher, args: Im2colArgs): MaybePromise<void> {
  const g = geometry(args);
  const pixels = g.batch * g.channels * g.height * g.width;
  const size = g.channels * g.kh * g.kw * g.batch * g.outH * g.outW;
  const x = f32('col2im', 'x', args.x, pixels);
  const cols = f32('col2im', 'cols', args.cols, size);
  if (size === 0 || pixels === 0) return;
  return after(k.launch(COL2IM_SOURCE, 'col2im', pixels, g, x, cols), (r) => x.set(r));
}

/**
 * conv2d's forward pass as two kernels, im2col then the product and bias. Where gpu.js runs on GL, cols
 * (K N floats, nine times the input for a 3x3 kernel) stays on the GPU as a texture between them
 * (pipeline mode), so only the output comes back; elsewhere cols comes back and goes up again.
 */
export function conv2dForwardGpu(k: Launcher, args: ConvForwardArgs): MaybePromise<void> {
  const g = geometry(args);
  const pixels = g.batch * g.channels * g.height * g.width;
  const K = g.channels * g.kh * g.kw;
  const N = g.batch * g.outH * g.outW;
  const x = f32('conv2dForward', 'x', args.x, pixels);
  const w = f32('conv2dForward', 'w', args.w, args.cout * K);
  const out = f32('conv2dForward', 'out', args.out, args.cout * N);
  if (K * N > MAX_ELEMENTS) {
    throw new TooLargeError(`gpu conv2dForward: cols would have ${K * N} elements, more than the 2^24 that gpu.js's float32 index arithmetic counts exactly`); // prettier-ignore
  }
  const bias = args.bias ? f32('conv2dForward', 'bias', args.bias, args.cout) : new Float32Array(args.cout);
  const batchMajor = args.batchMajor === true;
  if (out.length === 0) return;
  if (K === 0) {
    // no input channels: every output is its channel's bias
    const P = g.outH * g.outW;
    for (let t = 0; t < out.length; t++)
      out[t] = bias[batchMajor ? Math.floor(t / P) % args.cout : Math.floor(t / N)];
    return;
  }
  const cols = k.launchOnGpu(IM2COL_SOURCE, 'im2col', K * N, g, x);
  return after(cols, (c) =>
    after(
      k.launch(convProductSource(batchMajor), batchMajor ? 'convProductBM' : 'convProduct', out.length, { ...g, cout: args.cout, K }, w, c, bias), // prettier-ignore
      (r) => out.set(r),
    ),
  );
}
