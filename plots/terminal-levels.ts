// The point cloud in the terminal, level by level: a character-cell scatter redrawn in place (when
// stdout is a terminal) so the reader watches it move; elsewhere one summary line per level and the
// last picture.
import { terminalScatter } from './terminal.ts';

export interface ScatterFrame {
  /** One line above the picture, e.g. 'level 3/10  sigma 0.12'. */
  label: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

export async function animateScatters(
  frames: ScatterFrame[],
  opts: {
    xRange: [number, number];
    yRange: [number, number];
    delayMs?: number;
    width?: number;
    height?: number;
  },
): Promise<void> {
  const tty = Boolean(process.stdout.isTTY);
  const picture = (f: ScatterFrame) =>
    terminalScatter(f.x, f.y, {
      xRange: opts.xRange,
      yRange: opts.yRange,
      width: opts.width,
      height: opts.height,
    });
  const axes = `x and y from ${opts.xRange[0]} to ${opts.xRange[1]}`;
  let previousLines = 0;
  for (let i = 0; i < frames.length; i++) {
    const last = i === frames.length - 1;
    if (!tty) {
      console.log(frames[i].label);
      if (last) console.log(`${picture(frames[i])}\n${axes}`);
      continue;
    }
    const text = `${frames[i].label}\n${picture(frames[i])}\n${axes}`;
    if (previousLines > 0) process.stdout.write(`\x1b[${previousLines}A\x1b[J`);
    process.stdout.write(text + '\n');
    previousLines = text.split('\n').length;
    if (!last) await new Promise((resolve) => setTimeout(resolve, opts.delayMs ?? 400));
  }
}
