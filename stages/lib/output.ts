// Where a run's files go: one git-ignored folder per stage under out/, or --out DIR. Every writer
// records the path so the stage can list what it wrote.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

export class OutputDir {
  readonly written: string[] = [];
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Writes via a temporary file and a rename, so a crash never leaves half a file. */
  writeFile(name: string, contents: string | Uint8Array): string {
    const path = this.path(name);
    mkdirSync(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, contents);
    renameSync(tmp, path);
    this.record(path);
    return path;
  }

  /** Remembers a path written by someone else (e.g. a PNG saved by a chart). */
  record(path: string): string {
    if (!this.written.includes(path)) this.written.push(path);
    return path;
  }

  /** CSV with a header row; numbers written with enough digits to round-trip a float32. */
  writeCsv(name: string, header: string[], columns: ArrayLike<number>[]): string {
    const rows = [header.join(',')];
    const n = columns[0]?.length ?? 0;
    for (let i = 0; i < n; i++) rows.push(columns.map((c) => formatNumber(c[i])).join(','));
    return this.writeFile(name, rows.join('\n') + '\n');
  }

  writeJson(name: string, value: unknown): string {
    return this.writeFile(name, JSON.stringify(value, null, 2) + '\n');
  }

  /** The 'wrote ...' lines a stage prints at its end. */
  report(): string {
    return this.written.map((p) => `wrote ${relative(process.cwd(), p) || p}`).join('\n');
  }
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(9).replace(/\.?0+(e|$)/, '$1');
}
