// Attention in WebAssembly: softmax(scale q k^T) v for each (batch x head) set, and its gradients, a
// block of queries at a time, from the gemm micro-kernel and the softmax row kernels of the module.
// q, k and v are copied in as rows of whole panels' width; everything after happens in the module, in
// per-thread job lists: each set's operands are packed into the gemm's panels, then for each block of
// query rows, in the thread's scratch space:
//   S = (scale q_block) k^T           one macro call: q packed as A panels, k^T as B panels
//   P = softmax(S) row by row         in place, over the lk real columns of S's padded rows
//   P packed as A panels              one transposing copy, so the next product runs on the micro-kernel
//   out_block = P v                   one macro call, v packed as B panels
// The block is sized so its score-sized buffers stay in the core's cache; no whole [lq, lk] score
// matrix of a set is ever built. The backward (attentionBackward) recomputes P the same way.
import type { Storage } from '../../tensor.ts';
import type { AttentionArgs, AttentionBackwardArgs } from '../registry.ts';
import { FN, JOB_INTS, roundUp } from './arena.ts';
import { MR, NR } from './gemm-module.ts';
import { RowEngine } from './row-engine.ts';

/** Floats of score block per thread: the block of S plus packed P, about 320 KB, sit in L2. */
const BLOCK_FLOATS = 40000;
/** The backward's five score-sized buffers per thread (S, dP and three packings), about 320 KB. */
const BACKWARD_BLOCK_FLOATS = 16000;

export class AttentionEngine extends RowEngine {
  attentionForward(args: AttentionArgs): void {
    const { q, k, v, out, batch, heads, lq, lk, d, scale } = args;
    const sets = batch * heads; // item-major: set s is head s % heads of item s / heads
    if (sets === 0 || lq === 0 || d === 0) return;
    if (lk === 0) {
      // no keys: the empty sum, in every head of every position
      for (let r = 0; r < batch * lq; r++) out.fill(0, r * args.outStride, r * args.outStride + heads * d);
      return;
    }
    const [lqPad, lkPad, dPad] = [roundUp(lq, MR), roundUp(lk, NR), roundUp(d, NR)];
    const block = Math.min(lqPad, Math.max(MR, Math.floor(BLOCK_FLOATS / lkPad / MR) * MR));
    const blocks = Math.ceil(lqPad / block);
    const threads = Math.min(sets, this.threadsFor(sets * lq * lk * d, 1 << 20));
    const [perSet, perBlock] = [3, 4]; // calls in the job lists

    this.reset();
    const [Q, K, V, OUT] = [lqPad, lkPad, lkPad, lqPad].map((l) => this.take(sets * l * dPad));
    const parts = Array.from({ length: threads }, (_, t) => {
      const [b0, b1] = [Math.floor((sets * t) / threads), Math.floor((sets * (t + 1)) / threads)];
      const list = this.take(1 + (b1 - b0) * (perSet + blocks * perBlock) * JOB_INTS);
      const panels = [lqPad * d, lkPad * d, lk * dPad, block * lkPad, block * lk].map((n) => this.take(n));
      return { b0, b1, list, panels };
    });
    this.commit();
    const f32 = this.f32;
    if (d !== dPad || lq !== lqPad || lk !== lkPad) f32.fill(0, Q, OUT); // the inputs' padding
    const { qStride, kvStride, outStride } = args;
    for (let s = 0; s < sets; s++) {
      copyRows(q, at(s, heads, lq, qStride, d), qStride, f32, Q + s * lqPad * dPad, dPad, lq, d, scale);
      copyRows(k, at(s, heads, lk, kvStride, d), kvStride, f32, K + s * lkPad * dPad, dPad, lk, d, 1);
      copyRows(v, at(s, heads, lk, kvStride, d), kvStride, f32, V + s * lkPad * dPad, dPad, lk, d, 1);
    }

    for (const { b0, b1, list, panels } of parts) {
      const [QP, KP, VP, S, PP] = panels.map((at) => at * 4);
      const row = dPad * 4; // bytes per row of the inputs and of the output
      const calls: number[][] = [];
      for (let s = b0; s < b1; s++) {
        const [q0, o0] = [(Q + s * lqPad * dPad) * 4, (OUT + s * lqPad * dPad) * 4];
        const [k0, v0] = [(K + s * lkPad * dPad) * 4, (V + s * lkPad * dPad) * 4];
        calls.push([FN.packT4, q0, row, d, lqPad / MR, QP]);
        calls.push([FN.packT8, k0, row, d, lkPad / NR, KP]);
        calls.push([FN.packRows, v0, row, lk, dPad / NR, VP]);
        for (let i0 = 0; i0 < lqPad; i0 += block) {
          const m = Math.min(block, lqPad - i0);
          calls.push([FN.macro, QP + i0 * d * 4, KP, S, m, lkPad, d, lkPad, 0]);
          calls.push([FN.softmaxForward, S, S, 0, m, lk, lkPad]);
          calls.push([FN.packT4, S, lkPad * 4, lk, m / MR, PP]);
          calls.push([FN.macro, PP, VP, o0 + i0 * row, m, dPad, lk, dPad, 0]);
        }
      }
      this.writeJobs(list, calls);
    }
    this.runPhase(parts.map((p) => p.list));

    // in the output's memory order: a position's heads one after another
    for (let s = 0; s < sets; s++) {
      copyRows(f32, OUT + s * lqPad * dPad, dPad, out, at(s, heads, lq, outStride, d), outStride, lq, d, 1);
    }
  }

  /**
   * The gradients (AttentionBackwardArgs), each thread taking whole (batch x head) sets. The inputs
   * are copied in as rows of dPad floats (q scaled: Qs = scale q), and everything else happens in the
   * module. Per set, the panels: Qs and gOut as A (depth d), k^T and v^T as B (depth d), k as B (depth
   * lk). Per block of query rows, in the thread's scratch space:
   *   S = Qs_b k^T, P = softmax(S)       in place, as the forward does
   *   gv (+)= P^T gOut_b                 P^T as A panels, gOut_b as B panels: depth = the block's rows
   *   dS = P (dP - rowsum(dP P))         dP = gOut_b v^T, then the softmax backward in place
   *   gq_b = dS k                        dS as A panels (scaled on the way out)
   *   gk (+)= dS^T Qs_b                  dS^T as A panels, Qs_b as B panels
   */
  attentionBackward(args: AttentionBackwardArgs): void {
    const { q, k, v, gOut, gq, gk, gv, batch, heads, lq, lk, d, scale } = args;
    const sets = batch * heads; // item-major: set s is head s % heads of item s / heads
    if (sets === 0 || d === 0 || lq === 0 || lk === 0) {
      // no queries or no keys: every gradient is the empty sum
      for (const [g, l, stride] of [
        [gq, lq, args.qStride],
        [gk, lk, args.kvStride],
        [gv, lk, args.kvStride],
      ] as const) {
        for (let s = 0; s < sets; s++) fillRows(g, at(s, heads, l, stride, d), stride, l, d);
      }
      return;
    }
    const [lqPad, lkPad, dPad] = [roundUp(lq, MR), roundUp(lk, NR), roundUp(d, NR)];
    const block = Math.min(lqPad, Math.max(MR, Math.floor(BACKWARD_BLOCK_FLOATS / lkPad / MR) * MR));
    const blocks = Math.ceil(lqPad / block);
    const threads = Math.min(sets, this.threadsFor(sets * lq * lk * d, 1 << 20));
    const [perSet, perBlock] = [5, 12]; // calls in the job lists

    this.reset();
    const [Q, G] = [this.take(sets * lqPad * dPad), this.take(sets * lqPad * dPad)];
    const [K, V] = [this.take(sets * lkPad * dPad), this.take(sets * lkPad * dPad)];
    const [DQ, DK, DV] = [lqPad, lkPad, lkPad].map((l) => this.take(sets * l * dPad));
    const parts = Array.from({ length: threads }, (_, t) => {
      const [b0, b1] = [Math.floor((sets * t) / threads), Math.floor((sets * (t + 1)) / threads)];
      const list = this.take(1 + (b1 - b0) * (perSet + blocks * perBlock) * JOB_INTS);
      const panels = [lqPad * d, lqPad * d, lkPad * d, lkPad * d, lk * dPad].map((n) => this.take(n));
      const scratch = [block * lkPad, block * lkPad, block * lkPad, block * lk, block * lkPad, block * dPad, block * dPad].map((n) => this.take(n)); // prettier-ignore
      return { b0, b1, list, panels, scratch };
    });
    this.commit();
    const f32 = this.f32;
    if (d !== dPad || lq !== lqPad || lk !== lkPad) f32.fill(0, Q, DQ); // the inputs' padding
    const { qStride, kvStride, outStride } = args;
    const inputs = [[q, Q, lq, lqPad, qStride, scale], [gOut, G, lq, lqPad, outStride, 1], [k, K, lk, lkPad, kvStride, 1], [v, V, lk, lkPad, kvStride, 1]] as const; // prettier-ignore
    for (const [src, to, l, lPad, stride, x] of inputs) {
      for (let s = 0; s < sets; s++) {
        copyRows(src, at(s, heads, l, stride, d), stride, f32, to + s * lPad * dPad, dPad, l, d, x);
      }
    }

    for (const { b0, b1, list, panels, scratch } of parts) {
      const [QP, GP, KP, VP, KB] = panels.map((at) => at * 4);
      const [S, DP, PT, DSA, DST, QB, GB] = scratch.map((at) => at * 4);
      const row = dPad * 4; // bytes per row of the inputs and of the gradients
      const calls: number[][] = [];
      for (let b = b0; b < b1; b++) {
        const [q0, g0] = [(Q + b * lqPad * dPad) * 4, (G + b * lqPad * dPad) * 4];
        const [k0, v0] = [(K + b * lkPad * dPad) * 4, (V + b * lkPad * dPad) * 4];
        const [dq0, dk0, dv0] = [(DQ + b * lqPad * dPad) * 4, (DK + b * lkPad * dPad) * 4, (DV + b * lkPad * dPad) * 4]; // prettier-ignore
        calls.push([FN.packT4, q0, row, d, lqPad / MR, QP]);
        calls.push([FN.packT4, g0, row, d, lqPad / MR, GP]);
        calls.push([FN.packT8, k0, row, d, lkPad / NR, KP]);
        calls.push([FN.packT8, v0, row, d, lkPad / NR, VP]);
        calls.push([FN.packRows, k0, row, lk, dPad / NR, KB]);
        for (let i0 = 0; i0 < lqPad; i0 += block) {
          const m = Math.min(block, lqPad - i0);
          const more = i0 > 0 ? 1 : 0; // gk and gv: the first block stores, the others add
          calls.push([FN.macro, QP + i0 * d * 4, KP, S, m, lkPad, d, lkPad, 0]);
          calls.push([FN.softmaxForward, S, S, 0, m, lk, lkPad]);
          calls.push([FN.packRows4, S, lkPad * 4, m, lkPad / MR, PT]);
          calls.push([FN.packRows, g0 + i0 * row, row, m, dPad / NR, GB]);
          calls.push([FN.macro, PT, GB, dv0, lkPad, dPad, m, dPad, more]);
          calls.push([FN.macro, GP + i0 * d * 4, VP, DP, m, lkPad, d, lkPad, 0]);
          calls.push([FN.softmaxBackward, S, DP, DP, 0, m, lkPad]);
          calls.push([FN.packT4, DP, lkPad * 4, lk, m / MR, DSA]);
          calls.push([FN.macro, DSA, KB, dq0 + i0 * row, m, dPad, lk, dPad, 0]);
          calls.push([FN.packRows4, DP, lkPad * 4, m, lkPad / MR, DST]);
          calls.push([FN.packRows, q0 + i0 * row, row, m, dPad / NR, QB]);
          calls.push([FN.macro, DST, QB, dk0, lkPad, dPad, m, dPad, more]);
        }
      }
      this.writeJobs(list, calls);
    }
    this.runPhase(parts.map((p) => p.list));

    const outputs = [[DQ, gq, lq, lqPad, qStride, scale], [DK, gk, lk, lkPad, kvStride, 1], [DV, gv, lk, lkPad, kvStride, 1]] as const; // prettier-ignore
    for (const [from, g, l, lPad, stride, x] of outputs) {
      for (let s = 0; s < sets; s++) {
        copyRows(f32, from + s * lPad * dPad, dPad, g, at(s, heads, l, stride, d), stride, l, d, x);
      }
    }
  }
}

/** Where set s (head s % heads of item s / heads) starts in a [batch, l, ...] layout of row stride `stride`. */
function at(s: number, heads: number, l: number, stride: number, d: number): number {
  return Math.floor(s / heads) * l * stride + (s % heads) * d;
}

/** Zeros `rows` rows of d floats, row r at from + r stride. */
function fillRows(dst: Storage, from: number, stride: number, rows: number, d: number): void {
  for (let r = 0; r < rows; r++, from += stride) dst.fill(0, from, from + d);
}

/** Copies `rows` rows of d floats, times x, from src (row r at from + r srcStride) to dst (to + r dstStride). */
// prettier-ignore
function copyRows(src: Storage, from: number, srcStride: number, dst: Storage, to: number, dstStride: number, rows: number, d: number, x: number): void {
  if (srcStride === d && dstStride === d) {
    if (x === 1) dst.set(src.subarray(from, from + rows * d), to);
    else for (let i = 0; i < rows * d; i++) dst[to + i] = x * src[from + i];
    return;
  }
  for (let r = 0; r < rows; r++, from += srcStride, to += dstStride) {
    for (let c = 0; c < d; c++) dst[to + c] = x * src[from + c];
  }
}
