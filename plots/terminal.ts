// Character-cell pictures for the terminal: a histogram drawn with block characters, and a scatter of
// 2-D points in a grid of cells, so a learner can watch a distribution change while a stage runs.

const BLOCKS = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** Bin counts of `values` over [lo, hi); values outside are ignored. */
export function binCounts(values: ArrayLike<number>, lo: number, hi: number, bins: number): number[] {
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const b = Math.floor(((values[i] - lo) / (hi - lo)) * bins);
    if (b >= 0 && b < bins) counts[b]++;
  }
  return counts;
}

/**
 * A vertical histogram `width` columns wide and `height` rows tall over [lo, hi], with an axis line
 * labelled at both ends and an optional marker (^) under a target value.
 */
export function terminalHistogram(
  values: ArrayLike<number>,
  opts: { lo: number; hi: number; width?: number; height?: number; marker?: number },
): string {
  const { lo, hi, width = 64, height = 8 } = opts;
  const counts = binCounts(values, lo, hi, width);
  const peak = Math.max(1, ...counts);
  const rows: string[] = [];
  for (let r = height - 1; r >= 0; r--) {
    let line = '';
    for (const c of counts) {
      const eighths = Math.round((c / peak) * height * 8) - r * 8;
      line += BLOCKS[Math.max(0, Math.min(8, eighths))];
    }
    rows.push(`|${line}`);
  }
  rows.push(`+${'-'.repeat(width)}`);
  if (opts.marker !== undefined) {
    const col = Math.floor(((opts.marker - lo) / (hi - lo)) * width);
    if (col >= 0 && col < width) rows.push(' ' + ' '.repeat(col) + '^');
  }
  const left = String(lo);
  const right = String(hi);
  rows.push(left + ' '.repeat(Math.max(1, width + 1 - left.length - right.length)) + right);
  return rows.join('\n');
}

/** Points in a grid of cells over the given ranges: denser cells get heavier characters. */
export function terminalScatter(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  opts: { xRange: [number, number]; yRange: [number, number]; width?: number; height?: number },
): string {
  const { xRange, yRange, width = 48, height = 20 } = opts;
  const grid = Array.from({ length: height }, () => new Array<number>(width).fill(0));
  for (let i = 0; i < xs.length; i++) {
    const c = Math.floor(((xs[i] - xRange[0]) / (xRange[1] - xRange[0])) * width);
    const r = Math.floor(((yRange[1] - ys[i]) / (yRange[1] - yRange[0])) * height);
    if (c >= 0 && c < width && r >= 0 && r < height) grid[r][c]++;
  }
  const shades = ' .:*#@';
  const peak = Math.max(1, ...grid.flat());
  const rows = grid.map((row) => {
    const cells = row.map((n) =>
      n === 0 ? ' ' : shades[Math.max(1, Math.ceil((n / peak) * (shades.length - 1)))],
    );
    return `|${cells.join('')}|`;
  });
  const border = `+${'-'.repeat(width)}+`;
  return [border, ...rows, border].join('\n');
}

const SHADES = [' ', '░', '▒', '▓', '█'];

/**
 * Grey images in [0, 1] ([count, height, width], one channel) side by side as character cells: each
 * cell is the mean of a block `scale` pixels wide and 2 `scale` tall (a terminal cell is about twice as
 * tall as it is wide), shown by the shade nearest to it, from ' ' (0) to '█' (1). Images are separated
 * by a blank column.
 */
export function terminalImages(
  images: ArrayLike<number>,
  opts: { count: number; height: number; width: number; scale?: number },
): string {
  const { count, height, width, scale = 2 } = opts;
  const [bw, bh] = [scale, 2 * scale];
  const rows = Math.ceil(height / bh);
  const cols = Math.ceil(width / bw);
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const cells: string[] = [];
    for (let n = 0; n < count; n++) {
      let line = '';
      for (let c = 0; c < cols; c++) {
        let [sum, pixels] = [0, 0];
        for (let y = r * bh; y < Math.min(height, (r + 1) * bh); y++) {
          for (let x = c * bw; x < Math.min(width, (c + 1) * bw); x++) {
            sum += images[n * height * width + y * width + x];
            pixels++;
          }
        }
        const v = Math.min(1, Math.max(0, sum / pixels));
        line += SHADES[Math.round(v * (SHADES.length - 1))];
      }
      cells.push(line);
    }
    lines.push(cells.join(' '));
  }
  return lines.join('\n');
}

/**
 * Redraws a histogram per denoising level in place (when stdout is a terminal), so the reader watches
 * the cloud narrow; elsewhere prints one summary line per level.
 */
export async function animateHistograms(
  history: ArrayLike<number>[],
  sigmas: number[],
  opts: { lo: number; hi: number; target?: number; delayMs?: number },
): Promise<void> {
  const tty = Boolean(process.stdout.isTTY);
  let previousLines = 0;
  for (let i = 0; i < history.length; i++) {
    const xs = history[i];
    let m = 0;
    for (let k = 0; k < xs.length; k++) m += xs[k] / xs.length;
    let v = 0;
    for (let k = 0; k < xs.length; k++) v += (xs[k] - m) ** 2 / xs.length;
    const head = `level ${i}/${history.length - 1}  sigma ${sigmas[i].toPrecision(3).padEnd(8)} mean ${m.toFixed(4)}  std ${Math.sqrt(v).toFixed(4)}`;
    if (!tty) {
      console.log(head);
      continue;
    }
    const picture = terminalHistogram(xs, { lo: opts.lo, hi: opts.hi, marker: opts.target });
    const text = `${head}\n${picture}`;
    if (previousLines > 0) process.stdout.write(`\x1b[${previousLines}A\x1b[J`);
    process.stdout.write(text + '\n');
    previousLines = text.split('\n').length;
    await new Promise((resolve) => setTimeout(resolve, opts.delayMs ?? 300));
  }
}
