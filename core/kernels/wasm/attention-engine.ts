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
  attentionForward({ q, k, v, out, batch, lq, lk, d, scale }: AttentionArgs): void {
    if (batch === 0 || lq === 0 || d === 0) return;
    if (lk === 0) {
      out.fill(0, 0, batch * lq * d); // no keys: the empty sum
      return;
    }
    const lqPad = roundUp(lq, MR);
    const lkPad = roundUp(lk, NR);
    const dPad = roundUp(d, NR);
    const block = Math.min(lqPad, Math.max(MR, Math.floor(BLOCK_FLOATS / lkPad / MR) * MR));
    const blocks = Math.ceil(lqPad / block);
    const threads = Math.min(batch, this.threadsFor(batch * lq * lk * d, 1 << 20));
    const jobsPerSet = blocks * 4;

    this.reset();
    const QP = this.take(batch * lqPad * d);
    const KP = this.take(batch * lkPad * d);
    const VP = this.take(batch * lk * dPad);
    const OUT = this.take(batch * lqPad * dPad);
    const parts = Array.from({ length: threads }, (_, t) => {
      const [b0, b1] = [Math.floor((batch * t) / threads), Math.floor((batch * (t + 1)) / threads)];
      const list = this.take(1 + (b1 - b0) * jobsPerSet * JOB_INTS);
      return { b0, b1, list, S: this.take(block * lkPad), PP: this.take(block * lk) };
    });
    this.commit();
    this.pack(q, k, v, { QP, KP, VP, batch, lq, lk, d, lqPad, lkPad, dPad, scale });

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
    if (lqPad === lq && dPad === d) out.set(f32.subarray(OUT, OUT + batch * lq * d));
    else {
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < lq; i++) {
          const at = OUT + (b * lqPad + i) * dPad;
          out.set(f32.subarray(at, at + d), (b * lq + i) * d);
        }
      }
    }
  }

  /**
   * Writes q (scaled), k and v into the gemm's panel layouts: q as A panels (MR rows, k-major), k^T and
   * v as B panels (NR columns, k-major), zero-padded to whole panels.
   */
  private pack(
    q: Storage,
    k: Storage,
    v: Storage,
    a: Record<
      'QP' | 'KP' | 'VP' | 'batch' | 'lq' | 'lk' | 'd' | 'lqPad' | 'lkPad' | 'dPad' | 'scale',
      number
    >,
  ): void {
    const { QP, KP, VP, batch, lq, lk, d, lqPad, lkPad, dPad, scale } = a;
    const f32 = this.f32;
    f32.fill(0, QP, VP + batch * lk * dPad); // QP, KP and VP are adjacent: their padding is zero
    for (let b = 0; b < batch; b++) {
      // QP[b][panel][c][i] = scale q[b][panel MR + i][c]
      for (let i = 0; i < lq; i++) {
        const [src, dst] = [(b * lq + i) * d, QP + b * lqPad * d + (i - (i % MR)) * d + (i % MR)];
        for (let c = 0; c < d; c++) f32[dst + c * MR] = scale * q[src + c];
      }
      // KP[b][panel][c][j] = k[b][panel NR + j][c]: op(B)(c, j) of k^T
      for (let j = 0; j < lk; j++) {
        const [src, dst] = [(b * lk + j) * d, KP + b * lkPad * d + (j - (j % NR)) * d + (j % NR)];
        for (let c = 0; c < d; c++) f32[dst + c * NR] = k[src + c];
      }
      // VP[b][panel][j][c] = v[b][j][panel NR + c]
      for (let j = 0; j < lk; j++) {
        const src = (b * lk + j) * d;
        for (let c = 0; c < d; c++)
          f32[VP + b * lk * dPad + (c - (c % NR)) * lk + j * NR + (c % NR)] = v[src + c];
      }
    }
  }
}
