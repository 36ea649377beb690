// The charts the toy stages share: a loss curve, and one histogram per noise level against the exact
// density the samples should follow at that level.
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

/** One panel of levelHistograms: samples, and the density they should follow as a curve over `range`. */
export type LevelPanel = {
  title: string;
  samples: ArrayLike<number>;
  density: { x: ArrayLike<number>; y: ArrayLike<number> };
  range: [number, number];
};

/** Small multiples: each panel's histogram over its range, with the exact density drawn over the bars. */
export function levelHistograms(panels: LevelPanel[], title: string): Canvas {
  const charts = panels.map((p, i) =>
    histogramChart({
      title: p.title,
      xLabel: 'x',
      samples: p.samples,
      range: p.range,
      bins: 40,
      curves: [{ name: 'exact density', ...p.density }],
      legend: i === 0,
      width: 380,
      height: 270,
    }),
  );
  return panelGrid(charts, { cols: 4, title });
}
