// gemm in WebAssembly (the Goto/BLIS blocking): op(A) is packed into 4-row panels; the columns of C are
// split between threads, and each thread packs KC x NC blocks of op(B) into 8-column panels and runs
// the macro kernel over every MC-row block of packed A. C has its rows padded to a multiple of 8.
// The convolutions (engine.ts) plan and run their products through the same two methods.
import type { GemmArgs } from '../registry.ts';
import { KERNEL_EXPORTS, MR, NR } from './gemm-module.ts';
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
  /** Job lists that pack op(A) on every thread, one range of depth blocks each; empty: packed here. */
  packLists: number[];
};

export class GemmEngine extends AttentionEngine {
  // ---- gemm ----

  /** Takes the memory a gemm on operands already at A and B needs. */
  protected planGemm(
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    A: number,
    B: number,
    at?: { C?: number; like?: GemmPlan },
  ): GemmPlan {
    // a product of the same shape run before or after this one lends its packing space and job lists
    const like = at?.like;
    if (like) {
      if (like.m !== m || like.n !== n || like.k !== k || like.transA !== transA || like.transB !== transB)
        throw new Error('planGemm: a product lends its space only to one of the same shape');
      return { ...like, A, B, C: at.C ?? this.take(roundUp(m, MR) * like.ldc) };
    }
    const kcBlocks = Math.ceil(k / KC_MAX);
    const KC = Math.ceil(k / kcBlocks);
    const mPad = roundUp(m, MR);
    const ldc = productLd(n);
    // threads only pay for themselves above ~128^3 (a hand-off costs a few microseconds)
    const split = splitColumns(n, n >= 2 * NR ? this.threadsFor(m * n * k, 1 << 21) : 1);
    // per (column block, depth block): the B packing, an edge panel (zero + pack), and one macro call
    // per MC rows
    const packJobs = 3;
    const perThread = split.map(
      ([n0, n1]) => Math.ceil((n1 - n0) / NC) * kcBlocks * (packJobs + Math.ceil(mPad / MC)),
    );
    const lists = perThread.map((count) => this.take(1 + count * JOB_INTS));
    const C = at?.C ?? this.take(mPad * ldc);
    const Ap = this.take(mPad * k);
    const buffers = split.map(() => this.take(KC * NC));
    // a deep A (a weight gradient's) is packed by all threads, each a share of its depth blocks
    const packThreads = kcBlocks > 1 ? Math.min(kcBlocks, this.threadsFor(mPad * k, 1 << 18)) : 1;
    const jobsPerBlock = 1 + 2 * (mPad / MR);
    const packLists =
      packThreads > 1
        ? Array.from({ length: packThreads }, () =>
            this.take(1 + Math.ceil(kcBlocks / packThreads) * jobsPerBlock * JOB_INTS),
          )
        : [];
    return { m, n, k, transA, transB, A, B, C, ldc, Ap, KC, split, buffers, lists, packLists };
  }

  /**
   * `count` products of one shape run one after another (C_e = op(A_e) op(B_e), A_e at A + e aStep, B_e
   * at B + e bStep), sharing packing space and job lists, their results side by side from float offset
   * C, each cStep floats after the last (rows of ldc floats, padded as planGemm pads them).
   */
  protected planProducts(
    count: number,
    [m, n, k]: [number, number, number],
    transB: boolean,
    [A, aStep]: [number, number],
    [B, bStep]: [number, number],
  ): { plans: GemmPlan[]; C: number; cStep: number; ldc: number } {
    const ldc = productLd(n);
    const cStep = roundUp(m, MR) * ldc;
    const C = this.take(count * cStep);
    const first = this.planGemm(m, n, k, false, transB, A, B, { C });
    const plans = [first];
    for (let e = 1; e < count; e++) {
      plans.push(this.planGemm(m, n, k, false, transB, A + e * aStep, B + e * bStep, { C: C + e * cStep, like: first })); // prettier-ignore
    }
    return { plans, C, cStep, ldc };
  }

  /** Runs a planned gemm (after commit): C = op(A) op(B), or C += op(A) op(B) when `accumulate`. */
  protected runGemm(g: GemmPlan, accumulate = false): void {
    const { m, n, k, transA, transB, A, B, C, ldc, Ap, KC } = g;
    const mPad = roundUp(m, MR);
    // pack all of op(A): for each depth block, panels of MR rows, k-major, zero-padded rows
    const sai = transA ? 1 : k; // op(A)(i, p) = A[i * sai + p * sap]
    const sap = transA ? m : 1;
    // whole panels of a row-major A by vector transposes, the rest (and a transposed A) one by one
    const vectorPanels = transA ? 0 : Math.floor(m / MR);
    const packBlock = (pc: number): number[][] => {
      const calls: number[][] = [];
      const kc = Math.min(KC, k - pc);
      if (vectorPanels > 0)
        calls.push([FN.packT4, (A + pc) * 4, k * 4, kc, vectorPanels, (Ap + pc * mPad) * 4]);
      for (let p = vectorPanels * MR, d = Ap + pc * mPad + p * kc; p < mPad; p += MR, d += kc * MR) {
        const rows = Math.min(MR, m - p);
        if (rows < MR) calls.push([FN.zero, d * 4, kc * MR * 4]);
        calls.push([FN.packStrided, (A + p * sai + pc * sap) * 4, sap * 4, sai * 4, kc, rows, d * 4, MR * 4]);
      }
      return calls;
    };
    const blocks = Array.from({ length: Math.ceil(k / KC) }, (_, i) => i * KC);
    if (g.packLists.length > 0) {
      const parts = g.packLists.length;
      g.packLists.forEach((at, t) => {
        const mine = blocks.slice(
          Math.floor((blocks.length * t) / parts),
          Math.floor((blocks.length * (t + 1)) / parts),
        );
        this.writeJobs(at, mine.flatMap(packBlock));
      });
      this.runPhase(g.packLists);
    } else {
      for (const pc of blocks)
        for (const call of packBlock(pc)) this.exports[KERNEL_EXPORTS[call[0]]](...call.slice(1));
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
}

/** The row stride of a product with n columns: a whole number of NR-wide panels. */
function productLd(n: number): number {
  return roundUp(n, NR);
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
