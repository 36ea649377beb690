// The shared memory through which parallel-forward.ts hands one worker a share of a batch and gets its
// output back, without messages: a control block of int32 words, then fixed-capacity arrays for the
// images, their times, their labels, the output and an error text.
import type { UNetConfig } from '../nn/unet-config.ts';

export type ForwardSetup = {
  model: UNetConfig;
  backend: string;
  backendModules: string[];
  kernelThreads: number;
  /** The starting thread's lock under which 'auto' measures (core/kernels/auto.ts). */
  autoLock: Int32Array | null;
  /** The model's parameters, one after another in parameters() order. */
  weights: Float32Array;
  channel: ChannelBuffers;
};

/** Words of the control block: request/done sequence numbers, then the share's description. */
export const CTRL = { request: 0, done: 1, n: 2, c: 3, h: 4, w: 5, flags: 6, error: 7 } as const;
const FLAG_FRACTIONAL = 1;
const FLAG_LABELS = 2;
const ERROR_BYTES = 4096;

export type ChannelBuffers = {
  ctrl: SharedArrayBuffer;
  x: SharedArrayBuffer;
  t: SharedArrayBuffer;
  labels: SharedArrayBuffer;
  out: SharedArrayBuffer;
  error: SharedArrayBuffer;
};

export class ForwardChannel {
  readonly ctrl: Int32Array;
  private readonly x: Float32Array;
  private readonly t: Float64Array;
  private readonly labels: Int32Array;
  private readonly out: Float32Array;
  private readonly error: Uint8Array;

  /** Room for `images` images of `perImage` floats each (input and output). */
  static allocate(images: number, perImage: number): ChannelBuffers {
    return {
      ctrl: new SharedArrayBuffer(4 * 8),
      x: new SharedArrayBuffer(4 * images * perImage),
      t: new SharedArrayBuffer(8 * images),
      labels: new SharedArrayBuffer(4 * images),
      out: new SharedArrayBuffer(4 * images * perImage),
      error: new SharedArrayBuffer(ERROR_BYTES),
    };
  }

  constructor(b: ChannelBuffers) {
    this.ctrl = new Int32Array(b.ctrl);
    this.x = new Float32Array(b.x);
    this.t = new Float64Array(b.t);
    this.labels = new Int32Array(b.labels);
    this.out = new Float32Array(b.out);
    this.error = new Uint8Array(b.error);
  }

  /** How many images fit. */
  get capacity(): number {
    return this.t.length;
  }

  shape(): number[] {
    const c = this.ctrl;
    return [c[CTRL.n], c[CTRL.c], c[CTRL.h], c[CTRL.w]];
  }

  writeRequest(
    x: Float32Array,
    shape: readonly number[],
    t: ArrayLike<number>,
    opts: { fractionalTime?: boolean; labels?: ArrayLike<number> },
  ): void {
    this.x.set(x);
    for (let i = 0; i < shape[0]; i++) this.t[i] = t.length === 1 ? t[0] : t[i];
    if (opts.labels) for (let i = 0; i < shape[0]; i++) this.labels[i] = opts.labels[i];
    const c = this.ctrl;
    [c[CTRL.n], c[CTRL.c], c[CTRL.h], c[CTRL.w]] = shape;
    c[CTRL.flags] = (opts.fractionalTime ? FLAG_FRACTIONAL : 0) | (opts.labels ? FLAG_LABELS : 0);
    c[CTRL.error] = 0;
  }

  readRequest() {
    const c = this.ctrl;
    const n = c[CTRL.n];
    const size = n * c[CTRL.c] * c[CTRL.h] * c[CTRL.w];
    return {
      x: this.x.slice(0, size),
      t: Array.from(this.t.subarray(0, n)),
      labels: c[CTRL.flags] & FLAG_LABELS ? Array.from(this.labels.subarray(0, n)) : undefined,
      fractionalTime: (c[CTRL.flags] & FLAG_FRACTIONAL) !== 0,
    };
  }

  writeOutput(y: Float32Array): void {
    this.out.set(y);
  }

  /** The output's first `size` floats, in place: valid until the next request. */
  readOutput(size: number): Float32Array {
    return this.out.subarray(0, size);
  }

  writeError(message: string): void {
    const bytes = new TextEncoder().encode(message).subarray(0, ERROR_BYTES);
    this.error.set(bytes);
    this.ctrl[CTRL.error] = bytes.length;
  }

  /** The worker's error message, or null. */
  readError(): string | null {
    const length = this.ctrl[CTRL.error];
    return length > 0 ? new TextDecoder().decode(this.error.slice(0, length)) : null;
  }
}
