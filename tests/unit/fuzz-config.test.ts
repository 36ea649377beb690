// The config validator under random input: real configs with any field set to any JSON value, fields
// removed or added, sections replaced, and configs of pure noise. The property: a config accepted holds
// only values its schema allows (and a UNet that builds), or the validator throws one ConfigError that
// names the section or field at fault; every case answers within CASE_MS.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Rng, UNet } from '../../core/index.ts';
import {
  MAX_PARAMETERS,
  UNET_FIELDS,
  unetParameterCount,
  validateUNetConfig,
} from '../../core/nn/unet-config.ts';
import {
  CONFIG_FIELDS,
  ConfigError,
  objectiveOf,
  readConfig,
  validateConfig,
  type Field,
  type StageConfig,
} from '../../stages/lib/config.ts';
import { CASE_MS, check, fc, outcome } from '../helpers/fuzz.ts';

const BASES = {
  tiny: JSON.parse(readFileSync('stages/mnist/tiny.json', 'utf8')) as Record<string, Record<string, unknown>>,
  default: JSON.parse(readFileSync('stages/mnist/default.json', 'utf8')) as Record<
    string,
    Record<string, unknown>
  >,
  seed: JSON.parse(readFileSync('stages/mnist/seed.json', 'utf8')) as Record<string, Record<string, unknown>>,
  rgb: JSON.parse(readFileSync('stages/rgb/tiny.json', 'utf8')) as Record<string, Record<string, unknown>>,
};
const SECTIONS = ['dataset_params', 'diffusion_params', 'model_params', 'train_params'] as const;
const FIELDS: [string, string][] = [
  ...Object.keys(CONFIG_FIELDS.dataset_params).map((f): [string, string] => ['dataset_params', f]),
  ...Object.keys(CONFIG_FIELDS.diffusion_params).map((f): [string, string] => ['diffusion_params', f]),
  ...UNET_FIELDS.map((f): [string, string] => ['model_params', f]),
  ...Object.keys(CONFIG_FIELDS.train_params).map((f): [string, string] => ['train_params', f]),
];
/** Every name an error may give to say where the fault is. */
const NAMES = [...SECTIONS, ...FIELDS.map(([, f]) => f)];

/** Values of every kind, weighted towards those a field could almost take. */
const value = fc.oneof(
  fc.jsonValue(),
  fc.integer({ min: -10, max: 70000 }),
  fc.constantFrom(
    0,
    -1,
    0.5,
    1e-4,
    1e9,
    2 ** 40,
    1e308,
    'linear',
    'cosine',
    'edm',
    'ddpm',
    'eps',
    'v',
    'none',
    'shapes',
    'mnist',
    '',
  ),
  fc.array(fc.integer({ min: -2, max: 300 }), { maxLength: 6 }),
  fc.array(fc.boolean(), { maxLength: 5 }),
);

/** A value a schema field allows. */
function allowed(f: Field, v: unknown): boolean {
  if (f.kind === 'numbers') return Array.isArray(v) && v.every((x) => allowed({ ...f, kind: 'number' }, x));
  if (f.kind === 'string') {
    return (
      typeof v === 'string' && (!f.choices || f.choices.includes(v)) && (!f.pattern || f.pattern.test.test(v))
    );
  }
  return (
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (f.kind === 'number' || Number.isInteger(v)) &&
    (f.exclusive
      ? (f.min === undefined || v > f.min) && (f.max === undefined || v < f.max)
      : (f.min === undefined || v >= f.min) && (f.max === undefined || v <= f.max))
  );
}

function timeOf(fn: () => unknown): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

/** The validator's verdict on `raw`: an accepted config within its schema, or one ConfigError naming a part. */
function holds(raw: unknown): boolean {
  const result = outcome(() => validateConfig(raw));
  assert.ok(result.ms < CASE_MS, `took ${result.ms} ms`);
  if (!result.ok) {
    assert.instance(result.error, ConfigError, result.error.message);
    assert.match(result.error.message, /^config: /);
    assert.not.match(result.error.message, /\n/);
    const named =
      NAMES.some((n) => result.error.message.includes(n)) ||
      /must be a JSON object|unknown section '/.test(result.error.message);
    assert.ok(named, `names no section or field: ${result.error.message}`);
    return true;
  }
  const cfg: StageConfig = result.value;
  for (const section of ['dataset_params', 'diffusion_params', 'train_params'] as const) {
    const fields = CONFIG_FIELDS[section] as Record<string, Field>;
    assert.equal(Object.keys(cfg[section]).sort(), Object.keys(fields).sort(), section);
    for (const [name, f] of Object.entries(fields)) {
      const v = (cfg[section] as Record<string, unknown>)[name];
      assert.ok(allowed(f, v), `${section}.${name} = ${JSON.stringify(v)} is outside its schema`);
    }
  }
  assert.ok(cfg.diffusion_params.beta_end > cfg.diffusion_params.beta_start, 'beta_end > beta_start');
  // the model section is checked by the UNet's own validator, and stays within what can be built
  assert.equal(validateUNetConfig(cfg.model_params), cfg.model_params);
  const count = unetParameterCount(cfg.model_params);
  assert.ok(count <= MAX_PARAMETERS, `${count} parameters`);
  if (count < 300000) assert.is(new UNet(cfg.model_params, new Rng(0)).numParameters(), count);
  // and the objective (its schedule of num_timesteps numbers) is built at once
  assert.ok(timeOf(() => objectiveOf(cfg)) < CASE_MS, 'the objective builds quickly');
  return true;
}

const base = fc.constantFrom('tiny', 'default', 'seed', 'rgb') as fc.Arbitrary<keyof typeof BASES>;
/** A base config with every section present (dataset_params may be left out of a file; it is given here). */
const copy = (name: keyof typeof BASES): Record<string, Record<string, unknown>> => ({
  dataset_params: {},
  ...structuredClone(BASES[name]),
});

test('a field of a real config set to any JSON value', () => {
  check(
    fc.property(base, fc.constantFrom(...FIELDS), value, (name, [section, field], v) => {
      const raw = copy(name);
      raw[section][field] = v;
      return holds(raw);
    }),
  );
});

test('fields removed, unknown fields added, whole sections replaced', () => {
  const change = fc.oneof(
    fc.record({ kind: fc.constant('remove' as const), at: fc.constantFrom(...FIELDS) }),
    fc.record({
      kind: fc.constant('add' as const),
      section: fc.constantFrom(...SECTIONS),
      name: fc.string(),
      v: value,
    }),
    fc.record({ kind: fc.constant('section' as const), section: fc.string(), v: fc.jsonValue() }),
  );
  check(
    fc.property(base, fc.array(change, { minLength: 1, maxLength: 3 }), (name, changes) => {
      const raw = copy(name) as Record<string, unknown>;
      for (const c of changes) {
        if (c.kind === 'remove') delete (raw[c.at[0]] as Record<string, unknown>)[c.at[1]];
        else if (c.kind === 'add') (raw[c.section] as Record<string, unknown>)[c.name] = c.v;
        else raw[c.section] = c.v;
      }
      return holds(raw);
    }),
  );
});

const PROTOTYPE = Object.getOwnPropertyNames(Object.prototype);

test('--set overrides of any form, on a real config file, never reaching Object.prototype', () => {
  const path = fc.oneof(
    fc.constantFrom(...FIELDS).map(([sec, f]) => `${sec}.${f}`),
    fc.constantFrom(...FIELDS).map(([sec, f]) => `${sec}.${f}.0`),
    fc.array(fc.oneof(fc.constantFrom(...SECTIONS, 'lr', '0', '', '__proto__'), fc.string()), { maxLength: 4 }).map((p) => p.join('.')), // prettier-ignore
  );
  const text = fc.oneof(
    value.map((v) => JSON.stringify(v)),
    fc.string(),
  );
  const set = fc.oneof(
    { weight: 5, arbitrary: fc.tuple(path, text).map(([p, t]) => `${p}=${t}`) },
    { weight: 1, arbitrary: fc.string() },
  );
  check(
    fc.property(fc.array(set, { maxLength: 3 }), (sets) => {
      const result = outcome(() => readConfig('stages/mnist/tiny.json', sets));
      assert.ok(result.ms < CASE_MS, `took ${result.ms} ms`);
      const added = Object.getOwnPropertyNames(Object.prototype).filter((k) => !PROTOTYPE.includes(k));
      for (const k of added) delete (Object.prototype as Record<string, unknown>)[k]; // for the next case
      assert.equal(added, [], 'Object.prototype untouched');
      if (result.ok) return holds(result.value);
      assert.instance(result.error, ConfigError, result.error.message);
      assert.match(result.error.message, /^(--set '|config: )/);
      return true;
    }),
  );
});

test('configs of pure noise', () => {
  check(fc.property(fc.jsonValue(), (raw) => holds(raw)));
});

test('a model of every shape the generator can draw: its parameter count equals the built UNet', () => {
  const model = fc.record({
    im_channels: fc.integer({ min: 1, max: 3 }),
    im_size: fc.constantFrom(4, 8, 12),
    down_channels: fc.array(fc.constantFrom(8, 16), { minLength: 2, maxLength: 4 }),
    time_emb_dim: fc.constantFrom(4, 8),
    num_down_layers: fc.integer({ min: 1, max: 2 }),
    num_mid_layers: fc.integer({ min: 0, max: 2 }),
    num_up_layers: fc.integer({ min: 1, max: 2 }),
    num_heads: fc.constantFrom(1, 2, 4),
    attn: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    down_sample: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    num_classes: fc.constantFrom(0, 0, 3, 10),
  });
  check(
    fc.property(model, fc.constantFrom(8, 16), (m, midOut) => {
      const levels = m.down_channels.length - 1;
      const last = m.down_channels[levels];
      const raw = {
        ...m,
        mid_channels: [last, midOut, m.down_channels[levels - 1]],
        attn: m.attn.slice(0, levels),
        down_sample: m.down_sample.slice(0, levels).map((d, i) => d && i < 2),
      };
      const result = outcome(() => validateUNetConfig(raw));
      if (!result.ok) return true; // refused with a message (checked by the properties above)
      return unetParameterCount(result.value) === new UNet(result.value, new Rng(0)).numParameters();
    }),
  );
});

test.run();
