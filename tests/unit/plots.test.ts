// Tests for the PNG chart library in plots/: canvas primitives, the bitmap font, tick choice, and
// that charts put data where their axes say it goes.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { terminalImages } from '../../plots/terminal.ts';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Canvas,
  type Color,
  GLYPH_HEIGHT,
  GRID_COLOR,
  type Rect,
  formatLogTick,
  formatTicks,
  getGlyph,
  histogram,
  histogramChart,
  imageGrid,
  lineChart,
  logTicks,
  niceStep,
  niceTicks,
  panelGrid,
  scatterChart,
  textWidth,
} from '../../plots/index.ts';

const RED: Color = [220, 20, 30];

/** Bounding box of the pixels that differ from `background`, or null if none do. */
function inkBox(canvas: Canvas, background: Color = [255, 255, 255]): Rect | null {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const p = canvas.getPixel(x, y);
      if (p[0] !== background[0] || p[1] !== background[1] || p[2] !== background[2]) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
  }
  return x1 < 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

function sameColor(a: Color, b: Color): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
}

test('toPNG encodes the canvas size and pixels; save creates parent directories', () => {
  const c = new Canvas(37, 23, [10, 20, 30]);
  c.setPixel(5, 7, [200, 0, 100]);
  const png = PNG.sync.read(c.toPNG());
  assert.is(png.width, 37);
  assert.is(png.height, 23);
  const at = (x: number, y: number): number[] =>
    Array.from(png.data.subarray((y * 37 + x) * 4, (y * 37 + x) * 4 + 4));
  assert.equal(at(5, 7), [200, 0, 100, 255]);
  assert.equal(at(0, 0), [10, 20, 30, 255]);
  assert.equal(at(36, 22), [10, 20, 30, 255]);

  const dir = mkdtempSync(join(tmpdir(), 'plots-test-'));
  try {
    const path = join(dir, 'nested', 'deeper', 'c.png');
    c.save(path);
    assert.ok(existsSync(path));
    assert.is(PNG.sync.read(readFileSync(path)).width, 37);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('text draws only inside its box, and textWidth is the exact inked width', () => {
  const cases: [string, number, 'left' | 'center' | 'right'][] = [
    ['Hello 0.25', 1, 'left'],
    ['loss (MSE) = 1e-3', 2, 'center'],
    ['[x_t] | y^2 %', 3, 'right'],
  ];
  for (const [str, scale, align] of cases) {
    const c = new Canvas(400, 60);
    const box = c.text(200, 10, str, { scale, align, color: [0, 0, 0] });
    const ink = inkBox(c);
    assert.ok(ink, `no ink for ${str}`);
    if (!ink) continue;
    assert.is(box.width, textWidth(str, scale));
    assert.is(box.height, GLYPH_HEIGHT * scale);
    // The string starts and ends with inked columns, so the ink spans the box exactly in x.
    assert.is(ink.x, box.x, `${str}: left edge`);
    assert.is(ink.x + ink.width, box.x + box.width, `${str}: right edge`);
    assert.ok(ink.y >= box.y && ink.y + ink.height <= box.y + box.height, `${str}: vertical extent`);
    const expectedLeft = { left: 200, center: 200 - Math.round(box.width / 2), right: 200 - box.width }[
      align
    ];
    assert.is(box.x, expectedLeft, `${str}: alignment`);
  }
});

test('vertical text reads bottom to top inside its rotated box', () => {
  const c = new Canvas(60, 200);
  const box = c.text(20, 100, 'density', { scale: 2, vertical: true, align: 'center' });
  const ink = inkBox(c);
  assert.ok(ink);
  if (!ink) return;
  assert.is(box.height, textWidth('density', 2));
  assert.is(box.width, GLYPH_HEIGHT * 2);
  assert.ok(ink.x >= box.x && ink.x + ink.width <= box.x + box.width);
  assert.is(ink.y, box.y);
  assert.is(ink.y + ink.height, box.y + box.height);
  // Rotating 'L' anticlockwise turns its stem into a bar along the bottom and its foot into a
  // post on the right (glyph tops face left), so the top row of ink is only at the right end.
  const l = new Canvas(40, 40);
  const lb = l.text(10, 30, 'L', { scale: 2, vertical: true });
  const inked = (x: number, y: number): boolean => l.getPixel(x, y)[0] < 128;
  const bottom = lb.y + lb.height - 1;
  const capRows = 7 * 2; // the cap height, in pixels across the rotated text
  for (let x = lb.x; x < lb.x + capRows; x++) assert.ok(inked(x, bottom), `bottom bar at x=${x}`);
  assert.ok(inked(lb.x + capRows - 1, lb.y) && !inked(lb.x, lb.y));
});

test('every printable ASCII glyph has ink and (apart from O/0) differs from the others', () => {
  const seen = new Map<string, string>();
  for (let code = 33; code <= 126; code++) {
    const ch = String.fromCharCode(code);
    const g = getGlyph(ch);
    assert.ok(
      g.rows.some((r) => r.some(Boolean)),
      `glyph ${ch} is blank`,
    );
    assert.is(g.rows.length, GLYPH_HEIGHT);
    const key = g.rows.map((r) => r.map((b) => (b ? '#' : '.')).join('')).join('/');
    const twin = seen.get(key);
    if (twin !== undefined) assert.ok(twin === '0' && ch === 'O', `glyphs ${twin} and ${ch} are identical`);
    seen.set(key, ch);
  }
  assert.is(getGlyph('\u03c3'), getGlyph('?'));
});

test('nice ticks follow the 1-2-5 rule', () => {
  assert.equal(niceTicks(0, 1, 6), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.equal(niceTicks(0, 10, 6), [0, 2, 4, 6, 8, 10]);
  assert.equal(niceTicks(-3.2, 7.9, 6), [-2, 0, 2, 4, 6]);
  assert.equal(niceTicks(0.0012, 0.0047, 6), [0.002, 0.003, 0.004]);
  assert.equal(niceTicks(0.95, 1.05, 6), [0.96, 0.98, 1, 1.02, 1.04]);
  assert.equal(niceTicks(0, 1000, 3), [0, 500, 1000]);
  assert.is(niceStep(0.13), 0.2);
  assert.is(niceStep(3), 5);
  assert.is(niceStep(7), 10);
  assert.is(niceStep(1e-4), 1e-4);
  assert.equal(formatTicks([0, 0.5, 1], 0.5), ['0.0', '0.5', '1.0']);
  assert.equal(formatTicks([0, 50000, 100000], 50000), ['0', '5e4', '1e5']);
  assert.equal(formatTicks([2e-5, 4e-5], 2e-5), ['2e-5', '4e-5']);
  assert.equal(formatTicks([-10, 0, 10], 10), ['-10', '0', '10']);
});

test('log ticks land on decades', () => {
  const t = logTicks(1e-3, 10);
  assert.equal(t.major, [0.001, 0.01, 0.1, 1, 10]);
  assert.is(t.minor.length, 4 * 8); // 2..9 in each of the 4 decades
  assert.ok(t.minor.includes(0.002) && t.minor.includes(9));
  // Many decades: every other one is labelled.
  assert.equal(logTicks(1e-8, 1e4, 8).major, [1e-8, 1e-6, 1e-4, 1e-2, 1, 1e2, 1e4]);
  // Less than a decade: 1-2-5 multiples.
  assert.equal(logTicks(0.03, 0.5).major, [0.05, 0.1, 0.2, 0.5]);
  assert.equal([1e-5, 0.001, 0.5, 20, 1e4].map(formatLogTick), ['1e-5', '0.001', '0.5', '20', '1e4']);
});

test('polyline paints each pixel once: overlapping segments keep the requested alpha', () => {
  const c = new Canvas(50, 20);
  c.polyline([5, 45, 5, 45], [10, 10, 10, 10], [0, 0, 0], { width: 2, alpha: 0.5 });
  assert.equal(c.getPixel(25, 10), [128, 128, 128]);
  assert.equal(c.getPixel(25, 11), [191, 191, 191]); // half covered: anti-aliased edge, drawn once
  assert.equal(c.getPixel(25, 4), [255, 255, 255]);
  // Clipping keeps drawing inside the clip rectangle.
  c.clip = { x: 0, y: 0, width: 20, height: 20 };
  c.fillRect(0, 0, 50, 3, RED);
  assert.equal(c.getPixel(19, 1), RED);
  assert.equal(c.getPixel(20, 1), [255, 255, 255]);
});

test('lineChart puts data points where the axes transform says, and NaN leaves a gap', () => {
  const x = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const y = [0, 1, 1, 1, NaN, 1, 1, 1, 2];
  const chart = lineChart({
    title: 'T',
    xLabel: 'x',
    yLabel: 'y',
    series: [{ name: 'a', x, y, color: RED }],
    width: 420,
    height: 300,
  });
  const ax = chart.axes;
  assert.ok(ax.plot.x > 0 && ax.plot.x + ax.plot.width < 420);
  // Data range [0, 8] on x maps onto the full plot width.
  assert.is(ax.xToPx(0), ax.plot.x);
  assert.is(ax.xToPx(8), ax.plot.x + ax.plot.width - 1);
  const at = (vx: number, vy: number): Color =>
    chart.getPixel(Math.round(ax.xToPx(vx)), Math.round(ax.yToPx(vy)));
  assert.equal(at(1.5, 1), RED);
  assert.equal(at(6, 1), RED);
  assert.not.equal(at(4, 1), RED); // the NaN gap
  assert.not.equal(at(6, 1.5), RED);
  // No legend for a single series, and the y axis has labelled ticks.
  assert.ok(ax.yTicks.major.length >= 3 && ax.yTicks.major.every((t) => t.label.length > 0));
});

test('lineChart on a log y axis spaces decades evenly', () => {
  const x = [0, 1, 2, 3];
  const y = [1e-3, 1e-2, 1e-1, -1]; // the negative value cannot be drawn and is skipped
  const chart = lineChart({
    title: 'T',
    xLabel: 'x',
    yLabel: 'y',
    logY: true,
    series: [{ name: 'a', x, y }],
    width: 400,
    height: 300,
  });
  const ax = chart.axes;
  const d1 = ax.yToPx(1e-3) - ax.yToPx(1e-2);
  const d2 = ax.yToPx(1e-2) - ax.yToPx(1e-1);
  assert.ok(Math.abs(d1 - d2) < 1e-9 && d1 > 20);
  assert.ok(ax.yScale.min < 1e-3 && ax.yScale.max > 1e-1 && ax.yScale.max < 1);
  assert.equal(
    ax.yTicks.major.map((t) => t.label),
    ['0.001', '0.01', '0.1'],
  );
});

test('histogram counts, edges and density normalisation', () => {
  const h = histogram([0, 0.5, 1, 1.5, 4, 4.5, NaN, -1, 3.99], 4, [0, 4]);
  assert.equal(Array.from(h.values), [2, 2, 0, 2]); // 4 is the inclusive right edge; 4.5, -1, NaN dropped
  assert.equal(Array.from(h.edges), [0, 1, 2, 3, 4]);
  assert.is(h.inRange, 6);
  const d = histogram([0.5, 0.5, 2.5, 3], 2, [0, 4], true);
  assert.equal(Array.from(d.values), [0.25, 0.25]); // area = (0.25 + 0.25) * 2 = 1
});

test('histogramChart bars have heights proportional to the bin densities', () => {
  const counts = [10, 20, 40, 30];
  const samples: number[] = [];
  counts.forEach((c, b) => {
    for (let i = 0; i < c; i++) samples.push(b + (i + 0.5) / c);
  });
  const chart = histogramChart({
    title: 'H',
    xLabel: 'x',
    samples,
    bins: 4,
    range: [0, 4],
    width: 400,
    height: 300,
  });
  const ax = chart.axes;
  const bottom = ax.plot.y + ax.plot.height - 1;
  const tops = counts.map((_, b) => {
    const x = Math.round(ax.xToPx(b + 0.5));
    for (let y = ax.plot.y; y <= bottom; y++) {
      const p = chart.getPixel(x, y);
      const paper = sameColor(p, [255, 255, 255]) || sameColor(p, GRID_COLOR);
      if (!paper) return y;
    }
    return bottom + 1;
  });
  counts.forEach((c, b) => assert.ok(Math.abs(tops[b] - Math.round(ax.yToPx(c / 100))) <= 1, `bin ${b} top`));
  const heights = tops.map((t) => bottom - t + 1);
  counts.forEach((c, b) => assert.ok(Math.abs(heights[b] / heights[2] - c / 40) < 0.03, `bin ${b} ratio`));
  assert.is(ax.options.yLabel, 'density');
});

test('scatterChart with equalAspect uses the same scale on both axes', () => {
  const x = [0, 10, 5];
  const y = [0, 1, 0.5];
  const chart = scatterChart({
    title: 'S',
    xLabel: 'x',
    yLabel: 'y',
    series: [{ name: 'p', x, y, color: RED, alpha: 1 }],
    equalAspect: true,
    width: 400,
    height: 300,
  });
  const ax = chart.axes;
  const ux = (ax.xScale.max - ax.xScale.min) / (ax.plot.width - 1);
  const uy = (ax.yScale.max - ax.yScale.min) / (ax.plot.height - 1);
  assert.ok(Math.abs(ux / uy - 1) < 0.01, `units per pixel ${ux} vs ${uy}`);
  assert.equal(chart.getPixel(Math.round(ax.xToPx(5)), Math.round(ax.yToPx(0.5))), RED);
});

test('imageGrid places image k at the make_grid offset with the right grey value', () => {
  const [n, h, w] = [5, 3, 4];
  const data = new Float32Array(n * h * w);
  for (let k = 0; k < n; k++) {
    data.fill(k / 10, k * h * w, (k + 1) * h * w);
    data[k * h * w] = 1; // top-left pixel of every image is white
  }
  const pad = 2;
  const scale = 3;
  const grid = imageGrid({
    data,
    n,
    channels: 1,
    height: h,
    width: w,
    nrow: 2,
    pad,
    scale,
    background: [0, 0, 255],
  });
  assert.is(grid.width, 2 * (w * scale + pad) + pad);
  assert.is(grid.height, 3 * (h * scale + pad) + pad);
  for (let k = 0; k < n; k++) {
    const ox = pad + (k % 2) * (w * scale + pad);
    const oy = pad + Math.floor(k / 2) * (h * scale + pad);
    const g = Math.round((k / 10) * 255);
    assert.equal(grid.getPixel(ox, oy), [255, 255, 255], `image ${k} corner`);
    assert.equal(grid.getPixel(ox + scale, oy), [g, g, g], `image ${k} second pixel`);
    assert.equal(grid.getPixel(ox + w * scale - 1, oy + h * scale - 1), [g, g, g], `image ${k} last pixel`);
    assert.equal(grid.getPixel(ox - 1, oy), [0, 0, 255], `padding left of image ${k}`);
  }
});

test('imageGrid reads C x H x W planes for RGB and clamps to the value range', () => {
  // One 1x2 RGB image: planes R = [-2, 0], G = [1, 3], B = [0.5, -1], range [-1, 1].
  const data = [-2, 0, 1, 3, 0.5, -1];
  const grid = imageGrid({ data, n: 1, channels: 3, height: 1, width: 2, pad: 0, scale: 1, range: [-1, 1] });
  assert.is(grid.width, 2);
  assert.equal(grid.getPixel(0, 0), [0, 255, 191]);
  assert.equal(grid.getPixel(1, 0), [128, 255, 0]);
});

test('panelGrid lays panels out row by row under a title', () => {
  const a = new Canvas(30, 20, RED);
  const b = new Canvas(30, 20, [0, 0, 200]);
  const grid = panelGrid([a, b, a], { cols: 2, gap: 5, title: 'Panels' });
  const titled = grid.height - (2 * 20 + 3 * 5);
  assert.ok(titled > 0);
  assert.ok(grid.width >= 2 * 30 + 3 * 5);
  const x0 = Math.floor((grid.width - (2 * 30 + 3 * 5)) / 2) + 5;
  assert.equal(grid.getPixel(x0, titled + 5), RED);
  assert.equal(grid.getPixel(x0 + 35, titled + 5), [0, 0, 200]);
  assert.equal(grid.getPixel(x0, titled + 30), RED);
  assert.equal(grid.getPixel(x0 + 35, titled + 30), [255, 255, 255]); // no fourth panel
});

test('terminalImages: each cell the shade nearest the mean of its 2x4 block, images a column apart', () => {
  // image A, 4 x 6: columns of 1, 0.75 and 0.25 (two pixels wide each); image B: 0.5, with one pixel
  // of 1.5 and one of -0.5 that average to it; then a pair of 8 x 4 images, bright above dark, clamped
  const a = [1, 1, 0.75, 0.75, 0.25, 0.25];
  const b = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
  const images = [...a, ...a, ...a, ...a, ...b, 1.5, -0.5, ...b.slice(2), ...b, ...b];
  assert.is(terminalImages(images, { count: 2, height: 4, width: 6 }), '█▓░ ▒▒▒');
  const tall = [...new Array(16).fill(1), ...new Array(16).fill(0)];
  const clamped = [...new Array(16).fill(7), ...new Array(16).fill(-3)];
  assert.is(terminalImages([...tall, ...clamped], { count: 2, height: 8, width: 4 }), '██ ██\n     ');
  // a 28 x 28 digit at the default scale: 14 columns and 7 rows of cells
  const lines = terminalImages(new Float32Array(784), { count: 1, height: 28, width: 28 }).split('\n');
  assert.equal([lines.length, lines[0].length], [7, 14]);
});

test.run();
