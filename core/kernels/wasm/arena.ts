// The memory the WebAssembly kernels work in, and how their work is run. One module (gemm-module.ts,
// conv-module.ts) on one memory, shared with worker threads (threads.ts). Each kernel call lays out its
// operands in the memory (an arena of float offsets, reset per call), writes per-thread lists of
// kernel calls ("jobs") there, runs list 0 on this thread and the others on workers, and copies
// results out. engine.ts builds the kernels on top.
import type { Storage } from '../../tensor.ts';
import { gemmModuleBytes, KERNEL_EXPORTS } from './gemm-module.ts';
import { WorkerTeam } from './threads.ts';

export const JOB_INTS = 9; // function index + 8 arguments
const PAGE = 65536;
const MAX_PAGES = 32768; // 2 GiB

export const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;
type KernelExport = (typeof KERNEL_EXPORTS)[number];
/** A kernel's index in a job list. */
export const FN = Object.fromEntries(KERNEL_EXPORTS.map((name, i) => [name, i])) as Record<
  KernelExport,
  number
>;
type Exports = Record<KernelExport, (...args: number[]) => void>;

export class WasmArena {
  protected readonly memory: WebAssembly.Memory;
  protected readonly exports: Exports;
  protected readonly team: WorkerTeam | null;
  protected f32 = new Float32Array(0);
  protected i32 = new Int32Array(0);
  private top = 0;

  /** `threads` counts the calling thread; 1 runs everything here. */
  constructor(readonly threads: number) {
    const shared = threads > 1;
    this.memory = new WebAssembly.Memory({ initial: 256, maximum: MAX_PAGES, shared });
    const module = new WebAssembly.Module(gemmModuleBytes(shared, MAX_PAGES));
    this.exports = new WebAssembly.Instance(module, { env: { mem: this.memory } })
      .exports as unknown as Exports;
    this.team = shared ? new WorkerTeam(threads - 1, module, this.memory) : null;
  }

  /** Resolves once the worker threads run (a page must wait for this before the first call). */
  async ready(): Promise<void> {
    await this.team?.ready();
  }

  /** Stops the worker threads; the engine must not be used afterwards. */
  destroy(): void {
    this.team?.destroy();
  }

  // ---- the arena: float offsets into the memory, reset by every public call ----

  protected reset(): void {
    this.top = 16;
  }

  protected take(floats: number): number {
    const at = this.top;
    this.top = roundUp(this.top + floats, 16); // 64-byte alignment
    return at;
  }

  /** Grows the memory to hold everything taken so far and refreshes the typed views. */
  protected commit(): void {
    const bytes = this.top * 4;
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      const pages = Math.ceil((bytes - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES)
        throw new Error(`wasm kernels: need ${bytes} bytes, over the 2 GiB limit`);
      this.memory.grow(pages);
    }
    if (this.f32.buffer !== this.memory.buffer || this.f32.length * 4 !== this.memory.buffer.byteLength) {
      this.f32 = new Float32Array(this.memory.buffer);
      this.i32 = new Int32Array(this.memory.buffer);
    }
  }

  protected put(src: Storage, at: number, length: number): void {
    this.f32.set(src.length === length ? src : src.subarray(0, length), at);
  }

  /** Copies an m x n result with row stride ldc out to `dst` (adding into it when `accumulate`). */
  protected getRows(at: number, m: number, n: number, ldc: number, dst: Storage, accumulate: boolean): void {
    const f32 = this.f32;
    if (!accumulate && ldc === n) {
      dst.set(f32.subarray(at, at + m * n));
      return;
    }
    for (let i = 0; i < m; i++) {
      const row = at + i * ldc;
      if (!accumulate) dst.set(f32.subarray(row, row + n), i * n);
      else for (let j = 0; j < n; j++) dst[i * n + j] += f32[row + j];
    }
  }

  // ---- running job lists ----

  /** Writes `calls` as a job list at float offset `at`. */
  protected writeJobs(at: number, calls: number[][]): void {
    const list = this.i32;
    list[at] = calls.length;
    calls.forEach((call, c) => {
      const p = at + 1 + c * JOB_INTS;
      for (let i = 0; i < JOB_INTS; i++) list[p + i] = call[i] ?? 0;
    });
  }

  private runJobs(at: number): void {
    const list = this.i32;
    const fns = KERNEL_EXPORTS.map((name) => this.exports[name]);
    const count = list[at];
    for (let j = 0, p = at + 1; j < count; j++, p += JOB_INTS) {
      fns[list[p]](
        list[p + 1],
        list[p + 2],
        list[p + 3],
        list[p + 4],
        list[p + 5],
        list[p + 6],
        list[p + 7],
        list[p + 8],
      );
    }
  }

  /** Runs list 0 here and the others on workers, and waits for all. */
  protected runPhase(lists: number[]): void {
    if (lists.length > 1 && this.team) {
      this.team.start(lists.slice(1).map((at) => at * 4));
      this.runJobs(lists[0]);
      this.team.finish();
    } else {
      this.runJobs(lists[0]);
    }
  }

  protected threadsFor(work: number, minWork: number): number {
    return this.team && work >= minWork ? this.threads : 1;
  }

  /** One empty job list per thread that `work` elements deserve. */
  protected phaseLists(work: number): number[] {
    const threads = this.threadsFor(work, 1 << 18);
    return Array.from({ length: threads }, () => this.take(1 + JOB_INTS));
  }

  /** Splits [0, count) into one job per thread, each `call(start, end, thread)`, and runs them. */
  protected splitJobs(
    lists: number[],
    count: number,
    call: (start: number, end: number, thread: number) => number[],
  ): void {
    const parts = lists.length;
    lists.forEach((at, t) =>
      this.writeJobs(at, [call(Math.floor((count * t) / parts), Math.floor((count * (t + 1)) / parts), t)]),
    );
    this.runPhase(lists);
  }
}
