// Property-based tests with fast-check: seeded, a few hundred cases per property inside `npm test`, and
// as many as wanted in a long run (`npm run fuzz -- --runs 100000`). A failure prints the shrunk
// counterexample with the seed and path that replay it; keep it as a plain regression test.
import fc from 'fast-check';

export const FUZZ = {
  numRuns: Number(process.env.FUZZ_RUNS ?? 300),
  seed: Number(process.env.FUZZ_SEED ?? 20261203),
};

/** Runs `property` with the project's seed and number of runs. */
export function check<T>(property: fc.IProperty<T>): void {
  fc.assert(property, { numRuns: FUZZ.numRuns, seed: FUZZ.seed });
}

/** How long one case may take: a reader of outside input answers in bounded time, or it hangs. */
export const CASE_MS = 2000;

/**
 * The outcome of calling a reader: its value, or the error it threw. Anything thrown that is not an
 * Error (a string, undefined) is a bug in itself and fails the property.
 */
export function outcome<T>(
  fn: () => T,
): { ok: true; value: T; ms: number } | { ok: false; error: Error; ms: number } {
  const start = performance.now();
  try {
    const value = fn();
    return { ok: true, value, ms: performance.now() - start };
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`threw a non-Error: ${String(e)}`);
    return { ok: false, error: e, ms: performance.now() - start };
  }
}

export { fc };
