// The image stage's config: every field checked before anything is built, and command-line overrides
// (--set section.field=value) typed and checked exactly like the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyOverrides, ConfigError, readConfig, validateConfig } from '../../stages/lib/config.ts';

const TINY = 'stages/mnist/tiny.json';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

test('--set reads numbers, booleans and lists as JSON and anything else as a string, at any depth', () => {
  const cfg = readConfig(TINY, [
    'train_params.lr=2e-4',
    'train_params.ema_warmup=none',
    'diffusion_params.p_mean=-1.2',
    'model_params.down_channels=[8,32]',
    'model_params.mid_channels.0=32',
    'model_params.attn=[true]',
  ]);
  assert.is(cfg.train_params.lr, 2e-4);
  assert.is(cfg.train_params.ema_warmup, 'none');
  assert.is(cfg.diffusion_params.p_mean, -1.2);
  assert.equal(cfg.model_params.down_channels, [8, 32]);
  assert.equal(cfg.model_params.mid_channels, [32, 8]);
  assert.equal(cfg.model_params.attn, [true]);
  // the file's own values, where nothing overrides them; the parsed file itself is left alone
  assert.is(cfg.train_params.batch_size, 8);
  const raw = { train_params: { lr: 1 } };
  applyOverrides(raw, ['train_params.lr=2']);
  assert.is(raw.train_params.lr, 1);
});

test('a bad --set is refused with one message naming the override or the field', () => {
  const cases: [string[], string | RegExp][] = [
    [['lr=2e-4'], "--set 'lr=2e-4': expects section.field=value, e.g. train_params.lr=2e-4"],
    [['train_params.lr'], "--set 'train_params.lr': expects section.field=value, e.g. train_params.lr=2e-4"],
    [['train_params..lr=1'], /^--set 'train_params\.\.lr=1': expects section\.field=value/],
    [['optimizer.lr=1'], "--set 'optimizer.lr=1': the config has no optimizer to set a field in"],
    [
      ['train_params.lr.x=1'],
      "--set 'train_params.lr.x=1': the config has no train_params.lr to set a field in",
    ],
    [['train_params.lr=fast'], 'config: train_params.lr must be a number, got "fast"'],
    [['train_params.learning_rate=1'], 'config: unknown field train_params.learning_rate'],
    [
      ['train_params.sampler=euler'],
      "config: train_params.sampler must be one of ddim, ddpm, heun; got 'euler'",
    ],
    [
      ['model_params.num_heads=3'],
      /^config: model_params: num_heads = 3 does not divide the 8 channels of the attention in mids\.0$/,
    ],
  ];
  for (const [sets, message] of cases) {
    const got = errorOf(() => readConfig(TINY, sets));
    if (typeof message === 'string') assert.is(got, message);
    else assert.match(got, message);
  }
});

test('the data set of a config fits its model: channels, size and classes', () => {
  assert.is(readConfig(TINY).dataset_params.name, 'mnist'); // the default when a file leaves it out
  assert.is(readConfig('stages/rgb/tiny.json').dataset_params.name, 'shapes');
  const cases: [string, string[], string][] = [
    [
      TINY,
      ['dataset_params.name=cifar'],
      "config: dataset_params.name must be one of mnist, shapes; got 'cifar'",
    ],
    [TINY, ['dataset_params.size=32'], 'config: unknown field dataset_params.size'],
    [
      TINY,
      ['dataset_params.name=shapes'],
      'config: dataset shapes has 3-channel images of 28x28 or 32x32; model_params has im_channels 1, im_size 28',
    ],
    [
      'stages/rgb/tiny.json',
      ['model_params.im_size=24'],
      'config: dataset shapes has 3-channel images of 28x28 or 32x32; model_params has im_channels 3, im_size 24',
    ],
    [
      'stages/rgb/tiny.json',
      ['model_params.num_classes=10'],
      'config: dataset shapes has 6 classes; model_params.num_classes is 10',
    ],
  ];
  for (const [file, sets, message] of cases) {
    const got = errorOf(() => readConfig(file, sets));
    if (typeof message === 'string') assert.is(got, message);
    else assert.match(got, message);
  }
});

test('ema_sigma_rels: a list of sigma_rel values each below sqrt(1/12), the widest a power EMA can be', () => {
  assert.equal(readConfig(TINY).train_params.ema_sigma_rels, []);
  assert.equal(
    readConfig(TINY, ['train_params.ema_sigma_rels=[0.05,0.15]']).train_params.ema_sigma_rels,
    [0.05, 0.15],
  );
  // 0.28868 lies just above sqrt(1/12) = 0.2886751...: refused here, as the EMA itself would refuse it
  for (const bad of ['[0.28868]', '[0]', '[0.1,"x"]', '0.1']) {
    const got = errorOf(() => readConfig(TINY, [`train_params.ema_sigma_rels=${bad}`]));
    assert.match(
      got,
      /^config: train_params\.ema_sigma_rels must be a list of numbers in \(0, 0\.2886\d*\), got /,
    );
  }
});

test('a config file that cannot be read, parsed or checked names the file or the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'config-'));
  writeFileSync(join(dir, 'broken.json'), '{ "train_params": ');
  writeFileSync(join(dir, 'list.json'), '[1, 2]');
  assert.match(
    errorOf(() => readConfig(join(dir, 'missing.json'))),
    /^config: cannot read .*missing\.json: ENOENT$/,
  );
  assert.match(
    errorOf(() => readConfig(join(dir, 'broken.json'))),
    /^config: .*broken\.json is not valid JSON/,
  );
  assert.match(
    errorOf(() => readConfig(join(dir, 'list.json'))),
    /^config: .*list\.json must hold a JSON object$/,
  );
  assert.is(
    errorOf(() => validateConfig([])),
    'config: must be a JSON object',
  );
  assert.is(
    errorOf(() => validateConfig({ extra: {} })),
    "config: unknown section 'extra'",
  );
});

// Found by tests/unit/fuzz-config.test.ts: the path walked into Object.prototype.
test("--set cannot reach Object.prototype: '__proto__', 'constructor' and 'prototype' name no field", () => {
  for (const set of [
    '__proto__.x=1',
    'train_params.__proto__=1',
    '__proto__.__proto__=[]',
    'train_params.constructor.x=1',
  ]) {
    assert.match(
      errorOf(() => readConfig(TINY, [set])),
      /cannot name a config field$/,
    );
  }
  assert.is(({} as Record<string, unknown>).x, undefined);
});

test.run();
