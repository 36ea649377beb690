// Reference im2col / col2im in plain TypeScript. A convolution becomes one matrix product once every
// input window is laid out as a column: cols [channels * kh * kw, batch * outH * outW]. Both kernels walk
// cols row by row (one (c, i, j) tap of the kernel at a time), so writes to cols are sequential, and
// they compute the range of output columns whose tap lands inside the image once per row instead of
// testing every pixel.
import { registerBackend, type Im2colArgs } from './registry.ts';

/** The output positions o in [lo, hi) for which o * stride - pad + tap lies in [0, size). */
function validRange(tap: number, size: number, stride: number, pad: number, outSize: number) {
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
          cols.fill(0, start, start + oyLo * outW); // rows of the window above the image
          for (let oy = oyLo; oy < oyHi; oy++) {
            const dst = start + oy * outW;
            const src = image + (oy * strideH - padH + i) * width - padW + j;
            cols.fill(0, dst, dst + oxLo);
            if (strideW === 1) cols.set(x.subarray(src + oxLo, src + oxHi), dst + oxLo);
            else for (let ox = oxLo; ox < oxHi; ox++) cols[dst + ox] = x[src + ox * strideW];
            cols.fill(0, dst + oxHi, dst + outW);
          }
          cols.fill(0, start + oyHi * outW, start + plane); // and below it
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

registerBackend('ts', { im2col: im2colTs, col2im: col2imTs });
