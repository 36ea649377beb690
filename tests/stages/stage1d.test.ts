// stage:1d end to end: it recovers the mean and the spread, is deterministic, and refuses bad flags.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJson, runStage } from '../helpers/run.ts';

type Summary = { mean: number; std: number };

// seed 3 of the same recipe trains in the page (tests/stages/web.test.ts)
for (const seed of [1]) {
  test(`stage:1d seed ${seed} recovers N(1, 0.01^2): |mean - 1| < 0.01, std within 25% of 0.01`, () => {
    const run = runStage('stages/1d.ts', ['--quiet', '--seed', String(seed)]);
    assert.is(run.status, 0, run.stderr);
    const s = readJson<Summary>(join(run.out, 'summary.json'));
    assert.ok(Math.abs(s.mean - 1) < 0.01, `mean ${s.mean}`);
    assert.ok(Math.abs(s.std - 0.01) < 0.0025, `std ${s.std}`);
    const rows = readFileSync(join(run.out, 'samples.csv'), 'utf8').trim().split('\n');
    assert.is(rows[0], 'x');
    assert.is(rows.length, 1001);
    for (const f of ['loss.png', 'levels.png']) assert.ok(existsSync(join(run.out, f)), f);
    assert.match(run.stdout, /wrote .*samples\.csv/);
  });
}

test('stage:1d: the same seed gives byte-identical samples.csv', () => {
  const a = runStage('stages/1d.ts', ['--quiet', '--seed', '5', '--steps', '300']);
  const b = runStage('stages/1d.ts', ['--quiet', '--seed', '5', '--steps', '300']);
  assert.is(a.status, 0, a.stderr);
  assert.is(
    readFileSync(join(a.out, 'samples.csv'), 'utf8'),
    readFileSync(join(b.out, 'samples.csv'), 'utf8'),
  );
  const c = runStage('stages/1d.ts', ['--quiet', '--seed', '6', '--steps', '300']);
  assert.is.not(
    readFileSync(join(a.out, 'samples.csv'), 'utf8'),
    readFileSync(join(c.out, 'samples.csv'), 'utf8'),
  );
});

test('stage:1d: an unknown flag or a non-numeric seed exits non-zero with a one-line usage message', () => {
  // every way of calling a program wrong is checked in-process (tests/unit/cli.test.ts); here, end to end
  for (const args of [['--bogus'], ['--seed', 'abc']]) {
    const run = runStage('stages/1d.ts', args);
    assert.is(run.status, 2, `${args.join(' ')}: status ${run.status}`);
    const lines = run.stderr.trim().split('\n');
    assert.is(lines.length, 1, run.stderr);
    assert.match(lines[0], /^error: .*usage: npm run stage:1d -- /);
    assert.not.match(run.stderr, /at .*\.ts:\d+/); // no stack trace
  }
});

test.run();
