// The small networks of the toy stages, each an MLP wrapped in the input and output scalings that
// let it be precise at every noise level. A plain MLP fed raw (x, noise level) is accurate where the
// noise is large and hopeless where it is small, and the small levels decide the final spread.
import { add, div, log, mul, relu, sqrt, square } from '../ops/elementwise.ts';
import { concat, indexSelect, reshape, slice } from '../ops/shape.ts';
import { Module } from '../nn/module.ts';
import { mlp, uniformInit, type Sequential } from '../nn/layers.ts';
import { timeEmbedding } from '../nn/embedding.ts';
import { allocate, column, opResult, resultDtype, tensor, Tensor } from '../tensor.ts';
import { formatShape } from '../shape.ts';
import type { Rng } from '../random.ts';
import type { NoiseSchedule } from './schedule.ts';
import type { Prediction } from './targets.ts';

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

/**
 * The per-timestep scalings of the DDPM networks: EDM's c_in and c_out written in terms of any
 * schedule's x_t = a_t x0 + s_t eps (a^2 = alphaBar, s^2 = 1 - alphaBar for DDPM's).
 */
class DdpmScalings {
  /** c_in(t) = 1 / sqrt(a_t^2 sigma_data^2 + s_t^2): 1 / the std of x_t if the data had std sigma_data. */
  readonly cIn: Float64Array;
  /** a_t c_in(t): how much of x_0 is in the scaled input c_in x_t. */
  readonly signalIn: Float64Array;
  /** a_t and s_t, for centring inputs and outputs on the data's mean. */
  readonly signal: Float64Array;
  readonly noise: Float64Array;
  /** The scale of the output, by what it predicts: see outputScale. */
  readonly cOut: Float64Array;
  constructor(schedule: NoiseSchedule, sigmaData: number, prediction: Prediction) {
    const ts = Array.from({ length: schedule.T }, (_, t) => t);
    this.signal = Float64Array.from(ts, (t) => schedule.signal(t));
    this.noise = Float64Array.from(ts, (t) => schedule.noise(t));
    const noise = this.noise;
    this.cIn = this.signal.map((a, t) => 1 / Math.sqrt(a * a * sigmaData * sigmaData + noise[t] ** 2));
    this.signalIn = this.signal.map((a, t) => a * this.cIn[t]);
    this.cOut = this.signal.map((a, t) => outputScale(prediction, a, noise[t], this.cIn[t]));
  }
}

/**
 * The output scale c_out for each prediction target. eps: s_t c_in, the std of the ideal E[eps | x_t]
 * when the data has std sigma_data; it falls below 1 only where the noise is as fine as the data.
 * x0: 1, unscaled: the network outputs the data itself, at the data's own scale (the toy data sits at
 * distance 1 from the origin); stage:schedules measures how far from the least possible error in x0
 * that leaves it at low noise. v = a_t eps - s_t x0: the two scales combined as for independent parts,
 * sqrt(a_t^2 (s_t c_in)^2 + s_t^2), which follows eps at low noise and x0 at high noise.
 */
function outputScale(prediction: Prediction, a: number, s: number, cIn: number): number {
  if (prediction === 'eps') return s * cIn;
  if (prediction === 'x0') return 1;
  return Math.sqrt((a * s * cIn) ** 2 + s * s);
}

/** One timestep per row: a number stands for the same t on all n rows. */
export function timesteps(t: number | ArrayLike<number>, n: number, T: number): number[] {
  const ts = typeof t === 'number' ? new Array<number>(n).fill(t) : Array.from(t);
  if (ts.length !== n) throw new Error(`timesteps: ${ts.length} timesteps for ${n} rows`);
  for (const s of ts) {
    if (!Number.isInteger(s) || s < 0 || s >= T) throw new Error(`timestep ${s} is outside 0..${T - 1}`);
  }
  return ts;
}

/**
 * DDPM's network for toy data: one MLP for all timesteps, told t through the sinusoidal embedding,
 * predicting eps (the reference), x0 or v, with EDM's scalings written in DDPM's terms (x_t / a_t is
 * the data plus noise of std s_t / a_t):
 *   out(x_t, t) = c_out F(c_in x_t, a_t c_in, emb(t)),  c_in = 1 / sqrt(a_t^2 sigma_data^2 + s_t^2),
 * with c_out = s_t c_in for eps (see outputScale for x0 and v).
 * c_in puts x_t at unit scale at every t; a_t c_in is the scale the data was multiplied by, which makes
 * an offset in the data (a mean that is not 0) a linear function of the inputs; and the eps net's c_out
 * is the spread of the ideal E[eps | x_t] when the data has std sigma_data. For Gaussian data
 * N(mu, sigma_data^2) the ideal F is then exactly c_in x_t - a_t c_in mu at every t.
 * Without c_out the network had to learn that E[eps | x_t] flattens from slope 1 to 0.7 within the
 * last ten steps, where the noise becomes as narrow as the data; its slope at t = 0 came out 16% too
 * steep and the samples 18% too narrow (std 0.0054 where the exact eps gives 0.0066).
 */
export class DdpmMlp extends Module {
  net: Sequential;
  /** What the output is: eps, x0 or v. */
  readonly prediction: Prediction;
  private readonly scalings: DdpmScalings;
  private readonly embeddings: Tensor;
  constructor(
    readonly schedule: NoiseSchedule,
    opts: { dim: number; width: number; sigmaData: number; embDim?: number; prediction?: Prediction },
    rng: Rng,
  ) {
    super();
    const embDim = opts.embDim ?? 16;
    this.prediction = opts.prediction ?? 'eps';
    this.net = mlp([opts.dim + 1 + embDim, opts.width, opts.width, opts.dim], rng);
    this.scalings = new DdpmScalings(schedule, opts.sigmaData, this.prediction);
    // emb(t) for every t once; each batch picks its rows
    this.embeddings = timeEmbedding(
      Array.from({ length: schedule.T }, (_, t) => t),
      embDim,
    );
  }
  /** x_t is [n, dim]; t one timestep per row, or one for all. */
  forward(xt: Tensor, t: number | ArrayLike<number>): Tensor {
    if (xt.ndim !== 2) throw new Error(`DdpmMlp: x_t must be [n, dim], got ${formatShape(xt.shape)}`);
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
 * and only ever sees samples noised to level t. Its input is x_t centred and scaled as if the data
 * were N(mu_data, sigma_data^2), c_in (x_t - a_t mu_data), and its output (eps, x0 or v) is scaled by
 * c_out as in DdpmMlp (and, for x0 and v, centred on the target's value at mu_data). A shared network can learn the data's offset from all levels at once; a net
 * near t = 0, alone with inputs a hundred times wider than the data's spread, learnt it far too
 * slowly (and an extra input of size 70 killed its ReLUs), so the level nets are given mu_data.
 * The T nets are stored as stacked weights, [T, in, out] (x W, not PyTorch's W x), and run together
 * on their own rows; net t is the slice [t] of each weight.
 */
export class LevelMlps extends Module {
  weight1: Tensor;
  bias1: Tensor;
  weight2: Tensor;
  bias2: Tensor;
  /** What the output is: eps, x0 or v. */
  readonly prediction: Prediction;
  private readonly scalings: DdpmScalings;
  constructor(
    readonly schedule: NoiseSchedule,
    readonly opts: {
      dim: number;
      width: number;
      sigmaData: number;
      muData: number[];
      prediction?: Prediction;
    },
    rng: Rng,
  ) {
    super();
    const { dim, width } = opts;
    if (opts.muData.length !== dim)
      throw new Error(`LevelMlps: muData has ${opts.muData.length} values, dim is ${dim}`);
    const T = schedule.T;
    // PyTorch's Linear init for every level's two layers
    this.weight1 = uniformInit([T, dim, width], dim, rng);
    this.bias1 = uniformInit([T, 1, width], dim, rng);
    this.weight2 = uniformInit([T, width, dim], width, rng);
    this.bias2 = uniformInit([T, 1, dim], width, rng);
    this.prediction = opts.prediction ?? 'eps';
    this.scalings = new DdpmScalings(schedule, opts.sigmaData, this.prediction);
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
    if (xt.ndim !== 2 || xt.shape[1] !== this.opts.dim) {
      throw new Error(`LevelMlps: x_t must be [n, ${this.opts.dim}], got ${formatShape(xt.shape)}`);
    }
    return reshape(this.run(reshape(xt, [1, ...xt.shape]), t), xt.shape);
  }

  /** Nets first .. first + L - 1 on x_t of shape [L, n, dim]. */
  private run(xt: Tensor, first: number): Tensor {
    const [L, n, dim] = xt.shape;
    const pick = (w: Tensor) => (L === this.schedule.T ? w : slice(w, 0, first, first + L));
    // the input is data, not a parameter: computed directly, outside the graph
    const input = new Float32Array(xt.size);
    for (let l = 0; l < L; l++) {
      const [cIn, signal] = [this.scalings.cIn[first + l], this.scalings.signal[first + l]];
      for (let i = l * n * dim; i < (l + 1) * n * dim; i++)
        input[i] = cIn * (xt.data[i] - signal * this.opts.muData[i % dim]);
    }
    const h = relu(add(levelLinear(new Tensor(input, xt.shape), pick(this.weight1)), pick(this.bias1)));
    const cOut = tensor(Array.from(this.scalings.cOut.subarray(first, first + L)), [L, 1, 1]);
    const out = mul(cOut, add(levelLinear(h, pick(this.weight2)), pick(this.bias2)));
    if (this.prediction === 'eps') return out;
    // the output is centred like the input: on what the target is for x0 = mu_data and eps = 0
    // (x0: mu_data, v = a eps - s x0: -s_t mu_data), so each net learns only the deviation from it
    const offset = new Float32Array(L * dim);
    for (let l = 0; l < L; l++) {
      const scale = this.prediction === 'x0' ? 1 : -this.scalings.noise[first + l];
      for (let j = 0; j < dim; j++) offset[l * dim + j] = scale * this.opts.muData[j];
    }
    return add(out, new Tensor(offset, [L, 1, dim]));
  }
}

/**
 * x [L, n, in] times W [L, in, out], level by level: out[l] = x[l] W[l], dx[l] = dout[l] W[l]^T,
 * dW[l] = x[l]^T dout[l]. This is matmul with a batch dimension, written as plain loops because the
 * matrices are tiny and many (a thousand 8 x 2 by 2 x 16 products per layer), where a call into the
 * gemm kernel per matrix costs more than the arithmetic.
 */
export function levelLinear(x: Tensor, w: Tensor): Tensor {
  const [L, n, inF] = x.shape;
  const outF = w.shape[2];
  if (x.ndim !== 3 || w.ndim !== 3 || w.shape[0] !== L || w.shape[1] !== inF) {
    throw new Error(`levelLinear: x ${formatShape(x.shape)} does not match weights ${formatShape(w.shape)}`);
  }
  const X = x.data;
  const W = w.data;
  const dtype = resultDtype(x, w);
  const out = allocate(dtype, L * n * outF);
  for (let l = 0; l < L; l++) {
    for (let i = 0; i < n; i++) {
      const o = (l * n + i) * outF;
      for (let k = 0; k < inF; k++) {
        const xv = X[(l * n + i) * inF + k];
        const wo = (l * inF + k) * outF;
        for (let j = 0; j < outF; j++) out[o + j] += xv * W[wo + j];
      }
    }
  }
  return opResult('levelLinear', out, [L, n, outF], [x, w], (g) => {
    const gx = allocate(x.dtype, x.size);
    const gw = allocate(w.dtype, w.size);
    for (let l = 0; l < L; l++) {
      for (let i = 0; i < n; i++) {
        const o = (l * n + i) * outF;
        for (let k = 0; k < inF; k++) {
          const xi = (l * n + i) * inF + k;
          const wo = (l * inF + k) * outF;
          let acc = 0;
          for (let j = 0; j < outF; j++) {
            acc += g[o + j] * W[wo + j];
            gw[wo + j] += X[xi] * g[o + j];
          }
          gx[xi] = acc;
        }
      }
    }
    if (x.requiresGrad) x.accumulateGrad(gx, true);
    if (w.requiresGrad) w.accumulateGrad(gw, true);
  });
}

/** The eps-predicting DdpmMlp under its earlier name. */
export const EpsMlp = DdpmMlp;
