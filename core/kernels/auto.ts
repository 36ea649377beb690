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
import { isNode } from '../env.ts';
import type { Storage } from '../tensor.ts';
import type { KernelName, KernelSet } from './registry.ts';
import { KERNELS, type KernelSpec } from './table.ts';

// Under Node the choices are remembered per machine; a page (web/) measures afresh on every load.
const cacheDir = () => join(process.cwd(), 'node_modules', '.cache', 'diffusion-ts');

export class AutoSelector {
  private readonly choices = new Map<string, string>();
  /** Per kernel, the backends that passed calibration. */
  private readonly shortlist = new Map<string, Set<string>>();
  private dirty = false;
  private readonly file: string | null = null;

  /** `candidates`: backend names in order of preference when times tie; `kernelsOf` their own kernels. */
  constructor(
    private readonly candidates: string[],
    private readonly kernelsOf: (backend: string) => Partial<KernelSet>,
    fingerprint: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    if (!isNode) return;
    const machine = `${cpus()[0]?.model ?? 'cpu'}-${cpus().length}-${process.version}-${fingerprint}`;
    this.file = join(cacheDir(), `kernel-choices-${machine.replace(/[^A-Za-z0-9.-]+/g, '_')}.json`);
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
    const spec = KERNELS[name] as unknown as KernelSpec<KernelName>;
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
          const big = size(args) >= size(spec.calibration());
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
    const args: unknown = KERNELS[name].calibration();
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
    spec: KernelSpec<KernelName>,
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
    if (!this.dirty || this.file === null) return;
    try {
      mkdirSync(cacheDir(), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.choices), null, 1));
      renameSync(tmp, this.file);
      this.dirty = false;
    } catch {
      // read-only checkout: choices are simply not remembered
    }
  }
}
