// The WebAssembly GEMM kernels, assembled from TypeScript (the Goto/BLIS scheme, Goto & van de Geijn 2008).
// C = A B is computed tile by tile: a 4 x 8 tile of C lives in eight 4-lane SIMD registers while k
// runs, each step loading 8 values of B (two vectors) and broadcasting 4 values of A. To make those
// loads contiguous, A is first packed into panels of 4 rows and B into panels of 8 columns, k-major,
// zero-padded at the edges so the inner kernel never handles a ragged tile.
// 4 x 8 measured fastest here (V8 gives wasm 16 SIMD registers; bigger tiles spill).
import { assembleModule, FunctionBuilder, I32, op, V128 } from './emit.ts';
import { col2imFunction, im2colFunction } from './conv-module.ts';
import { rowAffineFunction, rowSumsFunction } from './norm-module.ts';
import {
  winogradGradientFunction,
  winogradInputFunction,
  winogradOutputFunction,
} from './winograd-module.ts';
import { siluFunction, softmaxBackwardFunction, softmaxForwardFunction } from './pointwise-module.ts';

export const MR = 4; // rows of a tile (one panel of packed A)
export const NR = 8; // columns of a tile (one panel of packed B): two f32x4 vectors
const NV = NR / 4;

/**
 * macro(ap, bp, cp, mc, nc, kc, ldc, accumulate): for packed A (mc rows in panels of MR, kc deep) and
 * packed B (nc columns in panels of NR), C[mc, nc] (+)= A B, C with row stride ldc floats. All
 * pointers are byte addresses; mc is a multiple of MR and nc of NR.
 */
function macroKernel(): FunctionBuilder {
  const f = new FunctionBuilder(8);
  const [ap, bp, cp, mc, nc, kc, ldc, accumulate] = [0, 1, 2, 3, 4, 5, 6, 7];
  const i32 = f.locals(8, I32);
  const [jr, ir, pa, pb, k, crow, ldcBytes, aPanel] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => i32 + i);
  const bPanel = f.locals(1, I32);
  const vecs = f.locals(MR * NV + NV + 1, V128);
  const acc = (i: number, j: number) => vecs + i * NV + j;
  const bv = (j: number) => vecs + MR * NV + j;
  const av = vecs + MR * NV + NV;

  f.emit(op.get(ldc), op.i32(2), op.shl, op.set(ldcBytes));
  f.emit(op.i32(0), op.set(jr), op.get(bp), op.set(bPanel));
  f.emit(op.loop); // over column panels
  f.emit(op.i32(0), op.set(ir), op.get(ap), op.set(aPanel));
  f.emit(op.loop); // over row panels
  for (let i = 0; i < MR; i++) for (let j = 0; j < NV; j++) f.emit(op.v128Zero, op.set(acc(i, j)));
  f.emit(op.get(aPanel), op.set(pa), op.get(bPanel), op.set(pb), op.get(kc), op.set(k));
  f.emit(op.loop); // over k: acc[i][j] += a[i] * b[j]
  for (let j = 0; j < NV; j++) f.emit(op.get(pb), op.v128Load(16 * j), op.set(bv(j)));
  for (let i = 0; i < MR; i++) {
    f.emit(op.get(pa), op.v128Load32Splat(4 * i), op.set(av));
    for (let j = 0; j < NV; j++) {
      f.emit(op.get(acc(i, j)), op.get(av), op.get(bv(j)), op.f32x4Mul, op.f32x4Add, op.set(acc(i, j)));
    }
  }
  f.emit(op.get(pa), op.i32(MR * 4), op.add, op.set(pa));
  f.emit(op.get(pb), op.i32(NR * 4), op.add, op.set(pb));
  f.emit(op.get(k), op.i32(1), op.sub, op.tee(k), op.brIf(0), op.end);
  // crow = cp + (ir * ldc + jr) * 4
  f.emit(
    op.get(cp),
    op.get(ir),
    op.get(ldc),
    op.mul,
    op.get(jr),
    op.add,
    op.i32(2),
    op.shl,
    op.add,
    op.set(crow),
  );
  f.emit(op.get(accumulate), op.if);
  for (let i = 0; i < MR; i++) {
    for (let j = 0; j < NV; j++) {
      f.emit(op.get(acc(i, j)), op.get(crow), op.get(ldcBytes), op.i32(i), op.mul, op.add);
      f.emit(op.v128Load(16 * j), op.f32x4Add, op.set(acc(i, j)));
    }
  }
  f.emit(op.end);
  for (let i = 0; i < MR; i++) {
    for (let j = 0; j < NV; j++) f.emit(op.get(crow), op.get(acc(i, j)), op.v128Store(16 * j));
    if (i < MR - 1) f.emit(op.get(crow), op.get(ldcBytes), op.add, op.set(crow));
  }
  f.emit(op.get(aPanel), op.get(kc), op.i32(MR * 4), op.mul, op.add, op.set(aPanel));
  f.emit(op.get(ir), op.i32(MR), op.add, op.tee(ir), op.get(mc), op.ltU, op.brIf(0), op.end);
  f.emit(op.get(bPanel), op.get(kc), op.i32(NR * 4), op.mul, op.add, op.set(bPanel));
  f.emit(op.get(jr), op.i32(NR), op.add, op.tee(jr), op.get(nc), op.ltU, op.brIf(0), op.end);
  return f;
}

/**
 * packRows<width>(src, srcStrideBytes, kc, panels, dst): copies `panels` full panels `width` columns
 * wide of a row-major matrix (kc rows) into k-major panel order with vector loads: B panels (width NR),
 * or A panels of the matrix's transpose (width MR).
 */
function packRows(width: number): FunctionBuilder {
  const f = new FunctionBuilder(5);
  const [src, stride, kc, panels, dst] = [0, 1, 2, 3, 4];
  const [s, k, q] = [f.locals(1, I32), f.locals(1, I32), f.locals(1, I32)];
  f.emit(op.i32(0), op.set(q));
  f.emit(op.block, op.get(panels), op.eqz, op.brIf(0), op.loop);
  f.emit(op.get(src), op.get(q), op.i32(width * 4), op.mul, op.add, op.set(s), op.get(kc), op.set(k));
  f.emit(op.loop);
  for (let v = 0; v < width / 4; v++) f.emit(op.get(dst), op.get(s), op.v128Load(16 * v), op.v128Store(16 * v)); // prettier-ignore
  f.emit(op.get(dst), op.i32(width * 4), op.add, op.set(dst), op.get(s), op.get(stride), op.add, op.set(s));
  f.emit(op.get(k), op.i32(1), op.sub, op.tee(k), op.brIf(0), op.end);
  f.emit(op.get(q), op.i32(1), op.add, op.tee(q), op.get(panels), op.ltU, op.brIf(0), op.end, op.end);
  return f;
}

/**
 * packStrided(src, skBytes, sjBytes, kc, width, dst, dstStrideBytes): for k < kc and j < width,
 * dst[k * dstStride + j] = src[k * sk + j * sj]. Scalar; handles transposed operands and edge panels.
 */
function packStrided(): FunctionBuilder {
  const f = new FunctionBuilder(7);
  const [src, sk, sj, kc, width, dst, dstStride] = [0, 1, 2, 3, 4, 5, 6];
  const [j, s, d] = [f.locals(1, I32), f.locals(1, I32), f.locals(1, I32)];
  f.emit(op.block, op.get(kc), op.eqz, op.brIf(0), op.loop);
  f.emit(op.i32(0), op.set(j), op.get(src), op.set(s), op.get(dst), op.set(d));
  f.emit(op.loop, op.get(d), op.get(s), op.f32Load(0), op.f32Store(0));
  f.emit(op.get(s), op.get(sj), op.add, op.set(s), op.get(d), op.i32(4), op.add, op.set(d));
  f.emit(op.get(j), op.i32(1), op.add, op.tee(j), op.get(width), op.ltU, op.brIf(0), op.end);
  f.emit(op.get(src), op.get(sk), op.add, op.set(src), op.get(dst), op.get(dstStride), op.add, op.set(dst));
  f.emit(op.get(kc), op.i32(1), op.sub, op.tee(kc), op.brIf(0), op.end, op.end);
  return f;
}

/**
 * packT<width>(src, ldBytes, kc, panels, dst): packs `panels` panels of `width` rows of a row-major matrix
 * (row stride ldBytes), kc floats of each, into k-major panel order: dst[p * width + r] = src(r, p). This
 * is the layout of packed A (width MR) and of a transposed B (width NR). Four rows by four floats at a
 * time are loaded as vectors and transposed by shuffles; a tail of fewer than four floats goes one by one.
 */
function packTransposed(width: number): FunctionBuilder {
  const f = new FunctionBuilder(5);
  const [src, ld, kc, panels, dst] = [0, 1, 2, 3, 4];
  const [q, p, row, kc4] = [0, 1, 2, 3].map(() => f.locals(1, I32));
  const v = f.locals(8, V128); // four rows, then the four columns
  const groups = width / 4;
  // a (q, p) loop nest over whole panels, then over depth in steps of 4 (vectors) and 1 (the tail)
  f.emit(op.get(kc), op.i32(-4), op.and, op.set(kc4));
  f.emit(op.i32(0), op.set(q), op.block, op.get(panels), op.eqz, op.brIf(0), op.loop);
  // row = src + q width ld: this panel's first row
  f.emit(op.get(src), op.get(q), op.i32(width), op.mul, op.get(ld), op.mul, op.add, op.set(row));
  f.emit(op.i32(0), op.set(p), op.block, op.get(kc4), op.eqz, op.brIf(0), op.loop);
  for (let g = 0; g < groups; g++) {
    for (let i = 0; i < 4; i++) {
      // v[i] = the 4 floats at depth p of row g 4 + i
      f.emit(op.get(row), op.get(ld), op.i32(g * 4 + i), op.mul, op.add, op.get(p), op.i32(2), op.shl);
      f.emit(op.add, op.v128Load(0), op.set(v + i));
    }
    // 4x4 transpose: (r0 r1) interleaved, (r2 r3) interleaved, then the halves combined
    const pairs: [number, number, number[]][] = [
      [v, v + 1, [0, 4, 1, 5]],
      [v, v + 1, [2, 6, 3, 7]],
      [v + 2, v + 3, [0, 4, 1, 5]],
      [v + 2, v + 3, [2, 6, 3, 7]],
    ];
    pairs.forEach(([a, b, lanes], k) =>
      f.emit(op.get(a), op.get(b), op.f32x4Shuffle(lanes), op.set(v + 4 + k)),
    );
    const columns: [number, number, number[]][] = [
      [v + 4, v + 6, [0, 1, 4, 5]],
      [v + 4, v + 6, [2, 3, 6, 7]],
      [v + 5, v + 7, [0, 1, 4, 5]],
      [v + 5, v + 7, [2, 3, 6, 7]],
    ];
    columns.forEach(([a, b, lanes], c) => {
      // dst[(p + c) width + 4 g ..] = column c of this 4x4 block
      f.emit(op.get(dst), op.get(p), op.i32(c), op.add, op.i32(width * 4), op.mul, op.add);
      f.emit(op.get(a), op.get(b), op.f32x4Shuffle(lanes), op.v128Store(16 * g));
    });
  }
  f.emit(op.get(p), op.i32(4), op.add, op.tee(p), op.get(kc4), op.ltU, op.brIf(0), op.end, op.end);
  // the tail: depths kc4 .. kc - 1, one float at a time
  f.emit(op.block, op.get(p), op.get(kc), op.ltU, op.eqz, op.brIf(0), op.loop);
  for (let r = 0; r < width; r++) {
    f.emit(op.get(dst), op.get(p), op.i32(width), op.mul, op.i32(r), op.add, op.i32(2), op.shl, op.add);
    f.emit(op.get(row), op.get(ld), op.i32(r), op.mul, op.add, op.get(p), op.i32(2), op.shl, op.add);
    f.emit(op.f32Load(0), op.f32Store(0));
  }
  f.emit(op.get(p), op.i32(1), op.add, op.tee(p), op.get(kc), op.ltU, op.brIf(0), op.end, op.end);
  f.emit(op.get(dst), op.get(kc), op.i32(width * 4), op.mul, op.add, op.set(dst));
  f.emit(op.get(q), op.i32(1), op.add, op.tee(q), op.get(panels), op.ltU, op.brIf(0), op.end, op.end);
  return f;
}

/** zero(dst, bytes): memory.fill with 0. */
function zero(): FunctionBuilder {
  return new FunctionBuilder(2).emit(op.get(0), op.i32(0), op.get(1), op.memoryFill);
}

/** The exported functions, in the order the job interpreter refers to them by index. */
export const KERNEL_EXPORTS = [
  'macro',
  'packRows',
  'packStrided',
  'zero',
  'im2col',
  'col2im',
  'softmaxForward',
  'softmaxBackward',
  'silu',
  'rowSums',
  'rowAffine',
  'packT4',
  'packT8',
  'packRows4',
  'winogradInput',
  'winogradOutput',
  'winogradGradient',
  'winograd2Input',
  'winograd2Output',
  'winograd2Gradient',
] as const;

export function gemmModuleBytes(shared: boolean, maxPages: number): Uint8Array<ArrayBuffer> {
  const bodies = [
    macroKernel(),
    packRows(NR),
    packStrided(),
    zero(),
    im2colFunction(),
    col2imFunction(),
    softmaxForwardFunction(),
    softmaxBackwardFunction(),
    siluFunction(),
    rowSumsFunction(),
    rowAffineFunction(),
    packTransposed(MR),
    packTransposed(NR),
    packRows(MR),
    winogradInputFunction(3),
    winogradOutputFunction(3),
    winogradGradientFunction(3),
    winogradInputFunction(2),
    winogradOutputFunction(2),
    winogradGradientFunction(2),
  ];
  return assembleModule(
    KERNEL_EXPORTS.map((name, i) => ({ name, body: bodies[i] })),
    { minPages: 1, maxPages, shared },
  );
}
