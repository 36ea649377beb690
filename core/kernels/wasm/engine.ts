// The WebAssembly convolutions, on top of gemm (gemm-engine.ts), attention and the row-wise kernels,
// each as per-thread lists of calls into the module, run in the arena of arena.ts.
// Convolutions build the window matrix (im2col) in the memory, multiply it there, and fold gradients
// back (col2im) there too, so the largest matrix of a conv layer is never copied to or from JavaScript.
// The 3x3 convolutions that keep the image size run as Winograd F(2x2, 3x3) instead, forward and for
// both gradients, and the 4x4 stride-2 ones as F(2x2, 2x2) on their four phases (winograd-engine.ts):
// 2.25 and 1.78 times fewer multiplies.
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
import { WinogradEngine, type WinoImages, type WinoShape } from './winograd-engine.ts';
import {
  transformFilterGradient,
  transformPhaseFilterGradient,
  transformPhaseWeights,
  transformWeights,
} from './winograd-weights.ts';

/**
 * Fewer channels than this on either side, or less work per image (pixels x Cin x Cout) than the other,
 * and the transforms and the sixteen products' set-up cost more than the multiplies saved (measured:
 * 8 channels at 8x8 on 2 to 8 images ran 1.1-2.3x slower than im2col, 16 channels at 14x14 on 8 images
 * 1.4x faster). Per image, not per call: a batch split between threads must take the same path.
 */
const WINOGRAD_MIN_CHANNELS = 8;
const WINOGRAD_MIN_WORK = 1 << 15;

export class WasmEngine extends WinogradEngine {
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
    const bias = a.bias ?? null;
    if (winogradFits(a, a.channels, a.cout)) {
      const x = this.images('in', a.x, true, [a.batch, a.channels, a.height * a.width]);
      const out = this.images('out', a.out, !!a.batchMajor, [a.batch, a.cout, a.height * a.width]);
      const U = (f32: Float32Array, at: number) => transformWeights(a.w, a.cout, a.channels, false, f32, at);
      return this.winograd(sameShape(a), a.channels, a.cout, U, bias, x, out);
    }
    if (phasesFit(a)) {
      const plane = a.outH * a.outW;
      const out = this.images('out', a.out, !!a.batchMajor, [a.batch, a.cout, plane]);
      const U = (f32: Float32Array, at: number) =>
        transformPhaseWeights(a.w, a.cout, a.channels, false, f32, at);
      return this.winograd(phaseShape(a, 0), 4 * a.channels, a.cout, U, bias, this.phases('in', a, a.x), out);
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
    const gw = a.gw as Float32Array;
    if (winogradFits(a, a.channels, a.cout)) {
      const plane = a.height * a.width;
      const x = this.images('in', a.x, true, [a.batch, a.channels, plane]);
      const gy = this.images('in', a.gy, !!a.gyBatchMajor, [a.batch, a.cout, plane]);
      return this.winogradFilterGradient(sameShape(a), a.channels, a.cout, x, gy, (f32, C, step, ldc) =>
        transformFilterGradient(f32, C, step, ldc, a.cout, a.channels, gw),
      );
    }
    if (phasesFit(a)) {
      const plane = a.outH * a.outW;
      const gy = this.images('in', a.gy, !!a.gyBatchMajor, [a.batch, a.cout, plane]);
      const shape = phaseShape(a, 0);
      return this.winogradFilterGradient(
        shape,
        4 * a.channels,
        a.cout,
        this.phases('in', a, a.x),
        gy,
        (f32, C, step, ldc) => transformPhaseFilterGradient(f32, C, step, ldc, a.cout, a.channels, gw),
      );
    }
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
      const plane = a.height * a.width;
      const gy = this.images('in', a.gy, !!a.gyBatchMajor, [a.batch, a.cout, plane]);
      const gx = this.images('out', a.gx, true, [a.batch, a.channels, plane]);
      const U = (f32: Float32Array, at: number) => transformWeights(a.w, a.channels, a.cout, true, f32, at);
      return this.winograd(sameShape(a), a.cout, a.channels, U, null, gy, gx);
    }
    if (phasesFit(a)) {
      // the adjoint of the phases' 2x2 convolution: a "full" 2x2 convolution of gy, whose outputs are
      // gx's four phases
      const plane = a.outH * a.outW;
      const gy = this.images('in', a.gy, !!a.gyBatchMajor, [a.batch, a.cout, plane]);
      const U = (f32: Float32Array, at: number) =>
        transformPhaseWeights(a.w, a.cout, a.channels, true, f32, at);
      return this.winograd(
        phaseShape(a, 1),
        a.cout,
        4 * a.channels,
        U,
        null,
        gy,
        this.phases('out', a, a.gx),
      );
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
   * Images [B, C, H, W] (batch-major) as their four phases in the memory, channel-major: the window
   * matrix of 2x2 windows at stride 2 and padding 1, whose row 4c + 2p + q is
   * P_pq[b, m, n] = x[b, c, 2m + p - 1, 2n + q - 1] (zero outside the image). 'in' takes x there by
   * im2col; 'out' puts the phases back into gx by col2im (onto zeros: the windows do not overlap).
   */
  private phases(way: 'in' | 'out', a: ConvGeometry, storage: Storage): WinoImages {
    const geo = phaseGeometry(a);
    const N = a.batch * geo.outH * geo.outW;
    const size = sizeOf(a, a.channels);
    let [X, TABLE, GEOP, lists] = [0, 0, 0, [] as number[]];
    return {
      strides: { imgStride: geo.outH * geo.outW, chanStride: N },
      take: () => {
        ({ X, TABLE, GEOP } = this.takeConv(geo));
        lists = this.phaseLists(4 * a.channels * N);
      },
      move: (f32, at) => {
        const geoPtr = this.writeGeometry(geo, X, at, N, TABLE, GEOP);
        if (way === 'in') {
          this.put(storage, X, size);
          return this.im2col(geo, geoPtr, lists);
        }
        f32.fill(0, X, X + size);
        this.splitJobs(lists, a.channels, (c0, c1) => [FN.col2im, geoPtr, 4 * c0, 4 * c1]);
        storage.set(f32.subarray(X, X + size));
      },
    };
  }

  /** Puts gy at GY as the product's [Cout, B P], moving whole planes when it comes batch-major. */
  private putGy(a: ConvBackwardFilterArgs | ConvBackwardInputArgs, GY: number): void {
    const plane = a.outH * a.outW;
    if (!a.gyBatchMajor || a.batch === 1) return this.put(a.gy, GY, a.cout * a.batch * plane);
    toChannelMajor(a.gy, a.batch, a.cout, plane, this.f32, GY);
  }
}

/** Winograd F(2x2, 3x3) computes 3x3 convolutions at stride 1 whose padding of 1 keeps the image size. */
function winogradFits(g: ConvGeometry, cin: number, cout: number): boolean {
  const shape =
    g.kh === 3 && g.kw === 3 && g.strideH === 1 && g.strideW === 1 && g.padH === 1 && g.padW === 1;
  return shape && worthTransforming(g.height * g.width, cin, cout);
}

/**
 * 4x4 convolutions at stride 2 with padding 1 (the UNet's down-sampling, and the adjoint of its
 * up-sampling) run as F(2x2, 2x2) on their four phases, above the same sizes as winogradFits, counted
 * on the phases' 2x2 convolution: 4 Cin channels on the output's grid, channels
 * counted per side as the layer's.
 */
function phasesFit(g: ConvGeometry & { cout: number }): boolean {
  const shape =
    g.kh === 4 && g.kw === 4 && g.strideH === 2 && g.strideW === 2 && g.padH === 1 && g.padW === 1;
  return shape && worthTransforming(4 * g.outH * g.outW, g.channels, g.cout);
}

/**
 * Enough channels on each side, and work per image (points x Cin x Cout: the pixels, or for the phases
 * 4 per output pixel) to pay for the transforms.
 */
function worthTransforming(points: number, cin: number, cout: number): boolean {
  return Math.min(cin, cout) >= WINOGRAD_MIN_CHANNELS && points * cin * cout >= WINOGRAD_MIN_WORK;
}

const sizeOf = (g: ConvGeometry, channels: number) => g.batch * channels * g.height * g.width;

/** The 3x3 same-size convolution as Winograd reads it: padding 1 before, the size kept. */
function sameShape(g: ConvGeometry): WinoShape {
  const { batch, height, width } = g;
  return { r: 3, batch, inH: height, inW: width, outH: height, outW: width, lead: 1 };
}

/**
 * The phases' 2x2 convolution: from phase planes of (outH + 1) x (outW + 1) to the output (lead 0), or
 * its adjoint from gy (outH x outW, lead 1) to gx's phase planes.
 */
function phaseShape(g: ConvGeometry, lead: 0 | 1): WinoShape {
  const [small, big] = [
    [g.outH, g.outW],
    [g.outH + 1, g.outW + 1],
  ];
  const [[inH, inW], [outH, outW]] = lead === 0 ? [big, small] : [small, big];
  return { r: 2, batch: g.batch, inH, inW, outH, outW, lead };
}

/** The 2x2 windows at stride 2 and padding 1 whose im2col matrix is a 4x4 stride-2 layer's phases. */
function phaseGeometry(g: ConvGeometry): ConvGeometry {
  const windows = { kh: 2, kw: 2, strideH: 2, strideW: 2, padH: 1, padW: 1 };
  return { ...g, ...windows, outH: g.outH + 1, outW: g.outW + 1 };
}
