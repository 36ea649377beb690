// The WebAssembly kernels: gemm and the convolutions here, on top of the row-wise ones (row-engine.ts),
// each as per-thread lists of calls into the module, run in the arena of arena.ts.
//
// gemm (Goto/BLIS blocking): op(A) is packed into 4-row panels; the columns of C are split between
// threads, and each thread packs KC x NC blocks of op(B) into 8-column panels and runs the macro kernel
// over every MC-row block of packed A. C has its rows padded to a multiple of 8.
// Convolutions build the window matrix (im2col) in the memory, multiply it there, and fold gradients
// back (col2im) there too, so the largest matrix of a conv layer is never copied to or from JavaScript.
import type { Storage } from '../../tensor.ts';
import type { ConvForwardArgs, ConvGeometry, GemmArgs } from '../registry.ts';
import { validRange } from '../ts-conv.ts';
import { MR, NR } from './gemm-module.ts';
import { GEO, GEO_FIELDS, ROW_FIELDS } from './conv-module.ts';
import { FN, JOB_INTS, roundUp } from './arena.ts';
import { AttentionEngine } from './attention-engine.ts';

const KC_MAX = 512; // depth of a packed block: 512 x 8 floats of B (16 KB) stay in L1
const NC = 512; // columns per packed block of B
const MC = 128; // rows of packed A per macro call

/** A gemm laid out in the memory: operands at float offsets A and B, result at C (row stride ldc). */
type GemmPlan = {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  A: number;
  B: number;
  C: number;
  ldc: number;
  Ap: number;
  KC: number;
  split: [number, number][];
  buffers: number[];
  lists: number[];
};

export class WasmEngine extends AttentionEngine {
  // ---- gemm ----

  /** Takes the memory a gemm on operands already at A and B needs. */
  private planGemm(
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    A: number,
    B: number,
  ): GemmPlan {
    const kcBlocks = Math.ceil(k / KC_MAX);
    const KC = Math.ceil(k / kcBlocks);
    const mPad = roundUp(m, MR);
    const ldc = roundUp(n, NR);
    // threads only pay for themselves above ~128^3 (a hand-off costs a few microseconds)
    const split = splitColumns(n, n >= 2 * NR ? this.threadsFor(m * n * k, 1 << 21) : 1);
    // per (column block, depth block): the B packing, an edge panel (zero + pack), and one macro call
    // per MC rows
    const packJobs = 3;
    const perThread = split.map(
      ([n0, n1]) => Math.ceil((n1 - n0) / NC) * kcBlocks * (packJobs + Math.ceil(mPad / MC)),
    );
    const lists = perThread.map((count) => this.take(1 + count * JOB_INTS));
    const C = this.take(mPad * ldc);
    const Ap = this.take(mPad * k);
    const buffers = split.map(() => this.take(KC * NC));
    return { m, n, k, transA, transB, A, B, C, ldc, Ap, KC, split, buffers, lists };
  }

  /** Runs a planned gemm (after commit): C = op(A) op(B), or C += op(A) op(B) when `accumulate`. */
  private runGemm(g: GemmPlan, accumulate = false): void {
    const { m, n, k, transA, transB, A, B, C, ldc, Ap, KC } = g;
    const mPad = roundUp(m, MR);
    // pack all of op(A), here: for each depth block, panels of MR rows, k-major, zero-padded rows
    const sai = transA ? 1 : k; // op(A)(i, p) = A[i * sai + p * sap]
    const sap = transA ? m : 1;
    // whole panels of a row-major A by vector transposes, the rest (and a transposed A) one by one
    const vectorPanels = transA ? 0 : Math.floor(m / MR);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      if (vectorPanels > 0) this.exports.packT4((A + pc) * 4, k * 4, kc, vectorPanels, (Ap + pc * mPad) * 4);
      for (let p = vectorPanels * MR, d = Ap + pc * mPad + p * kc; p < mPad; p += MR, d += kc * MR) {
        const rows = Math.min(MR, m - p);
        if (rows < MR) this.f32.fill(0, d, d + kc * MR);
        this.exports.packStrided((A + p * sai + pc * sap) * 4, sap * 4, sai * 4, kc, rows, d * 4, MR * 4);
      }
    }
    const sbp = transB ? 1 : n; // op(B)(p, j) = B[p * sbp + j * sbj]
    const sbj = transB ? k : 1;
    g.split.forEach(([n0, n1], t) => {
      const calls: number[][] = [];
      const buf = g.buffers[t];
      for (let jc = n0; jc < n1; jc += NC) {
        const nc = Math.min(NC, n1 - jc);
        const full = Math.floor(nc / NR);
        const rest = nc - full * NR;
        for (let pc = 0; pc < k; pc += KC) {
          const kc = Math.min(KC, k - pc);
          if (!transB) calls.push([FN.packRows, (B + pc * n + jc) * 4, n * 4, kc, full, buf * 4]);
          else calls.push([FN.packT8, (B + jc * k + pc) * 4, k * 4, kc, full, buf * 4]);
          if (rest > 0) {
            const d = buf + full * kc * NR;
            calls.push([FN.zero, d * 4, kc * NR * 4]);
            const src = (B + pc * sbp + (jc + full * NR) * sbj) * 4;
            calls.push([FN.packStrided, src, sbp * 4, sbj * 4, kc, rest, d * 4, NR * 4]);
          }
          for (let ic = 0; ic < mPad; ic += MC) {
            const mc = Math.min(MC, mPad - ic);
            const ap = (Ap + pc * mPad + ic * kc) * 4;
            calls.push([
              FN.macro,
              ap,
              buf * 4,
              (C + ic * ldc + jc) * 4,
              mc,
              roundUp(nc, NR),
              kc,
              ldc,
              pc > 0 || accumulate ? 1 : 0,
            ]);
          }
        }
      }
      this.writeJobs(g.lists[t], calls);
    });
    this.runPhase(g.lists);
  }

  gemm({ a, b, c, m, n, k, transA, transB, accumulate }: GemmArgs): void {
    if (m === 0 || n === 0) return;
    if (k === 0) {
      if (!accumulate) c.fill(0, 0, m * n);
      return;
    }
    this.reset();
    const A = this.take(m * k);
    const B = this.take(k * n);
    const plan = this.planGemm(m, n, k, transA, transB, A, B);
    this.commit();
    this.put(a, A, m * k);
    this.put(b, B, k * n);
    this.runGemm(plan);
    this.getRows(plan.C, m, n, plan.ldc, c, accumulate);
  }

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
  conv2dBackwardFilter(a: ConvGeometry & { x: Storage; gy: Storage; gw: Storage; cout: number }): void {
    this.reset();
    const { K, N, X, TABLE, GEOP } = this.takeConv(a);
    const GY = this.take(a.cout * N);
    const COLS = this.take(K * N);
    const lists = this.phaseLists(K * N);
    const plan = this.planGemm(a.cout, K, N, false, true, GY, COLS);
    this.commit();
    this.put(a.x, X, a.batch * a.channels * a.height * a.width);
    this.put(a.gy, GY, a.cout * N);
    this.im2col(a, this.writeGeometry(a, X, COLS, N, TABLE, GEOP), lists);
    this.runGemm(plan);
    this.getRows(plan.C, a.cout, K, plan.ldc, a.gw, false);
  }

  /** gx [B, C, H, W] = col2im(W^T [K, Cout] gy [Cout, N]). */
  conv2dBackwardInput(a: ConvGeometry & { w: Storage; gy: Storage; gx: Storage; cout: number }): void {
    this.reset();
    const { K, N, X, TABLE, GEOP } = this.takeConv(a);
    const W = this.take(a.cout * K);
    const GY = this.take(a.cout * N);
    const plan = this.planGemm(K, N, a.cout, true, false, W, GY);
    const lists = this.phaseLists(K * N);
    this.commit();
    const size = a.batch * a.channels * a.height * a.width;
    this.put(a.w, W, a.cout * K);
    this.put(a.gy, GY, a.cout * N);
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
}

/** Splits n columns into `parts` ranges whose boundaries are multiples of NR. */
function splitColumns(n: number, parts: number): [number, number][] {
  const panels = Math.ceil(n / NR);
  const out: [number, number][] = [];
  let p0 = 0;
  for (let t = 0; t < parts; t++) {
    const p1 = Math.round((panels * (t + 1)) / parts);
    out.push([Math.min(n, p0 * NR), Math.min(n, p1 * NR)]);
    p0 = p1;
  }
  return out.filter(([a, b]) => b > a);
}
