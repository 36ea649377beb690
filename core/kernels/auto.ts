// The 'auto' backend: for each kernel and each shape, time every backend that implements it on the
// real arguments the first time that shape appears, and use the fastest from then on. Nothing is
// assumed: on a laptop the WebAssembly kernels win, on a machine with a GPU the gpu.js kernels may,
// and for tiny shapes the plain TypeScript loop often does.
//
// Choices are also kept in node_modules/.cache, per machine, so that a second run of a stage makes
// exactly the same choices as the first and therefore the same numbers (backends round differently).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Storage } from '../tensor.ts';
import type { KernelName, KernelSet } from './registry.ts';

type Spec<K extends KernelName> = {
  /** What decides the speed: the shape, not the numbers. */
  key: (args: Parameters<KernelSet[K]>[0]) => string;
  /** The arrays the kernel writes (restored between timing runs, since some kernels accumulate). */
  outputs: (args: Parameters<KernelSet[K]>[0]) => (Storage | null)[];
};

const geometry = (g: { batch: number; channels: number; height: number; width: number; kh: number; kw: number; strideH: number; strideW: number; padH: number; padW: number }) =>
  `${g.batch}x${g.channels}x${g.height}x${g.width}k${g.kh}x${g.kw}s${g.strideH}x${g.strideW}p${g.padH}x${g.padW}`; // prettier-ignore

const SPECS: { [K in KernelName]: Spec<K> } = {
  gemm: {
    key: (a) =>
      `${a.m}x${a.n}x${a.k}${a.transA ? 'T' : 'N'}${a.transB ? 'T' : 'N'}${a.accumulate ? '+' : ''}`,
    outputs: (a) => [a.c],
  },
  im2col: { key: geometry, outputs: (a) => [a.cols] },
  col2im: { key: geometry, outputs: (a) => [a.x] },
  conv2dForward: { key: (a) => `${geometry(a)}o${a.cout}`, outputs: (a) => [a.out] },
  conv2dBackwardFilter: { key: (a) => `${geometry(a)}o${a.cout}`, outputs: (a) => [a.gw] },
  conv2dBackwardInput: { key: (a) => `${geometry(a)}o${a.cout}`, outputs: (a) => [a.gx] },
  groupNormForward: {
    key: (a) => `${a.batch}x${a.channels}x${a.spatial}g${a.groups}`,
    outputs: (a) => [a.out, a.mean, a.rstd],
  },
  groupNormBackward: {
    key: (a) => `${a.batch}x${a.channels}x${a.spatial}g${a.groups}${a.gx ? 'x' : ''}${a.gWeight ? 'w' : ''}`,
    outputs: (a) => [a.gx, a.gWeight, a.gBias],
  },
  softmaxForward: { key: (a) => `${a.rows}x${a.cols}`, outputs: (a) => [a.out] },
  softmaxBackward: { key: (a) => `${a.rows}x${a.cols}`, outputs: (a) => [a.gx] },
  adamUpdate: { key: (a) => `${a.p.length}`, outputs: (a) => [a.p, a.m, a.v] },
  siluForward: { key: (a) => `${a.x.length}`, outputs: (a) => [a.out] },
  siluBackward: { key: (a) => `${a.x.length}`, outputs: (a) => [a.gx] },
};

const CACHE_DIR = join(process.cwd(), 'node_modules', '.cache', 'diffusion-ts');

/**
 * A small instance of each kernel, timed once per process on every backend: a backend four times
 * slower than the best there is not timed again on the real shapes (where one slow run can take
 * seconds). The per-shape measurement then chooses among the rest.
 */
function calibrationArgs(name: KernelName): unknown {
  const f = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const geo = { batch: 4, channels: 16, height: 14, width: 14, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 1, padW: 1, outH: 14, outW: 14 }; // prettier-ignore
  const K = 16 * 9;
  const N = 4 * 196;
  const gn = { batch: 4, channels: 32, spatial: 196, groups: 8, weight: f(32) };
  switch (name) {
    case 'gemm':
      return { a: f(128 * 128), b: f(128 * 128), c: f(128 * 128), m: 128, n: 128, k: 128, transA: false, transB: false, accumulate: false }; // prettier-ignore
    case 'im2col':
    case 'col2im':
      return { ...geo, x: f(4 * 16 * 196), cols: f(K * N) };
    case 'conv2dForward':
      return { ...geo, x: f(4 * 16 * 196), w: f(16 * K), out: f(16 * N), cout: 16 };
    case 'conv2dBackwardFilter':
      return { ...geo, x: f(4 * 16 * 196), gy: f(16 * N), gw: f(16 * K), cout: 16 };
    case 'conv2dBackwardInput':
      return { ...geo, w: f(16 * K), gy: f(16 * N), gx: f(4 * 16 * 196), cout: 16 };
    case 'groupNormForward':
      return {
        ...gn,
        x: f(4 * 32 * 196),
        bias: f(32),
        eps: 1e-5,
        out: f(4 * 32 * 196),
        mean: f(32),
        rstd: f(32),
      };
    case 'groupNormBackward':
      return { ...gn, x: f(4 * 32 * 196), mean: f(32), rstd: f(32), gy: f(4 * 32 * 196), gx: f(4 * 32 * 196), gWeight: f(32), gBias: f(32) }; // prettier-ignore
    case 'softmaxForward':
      return { x: f(512 * 196), out: f(512 * 196), rows: 512, cols: 196 };
    case 'softmaxBackward':
      return { y: f(512 * 196), gy: f(512 * 196), gx: f(512 * 196), rows: 512, cols: 196 };
    case 'siluForward':
      return { x: f(65536), out: f(65536) };
    case 'siluBackward':
      return { x: f(65536), g: f(65536), gx: f(65536) };
    case 'adamUpdate':
      return { p: f(65536), g: f(65536), m: f(65536), v: f(65536).map(Math.abs), b1: 0.9, b2: 0.999, eps: 1e-8, l2: 0, decay: 1, stepSize: 1e-3, sqrtBc2: 0.03 }; // prettier-ignore
  }
}

export class AutoSelector {
  private readonly choices = new Map<string, string>();
  /** Per kernel, the backends that passed calibration. */
  private readonly shortlist = new Map<string, Set<string>>();
  private dirty = false;
  private readonly file: string;

  /** `candidates`: backend names in order of preference when times tie; `kernelsOf` their own kernels. */
  constructor(
    private readonly candidates: string[],
    private readonly kernelsOf: (backend: string) => Partial<KernelSet>,
    fingerprint: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    const machine = `${cpus()[0]?.model ?? 'cpu'}-${cpus().length}-${process.version}-${fingerprint}`;
    this.file = join(CACHE_DIR, `kernel-choices-${machine.replace(/[^A-Za-z0-9.-]+/g, '_')}.json`);
    try {
      if (existsSync(this.file)) {
        const saved = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string>;
        for (const [k, v] of Object.entries(saved)) this.choices.set(k, v);
      }
    } catch {
      // a corrupt cache only costs a re-measurement
    }
    process.on('exit', () => this.save());
  }

  /** The backends this selector chose so far, by kernel and shape. */
  decisions(): Map<string, string> {
    return new Map(this.choices);
  }

  dispatcher<K extends KernelName>(name: K): KernelSet[K] {
    const spec = SPECS[name] as unknown as Spec<KernelName>;
    // the chosen implementation per shape, so a call after the first costs one key and one lookup
    const chosen = new Map<string, (a: unknown) => void>();
    const run = (args: Parameters<KernelSet[K]>[0]) => {
      const id = `${name}:${spec.key(args as never)}`;
      let impl = chosen.get(id);
      if (!impl) {
        // looked up now, not when the dispatcher was made: backends may register kernels later
        const all = this.candidates.flatMap((b) => {
          const k = this.kernelsOf(b)[name];
          return k ? [[b, k as unknown as (a: unknown) => void] as [string, (a: unknown) => void]] : [];
        });
        let backend = this.choices.get(id);
        if (!all.some(([b]) => b === backend)) {
          // the calibration speaks for shapes at least its size; smaller ones time every backend
          const size = (a: unknown) => spec.outputs(a as never).reduce((n, o) => n + (o?.length ?? 0), 0);
          const big = size(args) >= size(calibrationArgs(name));
          const allowed = big ? this.calibrate(name, all) : new Set(all.map(([b]) => b));
          backend = this.measure(
            id,
            all.filter(([b]) => allowed.has(b)),
            args,
            spec,
          );
        }
        impl = all.find(([b]) => b === backend)?.[1] as (a: unknown) => void;
        chosen.set(id, impl);
      }
      impl(args);
    };
    return run as unknown as KernelSet[K];
  }

  private calibrate(name: KernelName, impls: [string, (a: unknown) => void][]): Set<string> {
    let allowed = this.shortlist.get(name);
    if (allowed) return allowed;
    const args = calibrationArgs(name);
    const times = impls.map(([backend, impl]) => {
      impl(args); // warm-up
      const t = performance.now();
      for (let r = 0; r < 3; r++) impl(args);
      return [backend, (performance.now() - t) / 3] as const;
    });
    const best = Math.min(...times.map(([, t]) => t));
    allowed = new Set(times.filter(([, t]) => t <= 4 * best).map(([b]) => b));
    this.shortlist.set(name, allowed);
    this.log(
      `auto: calibrated ${name}: ${times.map(([b, t]) => `${b} ${(t * 1000).toFixed(0)}us`).join(', ')}`,
    );
    return allowed;
  }

  private measure(
    id: string,
    impls: [string, (a: unknown) => void][],
    args: unknown,
    spec: Spec<KernelName>,
  ): string {
    const outputs = spec.outputs(args as never).filter((o): o is Storage => o !== null);
    const saved = outputs.map((o) => o.slice());
    const restore = () => outputs.forEach((o, i) => o.set(saved[i]));
    let best = impls[0][0];
    let bestTime = Infinity;
    const report: string[] = [];
    for (const [backend, impl] of impls) {
      restore();
      const w = performance.now();
      impl(args); // warm-up: compiles the gpu.js kernel, grows the wasm memory, starts threads
      const warm = performance.now() - w;
      if (warm > 4 * bestTime && warm > 20) {
        // slow (over 20 ms) and hopeless even allowing for its compile: do not time it again
        report.push(`${backend} >${(warm * 1000).toFixed(0)}us`);
        continue;
      }
      // cheap calls: run a little longer first, so the JIT has optimised the JavaScript kernels
      for (let extra = 0; extra < 50 && performance.now() - w < 2; extra++) {
        restore();
        impl(args);
      }
      const times: number[] = [];
      const start = performance.now();
      while (times.length < 3 || (times.length < 15 && performance.now() - start < 5)) {
        restore();
        const t = performance.now();
        impl(args);
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)];
      report.push(`${backend} ${(median * 1000).toFixed(0)}us`);
      if (median < bestTime) [best, bestTime] = [backend, median];
    }
    restore();
    this.choices.set(id, best);
    this.dirty = true;
    this.log(`auto: ${id} -> ${best} (${report.join(', ')})`);
    return best;
  }

  save(): void {
    if (!this.dirty) return;
    try {
      mkdirSync(CACHE_DIR, { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.choices), null, 1));
      renameSync(tmp, this.file);
      this.dirty = false;
    } catch {
      // read-only checkout: choices are simply not remembered
    }
  }
}
