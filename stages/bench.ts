// `npm run bench`: throughput of the hot kernels on every backend available here, as a table (or, with
// --json, one JSON object per line). Each figure is the median of several timed runs after a warm-up.
//   matmul n^3                      GFLOP/s, 2 n^3 flops, through the matmul op
//                                   (op rows run inside a scope, as a training or sampling step runs them:
//                                   the output reuses the last call's buffer rather than fresh memory)
//   conv3x3 fwd/bwd at batch 64     GFLOP/s, 2 B Cout H W Cin 9 flops per pass (backward: dW and dX, 2x)
//   unet train step                 images/s for forward + backward + Adam: the default MNIST config
//                                   (stages/mnist/default.json) at batch 64, fast.json and seed.json at 16
//                                   (--smoke: the tiny config), on one thread and split between one
//                                   thread per core (core/parallel/)
//   unet forward                    images/s of the sampler's forward pass (no autograd): the default and
//                                   fast configs at the sampler's batch of 100, seed.json at 16 (--smoke:
//                                   the tiny config at batch 2), on one thread and split, as `sample` runs
// --smoke runs tiny shapes in a few seconds (the test suite uses it); --backends picks backends, --rows
// the groups of rows (matmul, unet, conv); --unet one UNet row of any config in stages/mnist/, a
// class-conditional one (class.json) with a label per image. --paired kind:config:batch steps ours and
// PyTorch's (stages/bench-torch.py, three thread settings) in turn and prints the ratios, round by round
// (stages/lib/paired.ts); it needs Debian's python3-torch and is never run by the tests with PyTorch.
import {
  Adam,
  conv2d,
  matmul,
  mseLoss,
  noGrad,
  Rng,
  stepScope,
  sum,
  tidy,
  UNet,
  type Tensor,
} from '../core/index.ts';
import { objectiveOf, readConfig } from './lib/config.ts';
import { parseFlags, runMain, UsageError } from './lib/cli.ts';
import { median, medianTime } from './lib/timing.ts';
import { collectGarbage, PeakMemory } from './lib/peak-memory.ts';
import { clearPool } from '../core/buffer-pool.ts';
import { spawnSync } from 'node:child_process';
import { pairedBench, serveSteps } from './lib/paired.ts';
import { backendChoices, setKernelThreads, useBackend } from '../core/kernels/select.ts';
import './lib/flags.ts'; // registers the backends
import { DataParallel, defaultThreads } from '../core/parallel/data-parallel.ts';
import { ParallelForward } from '../core/parallel/parallel-forward.ts';
import { GPU } from 'gpu.js';
import { GpuKernels } from '../gpu/kernels.ts';

type Row = {
  bench: string;
  backend: string;
  value: number;
  unit: string;
  runs: number;
  ms: number;
  /** UNet rows: the process's peak resident memory while the row ran, in MiB (workers included). */
  peakMiB?: number;
};

/** What --backends measures unless told otherwise. */
const ALL_BACKENDS = 'ts,wasm,gpu,gpu-async';

/** The groups of rows `--rows` picks from, in the order they run. */
const ROW_GROUPS = ['matmul', 'unet', 'conv'] as const;

runMain(async () => {
  const flags = parseFlags('bench', {
    json: { type: 'boolean', help: 'one JSON object per line instead of a table' },
    smoke: { type: 'boolean', help: 'tiny shapes, a few seconds: checks every backend runs' },
    backends: {
      type: 'string',
      default: ALL_BACKENDS,
      help: 'comma-separated backends to measure (--paired: the first; wasm unless given)',
    },
    runs: { type: 'int', default: 5, min: 1, help: 'minimum timed runs per figure' },
    rows: {
      type: 'string',
      default: ROW_GROUPS.join(','),
      help: `comma-separated groups of rows to measure: ${ROW_GROUPS.join(', ')}`,
    },
    unet: {
      type: 'string',
      default: '',
      help: 'one UNet row only, kind:config:batch:threads (train:default:64:1), on the first backend',
    },
    serve: { type: 'boolean', help: 'with --unet: serve steps on stdin for --paired instead of timing' },
    paired: {
      type: 'string',
      default: '',
      help: 'kind:config:batch: ours (every core) and PyTorch (three thread settings) stepped in turn, as ratios',
    },
    rounds: { type: 'int', default: 10, min: 1, help: 'with --paired: rounds of turns' },
    seconds: { type: 'float', default: 4, min: 0.1, help: 'with --paired: about how long each turn steps' },
    python: { type: 'string', default: 'python3', help: 'with --paired: the Python that has PyTorch' },
  });
  const smoke = flags.smoke;
  if (flags.paired !== '') {
    const backend = flags.backends === ALL_BACKENDS ? 'wasm' : flags.backends.split(',')[0];
    const parts = flags.paired.split(':');
    if (parts.length !== 3 || !(Number.isInteger(Number(parts[2])) && Number(parts[2]) >= 1)) {
      throw new UsageError(
        `--paired: expected kind:config:batch, e.g. train:default:64; got '${flags.paired}'`,
      );
    }
    await pairedBench(parseUnetSpec(`${flags.paired}:${defaultThreads(backend)}`), backend, flags);
    return;
  }
  if (flags.unet !== '') {
    // one row in this process (a full run starts one such process per UNet row)
    const backend = flags.backends.split(',')[0];
    await useBackend(backend);
    if (flags.serve) {
      const work = await unetStep(parseUnetSpec(flags.unet), backend);
      await serveSteps(work.step);
      work.close();
      return;
    }
    console.log(JSON.stringify(await unetRow(parseUnetSpec(flags.unet), backend, smoke)));
    return;
  }
  const groups = new Set(flags.rows.split(','));
  const unknown = [...groups].filter((g) => !(ROW_GROUPS as readonly string[]).includes(g));
  if (unknown.length > 0) {
    throw new UsageError(`--rows: unknown group '${unknown[0]}'; expected some of ${ROW_GROUPS.join(', ')}`);
  }
  const budget = smoke ? 50 : 1500;
  const runs = smoke ? 1 : flags.runs;
  const rng = new Rng(0);
  const rows: Row[] = [];
  const emit = (row: Row) => {
    rows.push(row);
    if (flags.json) console.log(JSON.stringify(row));
    else
      console.error(
        `  ${row.bench.padEnd(34)} ${row.backend.padEnd(10)} ${row.value.toFixed(2).padStart(9)} ${row.unit}${row.peakMiB ? `, peak ${row.peakMiB.toFixed(0)} MiB` : ''}`, // prettier-ignore
      );
  };

  const sizes = smoke ? [16, 32] : [128, 256, 512, 1024];
  const convs = smoke
    ? [{ b: 2, cin: 4, cout: 8, hw: 6 }]
    : [
        { b: 64, cin: 32, cout: 64, hw: 28 },
        { b: 64, cin: 64, cout: 128, hw: 14 },
        { b: 64, cin: 128, cout: 256, hw: 7 },
      ];

  for (const backend of flags.backends.split(',')) {
    if (backend === 'gpu-async') {
      // gpu.js under its Promise contract (webasm threads here; WebGPU where an adapter exists)
      const kernels = new GpuKernels(new GPU({ mode: 'async' }));
      for (const n of groups.has('matmul') ? sizes : []) {
        const a = rng.randn([n * n]).data as Float32Array;
        const b = rng.randn([n * n]).data as Float32Array;
        const c = new Float32Array(n * n);
        const args = { a, b, c, m: n, n, k: n, transA: false, transB: false, accumulate: false };
        const t = await medianTime(() => kernels.gemm(args), runs, budget);
        emit({ bench: `matmul ${n}^3`, backend, value: (2 * n ** 3) / t.ms / 1e6, unit: 'GFLOP/s', ...t });
      }
      await kernels.destroy();
      continue;
    }
    if (!backendChoices().includes(backend)) throw new Error(`unknown backend '${backend}'`);
    const described = await useBackend(backend);
    if (!flags.json) console.error(described);

    for (const n of groups.has('matmul') ? sizes : []) {
      const a = rng.randn([n, n]);
      const b = rng.randn([n, n]);
      const t = await medianTime(() => inScope(() => matmul(a, b)), runs, budget);
      emit({ bench: `matmul ${n}^3`, backend, value: (2 * n ** 3) / t.ms / 1e6, unit: 'GFLOP/s', ...t });
    }

    // the UNet rows: a training step (forward, backward, Adam) as stage:mnist runs it, and the sampler's
    // forward pass without autograd; each on one thread, then with the batch split between threads.
    // A full run measures each in a process of its own, so that its peak memory is its own.
    const unets: UnetSpec[] = smoke
      ? [
          { kind: 'train', name: 'tiny', batch: 2, threads: 1 },
          { kind: 'forward', name: 'tiny', batch: 2, threads: 1 },
        ]
      : [
          { kind: 'train', name: 'default', batch: 64, threads: 1 },
          { kind: 'train', name: 'fast', batch: 16, threads: 1 },
          { kind: 'train', name: 'seed', batch: 16, threads: 1 },
          { kind: 'forward', name: 'default', batch: 100, threads: 1 },
          { kind: 'forward', name: 'fast', batch: 100, threads: 1 },
          { kind: 'forward', name: 'seed', batch: 16, threads: 1 },
        ];
    const threads = defaultThreads(backend);
    for (const spec of groups.has('unet') ? unets : []) {
      for (const t of threads > 1 ? [1, threads] : [1]) {
        const one = { ...spec, threads: t };
        emit(smoke ? await unetRow(one, backend, smoke) : unetRowApart(one, backend));
      }
    }

    for (const { b, cin, cout, hw } of groups.has('conv') ? convs : []) {
      const x = rng.randn([b, cin, hw, hw]);
      const w = rng.randn([cout, cin, 3, 3], { std: 0.1 });
      const bias = rng.randn([cout]);
      const flops = 2 * b * cout * hw * hw * cin * 9;
      const name = `conv3x3 ${cin}->${cout} @${hw}x${hw} b${b}`;
      const fwd = await medianTime(() => inScope(() => conv2d(x, w, bias, { padding: 1 })), runs, budget);
      emit({ bench: `${name} fwd`, backend, value: flops / fwd.ms / 1e6, unit: 'GFLOP/s', ...fwd });
      if (cin === convs[0].cin) {
        // backward alone: dX and dW are each a gemm the size of the forward one
        let y: Tensor | null = null;
        const setup = () => {
          x.requiresGrad = true;
          w.requiresGrad = true;
          y = sum(conv2d(x, w, bias, { padding: 1 }));
        };
        const times: number[] = [];
        for (let r = 0; r < runs + 1; r++) {
          setup();
          const t0 = performance.now();
          (y as unknown as Tensor).backward();
          if (r > 0) times.push(performance.now() - t0);
        }
        x.requiresGrad = false;
        w.requiresGrad = false;
        const ms = median(times);
        emit({ bench: `${name} bwd`, backend, value: (2 * flops) / ms / 1e6, unit: 'GFLOP/s', runs, ms });
      }
    }
  }

  if (!flags.json) printTable(rows);
  for (const r of rows) {
    if (!(r.value > 0) || !Number.isFinite(r.value))
      throw new Error(`bench ${r.bench} on ${r.backend}: no positive figure`);
  }
});

type UnetSpec = { kind: 'train' | 'forward'; name: string; batch: number; threads: number };

function parseUnetSpec(text: string): UnetSpec {
  const [kind, name, batch, threads] = text.split(':');
  const [b, t] = [Number(batch), Number(threads)];
  if ((kind !== 'train' && kind !== 'forward') || !name || !(b >= 1) || !(t >= 1)) {
    throw new UsageError(
      `--unet: expected kind:config:batch:threads, e.g. train:default:64:1; got '${text}'`,
    );
  }
  return { kind, name, batch: b, threads: t };
}

/** A UNet row measured in a process of its own (this program with --unet), so its peak is its own. */
function unetRowApart(spec: UnetSpec, backend: string): Row {
  const text = `${spec.kind}:${spec.name}:${spec.batch}:${spec.threads}`;
  const args = [...process.execArgv, process.argv[1], '--backends', backend, '--json', '--unet', text];
  const child = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  if (child.status !== 0 || !line.startsWith('{')) {
    throw new Error(`bench --unet ${text} on ${backend} failed (exit ${child.status})`);
  }
  return JSON.parse(line) as Row;
}

/**
 * One UNet row: a training step, or a forward pass under tidy, on one thread or with the batch split
 * between `threads` (DataParallel, ParallelForward); with the peak resident memory while it ran, after
 * what earlier work left (the buffer pool, garbage) is let go.
 */
async function unetRow(spec: UnetSpec, backend: string, smoke: boolean): Promise<Row> {
  const { kind, batch, threads } = spec;
  const [minRuns, budget] = smoke ? [1, 50] : [3, kind === 'train' ? 20000 : 15000];
  const work = await unetStep(spec, backend);
  clearPool();
  collectGarbage();
  const peak = new PeakMemory();
  let r: { ms: number; runs: number; peakMiB: number };
  try {
    peak.start();
    r = { ...(await medianTime(work.step, minRuns, budget)), peakMiB: peak.stop() };
  } finally {
    peak.close();
    work.close();
  }
  const what = kind === 'train' ? 'unet train step' : 'unet forward';
  const bench = `${what} b${batch}${rowSuffix(spec.name)}${threads > 1 ? ` ${threads} threads` : ''}`;
  return { bench, backend, value: batch / (r.ms / 1000), unit: 'images/s', ...r };
}

/**
 * The work of a UNet row: `step` runs one training step (forward, backward, Adam, its arrays back to the
 * pool after it, as stage:mnist trains) or one forward pass under tidy; `close` stops its threads.
 */
async function unetStep(
  spec: UnetSpec,
  backend: string,
): Promise<{ step: () => unknown; close: () => void }> {
  const { kind, name, batch, threads } = spec;
  const rng = new Rng(1);
  const { cfg, net, x, t, labels } = unetWork(name, batch, rng);
  if (kind === 'train') {
    const opt = new Adam(net.parameters(), { lr: 1e-4 });
    const target = rng.randn(x.shape);
    const { params } = opt;
    if (threads === 1) {
      const step = () =>
        stepScope(params, () => {
          const loss = mseLoss(net.forward(x, t, { labels }), target);
          opt.zeroGrad();
          loss.backward();
          opt.step();
          return loss.item();
        });
      return { step, close: () => {} };
    }
    const objective = objectiveOf(cfg);
    const parallel = await DataParallel.start(net, objective, { threads, backend, batch });
    const draw = objective.draw(x, rng);
    draw.labels = labels;
    const step = () =>
      stepScope(params, async () => {
        const loss = await parallel.lossAndGrad(x, draw);
        opt.step();
        return loss;
      });
    // the benches after this one get every core again
    return { step, close: () => (parallel.close(), setKernelThreads(null)) };
  }
  if (threads === 1) return { step: () => tidy(() => net.forward(x, t, { labels })), close: () => {} };
  const forward = await ParallelForward.start(net, { threads, backend, maxBatch: batch });
  return { step: () => tidy(() => forward.forward(x, t, { labels })), close: () => forward.close() };
}

/**
 * Runs an op without gradients inside a scope whose arrays go back to the pool (core/buffer-pool.ts), as
 * every op of a training step (stepScope) or a sampler step (tidy) runs: a fresh megabyte-sized output
 * instead costs its page faults on first write, about 2 ms per megabyte on this VM, a third of matmul
 * 512's time (docs/performance.md).
 */
function inScope(op: () => Tensor): void {
  stepScope([], () => {
    noGrad(op);
    return 0;
  });
}

/**
 * A UNet of stages/mnist/`name`.json (weights seeded 0), a batch of noise images and their timesteps,
 * and for a class-conditional config (class.json) a label per image, the classes in turn.
 */
function unetWork(name: string, batch: number, rng: Rng) {
  const cfg = readConfig(`stages/mnist/${name}.json`);
  const net = new UNet(cfg.model_params, new Rng(0));
  const { im_channels: c, im_size: size, num_classes: classes = 0 } = cfg.model_params;
  const x = rng.randn([batch, c, size, size]);
  const t = Array.from({ length: batch }, (_, i) => (i * 37) % 1000);
  const labels = classes > 0 ? Array.from({ length: batch }, (_, i) => i % classes) : undefined;
  return { cfg, net, x, t, labels };
}

/** How a UNet row names its config: the default config unnamed (and the smoke run's tiny one). */
function rowSuffix(config: string): string {
  return config === 'default' || config === 'tiny' ? '' : ` ${config}`;
}

function printTable(rows: Row[]): void {
  const benches = [...new Set(rows.map((r) => r.bench))];
  const backends = [...new Set(rows.map((r) => r.backend))];
  const header = ['bench'.padEnd(34), ...backends.map((b) => b.padStart(10))].join(' ');
  console.log(`\n${header}`);
  for (const bench of benches) {
    const cells = backends.map((b) => {
      const r = rows.find((x) => x.bench === bench && x.backend === b);
      return (r ? r.value.toFixed(2) : '-').padStart(10);
    });
    const unit = rows.find((x) => x.bench === bench)?.unit ?? '';
    console.log(`${bench.padEnd(34)} ${cells.join(' ')}  ${unit}`);
  }
  const watchedBenches = benches.filter((bench) => rows.some((r) => r.bench === bench && r.peakMiB));
  if (watchedBenches.length === 0) return;
  console.log(`\npeak resident memory while the row ran (the whole process, worker threads included)`);
  console.log(header);
  for (const bench of watchedBenches) {
    const cells = backends.map((b) => {
      const r = rows.find((x) => x.bench === bench && x.backend === b);
      return (r?.peakMiB ? r.peakMiB.toFixed(0) : '-').padStart(10);
    });
    console.log(`${bench.padEnd(34)} ${cells.join(' ')}  MiB`);
  }
}
