// Small multiples of 2-D scatter plots, one per noise level or timestep: the point cloud at each stage
// of sampling, optionally with circles (e.g. 2 std around each component of the exact density).
import type { Canvas } from './canvas.ts';
import { scatterChart, type ScatterSeries } from './charts.ts';
import { panelGrid } from './grids.ts';

export interface ScatterPanel {
  title: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  /** Where the points should lie: circles of radius r around (x, y), drawn dotted. */
  rings?: { x: number; y: number; r: number }[];
  /** Square plotting range on both axes (default: the figure's `range`). */
  range?: [number, number];
}

/** Points along the circle of radius `r` around (cx, cy). */
function circle(cx: number, cy: number, r: number, points = 160): { x: number[]; y: number[] } {
  const angles = Array.from({ length: points }, (_, i) => (2 * Math.PI * i) / points);
  return { x: angles.map((a) => cx + r * Math.cos(a)), y: angles.map((a) => cy + r * Math.sin(a)) };
}

export function scatterLevels(
  panels: ScatterPanel[],
  title: string,
  opts: { range?: [number, number]; cols?: number; size?: number } = {},
): Canvas {
  const size = opts.size ?? 380;
  const charts = panels.map((p) => {
    const series: ScatterSeries[] = [{ name: 'samples', x: p.x, y: p.y, radius: 1.5, alpha: 0.45 }];
    if (p.rings) {
      const rings = p.rings.map((c) => circle(c.x, c.y, c.r));
      series.push({
        name: 'exact: 2 std',
        x: rings.flatMap((r) => r.x),
        y: rings.flatMap((r) => r.y),
        radius: 0.8,
        alpha: 0.9,
        color: [200, 40, 40],
      });
    }
    const range = p.range ?? opts.range;
    return scatterChart({
      title: p.title,
      xLabel: 'x',
      yLabel: 'y',
      series,
      xRange: range,
      yRange: range,
      equalAspect: true,
      width: size,
      height: size,
      fontScale: 2,
    });
  });
  return panelGrid(charts, { cols: opts.cols ?? 4, title, fontScale: 2 });
}
