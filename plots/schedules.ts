// The charts of stage:schedules: several noise schedules side by side, and the three prediction targets
// seen through their loss weights and their best possible losses.
import type { Canvas } from './canvas.ts';
import { lineChart, type LineSeries } from './charts.ts';
import { panelGrid } from './grids.ts';

export type ScheduleCurve = {
  name: string;
  /** a_t for t = 0 .. T-1. */
  signal: ArrayLike<number>;
  /** s_t for t = 0 .. T-1. */
  noise: ArrayLike<number>;
  dashed?: boolean;
};

/** Three panels against t: the signal a_t, the noise s_t, and log10 SNR = log10(a_t^2 / s_t^2). */
export function scheduleCurves(curves: ScheduleCurve[], title: string): Canvas {
  const T = curves[0].signal.length;
  const ts = Array.from({ length: T }, (_, t) => t);
  const panel = (
    yTitle: string,
    yLabel: string,
    y: (c: ScheduleCurve) => number[],
    opts: { legend?: boolean; logY?: boolean; yRange?: [number, number] } = {},
  ) =>
    lineChart({
      title: yTitle,
      xLabel: 'timestep t',
      yLabel,
      width: 760,
      height: 560,
      ...opts,
      series: curves.map((c) => ({ name: c.name, x: ts, y: y(c), dashed: c.dashed })),
    });
  const signal = panel('signal a_t (sqrt(alphaBar_t) for DDPM)', 'a_t: how much of x0 is left', (c) =>
    Array.from(c.signal),
  );
  const noise = panel(
    'noise s_t (sqrt(1 - alphaBar_t) for DDPM)',
    's_t: std of the noise',
    (c) => Array.from(c.noise),
    { legend: false },
  );
  // below 1e-10 every schedule is pure noise as far as any sampler can tell; the high-end one goes to 1e-23
  const snr = panel(
    'SNR a_t^2 / s_t^2 (log scale)',
    'signal-to-noise ratio, unit-variance data',
    (c) => ts.map((t) => (c.signal[t] / c.noise[t]) ** 2),
    { legend: false, logY: true, yRange: [1e-10, 1e6] },
  );
  return panelGrid([signal, noise, snr], { cols: 3, title, fontScale: 2 });
}

/** One colour per prediction target (eps, x0, v), the same in every chart. */
export const TARGET_COLORS: Record<string, [number, number, number]> = {
  eps: [31, 119, 180],
  x0: [214, 39, 40],
  v: [44, 160, 44],
};

/**
 * Two panels against t + 1 on a log axis (the low-noise end is where the targets differ most): each
 * objective's weight on the x0 error, and the smallest loss each target can reach.
 */
export function targetCharts(
  ts: number[],
  weights: Record<string, number[]>,
  bestLoss: Record<string, number[]>,
  names: { weights: Record<string, string>; bestLoss: string },
  title: string,
): Canvas {
  const x = ts.map((t) => t + 1);
  const series = (values: Record<string, number[]>, label: (p: string) => string): LineSeries[] =>
    Object.keys(values).map((p) => ({ name: label(p), x, y: values[p], color: TARGET_COLORS[p] }));
  const common = { xLabel: 'timestep t + 1 (log scale)', logX: true, logY: true, width: 700, height: 500 };
  const left = lineChart({
    ...common,
    title: 'The loss of each target, counted in x0 errors',
    yLabel: 'weight w_t on |x0 error|^2',
    series: series(weights, (p) => names.weights[p]),
  });
  const right = lineChart({
    ...common,
    title: names.bestLoss,
    yLabel: 'best possible MSE per coordinate',
    series: series(bestLoss, (p) => p),
  });
  return panelGrid([left, right], { cols: 2, title, fontScale: 2 });
}
