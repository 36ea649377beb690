// im2col and col2im as WebAssembly, in the same module (and memory) as the gemm kernels, so that a
// convolution's window matrix is built, multiplied and folded back without ever leaving that memory.
//
// Both walk the window matrix cols [K = channels kh kw, N = batch outH outW] one row (one kernel tap
// (c, i, j)) at a time. JavaScript precomputes, per row, the tap and the range of output positions whose
// tap falls inside the image (a row table), so the wasm loops need no division and no bounds tests:
// inside the range they copy (memory.copy when the stride is 1), outside it they write zeros.
import { FunctionBuilder, I32, op } from './emit.ts';

/** Geometry block fields (i32 each) that JavaScript writes before calling the kernels. */
export const GEO = {
  x: 0, // byte address of the images [batch, channels, height, width]
  cols: 1, // byte address of cols [K, N]
  table: 2, // byte address of the row table: ROW_FIELDS i32 per row
  batch: 3,
  chw: 4, // channels * height * width (floats per image)
  hw: 5, // height * width
  width: 6,
  strideH: 7,
  strideW: 8,
  padH: 9,
  padW: 10,
  outH: 11,
  outW: 12,
  n: 13, // batch * outH * outW
} as const;
export const GEO_FIELDS = 14;
/** Row table entry: c, i, j, oyLo, oyHi, oxLo, oxHi. */
export const ROW_FIELDS = 7;

/**
 * Emits the loop nest shared by both kernels: for rows r in [r0, r1), images b, output rows oy in the
 * valid range, with locals set for the body: `dst` = byte address of cols[r, b, oy, 0] and `src` = byte
 * address of x[b, c, oy sH - pH + i, -pW + j] (the image element under output column 0).
 */
function rowLoops(
  f: FunctionBuilder,
  body: (l: Record<string, number>) => void,
  edges: ((l: Record<string, number>) => void) | null,
): void {
  const [geo, r0, r1] = [0, 1, 2];
  const names = [
    'x',
    'cols',
    'table',
    'batch',
    'chw',
    'hw',
    'width',
    'strideH',
    'strideW',
    'padH',
    'padW',
    'outH',
    'outW',
    'n',
  ];
  const l: Record<string, number> = {};
  for (const name of names) l[name] = f.locals(1, I32);
  for (const name of [
    'r',
    'c',
    'i',
    'j',
    'oyLo',
    'oyHi',
    'oxLo',
    'oxHi',
    'b',
    'oy',
    't',
    'start',
    'image',
    'dst',
    'src',
    'rowBytes',
  ]) {
    l[name] = f.locals(1, I32);
  }
  names.forEach((name, k) => f.emit(op.get(geo), op.i32Load(4 * k), op.set(l[name])));
  f.emit(op.get(l.outW), op.i32(2), op.shl, op.set(l.rowBytes));
  f.emit(op.get(r0), op.set(l.r));
  f.emit(op.block, op.get(l.r), op.get(r1), op.ltS, op.eqz, op.brIf(0), op.loop); // rows
  f.emit(op.get(l.table), op.get(l.r), op.i32(4 * 7), op.mul, op.add, op.set(l.t));
  ['c', 'i', 'j', 'oyLo', 'oyHi', 'oxLo', 'oxHi'].forEach((name, k) =>
    f.emit(op.get(l.t), op.i32Load(4 * k), op.set(l[name])),
  );
  f.emit(op.i32(0), op.set(l.b), op.loop); // images
  // start = cols + (r n + b outH outW) * 4; image = x + (b chw + c hw) * 4
  f.emit(
    op.get(l.cols),
    op.get(l.r),
    op.get(l.n),
    op.mul,
    op.get(l.b),
    op.get(l.outH),
    op.get(l.outW),
    op.mul,
    op.mul,
    op.add,
  );
  f.emit(op.i32(2), op.shl, op.add, op.set(l.start));
  f.emit(
    op.get(l.x),
    op.get(l.b),
    op.get(l.chw),
    op.mul,
    op.get(l.c),
    op.get(l.hw),
    op.mul,
    op.add,
    op.i32(2),
    op.shl,
    op.add,
    op.set(l.image),
  );
  if (edges) edges(l);
  f.emit(op.get(l.oyLo), op.set(l.oy));
  f.emit(op.block, op.get(l.oy), op.get(l.oyHi), op.ltS, op.eqz, op.brIf(0), op.loop); // output rows
  f.emit(op.get(l.start), op.get(l.oy), op.get(l.rowBytes), op.mul, op.add, op.set(l.dst));
  // src = image + ((oy sH - pH + i) width - pW + j) * 4
  f.emit(
    op.get(l.image),
    op.get(l.oy),
    op.get(l.strideH),
    op.mul,
    op.get(l.padH),
    op.sub,
    op.get(l.i),
    op.add,
  );
  f.emit(
    op.get(l.width),
    op.mul,
    op.get(l.padW),
    op.sub,
    op.get(l.j),
    op.add,
    op.i32(2),
    op.shl,
    op.add,
    op.set(l.src),
  );
  body(l);
  f.emit(op.get(l.oy), op.i32(1), op.add, op.tee(l.oy), op.get(l.oyHi), op.ltS, op.brIf(0), op.end, op.end);
  f.emit(op.get(l.b), op.i32(1), op.add, op.tee(l.b), op.get(l.batch), op.ltS, op.brIf(0), op.end);
  f.emit(op.get(l.r), op.i32(1), op.add, op.tee(l.r), op.get(r1), op.ltS, op.brIf(0), op.end, op.end);
}

/** im2col(geo, r0, r1): writes rows r0..r1-1 of cols, zeros where the window hangs over the padding. */
export function im2colFunction(): FunctionBuilder {
  const f = new FunctionBuilder(3);
  const ox = f.locals(1, I32);
  rowLoops(
    f,
    (l) => {
      // [0, oxLo) zeros, [oxLo, oxHi) the image, [oxHi, outW) zeros. Rows are short (28 floats at most
      // here) and the edges a float or two, so plain stores beat memory.fill and memory.copy, whose
      // every call costs more than such a row.
      const whileOx = (limit: number, step: number, body: () => void) => {
        f.emit(
          op.block,
          op.get(ox),
          op.i32(step - 1),
          op.add,
          op.get(limit),
          op.ltS,
          op.eqz,
          op.brIf(0),
          op.loop,
        );
        body();
        f.emit(op.get(ox), op.i32(step), op.add, op.tee(ox));
        f.emit(op.i32(step - 1), op.add, op.get(limit), op.ltS, op.brIf(0), op.end, op.end);
      };
      const at = (base: number) => f.emit(op.get(base), op.get(ox), op.i32(2), op.shl, op.add);
      const zero = () => {
        at(l.dst);
        f.emit(op.f32(0), op.f32Store(0));
      };
      f.emit(op.i32(0), op.set(ox));
      whileOx(l.oxLo, 1, zero);
      f.emit(op.get(l.strideW), op.i32(1), op.eq, op.if);
      whileOx(l.oxHi, 4, () => {
        at(l.dst);
        at(l.src);
        f.emit(op.v128Load(0), op.v128Store(0));
      });
      whileOx(l.oxHi, 1, () => {
        at(l.dst);
        at(l.src);
        f.emit(op.f32Load(0), op.f32Store(0));
      });
      f.emit(op.else);
      whileOx(l.oxHi, 1, () => {
        at(l.dst);
        f.emit(op.get(l.src), op.get(ox), op.get(l.strideW), op.mul, op.i32(2), op.shl, op.add);
        f.emit(op.f32Load(0), op.f32Store(0));
      });
      f.emit(op.end);
      whileOx(l.outW, 1, zero);
    },
    (l) => {
      // whole output rows above and below the image: zeros
      f.emit(op.get(l.start), op.i32(0), op.get(l.oyLo), op.get(l.rowBytes), op.mul, op.memoryFill);
      f.emit(op.get(l.start), op.get(l.oyHi), op.get(l.rowBytes), op.mul, op.add, op.i32(0));
      f.emit(op.get(l.outH), op.get(l.oyHi), op.sub, op.get(l.rowBytes), op.mul, op.memoryFill);
    },
  );
  return f;
}

/**
 * col2im(geo, r0, r1): x[pixel] += cols entries of rows r0..r1-1 read from that pixel. Callers split
 * work by whole channels (rows c kh kw .. (c+1) kh kw), so two threads never add into one pixel.
 */
export function col2imFunction(): FunctionBuilder {
  const f = new FunctionBuilder(3);
  const ox = f.locals(1, I32);
  const from = f.locals(1, I32);
  const to = f.locals(1, I32);
  const end4 = f.locals(1, I32);
  rowLoops(
    f,
    (l) => {
      f.emit(op.get(l.oxLo), op.set(ox));
      f.emit(op.get(l.strideW), op.i32(1), op.eq, op.if);
      // stride 1: four lanes at a time, x[src + ox] += cols[dst + ox], then the tail
      f.emit(op.get(l.oxHi), op.i32(3), op.sub, op.set(end4));
      f.emit(op.block, op.get(ox), op.get(end4), op.ltS, op.eqz, op.brIf(0), op.loop);
      f.emit(op.get(l.src), op.get(ox), op.i32(2), op.shl, op.add, op.tee(to));
      f.emit(
        op.get(to),
        op.v128Load(0),
        op.get(l.dst),
        op.get(ox),
        op.i32(2),
        op.shl,
        op.add,
        op.v128Load(0),
      );
      f.emit(op.f32x4Add, op.v128Store(0));
      f.emit(op.get(ox), op.i32(4), op.add, op.tee(ox), op.get(end4), op.ltS, op.brIf(0), op.end, op.end);
      f.emit(op.end);
      f.emit(op.block, op.get(ox), op.get(l.oxHi), op.ltS, op.eqz, op.brIf(0), op.loop);
      f.emit(op.get(l.src), op.get(ox), op.get(l.strideW), op.mul, op.i32(2), op.shl, op.add, op.tee(to));
      f.emit(op.get(to), op.f32Load(0), op.get(l.dst), op.get(ox), op.i32(2), op.shl, op.add, op.tee(from));
      f.emit(op.f32Load(0), op.f32Add, op.f32Store(0));
      f.emit(op.get(ox), op.i32(1), op.add, op.tee(ox), op.get(l.oxHi), op.ltS, op.brIf(0), op.end, op.end);
    },
    null,
  );
  return f;
}
