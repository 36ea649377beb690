// A tiny RGB raster canvas with anti-aliased lines and dots, bitmap text, and PNG output.
//
// Coordinates: pixel (i, j) is the unit square centred on the point (i, j), with x to the right and
// y downwards. Fractional coordinates are allowed for lines and dots (they are anti-aliased);
// rectangles and text snap to whole pixels so axes and labels stay crisp.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';
import { CAP_HEIGHT, GLYPH_HEIGHT, LETTER_SPACING, getGlyph, textWidthUnits } from './font.ts';

/** An sRGB colour, each channel 0..255. */
export type Color = readonly [number, number, number];

export const WHITE: Color = [255, 255, 255];
export const BLACK: Color = [0, 0, 0];

/** Eight colours that stay distinguishable on white (the Tableau-10 palette, minus two). */
export const PALETTE: readonly Color[] = [
  [31, 119, 180], // blue
  [255, 127, 14], // orange
  [44, 160, 44], // green
  [214, 39, 40], // red
  [148, 103, 189], // purple
  [140, 86, 75], // brown
  [227, 119, 194], // pink
  [23, 190, 207], // cyan
];

/** The i-th palette colour, cycling when there are more series than colours. */
export function paletteColor(i: number): Color {
  return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

/** Mixes `color` towards white; `amount` 0 gives the colour, 1 gives white. */
export function lighten(color: Color, amount: number): Color {
  const mix = (c: number): number => Math.round(c + (255 - c) * amount);
  return [mix(color[0]), mix(color[1]), mix(color[2])];
}

/** An axis-aligned rectangle in whole pixels: columns x..x+width-1, rows y..y+height-1. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface TextOptions {
  color?: Color;
  /** Integer magnification of the 5x9 font; 2 is a comfortable size for chart labels. */
  scale?: number;
  /**
   * Position along the reading direction. Horizontal text: 'left' means x is the left edge,
   * 'center' the middle, 'right' the right edge. Vertical text reads bottom to top, so 'left'
   * means y is the bottom end, 'right' the top end.
   */
  align?: 'left' | 'center' | 'right';
  /**
   * Position across the reading direction: 'top' means y (x for vertical text) is the top of the
   * glyph cell, 'bottom' its bottom (including descenders), 'middle' centres the capital letters.
   */
  valign?: 'top' | 'middle' | 'bottom';
  /** Rotate 90 degrees anticlockwise, for y-axis labels. */
  vertical?: boolean;
  /** Thicken strokes by one pixel. */
  bold?: boolean;
}

export interface StrokeOptions {
  /** Line width in pixels (default 1). */
  width?: number;
  /** Opacity 0..1 of the whole stroke (default 1); overlapping segments do not darken. */
  alpha?: number;
  /** Dash pattern [on, off] in pixels; omit for a solid line. */
  dash?: readonly [number, number];
}

/** Height in pixels of a line of text at `scale`, descenders included. */
export function textHeight(scale = 1): number {
  return GLYPH_HEIGHT * scale;
}

/** Width in pixels of `text` at `scale`; matches the box that `Canvas.text` draws into. */
export function textWidth(text: string, scale = 1, bold = false): number {
  const units = textWidthUnits(text);
  return units === 0 ? 0 : units * scale + (bold ? 1 : 0);
}

export class Canvas {
  readonly width: number;
  readonly height: number;
  /** RGB bytes, row-major, 3 per pixel. */
  readonly data: Uint8ClampedArray;
  /** When set, every drawing operation only touches pixels inside this rectangle. */
  clip: Rect | null = null;

  constructor(width: number, height: number, background: Color = WHITE) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw new Error(`Canvas size must be positive integers, got ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.data = new Uint8ClampedArray(width * height * 3);
    for (let i = 0; i < width * height; i++) this.data.set(background, i * 3);
  }

  private inside(x: number, y: number): boolean {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return false;
    const c = this.clip;
    return c === null || (x >= c.x && y >= c.y && x < c.x + c.width && y < c.y + c.height);
  }

  getPixel(x: number, y: number): Color {
    const i = (y * this.width + x) * 3;
    return [this.data[i], this.data[i + 1], this.data[i + 2]];
  }

  setPixel(x: number, y: number, color: Color): void {
    if (!this.inside(x, y)) return;
    this.data.set(color, (y * this.width + x) * 3);
  }

  /** Paints `color` over the pixel with opacity `alpha` (0..1). */
  blendPixel(x: number, y: number, color: Color, alpha: number): void {
    if (alpha <= 0 || !this.inside(x, y)) return;
    if (alpha >= 1) return this.setPixel(x, y, color);
    const i = (y * this.width + x) * 3;
    const d = this.data;
    d[i] = d[i] + (color[0] - d[i]) * alpha;
    d[i + 1] = d[i + 1] + (color[1] - d[i + 1]) * alpha;
    d[i + 2] = d[i + 2] + (color[2] - d[i + 2]) * alpha;
  }

  /** Fills columns x..x+w-1 and rows y..y+h-1 (coordinates are rounded to whole pixels). */
  fillRect(x: number, y: number, w: number, h: number, color: Color, alpha = 1): void {
    const x0 = Math.round(x);
    const y0 = Math.round(y);
    const x1 = Math.round(x + w);
    const y1 = Math.round(y + h);
    for (let yy = Math.max(0, y0); yy < Math.min(this.height, y1); yy++) {
      for (let xx = Math.max(0, x0); xx < Math.min(this.width, x1); xx++)
        this.blendPixel(xx, yy, color, alpha);
    }
  }

  /** Draws the border of a rectangle, `lineWidth` pixels thick, inside the rectangle. */
  strokeRect(x: number, y: number, w: number, h: number, color: Color, lineWidth = 1): void {
    const t = Math.min(lineWidth, w / 2, h / 2);
    this.fillRect(x, y, w, t, color);
    this.fillRect(x, y + h - t, w, t, color);
    this.fillRect(x, y + t, t, h - 2 * t, color);
    this.fillRect(x + w - t, y + t, t, h - 2 * t, color);
  }

  /** An anti-aliased straight line of the given width. */
  line(
    x0: number,
    y0: number,
    x1: number,
    y1: number,
    color: Color,
    width = 1,
    options: StrokeOptions = {},
  ): void {
    this.polyline([x0, x1], [y0, y1], color, { ...options, width });
  }

  /**
   * An anti-aliased connected line through the points (xs[i], ys[i]). A non-finite coordinate
   * breaks the line, so NaN values leave gaps instead of spikes.
   */
  polyline(xs: ArrayLike<number>, ys: ArrayLike<number>, color: Color, options: StrokeOptions = {}): void {
    const halfWidth = (options.width ?? 1) / 2;
    const alpha = options.alpha ?? 1;
    const reach = halfWidth + 0.5;
    const n = Math.min(xs.length, ys.length);
    // Bounding box of the finite points, grown by the stroke reach and cut to the drawable area.
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(xs[i]) || !Number.isFinite(ys[i])) continue;
      minX = Math.min(minX, xs[i]);
      maxX = Math.max(maxX, xs[i]);
      minY = Math.min(minY, ys[i]);
      maxY = Math.max(maxY, ys[i]);
    }
    const area = this.drawableArea();
    const bx0 = Math.max(area.x, Math.floor(minX - reach));
    const by0 = Math.max(area.y, Math.floor(minY - reach));
    const bx1 = Math.min(area.x + area.width - 1, Math.ceil(maxX + reach));
    const by1 = Math.min(area.y + area.height - 1, Math.ceil(maxY + reach));
    if (!(bx1 >= bx0 && by1 >= by0)) return;
    // Coverage mask: each pixel keeps the largest coverage of any segment, then is painted once.
    const mask: Mask = { x0: bx0, y0: by0, w: bx1 - bx0 + 1, h: by1 - by0 + 1, cov: new Float32Array(0) };
    mask.cov = new Float32Array(mask.w * mask.h);
    const stroke = (ax: number, ay: number, cx: number, cy: number): void =>
      strokeSegment(mask, ax, ay, cx, cy, halfWidth);
    let dashPos = 0;
    for (let i = 1; i < n; i++) {
      const ax = xs[i - 1];
      const ay = ys[i - 1];
      const cx = xs[i];
      const cy = ys[i];
      if (!Number.isFinite(ax) || !Number.isFinite(ay) || !Number.isFinite(cx) || !Number.isFinite(cy))
        continue;
      if (options.dash === undefined) stroke(ax, ay, cx, cy);
      else dashPos = strokeDashed(ax, ay, cx, cy, options.dash, dashPos, stroke);
    }
    for (let y = 0; y < mask.h; y++) {
      for (let x = 0; x < mask.w; x++) {
        const c = mask.cov[y * mask.w + x];
        if (c > 0) this.blendPixel(mask.x0 + x, mask.y0 + y, color, c * alpha);
      }
    }
  }

  /** An anti-aliased filled disc of radius r centred on (x, y). */
  dot(x: number, y: number, r: number, color: Color, alpha = 1): void {
    const reach = r + 0.5;
    for (let yy = Math.ceil(y - reach); yy <= Math.floor(y + reach); yy++) {
      for (let xx = Math.ceil(x - reach); xx <= Math.floor(x + reach); xx++) {
        const cov = Math.min(1, reach - Math.hypot(xx - x, yy - y));
        if (cov > 0) this.blendPixel(xx, yy, color, cov * alpha);
      }
    }
  }

  /** Width in pixels of `str` at `scale` (see the free function `textWidth`). */
  textWidth(str: string, scale = 1, bold = false): number {
    return textWidth(str, scale, bold);
  }

  /** Draws one line of text and returns the box it occupies (every inked pixel lies inside it). */
  text(x: number, y: number, str: string, options: TextOptions = {}): Rect {
    const scale = Math.max(1, Math.round(options.scale ?? 1));
    const color = options.color ?? BLACK;
    const bold = options.bold ?? false;
    const along = textWidth(str, scale, bold); // extent in the reading direction
    const across = textHeight(scale);
    const alignShift = { left: 0, center: Math.round(along / 2), right: along }[options.align ?? 'left'];
    const valignShift = {
      top: 0,
      middle: Math.round((CAP_HEIGHT * scale) / 2),
      bottom: across,
    }[options.valign ?? 'top'];
    x = Math.round(x);
    y = Math.round(y);
    // (u, v): u along the text from its start, v across it from the top of the glyph cell.
    let put: (u: number, v: number) => void;
    let box: Rect;
    if (options.vertical) {
      const left = x - valignShift;
      const bottom = y + alignShift; // first pixel row below the text
      put = (u, v) => this.setPixel(left + v, bottom - 1 - u, color);
      box = { x: left, y: bottom - along, width: across, height: along };
    } else {
      const left = x - alignShift;
      const top = y - valignShift;
      put = (u, v) => this.setPixel(left + u, top + v, color);
      box = { x: left, y: top, width: along, height: across };
    }
    let pen = 0;
    for (const ch of str) {
      const glyph = getGlyph(ch);
      glyph.rows.forEach((row, r) =>
        row.forEach((ink, c) => {
          if (!ink) return;
          for (let dv = 0; dv < scale; dv++) {
            for (let du = 0; du < scale + (bold ? 1 : 0); du++) put(pen + c * scale + du, r * scale + dv);
          }
        }),
      );
      pen += (glyph.width + LETTER_SPACING) * scale;
    }
    return box;
  }

  /** Copies every pixel of `other` with its top-left corner at (x, y). */
  drawImage(other: Canvas, x: number, y: number): void {
    x = Math.round(x);
    y = Math.round(y);
    for (let yy = 0; yy < other.height; yy++) {
      for (let xx = 0; xx < other.width; xx++) this.setPixel(x + xx, y + yy, other.getPixel(xx, yy));
    }
  }

  /** Encodes the canvas as an opaque RGBA PNG. */
  toPNG(): Buffer {
    const png = new PNG({ width: this.width, height: this.height });
    for (let i = 0; i < this.width * this.height; i++) {
      png.data[i * 4] = this.data[i * 3];
      png.data[i * 4 + 1] = this.data[i * 3 + 1];
      png.data[i * 4 + 2] = this.data[i * 3 + 2];
      png.data[i * 4 + 3] = 255;
    }
    return PNG.sync.write(png);
  }

  /** Writes the PNG to `path`, creating parent directories as needed. */
  save(path: string): void {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, this.toPNG());
  }

  private drawableArea(): Rect {
    const c = this.clip;
    if (c === null) return { x: 0, y: 0, width: this.width, height: this.height };
    const x0 = Math.max(0, c.x);
    const y0 = Math.max(0, c.y);
    return {
      x: x0,
      y: y0,
      width: Math.min(this.width, c.x + c.width) - x0,
      height: Math.min(this.height, c.y + c.height) - y0,
    };
  }
}

interface Mask {
  x0: number;
  y0: number;
  w: number;
  h: number;
  cov: Float32Array;
}

/** Adds the coverage of a round-capped segment (a "capsule") of half-width hw to the mask. */
function strokeSegment(mask: Mask, ax: number, ay: number, bx: number, by: number, hw: number): void {
  const reach = hw + 0.5;
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const yStart = Math.max(mask.y0, Math.ceil(Math.min(ay, by) - reach));
  const yEnd = Math.min(mask.y0 + mask.h - 1, Math.floor(Math.max(ay, by) + reach));
  for (let y = yStart; y <= yEnd; y++) {
    // The part of the segment within `reach` rows of y bounds the columns worth visiting.
    let t0 = 0;
    let t1 = 1;
    if (dy !== 0) {
      const ta = (y - reach - ay) / dy;
      const tb = (y + reach - ay) / dy;
      t0 = Math.max(0, Math.min(ta, tb));
      t1 = Math.min(1, Math.max(ta, tb));
      if (t0 > t1) continue;
    }
    const xa = ax + dx * t0;
    const xb = ax + dx * t1;
    const xStart = Math.max(mask.x0, Math.ceil(Math.min(xa, xb) - reach));
    const xEnd = Math.min(mask.x0 + mask.w - 1, Math.floor(Math.max(xa, xb) + reach));
    for (let x = xStart; x <= xEnd; x++) {
      let t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
      t = Math.max(0, Math.min(1, t));
      const cov = Math.min(1, reach - Math.hypot(ax + t * dx - x, ay + t * dy - y));
      const i = (y - mask.y0) * mask.w + (x - mask.x0);
      if (cov > mask.cov[i]) mask.cov[i] = cov;
    }
  }
}

/**
 * Strokes the "on" parts of a dash pattern along one segment. `pos` is how far into the pattern
 * the segment starts; the return value is the position where it ends (carried to the next segment).
 */
function strokeDashed(
  ax: number,
  ay: number,
  bx: number,
  by: number,
  dash: readonly [number, number],
  pos: number,
  stroke: (ax: number, ay: number, bx: number, by: number) => void,
): number {
  const period = dash[0] + dash[1];
  const len = Math.hypot(bx - ax, by - ay);
  if (len === 0 || period <= 0) return pos;
  let s = 0; // distance travelled along this segment
  while (s < len) {
    const phase = pos % period;
    const on = phase < dash[0];
    const step = Math.min(len - s, on ? dash[0] - phase : period - phase);
    if (on) {
      const f0 = s / len;
      const f1 = (s + step) / len;
      stroke(ax + (bx - ax) * f0, ay + (by - ay) * f0, ax + (bx - ax) * f1, ay + (by - ay) * f1);
    }
    s += step;
    pos += step;
  }
  return pos % period;
}
