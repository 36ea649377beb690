// The machinery every gpu.js kernel here shares: compile a kernel body once per shape, run it, note which
// gpu.js backend really ran it, and hand back a flat Float32Array (or a Promise of one, in the async
// modes). Plus the index arithmetic the kernel bodies need, written once.
import type { GPU, IKernelRunShortcut, KernelOutput, Texture } from 'gpu.js';
import type { Storage } from '../core/tensor.ts';

export type MaybePromise<T> = T | Promise<T>;

/** What a kernel takes: arrays, numbers, and (pipeline mode) the texture an earlier kernel left. */
export type KernelArg = Float32Array | number | Texture;

/** `f(value)` now if `value` is ready, or once it is: synchronous modes stay synchronous. */
export function after<T, U>(value: MaybePromise<T>, f: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}

/** All of `values`, synchronously if none is a Promise. */
export function all<T>(values: MaybePromise<T>[]): MaybePromise<T[]> {
  return values.some((v) => v instanceof Promise) ? Promise.all(values) : (values as T[]);
}

/**
 * Source lines setting `q = floor(t / n)` and `r = t - q n` for integers t and n > 0. GPU division is
 * not always correctly rounded (WGSL allows 2.5 ulp, and GL drivers compute t * (1 / n)), so a quotient
 * can come out one off; the two corrections put it right. Exact while t and q n stay below 2^24.
 */
export function divmod(q: string, r: string, t: string, n: string): string {
  return `let ${q} = Math.floor((${t}) / (${n}));
  let ${r} = (${t}) - ${q} * (${n});
  if (${r} < 0) { ${q} = ${q} - 1; ${r} = ${r} + (${n}); }
  if (${r} >= (${n})) { ${q} = ${q} + 1; ${r} = ${r} - (${n}); }`;
}

/**
 * The most elements an array may have here. gpu.js does index arithmetic in float32 (in GLSL, WGSL and
 * webasm alike), which counts every integer exactly only up to 2^24: beyond it, indices round and a
 * kernel reads the wrong elements without any error (measured: im2col with 21.7M cols on webasm).
 */
export const MAX_ELEMENTS = 2 ** 24;

/** Thrown, before anything is written, for arrays past MAX_ELEMENTS; backend.ts then runs the ts twin. */
export class TooLargeError extends Error {}

/** The Float32Array behind kernel argument `name`, cut to the `length` elements the kernel reads. */
export function f32(op: string, name: string, a: Storage, length: number): Float32Array {
  if (!(a instanceof Float32Array)) {
    throw new Error(`gpu ${op}: ${name} must be a Float32Array (float64 runs on the ts backend)`);
  }
  if (a.length < length) {
    throw new Error(`gpu ${op}: ${name} has ${a.length} elements; the shape given needs ${length}`);
  }
  if (length > MAX_ELEMENTS) {
    throw new TooLargeError(
      `gpu ${op}: ${name} has ${length} elements, more than the 2^24 = ${MAX_ELEMENTS} that gpu.js's float32 index arithmetic counts exactly`,
    );
  }
  return a.length === length ? a : a.subarray(0, length);
}

function flat(out: KernelOutput): Float32Array {
  if (out instanceof Float32Array) return out;
  throw new Error('gpu kernel: expected a flat Float32Array result');
}

/** What `note` reads of a compiled gpu.js kernel: its class, and (webasm) whether it used threads. */
type WhatRan = { constructor?: { mode?: string; name?: string }; _threadable?: () => boolean };

export class Launcher {
  private readonly cache = new Map<string, IKernelRunShortcut>();
  /** The backends that actually ran this instance's kernels (gpu.js may fall back, e.g. to cpu). */
  readonly ran = new Set<string>();
  /** Which backend ran each kernel, by key (e.g. 'gnApply' -> 'webgl2'), to name a fallback precisely. */
  readonly ranBy = new Map<string, string>();
  /** The kernels (by key) that webasm split across its worker pool: async mode, >= 4096 outputs. */
  readonly threaded = new Set<string>();

  /**
   * Whether a kernel may hand its output to the next as a texture (gpu.js's pipeline mode), so that it
   * never comes back to the CPU in between. Only the GL kernels have textures; elsewhere this is off.
   */
  pipeline: boolean;

  constructor(readonly gpu: GPU) {
    const chosen = (gpu as unknown as { Kernel?: { name?: string } }).Kernel?.name ?? '';
    this.pipeline = ['WebGLKernel', 'WebGL2Kernel', 'HeadlessGLKernel'].includes(chosen);
  }

  /** The gpu.js mode that actually runs kernels (after its own fallbacks). */
  get mode(): string {
    return this.gpu.mode;
  }

  /** Notes which backend ran kernel `k` (readable only after its first call). */
  private note(k: IKernelRunShortcut, key: string): void {
    const kernel = (k as unknown as { kernel?: WhatRan }).kernel;
    const impl = kernel?.constructor;
    // the GL kernels all report mode 'gpu'; their class names tell WebGL, WebGL2 and headless GL apart
    const byClass: Record<string, string> = {
      WebGLKernel: 'webgl',
      WebGL2Kernel: 'webgl2',
      HeadlessGLKernel: 'headlessgl',
    };
    const mode = (impl?.name && byClass[impl.name]) || impl?.mode;
    if (mode) {
      this.ran.add(mode);
      this.ranBy.set(key, mode);
    }
    // gpu.js's own test of whether a webasm call goes to its worker pool (not part of its typings)
    if (kernel?._threadable?.()) this.threaded.add(key);
  }

  /**
   * Runs kernel `source` over `size` threads (one per output element) with these `constants`, compiled
   * on first use and cached under `key` and the constants; `args` are its arguments in order.
   */
  launch(
    source: string,
    key: string,
    size: number,
    constants: Record<string, number>,
    ...args: KernelArg[]
  ): MaybePromise<Float32Array> {
    return after(this.run(false, source, key, size, constants, args), flat);
  }

  /**
   * As launch, but with pipeline on the output stays on the GPU: a texture, valid until this kernel
   * runs again, for the next kernel to read as an argument. Otherwise a Float32Array, as launch gives.
   */
  launchOnGpu(
    source: string,
    key: string,
    size: number,
    constants: Record<string, number>,
    ...args: KernelArg[]
  ): MaybePromise<KernelArg> {
    return after(this.run(this.pipeline, source, key, size, constants, args), (r) =>
      this.pipeline ? (r as Texture) : flat(r),
    );
  }

  private run(
    pipeline: boolean,
    source: string,
    key: string,
    size: number,
    constants: Record<string, number>,
    args: KernelArg[],
  ): MaybePromise<KernelOutput> {
    const id = `${key}|${size}|${pipeline}|${JSON.stringify(constants)}`;
    let k = this.cache.get(id);
    if (!k) {
      k = this.gpu.createKernel(source, {
        output: [size],
        constants,
        precision: 'single',
        tactic: 'precision',
        pipeline,
      });
      this.cache.set(id, k);
    }
    const run = k;
    const out = run(...(args as (Float32Array | number)[])) as KernelOutput | Promise<KernelOutput>;
    return after(out, (r) => {
      this.note(run, key);
      return r;
    });
  }

  destroy(): Promise<void> {
    return this.gpu.destroy();
  }
}
