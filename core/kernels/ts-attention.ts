// Reference attention kernels in plain TypeScript: one query row at a time, so the only score storage is
// one row of lk numbers (the limit of the query blocks a faster backend may use). Sums in float64.
import type { Storage } from '../tensor.ts';
import { registerBackend, type AttentionArgs, type AttentionBackwardArgs } from './registry.ts';

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
        probabilities(p, q, qi, k, kvAt(0), a.kvStride, d, scale);
        acc.fill(0);
        for (let j = 0; j < lk; j++) {
          const vj = kvAt(j);
          for (let c = 0; c < d; c++) acc[c] += p[j] * v[vj + c];
        }
        const oi = (b * lq + i) * a.outStride + h * d;
        for (let c = 0; c < d; c++) out[oi + c] = acc[c];
      }
    }
  }
}

/**
 * The gradients, query row by query row (AttentionBackwardArgs has the formulas): row i's probabilities
 * P_j are recomputed, dP_j = gOut_i . v_j and dS_j = P_j (dP_j - sum_j' P_j' dP_j'); gq_i is then a sum
 * over the keys, and every key's gk_j and gv_j gather row i's share.
 */
export function attentionBackwardTs(a: AttentionBackwardArgs): void {
  const { q, k, v, gOut, gq, batch, heads, lq, lk, d, scale } = a;
  const [P, dS] = [new Float64Array(lk), new Float64Array(lk)];
  const acc = new Float64Array(d);
  const [gk, gv] = [new Float64Array(lk * d), new Float64Array(lk * d)];
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      // where position j of this set starts in k, v, gk and gv
      const kvAt = (j: number) => (b * lk + j) * a.kvStride + h * d;
      gk.fill(0);
      gv.fill(0);
      for (let i = 0; i < lq; i++) {
        const [qi, gi] = [(b * lq + i) * a.qStride + h * d, (b * lq + i) * a.outStride + h * d];
        probabilities(P, q, qi, k, kvAt(0), a.kvStride, d, scale); // as the forward computed them
        let rowDot = 0; // rowsum(dP P)
        for (let j = 0; j < lk; j++) {
          const vj = kvAt(j);
          let dot = 0;
          for (let c = 0; c < d; c++) {
            dot += gOut[gi + c] * v[vj + c];
            gv[j * d + c] += P[j] * gOut[gi + c];
          }
          dS[j] = dot;
          rowDot += P[j] * dot;
        }
        acc.fill(0);
        for (let j = 0; j < lk; j++) {
          const g = scale * P[j] * (dS[j] - rowDot); // scale dS_j
          const kj = kvAt(j);
          for (let c = 0; c < d; c++) {
            acc[c] += g * k[kj + c];
            gk[j * d + c] += g * q[qi + c];
          }
        }
        for (let c = 0; c < d; c++) gq[qi + c] = acc[c];
      }
      for (let j = 0; j < lk; j++) {
        for (let c = 0; c < d; c++) {
          a.gk[kvAt(j) + c] = gk[j * d + c];
          a.gv[kvAt(j) + c] = gv[j * d + c];
        }
      }
    }
  }
}

/**
 * One query row's probabilities, P_j = softmax_j(scale q_i . k_j), into P (its length is the number of
 * keys): q_i starts at qi, key j at kAt + j kStride.
 */
function probabilities(
  P: Float64Array,
  q: Storage,
  qi: number,
  k: Storage,
  kAt: number,
  kStride: number,
  d: number,
  scale: number,
): void {
  // prettier-ignore
  let max = -Infinity;
  for (let j = 0, kj = kAt; j < P.length; j++, kj += kStride) {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += q[qi + c] * k[kj + c];
    P[j] = scale * dot;
    if (P[j] > max) max = P[j];
  }
  let sum = 0;
  for (let j = 0; j < P.length; j++) sum += P[j] = Math.exp(P[j] - max); // shifted by the max: no overflow
  for (let j = 0; j < P.length; j++) P[j] /= sum;
}

registerBackend('ts', { attentionForward: attentionForwardTs, attentionBackward: attentionBackwardTs });
