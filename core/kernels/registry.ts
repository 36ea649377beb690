// The kernel registry, after TensorFlow.js: each hot kernel has one name and one implementation per
// backend. Ops call `kernels()` and never know which backend answered. The plain TypeScript backend
// ('ts') implements every kernel and is the readable reference; faster backends register the kernels
// they accelerate and fall back to 'ts' for the rest. Float64 tensors (used for gradient checks)
// always run on 'ts'.
import type { Storage } from '../tensor.ts';

/** C[m,n] (+)= op(A)[m,k] * op(B)[k,n], row-major; op(A) = A^T when transA (A stored [k,m]). */
export interface GemmArgs {
  a: Storage;
  b: Storage;
  c: Storage;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Add into C instead of overwriting it. */
  accumulate: boolean;
}

export interface KernelSet {
  gemm(args: GemmArgs): void;
}

export type KernelName = keyof KernelSet;

const backends = new Map<string, Partial<KernelSet>>();
let active = 'ts';

export function registerBackend(name: string, impls: Partial<KernelSet>): void {
  backends.set(name, { ...backends.get(name), ...impls });
}

export function setBackend(name: string): void {
  if (!backends.has(name)) {
    throw new Error(`unknown backend '${name}' (available: ${[...backends.keys()].join(', ')})`);
  }
  active = name;
}

export function getBackend(): string {
  return active;
}

/** The kernels one backend registered itself (no fallback), for parity tests and the bench. */
export function backendKernels(name: string): Partial<KernelSet> {
  const impls = backends.get(name);
  if (!impls) throw new Error(`unknown backend '${name}'`);
  return impls;
}

export function listBackends(): string[] {
  return [...backends.keys()];
}

/** The implementation of kernel `name` on the active backend, or the reference one. */
export function kernel<K extends KernelName>(name: K, float64 = false): KernelSet[K] {
  const impl = float64 ? undefined : backends.get(active)?.[name];
  const reference = backends.get('ts')?.[name];
  const chosen = impl ?? reference;
  if (!chosen) throw new Error(`kernel '${name}' has no implementation (is core/kernels/ts.ts loaded?)`);
  return chosen as KernelSet[K];
}
