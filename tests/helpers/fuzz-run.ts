// `npm run fuzz -- --runs 100000 --seed 7`: the property tests (tests/unit/fuzz-*.test.ts) with as many
// cases as asked, for a long run; `npm test` runs them with a few hundred. A failure prints the shrunk
// counterexample, and the seed and path that replay it.
import { spawnSync } from 'node:child_process';
import { parseFlags, runMain } from '../../stages/lib/cli.ts';
import { FUZZ } from './fuzz.ts';

runMain(() => {
  const flags = parseFlags('fuzz', {
    runs: { type: 'int', default: 100000, min: 1, help: 'cases per property' },
    seed: { type: 'int', default: FUZZ.seed, help: 'fast-check seed' },
  });
  console.log(`fuzz: ${flags.runs} cases per property, seed ${flags.seed}`);
  const run = spawnSync('npx', ['uvu', '-r', 'tsx', 'tests/unit', 'fuzz-.*\\.test\\.ts$'], {
    stdio: 'inherit',
    env: { ...process.env, FUZZ_RUNS: String(flags.runs), FUZZ_SEED: String(flags.seed) },
  });
  process.exitCode = run.status ?? 1;
});
