// `npm test` runs the unit and the stage suites side by side: the stage tests spend much of their time
// starting child processes and waiting on them, so the unit suite fits in the idle core. Each suite's
// output is printed whole when it ends (never interleaved); the exit code is non-zero if either failed.
import { spawn } from 'node:child_process';

const suites: [name: string, dir: string][] = [
  ['unit', 'tests/unit'],
  ['stages', 'tests/stages'],
];

const runs = suites.map(
  ([name, dir]) =>
    new Promise<number>((resolve) => {
      const started = Date.now();
      const child = spawn(process.execPath, ['node_modules/uvu/bin.js', '-r', 'tsx', dir, '\\.test\\.ts$'], {
        // the children write to pipes: keep uvu's colours only when the output is a terminal
        env: process.stdout.isTTY ? { ...process.env, FORCE_COLOR: '1' } : process.env,
      });
      const out: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => out.push(b));
      child.on('close', (code, signal) => {
        const seconds = ((Date.now() - started) / 1000).toFixed(0);
        const status = code === 0 ? 'passed' : `FAILED (${signal ?? `exit ${code}`})`;
        process.stdout.write(`\n=== ${name} (${dir}): ${status} in ${seconds} s ===\n${Buffer.concat(out)}`);
        resolve(code ?? 1);
      });
    }),
);

const codes = await Promise.all(runs);
process.exit(codes.some((c) => c !== 0) ? 1 : 0);
