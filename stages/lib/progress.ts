// A progress bar for long loops: done/total, rate, ETA and a caller-supplied status (the loss), and
// optionally a footer under it (stage:mnist's preview of what the model draws). Redrawn in place on a
// terminal; on a pipe or in CI it prints a plain line every tenth of the way, and each footer once.

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class Progress {
  private done = 0;
  private readonly start: number;
  private lastDraw = 0;
  private lastDecile = -1;
  private lastStatus = '';
  /** Lines of the footer printed under the bar (the cursor stays on the bar's line). */
  private footerLines = 0;
  private readonly tty: boolean;

  constructor(
    readonly total: number,
    readonly label: string,
    private readonly opts: {
      quiet?: boolean;
      unit?: string;
      stream?: NodeJS.WriteStream;
      /** When the work began (performance.now()), if before the bar was made. */
      since?: number;
    } = {},
  ) {
    this.start = opts.since ?? performance.now();
    this.tty = Boolean((opts.stream ?? process.stderr).isTTY);
  }

  /** Records `n` more units of work; `status` is appended to the line (e.g. 'loss 0.0123'). */
  tick(n = 1, status = ''): void {
    this.done += n;
    this.lastStatus = status;
    if (this.opts.quiet) return;
    const now = performance.now();
    const finished = this.done >= this.total;
    if (this.tty) {
      if (now - this.lastDraw < 100 && !finished) return; // at most ten redraws a second
      this.lastDraw = now;
      // when finished, step past the footer so that what follows is written under it
      const past = finished ? `\n${this.footerLines > 0 ? `\x1b[${this.footerLines}B` : ''}` : '';
      this.write(`\r${this.line(now, status)}\x1b[K${past}`);
    } else {
      const decile = Math.floor((10 * this.done) / this.total);
      if (decile === this.lastDecile && !finished) return;
      this.lastDecile = decile;
      this.write(`${this.line(now, status)}\n`);
    }
  }

  /**
   * Shows `text` under the bar, replacing the footer before: on a terminal the bar goes on redrawing
   * above it; elsewhere the text is printed once, after the bar's current line.
   */
  footer(text: string): void {
    if (this.opts.quiet) return;
    if (!this.tty) {
      this.write(`${this.line(performance.now(), this.lastStatus)}\n${text}\n`);
      return;
    }
    const lines = text.split('\n');
    // from the bar's line: redraw it, clear everything below, write the footer, come back up
    this.write(
      `\r${this.line(performance.now(), this.lastStatus)}\x1b[K\n\x1b[J${text}\x1b[${lines.length}A\r`,
    );
    this.footerLines = lines.length;
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
