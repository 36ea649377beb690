// stage:2d and stage:multimodal end to end, in quick versions (fewer training steps, looser bounds).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModeStats } from '../../core/stats.ts';
import { readJson, runStage } from '../helpers/run.ts';

function csv(path: string): { header: string; rows: number } {
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  return { header: lines[0], rows: lines.length - 1 };
}

test('stage:2d (3000 steps) recovers N((1, 1), 0.01^2 I): mean within 0.03, std within 50% per axis', () => {
  const run = runStage('stages/2d.ts', ['--quiet', '--steps', '3000', '--seed', '1']);
  assert.is(run.status, 0, run.stderr);
  const s = readJson<{ mean: number[]; std: number[] }>(join(run.out, 'summary.json'));
  s.mean.forEach((m) => assert.ok(Math.abs(m - 1) < 0.03, `mean ${s.mean}`));
  s.std.forEach((v) => assert.ok(Math.abs(v - 0.01) < 0.005, `std ${s.std}`));
  assert.equal(csv(join(run.out, 'samples.csv')), { header: 'x,y', rows: 1000 });
  for (const f of ['loss.png', 'levels.png']) assert.ok(existsSync(join(run.out, f)), f);
});

test('stage:multimodal (4000 steps) puts a quarter in each spike, each near its centre with std near 0.01; so does the exact denoiser', () => {
  const run = runStage('stages/multimodal.ts', ['--quiet', '--steps', '4000']);
  assert.is(run.status, 0, run.stderr);
  const s = readJson<{ modes: ModeStats[]; exactDenoiser: ModeStats[] }>(join(run.out, 'summary.json'));
  assert.is(s.modes.length, 4);
  // the stage's goal, loosened for the trained net: shares 25% +- 7 (not 5), centre within 0.04 (not 0.03), std 0.005..0.02
  // (not 0.015); one sample stranded between two spikes would already push a spike's std past 0.02
  for (const m of s.modes) {
    assert.ok(m.count > 0 && Math.abs(m.share - 0.25) < 0.07, `share ${m.share}`);
    assert.ok(m.centreError < 0.04, `centre error ${m.centreError}`);
    m.std.forEach((v) => assert.ok(v > 0.005 && v < 0.02, `std ${m.std}`));
  }
  // The same ten levels and sampler with the exact one-level denoiser: the stage's full goal.
  for (const m of s.exactDenoiser) {
    assert.ok(Math.abs(m.share - 0.25) <= 0.05, `exact: share ${m.share}`);
    assert.ok(m.centreError < 0.03, `exact: centre error ${m.centreError}`);
    m.std.forEach((v) => assert.ok(Math.abs(v - 0.01) <= 0.005, `exact: std ${m.std}`));
  }
  assert.equal(csv(join(run.out, 'samples.csv')), { header: 'x,y', rows: 1000 });
  for (const f of ['loss.png', 'levels.png']) assert.ok(existsSync(join(run.out, f)), f);
});

test.run();
