// What the core asks of the JavaScript host, in one place, so that the same core runs in Node and in a
// browser tab (web/): whether this is Node, an environment variable (none in a page), and the cores.
import { availableParallelism } from 'node:os'; // in the page's bundle a stub, never called there

/** True under Node (worker threads included), false in a page or a Web Worker. */
export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** An environment variable under Node; undefined in a page. */
export function envVar(name: string): string | undefined {
  return isNode ? process.env[name] : undefined;
}

/** The logical cores this program may use. */
export function cpuCount(): number {
  if (isNode) return availableParallelism();
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

/** Whether threads can share memory here: always under Node; in a page, only when cross-origin isolated. */
export function sharedMemory(): boolean {
  if (isNode) return true;
  return (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
}
