// Worker threads that run the same WebAssembly kernels on one shared memory, for a synchronous caller.
//
// The autograd engine is synchronous, so the calling thread hands each worker a list of kernel calls
// through shared memory, does its own share, then blocks (Atomics.wait, which Node allows on the main
// thread) until the workers are done. Workers spin briefly before sleeping: on this kind of machine a
// sleeping core takes tens of microseconds to wake, more than a small gemm takes. In a page the workers
// are Web Workers, which may block the same way (web/ runs the core in a Web Worker, never on the page's
// own thread).
import { Worker } from 'node:worker_threads'; // in the page's bundle a stub, never called there
import { isNode } from '../../env.ts';
import { KERNEL_EXPORTS } from './gemm-module.ts';

// ctrl (Int32): 0 generation, 1 workers done, 2 quit, 3 error flag, 4 active workers, 5 workers started,
// 8.. job list per worker
const GENERATION = 0;
const DONE = 1;
const QUIT = 2;
const ERROR = 3;
const ACTIVE = 4;
const STARTED = 5;
const LISTS = 8;
const SPIN = 2000;

// The worker is plain JavaScript evaluated from this string, so it needs no TypeScript loader. Node hands
// it its data as workerData; a Web Worker receives it as its first message.
const NODE_PRELUDE = `run(require('node:worker_threads').workerData);`;
const WEB_PRELUDE = `self.onmessage = (e) => run(e.data);`;
const WORKER_SOURCE = `
function run({ module, memory, ctrl, index, names, spin }) {
const exports = new WebAssembly.Instance(module, { env: { mem: memory } }).exports;
const fns = names.map((n) => exports[n]);
Atomics.add(ctrl, ${STARTED}, 1);
let generation = 0;
for (;;) {
  for (let s = spin; Atomics.load(ctrl, ${GENERATION}) === generation; ) {
    if (s-- <= 0) Atomics.wait(ctrl, ${GENERATION}, generation);
  }
  generation = Atomics.load(ctrl, ${GENERATION});
  if (Atomics.load(ctrl, ${QUIT}) !== 0) break;
  if (index >= Atomics.load(ctrl, ${ACTIVE})) continue;
  try {
    const list = new Int32Array(memory.buffer, ctrl[${LISTS} + index]);
    const count = list[0];
    for (let j = 0, p = 1; j < count; j++, p += 9) {
      fns[list[p]](list[p + 1], list[p + 2], list[p + 3], list[p + 4], list[p + 5], list[p + 6], list[p + 7], list[p + 8]);
    }
  } catch (err) {
    Atomics.store(ctrl, ${ERROR}, 1);
  }
  Atomics.add(ctrl, ${DONE}, 1);
  Atomics.notify(ctrl, ${DONE});
}
}
`;

/** What the team needs of a thread, in Node or in a page. */
type Thread = { terminate(): unknown };

function startThread(data: object): Thread {
  if (isNode) {
    const worker = new Worker(`${WORKER_SOURCE}\n${NODE_PRELUDE}`, { eval: true, workerData: data });
    worker.unref(); // idle workers must not keep a finished program alive
    return worker;
  }
  const source = new Blob([`${WORKER_SOURCE}\n${WEB_PRELUDE}`], { type: 'text/javascript' });
  const worker = new globalThis.Worker(URL.createObjectURL(source));
  worker.postMessage(data);
  return worker;
}

export class WorkerTeam {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(4 * (LISTS + 64)));
  private readonly workers: Thread[] = [];
  private active = 0;

  constructor(count: number, module: WebAssembly.Module, memory: WebAssembly.Memory) {
    for (let index = 0; index < count; index++) {
      const data = { module, memory, ctrl: this.ctrl, index, names: [...KERNEL_EXPORTS], spin: SPIN };
      this.workers.push(startThread(data));
    }
  }

  /**
   * Resolves once every worker runs. A page must wait for this before the first call: a browser may
   * start a Web Worker only when the thread that created it returns to its event loop, so blocking on
   * one that has not started would never end. Node starts them on their own.
   */
  async ready(): Promise<void> {
    while (Atomics.load(this.ctrl, STARTED) < this.workers.length)
      await new Promise((ok) => setTimeout(ok, 5));
  }

  /** Wakes one worker per job list (byte offsets into the shared memory). */
  start(lists: number[]): void {
    if (lists.length > this.workers.length) throw new Error('WorkerTeam: more job lists than workers');
    lists.forEach((at, i) => (this.ctrl[LISTS + i] = at));
    this.active = lists.length;
    Atomics.store(this.ctrl, ACTIVE, lists.length);
    Atomics.store(this.ctrl, DONE, 0);
    Atomics.add(this.ctrl, GENERATION, 1);
    Atomics.notify(this.ctrl, GENERATION);
  }

  /** Blocks until every started worker has finished its list. */
  finish(): void {
    const ctrl = this.ctrl;
    for (let spins = SPIN; ;) {
      const done = Atomics.load(ctrl, DONE);
      if (done >= this.active) break;
      if (spins-- <= 0) Atomics.wait(ctrl, DONE, done, 50);
    }
    if (Atomics.exchange(ctrl, ERROR, 0) !== 0) throw new Error('wasm gemm: a worker thread failed');
  }

  destroy(): void {
    Atomics.store(this.ctrl, QUIT, 1);
    Atomics.add(this.ctrl, GENERATION, 1);
    Atomics.notify(this.ctrl, GENERATION);
    for (const w of this.workers) void w.terminate();
  }
}
