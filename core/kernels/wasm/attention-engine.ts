// Attention without gradients in WebAssembly: softmax(scale q k^T) v for each (batch x head) set, a block
// of queries at a time, from the gemm micro-kernel and the softmax row kernel of the module.
// For a block of rows of q, in each thread's scratch space:
//   S = (scale q_block) k^T           one macro call: q is packed as A panels, k^T as B panels
//   P = softmax(S) row by row         in place, over the lk real columns of S's padded rows
//   P packed as A panels              one transposing copy, so the next product runs on the micro-kernel
//   out_block = P v                   one macro call, v packed as B panels
// The block is sized so S and packed P stay in the core's cache; no whole [lq, lk] score matrix of a set
// is ever built, and nothing but q, k, v and the output crosses between JavaScript and the memory.
import type { Storage } from '../../tensor.ts';
import type { AttentionArgs } from '../registry.ts';
import { FN, JOB_INTS, roundUp } from './arena.ts';
import { MR, NR } from './gemm-module.ts';
import { RowEngine } from './row-engine.ts';

/** Floats of score block per thread: the block of S plus packed P, about 320 KB, sit in L2. */
const BLOCK_FLOATS = 40000;

export class AttentionEngine extends RowEngine {
  attentionForward(args: AttentionArgs): void {
    const { q, k, v, out, lq, lk, d } = args;
    const sets = args.batch * args.heads; // item-major: set s is head s % heads of item s / heads
    if (sets === 0 || lq === 0 || d === 0) return;
    if (lk === 0) {
      // no keys: the empty sum, in every head of every position
      for (let r = 0; r < args.batch * lq; r++)
        out.fill(0, r * args.outStride, r * args.outStride + args.heads * d);
      return;
    }
    const lqPad = roundUp(lq, MR);
    const lkPad = roundUp(lk, NR);
    const dPad = roundUp(d, NR);
    const block = Math.min(lqPad, Math.max(MR, Math.floor(BLOCK_FLOATS / lkPad / MR) * MR));
    const blocks = Math.ceil(lqPad / block);
    const threads = Math.min(sets, this.threadsFor(sets * lq * lk * d, 1 << 20));
    const jobsPerSet = blocks * 4;

    this.reset();
    const QP = this.take(sets * lqPad * d);
    const KP = this.take(sets * lkPad * d);
    const VP = this.take(sets * lk * dPad);
    const OUT = this.take(sets * lqPad * dPad);
    const parts = Array.from({ length: threads }, (_, t) => {
      const [b0, b1] = [Math.floor((sets * t) / threads), Math.floor((sets * (t + 1)) / threads)];
      const list = this.take(1 + (b1 - b0) * jobsPerSet * JOB_INTS);
      return { b0, b1, list, S: this.take(block * lkPad), PP: this.take(block * lk) };
    });
    this.commit();
    this.pack(q, k, v, args, { QP, KP, VP, lqPad, lkPad, dPad });

    for (const { b0, b1, list, S, PP } of parts) {
      const calls: number[][] = [];
      for (let b = b0; b < b1; b++) {
        for (let i0 = 0; i0 < lqPad; i0 += block) {
          const mc = Math.min(block, lqPad - i0);
          const qp = QP + b * lqPad * d + i0 * d;
          calls.push([FN.macro, qp * 4, (KP + b * lkPad * d) * 4, S * 4, mc, lkPad, d, lkPad, 0]);
          calls.push([FN.softmaxForward, S * 4, S * 4, 0, mc, lk, lkPad]);
          calls.push([FN.packT4, S * 4, lkPad * 4, lk, mc / MR, PP * 4]);
          const o = (OUT + (b * lqPad + i0) * dPad) * 4;
          calls.push([FN.macro, PP * 4, (VP + b * lk * dPad) * 4, o, mc, dPad, lk, dPad, 0]);
        }
      }
      this.writeJobs(list, calls);
    }
    this.runPhase(parts.map((p) => p.list));

    const f32 = this.f32;
    if (lqPad === lq && dPad === d && args.heads === 1 && args.outStride === d) {
      out.set(f32.subarray(OUT, OUT + sets * lq * d));
      return;
    }
    // in the output's memory order: a position's heads one after another
    for (let b = 0; b < args.batch; b++) {
      for (let i = 0; i < lq; i++) {
        for (let h = 0, to = (b * lq + i) * args.outStride; h < args.heads; h++, to += d) {
          const from = OUT + ((b * args.heads + h) * lqPad + i) * dPad;
          for (let c = 0; c < d; c++) out[to + c] = f32[from + c];
        }
      }
    }
  }

  /**
   * Writes q (scaled), k and v into the gemm's panel layouts: q as A panels (MR rows, k-major), k^T and
   * v as B panels (NR columns, k-major), zero-padded to whole panels. Reads each input in memory order,
   * a position's heads one after another, and scatters the heads to their sets' panels.
   */
  private pack(
    q: Storage,
    k: Storage,
    v: Storage,
    args: AttentionArgs,
    a: Record<'QP' | 'KP' | 'VP' | 'lqPad' | 'lkPad' | 'dPad', number>,
  ): void {
    const { QP, KP, VP, lqPad, lkPad, dPad } = a;
    const { batch, heads, lq, lk, d, scale, qStride, kvStride } = args;
    const f32 = this.f32;
    f32.fill(0, QP, VP + batch * heads * lk * dPad); // QP, KP and VP are adjacent: their padding is zero
    for (let b = 0; b < batch; b++) {
      // QP[s][panel][c][i] = scale q[s][panel MR + i][c]
      for (let i = 0; i < lq; i++) {
        for (let h = 0, src = (b * lq + i) * qStride; h < heads; h++, src += d) {
          const dst = QP + (b * heads + h) * lqPad * d + (i - (i % MR)) * d + (i % MR);
          for (let c = 0; c < d; c++) f32[dst + c * MR] = scale * q[src + c];
        }
      }
      for (let j = 0; j < lk; j++) {
        for (let h = 0, src = (b * lk + j) * kvStride; h < heads; h++, src += d) {
          const s = b * heads + h;
          // KP[s][panel][c][j] = k[s][panel NR + j][c]: op(B)(c, j) of k^T
          const dst = KP + s * lkPad * d + (j - (j % NR)) * d + (j % NR);
          for (let c = 0; c < d; c++) f32[dst + c * NR] = k[src + c];
          // VP[s][panel][j][c] = v[s][j][panel NR + c]
          const row = VP + s * lk * dPad + j * NR;
          for (let c = 0; c < d; c++) f32[row + (c - (c % NR)) * lk + (c % NR)] = v[src + c];
        }
      }
    }
  }
}
