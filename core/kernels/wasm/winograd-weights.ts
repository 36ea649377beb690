// The JavaScript half of the Winograd convolutions (winograd-module.ts has the formulas): the filters'
// transform U = G g G^T before the products, and the filter gradient's G^T D G after them. Both are
// small beside the images: a few operations per filter and channel pair.

/**
 * U_e = (G g G^T)[e] for every 3x3 filter g, written at float offset `at` of `f32` as 16 matrices
 * [rows, cols] (U_e at at + e rows cols). Filter (r, s) is w[r, s] of weights [rows, cols, 3, 3], or,
 * when `adjoint`, w[s, r] rotated by 180 degrees: the filters of the convolution that carries the
 * output gradient back to the input (its channels are the layer's, swapped).
 */
export function transformWeights(
  w: ArrayLike<number>,
  rows: number,
  cols: number,
  adjoint: boolean,
  f32: Float32Array,
  at: number,
): void {
  const plane = rows * cols;
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < cols; s++) {
      // g[i][j] = w[from + step (3 i + j)]: the filter, or (step -1 from its end) the filter rotated
      const step = adjoint ? -1 : 1;
      const from = adjoint ? (s * rows + r) * 9 + 8 : (r * cols + s) * 9;
      const to = at + r * cols + s;
      // G g: four rows of three, then each row (a, b, c) times G^T: a, (a + b + c) / 2, (a - b + c) / 2, c
      for (let j = 0; j < 3; j++) {
        const g0 = w[from + step * j];
        const g1 = w[from + step * (3 + j)];
        const g2 = w[from + step * (6 + j)];
        column(f32, to + j * plane, plane, g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2);
      }
    }
  }
  // the second pass, in place: each tile row (i) of three columns becomes four
  for (let i = 0; i < 4; i++) {
    for (let o = at + 4 * i * plane, end = o + plane; o < end; o++) {
      const a = f32[o];
      const b = f32[o + plane];
      const c = f32[o + 2 * plane];
      f32[o + plane] = (a + b + c) / 2;
      f32[o + 2 * plane] = (a - b + c) / 2;
      f32[o + 3 * plane] = c;
    }
  }
}

/** (G g)[i][j] for i = 0..3, stored where U_(4 i + j) will be. */
function column(
  f32: Float32Array,
  to: number,
  plane: number,
  v0: number,
  v1: number,
  v2: number,
  v3: number,
) {
  f32[to] = v0;
  f32[to + 4 * plane] = v1;
  f32[to + 8 * plane] = v2;
  f32[to + 12 * plane] = v3;
}

/**
 * The filter gradient from the 16 products D_e [rows, ldc] (D_e at float offset at + e stride):
 * gw[r, s] = G^T D[r, s] G, a 3x3 filter from each 4x4, written to gw [rows, cols, 3, 3].
 */
export function transformFilterGradient(
  f32: Float32Array,
  at: number,
  stride: number,
  ldc: number,
  rows: number,
  cols: number,
  gw: Float32Array,
): void {
  const d = new Float64Array(16);
  const e = new Float64Array(12); // G^T D: three rows of four
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < cols; s++) {
      for (let k = 0; k < 16; k++) d[k] = f32[at + k * stride + r * ldc + s];
      // G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1] on the left, then G on the right
      for (let j = 0; j < 4; j++) {
        const half = (d[4 + j] + d[8 + j]) / 2;
        e[j] = d[j] + half;
        e[4 + j] = (d[4 + j] - d[8 + j]) / 2;
        e[8 + j] = half + d[12 + j];
      }
      const to = (r * cols + s) * 9;
      for (let i = 0; i < 3; i++) {
        const half = (e[4 * i + 1] + e[4 * i + 2]) / 2;
        gw[to + 3 * i] = e[4 * i] + half;
        gw[to + 3 * i + 1] = (e[4 * i + 1] - e[4 * i + 2]) / 2;
        gw[to + 3 * i + 2] = half + e[4 * i + 3];
      }
    }
  }
}

/**
 * U_e = (G g G^T)[e] of F(2x2, 2x2) for the 2x2 filters of a 4x4 stride-2 convolution split into its
 * phases (winograd-engine.ts): phase channel 4 c + 2 p + q's filter is g[a, b] = w[o, c, 2a + p, 2b + q]
 * of weights [cout, cin, 4, 4]. Written as 9 matrices [cout, 4 cin], or, when `adjoint`, [4 cin, cout]
 * with each filter rotated by 180 degrees (the input gradient's convolution).
 */
export function transformPhaseWeights(
  w: ArrayLike<number>,
  cout: number,
  cin: number,
  adjoint: boolean,
  f32: Float32Array,
  at: number,
): void {
  const plane = cout * 4 * cin;
  for (let o = 0; o < cout; o++) {
    for (let c = 0; c < cin; c++) {
      for (let phase = 0; phase < 4; phase++) {
        // g[a][b] = w[o, c, 2a + p, 2b + q]; the adjoint's filter is g rotated: g'[a][b] = g[1 - a][1 - b]
        const from = (o * cin + c) * 16 + (phase >> 1) * 4 + (phase & 1);
        let [g00, g01, g10, g11] = [w[from], w[from + 2], w[from + 8], w[from + 10]];
        if (adjoint) [g00, g01, g10, g11] = [g11, g10, g01, g00];
        const to = at + (adjoint ? (4 * c + phase) * cout + o : (o * cin + c) * 4 + phase);
        // G g: rows (g00, g01), (g00 + g10, g01 + g11), (g10, g11); each row (u, v) times G^T: u, u + v, v
        for (let i = 0; i < 3; i++) {
          const u = i === 0 ? g00 : i === 1 ? g00 + g10 : g10;
          const v = i === 0 ? g01 : i === 1 ? g01 + g11 : g11;
          f32[to + 3 * i * plane] = u;
          f32[to + (3 * i + 1) * plane] = u + v;
          f32[to + (3 * i + 2) * plane] = v;
        }
      }
    }
  }
}

/**
 * The filter gradient of a 4x4 stride-2 convolution from F(2x2, 2x2)'s 9 products D_e [cout, 4 cin]
 * (D_e at float offset at + e stride, rows of ldc): each phase channel's 2x2 gradient G^T D G, put back
 * at w[o, c, 2a + p, 2b + q] of gw [cout, cin, 4, 4].
 */
export function transformPhaseFilterGradient(
  f32: Float32Array,
  at: number,
  stride: number,
  ldc: number,
  cout: number,
  cin: number,
  gw: Float32Array,
): void {
  const d = new Float64Array(9);
  for (let o = 0; o < cout; o++) {
    for (let k = 0; k < 4 * cin; k++) {
      for (let e = 0; e < 9; e++) d[e] = f32[at + e * stride + o * ldc + k];
      const [c, p, q] = [k >> 2, (k >> 1) & 1, k & 1];
      for (let a = 0; a < 2; a++) {
        // G^T = [1 1 0; 0 1 1] on the left (rows a, a + 1 of D), then G on the right
        const e0 = d[3 * a] + d[3 * a + 3];
        const e1 = d[3 * a + 1] + d[3 * a + 4];
        const e2 = d[3 * a + 2] + d[3 * a + 5];
        const to = (o * cin + c) * 16 + (2 * a + p) * 4 + q;
        gw[to] = e0 + e1;
        gw[to + 2] = e1 + e2;
      }
    }
  }
}
