// The 'auto' backend: for each kernel and each shape, time every backend that implements it on the
// real arguments the first time that shape appears, and use the fastest from then on. Nothing is
// assumed: on a laptop the WebAssembly kernels win, on a machine with a GPU the gpu.js kernels may,
// and for tiny shapes the plain TypeScript loop often does.
//
// Choices are also kept in node_modules/.cache, per machine, so that a second run of a stage makes
// exactly the same choices as the first and therefore the same numbers (backends round differently).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { threadId } from 'node:worker_threads';
import { join } from 'node:path';
import { isNode } from '../env.ts';
import type { Storage } from '../tensor.ts';
import type { KernelName, KernelSet } from './registry.ts';
import { KERNELS, type KernelSpec } from './table.ts';

// Under Node the choices are remembered per machine; a page (web/) measures afresh on every load.
const cacheDir = () => join(process.cwd(), 'node_modules', '.cache', 'diffusion-ts');
/** Bumped when choices made before may be wrong: v2, once threads stopped measuring at the same time. */
const CACHE_VERSION = 'v2';

// Threads that split a batch (core/parallel/) each have a selector, and they meet new shapes at the same
// moment. Measuring side by side, each timed the others' work as much as its own, and two threads
// could choose differently for one shape, and then round differently. So one thread measures at a time,
// under a lock every thread of the program shares, and under Node it first rereads the choices file,
// where another thread may have just decided the same shape.
let sharedLock: Int32Array | null = null;

/** The program's measuring lock, made on first use (null where SharedArrayBuffer is unavailable). */
export function autoLock(): Int32Array | null {
  if (sharedLock === null && typeof SharedArrayBuffer !== 'undefined') {
    sharedLock = new Int32Array(new SharedArrayBuffer(4));
  }
  return sharedLock;
}

/** A worker's side: measure under the lock of the thread that started it. */
export function adoptAutoLock(lock: Int32Array | null | undefined): void {
  if (lock) sharedLock = lock;
}

function acquire(lock: Int32Array): void {
  while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) Atomics.wait(lock, 0, 1, 100);
}

function release(lock: Int32Array): void {
  Atomics.store(lock, 0, 0);
  Atomics.notify(lock, 0, 1);
}

export class AutoSelector {
  private readonly choices = new Map<string, string>();
  /** Per kernel, the backends that passed calibration. */
  private readonly shortlist = new Map<string, Set<string>>();
  private dirty = false;
  private readonly file: string | null = null;
  /** Decisions under way on this thread: a composed kernel's warm-up meets its parts' shapes inside its own. */
  private depth = 0;

  /** `candidates`: backend names in order of preference when times tie; `kernelsOf` their own kernels. */
  constructor(
    private readonly candidates: string[],
    private readonly kernelsOf: (backend: string) => Partial<KernelSet>,
    fingerprint: string,
    private readonly log: (line: string) => void = () => {},
  ) {
    if (!isNode) return;
    const machine = `${cpus()[0]?.model ?? 'cpu'}-${cpus().length}-${process.version}-${fingerprint}`;
    const name = `kernel-choices-${CACHE_VERSION}-${machine.replace(/[^A-Za-z0-9.-]+/g, '_')}.json`;
    this.file = join(cacheDir(), name);
    this.reload();
    process.on('exit', () => this.save());
  }

  /** Adds the choices file's entries that this selector has not made itself. */
  private reload(): void {
    if (this.file === null) return;
    try {
      if (existsSync(this.file)) {
        const saved = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, string>;
        for (const [k, v] of Object.entries(saved)) if (!this.choices.has(k)) this.choices.set(k, v);
      }
    } catch {
      // a corrupt cache only costs a re-measurement
    }
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
        // a choice made before (here, in the file, or by another thread) for a backend still present
        const known = () => {
          const backend = this.choices.get(id);
          return all.some(([b]) => b === backend) ? backend : undefined;
        };
        const decide = () => {
          // the calibration speaks for shapes at least its size; smaller ones time every backend
          const size = (a: unknown) => spec.outputs(a as never).reduce((n, o) => n + (o?.length ?? 0), 0);
          const big = size(args) >= size(spec.calibration());
          const allowed = big ? this.calibrate(name, all) : new Set(all.map(([b]) => b));
          const backend = this.measure(
            id,
            all.filter(([b]) => allowed.has(b)),
            args,
            spec,
          );
          this.save(); // now, for the other threads
          return backend;
        };
        const backend = known() ?? this.locked(() => known() ?? decide());
        impl = all.find(([b]) => b === backend)?.[1] as (a: unknown) => void;
        chosen.set(id, impl);
      }
      impl(args);
    };
    return run as unknown as KernelSet[K];
  }

  /** `decide` with this program's threads measuring one at a time, after rereading what they chose. */
  private locked(decide: () => string): string {
    const lock = this.depth === 0 ? sharedLock : null;
    if (lock) acquire(lock);
    this.depth++;
    try {
      if (lock) this.reload();
      return decide();
    } finally {
      this.depth--;
      if (lock) release(lock);
    }
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
    // The first candidate, the one expected to win at scale, is never ruled out here: on a small
    // instance its fixed costs (copies into the module, handing work to threads) weigh most, and a
    // WebAssembly convolution can time slower than the TypeScript one there and still be many times
    // faster on the UNet's shapes; ruled out, it cost every convolution of a run (docs/performance.md).
    const best = Math.min(...times.map(([, t]) => t));
    allowed = new Set(times.filter(([b, t]) => t <= 4 * best || b === impls[0][0]).map(([b]) => b));
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
    this.reload(); // what the other threads wrote stays: each thread's selector saves, at exit too
    try {
      mkdirSync(cacheDir(), { recursive: true });
      const tmp = `${this.file}.${process.pid}.${threadId}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.choices), null, 1));
      renameSync(tmp, this.file);
      this.dirty = false;
    } catch {
      // read-only checkout: choices are simply not remembered
    }
  }
}
