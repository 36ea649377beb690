// The small networks of the toy stages, each an MLP wrapped in the input and output scalings that
// let it be precise at every noise level. A plain MLP fed raw (x, noise level) is accurate where the
// noise is large and hopeless where it is small, and the small levels decide the final spread.
import { add, div, log, mul, sqrt, square, sub } from '../ops/elementwise.ts';
import { concat, indexSelect, reshape } from '../ops/shape.ts';
import { sum } from '../ops/reduce.ts';
import { relu } from '../ops/elementwise.ts';
import { Module } from '../nn/module.ts';
import { mlp, uniformInit, type Sequential } from '../nn/layers.ts';
import { timeEmbedding } from '../nn/embedding.ts';
import { column, ones, tensor, Tensor } from '../tensor.ts';
import { formatShape } from '../shape.ts';
import type { Rng } from '../random.ts';
import type { DdpmSchedule } from './ddpm.ts';

/**
 * A one-level denoiser for data in `dim` dimensions, with EDM's scalings (Karras et al. 2022,
 * Table 1): D(x, sigma) = sigma F(c_in x, c_in, ln(sigma) / 4). c_in = 1 / sqrt(sigma^2 + sigma_data^2)
 * puts x at unit scale at every level; F's output is the noise in units of sigma; ln(sigma) / 4
 * tells F the level. F also sees c_in itself, so that an offset in the data (a mean that is not 0)
 * is a linear function of its inputs: c_in x - c_in mu.
 */
export class EdmDenoiser extends Module {
  net: Sequential;
  constructor(
    readonly dim: number,
    width: number,
    readonly sigmaData: number,
    rng: Rng,
  ) {
    super();
    this.net = mlp([dim + 2, width, width, dim], rng);
  }
  /** x is [n, dim], sigma [n, 1]. */
  forward(x: Tensor, sigma: Tensor): Tensor {
    const cIn = div(1, sqrt(add(square(sigma), this.sigmaData ** 2)));
    return mul(sigma, this.net.forward(concat([mul(cIn, x), cIn, div(log(sigma), 4)], 1)));
  }
}

/** Per-timestep inputs shared by the DDPM networks: EDM's c_in written in DDPM's terms. */
class DdpmScalings {
  /** c_in(t) = 1 / sqrt(alphaBar_t sigma_data^2 + 1 - alphaBar_t): 1 / the std of x_t if the data had std sigma_data. */
  readonly cIn: Float64Array;
  /** sqrt(alphaBar_t) c_in(t): how much of x_0 is in the scaled input. */
  readonly signalIn: Float64Array;
  readonly cOut: Float64Array;
  constructor(schedule: DdpmSchedule, sigmaData: number) {
    const ab = schedule.alphaBar;
    this.cIn = ab.map((a) => 1 / Math.sqrt(a * sigmaData * sigmaData + 1 - a));
    this.signalIn = ab.map((a, t) => Math.sqrt(a) * this.cIn[t]);
    this.cOut = ab.map((a, t) => Math.sqrt(1 - a) * this.cIn[t]);
  }
}

/** One timestep per row: a number stands for the same t on all n rows. */
function timesteps(t: number | ArrayLike<number>, n: number, T: number): number[] {
  const ts = typeof t === 'number' ? new Array<number>(n).fill(t) : Array.from(t);
  if (ts.length !== n) throw new Error(`timesteps: ${ts.length} timesteps for ${n} rows`);
  for (const s of ts) {
    if (!Number.isInteger(s) || s < 0 || s >= T) throw new Error(`timestep ${s} is outside 0..${T - 1}`);
  }
  return ts;
}

/**
 * DDPM's noise predictor for toy data: one MLP for all timesteps, told t through the sinusoidal
 * embedding, with EDM's scalings written in DDPM's terms (x_t / sqrt(alphaBar_t) is the data plus
 * noise of std sqrt(1 / alphaBar_t - 1)):
 *   eps(x_t, t) = c_out F(c_in x_t, sqrt(alphaBar_t) c_in, emb(t)),
 *   c_in = 1 / sqrt(alphaBar_t sigma_data^2 + 1 - alphaBar_t),  c_out = sqrt(1 - alphaBar_t) c_in.
 * c_in puts x_t at unit scale at every t; sqrt(alphaBar_t) c_in is the scale the data was multiplied
 * by, which makes an offset in the data (a mean that is not 0) a linear function of the inputs; and
 * c_out is the spread of the ideal E[eps | x_t] when the data has std sigma_data. For Gaussian data
 * N(mu, sigma_data^2) the ideal F is then exactly c_in x_t - sqrt(alphaBar_t) c_in mu at every t:
 * the network has nothing left to learn about t at the very smallest noise, where c_out falls from 1
 * to 0.7 within the first ten steps and a network without c_out got the final spread visibly wrong.
 */
export class EpsMlp extends Module {
  net: Sequential;
  private readonly scalings: DdpmScalings;
  private readonly embeddings: Tensor;
  constructor(
    readonly schedule: DdpmSchedule,
    opts: { dim: number; width: number; sigmaData: number; embDim?: number },
    rng: Rng,
  ) {
    super();
    const embDim = opts.embDim ?? 16;
    this.net = mlp([opts.dim + 1 + embDim, opts.width, opts.width, opts.dim], rng);
    this.scalings = new DdpmScalings(schedule, opts.sigmaData);
    // emb(t) for every t once; each batch picks its rows
    this.embeddings = timeEmbedding(
      Array.from({ length: schedule.T }, (_, t) => t),
      embDim,
    );
  }
  /** x_t is [n, dim]; t one timestep per row, or one for all. */
  forward(xt: Tensor, t: number | ArrayLike<number>): Tensor {
    if (xt.ndim !== 2) throw new Error(`EpsMlp: x_t must be [n, dim], got ${formatShape(xt.shape)}`);
    const ts = timesteps(t, xt.shape[0], this.schedule.T);
    const perRow = (v: Float64Array) => column(ts.map((s) => v[s]));
    const input = concat(
      [
        mul(perRow(this.scalings.cIn), xt),
        perRow(this.scalings.signalIn),
        indexSelect(this.embeddings, 0, ts),
      ],
      1,
    );
    return mul(perRow(this.scalings.cOut), this.net.forward(input));
  }
}

/**
 * One small MLP per timestep instead of one network with a time input: net t has its own weights
 * and only ever sees samples noised to level t. Net t sees the same scaled inputs as EpsMlp,
 * (c_in x_t, sqrt(alphaBar_t) c_in), and its output is scaled the same way; it needs no time input.
 * The T networks are stored as stacked weights, [T, in, out] (x W, not PyTorch's W x), so that one
 * batched matmul runs them all on their own rows; net t is the slice [t] of each weight.
 */
export class LevelMlps extends Module {
  weight1: Tensor;
  bias1: Tensor;
  weight2: Tensor;
  bias2: Tensor;
  private readonly muData: number[];
  private readonly scalings: DdpmScalings;
  constructor(
    readonly schedule: DdpmSchedule,
    readonly opts: { dim: number; width: number; sigmaData: number; muData?: number[] },
    rng: Rng,
  ) {
    super();
    const { dim, width } = opts;
    this.muData = opts.muData ?? new Array<number>(dim).fill(0);
    const T = schedule.T;
    // PyTorch's Linear init for every level's two layers
    this.weight1 = uniformInit([T, dim + 1, width], dim + 1, rng);
    this.bias1 = uniformInit([T, 1, width], dim + 1, rng);
    this.weight2 = uniformInit([T, width, dim], width, rng);
    this.bias2 = uniformInit([T, 1, dim], width, rng);
    this.scalings = new DdpmScalings(schedule, opts.sigmaData);
  }

  /** Runs net t on rows [t] of x_t, which is [T, n, dim]: every level at once, for training. */
  forwardAll(xt: Tensor): Tensor {
    const T = this.schedule.T;
    if (xt.ndim !== 3 || xt.shape[0] !== T || xt.shape[2] !== this.opts.dim) {
      throw new Error(`LevelMlps: x_t must be [${T}, n, ${this.opts.dim}], got ${formatShape(xt.shape)}`);
    }
    return this.run(xt, 0);
  }

  /** Runs net t alone on a batch x_t of shape [n, dim], for sampling. */
  forward(xt: Tensor, t: number): Tensor {
    timesteps(t, 1, this.schedule.T);
    return reshape(this.run(reshape(xt, [1, ...xt.shape]), t), xt.shape);
  }

  /** Nets first .. first + L - 1 on x_t of shape [L, n, dim]. */
  private run(xt: Tensor, first: number): Tensor {
    const [L, n] = xt.shape;
    const levels = Array.from({ length: L }, (_, i) => first + i);
    const perLevel = (v: Float64Array) =>
      tensor(
        levels.map((t) => v[t]),
        [L, 1, 1],
      );
    const pick = (w: Tensor) => (L === this.schedule.T ? w : indexSelect(w, 0, levels));
    const signal = mul(perLevel(this.scalings.signalIn), ones([L, n, 1]));
    // c_in (x_t - sqrt(alphaBar_t) mu_data): x_t centred and scaled as if the data were N(mu_data, sigma_data^2)
    const centre = mul(
      perLevel(this.schedule.alphaBar.map(Math.sqrt)),
      tensor(this.muData, [1, 1, this.opts.dim]),
    );
    const input = concat([mul(perLevel(this.scalings.cIn), sub(xt, centre)), signal], 2);
    const h = relu(add(levelLinear(input, pick(this.weight1)), pick(this.bias1)));
    return mul(perLevel(this.scalings.cOut), add(levelLinear(h, pick(this.weight2)), pick(this.bias2)));
  }
}

/**
 * x [L, n, in] times W [L, in, out], level by level: a batched matmul, written as a broadcast product
 * summed over `in`, because these matrices are tiny and many (a thousand 2 x 16 products).
 */
function levelLinear(x: Tensor, w: Tensor): Tensor {
  const [L, n, inF] = x.shape;
  const out = w.shape[2];
  return sum(mul(reshape(x, [L, n, inF, 1]), reshape(w, [L, 1, inF, out])), 2);
}
