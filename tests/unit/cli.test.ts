// The stages' shared flag parser: typed values, and one usage line for every way of calling it wrong.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFlags, usageLine, UsageError } from '../../stages/lib/cli.ts';
import { choiceFlag, ddpmFlagValues, varianceFlagValue } from '../../stages/lib/flags.ts';

const SPEC = {
  seed: { type: 'int', default: 0, help: 'random seed', min: 0 },
  out: { type: 'string', default: 'out', help: 'output folder' },
  quiet: { type: 'boolean', help: 'no progress bar' },
} as const;

function usageErrorOf(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UsageError) return e;
    throw e;
  }
  throw new Error('expected a UsageError');
}

test('parseFlags: typed values and defaults', () => {
  const f = parseFlags('stage:x', SPEC, ['--seed', '3', '--quiet']);
  assert.equal([f.seed, f.out, f.quiet], [3, 'out', true]);
  assert.equal(parseFlags('stage:x', SPEC, []).seed, 0);
});

test('parseFlags: unknown flags, non-integers, values under the minimum and stray arguments are refused', () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /Unknown option '--bogus'/],
    [['--seed', '1.5'], /--seed expects an integer, got '1.5'/],
    [['--seed=-1'], /--seed must be at least 0, got -1/],
    [['--seed', '-1'], /argument is ambiguous\. .* use '--seed=-XYZ'$/],
    [['--seed'], /argument missing$/],
    [['extra'], /unexpected argument 'extra'/],
  ];
  for (const [argv, message] of cases) {
    const e = usageErrorOf(() => parseFlags('stage:x', SPEC, argv));
    assert.match(e.message, message);
    assert.is(e.usage, usageLine('stage:x', SPEC));
  }
});

test('parseFlags: a program that names its operands gets them; the usage line shows them', () => {
  assert.equal(parseFlags('stage:x -- judge', {}, ['dir'], 'DIR').positionals, ['dir']);
  assert.is(usageLine('stage:x -- judge', {}, 'DIR'), 'usage: npm run stage:x -- judge DIR');
  assert.is(usageLine('stage:x', SPEC), 'usage: npm run stage:x -- [--seed N] [--out VALUE] [--quiet]');
});

test('a list flag collects every value given, in order; its usage shows that it repeats', () => {
  const spec = { set: { type: 'list', placeholder: 'K=V', help: 'override' } } as const;
  assert.equal(parseFlags('stage:x', spec, []).set, []);
  assert.equal(parseFlags('stage:x', spec, ['--set', 'a=1', '--set', 'b=2']).set, ['a=1', 'b=2']);
  assert.is(usageLine('stage:x', spec), 'usage: npm run stage:x -- [--set K=V ...]');
});

test('choice flags: a value of the list passes; any other is a usage error naming the flag and the choices', () => {
  assert.is(choiceFlag('heun', ['ddim', 'heun'] as const, 'sampler', 'stage:x'), 'heun');
  assert.equal(ddpmFlagValues({ 'beta-schedule': 'cosine', prediction: 'v' }, 'stage:ddpm'), {
    betaSchedule: 'cosine',
    prediction: 'v',
  });
  assert.is(varianceFlagValue({ variance: 'beta' }, 'stage:ddpm'), 'beta');
  const cases: [() => unknown, string][] = [
    [() => ddpmFlagValues({ 'beta-schedule': 'quadratic', prediction: 'eps' }, 'stage:ddpm'), "--beta-schedule must be one of linear, cosine, got 'quadratic'"], // prettier-ignore
    [() => ddpmFlagValues({ 'beta-schedule': 'linear', prediction: 'noise' }, 'stage:ddpm'), "--prediction must be one of eps, x0, v, got 'noise'"], // prettier-ignore
    [() => varianceFlagValue({ variance: 'small' }, 'stage:ddpm'), "--variance must be one of betaTilde, beta, got 'small'"], // prettier-ignore
  ];
  for (const [fn, message] of cases) {
    const e = usageErrorOf(fn);
    assert.is(e.message, message);
    assert.is(e.usage, 'usage: npm run stage:ddpm -- --help');
  }
});

test.run();
