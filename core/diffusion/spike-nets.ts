// Networks for data made of Gaussian spikes of one width sigma_data (the four-spike toy data): they
// guess the centre of the spike a noisy point came from, from an input on which the border between two
// spikes keeps its place and width at every noise level. stage:multimodal and stage:ddpm-multimodal use
// them; the plain networks of nets.ts left samples stranded between the spikes (see docs/toys.md).
import { add, div, log, mul, square, sub } from '../ops/elementwise.ts';
import { concat } from '../ops/shape.ts';
import { Module } from '../nn/module.ts';
import { mlp, type Sequential } from '../nn/layers.ts';
import { column, Tensor } from '../tensor.ts';
import { formatShape } from '../shape.ts';
import type { Rng } from '../random.ts';
import type { NoiseSchedule } from './schedule.ts';
import type { Prediction } from './targets.ts';
import { timesteps } from './nets.ts';

/**
 * A one-level denoiser for data made of Gaussian spikes of width sigma_data. For a single spike at c, the
 * best guess of the clean point is x0 = c_skip x + (1 - c_skip) c, c_skip = sigma_data^2 / (sigma^2 +
 * sigma_data^2): so the network F is asked only for c, the centre of the spike that x came from, and
 *   x0 = c_skip x + (1 - c_skip) F,   D(x) = (1 - sigma_next / sigma) (x - x0) = gain (x - F),
 * gain = (1 - sigma_next / sigma) sigma^2 / (sigma^2 + sigma_data^2).
 * F's input is x / (sigma^2 + sigma_data^2): the log-odds between two spikes of that width are linear
 * in it, so the border between spikes has the same place and width in it at every level, and F can carry
 * what it learns there at high noise (where training points cross the border) down to low noise (where
 * none do). asinh squeezes its range (up to 10^4 at the smallest sigma) to about +-10 without flattening
 * the border. F is also told the level, ln(sigma) / 4, but not EdmDenoiser's c_in x and c_in, which grow
 * with the level to +-100: given those as well, F fitted the levels apart and left 50-110 of 1,000
 * samples stranded.
 */
export class SpikeDenoiser extends Module {
  net: Sequential;
  constructor(
    readonly dim: number,
    width: number,
    readonly sigmaData: number,
    rng: Rng,
  ) {
    super();
    this.net = mlp([dim + 1, width, width, dim], rng);
  }
  /** F: the guessed centre of x's spike. x is [n, dim], sigma [n, 1]. */
  centre(x: Tensor, sigma: Tensor): Tensor {
    const z = div(x, add(square(sigma), this.sigmaData ** 2));
    const squeezed = new Tensor(z.data.map(Math.asinh), z.shape); // x is data: no gradient needed
    return this.net.forward(concat([squeezed, div(log(sigma), 4)], 1));
  }
  /** (1 - sigma_next / sigma) (1 - c_skip): how far one step moves x towards F. */
  gain(sigma: Tensor, sigmaNext: Tensor): Tensor {
    const s2 = square(sigma);
    return mul(sub(1, div(sigmaNext, sigma)), div(s2, add(s2, this.sigmaData ** 2)));
  }
  /** The one-level step D(x) = gain (x - F). */
  forward(x: Tensor, sigma: Tensor, sigmaNext: Tensor): Tensor {
    return mul(this.gain(sigma, sigmaNext), sub(x, this.centre(x, sigma)));
  }
}

/**
 * DDPM's network for data made of Gaussian spikes of width sigma_data: SpikeDenoiser's idea (above) in
 * DDPM's terms. In the coordinates x = x_t / a_t = x0 + sigma_t n, sigma_t = s_t / a_t,
 * the best guess of x0 for a single spike at c is c_skip x + (1 - c_skip) c, c_skip = sigma_data^2 /
 * (sigma_t^2 + sigma_data^2), so the MLP F is asked only for c, the centre of the spike x_t came from:
 *   x0hat = c_skip x_t / a_t + (1 - c_skip) F(asinh(x_t / (a_t (sigma_t^2 + sigma_data^2))), ln(sigma_t) / 4),
 * and the output is the eps, x0 or v that x0hat implies (eps = (x_t - a_t x0hat) / s_t). The log-odds
 * between two spikes are linear in x / (sigma^2 + sigma_data^2), so the border between spikes keeps its
 * place and width in F's input at every t, and what F learns there at mid noise, where training points
 * cross the border, carries down to low noise, where none do; asinh squeezes the input's range (up to
 * 5,000 at t = 0) to about +-9. F is told the level by ln(sigma_t) / 4 alone, not by DdpmMlp's c_in x_t,
 * a_t c_in and sinusoidal embedding.
 */
export class DdpmSpikeNet extends Module {
  net: Sequential;
  readonly prediction: Prediction;
  private readonly signal: Float64Array;
  private readonly noise: Float64Array;
  /** 1 / (a_t (sigma_t^2 + sigma_data^2)): x_t times this is F's input before asinh. */
  private readonly inScale: Float64Array;
  private readonly cSkip: Float64Array;
  /** ln(sigma_t) / 4, F's time input. */
  private readonly level: Float64Array;
  constructor(
    readonly schedule: NoiseSchedule,
    opts: { dim: number; width: number; sigmaData: number; prediction?: Prediction },
    rng: Rng,
  ) {
    super();
    this.prediction = opts.prediction ?? 'eps';
    const ts = Array.from({ length: schedule.T }, (_, t) => t);
    this.signal = Float64Array.from(ts, (t) => schedule.signal(t));
    this.noise = Float64Array.from(ts, (t) => schedule.noise(t));
    const sd2 = opts.sigmaData ** 2;
    const sigma = Float64Array.from(ts, (t) => schedule.sigma(t));
    this.inScale = sigma.map((g, t) => 1 / (this.signal[t] * (g * g + sd2)));
    this.cSkip = sigma.map((g) => sd2 / (g * g + sd2));
    this.level = sigma.map((g) => Math.log(g) / 4);
    this.net = mlp([opts.dim + 1, opts.width, opts.width, opts.dim], rng);
  }
  /** F: the guessed centre of the spike x_t came from. x_t is [n, dim]; t one timestep per row, or one for all. */
  centre(xt: Tensor, t: number | ArrayLike<number>): Tensor {
    const ts = this.rows(xt, t);
    const dim = xt.shape[1];
    const z = new Float32Array(xt.size); // x_t is data: no gradient needed
    for (let i = 0; i < ts.length; i++) {
      for (let j = 0; j < dim; j++) z[i * dim + j] = Math.asinh(xt.data[i * dim + j] * this.inScale[ts[i]]);
    }
    return this.net.forward(concat([new Tensor(z, xt.shape), column(ts.map((s) => this.level[s]))], 1));
  }
  /** The output read by the sampler and the loss: the eps, x0 or v implied by x0hat. */
  forward(xt: Tensor, t: number | ArrayLike<number>): Tensor {
    const ts = this.rows(xt, t);
    const per = (table: Float64Array, f: (v: number, s: number) => number = (v) => v) =>
      column(ts.map((s) => f(table[s], s)));
    // (targets.ts converts between targets too, but without gradients: these must carry them)
    const [a, sNoise] = [per(this.signal), per(this.noise)];
    const skip = per(this.cSkip, (c, s) => c / this.signal[s]); // c_skip / a_t, on x_t = a_t x
    const x0 = add(
      mul(skip, xt),
      mul(
        per(this.cSkip, (c) => 1 - c),
        this.centre(xt, ts),
      ),
    );
    if (this.prediction === 'x0') return x0;
    const eps = mul(
      sub(xt, mul(a, x0)),
      per(this.noise, (v) => 1 / v),
    );
    if (this.prediction === 'eps') return eps;
    return sub(mul(a, eps), mul(sNoise, x0)); // v = a eps - s x0
  }
  private rows(xt: Tensor, t: number | ArrayLike<number>): number[] {
    if (xt.ndim !== 2) throw new Error(`DdpmSpikeNet: x_t must be [n, dim], got ${formatShape(xt.shape)}`);
    return timesteps(t, xt.shape[0], this.schedule.T);
  }
}
