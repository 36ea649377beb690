// A progress bar for long loops: done/total, rate, ETA and a caller-supplied status (the loss).
// Redrawn in place on a terminal; on a pipe or in CI it prints a plain line every tenth of the way.

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class Progress {
  private done = 0;
  private readonly start = performance.now();
  private lastDraw = 0;
  private lastDecile = -1;
  private readonly tty: boolean;

  constructor(
    readonly total: number,
    readonly label: string,
    private readonly opts: { quiet?: boolean; unit?: string; stream?: NodeJS.WriteStream } = {},
  ) {
    this.tty = Boolean((opts.stream ?? process.stderr).isTTY);
  }

  /** Records `n` more units of work; `status` is appended to the line (e.g. 'loss 0.0123'). */
  tick(n = 1, status = ''): void {
    this.done += n;
    if (this.opts.quiet) return;
    const now = performance.now();
    const finished = this.done >= this.total;
    if (this.tty) {
      if (now - this.lastDraw < 100 && !finished) return; // at most ten redraws a second
      this.lastDraw = now;
      this.write(`\r${this.line(now, status)}\x1b[K${finished ? '\n' : ''}`);
    } else {
      const decile = Math.floor((10 * this.done) / this.total);
      if (decile === this.lastDecile && !finished) return;
      this.lastDecile = decile;
      this.write(`${this.line(now, status)}\n`);
    }
  }

  /** Seconds since the bar was created. */
  elapsed(): number {
    return (performance.now() - this.start) / 1000;
  }

  private line(now: number, status: string): string {
    const frac = Math.min(1, this.done / this.total);
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
    const secs = (now - this.start) / 1000;
    const rate = this.done / Math.max(secs, 1e-9);
    const eta = (this.total - this.done) / rate;
    const unit = this.opts.unit ?? 'it';
    const rateText = rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
    const timing = this.done >= this.total ? `in ${formatSeconds(secs)}` : `ETA ${formatSeconds(eta)}`;
    return `${this.label} [${bar}] ${String(Math.round(frac * 100)).padStart(3)}% ${this.done}/${this.total} ${rateText} ${unit}/s ${timing}${status ? ' ' + status : ''}`;
  }

  private write(text: string): void {
    (this.opts.stream ?? process.stderr).write(text);
  }
}
