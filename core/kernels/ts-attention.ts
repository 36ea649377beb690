// Reference attention kernel in plain TypeScript: one query row at a time, so the only score storage is
// one row of lk numbers (the limit of the query blocks a faster backend may use). Sums in float64.
import { registerBackend, type AttentionArgs } from './registry.ts';

export function attentionForwardTs({ q, k, v, out, batch, lq, lk, d, scale }: AttentionArgs): void {
  const p = new Float64Array(lk);
  const acc = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    const kb = b * lk * d;
    for (let i = 0; i < lq; i++) {
      const qi = (b * lq + i) * d;
      let max = -Infinity;
      for (let j = 0; j < lk; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[qi + c] * k[kb + j * d + c];
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
        const w = p[j] / sum;
        for (let c = 0; c < d; c++) acc[c] += w * v[kb + j * d + c];
      }
      for (let c = 0; c < d; c++) out[qi + c] = acc[c];
    }
  }
}

registerBackend('ts', { attentionForward: attentionForwardTs });
