// Runs a stage as a user would (a child process through tsx) and returns what it printed and wrote.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type StageRun = { status: number | null; stdout: string; stderr: string; out: string };

export function runStage(script: string, args: string[] = [], opts: { out?: string } = {}): StageRun {
  const out = opts.out ?? mkdtempSync(join(tmpdir(), 'stage-'));
  const result = spawnSync(process.execPath, ['--import', 'tsx', script, ...args, '--out', out], {
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, out };
}

export function readJson<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
