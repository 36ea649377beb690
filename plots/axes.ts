// Axes: the layout of one chart (margins sized to fit the labels), the data -> pixel transforms,
// and the drawing of everything around the data: grid, frame, ticks, labels, title and legend.
//
// An `Axes` only computes geometry; every draw method takes the canvas to draw on. A chart draws
//   axes.drawGrid(canvas) -> data inside axes.withClip(canvas, ...) -> axes.drawFrame(canvas)
//   -> axes.drawLegend(canvas, entries)
// so that the frame and the legend sit on top of the data.

import { type Canvas, type Color, type Rect, WHITE, lighten, textHeight, textWidth } from './canvas.ts';
import { formatLogTick, formatTicks, logTicks, niceTicks, tickStep } from './ticks.ts';

export const FRAME_COLOR: Color = [70, 70, 70];
export const TEXT_COLOR: Color = [30, 30, 30];
export const GRID_COLOR: Color = [228, 228, 228];
export const MINOR_GRID_COLOR: Color = [243, 243, 243];

const PAD = 10; // blank border around the whole chart
const TICK_LENGTH = 5;
const MINOR_TICK_LENGTH = 3;
const GAP = 6; // between a tick and its label, or between stacked labels

/** The data range of one axis; `log` makes it a log10 axis (then min must be > 0). */
export interface AxisRange {
  min: number;
  max: number;
  log?: boolean;
}

export interface AxesOptions {
  width: number;
  height: number;
  x: AxisRange;
  y: AxisRange;
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Integer scale of the 5x9 bitmap font for all text (default 2). */
  fontScale?: number;
  /** Draw light grid lines at the major ticks (default true). */
  grid?: boolean;
}

export interface Tick {
  value: number;
  label: string;
}

/** How a legend entry draws its sample: a line, a dashed line, a filled box or a dot. */
export type LegendMarker = 'line' | 'dashed' | 'box' | 'dot';

export interface LegendEntry {
  name: string;
  color: Color;
  marker: LegendMarker;
  /** Opacity of the sample (default 1), to match a translucent series. */
  alpha?: number;
}

/** One axis: maps data values to a fraction 0..1 of the axis length (log10 first if `log`). */
export class Scale {
  readonly min: number;
  readonly max: number;
  readonly log: boolean;

  constructor(range: AxisRange) {
    this.log = range.log ?? false;
    if (this.log && !(range.min > 0)) throw new Error(`log axis needs min > 0, got ${range.min}`);
    if (!(range.max > range.min)) throw new Error(`axis needs max > min, got [${range.min}, ${range.max}]`);
    this.min = range.min;
    this.max = range.max;
  }

  fraction(v: number): number {
    if (this.log)
      return (Math.log10(v) - Math.log10(this.min)) / (Math.log10(this.max) - Math.log10(this.min));
    return (v - this.min) / (this.max - this.min);
  }

  /** Labelled ticks (at most about `maxTicks`) and unlabelled minor tick values. */
  ticks(maxTicks: number): { major: Tick[]; minor: number[] } {
    if (this.log) {
      const t = logTicks(this.min, this.max, maxTicks);
      return { major: t.major.map((value) => ({ value, label: formatLogTick(value) })), minor: t.minor };
    }
    const values = niceTicks(this.min, this.max, maxTicks);
    const labels = formatTicks(values, tickStep(this.min, this.max, maxTicks));
    return { major: values.map((value, i) => ({ value, label: labels[i] })), minor: [] };
  }
}

export class Axes {
  readonly width: number;
  readonly height: number;
  readonly xScale: Scale;
  readonly yScale: Scale;
  /** The data area: data values map into columns plot.x .. plot.x + plot.width - 1, same for rows. */
  readonly plot: Rect;
  readonly xTicks: { major: Tick[]; minor: number[] };
  readonly yTicks: { major: Tick[]; minor: number[] };
  readonly fontScale: number;
  /** The options this layout was made from (title, labels, ranges...). */
  readonly options: AxesOptions;

  constructor(options: AxesOptions) {
    this.options = options;
    this.width = options.width;
    this.height = options.height;
    this.xScale = new Scale(options.x);
    this.yScale = new Scale(options.y);
    const s = (this.fontScale = Math.max(1, Math.round(options.fontScale ?? 2)));
    const th = textHeight(s);

    // Vertical layout first: it fixes the plot height, which decides the y ticks.
    const top = PAD + (options.title ? th + 2 * GAP : Math.ceil(th / 2));
    const bottom = PAD + TICK_LENGTH + GAP + th + (options.xLabel ? GAP + th : 0);
    const plotHeight = this.height - top - bottom;
    if (plotHeight < 20) throw new Error(`chart height ${this.height} leaves no room for the plot`);
    this.yTicks = this.yScale.ticks(clamp(Math.floor(plotHeight / (2.2 * th)), 2, 10));

    // The widest y tick label decides the left margin, which fixes the plot width and the x ticks.
    const yLabelWidth = Math.max(0, ...this.yTicks.major.map((t) => textWidth(t.label, s)));
    const left = PAD + (options.yLabel ? th + 2 * GAP : 0) + yLabelWidth + GAP + TICK_LENGTH;
    let right = PAD + 4;
    let plotWidth = 0;
    let xTicks = this.xScale.ticks(2);
    for (let pass = 0; pass < 2; pass++) {
      plotWidth = this.width - left - right;
      if (plotWidth < 20) throw new Error(`chart width ${this.width} leaves no room for the plot`);
      xTicks = this.fitXTicks(plotWidth);
      // A label centred on the last tick may stick out past the plot; make room for it.
      const last = xTicks.major[xTicks.major.length - 1];
      if (last === undefined) break;
      const overhang = textWidth(last.label, s) / 2 - (1 - this.xScale.fraction(last.value)) * plotWidth;
      right = Math.max(right, Math.ceil(PAD + overhang));
    }
    this.xTicks = xTicks;
    this.plot = { x: left, y: top, width: plotWidth, height: plotHeight };
  }

  /** The most x ticks (up to ~one per 70 px) whose labels do not crowd each other. */
  private fitXTicks(plotWidth: number): { major: Tick[]; minor: number[] } {
    const s = this.fontScale;
    for (let maxTicks = clamp(Math.floor(plotWidth / 70), 2, 12); ; maxTicks--) {
      const ticks = this.xScale.ticks(maxTicks);
      const positions = ticks.major.map((t) => this.xScale.fraction(t.value) * plotWidth);
      let crowded = false;
      for (let i = 1; i < ticks.major.length; i++) {
        const room = positions[i] - positions[i - 1];
        const needed =
          (textWidth(ticks.major[i - 1].label, s) + textWidth(ticks.major[i].label, s)) / 2 + 4 * s;
        if (room < needed) crowded = true;
      }
      if (!crowded || maxTicks <= 2) return ticks;
    }
  }

  /** Pixel column of data value x (fractional; round it to get the pixel). */
  xToPx(x: number): number {
    return this.plot.x + this.xScale.fraction(x) * (this.plot.width - 1);
  }

  /** Pixel row of data value y (fractional; larger y is higher up, so a smaller row). */
  yToPx(y: number): number {
    return this.plot.y + (1 - this.yScale.fraction(y)) * (this.plot.height - 1);
  }

  /** Runs `draw` with drawing restricted to the plot area, so data never spills over the frame. */
  withClip(canvas: Canvas, draw: () => void): void {
    const saved = canvas.clip;
    canvas.clip = this.plot;
    try {
      draw();
    } finally {
      canvas.clip = saved;
    }
  }

  /** Light grid lines at the major ticks (minor ones too on log axes). */
  drawGrid(canvas: Canvas): void {
    if (this.options.grid === false) return;
    const p = this.plot;
    for (const v of this.xTicks.minor)
      canvas.fillRect(Math.round(this.xToPx(v)), p.y, 1, p.height, MINOR_GRID_COLOR);
    for (const v of this.yTicks.minor)
      canvas.fillRect(p.x, Math.round(this.yToPx(v)), p.width, 1, MINOR_GRID_COLOR);
    for (const t of this.xTicks.major)
      canvas.fillRect(Math.round(this.xToPx(t.value)), p.y, 1, p.height, GRID_COLOR);
    for (const t of this.yTicks.major)
      canvas.fillRect(p.x, Math.round(this.yToPx(t.value)), p.width, 1, GRID_COLOR);
  }

  /** The frame around the plot, ticks with their labels, axis labels and the title. */
  drawFrame(canvas: Canvas): void {
    const p = this.plot;
    const s = this.fontScale;
    const th = textHeight(s);
    const text = { color: TEXT_COLOR, scale: s };
    canvas.strokeRect(p.x - 1, p.y - 1, p.width + 2, p.height + 2, FRAME_COLOR);
    const xAxisRow = p.y + p.height + 1;
    for (const v of this.xTicks.minor)
      canvas.fillRect(Math.round(this.xToPx(v)), xAxisRow, 1, MINOR_TICK_LENGTH, FRAME_COLOR);
    for (const v of this.yTicks.minor)
      canvas.fillRect(
        p.x - 1 - MINOR_TICK_LENGTH,
        Math.round(this.yToPx(v)),
        MINOR_TICK_LENGTH,
        1,
        FRAME_COLOR,
      );
    for (const t of this.xTicks.major) {
      const x = Math.round(this.xToPx(t.value));
      canvas.fillRect(x, xAxisRow, 1, TICK_LENGTH, FRAME_COLOR);
      canvas.text(x, xAxisRow + TICK_LENGTH + GAP, t.label, { ...text, align: 'center' });
    }
    for (const t of this.yTicks.major) {
      const y = Math.round(this.yToPx(t.value));
      canvas.fillRect(p.x - 1 - TICK_LENGTH, y, TICK_LENGTH, 1, FRAME_COLOR);
      canvas.text(p.x - 1 - TICK_LENGTH - GAP, y, t.label, { ...text, align: 'right', valign: 'middle' });
    }
    const o = this.options;
    if (o.xLabel) {
      const y = xAxisRow + TICK_LENGTH + GAP + th + GAP;
      canvas.text(p.x + p.width / 2, y, o.xLabel, { ...text, align: 'center' });
    }
    if (o.yLabel)
      canvas.text(PAD, p.y + p.height / 2, o.yLabel, { ...text, vertical: true, align: 'center' });
    if (o.title) {
      // Centre on the plot, but slide sideways rather than run off the canvas.
      const w = textWidth(o.title, s, true);
      const x = clamp(Math.round(p.x + p.width / 2 - w / 2), PAD, Math.max(PAD, this.width - PAD - w));
      canvas.text(x, PAD, o.title, { ...text, bold: true, color: [0, 0, 0] });
    }
  }

  /**
   * A legend box in whichever inner corner of the plot hides the least data (call it after the data
   * is drawn). Draws nothing for fewer than `minEntries` entries (default 2).
   */
  drawLegend(canvas: Canvas, entries: readonly LegendEntry[], minEntries = 2): void {
    if (entries.length < minEntries || entries.length === 0) return;
    const s = this.fontScale;
    const th = textHeight(s);
    const swatch = 12 * s;
    const rowHeight = th + 2 * s;
    const boxW = 4 * s + swatch + 3 * s + Math.max(...entries.map((e) => textWidth(e.name, s))) + 4 * s;
    const boxH = 3 * s + entries.length * rowHeight + s;
    const p = this.plot;
    const inset = 6;
    // Candidate spots: the four corners first (preferred on ties), then the middles of the edges.
    const xs = [p.x + p.width - inset - boxW, p.x + inset, Math.round(p.x + (p.width - boxW) / 2)];
    const ys = [p.y + inset, p.y + p.height - inset - boxH, Math.round(p.y + (p.height - boxH) / 2)];
    const spots: [number, number][] = [
      [0, 0],
      [1, 0],
      [0, 1],
      [1, 1],
      [2, 0],
      [2, 1],
      [0, 2],
      [1, 2],
    ];
    const corners: Rect[] = spots.map(([i, j]) => ({ x: xs[i], y: ys[j], width: boxW, height: boxH }));
    let best = corners[0];
    let bestInk = Infinity;
    for (const r of corners) {
      const ink = countInk(canvas, r);
      if (ink < bestInk) [best, bestInk] = [r, ink];
    }
    canvas.fillRect(best.x, best.y, best.width, best.height, WHITE, 0.88);
    canvas.strokeRect(best.x, best.y, best.width, best.height, [190, 190, 190]);
    entries.forEach((e, i) => {
      const x = best.x + 4 * s;
      const y = best.y + 3 * s + i * rowHeight;
      const mid = y + Math.round((7 * s) / 2);
      if (e.marker === 'line' || e.marker === 'dashed') {
        const dash: [number, number] | undefined = e.marker === 'dashed' ? [4 * s, 2 * s] : undefined;
        canvas.line(x, mid, x + swatch - 1, mid, e.color, 1.5 * s, { dash, alpha: e.alpha });
      } else if (e.marker === 'box') {
        canvas.fillRect(x, mid - 3 * s, swatch, 7 * s, lighten(e.color, 0.45));
        canvas.strokeRect(x, mid - 3 * s, swatch, 7 * s, e.color);
      } else {
        canvas.dot(x + swatch / 2, mid, 2.5 * s, e.color, e.alpha);
      }
      canvas.text(x + swatch + 3 * s, y, e.name, { color: TEXT_COLOR, scale: s });
    });
  }
}

/** Pixels in `r` that are neither background nor grid, i.e. data already drawn there. */
function countInk(canvas: Canvas, r: Rect): number {
  let ink = 0;
  for (let y = Math.max(0, r.y); y < Math.min(canvas.height, r.y + r.height); y++) {
    for (let x = Math.max(0, r.x); x < Math.min(canvas.width, r.x + r.width); x++) {
      const [cr, cg, cb] = canvas.getPixel(x, y);
      const greyish = cr === cg && cg === cb && cr >= GRID_COLOR[0];
      if (!greyish) ink++;
    }
  }
  return ink;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
