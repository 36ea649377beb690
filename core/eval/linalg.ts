// Small dense linear algebra in float64 for the evaluation metrics: means, covariances and the
// eigen-decomposition of a symmetric matrix (cyclic Jacobi rotations, Golub & Van Loan 8.5).

/** Column means and the covariance (divided by n - 1) of `rows` samples of dimension `dim`. */
export function meanAndCovariance(
  x: ArrayLike<number>,
  rows: number,
  dim: number,
): { mean: Float64Array; cov: Float64Array } {
  if (rows < 2) throw new Error(`covariance: needs at least 2 samples, got ${rows}`);
  const mean = new Float64Array(dim);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dim; j++) mean[j] += x[r * dim + j] / rows;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dim; j++) centred[j] = x[r * dim + j] - mean[j];
    for (let i = 0; i < dim; i++) {
      const ci = centred[i];
      if (ci === 0) continue;
      for (let j = i; j < dim; j++) cov[i * dim + j] += ci * centred[j];
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      cov[i * dim + j] /= rows - 1;
      cov[j * dim + i] = cov[i * dim + j];
    }
  }
  return { mean, cov };
}

/** Eigenvalues and eigenvectors (columns of `vectors`) of a symmetric n x n matrix. */
export function symmetricEigen(
  a: ArrayLike<number>,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += m[p * n + q] ** 2;
    if (off < 1e-22 * (1 + frobenius(m))) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        // the rotation that zeroes m[p][q]: tan(2 theta) = 2 apq / (aqq - app)
        const theta = (m[q * n + q] - m[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p];
          const mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k];
          const mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i];
  return { values, vectors: v };
}

function frobenius(m: Float64Array): number {
  let s = 0;
  for (const x of m) s += x * x;
  return s;
}

/**
 * The Fréchet distance between Gaussians N(mu1, S1) and N(mu2, S2) (Dowson & Landau 1982; FID, Heusel
 * et al. 2017): |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)). The last trace equals the sum of
 * square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2), which is symmetric, so Jacobi applies.
 */
export function frechetDistance(
  a: { mean: Float64Array; cov: Float64Array },
  b: { mean: Float64Array; cov: Float64Array },
): number {
  const n = a.mean.length;
  let d2 = 0;
  for (let i = 0; i < n; i++) d2 += (a.mean[i] - b.mean[i]) ** 2;
  const { values, vectors } = symmetricEigen(a.cov, n);
  // S1^(1/2) = V diag(sqrt(max(l, 0))) V^T
  const root = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++)
        s += vectors[i * n + k] * Math.sqrt(Math.max(values[k], 0)) * vectors[j * n + k];
      root[i * n + j] = s;
    }
  }
  const inner = multiply(multiply(root, b.cov, n), root, n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++)
      inner[i * n + j] = inner[j * n + i] = (inner[i * n + j] + inner[j * n + i]) / 2;
  }
  const eig = symmetricEigen(inner, n).values;
  let trace = 0;
  for (let i = 0; i < n; i++)
    trace += a.cov[i * n + i] + b.cov[i * n + i] - 2 * Math.sqrt(Math.max(eig[i], 0));
  return d2 + trace;
}

function multiply(x: Float64Array, y: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const xik = x[i * n + k];
      if (xik === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += xik * y[k * n + j];
    }
  }
  return out;
}
