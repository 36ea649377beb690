// The Winograd convolutions in WebAssembly (winograd-module.ts has the transforms and their formulas),
// for two kinds of layer:
// - 3x3 at stride 1 with padding 1 (the image size kept): F(2x2, 3x3) directly.
// - 4x4 at stride 2 with padding 1 (the UNet's down-sampling; its up-sampling is the adjoint): split
//   into its four phases (polyphase), such a convolution is a 2x2 one at stride 1, and F(2x2, 2x2) runs
//   it. With P_pq[m, n] = x[2m + p - 1, 2n + q - 1] (zero outside the image),
//     y[i, j] = sum over a, b, p, q of w[2a + p, 2b + q] P_pq[i + a, j + b]     (ky = 2a + p),
//   a "valid" 2x2 convolution of 4 Cin phase channels on a grid of (outH + 1) x (outW + 1). Its input
//   gradient is the adjoint ("full") 2x2 convolution of gy, whose 4 Cin outputs are gx's phases. The
//   phases are im2col's window matrix for 2x2 windows at stride 2 (which tile the padded image), and
//   col2im puts them back (engine.ts).
// Each convolution here is: the input transform, one gemm per transformed element, the output
// transform; the filter gradient is the two image-reading transforms, the products, G^T D G.
import type { Storage } from '../../tensor.ts';
import { FN } from './arena.ts';
import { GemmEngine } from './gemm-engine.ts';
import { paddedHeight, paddedWidth, WINO, WINO_FIELDS } from './winograd-module.ts';

type Strides = { imgStride: number; chanStride: number };

/**
 * One Winograd convolution F(2x2, r x r): planes of inH x inW read after `lead` rows and columns of
 * zeros, giving planes of outH x outW.
 */
export type WinoShape = {
  r: 2 | 3;
  batch: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  lead: 0 | 1;
};

/**
 * Where a convolution's images come from and go to: laid out with `strides`, moved by `move` (after
 * `take`, if any, has taken the arena space the move needs).
 */
export type WinoImages = {
  strides: Strides;
  take?: () => void;
  move: (f32: Float32Array, at: number) => void;
};

const FNS = {
  3: { input: FN.winogradInput, output: FN.winogradOutput, gradient: FN.winogradGradient },
  2: { input: FN.winograd2Input, output: FN.winograd2Output, gradient: FN.winograd2Gradient },
};

export class WinogradEngine extends GemmEngine {
  /**
   * From `cin` channels of `src` to `cout` of `dst`: the input transform, the products U_e V_e (U
   * written by `weights` at a float offset), the output transform (+ bias).
   */
  protected winograd(
    s: WinoShape,
    cin: number,
    cout: number,
    weights: (f32: Float32Array, at: number) => void,
    bias: Storage | null,
    src: WinoImages,
    dst: WinoImages,
  ): void {
    const { batch, e, tilesH, tilesW, n, inSize, outSize } = sizes(s, cin, cout);
    this.reset();
    const X = this.take(inSize);
    const OUT = this.take(outSize);
    const U = this.take(e * cout * cin);
    const V = this.take(e * cin * n);
    // M_e [cout, n] = U_e [cout, cin] V_e [cin, n]
    const M = this.planProducts(e, [cout, n, cin], false, [U, cout * cin], [V, cin * n]);
    const BIAS = this.take(cout);
    const [GIN, GOUT] = [this.take(WINO_FIELDS), this.take(WINO_FIELDS)];
    const { inLists, outLists, scratchOf } = this.transformJobs(s, inSize, outSize);
    src.take?.();
    dst.take?.();
    this.commit();
    src.move(this.f32, X);
    weights(this.f32, U);
    if (bias) this.put(bias, BIAS, cout);
    else this.f32.fill(0, BIAS, BIAS + cout);
    const common = { batch, tilesH, tilesW, bias: BIAS * 4, lead: s.lead };
    this.writeWino(GIN, {
      ...common,
      ...src.strides,
      height: s.inH,
      width: s.inW,
      src: X * 4,
      mats: V * 4,
      matStride: cin * n * 4,
      ld: n,
    });
    this.writeWino(GOUT, {
      ...common,
      ...dst.strides,
      height: s.outH,
      width: s.outW,
      src: OUT * 4,
      mats: M.C * 4,
      matStride: M.cStep * 4,
      ld: M.ldc,
    });
    const fn = FNS[s.r];
    this.splitJobs(inLists, cin, (c0, c1, t) => [fn.input, GIN * 4, c0, c1, scratchOf(t)]);
    for (const p of M.plans) this.runGemm(p);
    this.splitJobs(outLists, cout, (c0, c1, t) => [fn.output, GOUT * 4, c0, c1, scratchOf(t)]);
    dst.move(this.f32, OUT);
  }

  /**
   * A filter gradient as F(2x2, r x r)'s adjoint: gw = G^T [sum over tiles of (A gy A^T) ⊙ (B^T d B)] G,
   * the sum being one product Z_e V_e^T per element; `finish` gets the products D_e [cout, cin] (at
   * float offset C + e cStep, rows of ldc) and applies G^T D G.
   */
  protected winogradFilterGradient(
    s: WinoShape,
    cin: number,
    cout: number,
    x: WinoImages,
    gy: WinoImages,
    finish: (f32: Float32Array, C: number, cStep: number, ldc: number) => void,
  ): void {
    // here the spare columns are zeroed, since the products sum over them
    const { batch, e, tilesH, tilesW, tiles, n, inSize, outSize: gySize } = sizes(s, cin, cout);
    this.reset();
    const X = this.take(inSize);
    const GY = this.take(gySize);
    const V = this.take(e * cin * n);
    const Z = this.take(e * cout * n);
    // D_e [cout, cin] = Z_e [cout, n] V_e^T [n, cin]
    const D = this.planProducts(e, [cout, cin, n], true, [Z, cout * n], [V, cin * n]);
    const [GIN, GGRAD] = [this.take(WINO_FIELDS), this.take(WINO_FIELDS)];
    const { inLists, outLists: gradLists, scratchOf } = this.transformJobs(s, inSize, gySize);
    x.take?.();
    gy.take?.();
    this.commit();
    x.move(this.f32, X);
    gy.move(this.f32, GY);
    for (const [mats, rows] of [
      [V, e * cin],
      [Z, e * cout],
    ]) {
      for (let row = 0; row < rows; row++) this.f32.fill(0, mats + row * n + tiles, mats + (row + 1) * n);
    }
    const common = { batch, tilesH, tilesW, bias: 0, ld: n };
    this.writeWino(GIN, {
      ...common,
      ...x.strides,
      height: s.inH,
      width: s.inW,
      lead: s.lead,
      src: X * 4,
      mats: V * 4,
      matStride: cin * n * 4,
    });
    this.writeWino(GGRAD, {
      ...common,
      ...gy.strides,
      height: s.outH,
      width: s.outW,
      lead: 0,
      src: GY * 4,
      mats: Z * 4,
      matStride: cout * n * 4,
    });
    const fn = FNS[s.r];
    this.splitJobs(inLists, cin, (c0, c1, t) => [fn.input, GIN * 4, c0, c1, scratchOf(t)]);
    this.splitJobs(gradLists, cout, (c0, c1, t) => [fn.gradient, GGRAD * 4, c0, c1, scratchOf(t)]);
    for (const p of D.plans) this.runGemm(p);
    finish(this.f32, D.C, D.cStep, D.ldc);
  }

  /**
   * Job lists for the transform reading `inSize` floats and the one reading or writing `outSize`, and
   * each thread's scratch plane (a byte address).
   */
  private transformJobs(s: WinoShape, inSize: number, outSize: number) {
    const inLists = this.phaseLists(inSize * 4);
    const outLists = this.phaseLists(outSize * 4);
    const floats = paddedHeight(Math.ceil(s.outH / 2)) * paddedWidth(Math.ceil(s.outW / 2));
    const SCRATCH = this.take(Math.max(inLists.length, outLists.length) * floats);
    return { inLists, outLists, scratchOf: (t: number) => (SCRATCH + t * floats) * 4 };
  }

  /**
   * Images [batch, channels, plane] taken into the memory ('in') or written out of it ('out') as they
   * are laid out (see planes).
   */
  protected images(
    way: 'in' | 'out',
    storage: Storage,
    batchMajor: boolean,
    [batch, channels, plane]: number[],
  ): WinoImages {
    const floats = batch * channels * plane;
    const strides = planes(batchMajor, batch, channels, plane);
    return way === 'in'
      ? { strides, move: (_, at) => this.put(storage, at, floats) }
      : { strides, move: (f32, at) => storage.set(f32.subarray(at, at + floats)) };
  }

  private writeWino(at: number, fields: Record<keyof typeof WINO, number>): void {
    for (const [name, index] of Object.entries(WINO))
      this.i32[at + index] = fields[name as keyof typeof WINO];
  }
}

/**
 * A Winograd convolution's sizes: e transformed elements, its tiles (a tile row's last group of four
 * may run past the last tile, into n - tiles spare columns), and the floats of its images.
 */
function sizes(s: WinoShape, cin: number, cout: number) {
  const [tilesH, tilesW] = [Math.ceil(s.outH / 2), Math.ceil(s.outW / 2)];
  const tiles = s.batch * tilesH * tilesW;
  return {
    batch: s.batch,
    e: (s.r + 1) ** 2,
    tilesH,
    tilesW,
    tiles,
    n: tiles + 4,
    inSize: s.batch * cin * s.inH * s.inW,
    outSize: s.batch * cout * s.outH * s.outW,
  };
}

/**
 * Images [batch, channels, plane] as the Winograd transforms address them: plane (b, c) at
 * b imgStride + c chanStride, batch-major (the layers' layout) or channel-major (a product's).
 */
function planes(batchMajor: boolean, batch: number, channels: number, plane: number): Strides {
  return batchMajor
    ? { imgStride: channels * plane, chanStride: plane }
    : { imgStride: plane, chanStride: batch * plane };
}
