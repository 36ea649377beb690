// The convolution kernels of every backend against the ts ones: im2col's forward, filter and input
// gradients on odd geometries (strides, padding, non-square kernels), and on wasm the Winograd paths:
// F(2x2, 3x3) for the 3x3 same-size convolutions and F(2x2, 2x2) for the phases of the 4x4 stride-2
// ones, with either layout of the output gradient.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../core/index.ts';
import { listBackends, backendKernels } from '../../core/kernels/registry.ts';
import '../../core/kernels/ts.ts';
import '../../core/kernels/wasm/index.ts';
import '../../gpu/backend.ts';

/** A 4x4 convolution at stride 2 and padding 1 (the UNet's down-sampling). */
const down4x4 = ([batch, channels, height, width, cout]: number[]) => ({
  ...{ batch, channels, height, width, cout },
  ...{ kh: 4, kw: 4, strideH: 2, strideW: 2, padH: 1, padW: 1 },
});

/** A 3x3 convolution at stride 1 that keeps the image size (padding 1). */
const same3x3 = ([batch, channels, height, width, cout]: number[]) => ({
  ...{ batch, channels, height, width, cout },
  ...{ kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1 },
});

const geometries = [
  same3x3([2, 3, 7, 9, 5]),
  {
    batch: 3,
    channels: 4,
    height: 8,
    width: 8,
    kh: 4,
    kw: 4,
    strideH: 2,
    strideW: 2,
    padH: 1,
    padW: 1,
    cout: 6,
  },
  {
    batch: 1,
    channels: 2,
    height: 5,
    width: 6,
    kh: 2,
    kw: 3,
    strideH: 1,
    strideW: 2,
    padH: 0,
    padW: 2,
    cout: 3,
  },
  {
    batch: 4,
    channels: 8,
    height: 6,
    width: 6,
    kh: 1,
    kw: 1,
    strideH: 1,
    strideW: 1,
    padH: 0,
    padW: 0,
    cout: 9,
  },
  same3x3([2, 17, 14, 14, 33]),
  // Winograd F(2x2, 3x3) on wasm (3x3, stride 1, padding 1, 8 channels or more each side and 2^15
  // or more of pixels x Cin x Cout per image): odd height and width (the last tile row and column
  // half outside), one pixel, and enough work for two threads
  ...[
    [3, 32, 7, 9, 32],
    [2, 256, 1, 1, 256],
    [2, 64, 2, 5, 110],
    [8, 16, 28, 27, 16],
  ].map(same3x3),
  // F(2x2, 2x2) on the four phases of 4x4 stride-2 convolutions on wasm (8 channels or more each side,
  // 2^15 or more of output pixels x 4 Cin x Cout per image): odd sizes, one output pixel, more
  // channels out than in and the reverse, and enough work for two threads
  ...[
    [3, 16, 14, 14, 24],
    [2, 32, 9, 11, 40],
    [2, 128, 2, 3, 160],
    [3, 8, 16, 16, 64],
    [2, 64, 10, 8, 8],
    [8, 32, 28, 28, 32],
  ].map(down4x4),
].map((g) => ({
  ...g,
  outH: Math.floor((g.height + 2 * g.padH - g.kh) / g.strideH) + 1,
  outW: Math.floor((g.width + 2 * g.padW - g.kw) / g.strideW) + 1,
}));

for (const backend of listBackends()) {
  const own = backendKernels(backend);
  if (!own.conv2dForward || backend === 'ts') continue;
  const ref = backendKernels('ts');
  test(`${backend} conv2d forward (and backward-filter and backward-input where it has them) equal the ts kernels`, () => {
    const rng = new Rng(5);
    for (const g of geometries) {
      const K = g.channels * g.kh * g.kw;
      const N = g.batch * g.outH * g.outW;
      const x = rng.randn([g.batch * g.channels * g.height * g.width]).data as Float32Array;
      const w = rng.randn([g.cout * K]).data as Float32Array;
      const gy = rng.randn([g.cout * N]).data as Float32Array;
      // Within 1e-4 of the ts kernel's result, relatively; or, for a long sum that cancels to near zero
      // (a filter gradient over thousands of pixels), within a few float32 roundings (2^-24 = 6e-8) of
      // its terms' magnitudes: the same kernel run on |x|, |w|, |gy| in ts. Float32 sums err in
      // proportion to the second, which a bug exceeds by orders of magnitude.
      const abs = (v: Float32Array) => v.map(Math.abs);
      const close = (got: Float32Array, want: Float32Array, scale: Float32Array, what: string) => {
        for (let i = 0; i < want.length; i++) {
          const err = Math.abs(got[i] - want[i]);
          assert.ok(
            err < 1e-4 * (1 + Math.abs(want[i])) || err <= 5e-7 * scale[i],
            `${what} ${JSON.stringify(g)} [${i}]: ${got[i]} vs ${want[i]} (terms' magnitudes ${scale[i]})`,
          );
        }
      };
      const [out, outRef] = [new Float32Array(g.cout * N), new Float32Array(g.cout * N)];
      const outScale = new Float32Array(g.cout * N);
      own.conv2dForward?.({ ...g, x, w, out });
      ref.conv2dForward?.({ ...g, x, w, out: outRef });
      ref.conv2dForward?.({ ...g, x: abs(x), w: abs(w), out: outScale });
      close(out, outRef, outScale, 'forward');
      // with a bias, in either layout; the batch-major output is the product's, reordered
      const bias = rng.randn([g.cout]).data as Float32Array;
      const plane = g.outH * g.outW;
      for (const batchMajor of [false, true]) {
        const [o, oRef] = [new Float32Array(g.cout * N), new Float32Array(g.cout * N)];
        const oScale = new Float32Array(g.cout * N);
        own.conv2dForward?.({ ...g, x, w, out: o, bias, batchMajor });
        ref.conv2dForward?.({ ...g, x, w, out: oRef, bias, batchMajor });
        ref.conv2dForward?.({ ...g, x: abs(x), w: abs(w), out: oScale, bias: abs(bias), batchMajor });
        close(o, oRef, oScale, `forward with bias${batchMajor ? ', batch-major' : ''}`);
        for (let i = 0; i < N * g.cout; i += 7) {
          const [c, b, p] = [Math.floor(i / N), Math.floor((i % N) / plane), i % plane];
          const at = batchMajor ? (b * g.cout + c) * plane + p : i;
          assert.ok(Math.abs(oRef[at] - outRef[i] - bias[c]) < 1e-5 * (1 + Math.abs(outRef[i])), 'ts layout');
        }
      }
      // the backward kernels, where this backend has them (gpu has the forward pass only), given gy as
      // the product's [Cout, B P] and as the layers' [B, Cout, P]; the ts kernel reads the first
      const gyBatchMajor = new Float32Array(gy.length);
      for (let i = 0; i < N * g.cout; i++) {
        const [c, b, p] = [Math.floor(i / N), Math.floor((i % N) / plane), i % plane];
        gyBatchMajor[(b * g.cout + c) * plane + p] = gy[i];
      }
      const layouts = [
        { gy, gyBatchMajor: false, what: '' },
        { gy: gyBatchMajor, gyBatchMajor: true, what: ', gy batch-major' },
      ];
      if (own.conv2dBackwardFilter) {
        const [gwRef, gwScale] = [new Float32Array(g.cout * K), new Float32Array(g.cout * K)];
        ref.conv2dBackwardFilter?.({ ...g, x, gy, gw: gwRef });
        ref.conv2dBackwardFilter?.({ ...g, x: abs(x), gy: abs(gy), gw: gwScale });
        for (const layout of layouts) {
          const gw = new Float32Array(g.cout * K);
          own.conv2dBackwardFilter({ ...g, x, ...layout, gw });
          close(gw, gwRef, gwScale, `backward filter${layout.what}`);
        }
      }
      if (own.conv2dBackwardInput) {
        // the kernel writes gx whole: NaN where it left an element unwritten
        const [gxRef, gxScale] = [new Float32Array(x.length).fill(NaN), new Float32Array(x.length)];
        ref.conv2dBackwardInput?.({ ...g, w, gy, gx: gxRef });
        ref.conv2dBackwardInput?.({ ...g, w: abs(w), gy: abs(gy), gx: gxScale });
        for (const layout of layouts) {
          const gx = new Float32Array(x.length).fill(NaN);
          own.conv2dBackwardInput({ ...g, w, ...layout, gx });
          close(gx, gxRef, gxScale, `backward input${layout.what}`);
        }
      }
    }
  });
}

test.run();
