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
};

const CACHE_DIR = join(process.cwd(), 'node_modules', '.cache', 'diffusion-ts');

export class AutoSelector {
  private readonly choices = new Map<string, string>();
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
    const run = (args: Parameters<KernelSet[K]>[0]) => {
      // looked up per call: a backend may register more kernels after this dispatcher was made
      const impls = this.candidates.flatMap((b) => {
        const impl = this.kernelsOf(b)[name];
        return impl ? [[b, impl] as const] : [];
      });
      const id = `${name}:${spec.key(args as never)}`;
      let backend = this.choices.get(id);
      let impl = impls.find(([b]) => b === backend)?.[1];
      if (!impl) {
        backend = this.measure(id, impls as unknown as [string, (a: unknown) => void][], args, spec);
        impl = impls.find(([b]) => b === backend)?.[1];
      }
      (impl as (a: unknown) => void)(args);
    };
    return run as unknown as KernelSet[K];
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
      if (warm > 4 * bestTime) {
        // hopeless even allowing for its compile: do not spend more time on it
        report.push(`${backend} >${(warm * 1000).toFixed(0)}us`);
        continue;
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
