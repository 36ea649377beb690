// Winograd's minimal filtering F(2x2, r x r) (Lavin & Gray 2016, "Fast Algorithms for Convolutional
// Neural Networks"), for r = 3: the 3x3 convolutions at stride 1 that keep the image size, and r = 2:
// the 2x2 convolutions that the 4x4 stride-2 ones become once their input is split into its four
// phases (engine.ts). Each 2x2 block of outputs (a tile) comes from the (r + 1)^2 patch d of input
// around it:
//
//   Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A,   summed over input channels,
//
//   r = 3:  B^T = | 1  0 -1  0 |    G = | 1    0    0  |    A^T = | 1  1  1  0 |
//                 | 0  1  1  0 |        | 1/2  1/2  1/2|          | 0  1 -1 -1 |
//                 | 0 -1  1  0 |        | 1/2 -1/2  1/2|
//                 | 0  1  0 -1 |        | 0    0    1  |
//
//   r = 2:  B^T = | 1 -1  0 |       G = | 1  0 |              A^T = | 1  1  0 |
//                 | 0  1  0 |           | 1  1 |                    | 0  1  1 |
//                 | 0 -1  1 |           | 0  1 |
//
// The sum over channels of the (r + 1)^2 products is as many matrix products U_e [Cout, Cin]
// V_e [Cin, tiles], one per element e of the transformed tile, which the gemm micro-kernel runs: 16
// Cin Cout multiplies per tile where im2col's product needs 36 (r = 3, 2.25 times fewer), or 9 where it
// needs 16 (r = 2, 1.78 times fewer). The transforms here are additions only: the input's (B^T d B), the
// output's (A^T M A) and, for the filter gradient, the output gradient's (A gy A^T, the output
// transform's adjoint). The weights' transform U = G g G^T and the filter gradient's G^T D G are small
// and run in JavaScript (winograd-weights.ts).
//
// The transforms work on four neighbouring tiles of a tile row at once, one tile per vector lane,
// so that each of the matrices is read or written four columns at a time. The last group of a row
// may run past the row's end: the input transform's extra lanes land in the next row's first columns
// (written again, correctly, right after) or in spare columns after the last tile; the output
// transform writes only the pixels that exist.
import { FunctionBuilder, I32, op, V128 } from './emit.ts';

/** Geometry block fields (i32 each), written by JavaScript before the calls. */
export const WINO = {
  src: 0, // byte address: the images read (input transform) or written (output transform)
  imgStride: 1, // floats between two images' planes of one channel
  chanStride: 2, // floats between two channels' planes of one image
  mats: 3, // byte address of the first of the 16 matrices (V_e or M_e)
  matStride: 4, // bytes between two of the 16 matrices
  ld: 5, // row stride of each matrix, in floats
  batch: 6,
  height: 7,
  width: 8,
  tilesH: 9,
  tilesW: 10,
  bias: 11, // byte address of one float per output channel (the output transform adds it)
  lead: 12, // rows and columns of zeros before each image plane read (its padding)
} as const;
export const WINO_FIELDS = 13;

/** A sum of terms (index, +1 or -1) of some vectors: one row of B^T, A^T or A. */
type Combo = [index: number, sign: 1 | -1][];
/** The transforms' rows: B^T (input), A^T (output) and A (the output gradient's), per filter size r. */
const TRANSFORMS: Record<2 | 3, { BT: Combo[]; AT: Combo[]; A: Combo[] }> = {
  3: {
    BT: [
      [
        [0, 1],
        [2, -1],
      ],
      [
        [1, 1],
        [2, 1],
      ],
      [
        [2, 1],
        [1, -1],
      ],
      [
        [1, 1],
        [3, -1],
      ],
    ],
    AT: [
      [
        [0, 1],
        [1, 1],
        [2, 1],
      ],
      [
        [1, 1],
        [2, -1],
        [3, -1],
      ],
    ],
    A: [
      [[0, 1]],
      [
        [0, 1],
        [1, 1],
      ],
      [
        [0, 1],
        [1, -1],
      ],
      [[1, -1]],
    ],
  },
  2: {
    BT: [
      [
        [0, 1],
        [1, -1],
      ],
      [[1, 1]],
      [
        [2, 1],
        [1, -1],
      ],
    ],
    AT: [
      [
        [0, 1],
        [1, 1],
      ],
      [
        [1, 1],
        [2, 1],
      ],
    ],
    A: [
      [[0, 1]],
      [
        [0, 1],
        [1, 1],
      ],
      [[1, 1]],
    ],
  },
};

/**
 * Emits the sum of `terms` of the vector locals `v` onto the stack, left to right (a leading minus as
 * zero minus it, `zero` a local holding zeros).
 */
function emitCombo(f: FunctionBuilder, terms: Combo, v: number[], zero: number): void {
  terms.forEach(([index, sign], k) => {
    if (k === 0 && sign < 0) f.emit(op.get(zero));
    f.emit(op.get(v[index]));
    if (k > 0 || sign < 0) f.emit(sign > 0 ? op.f32x4Add : op.f32x4Sub);
  });
}

/** Columns of the zero-padded plane the input transform reads (it reads 11 past a group's start). */
export const paddedWidth = (tilesW: number) => 2 * tilesW + 12;
export const paddedHeight = (tilesH: number) => 2 * tilesH + 2;

/** Reads every geometry field into a local of the same name. */
function loadFields(f: FunctionBuilder, geo: number): Record<keyof typeof WINO, number> {
  const l = {} as Record<keyof typeof WINO, number>;
  for (const [name, index] of Object.entries(WINO)) {
    const local = f.locals(1, I32);
    l[name as keyof typeof WINO] = local;
    f.emit(op.get(geo), op.i32Load(4 * index), op.set(local));
  }
  return l;
}

/** Emits `out = mats + (c ld + t) 4` with t = (b tilesH + ty) tilesW + tx: a group's column in a matrix. */
function tileAddress(
  f: FunctionBuilder,
  l: Record<keyof typeof WINO, number>,
  c: number,
  b: number,
  ty: number,
  tx: number,
  out: number,
) {
  f.emit(op.get(l.mats), op.get(c), op.get(l.ld), op.mul, op.get(b), op.get(l.tilesH), op.mul);
  f.emit(op.get(ty), op.add, op.get(l.tilesW), op.mul, op.add, op.get(tx), op.add, op.i32(2), op.shl);
  f.emit(op.add, op.set(out));
}

/** Emits `for (v = from; v < limit; v += step) body()`, the body run at least once when from < limit. */
function forRange(
  f: FunctionBuilder,
  v: number,
  from: number[],
  limit: number,
  step: number,
  body: () => void,
) {
  f.emit(from, op.set(v));
  f.emit(op.block, op.get(v), op.get(limit), op.ltS, op.eqz, op.brIf(0), op.loop);
  body();
  f.emit(op.get(v), op.i32(step), op.add, op.tee(v), op.get(limit), op.ltS, op.brIf(0), op.end, op.end);
}

/**
 * The scratch plane both transforms that read images use: one image plane at a time, zero-bordered,
 * rows of paddedWidth floats. `copy(c, b)` fills it with plane (b, c) of the images at `src`
 * after `lead` rows and columns of zeros; `group(ty, tx, at)` sets `at` to the byte address of the
 * top-left float of a group's tiles (2 ty, 2 tx).
 */
function planeCopier(f: FunctionBuilder, l: Record<keyof typeof WINO, number>, scratch: number) {
  const [rowBytes, planeBytes, width4, from, y] = Array.from({ length: 5 }, () => f.locals(1, I32));
  f.emit(op.get(l.tilesW), op.i32(1), op.shl, op.i32(12), op.add, op.i32(2), op.shl, op.set(rowBytes));
  f.emit(op.get(l.tilesH), op.i32(1), op.shl, op.i32(2), op.add, op.get(rowBytes), op.mul);
  f.emit(op.set(planeBytes), op.get(l.width), op.i32(2), op.shl, op.set(width4));
  return {
    rowBytes,
    copy(c: number, b: number) {
      f.emit(op.get(scratch), op.i32(0), op.get(planeBytes), op.memoryFill);
      f.emit(op.get(l.src), op.get(b), op.get(l.imgStride), op.mul, op.get(c), op.get(l.chanStride), op.mul);
      f.emit(op.add, op.i32(2), op.shl, op.add, op.set(from));
      forRange(f, y, op.i32(0), l.height, 1, () => {
        // scratch row y + lead, column lead  <-  image row y
        f.emit(op.get(scratch), op.get(y), op.get(l.lead), op.add, op.get(rowBytes), op.mul, op.add);
        f.emit(op.get(l.lead), op.i32(2), op.shl, op.add);
        f.emit(op.get(from), op.get(y), op.get(width4), op.mul, op.add);
        f.emit(op.get(width4), op.memoryCopy);
      });
    },
    group(ty: number, tx: number, at: number) {
      f.emit(op.get(scratch), op.get(ty), op.i32(1), op.shl, op.get(rowBytes), op.mul, op.add);
      f.emit(op.get(tx), op.i32(3), op.shl, op.add, op.set(at));
    },
  };
}

/**
 * Emits the loop nest both image-reading transforms share: channels c0..c1-1, images, tile rows and
 * groups of four tiles; each plane is copied into scratch first (see planeCopier, `lead` rows and
 * columns of zeros before it, from the geometry), and `body` runs per group with `dst` = its column in the matrices and
 * `at` = its top-left float in the plane.
 */
function imageGroups(
  f: FunctionBuilder,
  l: Record<keyof typeof WINO, number>,
  range: [number, number],
  plane: ReturnType<typeof planeCopier>,
  body: (dst: number, at: number) => void,
): void {
  const [c, b, ty, tx, dst, at] = Array.from({ length: 6 }, () => f.locals(1, I32));
  forRange(f, c, op.get(range[0]), range[1], 1, () => {
    forRange(f, b, op.i32(0), l.batch, 1, () => {
      plane.copy(c, b);
      forRange(f, ty, op.i32(0), l.tilesH, 1, () => {
        forRange(f, tx, op.i32(0), l.tilesW, 4, () => {
          tileAddress(f, l, c, b, ty, tx, dst);
          plane.group(ty, tx, at);
          body(dst, at);
        });
      });
    });
  });
}

/**
 * winogradInput(geo, c0, c1, scratch) for F(2x2, r x r): V_e[c, t] = (B^T d B)[e] for channels c0..c1-1
 * and every tile t (t = (b tilesH + ty) tilesW + tx), d the (r + 1)^2 patch from row and column 2 ty,
 * 2 tx of the plane after its `lead` rows and columns of zeros. Each image plane is first copied into
 * `scratch` (bytes) with that border of zeros before it and enough after for the widest read.
 */
export function winogradInputFunction(r: 2 | 3): FunctionBuilder {
  const f = new FunctionBuilder(4);
  const [geo, c0, c1, scratch] = [0, 1, 2, 3];
  const n = r + 1; // the patch's rows and columns
  const { BT } = TRANSFORMS[r];
  const l = loadFields(f, geo);
  const raw = f.locals(3 * n, V128); // patch rows i, three vectors of each (columns 0-3, 4-7, 8-11)
  const rows = f.locals(3 * n, V128); // the same after B^T on the left
  const cols = f.locals(n, V128); // column j of each lane's patch (lane l: patch column 2 l + j)
  const [X, Y, zero] = Array.from({ length: 3 }, () => f.locals(1, V128));
  const plane = planeCopier(f, l, scratch);
  f.emit(op.v128Zero, op.set(zero));
  imageGroups(f, l, [c0, c1], plane, (dst, at) => {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 3; k++) {
        f.emit(op.get(at), op.get(plane.rowBytes), op.i32(i), op.mul, op.add, op.v128Load(16 * k));
        f.emit(op.set(raw + 3 * i + k));
      }
    }
    // B^T d, three vectors at a time
    BT.forEach((terms, i) => {
      for (let k = 0; k < 3; k++) {
        emitCombo(
          f,
          terms,
          Array.from({ length: n }, (_, p) => raw + 3 * p + k),
          zero,
        );
        f.emit(op.set(rows + 3 * i + k));
      }
    });
    for (let i = 0; i < n; i++) {
      const [r0, r1, r2] = [rows + 3 * i, rows + 3 * i + 1, rows + 3 * i + 2];
      // columns 0, 2, 4, 6 (j = 0) and 1, 3, 5, 7 (j = 1); then 2, 4, 6, 8 and 3, 5, 7, 9 from them
      f.emit(op.get(r0), op.get(r1), op.f32x4Shuffle([0, 2, 4, 6]), op.set(cols));
      f.emit(op.get(r0), op.get(r1), op.f32x4Shuffle([1, 3, 5, 7]), op.set(cols + 1));
      f.emit(op.get(r1), op.get(r2), op.f32x4Shuffle([0, 2, 4, 6]), op.set(X));
      f.emit(op.get(cols), op.get(X), op.f32x4Shuffle([1, 2, 3, 6]), op.set(cols + 2));
      if (n === 4) {
        f.emit(op.get(r1), op.get(r2), op.f32x4Shuffle([1, 3, 5, 7]), op.set(Y));
        f.emit(op.get(cols + 1), op.get(Y), op.f32x4Shuffle([1, 2, 3, 6]), op.set(cols + 3));
      }
      // (B^T d) B: the same combinations of the columns; element e = n i + j goes to V_e
      const c = Array.from({ length: n }, (_, j) => cols + j);
      BT.forEach((terms, j) => {
        f.emit(op.get(dst), op.get(l.matStride), op.i32(n * i + j), op.mul, op.add);
        emitCombo(f, terms, c, zero);
        f.emit(op.v128Store(0));
      });
    }
  });
  return f;
}

/**
 * winogradOutput(geo, c0, c1, scratch) for F(2x2, r x r): for output channels c0..c1-1, every tile's
 * 2x2 outputs Y = A^T M A + bias, from M_e[c, t], written into the images at `src` (only pixels inside
 * the image). `scratch` (32 bytes) holds a group's row when the image ends inside it.
 */
export function winogradOutputFunction(r: 2 | 3): FunctionBuilder {
  const f = new FunctionBuilder(4);
  const [geo, c0, c1, scratch] = [0, 1, 2, 3];
  const n = r + 1;
  const { AT } = TRANSFORMS[r];
  const l = loadFields(f, geo);
  const [c, b, ty, tx, src, row, oy, bytes] = Array.from({ length: 8 }, () => f.locals(1, I32));
  const m = f.locals(n * n, V128);
  const s = f.locals(2 * n, V128); // A^T M: rows 0 and 1, columns 0..n-1
  const [bias, y0, y1, lo, hi, zero] = Array.from({ length: 6 }, () => f.locals(1, V128));
  /** Stores lo, hi (8 floats) at `row`, or the first width - 2 tx of them when the image ends before. */
  const storeRow = () => {
    // the image ends inside the group (width < 2 tx + 8): through scratch, as many floats as are left
    f.emit(op.get(l.width), op.get(tx), op.i32(1), op.shl, op.i32(8), op.add, op.ltS, op.if);
    f.emit(op.get(scratch), op.get(lo), op.v128Store(0), op.get(scratch), op.get(hi), op.v128Store(16));
    f.emit(op.get(l.width), op.get(tx), op.i32(1), op.shl, op.sub, op.i32(2), op.shl, op.set(bytes));
    f.emit(op.get(row), op.get(scratch), op.get(bytes), op.memoryCopy);
    f.emit(op.else);
    f.emit(op.get(row), op.get(lo), op.v128Store(0), op.get(row), op.get(hi), op.v128Store(16));
    f.emit(op.end);
  };
  f.emit(op.v128Zero, op.set(zero));
  forRange(f, c, op.get(c0), c1, 1, () => {
    f.emit(op.get(l.bias), op.get(c), op.i32(2), op.shl, op.add, op.v128Load32Splat(0), op.set(bias));
    forRange(f, b, op.i32(0), l.batch, 1, () => {
      forRange(f, ty, op.i32(0), l.tilesH, 1, () => {
        forRange(f, tx, op.i32(0), l.tilesW, 4, () => {
          tileAddress(f, l, c, b, ty, tx, src);
          for (let e = 0; e < n * n; e++) {
            f.emit(op.get(src), op.get(l.matStride), op.i32(e), op.mul, op.add);
            f.emit(op.v128Load(0), op.set(m + e));
          }
          // A^T M: its two rows, for each column j of the tile
          for (let j = 0; j < n; j++) {
            const column = Array.from({ length: n }, (_, k) => m + n * k + j);
            AT.forEach((terms, i) => {
              emitCombo(f, terms, column, zero);
              f.emit(op.set(s + n * i + j));
            });
          }
          // oy = 2 ty; row = src image + (b imgStride + c chanStride + oy width + 2 tx) 4
          f.emit(op.get(ty), op.i32(1), op.shl, op.set(oy));
          for (let i = 0; i < 2; i++) {
            // (A^T M) A: the same combinations of row i's columns, then the bias
            const rowI = Array.from({ length: n }, (_, j) => s + n * i + j);
            [y0, y1].forEach((y, j) => {
              emitCombo(f, AT[j], rowI, zero);
              f.emit(op.get(bias), op.f32x4Add, op.set(y));
            });
            // lane l holds tile tx + l: interleaved, pixels 2 tx .. 2 tx + 7 of the row
            f.emit(op.get(y0), op.get(y1), op.f32x4Shuffle([0, 4, 1, 5]), op.set(lo));
            f.emit(op.get(y0), op.get(y1), op.f32x4Shuffle([2, 6, 3, 7]), op.set(hi));
            if (i === 1) {
              // the tile's second row exists only inside the image
              f.emit(op.get(oy), op.i32(1), op.add, op.get(l.height), op.ltS, op.if);
            }
            f.emit(op.get(l.src), op.get(b), op.get(l.imgStride), op.mul);
            f.emit(op.get(c), op.get(l.chanStride), op.mul);
            f.emit(op.add, op.get(oy), op.i32(i), op.add, op.get(l.width), op.mul, op.add);
            f.emit(op.get(tx), op.i32(1), op.shl, op.add, op.i32(2), op.shl, op.add, op.set(row));
            storeRow();
            if (i === 1) f.emit(op.end);
          }
        });
      });
    });
  });
  return f;
}

/**
 * winogradGradient(geo, c0, c1, scratch) for F(2x2, r x r): for output-gradient channels c0..c1-1 of
 * the images at `src`, every tile's 2x2 gradient y taken to Z = A y A^T, Z_e[c, t] (the adjoint of the
 * output transform). With V from the input transform, the filter gradient is G^T (sum_t Z_t ⊙ V_t) G:
 * one product Z_e V_e^T per element e, then transformFilterGradient.
 */
export function winogradGradientFunction(r: 2 | 3): FunctionBuilder {
  const f = new FunctionBuilder(4);
  const [geo, c0, c1, scratch] = [0, 1, 2, 3];
  const n = r + 1;
  const { A } = TRANSFORMS[r];
  const l = loadFields(f, geo);
  const [L0, L1, zero] = Array.from({ length: 3 }, () => f.locals(1, V128));
  const y = f.locals(4, V128); // y[r][j] for rows r and columns j of each lane's tile: y + 2 r + j
  const z = f.locals(2 * n, V128); // A y: rows 0..n-1, columns 0..1: z + 2 i + j
  const plane = planeCopier(f, l, scratch);
  f.emit(op.v128Zero, op.set(zero));
  imageGroups(f, l, [c0, c1], plane, (dst, at) => {
    for (let row = 0; row < 2; row++) {
      f.emit(op.get(at), op.get(plane.rowBytes), op.i32(row), op.mul, op.add, op.v128Load(0), op.set(L0));
      f.emit(op.get(at), op.get(plane.rowBytes), op.i32(row), op.mul, op.add, op.v128Load(16), op.set(L1));
      f.emit(op.get(L0), op.get(L1), op.f32x4Shuffle([0, 2, 4, 6]), op.set(y + 2 * row));
      f.emit(op.get(L0), op.get(L1), op.f32x4Shuffle([1, 3, 5, 7]), op.set(y + 2 * row + 1));
    }
    // A y: A's rows of the tile's two rows, for each of its two columns
    for (let j = 0; j < 2; j++) {
      A.forEach((terms, i) => {
        emitCombo(f, terms, [y + j, y + 2 + j], zero);
        f.emit(op.set(z + 2 * i + j));
      });
    }
    // (A y) A^T: the same on each row's two columns; element e = n i + j goes to Z_e
    for (let i = 0; i < n; i++) {
      A.forEach((terms, j) => {
        f.emit(op.get(dst), op.get(l.matStride), op.i32(n * i + j), op.mul, op.add);
        emitCombo(f, terms, [z + 2 * i, z + 2 * i + 1], zero);
        f.emit(op.v128Store(0));
      });
    }
  });
  return f;
}
