// Timing a piece of work the way the bench does, shared by `npm run bench` and the page's bench panel.

/** Median milliseconds of `fn` over runs taken until `minRuns` and ~`budgetMs` (after one warm-up). */
export async function medianTime(
  fn: () => unknown,
  minRuns: number,
  budgetMs: number,
  maxRuns = 50,
): Promise<{ ms: number; runs: number }> {
  await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || (performance.now() - start < budgetMs && times.length < maxRuns)) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return { ms: median(times), runs: times.length };
}

/** The middle value (the upper of the two middle ones for an even count), as every figure of the bench. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
