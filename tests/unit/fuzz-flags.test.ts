// The command-line parser under random input: argv of flags, values, '=' forms, '--help', stray
// arguments and noise, against random flag specs and the programs' own. The property: parsed flags of
// exactly the declared types within their bounds, or one UsageError naming what was wrong (or the help,
// when asked for); every case answers within CASE_MS.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HelpRequest, parseFlags, UsageError, type FlagSpec } from '../../stages/lib/cli.ts';
import { DDPM_FLAGS, T_FLAG, VARIANCE_FLAG } from '../../stages/lib/flags.ts';
import { stageFlags } from '../../stages/lib/stage.ts';
import { JUDGE_FLAGS, SAMPLE_FLAGS, TRAIN_FLAGS } from '../../stages/mnist/flags.ts';
import { CASE_MS, check, fc, outcome } from '../helpers/fuzz.ts';

type Spec = Record<string, FlagSpec>;

const PROGRAMS: Record<string, { spec: Spec; operands: string }> = {
  'stage:1d': { spec: stageFlags({ steps: 12000, out: 'out/1d' }), operands: '' },
  'stage:ddpm': {
    spec: stageFlags({ steps: 12000, out: 'out/ddpm' }, { ...T_FLAG, ...VARIANCE_FLAG, ...DDPM_FLAGS }),
    operands: '',
  },
  'stage:mnist': { spec: TRAIN_FLAGS, operands: '' },
  'stage:mnist -- sample': { spec: SAMPLE_FLAGS, operands: '' },
  'stage:mnist -- judge': { spec: JUDGE_FLAGS, operands: 'DIR' },
};

/** A flag spec of any shape: a few names, each of any type, with or without bounds. */
const randomSpec: fc.Arbitrary<Spec> = fc.dictionary(
  fc.constantFrom('seed', 'n', 'out', 'rate', 'quiet', 'set', 'x'),
  fc.oneof(
    fc.record({ type: fc.constant('int' as const), default: fc.integer(), help: fc.constant(''), min: fc.option(fc.integer({ min: -5, max: 5 }), { nil: undefined }), max: fc.option(fc.integer({ min: 5, max: 1000 }), { nil: undefined }) }), // prettier-ignore
    fc.record({ type: fc.constant('float' as const), default: fc.double({ noNaN: true, noDefaultInfinity: true }), help: fc.constant(''), min: fc.option(fc.double({ min: -1, max: 1, noNaN: true }), { nil: undefined }) }), // prettier-ignore
    fc.record({ type: fc.constant('string' as const), default: fc.string(), help: fc.constant('') }),
    fc.record({ type: fc.constant('boolean' as const), help: fc.constant('') }),
    fc.record({ type: fc.constant('list' as const), help: fc.constant('') }),
  ),
  { maxKeys: 4 },
);

/**
 * argv made of the spec's own flags, each given a value of every kind (its own bounds and their
 * neighbours among them, where an off-by-one or a skipped check shows), '=' forms, '--help' and noise.
 */
function argvFor(spec: Spec): fc.Arbitrary<string[]> {
  const anyValue = fc.oneof(
    fc.constantFrom('0', '1', '-1', '2.5', '1e3', '1e400', 'NaN', 'Infinity', '0x10', '', ' ', '7 ', '999999999999999999999'), // prettier-ignore
    fc.integer().map(String),
    fc.double().map(String),
    fc.string(),
  );
  const valueFor = (s: FlagSpec) => {
    const bounds = s.type === 'int' || s.type === 'float' ? [s.min, s.max] : [];
    const edges = bounds.flatMap((b) => (b === undefined ? [] : [b - 1, b, b + 1].map(String)));
    return edges.length > 0 ? fc.oneof(fc.constantFrom(...edges), anyValue) : anyValue;
  };
  const given = Object.entries(spec).map(([name, s]) =>
    fc.oneof(
      valueFor(s).map((v) => [`--${name}`, v]),
      valueFor(s).map((v) => [`--${name}=${v}`]),
      fc.constant([`--${name}`]),
    ),
  );
  const noise = fc
    .oneof(fc.constantFrom('--help', '-h', '--', '-', '--=', '---x', '--bogus'), anyValue)
    .map((t) => [t]);
  const token = given.length > 0 ? fc.oneof({ weight: 4, arbitrary: fc.oneof(...given) }, { weight: 1, arbitrary: noise }) : noise; // prettier-ignore
  return fc.array(token, { maxLength: 5 }).map((parts) => parts.flat());
}

/** The parser's verdict: flags of the declared types and bounds, the help, or one naming UsageError. */
function holds(spec: Spec, argv: string[], operands: string): boolean {
  const result = outcome(() => parseFlags('prog', spec, argv, operands));
  assert.ok(result.ms < CASE_MS, `took ${result.ms} ms`);
  if (!result.ok) {
    const e = result.error;
    if (e instanceof HelpRequest) {
      assert.ok(argv.includes('--help'), 'help only when asked for');
      return true;
    }
    assert.instance(e, UsageError, e.message);
    assert.not.match(e.message, /\n/);
    const named =
      argv.some((a) => a.trim() !== '' && e.message.includes(a.trim())) ||
      Object.keys(spec).some((n) => e.message.includes(`--${n}`)) ||
      /argument|option/i.test(e.message);
    assert.ok(named, `names nothing of ${JSON.stringify(argv)}: ${e.message}`);
    return true;
  }
  const flags = result.value as Record<string, unknown> & { positionals: string[] };
  if (!operands) assert.equal(flags.positionals, []);
  for (const [name, s] of Object.entries(spec)) {
    const v = flags[name];
    if (s.type === 'boolean') assert.type(v, 'boolean', name);
    else if (s.type === 'string') assert.type(v, 'string', name);
    else if (s.type === 'list') assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), name);
    else {
      const ok =
        typeof v === 'number' &&
        Number.isFinite(v) &&
        (s.type === 'float' || Number.isInteger(v)) &&
        (v === s.default || ((s.min === undefined || v >= s.min) && (s.max === undefined || v <= s.max)));
      assert.ok(ok, `--${name} = ${String(v)} is not a ${s.type} within its bounds`);
    }
  }
  return true;
}

test('random argv against random flag specs', () => {
  check(
    fc.property(
      randomSpec.chain((spec) => fc.tuple(fc.constant(spec), argvFor(spec), fc.constantFrom('', 'DIR'))),
      ([spec, argv, operands]) => holds(spec, argv, operands),
    ),
  );
});

test("random argv against every program's own flags", () => {
  const program = fc.constantFrom(...Object.keys(PROGRAMS));
  check(
    fc.property(
      program.chain((p) => fc.tuple(fc.constant(p), argvFor(PROGRAMS[p].spec))),
      ([p, argv]) => holds(PROGRAMS[p].spec, argv, PROGRAMS[p].operands),
    ),
  );
});

test.run();
