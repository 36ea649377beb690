// The two row kernels GroupNorm is built from (row-engine.ts), as WebAssembly SIMD. A group of channels
// is a run of rows of [batch * channels, spatial]; every per-row sum is short (at most one image
// plane), so it is accumulated in float32 here, and JavaScript combines the rows of a group in float64.
import { F32, FunctionBuilder, I32, op, V128 } from './emit.ts';
import { lanes, loop } from './pointwise-module.ts';

/**
 * rowSums(u, v, su, sv, out, r0, r1, n): for rows r in [r0, r1) of length n (byte pointers, f32
 * data), with a = su[r] and b = sv[r]: out[2r] = sum (u - a), out[2r + 1] = sum (u - a)(v - b).
 * Subtracting the group's mean first is what keeps the variance accurate (the two-pass formula).
 */
export function rowSumsFunction(): FunctionBuilder {
  const f = new FunctionBuilder(8);
  const [u, v, su, sv, out, r0, r1, n] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [r, j, row, vecEnd, end] = [0, 1, 2, 3, 4].map(() => f.locals(1, I32));
  const [a, b, s1, s2, d] = [0, 1, 2, 3, 4].map(() => f.locals(1, F32));
  const [va, vb, v1, v2, vd] = [0, 1, 2, 3, 4].map(() => f.locals(1, V128));
  f.emit(op.get(n), op.i32(2), op.shl, op.set(end));
  f.emit(op.get(n), op.i32(-4), op.and, op.i32(2), op.shl, op.set(vecEnd)); // whole vectors of 4
  const at = (base: number) => [...op.get(base), ...op.get(row), ...op.add, ...op.get(j), ...op.add];
  loop(f, r, op.get(r0), op.get(r1), 1, () => {
    f.emit(op.get(r), op.get(end), op.mul, op.set(row));
    f.emit(op.get(su), op.get(r), op.i32(2), op.shl, op.add, op.f32Load(0), op.set(a));
    f.emit(op.get(sv), op.get(r), op.i32(2), op.shl, op.add, op.f32Load(0), op.set(b));
    f.emit(op.get(a), op.f32x4Splat, op.set(va), op.get(b), op.f32x4Splat, op.set(vb));
    f.emit(op.v128Zero, op.set(v1), op.v128Zero, op.set(v2));
    loop(f, j, op.i32(0), op.get(vecEnd), 16, () => {
      f.emit(at(u), op.v128Load(0), op.get(va), op.f32x4Sub, op.tee(vd));
      f.emit(op.get(v1), op.f32x4Add, op.set(v1));
      f.emit(op.get(vd), at(v), op.v128Load(0), op.get(vb), op.f32x4Sub, op.f32x4Mul);
      f.emit(op.get(v2), op.f32x4Add, op.set(v2));
    });
    lanes(f, v1, op.f32Add);
    f.emit(op.set(s1));
    lanes(f, v2, op.f32Add);
    f.emit(op.set(s2));
    loop(f, j, op.get(vecEnd), op.get(end), 4, () => {
      f.emit(at(u), op.f32Load(0), op.get(a), op.f32Sub, op.tee(d), op.get(s1), op.f32Add, op.set(s1));
      f.emit(op.get(d), at(v), op.f32Load(0), op.get(b), op.f32Sub, op.f32Mul);
      f.emit(op.get(s2), op.f32Add, op.set(s2));
    });
    f.emit(op.get(out), op.get(r), op.i32(3), op.shl, op.add, op.get(s1), op.f32Store(0));
    f.emit(op.get(out), op.get(r), op.i32(3), op.shl, op.add, op.get(s2), op.f32Store(4));
  });
  return f;
}

/**
 * rowAffine(u, v, coef, out, r0, r1, n): out = c0 u + c1 (v - c3) + c2 row by row, with
 * (c0, c1, c2, c3) = coef[4r..]. GroupNorm's forward is scale (x - mu) + bias (c0 = 0); its backward
 * dx = a gy + k1 (x - mu) + k0. Centring on mu inside the kernel, rather than folding it into c2, keeps
 * float32 from losing the small difference of two large terms when |mu| is large.
 */
export function rowAffineFunction(): FunctionBuilder {
  const f = new FunctionBuilder(7);
  const [u, v, coef, out, r0, r1, n] = [0, 1, 2, 3, 4, 5, 6];
  const [r, j, row, vecEnd, end, c] = [0, 1, 2, 3, 4, 5].map(() => f.locals(1, I32));
  const [c0, c1, c2, c3] = [0, 1, 2, 3].map(() => f.locals(1, F32));
  const [v0, v1, v2, v3] = [0, 1, 2, 3].map(() => f.locals(1, V128));
  f.emit(op.get(n), op.i32(2), op.shl, op.set(end));
  f.emit(op.get(n), op.i32(-4), op.and, op.i32(2), op.shl, op.set(vecEnd));
  const at = (base: number) => [...op.get(base), ...op.get(row), ...op.add, ...op.get(j), ...op.add];
  loop(f, r, op.get(r0), op.get(r1), 1, () => {
    f.emit(op.get(r), op.get(end), op.mul, op.set(row));
    f.emit(op.get(coef), op.get(r), op.i32(4), op.shl, op.add, op.set(c));
    [c0, c1, c2, c3].forEach((local, k) => f.emit(op.get(c), op.f32Load(4 * k), op.set(local)));
    [v0, v1, v2, v3].forEach((local, k) => f.emit(op.get([c0, c1, c2, c3][k]), op.f32x4Splat, op.set(local)));
    loop(f, j, op.i32(0), op.get(vecEnd), 16, () => {
      f.emit(at(out), at(u), op.v128Load(0), op.get(v0), op.f32x4Mul);
      f.emit(at(v), op.v128Load(0), op.get(v3), op.f32x4Sub, op.get(v1), op.f32x4Mul, op.f32x4Add);
      f.emit(op.get(v2), op.f32x4Add, op.v128Store(0));
    });
    loop(f, j, op.get(vecEnd), op.get(end), 4, () => {
      f.emit(at(out), at(u), op.f32Load(0), op.get(c0), op.f32Mul);
      f.emit(at(v), op.f32Load(0), op.get(c3), op.f32Sub, op.get(c1), op.f32Mul, op.f32Add);
      f.emit(op.get(c2), op.f32Add, op.f32Store(0));
    });
  });
  return f;
}
