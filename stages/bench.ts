// `npm run bench`: throughput of the hot kernels on every backend available here, as a table (or, with
// --json, one JSON object per line). Each figure is the median of several timed runs after a warm-up.
//   matmul n^3                      GFLOP/s, 2 n^3 flops, through the matmul op
//   conv3x3 fwd/bwd at batch 64     GFLOP/s, 2 B Cout H W Cin 9 flops per pass (backward: dW and dX, 2x)
//   unet train step                 images/s for forward + backward + Adam: the default MNIST config
//                                   (stages/mnist/default.json) at batch 64, fast.json and seed.json at 16
//                                   (--smoke: the tiny config), on one thread and split between one
//                                   thread per core (core/parallel/)
//   unet forward                    images/s of the sampler's forward pass (no autograd): the default and
//                                   fast configs at the sampler's batch of 100, seed.json at 16 (--smoke:
//                                   the tiny config at batch 2), on one thread and split, as `sample` runs
// --smoke runs tiny shapes in a few seconds (the test suite uses it); --backends picks backends.
import { Adam, conv2d, matmul, mseLoss, noGrad, Rng, sum, tidy, UNet, type Tensor } from '../core/index.ts';
import { objectiveOf, readConfig } from './lib/config.ts';
import { parseFlags, runMain } from './lib/cli.ts';
import { medianTime } from './lib/timing.ts';
import { collectGarbage, PeakMemory } from './lib/peak-memory.ts';
import { clearPool } from '../core/buffer-pool.ts';
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

runMain(async () => {
  const flags = parseFlags('bench', {
    json: { type: 'boolean', help: 'one JSON object per line instead of a table' },
    smoke: { type: 'boolean', help: 'tiny shapes, a few seconds: checks every backend runs' },
    backends: {
      type: 'string',
      default: 'ts,wasm,gpu,gpu-async',
      help: 'comma-separated backends to measure',
    },
    runs: { type: 'int', default: 5, min: 1, help: 'minimum timed runs per figure' },
  });
  const smoke = flags.smoke;
  const budget = smoke ? 50 : 1500;
  const runs = smoke ? 1 : flags.runs;
  const rng = new Rng(0);
  const rows: Row[] = [];
  const peak = new PeakMemory();
  /**
   * medianTime of a UNet row, with the peak resident memory while it ran; first what earlier rows left
   * (the buffer pool, garbage) is let go, so that it counts as little as it can.
   */
  const watched = async (fn: () => unknown, minRuns: number, budgetMs: number) => {
    clearPool();
    collectGarbage();
    peak.start();
    const r = await medianTime(fn, minRuns, budgetMs);
    return { ...r, peakMiB: peak.stop() };
  };
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
      for (const n of sizes) {
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

    for (const n of sizes) {
      const a = rng.randn([n, n]);
      const b = rng.randn([n, n]);
      const t = await medianTime(() => noGrad(() => matmul(a, b)), runs, budget);
      emit({ bench: `matmul ${n}^3`, backend, value: (2 * n ** 3) / t.ms / 1e6, unit: 'GFLOP/s', ...t });
    }

    // one UNet training step: forward, backward, Adam, as stage:mnist runs it
    const trains: [string, number][] = smoke
      ? [['tiny', 2]]
      : [
          ['default', 64],
          ['fast', 16],
          ['seed', 16],
        ];
    for (const [name, batch] of trains) {
      const { cfg, net, x, t } = unetWork(name, batch, rng);
      const opt = new Adam(net.parameters(), { lr: 1e-4 });
      const target = rng.randn(x.shape);
      const step = () => {
        const loss = mseLoss(net.forward(x, t), target);
        opt.zeroGrad();
        loss.backward();
        opt.step();
      };
      const bench = `unet train step b${batch}${rowSuffix(name)}`;
      const r = await watched(step, smoke ? 1 : 3, smoke ? 50 : 20000);
      emit({ bench, backend, value: batch / (r.ms / 1000), unit: 'images/s', ...r });
      // the same step with the batch split between threads, as stage:mnist trains by default
      const threads = defaultThreads(backend);
      if (threads > 1) {
        const objective = objectiveOf(cfg);
        const parallel = await DataParallel.start(net, objective, { threads, backend, batch });
        const draw = objective.draw(x, rng);
        const split = async () => {
          await parallel.lossAndGrad(x, draw);
          opt.step();
        };
        const p = await watched(split, smoke ? 1 : 3, smoke ? 50 : 20000);
        parallel.close();
        setKernelThreads(null); // the kernel benches below get every core again
        const value = batch / (p.ms / 1000);
        emit({ bench: `${bench} ${threads} threads`, backend, value, unit: 'images/s', ...p });
      }
    }

    // the sampler's work: UNet forward passes without autograd, at the sampler's batch of 100
    const forwards: [string, number][] = smoke
      ? [['tiny', 2]]
      : [
          ['default', 100],
          ['fast', 100],
          ['seed', 16],
        ];
    for (const [name, batch] of forwards) {
      const { net, x, t } = unetWork(name, batch, rng);
      const r = await watched(() => tidy(() => net.forward(x, t)), smoke ? 1 : 3, smoke ? 50 : 15000);
      const bench = `unet forward b${batch}${rowSuffix(name)}`;
      emit({ bench, backend, value: batch / (r.ms / 1000), unit: 'images/s', ...r });
      // the batch split between one thread per core, as `sample` runs it
      const threads = defaultThreads(backend);
      if (threads > 1) {
        const forward = await ParallelForward.start(net, { threads, backend, maxBatch: batch });
        const p = await watched(() => tidy(() => forward.forward(x, t)), smoke ? 1 : 3, smoke ? 50 : 15000);
        forward.close();
        const value = batch / (p.ms / 1000);
        emit({ bench: `${bench} ${threads} threads`, backend, value, unit: 'images/s', ...p });
      }
    }

    for (const { b, cin, cout, hw } of convs) {
      const x = rng.randn([b, cin, hw, hw]);
      const w = rng.randn([cout, cin, 3, 3], { std: 0.1 });
      const bias = rng.randn([cout]);
      const flops = 2 * b * cout * hw * hw * cin * 9;
      const name = `conv3x3 ${cin}->${cout} @${hw}x${hw} b${b}`;
      const fwd = await medianTime(() => noGrad(() => conv2d(x, w, bias, { padding: 1 })), runs, budget);
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
        times.sort((p, q) => p - q);
        const ms = times[Math.floor(times.length / 2)];
        emit({ bench: `${name} bwd`, backend, value: (2 * flops) / ms / 1e6, unit: 'GFLOP/s', runs, ms });
      }
    }
  }

  peak.close();
  if (!flags.json) printTable(rows);
  for (const r of rows) {
    if (!(r.value > 0) || !Number.isFinite(r.value))
      throw new Error(`bench ${r.bench} on ${r.backend}: no positive figure`);
  }
});

/** A UNet of stages/mnist/`name`.json (weights seeded 0), a batch of noise images and their timesteps. */
function unetWork(name: string, batch: number, rng: Rng) {
  const cfg = readConfig(`stages/mnist/${name}.json`);
  const net = new UNet(cfg.model_params, new Rng(0));
  const { im_channels: c, im_size: size } = cfg.model_params;
  const x = rng.randn([batch, c, size, size]);
  const t = Array.from({ length: batch }, (_, i) => (i * 37) % 1000);
  return { cfg, net, x, t };
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
