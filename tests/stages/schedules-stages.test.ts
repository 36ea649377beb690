// The schedule and target options end to end: stage:schedules in a quick version, stage:mnist training
// and sampling with the cosine schedule and with v-prediction, and the toy DDPM stages' flags.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors } from '../../core/io/safetensors.ts';
import { readCheckpoint } from '../../core/io/checkpoint.ts';
import { validateConfig } from '../../stages/lib/config.ts';
import { DdpmSchedule } from '../../core/diffusion/ddpm.ts';
import { readJson, runStage } from '../helpers/run.ts';

test('stage:schedules (T 100, 300 steps) writes its charts, table and the experiment for every target', () => {
  const run = runStage('stages/schedules.ts', ['--quiet', '--T', '100', '--steps', '300']);
  assert.is(run.status, 0, run.stderr);
  for (const f of [
    'schedules.png',
    'digit.png',
    'targets.png',
    'snr.png',
    'experiment.png',
    'experiment-x0-error.png',
  ]) {
    assert.ok(existsSync(join(run.out, f)), f);
  }
  type Summary = {
    schedules: { name: string; alphaBarT: number; signalT: number }[];
    experiment: { target: string; shares: number[]; within5Std: number }[];
  };
  const s = readJson<Summary>(join(run.out, 'summary.json'));
  assert.is(s.schedules.length, 7);
  const cosine = s.schedules.find((r) => r.name.startsWith('cosine'));
  assert.ok(cosine, 'a cosine row');
  close(cosine.alphaBarT, DdpmSchedule.cosine(100).alphaBar[99], 1e-18, 'cosine alphaBar_T');
  assert.is(s.schedules.find((r) => r.name.startsWith('interpolation'))?.alphaBarT, 0);
  assert.ok(
    s.schedules.find((r) => r.name.includes('low end'))!.alphaBarT > 0.5,
    'the low-end schedule leaves most of the signal at T = 100',
  );
  assert.equal(
    s.experiment.map((e) => e.target),
    ['eps', 'x0', 'v', 'x0, c_in 1', 'exact'],
  );
  for (const e of s.experiment)
    close(
      e.shares.reduce((a, b) => a + b, 0),
      1,
      1e-9,
      `${e.target} shares`,
    );
  // the exact E[x0 | x_t] puts (almost) every sample on a spike even with T = 100
  assert.ok(s.experiment[4].within5Std > 0.98, `exact: ${s.experiment[4].within5Std}`);
  assert.match(run.stdout, /alphaBar_T/);
  assert.match(run.stdout, /linear 1e-4\.\.0\.02 \(DDPM\)/);
  assert.match(run.stdout, /within 0\.05/);
});

const TINY = 'stages/mnist/tiny.json';

function tinyWith(field: string, value: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'mnist-schedule-'));
  const cfg = JSON.parse(readFileSync(TINY, 'utf8')) as Record<string, Record<string, unknown>>;
  cfg.diffusion_params[field] = value;
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(cfg));
  return path;
}

for (const [field, value] of [
  ['beta_schedule', 'cosine'],
  ['prediction', 'v'],
] as const) {
  test(`stage:mnist trains and samples with ${field}: ${value} (tiny config)`, () => {
    const config = tinyWith(field, value);
    const run = runStage('stages/mnist.ts', ['--config', config, '--quiet', '--backend', 'wasm']);
    assert.is(run.status, 0, run.stderr);
    const log = readFileSync(join(run.out, 'train-log.csv'), 'utf8').trim().split('\n').slice(1);
    assert.is(log.length, 6);
    for (const row of log) assert.ok(Number.isFinite(Number(row.split(',')[3])), row);
    const samples = readSafetensors(join(run.out, 'samples.safetensors')).tensors.get('samples');
    assert.equal(samples?.shape, [4, 1, 28, 28]);
    assert.ok(
      Array.from(samples?.data ?? []).every((v) => v >= 0 && v <= 1),
      'samples finite, in [0, 1]',
    );
    assert.ok(existsSync(join(run.out, 'scores.json')));
    const saved = validateConfig(readCheckpoint(join(run.out, 'checkpoint.safetensors')).config);
    assert.is(saved.diffusion_params[field], value);
  });
}

test('stage:ddpm with --beta-schedule cosine --prediction v (T 200): mean within 0.02 of 1, std within 30% of the exact denoiser', () => {
  const run = runStage('stages/ddpm.ts', [
    '--quiet',
    '--T',
    '200',
    '--steps',
    '3000',
    '--beta-schedule',
    'cosine',
    '--prediction',
    'v',
  ]);
  assert.is(run.status, 0, run.stderr);
  const s = readJson<{
    mean: number;
    std: number;
    exactDenoiser: { std: number };
    betaSchedule: string;
    prediction: string;
  }>(join(run.out, 'summary.json'));
  assert.is(s.betaSchedule, 'cosine');
  assert.is(s.prediction, 'v');
  assert.ok(Math.abs(s.mean - 1) < 0.02, `mean ${s.mean}`);
  assert.ok(
    Math.abs(s.std - s.exactDenoiser.std) < 0.3 * s.exactDenoiser.std,
    `std ${s.std} vs exact ${s.exactDenoiser.std}`,
  );
});

test('the toy DDPM stages refuse a bad --beta-schedule or --prediction with one usage line', () => {
  // every flag value is checked by one function (tests/unit/cli.test.ts); here, that each stage calls it
  const cases = [
    ['ddpm', '--beta-schedule', 'quadratic', 'linear, cosine'],
    ['ddpm-levels', '--prediction', 'noise', 'eps, x0, v'],
    ['ddpm-multimodal', '--beta-schedule', 'quadratic', 'linear, cosine'],
    ['ddpm-detailed', '--prediction', 'noise', 'eps, x0, v'],
  ];
  for (const [stage, flag, value, allowed] of cases) {
    const run = runStage(`stages/${stage}.ts`, [flag, value]);
    assert.is(run.status, 2, `${stage} ${flag} ${value}: status ${run.status}`);
    const lines = run.stderr.trim().split('\n');
    assert.is(lines.length, 1, run.stderr);
    assert.match(
      lines[0],
      `error: ${flag} must be one of ${allowed}, got '${value}'; usage: npm run stage:${stage} -- `,
    );
  }
});

function close(a: number, b: number, tol: number, what: string) {
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tolerance ${tol})`);
}

test.run();
