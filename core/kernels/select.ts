// Choosing the backend that runs the registry kernels. Backends register themselves when a program
// imports them (core/kernels/wasm/index.ts, gpu/index.ts; 'ts' always, through the ops), as
// TensorFlow.js's backends do: the core never imports one. 'auto' measures every available backend
// per kernel and shape (auto.ts) over exactly the kernels of the table (table.ts).
import { backendInfo, backendKernels, listBackends, registerBackend, setBackend, type KernelSet } from './registry.ts'; // prettier-ignore
import { AutoSelector } from './auto.ts';
export { adoptAutoLock, autoLock } from './auto.ts';
import { KERNEL_NAMES } from './table.ts';
import './ts.ts';

/** The backends a program can choose: 'auto' and every backend registered so far, best ranked first. */
export function backendChoices(): string[] {
  const real = listBackends().filter((b) => backendInfo(b) !== undefined);
  return ['auto', ...real.sort((a, b) => rankOf(a) - rankOf(b))];
}

const rankOf = (name: string) => backendInfo(name)?.rank ?? Infinity;

let selector: AutoSelector | null = null;

/** Makes a registered backend ready and returns what it says will run. */
async function activate(name: string): Promise<string> {
  const info = backendInfo(name);
  if (!info) {
    throw new Error(`unknown backend '${name}' (choose one of ${backendChoices().join(', ')})`);
  }
  if (info.unavailable) throw new Error(`backend ${name}: ${info.unavailable}`);
  return info.activate();
}

/** Activates a backend and returns a one-line description of what will run. */
export async function useBackend(name: string, opts: { log?: (line: string) => void } = {}): Promise<string> {
  if (name !== 'auto') {
    const described = await activate(name);
    setBackend(name);
    return `backend ${described}`;
  }
  const candidates = backendChoices().filter((b) => b !== 'auto' && !backendInfo(b)?.unavailable);
  const described: string[] = [];
  for (const b of candidates) described.push(await activate(b));
  selector = new AutoSelector(candidates, backendKernels, described.join('-'), opts.log);
  const dispatch: Partial<KernelSet> = {};
  for (const k of KERNEL_NAMES) (dispatch as Record<string, unknown>)[k] = selector.dispatcher(k);
  registerBackend('auto', dispatch);
  setBackend('auto');
  return `backend auto: fastest per kernel and shape, measured, among ${described.join(', ')}`;
}

/** What 'auto' chose so far (empty for the other backends). */
export function autoDecisions(): Map<string, string> {
  return selector?.decisions() ?? new Map();
}

/** Fixes every backend's kernel threads (data-parallel training shares the cores out); null: defaults. */
export function setKernelThreads(n: number | null): void {
  for (const b of listBackends()) backendInfo(b)?.setThreads?.(n);
}

/** The modules that registered the backends, for a worker thread to import (core/parallel/). */
export function backendModules(): string[] {
  return listBackends().flatMap((b) => backendInfo(b)?.module ?? []);
}

/** Whether a backend's device is shared by every thread, so that data-parallel training runs one. */
export function sharedDevice(name: string): boolean {
  return backendInfo(name)?.shared === true;
}
