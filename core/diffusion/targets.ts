// What the network predicts, and the conversions between the three choices, in one place: every
// objective builds its target here and every sampler reads a network's output here.
//
// A noisy sample is x_t = a_t x0 + s_t eps (a_t = sqrt(alphaBar_t), s_t = sqrt(1 - alphaBar_t) for
// DDPM; see core/diffusion/schedule.ts for the others). Given x_t, knowing any one of
//   eps   the noise (Ho et al. 2020),
//   x0    the clean data,
//   v     a_t eps - s_t x0 (Salimans & Ho 2022, sec. 4; for DDPM sqrt(alphaBar) eps - sqrt(1 - alphaBar) x0),
// gives the other two:
//   from eps:  x0 = (x_t - s eps) / a
//   from x0:   eps = (x_t - a x0) / s
//   from v:    x0 = (a x_t - s v) / (a^2 + s^2),  eps = (s x_t + a v) / (a^2 + s^2)
// (a^2 + s^2 = 1 for the variance-preserving schedules). The three differ in how an error in the
// output becomes an error in x0 and in eps, which is why they train differently: see lossWeight.
import { formatShape } from '../shape.ts';
import { allocate, Tensor } from '../tensor.ts';

export type Prediction = 'eps' | 'x0' | 'v';
export const PREDICTIONS: readonly Prediction[] = ['eps', 'x0', 'v'];

/** What each target is, for titles and tables. */
export const TARGET_NAMES: Record<Prediction, string> = {
  eps: 'the noise eps',
  x0: 'the clean data x0',
  v: 'v = a eps - s x0',
};

/** One coefficient for the whole batch, or one per sample (per entry of the first axis). */
export type PerSample = number | ArrayLike<number>;

/**
 * p x + q y with one (p, q) per sample or one for all, computed in float64 and stored in x's dtype.
 * No graph: targets and conversions are data, never parameters.
 */
export function combine(p: PerSample, x: Tensor, q: PerSample, y: Tensor): Tensor {
  if (formatShape(x.shape) !== formatShape(y.shape)) {
    throw new Error(`combine: ${formatShape(x.shape)} and ${formatShape(y.shape)} differ`);
  }
  const rows = typeof p === 'number' ? (typeof q === 'number' ? 1 : q.length) : p.length;
  if (typeof p !== 'number' && typeof q !== 'number' && q.length !== rows) {
    throw new Error(`combine: ${rows} and ${q.length} coefficients`);
  }
  if (rows > 1 && (x.ndim === 0 || x.shape[0] !== rows)) {
    throw new Error(`combine: ${rows} coefficients for a batch of shape ${formatShape(x.shape)}`);
  }
  const per = x.size / rows;
  const out = allocate(x.dtype, x.size);
  for (let r = 0; r < rows; r++) {
    const pr = typeof p === 'number' ? p : p[r];
    const qr = typeof q === 'number' ? q : q[r];
    for (let k = r * per; k < (r + 1) * per; k++) out[k] = pr * x.data[k] + qr * y.data[k];
  }
  return new Tensor(out, x.shape);
}

const map = (c: PerSample, f: (v: number, i: number) => number): PerSample =>
  typeof c === 'number' ? f(c, 0) : Array.from(c, f);
const at = (c: PerSample, i: number) => (typeof c === 'number' ? c : c[i]);

/** What a network trained for `prediction` should output for this x0 and eps: eps, x0 or v = a eps - s x0. */
export function predictionTarget(
  prediction: Prediction,
  x0: Tensor,
  eps: Tensor,
  a: PerSample,
  s: PerSample,
): Tensor {
  if (prediction === 'eps') return eps;
  if (prediction === 'x0') return x0;
  return combine(
    a,
    eps,
    map(s, (v) => -v),
    x0,
  );
}

/** A network's output read as `prediction`, turned into both the clean data and the noise it implies. */
export function fromPrediction(
  prediction: Prediction,
  output: Tensor,
  xt: Tensor,
  a: PerSample,
  s: PerSample,
): { x0: Tensor; eps: Tensor } {
  if (formatShape(output.shape) !== formatShape(xt.shape)) {
    throw new Error(
      `fromPrediction: the predicted ${prediction} ${formatShape(output.shape)} and x_t ${formatShape(xt.shape)} differ`,
    );
  }
  const n = typeof a === 'number' ? 1 : a.length;
  for (let i = 0; i < n; i++) {
    if (prediction === 'eps' && at(a, i) === 0) {
      throw new Error(
        'fromPrediction: an eps prediction cannot give x0 where the signal a_t is 0 (pure noise); predict x0 or v with this schedule',
      );
    }
    if (prediction === 'x0' && at(s, i) === 0) {
      throw new Error('fromPrediction: an x0 prediction cannot give eps where the noise s_t is 0');
    }
  }
  if (prediction === 'eps') {
    const x0 = combine(
      map(a, (v) => 1 / v),
      xt,
      map(s, (v, i) => -v / at(a, i)),
      output,
    );
    return { x0, eps: output };
  }
  if (prediction === 'x0') {
    const eps = combine(
      map(s, (v) => 1 / v),
      xt,
      map(a, (v, i) => -v / at(s, i)),
      output,
    );
    return { x0: output, eps };
  }
  const norm = map(a, (v, i) => v * v + at(s, i) ** 2); // 1 for variance-preserving schedules
  return {
    x0: combine(
      map(a, (v, i) => v / at(norm, i)),
      xt,
      map(s, (v, i) => -v / at(norm, i)),
      output,
    ),
    eps: combine(
      map(s, (v, i) => v / at(norm, i)),
      xt,
      map(a, (v, i) => v / at(norm, i)),
      output,
    ),
  };
}

/**
 * The objective's weight on the x0 error: with x_t fixed, E|error in the target|^2 = w E|error in x0|^2.
 * An output error e moves x0 by s/a e (eps), e (x0) or s/(a^2 + s^2) e (v), so
 *   w_eps = a^2 / s^2 = SNR,  w_x0 = 1,  w_v = (a^2 + s^2)^2 / s^2  (= 1 + SNR when a^2 + s^2 = 1).
 * eps spends its loss at low noise (SNR up to 1e4 on DDPM's schedule) and almost none at high noise,
 * x0 the other way round, once each is counted in the common currency of its error in x0.
 */
export function lossWeight(prediction: Prediction, a: number, s: number): number {
  if (prediction === 'x0') return 1;
  if (prediction === 'eps') return (a * a) / (s * s);
  return (a * a + s * s) ** 2 / (s * s);
}
