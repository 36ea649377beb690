// What every stage program shares: the common flags (--seed, --steps, --out, --quiet) plus its own,
// the seeded random source and the output folder.
import { parseFlags, type FlagSpec, type Flags } from './cli.ts';
import { OutputDir } from './output.ts';
import { Rng } from '../../core/random.ts';
import { useBackend } from '../../core/kernels/select.ts';
import { BACKEND_FLAG } from './flags.ts';

/** The flags every stage takes, with its own defaults, then its own `extra` flags. */
export function stageFlags<T extends Record<string, FlagSpec>>(
  defaults: { steps: number; out: string },
  extra: T = {} as T,
) {
  return {
    seed: { type: 'int', default: 0, help: 'random seed' },
    steps: { type: 'int', default: defaults.steps, min: 1, help: 'training steps' },
    out: { type: 'string', default: defaults.out, help: 'folder for samples, summary and charts' },
    quiet: { type: 'boolean', help: 'no progress bar or animation (for tests and CI)' },
    ...BACKEND_FLAG,
    ...extra,
  } as const;
}

export async function stageSetup<T extends Record<string, FlagSpec>>(
  command: string,
  defaults: { steps: number; out: string },
  extra: T = {} as T,
) {
  const flags = parseFlags(command, stageFlags(defaults, extra));
  const log = process.env.DIFFUSION_AUTO_LOG ? (line: string) => console.error(line) : undefined;
  console.log(await useBackend(flags.backend, { log }));
  return {
    flags: flags as typeof flags & Flags<T>,
    rng: new Rng(flags.seed),
    /** Created when first used, so a run that fails early leaves no empty folder. */
    out: () => new OutputDir(flags.out),
    started: performance.now(),
  };
}

/** Seconds since `started`. */
export function secondsSince(started: number): number {
  return (performance.now() - started) / 1000;
}
