// Reusing float32 buffers between forward passes that allocate the same sizes again and again (a
// sampler calls the UNet with one shape per step). A fresh multi-megabyte array costs far more than the
// work that fills it: the operating system maps and zeroes every page on first touch, and a browser's
// allocator returns large blocks to the system as soon as they are collected, so each step pays again.
// Inside a scope (tensor.ts's tidy, TensorFlow.js's name for it) allocations draw on a pool keyed by
// length; when the scope ends, the buffers it allocated go back to the pool, except those the caller
// keeps. Outside any scope nothing changes.

/** Buffers shorter than this are left to the garbage collector (pooling them would save nothing). */
const MIN_POOLED = 1 << 14;
/** The most the pool holds, in bytes; buffers released past it are simply dropped. */
const MAX_POOL_BYTES = 1 << 30;

const free = new Map<number, Float32Array[]>();
let pooledBytes = 0;
/** The buffers allocated in each open scope, innermost last. */
const scopes: Float32Array[][] = [];

/** A zeroed buffer of n floats from the pool inside a scope, or null (allocate a fresh one). */
export function takeBuffer(n: number): Float32Array | null {
  const scope = scopes[scopes.length - 1];
  if (!scope || n < MIN_POOLED) return null;
  const reused = free.get(n)?.pop();
  if (reused) pooledBytes -= 4 * n;
  const buffer = reused ? reused.fill(0) : new Float32Array(n);
  scope.push(buffer);
  return buffer;
}

export function openScope(): void {
  scopes.push([]);
}

/**
 * Ends the innermost scope: its buffers return to the pool, except those whose memory `keep` holds,
 * which pass to the enclosing scope (if any) to be released when it ends.
 */
export function closeScope(keep: ReadonlySet<ArrayBufferLike>): void {
  const scope = scopes.pop() ?? [];
  const outer = scopes[scopes.length - 1];
  for (const buffer of scope) {
    if (keep.has(buffer.buffer)) {
      outer?.push(buffer);
    } else if (pooledBytes + 4 * buffer.length <= MAX_POOL_BYTES) {
      let list = free.get(buffer.length);
      if (!list) free.set(buffer.length, (list = []));
      list.push(buffer);
      pooledBytes += 4 * buffer.length;
    }
  }
}

/** Arrays up to this many floats are cut from a slab. */
const MAX_SMALL = 1 << 12;
/** Floats per slab (1 MiB). A slab is collected once no array cut from it is alive. */
const SLAB = 1 << 18;
let slab = new ArrayBuffer(0);
let slabTop = SLAB;

/**
 * A zeroed float32 array of n <= MAX_SMALL floats cut from the current slab (fresh memory, never reused,
 * hence zero), or null for a larger one. Its `buffer` is the slab: never transfer it to another thread.
 */
export function smallArray(n: number): Float32Array | null {
  if (n > MAX_SMALL || n === 0) return null;
  if (slabTop + n > SLAB) {
    slab = new ArrayBuffer(4 * SLAB);
    slabTop = 0;
  }
  const array = new Float32Array(slab, 4 * slabTop, n);
  slabTop += (n + 3) & ~3; // 16-byte aligned, as the kernels' SIMD loads like
  return array;
}

/** Drops every pooled buffer (the memory goes back to the garbage collector). */
export function clearPool(): void {
  free.clear();
  pooledBytes = 0;
}
