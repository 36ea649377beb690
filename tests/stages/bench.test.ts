// The bench in smoke mode: every backend completes every figure and reports a positive number, and each
// UNet row its peak memory.
// (Speed itself is judged by `npm run bench`, never by a timed test.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { availableParallelism as cores } from 'node:os';

test('npm run bench -- --smoke --json: every backend reports a positive figure for every bench', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'stages/bench.ts', '--smoke', '--json'], {
    encoding: 'utf8',
  });
  assert.is(run.status, 0, run.stderr);
  const rows = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { bench: string; backend: string; value: number; peakMiB?: number });
  const backends = new Set(rows.map((r) => r.backend));
  assert.equal([...backends].sort(), ['gpu', 'gpu-async', 'ts', 'wasm']);
  for (const r of rows) assert.ok(r.value > 0, `${r.bench} on ${r.backend}: ${r.value}`);
  assert.ok(rows.some((r) => r.bench.startsWith('conv3x3') && r.bench.endsWith('bwd')));
  // every UNet row reports the peak resident memory while it ran, and only those
  for (const r of rows) {
    if (r.bench.startsWith('unet'))
      assert.ok(r.peakMiB! > 10, `${r.bench} on ${r.backend}: peak ${r.peakMiB}`);
    else assert.is(r.peakMiB, undefined, r.bench);
  }
});

/** The bench in smoke mode, JSON lines out, with these flags. */
const bench = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'stages/bench.ts', '--smoke', '--json', ...args], {
    encoding: 'utf8',
  });

test('bench --unet runs one UNet row in its own process, with its peak memory; a malformed row is refused', () => {
  const run = bench('--backends', 'wasm', '--unet', 'forward:tiny:2:1');
  assert.is(run.status, 0, run.stderr);
  const row = JSON.parse(run.stdout.trim()) as { bench: string; backend: string; peakMiB: number };
  assert.is(row.bench, 'unet forward b2');
  assert.is(row.backend, 'wasm');
  assert.ok(row.peakMiB > 10, `peak ${row.peakMiB}`);
  const bad = bench('--unet', 'forward:tiny');
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--unet: expected kind:config:batch:threads/);
});

test('bench --rows measures only the groups asked for; an unknown group is refused', () => {
  const run = bench('--backends', 'ts', '--rows', 'conv');
  assert.is(run.status, 0, run.stderr);
  const rows = run.stdout
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { bench: string }).bench);
  assert.ok(rows.length > 0 && rows.every((r) => r.startsWith('conv3x3')), rows.join(', '));
  const bad = bench('--rows', 'conv,matmull');
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--rows: unknown group 'matmull'/);
});

test('bench --paired steps ours and each PyTorch setting in turn and pairs their figures; a contender that cannot start is named', () => {
  // tests/helpers/fake-serve.ts stands in for PyTorch: the protocol, not the speed, is under test
  const run = bench('--paired', 'train:tiny:2', '--rounds', '2', '--seconds', '0.1', '--python', 'tests/helpers/fake-serve.ts'); // prettier-ignore
  assert.is(run.status, 0, run.stderr);
  const lines = run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.is(lines.length, 3);
  const names = (lines[0].theirs as { name: string }[]).map((t) => t.name);
  assert.equal(names, ['pytorch 2 threads', 'pytorch passive', 'pytorch 1 thread'].map((n) => n.replace("2", `${Math.min(4, cores())}`))); // prettier-ignore
  for (const round of lines.slice(0, 2)) {
    for (const t of round.theirs as { value: number; ours: number; ratio: number }[]) {
      assert.ok(t.value > 0 && t.ours > 0, JSON.stringify(t));
      assert.ok(Math.abs(t.ratio - t.ours / t.value) < 1e-9, JSON.stringify(t));
    }
  }
  assert.is((lines[2].againstBest as number[]).length, 2);
  assert.match(run.stderr, /round 2\/2/);

  const malformed = bench('--paired', 'train:tiny');
  assert.is(malformed.status, 2);
  assert.match(malformed.stderr, /--paired: expected kind:config:batch/);

  const missing = bench('--paired', 'train:tiny:2', '--rounds', '1', '--python', 'no-such-python');
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /error: pytorch .* stopped before answering: spawn no-such-python ENOENT/);
});

test.run();
