// The reference kernels in plain TypeScript: straightforward loops, in an order that streams through
// memory (i, p, j for C = A B reads B and C row by row), with no allocation inside the loops.
import { registerBackend, type GemmArgs } from './registry.ts';

export function gemmTs({ a, b, c, m, n, k, transA, transB, accumulate }: GemmArgs): void {
  if (transB && !transA) {
    // A [m,k] times B^T with B stored [n,k]: every C entry is a dot product of two contiguous rows.
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) acc += a[i * k + p] * b[j * k + p];
        c[i * n + j] = accumulate ? c[i * n + j] + acc : acc;
      }
    }
    return;
  }
  if (!accumulate) c.fill(0, 0, m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = transA ? a[p * m + i] : a[i * k + p];
      if (aip === 0) continue;
      if (transB) {
        // B stored [n, k]: B^T[p, j] = b[j * k + p]
        for (let j = 0; j < n; j++) c[ci + j] += aip * b[j * k + p];
      } else {
        const bp = p * n;
        for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
      }
    }
  }
}

registerBackend('ts', { gemm: gemmTs });
