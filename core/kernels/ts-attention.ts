// Reference attention kernel in plain TypeScript: one query row at a time, so the only score storage is
// one row of lk numbers (the limit of the query blocks a faster backend may use). Sums in float64.
import { registerBackend, type AttentionArgs } from './registry.ts';

export function attentionForwardTs(a: AttentionArgs): void {
  const { q, k, v, out, batch, heads, lq, lk, d, scale } = a;
  const p = new Float64Array(lk);
  const acc = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      // where position j of this set starts in k and v
      const kvAt = (j: number) => (b * lk + j) * a.kvStride + h * d;
      for (let i = 0; i < lq; i++) {
        const qi = (b * lq + i) * a.qStride + h * d;
        let max = -Infinity;
        for (let j = 0; j < lk; j++) {
          const kj = kvAt(j);
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qi + c] * k[kj + c];
          p[j] = scale * dot;
          if (p[j] > max) max = p[j];
        }
        let sum = 0;
        for (let j = 0; j < lk; j++) {
          p[j] = Math.exp(p[j] - max); // softmax's numerators, shifted by the max so none overflows
          sum += p[j];
        }
        acc.fill(0);
        for (let j = 0; j < lk; j++) {
          const [w, vj] = [p[j] / sum, kvAt(j)];
          for (let c = 0; c < d; c++) acc[c] += w * v[vj + c];
        }
        const oi = (b * lq + i) * a.outStride + h * d;
        for (let c = 0; c < d; c++) out[oi + c] = acc[c];
      }
    }
  }
}

registerBackend('ts', { attentionForward: attentionForwardTs });
