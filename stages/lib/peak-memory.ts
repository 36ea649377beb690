// The peak resident memory of a piece of work, for the bench's UNet rows. Resident memory is one figure
// for the whole process (worker threads included), and the work is synchronous, so a small worker
// thread samples it every few milliseconds while the work runs and keeps the largest value seen.
// Sampling can miss a peak shorter than its interval; the UNet rows hold their memory for far longer.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A full garbage collection, now (Node's own gc(), reached without the --expose-gc flag). */
export function collectGarbage(): void {
  gc();
}

// ctrl (Int32): 0 running (1) or stopped (0), 1 quit; peak (Float64): 0 the largest rss seen, in bytes
const SAMPLER = `
const { workerData } = require('node:worker_threads');
const ctrl = new Int32Array(workerData.ctrl);
const peak = new Float64Array(workerData.peak);
for (;;) {
  Atomics.wait(ctrl, 0, 0); // asleep while stopped
  if (Atomics.load(ctrl, 1) !== 0) break;
  const rss = process.memoryUsage.rss();
  if (rss > peak[0]) peak[0] = rss;
  Atomics.wait(ctrl, 1, 0, 2); // every 2 ms; woken early only to quit
}
`;

export class PeakMemory {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(8));
  private readonly peak = new Float64Array(new SharedArrayBuffer(8));
  private readonly worker: Worker;

  constructor() {
    const data = { ctrl: this.ctrl.buffer, peak: this.peak.buffer };
    this.worker = new Worker(SAMPLER, { eval: true, workerData: data });
    this.worker.unref();
  }

  /** Starts watching, from the resident memory now. */
  start(): void {
    this.peak[0] = process.memoryUsage.rss();
    Atomics.store(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
  }

  /** Stops watching; the largest resident memory since start(), in MiB. */
  stop(): number {
    Atomics.store(this.ctrl, 0, 0);
    return Math.max(this.peak[0], process.memoryUsage.rss()) / 2 ** 20;
  }

  close(): void {
    Atomics.store(this.ctrl, 1, 1);
    Atomics.store(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
    Atomics.notify(this.ctrl, 1);
    void this.worker.terminate();
  }
}
