// stage:1d's model and recipe, shared by the program (stages/1d.ts) and the page (web/), which trains
// the same toy live: data y ~ N(1, 0.01^2), ten EDM noise levels, a small MLP D(x, sigma) that removes
// one level's worth of noise, and a sampler that applies D once per level from pure noise.
import { Adam, add, column, concat, cosineLr, div, edmSigmas, full, levelTarget, log } from '../../core/index.ts'; // prettier-ignore
import { mlp, Module, mseLoss, mul, noGrad, sqrt, square, stepScope, sub } from '../../core/index.ts';
import type { Rng, Sequential, Tensor } from '../../core/index.ts';
import type { Mixture1d } from '../../core/stats.ts';

// D(x, sigma) = sigma * F(c_in x, c_in, ln(sigma) / 4), with EDM's scalings (Karras et al. 2022, Table 1):
// c_in = 1 / sqrt(sigma^2 + sigma_data^2) puts x at unit scale at every level, the output is the noise
// in units of sigma, and ln(sigma) / 4 tells F the level. F also sees c_in itself, so that the data's
// offset (x is centred on 1, not 0) is a linear function of its inputs: c_in x - c_in mu.
export class Denoiser extends Module {
  net: Sequential;
  constructor(
    width: number,
    readonly sigmaData: number,
    rng: Rng,
  ) {
    super();
    this.net = mlp([3, width, width, 1], rng);
  }
  forward(x: Tensor, sigma: Tensor): Tensor {
    const cIn = div(1, sqrt(add(square(sigma), this.sigmaData ** 2)));
    return mul(sigma, this.net.forward(concat([mul(cIn, x), cIn, div(log(sigma), 4)], 1)));
  }
}

/** The toy: its data, its noise levels, the denoiser and its optimiser, all drawn from one seeded rng. */
export class Gauss1d {
  readonly muData = 1;
  readonly sigmaData = 0.01;
  // sigma_max = 1 drowns the data; sigma_min = sigma_data / 10 barely touches it; 10 levels, then 0
  readonly sigmas = edmSigmas({ n: 10, sigmaMin: this.sigmaData / 10, sigmaMax: 1, rho: 7 });
  readonly denoiser: Denoiser;
  private readonly optimizer: Adam;
  readonly batch = 32;
  readonly lr = 3e-3;

  constructor(private readonly rng: Rng) {
    this.denoiser = new Denoiser(32, this.sigmaData, rng);
    this.optimizer = new Adam(this.denoiser.parameters(), { lr: this.lr });
  }

  /** The number of levels N; sampling applies D N times. */
  get levels(): number {
    return this.sigmas.length - 1;
  }

  /**
   * One training step (step of steps) on a fresh batch; returns its loss. For clean y and noise
   * n ~ N(0, sigma_i^2), the noisy x = y + n should become y + n * sigma_{i+1} / sigma_i one level down
   * (noise of std sigma_{i+1}). D must therefore remove x - (y + n sigma_{i+1} / sigma_i) =
   * n (1 - sigma_{i+1} / sigma_i).
   */
  trainStep(step: number, steps: number): number {
    const { rng, sigmas, batch } = this;
    this.optimizer.lr = cosineLr(this.lr, step, steps); // a decaying rate lets the last steps settle precisely
    // every array the step makes goes back to the pool when it ends (core/buffer-pool.ts): a browser
    // hands out fresh memory slowly, and each step makes dozens of small arrays
    return stepScope(this.optimizer.params, () => {
      const level = Array.from({ length: batch }, () => rng.int(0, this.levels)); // a random level per sample
      const sigma = column(level.map((i) => sigmas[i]));
      const sigmaNext = column(level.map((i) => sigmas[i + 1]));
      const y = rng.randn([batch, 1], { mean: this.muData, std: this.sigmaData });
      const n = mul(rng.randn([batch, 1]), sigma);
      const target = levelTarget(n, sigma, sigmaNext);
      // Dividing prediction and target by sigma weighs every level alike; otherwise the errors at
      // sigma = 1 would drown those at sigma = 0.001, where the final spread is decided.
      const loss = mseLoss(div(this.denoiser.forward(add(y, n), sigma), sigma), div(target, sigma));
      this.optimizer.zeroGrad();
      loss.backward();
      this.optimizer.step();
      return loss.item();
    });
  }

  /** `count` samples: N(0, sigma_max^2) noise, then one level of noise removed at a time; every level kept. */
  sample(count: number): Float32Array[] {
    let x = this.rng.randn([count, 1], { std: this.sigmas[0] });
    const history = [x.data as Float32Array];
    noGrad(() => {
      for (let i = 0; i < this.levels; i++) {
        x = sub(x, this.denoiser.forward(x, full([count, 1], this.sigmas[i])));
        history.push(x.data as Float32Array);
      }
    });
    return history;
  }

  /** The exact density at each level: the data noised to it, N(mu, sigma_data^2 + sigma_i^2). */
  exact(): Mixture1d[] {
    return this.sigmas.map((s) => [{ weight: 1, mean: this.muData, std: Math.hypot(this.sigmaData, s) }]);
  }
}
