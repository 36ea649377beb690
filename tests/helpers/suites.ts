// `npm test` runs the unit and the stage suites side by side: the stage tests spend much of their time
// starting child processes and waiting on them, so the unit suite fits in the idle core. Each suite's
// output is printed whole when it ends (never interleaved); the exit code is non-zero if either failed.
import { spawn } from 'node:child_process';

// package.json's test:unit and test:stages scripts
const suites = ['unit', 'stages'];

const runs = suites.map(
  (name) =>
    new Promise<number>((resolve) => {
      const started = Date.now();
      const child = spawn('npm', ['run', '--silent', `test:${name}`], {
        // the children write to pipes: keep uvu's colours only when the output is a terminal
        env: process.stdout.isTTY ? { ...process.env, FORCE_COLOR: '1' } : process.env,
      });
      const out: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => out.push(b));
      child.on('close', (code, signal) => {
        const seconds = ((Date.now() - started) / 1000).toFixed(0);
        const status = code === 0 ? 'passed' : `FAILED (${signal ?? `exit ${code}`})`;
        process.stdout.write(`\n=== test:${name}: ${status} in ${seconds} s ===\n${Buffer.concat(out)}`);
        resolve(code ?? 1);
      });
    }),
);

const codes = await Promise.all(runs);
process.exit(codes.some((c) => c !== 0) ? 1 : 0);
