// Figures made of several pictures: small multiples (a grid of finished charts) and image grids
// (a batch of greyscale or RGB images, e.g. MNIST samples, laid out like torchvision's make_grid).

import { Canvas, type Color, WHITE, textHeight, textWidth } from './canvas.ts';
import { TEXT_COLOR } from './axes.ts';

const MARGIN = 10;

export interface PanelGridOptions {
  /** Panels per row. */
  cols: number;
  /** Overall title above all panels. */
  title?: string;
  /** Pixels between panels and around the grid (default 10). */
  gap?: number;
  background?: Color;
  /** Font scale of the title (default 3, bold). */
  fontScale?: number;
}

/** Lays out `panels` row by row, `cols` per row, each in a cell as large as the largest panel. */
export function panelGrid(panels: readonly Canvas[], opts: PanelGridOptions): Canvas {
  if (panels.length === 0) throw new Error('panelGrid needs at least one panel');
  const cols = Math.max(1, Math.min(Math.round(opts.cols), panels.length));
  const rows = Math.ceil(panels.length / cols);
  const gap = opts.gap ?? 10;
  const scale = opts.fontScale ?? 3;
  const cellW = Math.max(...panels.map((p) => p.width));
  const cellH = Math.max(...panels.map((p) => p.height));
  const titleH = opts.title ? textHeight(scale) + 2 * gap : 0;
  const gridW = cols * cellW + (cols + 1) * gap;
  const titleW = opts.title ? textWidth(opts.title, scale, true) + 2 * MARGIN : 0;
  const width = Math.max(gridW, titleW);
  const canvas = new Canvas(width, titleH + rows * cellH + (rows + 1) * gap, opts.background ?? WHITE);
  if (opts.title) canvas.text(width / 2, gap + 4, opts.title, { scale, bold: true, align: 'center' });
  const x0 = Math.floor((width - gridW) / 2);
  panels.forEach((p, i) => {
    const x = x0 + gap + (i % cols) * (cellW + gap) + Math.floor((cellW - p.width) / 2);
    const y = titleH + gap + Math.floor(i / cols) * (cellH + gap) + Math.floor((cellH - p.height) / 2);
    canvas.drawImage(p, x, y);
  });
  return canvas;
}

export interface ImageGridOptions {
  /** Pixel values laid out N x C x H x W, row-major (like a PyTorch batch). */
  data: ArrayLike<number>;
  /** Number of images N. */
  n: number;
  channels: 1 | 3;
  height: number;
  width: number;
  /** Images per row (default: ceil(sqrt(n))). */
  nrow?: number;
  /** Pixels between images and around them (default 2). */
  pad?: number;
  /** Integer upscale of every image pixel (default: enough to make images ~64 px, e.g. 2 for 28x28). */
  scale?: number;
  /** Values mapped to black..white (default [0, 1]); values outside are clamped, NaN shows magenta. */
  range?: [number, number];
  title?: string;
  /** One label per grid row, written to the left of it. */
  rowLabels?: string[];
  /** One label per grid column, written above it. */
  colLabels?: string[];
  /** Colour of the padding and margins (default white). */
  background?: Color;
  /** Font scale for labels (default 2; column labels shrink to 1 if they would not fit). */
  fontScale?: number;
}

/**
 * A grid of images. Without title or labels the layout is exactly torchvision's make_grid: image k
 * has its top-left corner at (pad + (k % nrow) * (width * scale + pad), pad + floor(k / nrow) *
 * (height * scale + pad)). A title and labels add margins above and to the left.
 */
export function imageGrid(opts: ImageGridOptions): Canvas {
  const { n, channels: c, height: h, width: w } = opts;
  if (opts.data.length < n * c * h * w) {
    throw new Error(`imageGrid: data has ${opts.data.length} values, need n*c*h*w = ${n * c * h * w}`);
  }
  const nrow = Math.max(1, Math.round(opts.nrow ?? Math.ceil(Math.sqrt(n))));
  const rows = Math.ceil(n / nrow);
  const pad = opts.pad ?? 2;
  const s = opts.fontScale ?? 2;
  const rowLabels = opts.rowLabels ?? [];
  const colLabels = opts.colLabels ?? [];
  const colLabelRoom = (fontScale: number): number =>
    Math.max(0, ...colLabels.map((l) => textWidth(l, fontScale) + 8));
  // By default, upscale images to about 64 px, and further if the column labels need the room.
  const autoScale = Math.max(Math.round(64 / Math.max(h, w)), Math.ceil((colLabelRoom(s) - pad) / w));
  const scale = Math.max(1, Math.round(opts.scale ?? autoScale));
  const [lo, hi] = opts.range ?? [0, 1];
  const cellW = w * scale + pad;
  const cellH = h * scale + pad;
  const gridW = nrow * cellW + pad;
  const gridH = rows * cellH + pad;
  const colScale = colLabelRoom(s) <= cellW ? s : 1;
  const labelled = opts.title !== undefined || rowLabels.length > 0 || colLabels.length > 0;
  const margin = labelled ? MARGIN : 0;
  const titleH = opts.title ? textHeight(s) + MARGIN : 0;
  const colLabelH = colLabels.length > 0 ? textHeight(colScale) + 4 : 0;
  const rowLabelW = rowLabels.length > 0 ? Math.max(...rowLabels.map((l) => textWidth(l, s))) + 6 : 0;
  const titleW = opts.title ? textWidth(opts.title, s, true) : 0;
  const width = Math.max(margin + rowLabelW + gridW + margin, titleW + 2 * margin);
  const x0 = margin + rowLabelW;
  const y0 = margin + titleH + colLabelH;
  const canvas = new Canvas(width, y0 + gridH + margin, opts.background ?? WHITE);

  if (opts.title) {
    // Centred over the images, but never running off the canvas.
    const x = Math.min(Math.max(margin, Math.round(x0 + gridW / 2 - titleW / 2)), width - margin - titleW);
    canvas.text(x, margin, opts.title, { scale: s, bold: true, color: [0, 0, 0] });
  }
  colLabels.slice(0, nrow).forEach((label, j) => {
    const x = x0 + pad + j * cellW + (w * scale) / 2;
    canvas.text(x, y0 - colLabelH, label, { scale: colScale, align: 'center', color: TEXT_COLOR });
  });
  rowLabels.slice(0, rows).forEach((label, r) => {
    const y = y0 + pad + r * cellH + (h * scale) / 2;
    canvas.text(x0 - 6, y, label, { scale: s, align: 'right', valign: 'middle', color: TEXT_COLOR });
  });

  const plane = h * w;
  const toByte = (v: number): number => Math.round(Math.min(1, Math.max(0, (v - lo) / (hi - lo))) * 255);
  for (let k = 0; k < n; k++) {
    const ox = x0 + pad + (k % nrow) * cellW;
    const oy = y0 + pad + Math.floor(k / nrow) * cellH;
    const base = k * c * plane;
    for (let py = 0; py < h; py++) {
      for (let px = 0; px < w; px++) {
        const at = base + py * w + px;
        const vals =
          c === 1 ? [opts.data[at]] : [opts.data[at], opts.data[at + plane], opts.data[at + 2 * plane]];
        const color: Color = vals.some(Number.isNaN)
          ? [255, 0, 255]
          : c === 1
            ? [toByte(vals[0]), toByte(vals[0]), toByte(vals[0])]
            : [toByte(vals[0]), toByte(vals[1]), toByte(vals[2])];
        canvas.fillRect(ox + px * scale, oy + py * scale, scale, scale, color);
      }
    }
  }
  return canvas;
}
