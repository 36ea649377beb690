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
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], runs: times.length };
}
