// Line charts and scatter charts, plus the pieces every x-y chart shares.

import { Axes, type AxisRange, type LegendEntry } from './axes.ts';
import { Canvas, type Color, paletteColor } from './canvas.ts';

export const DEFAULT_WIDTH = 800;
export const DEFAULT_HEIGHT = 500;

/** A rendered chart: a `Canvas` that also remembers its `Axes`, so callers can map data to pixels. */
export class ChartCanvas extends Canvas {
  readonly axes: Axes;

  constructor(axes: Axes) {
    super(axes.width, axes.height);
    this.axes = axes;
  }
}

/** Options shared by every x-y chart. */
export interface ChartBaseOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Integer scale of the bitmap font (default 2, i.e. capitals 14 px tall). */
  fontScale?: number;
}

export interface LineSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: Color;
  dashed?: boolean;
  /** Line width in pixels (default 2). */
  lineWidth?: number;
  /** Opacity 0..1 (default 1); handy for a raw noisy curve under its smoothed version. */
  alpha?: number;
}

export interface LineChartOptions extends ChartBaseOptions {
  series: LineSeries[];
  logX?: boolean;
  logY?: boolean;
  /** Fixed axis ranges; by default x spans the data and y spans it with a 5% margin. */
  xRange?: [number, number];
  yRange?: [number, number];
  /** Draw the legend (default true); small multiples may show it on one panel only. */
  legend?: boolean;
}

/**
 * Lines through (x[i], y[i]) for each series. Points with a NaN/infinite coordinate, or a
 * non-positive one on a log axis, are skipped and leave a gap in the line.
 */
export function lineChart(opts: LineChartOptions): ChartCanvas {
  const usable = (v: number, log: boolean | undefined): boolean => Number.isFinite(v) && (!log || v > 0);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of opts.series) {
    for (let i = 0; i < Math.min(s.x.length, s.y.length); i++) {
      if (!usable(s.x[i], opts.logX) || !usable(s.y[i], opts.logY)) continue;
      // Only points inside a fixed x range decide the automatic y range.
      if (opts.xRange && (s.x[i] < opts.xRange[0] || s.x[i] > opts.xRange[1])) continue;
      xs.push(s.x[i]);
      ys.push(s.y[i]);
    }
  }
  const axes = new Axes({
    ...layoutOptions(opts),
    x: opts.xRange ? rangeOf(opts.xRange, opts.logX) : dataRange(xs, opts.logX, 0),
    y: opts.yRange ? rangeOf(opts.yRange, opts.logY) : dataRange(ys, opts.logY, 0.05),
  });
  const canvas = new ChartCanvas(axes);
  axes.drawGrid(canvas);
  const legend: LegendEntry[] = [];
  axes.withClip(canvas, () => {
    opts.series.forEach((s, k) => {
      const color = s.color ?? paletteColor(k);
      const n = Math.min(s.x.length, s.y.length);
      const px = new Float64Array(n);
      const py = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const ok = usable(s.x[i], opts.logX) && usable(s.y[i], opts.logY);
        px[i] = ok ? axes.xToPx(s.x[i]) : NaN;
        py[i] = ok ? axes.yToPx(s.y[i]) : NaN;
      }
      const width = s.lineWidth ?? 2;
      const dash: [number, number] | undefined = s.dashed ? [4 * width + 2, 2 * width + 2] : undefined;
      canvas.polyline(px, py, color, { width, alpha: s.alpha ?? 1, dash });
      // A point with no drawable neighbour would be invisible as a line, so mark it with a dot.
      for (let i = 0; i < n; i++) {
        const isolated =
          !Number.isFinite(i > 0 ? px[i - 1] : NaN) && !Number.isFinite(i + 1 < n ? px[i + 1] : NaN);
        if (Number.isFinite(px[i]) && isolated) canvas.dot(px[i], py[i], width + 1, color, s.alpha ?? 1);
      }
      legend.push({ name: s.name, color, marker: s.dashed ? 'dashed' : 'line', alpha: s.alpha });
    });
  });
  axes.drawFrame(canvas);
  if (opts.legend !== false) axes.drawLegend(canvas, legend);
  return canvas;
}

export interface ScatterSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: Color;
  /** Dot radius in pixels (default: 1.5 to 2.5, smaller when there are many points). */
  radius?: number;
  /** Dot opacity 0..1 (default: 0.35 to 0.8, lower when there are many points). */
  alpha?: number;
}

export interface ScatterChartOptions extends ChartBaseOptions {
  series: ScatterSeries[];
  xRange?: [number, number];
  yRange?: [number, number];
  /** Make one data unit as long on screen along x as along y (circles stay round). */
  equalAspect?: boolean;
}

/** Small semi-transparent dots, one colour per series; NaN points are skipped. */
export function scatterChart(opts: ScatterChartOptions): ChartCanvas {
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of opts.series) {
    for (let i = 0; i < Math.min(s.x.length, s.y.length); i++) {
      if (Number.isFinite(s.x[i]) && Number.isFinite(s.y[i])) {
        xs.push(s.x[i]);
        ys.push(s.y[i]);
      }
    }
  }
  let x = opts.xRange ? rangeOf(opts.xRange) : dataRange(xs, false, 0.05);
  let y = opts.yRange ? rangeOf(opts.yRange) : dataRange(ys, false, 0.05);
  let axes = new Axes({ ...layoutOptions(opts), x, y });
  if (opts.equalAspect) {
    // Grow the range that has fewer data units per pixel. The tick labels, and so the plot size,
    // depend on the ranges, so repeat until the layout settles.
    for (let pass = 0; pass < 8; pass++) {
      const w = axes.plot.width - 1;
      const h = axes.plot.height - 1;
      const unitsPerPx = Math.max((x.max - x.min) / w, (y.max - y.min) / h);
      if (Math.abs((x.max - x.min) / w / ((y.max - y.min) / h) - 1) < 1e-3) break;
      x = grow(x, unitsPerPx * w);
      y = grow(y, unitsPerPx * h);
      axes = new Axes({ ...layoutOptions(opts), x, y });
    }
  }
  const canvas = new ChartCanvas(axes);
  axes.drawGrid(canvas);
  const total = xs.length;
  const legend: LegendEntry[] = [];
  axes.withClip(canvas, () => {
    opts.series.forEach((s, k) => {
      const color = s.color ?? paletteColor(k);
      const r = s.radius ?? (total > 5000 ? 1.5 : total > 1000 ? 2 : 2.5);
      const alpha = s.alpha ?? (total > 2000 ? 0.35 : total > 500 ? 0.5 : 0.8);
      for (let i = 0; i < Math.min(s.x.length, s.y.length); i++) {
        if (Number.isFinite(s.x[i]) && Number.isFinite(s.y[i])) {
          canvas.dot(axes.xToPx(s.x[i]), axes.yToPx(s.y[i]), r, color, alpha);
        }
      }
      legend.push({ name: s.name, color, marker: 'dot' });
    });
  });
  axes.drawFrame(canvas);
  axes.drawLegend(canvas, legend);
  return canvas;
}

/** The layout part of the axes options, with defaults filled in. */
export function layoutOptions(opts: ChartBaseOptions): {
  width: number;
  height: number;
  title: string;
  xLabel: string;
  yLabel: string;
  fontScale: number;
} {
  return {
    width: opts.width ?? DEFAULT_WIDTH,
    height: opts.height ?? DEFAULT_HEIGHT,
    title: opts.title,
    xLabel: opts.xLabel,
    yLabel: opts.yLabel,
    fontScale: opts.fontScale ?? 2,
  };
}

/** A user-given [min, max] as an axis range, widened if it is empty. */
export function rangeOf(r: readonly [number, number], log = false): AxisRange {
  return dataRange([r[0], r[1]], log, 0);
}

/**
 * The range [min, max] of `values` (finite ones, and positive ones on a log axis), widened by
 * `margin` times its span on both sides (measured in decades on a log axis). An empty or
 * single-valued range is widened to something drawable.
 */
export function dataRange(values: readonly number[], log = false, margin = 0): AxisRange {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v) || (log && v <= 0)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (log) {
    if (min > max) return { min: 1, max: 10, log };
    let lo = Math.log10(min);
    let hi = Math.log10(max);
    if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
    const m = (hi - lo) * margin;
    return { min: 10 ** (lo - m), max: 10 ** (hi + m), log };
  }
  if (min > max) return { min: 0, max: 1 };
  if (max - min <= 1e-12 * Math.max(1, Math.abs(min))) {
    const half = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    return { min: min - half, max: max + half };
  }
  const m = (max - min) * margin;
  return { min: min - m, max: max + m };
}

/** `r` widened symmetrically to span `span` (never narrowed). */
function grow(r: AxisRange, span: number): AxisRange {
  const extra = Math.max(0, span - (r.max - r.min)) / 2;
  return { ...r, min: r.min - extra, max: r.max + extra };
}
