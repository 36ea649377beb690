// The one source of randomness: a seeded generator (seedrandom's Alea) passed explicitly to whatever
// needs random numbers, so that the same seed always gives the same numbers. Its state can be saved
// in a checkpoint and restored, so a resumed run draws exactly what an uninterrupted one would have.
import seedrandom from 'seedrandom';
import { allocate, Tensor, type DType } from './tensor.ts';
import { shapeSize } from './shape.ts';

export type RngState = { alea: seedrandom.State.Alea; spare: number | null };

export class Rng {
  private prng: seedrandom.StatefulPRNG<seedrandom.State.Alea>;
  /** Box-Muller makes normals in pairs; the second one is kept for the next call. */
  private spare: number | null = null;

  constructor(seed: number | string | RngState) {
    if (typeof seed === 'object') {
      this.prng = seedrandom.alea('', { state: seed.alea });
      this.spare = seed.spare;
    } else {
      this.prng = seedrandom.alea(String(seed), { state: true });
    }
  }

  state(): RngState {
    return { alea: this.prng.state(), spare: this.spare };
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.prng.double();
  }

  /** Standard normal, by the Box-Muller transform. */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.prng.double(); // log(0) is -inf
    const v = this.prng.double();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    if (!(hi > lo)) throw new Error(`Rng.int: empty range [${lo}, ${hi})`);
    return lo + Math.floor(this.prng.double() * (hi - lo));
  }

  /** A random ordering of 0..n-1 (Fisher-Yates). */
  permutation(n: number): number[] {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  }

  /** A tensor of independent N(mean, std^2) draws. */
  randn(shape: readonly number[], opts: { mean?: number; std?: number; dtype?: DType } = {}): Tensor {
    const { mean = 0, std = 1, dtype = 'float32' } = opts;
    const data = allocate(dtype, shapeSize(shape));
    for (let i = 0; i < data.length; i++) data[i] = mean + std * this.normal();
    return new Tensor(data, shape);
  }

  /** A tensor of independent U(lo, hi) draws. */
  rand(shape: readonly number[], opts: { lo?: number; hi?: number; dtype?: DType } = {}): Tensor {
    const { lo = 0, hi = 1, dtype = 'float32' } = opts;
    const data = allocate(dtype, shapeSize(shape));
    for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * this.uniform();
    return new Tensor(data, shape);
  }
}
