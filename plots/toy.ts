// The charts the toy stages share: a loss curve, and one histogram per noise level against the exact
// density the samples should follow at that level.
import { gaussianMixturePdf, type Mixture1d } from '../core/stats.ts';
import type { Canvas } from './canvas.ts';
import { lineChart } from './charts.ts';
import { panelGrid } from './grids.ts';
import { histogramChart } from './histogram.ts';

export function lossChart(losses: number[], title = 'Training loss'): Canvas {
  // an exponential moving average shows the trend through the minibatch noise
  const smooth: number[] = [];
  losses.forEach((l, i) => smooth.push(i === 0 ? l : 0.98 * smooth[i - 1] + 0.02 * l));
  const steps = losses.map((_, i) => i + 1);
  return lineChart({
    title,
    xLabel: 'training step',
    yLabel: 'loss',
    logY: true,
    series: [
      { name: 'loss per step', x: steps, y: losses, alpha: 0.35 },
      { name: 'moving average', x: steps, y: smooth },
    ],
  });
}

/**
 * Small multiples: panel i is the histogram of `history[i]` over +-4 std of `exact[i]`, the mixture the
 * samples should follow there, drawn as a curve over the bars.
 */
export function levelHistograms(
  history: ArrayLike<number>[],
  exact: Mixture1d[],
  titles: string[],
  title: string,
): Canvas {
  const panels = history.map((samples, i) => {
    const lo = Math.min(...exact[i].map((c) => c.mean - 4 * c.std));
    const hi = Math.max(...exact[i].map((c) => c.mean + 4 * c.std));
    const xs = Array.from({ length: 300 }, (_, k) => lo + ((hi - lo) * k) / 299);
    const curve = { name: 'exact density', x: xs, y: xs.map((v) => gaussianMixturePdf(v, exact[i])) };
    return histogramChart({
      title: titles[i],
      xLabel: 'x',
      samples,
      range: [lo, hi],
      bins: 40,
      curves: [curve],
      legend: i === 0,
      width: 380,
      height: 270,
    });
  });
  return panelGrid(panels, { cols: 4, title });
}
