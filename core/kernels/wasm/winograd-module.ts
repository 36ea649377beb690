// Winograd's minimal filtering F(2x2, 3x3) for the 3x3 convolutions at stride 1 that keep the image
// size (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks"). Each 2x2 block of
// outputs (a tile) comes from the 4x4 patch d of input around it:
//
//   Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A,   summed over input channels,
//
//   B^T = | 1  0 -1  0 |    G = | 1    0    0  |    A^T = | 1  1  1  0 |
//         | 0  1  1  0 |        | 1/2  1/2  1/2|          | 0  1 -1 -1 |
//         | 0 -1  1  0 |        | 1/2 -1/2  1/2|
//         | 0  1  0 -1 |        | 0    0    1  |
//
// The sum over channels of the 16 products is 16 matrix products U_e [Cout, Cin] V_e [Cin, tiles],
// one per element e of the 4x4 transformed tile, which the gemm micro-kernel runs. That is 16 Cin Cout
// multiplies per tile where im2col's product needs 36 Cin Cout: 2.25 times fewer. The transforms
// here are additions only: the input's (B^T d B), the output's (A^T M A) and, for the filter
// gradient, the output gradient's (A gy A^T, the output transform's adjoint). The weights' transform
// U = G g G^T and the filter gradient's G^T D G are small and run in JavaScript (winograd-weights.ts).
//
// Both transforms work on four neighbouring tiles of a tile row at once, one tile per vector lane,
// so that each of the 16 matrices is read or written four columns at a time. The last group of a row
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
} as const;
export const WINO_FIELDS = 12;

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
 * rows of paddedWidth floats. `copy(c, b, lead)` fills it with plane (b, c) of the images at `src`
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
    copy(c: number, b: number, lead: number) {
      f.emit(op.get(scratch), op.i32(0), op.get(planeBytes), op.memoryFill);
      f.emit(op.get(l.src), op.get(b), op.get(l.imgStride), op.mul, op.get(c), op.get(l.chanStride), op.mul);
      f.emit(op.add, op.i32(2), op.shl, op.add, op.set(from));
      forRange(f, y, op.i32(0), l.height, 1, () => {
        // scratch row y + lead, column lead  <-  image row y
        f.emit(op.get(scratch), op.get(y), op.i32(lead), op.add, op.get(rowBytes), op.mul, op.add);
        f.emit(op.i32(4 * lead), op.add, op.get(from), op.get(y), op.get(width4), op.mul, op.add);
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
 * columns of zeros before it), and `body` runs per group with `dst` = its column in the matrices and
 * `at` = its top-left float in the plane.
 */
function imageGroups(
  f: FunctionBuilder,
  l: Record<keyof typeof WINO, number>,
  range: [number, number],
  plane: ReturnType<typeof planeCopier>,
  lead: number,
  body: (dst: number, at: number) => void,
): void {
  const [c, b, ty, tx, dst, at] = Array.from({ length: 6 }, () => f.locals(1, I32));
  forRange(f, c, op.get(range[0]), range[1], 1, () => {
    forRange(f, b, op.i32(0), l.batch, 1, () => {
      plane.copy(c, b, lead);
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
 * winogradInput(geo, c0, c1, scratch): V_e[c, t] = (B^T d B)[e] for channels c0..c1-1 and every tile t
 * (t = (b tilesH + ty) tilesW + tx). Each image plane is first copied into `scratch` (bytes) with a
 * border of zeros: one row and column of padding before, enough after for the widest read.
 */
export function winogradInputFunction(): FunctionBuilder {
  const f = new FunctionBuilder(4);
  const [geo, c0, c1, scratch] = [0, 1, 2, 3];
  const l = loadFields(f, geo);
  const raw = f.locals(12, V128); // patch rows i = 0..3, three vectors of each (columns 0-3, 4-7, 8-11)
  const rows = f.locals(12, V128); // the same after B^T on the left
  const [E, O, X, Y, c2, c3] = Array.from({ length: 6 }, () => f.locals(1, V128));
  const plane = planeCopier(f, l, scratch);
  imageGroups(f, l, [c0, c1], plane, 1, (dst, at) => {
    for (let i = 0; i < 4; i++) {
      for (let k = 0; k < 3; k++) {
        f.emit(op.get(at), op.get(plane.rowBytes), op.i32(i), op.mul, op.add, op.v128Load(16 * k));
        f.emit(op.set(raw + 3 * i + k));
      }
    }
    // B^T d: row 0 = d0 - d2, row 1 = d1 + d2, row 2 = d2 - d1, row 3 = d1 - d3
    const rowCombos: [number, number, number[]][] = [
      [0, 2, op.f32x4Sub],
      [1, 2, op.f32x4Add],
      [2, 1, op.f32x4Sub],
      [1, 3, op.f32x4Sub],
    ];
    rowCombos.forEach(([p, q, combine], i) => {
      for (let k = 0; k < 3; k++) {
        f.emit(op.get(raw + 3 * p + k), op.get(raw + 3 * q + k), combine, op.set(rows + 3 * i + k));
      }
    });
    for (let i = 0; i < 4; i++) {
      const [r0, r1, r2] = [rows + 3 * i, rows + 3 * i + 1, rows + 3 * i + 2];
      // the four columns j of each lane's patch: lane l of column j is patch column 2 l + j
      f.emit(op.get(r0), op.get(r1), op.f32x4Shuffle([0, 2, 4, 6]), op.set(E));
      f.emit(op.get(r0), op.get(r1), op.f32x4Shuffle([1, 3, 5, 7]), op.set(O));
      f.emit(op.get(r1), op.get(r2), op.f32x4Shuffle([0, 2, 4, 6]), op.set(X));
      f.emit(op.get(r1), op.get(r2), op.f32x4Shuffle([1, 3, 5, 7]), op.set(Y));
      f.emit(op.get(E), op.get(X), op.f32x4Shuffle([1, 2, 3, 6]), op.set(c2));
      f.emit(op.get(O), op.get(Y), op.f32x4Shuffle([1, 2, 3, 6]), op.set(c3));
      // (B^T d) B: the same combinations of the columns; element e = 4 i + j goes to V_e
      const colCombos: [number, number, number[]][] = [
        [E, c2, op.f32x4Sub],
        [O, c2, op.f32x4Add],
        [c2, O, op.f32x4Sub],
        [O, c3, op.f32x4Sub],
      ];
      colCombos.forEach(([p, q, combine], j) => {
        f.emit(op.get(dst), op.get(l.matStride), op.i32(4 * i + j), op.mul, op.add);
        f.emit(op.get(p), op.get(q), combine, op.v128Store(0));
      });
    }
  });
  return f;
}

/**
 * winogradOutput(geo, c0, c1, scratch): for output channels c0..c1-1, every tile's 2x2 outputs
 * Y = A^T M A + bias, from M_e[c, t], written into the images at `src` (only pixels inside the image).
 * `scratch` (32 bytes) holds a group's row when the image ends inside it.
 */
export function winogradOutputFunction(): FunctionBuilder {
  const f = new FunctionBuilder(4);
  const [geo, c0, c1, scratch] = [0, 1, 2, 3];
  const l = loadFields(f, geo);
  const [c, b, ty, tx, src, row, oy, bytes] = Array.from({ length: 8 }, () => f.locals(1, I32));
  const m = f.locals(16, V128);
  const s = f.locals(8, V128); // A^T M: rows 0 and 1, columns 0..3
  const [bias, y0, y1, lo, hi] = Array.from({ length: 5 }, () => f.locals(1, V128));
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
  /** A^T's two combinations of four vectors (then `after`): out0 = v0 + v1 + v2, out1 = v1 - v2 - v3. */
  const aT = (v: number[], out0: number, out1: number, after: number[][] = []) => {
    f.emit(op.get(v[0]), op.get(v[1]), op.f32x4Add, op.get(v[2]), op.f32x4Add, ...after, op.set(out0));
    f.emit(op.get(v[1]), op.get(v[2]), op.f32x4Sub, op.get(v[3]), op.f32x4Sub, ...after, op.set(out1));
  };
  forRange(f, c, op.get(c0), c1, 1, () => {
    f.emit(op.get(l.bias), op.get(c), op.i32(2), op.shl, op.add, op.v128Load32Splat(0), op.set(bias));
    forRange(f, b, op.i32(0), l.batch, 1, () => {
      forRange(f, ty, op.i32(0), l.tilesH, 1, () => {
        forRange(f, tx, op.i32(0), l.tilesW, 4, () => {
          tileAddress(f, l, c, b, ty, tx, src);
          for (let e = 0; e < 16; e++) {
            f.emit(
              op.get(src),
              op.get(l.matStride),
              op.i32(e),
              op.mul,
              op.add,
              op.v128Load(0),
              op.set(m + e),
            );
          }
          // A^T M: row 0 = M0 + M1 + M2, row 1 = M1 - M2 - M3 (rows of the 4x4 tile)
          for (let j = 0; j < 4; j++) aT([m + j, m + 4 + j, m + 8 + j, m + 12 + j], s + j, s + 4 + j);
          // oy = 2 ty; row = src image + (b imgStride + c chanStride + oy width + 2 tx) 4
          f.emit(op.get(ty), op.i32(1), op.shl, op.set(oy));
          for (let i = 0; i < 2; i++) {
            const r = s + 4 * i;
            // (A^T M) A: column 0 = r0 + r1 + r2, column 1 = r1 - r2 - r3, then the bias
            aT([r, r + 1, r + 2, r + 3], y0, y1, [op.get(bias), op.f32x4Add]);
            // lane l holds tile tx + l: interleaved, pixels 2 tx .. 2 tx + 7 of the row
            f.emit(op.get(y0), op.get(y1), op.f32x4Shuffle([0, 4, 1, 5]), op.set(lo));
            f.emit(op.get(y0), op.get(y1), op.f32x4Shuffle([2, 6, 3, 7]), op.set(hi));
            if (i === 1) {
              // the tile's second row exists only inside the image
              f.emit(op.get(oy), op.i32(1), op.add, op.get(l.height), op.ltS, op.if);
            }
            f.emit(
              op.get(l.src),
              op.get(b),
              op.get(l.imgStride),
              op.mul,
              op.get(c),
              op.get(l.chanStride),
              op.mul,
            );
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
 * winogradGradient(geo, c0, c1, scratch): for output-gradient channels c0..c1-1 of the images at
 * `src`, every tile's 2x2 gradient y taken to Z = A y A^T, Z_e[c, t] (the adjoint of the output
 * transform). With V from the input transform, the filter gradient is G^T (sum_t Z_t ⊙ V_t) G: 16
 * products Z_e V_e^T, then transformFilterGradient.
 */
export function winogradGradientFunction(): FunctionBuilder {
  const f = new FunctionBuilder(4);
  const [geo, c0, c1, scratch] = [0, 1, 2, 3];
  const l = loadFields(f, geo);
  const [L0, L1, zero] = Array.from({ length: 3 }, () => f.locals(1, V128));
  const y = f.locals(4, V128); // y[r][j] for rows r and columns j of each lane's tile: y + 2 r + j
  const z = f.locals(8, V128); // A y: rows 0..3, columns 0..1: z + 2 i + j
  const plane = planeCopier(f, l, scratch);
  f.emit(op.v128Zero, op.set(zero));
  imageGroups(f, l, [c0, c1], plane, 0, (dst, at) => {
    for (let r = 0; r < 2; r++) {
      f.emit(op.get(at), op.get(plane.rowBytes), op.i32(r), op.mul, op.add, op.v128Load(0), op.set(L0));
      f.emit(op.get(at), op.get(plane.rowBytes), op.i32(r), op.mul, op.add, op.v128Load(16), op.set(L1));
      f.emit(op.get(L0), op.get(L1), op.f32x4Shuffle([0, 2, 4, 6]), op.set(y + 2 * r));
      f.emit(op.get(L0), op.get(L1), op.f32x4Shuffle([1, 3, 5, 7]), op.set(y + 2 * r + 1));
    }
    // A y, A = [1 0; 1 1; 1 -1; 0 -1]: rows y0, y0 + y1, y0 - y1, -y1
    for (let j = 0; j < 2; j++) {
      const [y0, y1] = [y + j, y + 2 + j];
      f.emit(op.get(y0), op.set(z + j));
      f.emit(op.get(y0), op.get(y1), op.f32x4Add, op.set(z + 2 + j));
      f.emit(op.get(y0), op.get(y1), op.f32x4Sub, op.set(z + 4 + j));
      f.emit(op.get(zero), op.get(y1), op.f32x4Sub, op.set(z + 6 + j));
    }
    // (A y) A^T: the same on each row's two columns; element e = 4 i + j goes to Z_e
    for (let i = 0; i < 4; i++) {
      const [u0, u1] = [z + 2 * i, z + 2 * i + 1];
      const cols: number[][][] = [
        [op.get(u0)],
        [op.get(u0), op.get(u1), op.f32x4Add],
        [op.get(u0), op.get(u1), op.f32x4Sub],
        [op.get(zero), op.get(u1), op.f32x4Sub],
      ];
      cols.forEach((value, j) => {
        f.emit(op.get(dst), op.get(l.matStride), op.i32(4 * i + j), op.mul, op.add, ...value);
        f.emit(op.v128Store(0));
      });
    }
  });
  return f;
}
