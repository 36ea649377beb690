// Forward passes without autograd split between this thread and worker threads, for sampling: each
// thread holds a copy of the (fixed) weights and runs its share of the batch, as data-parallel training
// does for its steps. The sampler's loop is synchronous, so the hand-off is too: a share goes through
// shared memory and the threads meet on Atomics.wait and Atomics.notify, with no messages and no await.
//
// Exactness: every number of a UNet's output depends on its own image alone (GroupNorm, attention and
// the time embedding are per image; each gemm output is one dot product whose order does not depend on
// the other columns), so on the wasm and ts backends the split batch gives the unsplit one's numbers
// bit for bit.
import { autoLock, backendModules, setKernelThreads } from '../kernels/select.ts';
import type { UNet } from '../nn/unet.ts';
import { concat, slice } from '../ops/shape.ts';
import { noGrad, Tensor } from '../tensor.ts';
import { shareCores, shares } from './data-parallel.ts';
import { CTRL, ForwardChannel, type ForwardSetup } from './forward-channel.ts';
import { copyOut } from './protocol.ts';
import { startThread, type Thread } from './spawn.ts';

type ForwardOptions = { fractionalTime?: boolean; labels?: ArrayLike<number> };

export class ParallelForward {
  private seq = 0;
  private closed = false;

  private constructor(
    private readonly model: UNet,
    private readonly workers: Thread[],
    private readonly channels: ForwardChannel[],
    /** What runs where, for the log. */
    readonly description: string,
  ) {}

  /**
   * Activates `backend` here and on `threads - 1` workers holding copies of `model`'s current weights,
   * with room for batches of up to `maxBatch` images (larger ones run on this thread alone). The cores
   * are shared out as in data-parallel training; close() gives them back.
   */
  static async start(
    model: UNet,
    opts: { threads: number; backend: string; maxBatch: number },
  ): Promise<ParallelForward> {
    const threads = Math.max(1, Math.min(opts.threads, opts.maxBatch));
    const { kernelThreads, backend } = await shareCores(threads, opts.backend);
    const { im_channels: c, im_size: s } = model.config;
    const weights = new Float32Array(model.numParameters());
    copyOut(model.parameters(), weights);
    const capacity = shares(opts.maxBatch, threads)[0];
    const buffers = Array.from({ length: threads - 1 }, () => ForwardChannel.allocate(capacity, c * s * s));
    const started = await Promise.allSettled(
      buffers.map((channel) => {
        const setup: ForwardSetup = {
          ...{ model: model.config, backend: opts.backend, backendModules: backendModules() },
          ...{ kernelThreads, weights, channel, autoLock: autoLock() },
        };
        return startThread(setup, 'forward-worker');
      }),
    );
    const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      for (const w of workers) void w.terminate();
      setKernelThreads(null);
      throw failed.reason;
    }
    const where = threads === 1 ? '1 thread' : `${threads} threads, the batch split between them`;
    const channels = buffers.map((b) => new ForwardChannel(b));
    return new ParallelForward(model, workers, channels, `${backend}; ${where}`);
  }

  /** UNet.forward without autograd, the batch split between the threads. */
  forward(x: Tensor, t: ArrayLike<number>, opts: ForwardOptions = {}): Tensor {
    if (this.closed) throw new Error('ParallelForward: used after close()');
    const n = x.shape[0];
    const sizes = shares(n, this.channels.length + 1);
    // images from..to-1's times (one for all, or theirs) and labels
    const part = (from: number, to: number) => ({
      t: t.length === 1 ? t : pick(t, from, to),
      opts: { fractionalTime: opts.fractionalTime, labels: opts.labels && pick(opts.labels, from, to) },
    });
    const run = (from: number, to: number) => {
      const mine = part(from, to);
      return noGrad(() => this.model.forward(slice(x, 0, from, to), mine.t, mine.opts));
    };
    if (sizes.length === 1 || sizes[0] > this.channels[0].capacity) return run(0, n);
    const starts = sizes.map((_, k) => sizes.slice(0, k).reduce((a, b) => a + b, 0));
    const perImage = x.size / n;
    const seq = ++this.seq;
    sizes.slice(1).forEach((size, j) => {
      const from = starts[j + 1];
      const ch = this.channels[j];
      const share = (x.data as Float32Array).subarray(from * perImage, (from + size) * perImage);
      const theirs = part(from, from + size);
      ch.writeRequest(share, [size, ...x.shape.slice(1)], theirs.t, theirs.opts);
      Atomics.store(ch.ctrl, CTRL.request, seq);
      Atomics.notify(ch.ctrl, CTRL.request);
    });
    let own: Tensor;
    try {
      own = run(0, sizes[0]);
    } finally {
      // even when this thread's share failed: the next request must not overwrite a share in use
      for (const ch of this.channels.slice(0, sizes.length - 1)) {
        while (Atomics.load(ch.ctrl, CTRL.done) !== seq) Atomics.wait(ch.ctrl, CTRL.done, seq - 1, 1000);
      }
    }
    const parts = [own];
    sizes.slice(1).forEach((size, j) => {
      const ch = this.channels[j];
      const error = ch.readError();
      if (error !== null) throw new Error(`parallel forward, worker ${j + 1}: ${error}`);
      parts.push(new Tensor(ch.readOutput(size * perImage), [size, ...own.shape.slice(1)]));
    });
    return concat(parts, 0);
  }

  /**
   * Stops the workers and gives this thread's kernels every core again. In a page, activate the backend
   * again (useBackend) before the next kernel call: its new threads start only while this one waits.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) void w.terminate();
    setKernelThreads(null);
  }
}

function pick(values: ArrayLike<number>, from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => values[from + i]);
}
