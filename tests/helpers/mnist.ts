// What the stage:mnist tests share: the tiny config, a fresh folder, and the losses a run logged.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TINY = 'stages/mnist/tiny.json';
export const fresh = () => mkdtempSync(join(tmpdir(), 'mnist-'));
export const losses = (dir: string) =>
  readFileSync(join(dir, 'train-log.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((row) => Number(row.split(',')[3]));

export function tinyConfig(dir: string, patch: (c: Record<string, Record<string, unknown>>) => void): string {
  const cfg = JSON.parse(readFileSync(TINY, 'utf8')) as Record<string, Record<string, unknown>>;
  patch(cfg);
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(cfg));
  return path;
}
