// Softmax and SiLU as WebAssembly SIMD, four lanes at a time. Both need exp, which wasm lacks, so it is
// computed here the classic way (Cody & Waite range reduction): exp(x) = 2^n e^r with n = round(x / ln 2)
// and |r| <= ln(2) / 2, e^r by its degree-6 Taylor polynomial (relative error ~1e-7, float32's own
// rounding), and 2^n built directly as the float's exponent bits, (n + 127) << 23.
import { F32, FunctionBuilder, I32, op, V128, type Bytes } from './emit.ts';

const LOG2E = 1.4426950408889634;
const LN2_HI = 0.693359375; // ln 2 split in two, so n * LN2_HI is exact in float32
const LN2_LO = -2.1219444e-4;
const TAYLOR = [1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1, 1]; // Horner order, highest power first

/** 1.5 2^23: adding it to a float of magnitude below 2^22 rounds that float to an integer, to nearest
 * even, and leaves the integer in the low bits of the sum's mantissa. */
const ROUNDER = 12582912;
/** The bits of ROUNDER as a float32, 0x4b400000. */
const ROUNDER_BITS = 0x4b400000;

/**
 * exp of the f32x4 on the stack (uses `tmp`, two v128 locals). n = round(x / ln 2) comes from adding
 * ROUNDER, whose sum also holds n as an integer, so 2^n's exponent bits need no float-to-int conversion
 * (a dozen x64 instructions for the saturating one); the clamps use pmin and pmax, one instruction each.
 * The numbers are those of round-then-convert: fl(x log2 e) rounds to the same n either way.
 */
function expVector(f: FunctionBuilder, tmp: number): void {
  const [x, t] = [tmp, tmp + 1];
  // x clamped to [-87.34, 88.72] (pmax(x, lo) = x < lo ? lo : x), so 2^n stays a normal float
  f.emit(op.f32(-87.33654), op.f32x4Splat, op.f32x4Pmax, op.f32(88.72283), op.f32x4Splat, op.f32x4Pmin);
  f.emit(op.set(x));
  // t = x log2(e) + ROUNDER: n = t - ROUNDER
  f.emit(op.get(x), op.f32(LOG2E), op.f32x4Splat, op.f32x4Mul, op.f32(ROUNDER), op.f32x4Splat, op.f32x4Add);
  f.emit(op.set(t));
  // r = x - n LN2_HI - n LN2_LO, left in x
  const n = [op.get(t), op.f32(ROUNDER), op.f32x4Splat, op.f32x4Sub];
  f.emit(op.get(x), ...n, op.f32(LN2_HI), op.f32x4Splat, op.f32x4Mul, op.f32x4Sub, op.set(x));
  f.emit(op.get(x), ...n, op.f32(LN2_LO), op.f32x4Splat, op.f32x4Mul, op.f32x4Sub, op.set(x));
  f.emit(op.f32(TAYLOR[0]), op.f32x4Splat);
  for (const c of TAYLOR.slice(1)) f.emit(op.get(x), op.f32x4Mul, op.f32(c), op.f32x4Splat, op.f32x4Add);
  // times 2^n: the bits (n + 127) << 23, n + 127 being the low bits of t's bits plus 127
  f.emit(op.get(t), op.i32(127 - ROUNDER_BITS), op.i32x4Splat, op.i32x4Add, op.i32(23), op.i32x4Shl);
  f.emit(op.f32x4Mul);
}

/** exp of the f32 on the stack, the same computation one lane wide (for row tails). */
function expScalar(f: FunctionBuilder, tmp: number): void {
  const [x, n] = [tmp, tmp + 1];
  f.emit(op.f32(-87.33654), op.f32Max, op.f32(88.72283), op.f32Min, op.set(x));
  f.emit(op.get(x), op.f32(LOG2E), op.f32Mul, op.f32Nearest, op.set(n));
  f.emit(
    op.get(x),
    op.get(n),
    op.f32(LN2_HI),
    op.f32Mul,
    op.f32Sub,
    op.get(n),
    op.f32(LN2_LO),
    op.f32Mul,
    op.f32Sub,
    op.set(x),
  );
  f.emit(op.f32(TAYLOR[0]));
  for (const c of TAYLOR.slice(1)) f.emit(op.get(x), op.f32Mul, op.f32(c), op.f32Add);
  f.emit(
    op.get(n),
    op.i32TruncSatF32S,
    op.i32(127),
    op.add,
    op.i32(23),
    op.shl,
    op.f32ReinterpretI32,
    op.f32Mul,
  );
}

/**
 * Emits `for (i = from; i < to; i += 4) body` over byte offsets; `i` is an i32 local. The caller
 * passes `to` already rounded down to a multiple of 4 elements (16 bytes) when the body is vector.
 */
export function loop(
  f: FunctionBuilder,
  i: number,
  from: Bytes,
  to: Bytes,
  step: number,
  body: () => void,
): void {
  f.emit(from, op.set(i), op.block, op.get(i), to, op.ltS, op.eqz, op.brIf(0), op.loop);
  body();
  f.emit(op.get(i), op.i32(step), op.add, op.tee(i), to, op.ltS, op.brIf(0), op.end, op.end);
}

/** Horizontal reductions of a v128 local to a scalar on the stack. */
export function lanes(f: FunctionBuilder, v: number, combine: Bytes): void {
  f.emit(op.get(v), op.f32x4ExtractLane(0), op.get(v), op.f32x4ExtractLane(1), combine);
  f.emit(op.get(v), op.f32x4ExtractLane(2), combine, op.get(v), op.f32x4ExtractLane(3), combine);
}

/**
 * softmaxForward(x, out, r0, r1, cols, stride): out = softmax of the first `cols` entries of rows
 * r0..r1-1 of x, whose rows are `stride` floats apart (byte pointers; x and out may be the same).
 */
export function softmaxForwardFunction(): FunctionBuilder {
  const f = new FunctionBuilder(6);
  const [x, out, r0, r1, cols, stride] = [0, 1, 2, 3, 4, 5];
  const [r, j, row, vecEnd, end, at, rowBytes] = [0, 1, 2, 3, 4, 5, 6].map(() => f.locals(1, I32));
  const [max, sum] = [f.locals(1, F32), f.locals(1, F32)];
  const s = f.locals(2, F32);
  const [vmax, vsum] = [f.locals(1, V128), f.locals(1, V128)];
  const vtmp = f.locals(2, V128);
  f.emit(op.get(cols), op.i32(2), op.shl, op.set(end));
  f.emit(op.get(cols), op.i32(-4), op.and, op.i32(2), op.shl, op.set(vecEnd)); // whole vectors of 4
  f.emit(op.get(stride), op.i32(2), op.shl, op.set(rowBytes));
  loop(f, r, op.get(r0), op.get(r1), 1, () => {
    f.emit(op.get(r), op.get(rowBytes), op.mul, op.set(row));
    // the row's max, so that every exp argument is <= 0 (pmax: a NaN entry makes its row NaN regardless)
    f.emit(op.f32(-Infinity), op.f32x4Splat, op.set(vmax));
    loop(f, j, op.i32(0), op.get(vecEnd), 16, () => {
      f.emit(
        op.get(vmax),
        op.get(x),
        op.get(row),
        op.add,
        op.get(j),
        op.add,
        op.v128Load(0),
        op.f32x4Pmax,
        op.set(vmax),
      );
    });
    lanes(f, vmax, op.f32Max);
    f.emit(op.set(max));
    loop(f, j, op.get(vecEnd), op.get(end), 4, () => {
      f.emit(
        op.get(max),
        op.get(x),
        op.get(row),
        op.add,
        op.get(j),
        op.add,
        op.f32Load(0),
        op.f32Max,
        op.set(max),
      );
    });
    // e = exp(x - max), stored, and summed
    f.emit(op.v128Zero, op.set(vsum));
    loop(f, j, op.i32(0), op.get(vecEnd), 16, () => {
      f.emit(op.get(out), op.get(row), op.add, op.get(j), op.add);
      f.emit(
        op.get(x),
        op.get(row),
        op.add,
        op.get(j),
        op.add,
        op.v128Load(0),
        op.get(max),
        op.f32x4Splat,
        op.f32x4Sub,
      );
      expVector(f, vtmp);
      f.emit(op.tee(vtmp), op.v128Store(0), op.get(vsum), op.get(vtmp), op.f32x4Add, op.set(vsum));
    });
    lanes(f, vsum, op.f32Add);
    f.emit(op.set(sum));
    loop(f, j, op.get(vecEnd), op.get(end), 4, () => {
      f.emit(op.get(out), op.get(row), op.add, op.get(j), op.add);
      f.emit(op.get(x), op.get(row), op.add, op.get(j), op.add, op.f32Load(0), op.get(max), op.f32Sub);
      expScalar(f, s);
      f.emit(op.tee(s), op.f32Store(0), op.get(sum), op.get(s), op.f32Add, op.set(sum));
    });
    // normalise
    f.emit(op.f32(1), op.get(sum), op.f32Div, op.set(sum));
    loop(f, j, op.i32(0), op.get(vecEnd), 16, () => {
      f.emit(op.get(out), op.get(row), op.add, op.get(j), op.add, op.tee(at));
      f.emit(op.get(at), op.v128Load(0), op.get(sum), op.f32x4Splat, op.f32x4Mul, op.v128Store(0));
    });
    loop(f, j, op.get(vecEnd), op.get(end), 4, () => {
      f.emit(op.get(out), op.get(row), op.add, op.get(j), op.add, op.tee(at));
      f.emit(op.get(at), op.f32Load(0), op.get(sum), op.f32Mul, op.f32Store(0));
    });
  });
  return f;
}

/** softmaxBackward(y, gy, gx, r0, r1, cols): gx = y (gy - <gy, y>) row by row. */
export function softmaxBackwardFunction(): FunctionBuilder {
  const f = new FunctionBuilder(6);
  const [y, gy, gx, r0, r1, cols] = [0, 1, 2, 3, 4, 5];
  const [r, j, row, vecEnd, end, at] = [0, 1, 2, 3, 4, 5].map(() => f.locals(1, I32));
  const dot = f.locals(1, F32);
  const vdot = f.locals(1, V128);
  f.emit(op.get(cols), op.i32(2), op.shl, op.set(end));
  f.emit(op.get(cols), op.i32(-4), op.and, op.i32(2), op.shl, op.set(vecEnd));
  const addr = (base: number) => [...op.get(base), ...op.get(row), ...op.add, ...op.get(j), ...op.add];
  loop(f, r, op.get(r0), op.get(r1), 1, () => {
    f.emit(op.get(r), op.get(end), op.mul, op.set(row));
    f.emit(op.v128Zero, op.set(vdot));
    loop(f, j, op.i32(0), op.get(vecEnd), 16, () => {
      f.emit(
        op.get(vdot),
        addr(y),
        op.v128Load(0),
        addr(gy),
        op.v128Load(0),
        op.f32x4Mul,
        op.f32x4Add,
        op.set(vdot),
      );
    });
    lanes(f, vdot, op.f32Add);
    f.emit(op.set(dot));
    loop(f, j, op.get(vecEnd), op.get(end), 4, () => {
      f.emit(op.get(dot), addr(y), op.f32Load(0), addr(gy), op.f32Load(0), op.f32Mul, op.f32Add, op.set(dot));
    });
    loop(f, j, op.i32(0), op.get(vecEnd), 16, () => {
      f.emit(addr(gx), op.set(at), op.get(at), addr(y), op.v128Load(0));
      f.emit(addr(gy), op.v128Load(0), op.get(dot), op.f32x4Splat, op.f32x4Sub, op.f32x4Mul, op.v128Store(0));
    });
    loop(f, j, op.get(vecEnd), op.get(end), 4, () => {
      f.emit(addr(gx), op.set(at), op.get(at), addr(y), op.f32Load(0));
      f.emit(addr(gy), op.f32Load(0), op.get(dot), op.f32Sub, op.f32Mul, op.f32Store(0));
    });
  });
  return f;
}

/**
 * silu(x, out, g, i0, i1): elements i0..i1-1 (byte offsets, multiples of 16 except the last end).
 * With g = 0 (a null pointer): out = x sigmoid(x). Otherwise the backward: out = g (s + x s (1 - s)),
 * s = sigmoid(x) = 1 / (1 + exp(-x)).
 */
export function siluFunction(): FunctionBuilder {
  const f = new FunctionBuilder(5);
  const [x, out, g, i0, i1] = [0, 1, 2, 3, 4];
  const [i, vecEnd] = [f.locals(1, I32), f.locals(1, I32)];
  const [xs, sg] = [f.locals(1, F32), f.locals(1, F32)];
  const ts = f.locals(2, F32);
  const [xv, sv] = [f.locals(1, V128), f.locals(1, V128)];
  const tv = f.locals(2, V128);
  f.emit(op.get(i1), op.get(i0), op.sub, op.i32(-16), op.and, op.get(i0), op.add, op.set(vecEnd));
  loop(f, i, op.get(i0), op.get(vecEnd), 16, () => {
    f.emit(op.get(x), op.get(i), op.add, op.v128Load(0), op.set(xv));
    // s = 1 / (1 + exp(-x))
    f.emit(op.f32(1), op.f32x4Splat, op.f32(1), op.f32x4Splat, op.v128Zero, op.get(xv), op.f32x4Sub);
    expVector(f, tv);
    f.emit(op.f32x4Add, op.f32x4Div, op.set(sv));
    f.emit(op.get(g), op.eqz, op.if);
    f.emit(op.get(out), op.get(i), op.add, op.get(xv), op.get(sv), op.f32x4Mul, op.v128Store(0));
    f.emit(op.else);
    // g (s + x s (1 - s))
    f.emit(op.get(out), op.get(i), op.add, op.get(g), op.get(i), op.add, op.v128Load(0));
    f.emit(
      op.get(sv),
      op.get(xv),
      op.get(sv),
      op.f32x4Mul,
      op.f32(1),
      op.f32x4Splat,
      op.get(sv),
      op.f32x4Sub,
      op.f32x4Mul,
      op.f32x4Add,
    );
    f.emit(op.f32x4Mul, op.v128Store(0));
    f.emit(op.end);
  });
  loop(f, i, op.get(vecEnd), op.get(i1), 4, () => {
    f.emit(op.get(x), op.get(i), op.add, op.f32Load(0), op.set(xs));
    f.emit(op.f32(1), op.f32(1), op.f32(0), op.get(xs), op.f32Sub);
    expScalar(f, ts);
    f.emit(op.f32Add, op.f32Div, op.set(sg));
    f.emit(op.get(g), op.eqz, op.if);
    f.emit(op.get(out), op.get(i), op.add, op.get(xs), op.get(sg), op.f32Mul, op.f32Store(0));
    f.emit(op.else);
    f.emit(op.get(out), op.get(i), op.add, op.get(g), op.get(i), op.add, op.f32Load(0));
    f.emit(
      op.get(sg),
      op.get(xs),
      op.get(sg),
      op.f32Mul,
      op.f32(1),
      op.get(sg),
      op.f32Sub,
      op.f32Mul,
      op.f32Add,
    );
    f.emit(op.f32Mul, op.f32Store(0));
    f.emit(op.end);
  });
  return f;
}
