// The WebAssembly convolutions, on top of gemm (gemm-engine.ts), attention and the row-wise kernels,
// each as per-thread lists of calls into the module, run in the arena of arena.ts.
// Convolutions build the window matrix (im2col) in the memory, multiply it there, and fold gradients
// back (col2im) there too, so the largest matrix of a conv layer is never copied to or from JavaScript.
// The 3x3 convolutions that keep the image size run as Winograd F(2x2, 3x3) instead, forward and for
// both gradients (winograd-module.ts): 2.25 times fewer multiplies.
import type { Storage } from '../../tensor.ts';
import type {
  ConvBackwardFilterArgs,
  ConvBackwardInputArgs,
  ConvForwardArgs,
  ConvGeometry,
} from '../registry.ts';
import { toChannelMajor, validRange } from '../ts-conv.ts';
import { GEO, GEO_FIELDS, ROW_FIELDS } from './conv-module.ts';
import { FN } from './arena.ts';
import { GemmEngine } from './gemm-engine.ts';
import { paddedHeight, paddedWidth, WINO, WINO_FIELDS } from './winograd-module.ts';
import { transformFilterGradient, transformWeights } from './winograd-weights.ts';

/**
 * Fewer channels than this on either side, or less work per image (pixels x Cin x Cout) than the other,
 * and the transforms and the sixteen products' set-up cost more than the multiplies saved (measured:
 * 8 channels at 8x8 on 2 to 8 images ran 1.1-2.3x slower than im2col, 16 channels at 14x14 on 8 images
 * 1.4x faster). Per image, not per call: a batch split between threads must take the same path.
 */
const WINOGRAD_MIN_CHANNELS = 8;
const WINOGRAD_MIN_WORK = 1 << 15;

/** Images in the memory, as the Winograd transforms address them. */
type Planes = { storage: Storage; imgStride: number; chanStride: number };

export class WasmEngine extends GemmEngine {
  // ---- convolution ----

  /**
   * Lays out the geometry block and row table for images at X and a window matrix at COLS with row
   * stride `n`, and returns the geometry's byte address.
   */
  private writeGeometry(
    geo: ConvGeometry,
    X: number,
    COLS: number,
    n: number,
    TABLE: number,
    GEOP: number,
  ): number {
    const rows = geo.channels * geo.kh * geo.kw;
    const i32 = this.i32;
    const fields: Record<keyof typeof GEO, number> = {
      x: X * 4,
      cols: COLS * 4,
      table: TABLE * 4,
      batch: geo.batch,
      chw: geo.channels * geo.height * geo.width,
      hw: geo.height * geo.width,
      width: geo.width,
      strideH: geo.strideH,
      strideW: geo.strideW,
      padH: geo.padH,
      padW: geo.padW,
      outH: geo.outH,
      outW: geo.outW,
      n,
    };
    for (const [name, index] of Object.entries(GEO)) i32[GEOP + index] = fields[name as keyof typeof GEO];
    for (let r = 0; r < rows; r++) {
      const c = Math.floor(r / (geo.kh * geo.kw));
      const i = Math.floor(r / geo.kw) % geo.kh;
      const j = r % geo.kw;
      const [oyLo, oyHi] = validRange(i, geo.height, geo.strideH, geo.padH, geo.outH);
      const [oxLo, oxHi] = validRange(j, geo.width, geo.strideW, geo.padW, geo.outW);
      i32.set([c, i, j, oyLo, oyHi, oxLo, oxHi], TABLE + r * ROW_FIELDS);
    }
    return GEOP * 4;
  }

  /** Takes the arena space for one conv's images, window matrix, geometry and row table. */
  private takeConv(geo: ConvGeometry) {
    const K = geo.channels * geo.kh * geo.kw;
    const N = geo.batch * geo.outH * geo.outW;
    const X = this.take(geo.batch * geo.channels * geo.height * geo.width);
    const TABLE = this.take(K * ROW_FIELDS);
    const GEOP = this.take(GEO_FIELDS);
    return { K, N, X, TABLE, GEOP };
  }

  /** Fills cols (rows of K split between threads) from the images at X. */
  private im2col(geo: ConvGeometry, geoPtr: number, lists: number[]): void {
    const K = geo.channels * geo.kh * geo.kw;
    const parts = lists.length;
    lists.forEach((at, t) =>
      this.writeJobs(at, [
        [FN.im2col, geoPtr, Math.floor((K * t) / parts), Math.floor((K * (t + 1)) / parts)],
      ]),
    );
    this.runPhase(lists);
  }

  /**
   * out [Cout, N] = W [Cout, K] im2col(x) [K, N] (+ bias per row), copied out as is or batch-major. The
   * bias is laid in the product's rows first and the gemm adds onto it; the batch-major copy moves whole
   * planes. Either way the output is copied once.
   */
  conv2dForward(a: ConvForwardArgs): void {
    if (winogradFits(a, a.channels, a.cout)) {
      const x = planes(a.x, true, a, a.channels);
      const out = planes(a.out, !!a.batchMajor, a, a.cout);
      return this.winograd(a, a.channels, a.cout, a.w, false, a.bias ?? null, x, out);
    }
    this.reset();
    const { K, N, X, TABLE, GEOP } = this.takeConv(a);
    const W = this.take(a.cout * K);
    const COLS = this.take(K * N);
    const lists = this.phaseLists(K * N);
    const plan = this.planGemm(a.cout, N, K, false, false, W, COLS);
    this.commit();
    this.put(a.x, X, a.batch * a.channels * a.height * a.width);
    this.put(a.w, W, a.cout * K);
    const { C, ldc } = plan;
    const f32 = this.f32;
    if (a.bias) for (let c = 0; c < a.cout; c++) f32.fill(a.bias[c], C + c * ldc, C + c * ldc + N);
    this.im2col(a, this.writeGeometry(a, X, COLS, N, TABLE, GEOP), lists);
    this.runGemm(plan, !!a.bias);
    if (!a.batchMajor) return this.getRows(C, a.cout, N, ldc, a.out, false);
    const plane = a.outH * a.outW;
    for (let c = 0; c < a.cout; c++) {
      for (let b = 0; b < a.batch; b++) {
        const from = C + c * ldc + b * plane;
        a.out.set(f32.subarray(from, from + plane), (b * a.cout + c) * plane);
      }
    }
  }

  /** gw [Cout, K] = gy [Cout, N] im2col(x)^T. */
  conv2dBackwardFilter(a: ConvBackwardFilterArgs): void {
    if (winogradFits(a, a.channels, a.cout)) return this.winogradFilterGradient(a);
    this.reset();
    const { K, N, X, TABLE, GEOP } = this.takeConv(a);
    const GY = this.take(a.cout * N);
    const COLS = this.take(K * N);
    const lists = this.phaseLists(K * N);
    const plan = this.planGemm(a.cout, K, N, false, true, GY, COLS);
    this.commit();
    this.put(a.x, X, a.batch * a.channels * a.height * a.width);
    this.putGy(a, GY);
    this.im2col(a, this.writeGeometry(a, X, COLS, N, TABLE, GEOP), lists);
    this.runGemm(plan);
    this.getRows(plan.C, a.cout, K, plan.ldc, a.gw, false);
  }

  /** gx [B, C, H, W] = col2im(W^T [K, Cout] gy [Cout, N]). */
  conv2dBackwardInput(a: ConvBackwardInputArgs): void {
    if (winogradFits(a, a.cout, a.channels)) {
      // the adjoint is itself a 3x3 convolution, of gy (in either layout) with the rotated filters
      const gy = planes(a.gy, !!a.gyBatchMajor, a, a.cout);
      const gx = planes(a.gx, true, a, a.channels);
      return this.winograd(a, a.cout, a.channels, a.w, true, null, gy, gx);
    }
    this.reset();
    const { K, N, X, TABLE, GEOP } = this.takeConv(a);
    const W = this.take(a.cout * K);
    const GY = this.take(a.cout * N);
    const plan = this.planGemm(K, N, a.cout, true, false, W, GY);
    const lists = this.phaseLists(K * N);
    this.commit();
    const size = a.batch * a.channels * a.height * a.width;
    this.put(a.w, W, a.cout * K);
    this.putGy(a, GY);
    this.f32.fill(0, X, X + size); // col2im adds onto zeros: nothing of gx needs copying in
    this.runGemm(plan);
    // the product's rows have stride ldc; col2im reads them with that stride. Work is split by whole
    // channels so that no two threads add into the same pixel.
    const geoPtr = this.writeGeometry(a, X, plan.C, plan.ldc, TABLE, GEOP);
    const taps = a.kh * a.kw;
    const parts = lists.length;
    lists.forEach((at, t) => {
      const c0 = Math.floor((a.channels * t) / parts);
      const c1 = Math.floor((a.channels * (t + 1)) / parts);
      this.writeJobs(at, [[FN.col2im, geoPtr, c0 * taps, c1 * taps]]);
    });
    this.runPhase(lists);
    a.gx.set(this.f32.subarray(X, X + size));
  }

  /**
   * A 3x3 convolution at stride 1 and padding 1 from `cin` channels of `src` to `cout` of `dst`, as
   * Winograd F(2x2, 3x3): the input transform, 16 products U_e V_e, the output transform (+ bias).
   * `adjoint` convolves with w's filters swapped and rotated, as the input gradient does (transformWeights).
   */
  private winograd(
    g: ConvGeometry,
    cin: number,
    cout: number,
    w: Storage,
    adjoint: boolean,
    bias: Storage | null,
    src: Planes,
    dst: Planes,
  ): void {
    const { batch, height, width } = g;
    const [tilesH, tilesW] = [Math.ceil(height / 2), Math.ceil(width / 2)];
    const tiles = batch * tilesH * tilesW;
    const n = tiles + 4; // spare columns: a row's last group of four tiles may run past the last tile
    const size = (c: number) => batch * c * height * width;
    this.reset();
    const X = this.take(size(cin));
    const OUT = this.take(size(cout));
    const U = this.take(16 * cout * cin);
    const V = this.take(16 * cin * n);
    // M_e [cout, n] = U_e [cout, cin] V_e [cin, n]
    const M = this.planProducts(16, [cout, n, cin], false, [U, cout * cin], [V, cin * n]);
    const BIAS = this.take(cout);
    const [GIN, GOUT] = [this.take(WINO_FIELDS), this.take(WINO_FIELDS)];
    const inLists = this.phaseLists(size(cin) * 4);
    const outLists = this.phaseLists(size(cout) * 4);
    const scratch = Math.max(inLists.length, outLists.length);
    const SCRATCH = this.take(scratch * paddedHeight(tilesH) * paddedWidth(tilesW));
    this.commit();
    this.put(src.storage, X, size(cin));
    transformWeights(w, cout, cin, adjoint, this.f32, U);
    if (bias) this.put(bias, BIAS, cout);
    else this.f32.fill(0, BIAS, BIAS + cout);
    const common = { batch, height, width, tilesH, tilesW, bias: BIAS * 4 };
    this.writeWino(GIN, { ...common, ...src, src: X * 4, mats: V * 4, matStride: cin * n * 4, ld: n });
    this.writeWino(GOUT, {
      ...common,
      ...dst,
      src: OUT * 4,
      mats: M.C * 4,
      matStride: M.cStep * 4,
      ld: M.ldc,
    });
    const scratchOf = (t: number) => (SCRATCH + t * paddedHeight(tilesH) * paddedWidth(tilesW)) * 4;
    this.splitJobs(inLists, cin, (c0, c1, t) => [FN.winogradInput, GIN * 4, c0, c1, scratchOf(t)]);
    for (const p of M.plans) this.runGemm(p);
    this.splitJobs(outLists, cout, (c0, c1, t) => [FN.winogradOutput, GOUT * 4, c0, c1, scratchOf(t)]);
    dst.storage.set(this.f32.subarray(OUT, OUT + size(cout)));
  }

  /**
   * gw of a 3x3 convolution at stride 1 and padding 1 as Winograd F(2x2, 3x3)'s adjoint:
   * gw = G^T [sum over tiles of (A gy A^T) ⊙ (B^T d B)] G, the sum being 16 products Z_e V_e^T.
   */
  private winogradFilterGradient(a: ConvBackwardFilterArgs): void {
    const { batch, height, width, channels: cin, cout } = a;
    const [tilesH, tilesW] = [Math.ceil(height / 2), Math.ceil(width / 2)];
    const tiles = batch * tilesH * tilesW;
    const n = tiles + 4; // as in winograd(); here the spare columns are zeroed, since products sum over them
    const plane = height * width;
    this.reset();
    const X = this.take(batch * cin * plane);
    const GY = this.take(batch * cout * plane);
    const V = this.take(16 * cin * n);
    const Z = this.take(16 * cout * n);
    // D_e [cout, cin] = Z_e [cout, n] V_e^T [n, cin]
    const D = this.planProducts(16, [cout, cin, n], true, [Z, cout * n], [V, cin * n]);
    const [GIN, GGRAD] = [this.take(WINO_FIELDS), this.take(WINO_FIELDS)];
    const inLists = this.phaseLists(batch * cin * plane * 4);
    const gradLists = this.phaseLists(batch * cout * plane * 4);
    const scratchFloats = paddedHeight(tilesH) * paddedWidth(tilesW);
    const SCRATCH = this.take(Math.max(inLists.length, gradLists.length) * scratchFloats);
    this.commit();
    this.put(a.x, X, batch * cin * plane);
    this.put(a.gy, GY, batch * cout * plane);
    for (const [mats, rows] of [
      [V, 16 * cin],
      [Z, 16 * cout],
    ]) {
      for (let r = 0; r < rows; r++) this.f32.fill(0, mats + r * n + tiles, mats + (r + 1) * n);
    }
    const common = { batch, height, width, tilesH, tilesW, bias: 0, ld: n };
    const x = planes(a.x, true, a, cin);
    const gy = planes(a.gy, !!a.gyBatchMajor, a, cout);
    this.writeWino(GIN, { ...common, ...x, src: X * 4, mats: V * 4, matStride: cin * n * 4 });
    this.writeWino(GGRAD, { ...common, ...gy, src: GY * 4, mats: Z * 4, matStride: cout * n * 4 });
    const scratchOf = (t: number) => (SCRATCH + t * scratchFloats) * 4;
    this.splitJobs(inLists, cin, (c0, c1, t) => [FN.winogradInput, GIN * 4, c0, c1, scratchOf(t)]);
    this.splitJobs(gradLists, cout, (c0, c1, t) => [FN.winogradGradient, GGRAD * 4, c0, c1, scratchOf(t)]);
    for (const p of D.plans) this.runGemm(p);
    transformFilterGradient(this.f32, D.C, D.cStep, D.ldc, cout, cin, a.gw as Float32Array);
  }

  /** Puts gy at GY as the product's [Cout, B P], moving whole planes when it comes batch-major. */
  private putGy(a: ConvBackwardFilterArgs | ConvBackwardInputArgs, GY: number): void {
    const plane = a.outH * a.outW;
    if (!a.gyBatchMajor || a.batch === 1) return this.put(a.gy, GY, a.cout * a.batch * plane);
    toChannelMajor(a.gy, a.batch, a.cout, plane, this.f32, GY);
  }

  private writeWino(at: number, fields: Record<keyof typeof WINO, number>): void {
    for (const [name, index] of Object.entries(WINO))
      this.i32[at + index] = fields[name as keyof typeof WINO];
  }
}

/** Winograd F(2x2, 3x3) computes 3x3 convolutions at stride 1 whose padding of 1 keeps the image size. */
function winogradFits(g: ConvGeometry, cin: number, cout: number): boolean {
  const shape =
    g.kh === 3 && g.kw === 3 && g.strideH === 1 && g.strideW === 1 && g.padH === 1 && g.padW === 1;
  const work = g.height * g.width * cin * cout;
  return shape && Math.min(cin, cout) >= WINOGRAD_MIN_CHANNELS && work >= WINOGRAD_MIN_WORK;
}

/**
 * Images [batch, channels, height, width] as the Winograd transforms address them: plane (b, c) at
 * b imgStride + c chanStride, batch-major (the layers' layout) or channel-major (a product's).
 */
function planes(storage: Storage, batchMajor: boolean, g: ConvGeometry, channels: number): Planes {
  const plane = g.height * g.width;
  return batchMajor
    ? { storage, imgStride: channels * plane, chanStride: plane }
    : { storage, imgStride: plane, chanStride: g.batch * plane };
}
