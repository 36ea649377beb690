// The WebAssembly gemm driver: blocking, packing and threads around the SIMD kernels of gemm-module.ts.
//
// Per call, A and B are copied into the module's memory, A is packed into 4-row panels, and the columns
// of C are split between the calling thread and the worker threads (threads.ts). Each thread works
// through a list of kernel calls ("jobs"): pack a KC x NC block of B into 8-column panels, then run the
// macro kernel over every MC-row block of packed A against it. C is computed with rows padded to a
// multiple of 8 and copied out at the end.
import type { GemmArgs } from '../registry.ts';
import { gemmModuleBytes, GEMM_EXPORTS, MR, NR } from './gemm-module.ts';
import { WorkerTeam } from './threads.ts';

const KC_MAX = 512; // depth of a packed block: 512 x 8 floats of B (16 KB) stay in L1
const NC = 512; // columns per packed block of B
const MC = 128; // rows of packed A per macro call
const JOB_INTS = 9; // function index + 8 arguments
const PAGE = 65536;
const MAX_PAGES = 32768; // 2 GiB

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;
const FN = Object.fromEntries(GEMM_EXPORTS.map((name, i) => [name, i])) as Record<
  (typeof GEMM_EXPORTS)[number],
  number
>;

type Exports = {
  macro: (
    ap: number,
    bp: number,
    cp: number,
    mc: number,
    nc: number,
    kc: number,
    ldc: number,
    acc: number,
  ) => void;
  packRows: (src: number, stride: number, kc: number, panels: number, dst: number) => void;
  packStrided: (src: number, sk: number, sj: number, kc: number, w: number, dst: number, ds: number) => void;
  zero: (dst: number, bytes: number) => void;
};

/** Whether this JavaScript engine runs WebAssembly SIMD (validated on a tiny module). */
export function wasmSimdSupported(): boolean {
  try {
    return WebAssembly.validate(gemmModuleBytes(false, 1));
  } catch {
    return false;
  }
}

export class WasmGemm {
  private readonly memory: WebAssembly.Memory;
  private readonly exports: Exports;
  private readonly team: WorkerTeam | null;
  private f32 = new Float32Array(0);
  private i32 = new Int32Array(0);

  /** `threads` counts the calling thread; 1 runs everything here. */
  constructor(readonly threads: number) {
    const shared = threads > 1;
    this.memory = new WebAssembly.Memory({ initial: 256, maximum: MAX_PAGES, shared });
    const module = new WebAssembly.Module(gemmModuleBytes(shared, MAX_PAGES));
    this.exports = new WebAssembly.Instance(module, { env: { mem: this.memory } })
      .exports as unknown as Exports;
    this.team = shared ? new WorkerTeam(threads - 1, module, this.memory) : null;
  }

  /** Grows the memory to at least `bytes` and refreshes the typed views. */
  private reserve(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      const pages = Math.ceil((bytes - have) / PAGE);
      if (have / PAGE + pages > MAX_PAGES)
        throw new Error(`wasm gemm: needs ${bytes} bytes, over the 2 GiB limit`);
      this.memory.grow(pages);
    }
    if (this.f32.buffer !== this.memory.buffer) {
      this.f32 = new Float32Array(this.memory.buffer);
      this.i32 = new Int32Array(this.memory.buffer);
    }
  }

  gemm({ a, b, c, m, n, k, transA, transB, accumulate }: GemmArgs): void {
    if (m === 0 || n === 0) return;
    if (k === 0) {
      if (!accumulate) c.fill(0, 0, m * n);
      return;
    }
    const kcBlocks = Math.ceil(k / KC_MAX);
    const KC = Math.ceil(k / kcBlocks);
    const mPad = roundUp(m, MR);
    const ldc = roundUp(n, NR);
    // Threads only pay for themselves above ~128^3 (a hand-off costs a few microseconds).
    const threads = this.team && m * n * k >= 1 << 21 && n >= 2 * NR ? this.threads : 1;
    const split = splitColumns(n, threads);
    // per (column block, depth block): the B packing (one call, or one per panel when transposed), an
    // edge panel (zero + pack), and one macro call per MC rows
    const packJobs = transB ? NC / NR + 2 : 3;
    const blocks = (cols: number) => Math.ceil(cols / NC) * kcBlocks;
    const jobsPerThread = split.map(([n0, n1]) => blocks(n1 - n0) * (packJobs + Math.ceil(mPad / MC)));

    // Layout of this call in the module's memory, in floats (64-byte aligned).
    let top = 16;
    const take = (floats: number) => {
      const at = top;
      top = roundUp(top + floats, 16);
      return at;
    };
    const jobs = jobsPerThread.map((count) => take(1 + count * JOB_INTS));
    const A = take(m * k);
    const B = take(k * n);
    const C = take(mPad * ldc);
    const Ap = take(mPad * k);
    const buffers = split.map(() => take(KC * NC));
    this.reserve(top * 4);
    const f32 = this.f32;
    f32.set(a.length === m * k ? a : a.subarray(0, m * k), A);
    f32.set(b.length === k * n ? b : b.subarray(0, k * n), B);

    // Pack all of op(A): for each depth block, panels of MR rows, k-major, zero-padded rows.
    const sai = transA ? 1 : k; // op(A)(i, p) = A[i * sai + p * sap]
    const sap = transA ? m : 1;
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      for (let p = 0, d = Ap + pc * mPad; p < mPad; p += MR, d += kc * MR) {
        const rows = Math.min(MR, m - p);
        if (rows < MR) f32.fill(0, d, d + kc * MR);
        this.exports.packStrided((A + p * sai + pc * sap) * 4, sap * 4, sai * 4, kc, rows, d * 4, MR * 4);
      }
    }

    // One job list per thread over its own columns of C.
    const sbp = transB ? 1 : n; // op(B)(p, j) = B[p * sbp + j * sbj]
    const sbj = transB ? k : 1;
    split.forEach(([n0, n1], t) => {
      const list = this.i32;
      let at = jobs[t] + 1;
      const push = (fn: number, ...args: number[]) => {
        list[at] = fn;
        for (let i = 0; i < 8; i++) list[at + 1 + i] = args[i] ?? 0;
        at += JOB_INTS;
      };
      const buf = buffers[t];
      for (let jc = n0; jc < n1; jc += NC) {
        const nc = Math.min(NC, n1 - jc);
        const full = Math.floor(nc / NR);
        const rest = nc - full * NR;
        for (let pc = 0; pc < k; pc += KC) {
          const kc = Math.min(KC, k - pc);
          if (!transB) push(FN.packRows, (B + pc * n + jc) * 4, n * 4, kc, full, buf * 4);
          else {
            for (let q = 0; q < full; q++) {
              push(
                FN.packStrided,
                (B + (jc + q * NR) * k + pc) * 4,
                4,
                k * 4,
                kc,
                NR,
                (buf + q * kc * NR) * 4,
                NR * 4,
              );
            }
          }
          if (rest > 0) {
            const d = buf + full * kc * NR;
            push(FN.zero, d * 4, kc * NR * 4);
            push(
              FN.packStrided,
              (B + pc * sbp + (jc + full * NR) * sbj) * 4,
              sbp * 4,
              sbj * 4,
              kc,
              rest,
              d * 4,
              NR * 4,
            );
          }
          for (let ic = 0; ic < mPad; ic += MC) {
            const mc = Math.min(MC, mPad - ic);
            push(
              FN.macro,
              (Ap + pc * mPad + ic * kc) * 4,
              buf * 4,
              (C + ic * ldc + jc) * 4,
              mc,
              roundUp(nc, NR),
              kc,
              ldc,
              pc > 0 ? 1 : 0,
            );
          }
        }
      }
      list[jobs[t]] = (at - jobs[t] - 1) / JOB_INTS;
    });

    if (threads > 1 && this.team) {
      this.team.start(jobs.slice(1).map((j) => j * 4));
      this.runJobs(jobs[0]);
      this.team.finish();
    } else {
      this.runJobs(jobs[0]);
    }

    // Copy C out of its padded rows.
    const out = this.f32;
    for (let i = 0; i < m; i++) {
      const row = out.subarray(C + i * ldc, C + i * ldc + n);
      if (!accumulate) c.set(row, i * n);
      else for (let j = 0; j < n; j++) c[i * n + j] += row[j];
    }
  }

  /** Runs one job list here, on the calling thread. */
  private runJobs(at: number): void {
    const list = this.i32;
    const fns = GEMM_EXPORTS.map((name) => this.exports[name] as (...args: number[]) => void);
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
}

/** Splits n columns into `parts` ranges whose boundaries are multiples of NR. */
function splitColumns(n: number, parts: number): [number, number][] {
  const panels = Math.ceil(n / NR);
  const out: [number, number][] = [];
  let p0 = 0;
  for (let t = 0; t < parts; t++) {
    const p1 = Math.round((panels * (t + 1)) / parts);
    out.push([Math.min(n, p0 * NR), Math.min(n, p1 * NR)]);
    p0 = p1;
  }
  return out.filter(([a, b]) => b > a);
}
