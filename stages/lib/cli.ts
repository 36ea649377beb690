// Command-line handling shared by the stages: typed flags with defaults, one-line usage errors, and a
// main() wrapper that turns any error into one clear line and a non-zero exit instead of a stack trace.
import { parseArgs } from 'node:util';

export type FlagSpec =
  | { type: 'int'; default: number; help: string; min?: number; max?: number }
  | { type: 'float'; default: number; help: string; min?: number; max?: number }
  | { type: 'string'; default: string; help: string }
  | { type: 'boolean'; help: string }
  /** A flag that may be given several times, each with a value (default: none). */
  | { type: 'list'; help: string; placeholder?: string };

type FlagValue<S extends FlagSpec> = S extends { type: 'boolean' }
  ? boolean
  : S extends { type: 'string' }
    ? string
    : S extends { type: 'list' }
      ? string[]
      : number;
export type Flags<T extends Record<string, FlagSpec>> = { [K in keyof T]: FlagValue<T[K]> };

/** An error in how the program was called: printed with the usage line, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage = '',
  ) {
    super(message);
  }
}

/** `--help` was asked for: runMain prints the text and exits 0 (a parser never exits by itself). */
export class HelpRequest extends Error {
  constructor(readonly text: string) {
    super('help requested');
  }
}

/** `operands` names the positional arguments in the usage line ('DIR'); '' when the program takes none. */
export function usageLine(command: string, spec: Record<string, FlagSpec>, operands = ''): string {
  const parts = Object.entries(spec).map(([name, s]) => {
    if (s.type === 'boolean') return `[--${name}]`;
    if (s.type === 'list') return `[--${name} ${s.placeholder ?? 'VALUE'} ...]`;
    return `[--${name} ${s.type === 'string' ? 'VALUE' : 'N'}]`;
  });
  // a subcommand ('stage:mnist -- sample') already carries npm's separator
  const separator = command.includes(' -- ') ? ' ' : ' -- ';
  return `usage: npm run ${command}${separator}${[operands, ...parts].filter(Boolean).join(' ')}`;
}

export function helpText(command: string, spec: Record<string, FlagSpec>, operands = ''): string {
  const rows = Object.entries(spec).map(([name, s]) => {
    const def =
      s.type === 'boolean' || s.type === 'list' || s.default === '' ? '' : ` (default ${s.default})`;
    return `  --${name.padEnd(10)} ${s.help}${def}`;
  });
  return [usageLine(command, spec, operands), '', ...rows, '  --help       show this message'].join('\n');
}

/**
 * Parses `argv` against `spec`; unknown flags, missing values, non-numbers and, for a program whose
 * usage names no `operands`, any positional argument throw a UsageError. `--help` throws a HelpRequest
 * holding the flags' help.
 */
export function parseFlags<T extends Record<string, FlagSpec>>(
  command: string,
  spec: T,
  argv: string[] = process.argv.slice(2),
  operands = '',
): Flags<T> & { positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
  };
  for (const [name, s] of Object.entries(spec))
    options[name] = { type: s.type === 'boolean' ? 'boolean' : 'string', multiple: s.type === 'list' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    // node's message can run over several lines (a hint on how to pass '--seed=-1'): keep it on one
    const msg = (err as Error).message
      .replace(/\. To specify a positional.*$/s, '')
      .split('\n')
      .join(' ')
      .replace(/\.$/, '');
    throw new UsageError(msg, usageLine(command, spec, operands));
  }
  if (parsed.values.help === true) throw new HelpRequest(helpText(command, spec, operands));
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  const out: Record<string, string | number | boolean | string[]> = { positionals: parsed.positionals };
  const bad = (msg: string) => new UsageError(msg, usageLine(command, spec, operands));
  if (!operands && parsed.positionals.length > 0) throw bad(`unexpected argument '${parsed.positionals[0]}'`);
  for (const [name, s] of Object.entries(spec)) {
    const raw = values[name];
    if (s.type === 'boolean') out[name] = raw === true;
    else if (s.type === 'list') out[name] = (raw as string[] | undefined) ?? [];
    else if (raw === undefined) out[name] = s.default;
    else if (s.type === 'string') out[name] = raw as string;
    else {
      const text = String(raw);
      const num = Number(text);
      const ok = text.trim() !== '' && Number.isFinite(num) && (s.type === 'float' || Number.isInteger(num));
      if (!ok) throw bad(`--${name} expects ${s.type === 'int' ? 'an integer' : 'a number'}, got '${text}'`);
      if (s.min !== undefined && num < s.min) throw bad(`--${name} must be at least ${s.min}, got ${num}`);
      if (s.max !== undefined && num > s.max) throw bad(`--${name} must be at most ${s.max}, got ${num}`);
      out[name] = num;
    }
  }
  return out as Flags<T> & { positionals: string[] };
}

/**
 * Runs a program's main function: a UsageError prints the message and the usage on one line (exit 2), any other error
 * prints one line (exit 1). Set DEBUG=1 to see the stack.
 */
export function runMain(main: () => void | Promise<void>): void {
  const fail = (err: unknown) => {
    if (err instanceof HelpRequest) {
      console.log(err.text);
      process.exit(0);
    }
    const e = err instanceof Error ? err : new Error(String(err));
    if (process.env.DEBUG) console.error(e.stack);
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}${e.usage ? `; ${e.usage}` : ''}`);
      process.exit(2);
    }
    console.error(`error: ${e.message}`);
    process.exit(1);
  };
  // `npm run stage:1d | head` closes the pipe early: that is the reader's choice, not an error
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });
  try {
    const result = main();
    if (result instanceof Promise) result.catch(fail);
  } catch (err) {
    fail(err);
  }
}
