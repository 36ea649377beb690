// Data-parallel training on one machine: each step's batch is split between this thread and worker
// threads, each with its own copy of the model, and the shares' gradients are averaged (PyTorch's
// DistributedDataParallel, on threads). The autograd engine is single-threaded JavaScript, so this is
// how a training step uses more than one core; the kernels' own threads only speed up the big gemms.
//
// Exactness: the loss is a mean over images, so the batch gradient is the image-weighted mean of the
// shares' gradients, sum_k (n_k / N) g_k. The noise is drawn once for the whole batch (NoiseDraw), so a
// split batch trains on the same numbers as the unsplit one; only the order of float additions differs.
// For a given seed, backend and worker count, training is deterministic.
//
// Weights and gradients travel through shared memory: before a step this thread writes the weights into
// one shared array, each worker copies them in, runs its share, and leaves its gradient in its own slot.
import type { Worker } from 'node:worker_threads';
import { cpuCount, envVar } from '../env.ts';
import { imageNet } from '../diffusion/image.ts';
import { sliceDraw, type ImageNet, type ImageObjective, type NoiseDraw } from '../diffusion/objectives.ts';
import { autoLock, backendModules, setKernelThreads, sharedDevice, useBackend } from '../kernels/select.ts';
import { slice } from '../ops/shape.ts';
import type { UNet } from '../nn/unet.ts';
import { Tensor } from '../tensor.ts';
import { copyOut, type GradRequest, type GradReply, type WorkerSetup } from './protocol.ts';
import { ready, spawnWorker } from './spawn.ts';

/** The default: one thread per core (at most 4), or 1 on a backend whose device is shared (gpu). */
export function defaultThreads(backend: string): number {
  return sharedDevice(backend) ? 1 : Math.min(4, cpuCount());
}

/**
 * Shares the cores out between `threads` threads, each thread's kernels getting cores / threads of them
 * (unless DIFFUSION_THREADS says otherwise), and activates `backend` on this one; returns its description.
 */
export async function shareCores(threads: number, backend: string) {
  const kernelThreads = Math.max(1, Math.floor(cpuCount() / threads));
  if (threads > 1 && !envVar('DIFFUSION_THREADS')) setKernelThreads(kernelThreads);
  return { kernelThreads, backend: await useBackend(backend) };
}

/** Sizes of the shares of a batch of n images between `parts` threads, the larger ones first. */
export function shares(n: number, parts: number): number[] {
  const k = Math.max(1, Math.min(parts, n));
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

type Pending = { resolve: (loss: number) => void; reject: (e: Error) => void };

export class DataParallel {
  private readonly params: Tensor[];
  private readonly weights: Float32Array;
  private readonly grads: Float32Array[];
  private readonly pending: (Pending | null)[];
  private readonly net: ImageNet;
  private failure: Error | null = null;

  private constructor(
    private readonly model: UNet,
    private readonly objective: ImageObjective,
    private readonly workers: Worker[],
    shared: { weights: SharedArrayBuffer; grads: SharedArrayBuffer[] },
    /** What runs where, for the log. */
    readonly description: string,
  ) {
    this.params = model.parameters();
    this.net = imageNet(model, objective);
    this.weights = new Float32Array(shared.weights);
    this.grads = shared.grads.map((b) => new Float32Array(b));
    this.pending = workers.map(() => null);
    workers.forEach((w, k) => {
      w.on('message', (m: GradReply) => this.settle(k, m));
      w.on('error', (e) => this.fail(new Error(`data-parallel worker ${k + 1}: ${e.message}`)));
      w.on('exit', (code) => this.fail(new Error(`data-parallel worker ${k + 1} exited (code ${code})`)));
    });
  }

  /**
   * Activates `backend` on this thread and on `threads - 1` workers, each holding a copy of `model` and
   * of `objective` (rebuilt from their plain configs). At most one thread per image of a `batch`. The
   * cores are shared out: each thread's kernels get cores / threads of them.
   */
  static async start(
    model: UNet,
    objective: ImageObjective,
    opts: { threads: number; backend: string; batch: number },
  ): Promise<DataParallel> {
    const threads = Math.max(1, Math.min(opts.threads, opts.batch));
    const { kernelThreads, backend } = await shareCores(threads, opts.backend);
    const size = model.numParameters();
    const shared = {
      weights: new SharedArrayBuffer(4 * size),
      grads: Array.from({ length: threads - 1 }, () => new SharedArrayBuffer(4 * size)),
    };
    const workers = shared.grads.map((grads) => {
      const setup: WorkerSetup = {
        model: model.config,
        objective: objective.spec,
        backend: opts.backend,
        backendModules: backendModules(),
        weights: shared.weights,
        grads,
        kernelThreads,
        autoLock: autoLock(),
      };
      return spawnWorker(setup);
    });
    try {
      await Promise.all(workers.map(ready));
    } catch (e) {
      for (const w of workers) void w.terminate();
      throw e;
    }
    const where =
      threads === 1
        ? '1 thread'
        : `${threads} data-parallel threads, ${shares(opts.batch, threads).join(' + ')} images each`;
    return new DataParallel(model, objective, workers, shared, `${backend}; ${where}`);
  }

  /**
   * The loss of the batch x0 with its noise `draw`, its gradient left in the model parameters' .grad
   * (replacing what was there), as if the whole batch had run on this thread.
   */
  async lossAndGrad(x0: Tensor, draw: NoiseDraw): Promise<number> {
    if (this.failure) throw this.failure;
    const n = x0.shape[0];
    const sizes = shares(n, this.workers.length + 1);
    const starts = sizes.map((_, k) => sizes.slice(0, k).reduce((a, b) => a + b, 0));
    if (sizes.length > 1) copyOut(this.params, this.weights);
    // the workers' shares first, so that they run while this thread does its own
    const replies = sizes.slice(1).map((size, j) => {
      const from = starts[j + 1];
      return this.request(j, toRequest(sliceBatch(x0, draw, from, from + size)));
    });
    const own = sliceBatch(x0, draw, 0, sizes[0]);
    this.model.zeroGrad();
    const loss = this.objective.loss(this.net, own.x0, own.draw);
    const ownLoss = loss.item();
    loss.backward();
    const losses = [ownLoss, ...(await Promise.all(replies))];
    if (sizes.length > 1) this.combine(sizes, n);
    return losses.reduce((sum, l, k) => sum + (sizes[k] / n) * l, 0);
  }

  /** grad = sum_k (n_k / N) g_k, with this thread's g_0 already in place. */
  private combine(sizes: number[], n: number): void {
    let at = 0;
    for (const p of this.params) {
      p.grad ??= new Tensor(new Float32Array(p.size), p.shape);
      const g = p.grad.data;
      const w0 = sizes[0] / n;
      for (let i = 0; i < g.length; i++) g[i] *= w0;
      this.grads.forEach((slot, j) => {
        const w = sizes[j + 1] / n;
        for (let i = 0; i < g.length; i++) g[i] += w * slot[at + i];
      });
      at += p.size;
    }
  }

  private request(k: number, req: GradRequest): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending[k] = { resolve, reject };
      this.workers[k].postMessage(req, [req.x0.buffer as ArrayBuffer, req.noise.buffer as ArrayBuffer]);
    });
  }

  private settle(k: number, m: GradReply): void {
    const p = this.pending[k];
    this.pending[k] = null;
    if (!p) return;
    if ('error' in m) p.reject(new Error(`data-parallel worker ${k + 1}: ${m.error}`));
    else if ('loss' in m) p.resolve(m.loss);
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const p of this.pending) p?.reject(e);
    this.pending.fill(null);
  }

  /** Stops the workers (the program can also simply exit: they do not keep it alive). */
  close(): void {
    this.failure ??= new Error('data-parallel training was closed');
    for (const w of this.workers) {
      w.removeAllListeners('exit');
      void w.terminate();
    }
  }
}

function sliceBatch(x0: Tensor, draw: NoiseDraw, from: number, to: number) {
  return { x0: slice(x0, 0, from, to), draw: sliceDraw(draw, from, to) };
}

/** An array that owns its whole buffer (a small one may be a view into a shared slab: copy it). */
const owning = (a: Float32Array) => (a.byteLength === a.buffer.byteLength ? a : a.slice());

/** The message a worker gets: plain arrays, moved rather than copied. */
function toRequest({ x0, draw }: { x0: Tensor; draw: NoiseDraw }): GradRequest {
  return {
    x0: owning(x0.data as Float32Array),
    shape: x0.shape,
    levels: draw.levels,
    noise: owning(draw.noise.data as Float32Array),
    labels: draw.labels,
  };
}
