// Histograms: counting samples into bins, and the histogram chart (bars, optional comparison
// histograms drawn as outlines, and optional curves such as the exact target density on top).

import { Axes, type LegendEntry } from './axes.ts';
import { type Color, lighten, paletteColor } from './canvas.ts';
import { ChartCanvas, dataRange, layoutOptions, rangeOf } from './charts.ts';

export interface Histogram {
  /** bins + 1 bin edges, from range[0] to range[1]. */
  edges: Float64Array;
  /** One value per bin: a count, or a density when `density` was requested. */
  values: Float64Array;
  /** How many samples fell inside the range (NaN and out-of-range samples are not counted). */
  inRange: number;
}

/**
 * Bins `samples` into `bins` equal bins over [range[0], range[1]]; the last bin includes its right
 * edge (as numpy does). With `density`, each value is count / (inRange * binWidth), so the bars
 * have total area 1.
 */
export function histogram(
  samples: ArrayLike<number>,
  bins: number,
  range: readonly [number, number],
  density = false,
): Histogram {
  const [lo, hi] = range;
  if (!(bins >= 1) || !Number.isInteger(bins))
    throw new Error(`bins must be a positive integer, got ${bins}`);
  if (!(hi > lo)) throw new Error(`histogram range must have max > min, got [${lo}, ${hi}]`);
  const counts = new Float64Array(bins);
  let inRange = 0;
  for (let i = 0; i < samples.length; i++) {
    const v = samples[i];
    if (!(v >= lo && v <= hi)) continue; // also drops NaN
    counts[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]++;
    inRange++;
  }
  const edges = Float64Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  if (density && inRange > 0) {
    const binWidth = (hi - lo) / bins;
    for (let b = 0; b < bins; b++) counts[b] /= inRange * binWidth;
  }
  return { edges, values: counts, inRange };
}

export interface Curve {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: Color;
  dashed?: boolean;
}

export interface HistogramChartOptions {
  title: string;
  xLabel: string;
  /** Default 'density' (or 'count' when `density` is false). */
  yLabel?: string;
  samples: ArrayLike<number>;
  /** Legend name of `samples` (default 'samples'). */
  name?: string;
  color?: Color;
  /** Number of bins (default: about sqrt(n), between 10 and 80). */
  bins?: number;
  /** Binned range (default: from the smallest to the largest sample of all histograms). */
  range?: [number, number];
  /** Fixed y range (default [0, 1.08 x the tallest bar or curve]); share one across small multiples. */
  yRange?: [number, number];
  /** Normalise so the bars have area 1 (default true); false plots raw counts. */
  density?: boolean;
  /** Lines drawn over the bars, e.g. the exact target density. */
  curves?: Curve[];
  /** More sample sets, binned the same way and drawn as translucent outlined bars. */
  extraHistograms?: { name: string; samples: ArrayLike<number>; color?: Color }[];
  /** Draw the legend (default true); small multiples may show it on one panel only. */
  legend?: boolean;
  width?: number;
  height?: number;
  fontScale?: number;
}

export function histogramChart(opts: HistogramChartOptions): ChartCanvas {
  const density = opts.density ?? true;
  const extras = opts.extraHistograms ?? [];
  const curves = opts.curves ?? [];
  const all = [opts.samples, ...extras.map((e) => e.samples)];
  let range = opts.range;
  if (range === undefined) {
    const values: number[] = [];
    for (const s of all) for (let i = 0; i < s.length; i++) values.push(s[i]);
    const r = dataRange(values, false, 0);
    range = [r.min, r.max];
  }
  let finiteCount = 0;
  for (let i = 0; i < opts.samples.length; i++) if (Number.isFinite(opts.samples[i])) finiteCount++;
  const bins = opts.bins ?? Math.min(80, Math.max(10, Math.round(Math.sqrt(finiteCount))));
  const hists = all.map((s) => histogram(s, bins, range, density));

  // y from 0 to a little above the tallest bar or curve point inside the x range.
  let top = 0;
  for (const h of hists) for (const v of h.values) top = Math.max(top, v);
  for (const c of curves) {
    for (let i = 0; i < Math.min(c.x.length, c.y.length); i++) {
      if (c.x[i] >= range[0] && c.x[i] <= range[1] && Number.isFinite(c.y[i])) top = Math.max(top, c.y[i]);
    }
  }
  const axes = new Axes({
    ...layoutOptions({ ...opts, yLabel: opts.yLabel ?? (density ? 'density' : 'count') }),
    x: rangeOf(range),
    y: opts.yRange ? rangeOf(opts.yRange) : { min: 0, max: top > 0 ? top * 1.08 : 1 },
  });
  const canvas = new ChartCanvas(axes);
  axes.drawGrid(canvas);
  const legend: LegendEntry[] = [];
  const bottom = axes.plot.y + axes.plot.height - 1;
  axes.withClip(canvas, () => {
    hists.forEach((h, k) => {
      const color = (k === 0 ? opts.color : extras[k - 1].color) ?? paletteColor(k);
      // Bars share whole-pixel edges so neighbours neither overlap nor leave gaps.
      const edgePx = Array.from(h.edges, (e) => Math.round(axes.xToPx(e)));
      edgePx[edgePx.length - 1]++; // the right edge of the last bar is inclusive
      const topPx = Array.from(h.values, (v) => Math.round(axes.yToPx(v)));
      for (let b = 0; b < bins; b++) {
        if (h.values[b] <= 0) continue;
        const fill = k === 0 ? lighten(color, 0.55) : color;
        canvas.fillRect(
          edgePx[b],
          topPx[b],
          edgePx[b + 1] - edgePx[b],
          bottom - topPx[b] + 1,
          fill,
          k === 0 ? 1 : 0.15,
        );
      }
      // Outline the histogram as a staircase along the bar tops.
      const sx: number[] = [edgePx[0]];
      const sy: number[] = [bottom];
      for (let b = 0; b < bins; b++) {
        const y = h.values[b] > 0 ? topPx[b] : bottom;
        sx.push(edgePx[b], b === bins - 1 ? edgePx[b + 1] - 1 : edgePx[b + 1]);
        sy.push(y, y);
      }
      sx.push(edgePx[bins] - 1);
      sy.push(bottom);
      canvas.polyline(sx, sy, color, { width: k === 0 ? 1 : 2 });
      legend.push({ name: k === 0 ? (opts.name ?? 'samples') : extras[k - 1].name, color, marker: 'box' });
    });
    curves.forEach((c, i) => {
      const color = c.color ?? paletteColor(hists.length + i);
      const n = Math.min(c.x.length, c.y.length);
      const px = Float64Array.from({ length: n }, (_, j) => axes.xToPx(c.x[j]));
      const py = Float64Array.from({ length: n }, (_, j) => axes.yToPx(c.y[j]));
      canvas.polyline(px, py, color, { width: 2.5, dash: c.dashed ? [10, 6] : undefined });
      legend.push({ name: c.name, color, marker: c.dashed ? 'dashed' : 'line' });
    });
  });
  axes.drawFrame(canvas);
  if (opts.legend !== false) axes.drawLegend(canvas, legend);
  return canvas;
}
