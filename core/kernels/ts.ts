// The reference kernels in plain TypeScript. They are what every other backend is checked against, so
// they stay simple, but not naive: no allocation inside loops, and the one that matters most (gemm)
// keeps a 4x4 block of C in local variables so each loaded element of A and B is used four times.
import {
  registerBackend,
  type AdamArgs,
  type GemmArgs,
  type SiluArgs,
  type SiluBackwardArgs,
} from './registry.ts';

/**
 * C[m,n] (+)= op(A) op(B). Every layout is read through strides: element (i, p) of op(A) is
 * a[i * sai + p * sap] and element (p, j) of op(B) is b[p * sbp + j * sbj].
 */
export function gemmTs({ a, b, c, m, n, k, transA, transB, accumulate }: GemmArgs): void {
  const sai = transA ? 1 : k;
  const sap = transA ? m : 1;
  const sbp = transB ? 1 : n;
  const sbj = transB ? k : 1;
  const m4 = m - (m % 4);
  const n4 = n - (n % 4);
  for (let i = 0; i < m4; i += 4) {
    for (let j = 0; j < n4; j += 4) {
      // a 4x4 tile of C, accumulated in registers over the whole k loop
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0; // prettier-ignore
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0; // prettier-ignore
      let pa = i * sai;
      let pb = j * sbj;
      for (let p = 0; p < k; p++, pa += sap, pb += sbp) {
        const a0 = a[pa], a1 = a[pa + sai], a2 = a[pa + 2 * sai], a3 = a[pa + 3 * sai]; // prettier-ignore
        const b0 = b[pb], b1 = b[pb + sbj], b2 = b[pb + 2 * sbj], b3 = b[pb + 3 * sbj]; // prettier-ignore
        c00 += a0 * b0;
        c01 += a0 * b1;
        c02 += a0 * b2;
        c03 += a0 * b3; // prettier-ignore
        c10 += a1 * b0;
        c11 += a1 * b1;
        c12 += a1 * b2;
        c13 += a1 * b3; // prettier-ignore
        c20 += a2 * b0;
        c21 += a2 * b1;
        c22 += a2 * b2;
        c23 += a2 * b3; // prettier-ignore
        c30 += a3 * b0;
        c31 += a3 * b1;
        c32 += a3 * b2;
        c33 += a3 * b3; // prettier-ignore
      }
      store4(c, i * n + j, accumulate, c00, c01, c02, c03);
      store4(c, (i + 1) * n + j, accumulate, c10, c11, c12, c13);
      store4(c, (i + 2) * n + j, accumulate, c20, c21, c22, c23);
      store4(c, (i + 3) * n + j, accumulate, c30, c31, c32, c33);
    }
  }
  // the ragged right columns and bottom rows, one dot product each
  for (let i = 0; i < m; i++) {
    for (let j = i < m4 ? n4 : 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc += a[i * sai + p * sap] * b[p * sbp + j * sbj];
      c[i * n + j] = accumulate ? c[i * n + j] + acc : acc;
    }
  }
}

function store4(
  c: GemmArgs['c'],
  o: number,
  accumulate: boolean,
  v0: number,
  v1: number,
  v2: number,
  v3: number,
) {
  if (accumulate) {
    c[o] += v0;
    c[o + 1] += v1;
    c[o + 2] += v2;
    c[o + 3] += v3;
  } else {
    c[o] = v0;
    c[o + 1] = v1;
    c[o + 2] = v2;
    c[o + 3] = v3;
  }
}

export function adamTs({ p, g, m, v, b1, b2, eps, l2, decay, stepSize, sqrtBc2 }: AdamArgs): void {
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] + l2 * p[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    p[i] = p[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / sqrtBc2 + eps);
  }
}

export function siluForwardTs({ x, out }: SiluArgs): void {
  for (let i = 0; i < x.length; i++) out[i] = x[i] / (1 + Math.exp(-x[i]));
}

export function siluBackwardTs({ x, g, gx }: SiluBackwardArgs): void {
  for (let i = 0; i < x.length; i++) {
    const s = 1 / (1 + Math.exp(-x[i]));
    gx[i] = g[i] * s * (1 + x[i] * (1 - s)); // d(x s)/dx = s + x s (1 - s)
  }
}

// the reference backend, always registered (the ops import it); ts-conv.ts and ts-norm.ts add the rest
registerBackend(
  'ts',
  { gemm: gemmTs, adamUpdate: adamTs, siluForward: siluForwardTs, siluBackward: siluBackwardTs },
  { rank: 1, activate: () => 'ts (plain TypeScript)' },
);
