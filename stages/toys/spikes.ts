// stage:multimodal's model and recipe, shared by the program (stages/multimodal.ts) and the page (web/):
// four narrow Gaussians (std 0.01, equal weights) at (-1,-1), (-1,1), (1,-1), (1,1), stage:2d's ten EDM
// noise levels and one-level target, and the SpikeDenoiser (core/diffusion/spike-nets.ts), which guesses
// which spike x came from.
import { Adam, add, column, cosineLr, div, edmSigmas, full, levelTarget, mseLoss, mul, noGrad, stepScope, sub } from '../../core/index.ts'; // prettier-ignore
import type { Rng, Tensor } from '../../core/index.ts';
import { SpikeDenoiser } from '../../core/diffusion/spike-nets.ts';
import { posteriorEps, sampleMixture, squareSpikes, type GaussianMixture } from '../../core/diffusion/mixture.ts'; // prettier-ignore

/** The toy: its data, noise levels, the denoiser and its optimiser, all drawn from one seeded rng. */
export class FourSpikes {
  readonly sigmaData = 0.01; // the width of each spike: the finest detail to get right, as in stage 1
  readonly data: GaussianMixture = squareSpikes(this.sigmaData);
  readonly centres = this.data.map((c) => c.mean);
  readonly sigmas = edmSigmas({ n: 10, sigmaMin: this.sigmaData / 10, sigmaMax: 1, rho: 7 }); // 10 levels, then 0
  readonly denoiser: SpikeDenoiser;
  private readonly optimizer: Adam;
  readonly batch = 128;
  readonly lr = 3e-3;

  constructor(private readonly rng: Rng) {
    this.denoiser = new SpikeDenoiser(2, 32, this.sigmaData, rng);
    this.optimizer = new Adam(this.denoiser.parameters(), { lr: this.lr });
  }

  /** The number of levels N; sampling applies D N times. */
  get levels(): number {
    return this.sigmas.length - 1;
  }

  /**
   * One training step (step of steps): stage:2d's step on the new data, with the error measured in
   * units of the gain, i.e. as the error in the guessed centre, which counts every level alike (in units
   * of sigma, as in stage:2d, the lowest levels would count a few hundred times more than the first).
   */
  trainStep(step: number, steps: number): number {
    const { rng, sigmas, batch, denoiser } = this;
    this.optimizer.lr = cosineLr(this.lr, step, steps);
    // every array the step makes goes back to the pool when it ends (core/buffer-pool.ts): a browser
    // hands out fresh memory slowly, and each step makes dozens of small arrays
    return stepScope(this.optimizer.params, () => {
      const level = Array.from({ length: batch }, () => rng.int(0, this.levels));
      const sigma = column(level.map((i) => sigmas[i]));
      const sigmaNext = column(level.map((i) => sigmas[i + 1]));
      const y = sampleMixture(this.data, batch, rng);
      const n = mul(rng.randn([batch, 2]), sigma);
      const target = levelTarget(n, sigma, sigmaNext);
      const gain = denoiser.gain(sigma, sigmaNext);
      const loss = mseLoss(div(denoiser.forward(add(y, n), sigma, sigmaNext), gain), div(target, gain));
      this.optimizer.zeroGrad();
      loss.backward();
      this.optimizer.step();
      return loss.item();
    });
  }

  /** `count` samples with the network, every level kept (history[0] is the starting noise). */
  sample(count: number): Tensor[] {
    const { sigmas } = this;
    return this.sampleWith(count, (x, i) =>
      this.denoiser.forward(x, full([count, 1], sigmas[i]), full([count, 1], sigmas[i + 1])),
    );
  }

  /**
   * `count` samples with the exact one-level denoiser of this mixture, (1 - sigma_{i+1} / sigma_i) E[n | x]:
   * the best any network could do with these ten levels.
   */
  sampleExact(count: number): Tensor[] {
    const { sigmas, data } = this;
    // E[n | x] = sigma E[eps | x]
    return this.sampleWith(count, (x, i) =>
      mul(posteriorEps(data, x, 1, sigmas[i]), sigmas[i] - sigmas[i + 1]),
    );
  }

  private sampleWith(count: number, denoise: (x: Tensor, i: number) => Tensor): Tensor[] {
    const history = [this.rng.randn([count, 2], { std: this.sigmas[0] })];
    noGrad(() => {
      for (let i = 0; i < this.levels; i++) history.push(sub(history[i], denoise(history[i], i)));
    });
    return history;
  }
}
