// Starting the workers of this folder (grad-worker.ts, forward-worker.ts), and a worker's side of that
// start, under Node or in a page. Under Node a worker is a worker_threads Worker handed its setup as
// workerData. In a page it is a module Web Worker, bundled beside the page's engine by web/build.ts and
// handed its setup as its first message; the page's engine is itself a Web Worker, which may block on
// Atomics.wait as the threads here do.
import { parentPort, Worker, workerData } from 'node:worker_threads'; // in a page's bundle a stub, never called there
import { isNode } from '../env.ts';

/** A Node worker thread running `name`.ts of this folder, through tsx's loader when the sources are TypeScript. */
export function spawnWorker(setup: unknown, name = 'grad-worker'): Worker {
  const url = new URL(`./${name}${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const load = `import(${JSON.stringify(url.href)})`;
  const source = url.pathname.endsWith('.ts')
    ? `import('tsx/esm/api').then(({ register }) => { register(); return ${load}; })`
    : load;
  const worker = new Worker(source, { eval: true, workerData: setup });
  worker.unref(); // a finished or interrupted program must not wait for its workers
  return worker;
}

/** Resolves on a Node worker's first message, `{ ready }`; rejects on `{ error }` or a crash. */
export function ready(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { error?: string }) => {
      worker.off('error', onError);
      if (m.error !== undefined) reject(new Error(`worker failed to start: ${m.error}`));
      else resolve();
    };
    const onError = (e: Error) => reject(new Error(`worker failed to start: ${e.message}`));
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

/** A started worker, under either host: all a caller that talks through shared memory needs of it. */
export type Thread = { terminate(): unknown };

/** Starts worker `name` with `setup` and resolves once it has said it is ready. */
export async function startThread(setup: unknown, name: string): Promise<Thread> {
  if (isNode) {
    const worker = spawnWorker(setup, name);
    await ready(worker).catch((e: Error) => {
      void worker.terminate();
      throw e;
    });
    return worker;
  }
  const worker = new globalThis.Worker(new URL(`./${name}.js`, import.meta.url), { type: 'module' });
  await new Promise<void>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ error?: string }>) =>
      e.data.error === undefined ? resolve() : reject(new Error(`worker failed to start: ${e.data.error}`));
    worker.onerror = (e) =>
      reject(new Error(`worker ${name}.js failed to start: ${e.message || 'no message'}`));
    worker.postMessage(setup);
  }).catch((e: Error) => {
    worker.terminate();
    throw e;
  });
  return worker;
}

/** A worker's side: the setup its creator passed, and how to answer it. */
export async function workerSide<T>(name: string): Promise<{ setup: T; post: (m: unknown) => void }> {
  if (isNode) {
    const port = parentPort;
    if (!port) throw new Error(`${name} runs as a worker thread of core/parallel/`);
    return { setup: workerData as T, post: (m) => port.postMessage(m) };
  }
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<T>) => void) | null;
    postMessage: (m: unknown) => void;
  };
  const setup = await new Promise<T>((resolve) => (scope.onmessage = (e) => resolve(e.data)));
  scope.onmessage = null;
  return { setup, post: (m) => scope.postMessage(m) };
}
