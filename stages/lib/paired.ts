// The paired bench (`npm run bench -- --paired train:default:64`): our UNet step and PyTorch's under
// each of its thread settings, a few steps at a time in turn, in long-lived processes, so that every
// PyTorch figure is set beside ours from the seconds just before and after it. On a shared host whose
// speed drifts by a third within an hour, two rows measured minutes apart compare the hours as much as the
// engines; measured in turn, a drift moves both sides of a ratio alike. Only one process steps at a
// time; the others wait on their standard input, and their threads sleep.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { median } from './timing.ts';

/**
 * Serves `step` on standard input and output for the paired bench: after one warm-up step a line
 * {"ready": true}; then each input line N runs N steps and is answered by {"ms": [...]}, each step's
 * milliseconds. Any other line, or the end of input, ends it.
 */
export async function serveSteps(step: () => unknown): Promise<void> {
  await step();
  console.log(JSON.stringify({ ready: true }));
  for await (const line of createInterface({ input: process.stdin })) {
    const n = Number(line);
    if (!(Number.isInteger(n) && n >= 1)) break;
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await step();
      ms.push(performance.now() - t0);
    }
    console.log(JSON.stringify({ ms }));
  }
}

/** A process serving steps (serveSteps, or bench-torch.py --serve): its command, and its name in the table. */
export type Contender = { name: string; command: string; args: string[]; env?: Record<string, string> };

/** One contender's process, answering step requests in order. */
class Server {
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    this.lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    child.stderr!.on(
      'data',
      (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)),
    );
    // a command that cannot start, or a process that dies, shows as its output ending (next() says so)
    child.on('error', (e) => (this.stderr += `\n${e.message}`));
    child.stdin!.on('error', () => {});
  }

  /** The next JSON line it prints (other lines, such as warnings, are skipped). */
  async next(): Promise<{ ready?: boolean; ms?: number[] }> {
    for (;;) {
      const r = await this.lines.next();
      if (r.done) {
        const why = this.stderr.trim().split('\n').pop() ?? '';
        throw new Error(`${this.name} stopped before answering${why ? `: ${why}` : ''}`);
      }
      if (r.value.startsWith('{')) return JSON.parse(r.value) as { ready?: boolean; ms?: number[] };
    }
  }

  /** Median milliseconds of `n` steps run now. */
  async steps(n: number): Promise<number> {
    this.child.stdin!.write(`${n}\n`);
    const { ms } = await this.next();
    if (!ms || ms.length !== n) throw new Error(`${this.name}: expected ${n} step times`);
    return median(ms);
  }

  close(): void {
    this.child.stdin!.end();
    this.child.kill();
  }
}

/** Per round: ours next to each of theirs (images/s), and the ratio ours / theirs. */
export type PairedRound = { theirs: { name: string; value: number; ours: number; ratio: number }[] };

export type PairedOptions = {
  rounds: number;
  /** About how long each turn of stepping lasts. */
  seconds: number;
  /** Images per step, to turn step times into images/s. */
  batch: number;
  log: (line: string) => void;
};

/**
 * Starts every contender, calibrates how many steps fill a turn, gives each one turn to warm up, then
 * runs `rounds` rounds. A round
 * measures ours, then each of theirs (in an order that rotates from round to round) followed by ours
 * again; each of their figures is paired with the mean of the two of ours around it.
 */
export async function pairedRun(
  ours: Contender,
  theirs: Contender[],
  opts: PairedOptions,
): Promise<PairedRound[]> {
  const servers = [ours, ...theirs].map(
    (c) =>
      new Server(c.name, spawn(c.command, c.args, { env: { ...process.env, ...c.env }, stdio: ['pipe', 'pipe', 'pipe'] })), // prettier-ignore
  );
  try {
    for (const s of servers) if (!(await s.next()).ready) throw new Error(`${s.name}: no ready line`);
    const turns = new Map<Server, number>();
    for (const s of servers)
      turns.set(s, Math.max(1, Math.round((opts.seconds * 1000) / (await s.steps(1)))));
    const imagesPerSecond = async (s: Server) => opts.batch / ((await s.steps(turns.get(s)!)) / 1000);
    for (const s of servers) await imagesPerSecond(s); // a turn each unmeasured: JIT tiers, pools, caches
    const [mine, others] = [servers[0], servers.slice(1)];
    const rounds: PairedRound[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const order = others.map((_, i) => others[(i + r) % others.length]);
      let before = await imagesPerSecond(mine);
      const round: PairedRound = { theirs: [] }; // in the contenders' order, whatever the turns' order
      for (const s of order) {
        const value = await imagesPerSecond(s);
        const after = await imagesPerSecond(mine);
        const oursAround = (before + after) / 2;
        round.theirs[others.indexOf(s)] = {
          name: s.name,
          value,
          ours: oursAround,
          ratio: oursAround / value,
        };
        before = after;
      }
      rounds.push(round);
      opts.log(`round ${r + 1}/${opts.rounds}: ${round.theirs.map((t) => `${t.name} ${t.value.toFixed(1)} (ours ${t.ours.toFixed(1)}, ${t.ratio.toFixed(2)}x)`).join(', ')}`); // prettier-ignore
    }
    return rounds;
  } finally {
    for (const s of servers) s.close();
  }
}

/** Each round's ratio against the fastest of theirs in that round. */
export function ratiosAgainstBest(rounds: PairedRound[]): number[] {
  return rounds.map((r) => r.theirs.reduce((best, t) => (t.value > best.value ? t : best)).ratio);
}

/** The summary lines: each contender's median figure and ratio range, then the ratio against the best. */
export function pairedSummary(rounds: PairedRound[]): string[] {
  const names = rounds[0]?.theirs.map((t) => t.name) ?? [];
  const range = (xs: number[]) =>
    `median ${median(xs).toFixed(2)}, ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
  const lines = names.map((name, i) => {
    const pairs = rounds.map((r) => r.theirs[i]);
    return `${name.padEnd(18)} ${median(pairs.map((p) => p.value)).toFixed(1).padStart(7)} images/s (ours beside it ${median(pairs.map((p) => p.ours)).toFixed(1)}); ratio ${range(pairs.map((p) => p.ratio))}`; // prettier-ignore
  });
  const best = ratiosAgainstBest(rounds);
  lines.push(`against the fastest of theirs in each round: ratio ${range(best)}; sorted ${[...best].sort((a, b) => a - b).map((x) => x.toFixed(2)).join(' ')}`); // prettier-ignore
  return lines;
}

/**
 * The paired bench of one UNet row (bench.ts --paired): ours on `backend` with the batch split between
 * `spec.threads` threads, and PyTorch's same row (bench-torch.py --serve) on as many threads, on as many
 * with its OpenMP threads sleeping at barriers (OMP_WAIT_POLICY=PASSIVE), and on one; the rounds on
 * standard error as they come, then a summary (or, with `json`, each round and the ratios as JSON lines).
 */
export async function pairedBench(
  spec: { kind: string; name: string; batch: number; threads: number },
  backend: string,
  opts: { rounds: number; seconds: number; python: string; json: boolean },
): Promise<void> {
  const { threads } = spec;
  const row = `${spec.kind}:${spec.name}:${spec.batch}`;
  const stages = join(import.meta.dirname, '..');
  const torch = (args: string[]) => [join(stages, 'bench-torch.py'), '--unet', row, '--serve', ...args];
  const ourArgs = ['--backends', backend, '--unet', `${row}:${threads}`, '--serve'];
  const ours = { name: 'ours', command: process.execPath, args: [...process.execArgv, join(stages, 'bench.ts'), ...ourArgs] }; // prettier-ignore
  const theirs = [
    { name: `pytorch ${threads} threads`, command: opts.python, args: torch(['--threads', `${threads}`]) },
    { name: `pytorch passive`, command: opts.python, args: torch(['--threads', `${threads}`]), env: { OMP_WAIT_POLICY: 'PASSIVE' } }, // prettier-ignore
    { name: 'pytorch 1 thread', command: opts.python, args: torch(['--threads', '1']) },
  ];
  console.error(`paired: ${row}, ours on ${backend} with ${threads} threads; ${opts.rounds} rounds of ~${opts.seconds} s turns`); // prettier-ignore
  const log = (line: string) => console.error(line);
  const rounds = await pairedRun(ours, theirs, { ...opts, batch: spec.batch, log });
  if (!opts.json) for (const line of pairedSummary(rounds)) console.log(line);
  else {
    for (const r of rounds) console.log(JSON.stringify({ paired: row, backend, ...r }));
    console.log(JSON.stringify({ paired: row, backend, againstBest: ratiosAgainstBest(rounds) }));
  }
}
