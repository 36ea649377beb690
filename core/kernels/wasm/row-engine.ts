// The row-wise WebAssembly kernels: softmax, SiLU and GroupNorm. Operands are copied into the
// memory, the rows (or element ranges) split in equal parts across the threads, and results copied out.
import type { Storage } from '../../tensor.ts';
import type {
  GroupNormArgs,
  GroupNormBackwardArgs,
  GroupNormForwardArgs,
  SiluArgs,
  SiluBackwardArgs,
  SoftmaxArgs,
  SoftmaxBackwardArgs,
} from '../registry.ts';
import { FN, WasmArena } from './arena.ts';

export class RowEngine extends WasmArena {
  // ---- pointwise: copied in, split into equal ranges across the threads, copied out ----

  softmaxForward({ x, out, rows, cols }: SoftmaxArgs): void {
    this.reset();
    const [X, OUT] = [this.take(rows * cols), this.take(rows * cols)];
    const lists = this.phaseLists(rows * cols);
    this.commit();
    this.put(x, X, rows * cols);
    this.splitJobs(lists, rows, (r0, r1) => [FN.softmaxForward, X * 4, OUT * 4, r0, r1, cols, cols]);
    out.set(this.f32.subarray(OUT, OUT + rows * cols));
  }

  softmaxBackward({ y, gy, gx, rows, cols }: SoftmaxBackwardArgs): void {
    this.reset();
    const [Y, GY, GX] = [this.take(rows * cols), this.take(rows * cols), this.take(rows * cols)];
    const lists = this.phaseLists(rows * cols);
    this.commit();
    this.put(y, Y, rows * cols);
    this.put(gy, GY, rows * cols);
    this.splitJobs(lists, rows, (r0, r1) => [FN.softmaxBackward, Y * 4, GY * 4, GX * 4, r0, r1, cols]);
    gx.set(this.f32.subarray(GX, GX + rows * cols));
  }

  siluForward({ x, out }: SiluArgs): void {
    this.silu(x, out, null);
  }

  siluBackward({ x, g, gx }: SiluBackwardArgs): void {
    this.silu(x, gx, g);
  }

  /** SiLU forward (g = null) or backward, over element ranges split on multiples of 4. */
  private silu(x: Storage, out: Storage, g: Storage | null): void {
    const n = x.length;
    this.reset();
    const [X, OUT, G] = [this.take(n), this.take(n), g ? this.take(n) : 0];
    const lists = this.phaseLists(n);
    this.commit();
    this.put(x, X, n);
    if (g) this.put(g, G, n);
    this.siluInPlace(lists, X, OUT, G, n);
    out.set(this.f32.subarray(OUT, OUT + n));
  }

  // ---- GroupNorm: per-row sums in wasm, combined per group here in float64 (ts-norm.ts's formulas) ----

  /** xhat = (x - mu) rstd per group, out = xhat w_c + b_c: a pass for the means, one for the variances. */
  groupNormForward(a: GroupNormForwardArgs): void {
    const { x, out, bias, mean, rstd, batch, channels, spatial, groups, eps } = a;
    const [rows, size, perGroup] = [batch * channels, batch * channels * spatial, channels / groups];
    const count = perGroup * spatial;
    this.reset();
    const [X, OUT, MU, SUMS, COEF] = [size, size, rows, 2 * rows, 4 * rows].map((n) => this.take(n));
    const lists = this.phaseLists(size);
    this.commit();
    this.put(x, X, size);
    const f32 = this.f32;
    f32.fill(0, MU, MU + rows);
    const rowSums = () =>
      this.splitJobs(lists, rows, (r0, r1) => [
        FN.rowSums,
        X * 4,
        X * 4,
        MU * 4,
        MU * 4,
        SUMS * 4,
        r0,
        r1,
        spatial,
      ]);
    const groupSum = (bg: number, k: number) => {
      let total = 0;
      for (let row = bg * perGroup; row < (bg + 1) * perGroup; row++) total += f32[SUMS + 2 * row + k];
      return total;
    };
    rowSums(); // sum x
    for (let bg = 0; bg < batch * groups; bg++) {
      mean[bg] = groupSum(bg, 0) / count;
      f32.fill(mean[bg], MU + bg * perGroup, MU + (bg + 1) * perGroup);
    }
    rowSums(); // sum (x - mu)^2
    for (let bg = 0; bg < batch * groups; bg++) rstd[bg] = 1 / Math.sqrt(groupSum(bg, 1) / count + eps);
    this.normalise(lists, a, bias, X, COEF, OUT);
    if (a.silu) this.siluInPlace(lists, OUT, OUT, 0, size);
    out.set(f32.subarray(OUT, OUT + size));
  }

  /**
   * y = (x - mu) w_c rstd + b_c into Y, row by row, from the images at X and the statistics in `a`;
   * COEF (4 floats per row) takes each row's coefficients.
   */
  private normalise(
    lists: number[],
    a: GroupNormArgs & { mean: Storage; rstd: Storage },
    bias: Storage | null,
    X: number,
    COEF: number,
    Y: number,
  ): void {
    const { weight, mean, rstd, batch, channels, spatial, groups } = a;
    const [rows, perGroup] = [batch * channels, channels / groups];
    const f32 = this.f32;
    for (let row = 0; row < rows; row++) {
      const [bg, c] = [Math.floor(row / perGroup), row % channels];
      const scale = (weight === null ? 1 : weight[c]) * rstd[bg];
      const at = COEF + 4 * row;
      [f32[at], f32[at + 1], f32[at + 2], f32[at + 3]] = [0, scale, bias === null ? 0 : bias[c], mean[bg]];
    }
    this.splitJobs(lists, rows, (r0, r1) => [FN.rowAffine, X * 4, X * 4, COEF * 4, Y * 4, r0, r1, spatial]);
  }

  /** The SiLU kernel over n floats in the memory (forward: g = 0), split between the phase's threads. */
  private siluInPlace(lists: number[], X: number, OUT: number, G: number, n: number): void {
    this.splitJobs(lists, Math.ceil(n / 4), (q0, q1) => [
      FN.silu,
      X * 4,
      OUT * 4,
      G * 4,
      q0 * 16,
      Math.min(n, q1 * 4) * 4,
    ]);
  }

  /** dx = a_c gy + k1 (x - mu) + k0 per group, from the per-row sums of gy and of gy (x - mu). */
  groupNormBackward(a: GroupNormBackwardArgs): void {
    const { x, gy, gx, gWeight, gBias, weight, mean, rstd, batch, channels, spatial, groups } = a;
    const [rows, size, perGroup] = [batch * channels, batch * channels * spatial, channels / groups];
    const count = perGroup * spatial;
    this.reset();
    const [X, GY, GX, ZERO, MU, SUMS, COEF] = [size, size, size, rows, rows, 2 * rows, 4 * rows].map((n) =>
      this.take(n),
    );
    const lists = this.phaseLists(size);
    this.commit();
    this.put(x, X, size);
    this.put(gy, GY, size);
    const f32 = this.f32;
    if (a.silu) {
      // SiLU followed the norm: gy becomes gy silu'(y), the norm's output y recomputed into GX
      this.normalise(lists, a, a.bias ?? null, X, COEF, GX);
      this.siluInPlace(lists, GX, GY, GY, size);
    }
    f32.fill(0, ZERO, ZERO + rows);
    for (let row = 0; row < rows; row++) f32[MU + row] = mean[Math.floor(row / perGroup)];
    this.splitJobs(lists, rows, (r0, r1) => [
      FN.rowSums,
      GY * 4,
      X * 4,
      ZERO * 4,
      MU * 4,
      SUMS * 4,
      r0,
      r1,
      spatial,
    ]);
    gWeight?.fill(0);
    gBias?.fill(0);
    for (let bg = 0; bg < batch * groups; bg++) {
      const r = rstd[bg];
      let [sumGyhat, sumGyhatXhat] = [0, 0];
      for (let row = bg * perGroup; row < (bg + 1) * perGroup; row++) {
        const c = row % channels;
        const [sumGy, gyXhat] = [f32[SUMS + 2 * row], f32[SUMS + 2 * row + 1] * r]; // sum gy, sum gy xhat
        const w = weight === null ? 1 : weight[c];
        if (gWeight) gWeight[c] += gyXhat;
        if (gBias) gBias[c] += sumGy;
        sumGyhat += w * sumGy;
        sumGyhatXhat += w * gyXhat;
      }
      const k1 = (-r * r * sumGyhatXhat) / count;
      const k0 = (-r * sumGyhat) / count;
      for (let row = bg * perGroup; row < (bg + 1) * perGroup; row++) {
        const w = weight === null ? 1 : weight[row % channels];
        const at = COEF + 4 * row;
        [f32[at], f32[at + 1], f32[at + 2], f32[at + 3]] = [w * r, k1, k0, mean[bg]];
      }
    }
    if (!gx) return;
    this.splitJobs(lists, rows, (r0, r1) => [FN.rowAffine, GY * 4, X * 4, COEF * 4, GX * 4, r0, r1, spatial]);
    gx.set(f32.subarray(GX, GX + size));
  }
}
