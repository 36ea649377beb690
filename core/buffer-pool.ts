// Reusing float32 buffers between forward passes that allocate the same sizes again and again (a
// sampler calls the UNet with one shape per step). A fresh multi-megabyte array costs far more than the
// work that fills it: the operating system maps and zeroes every page on first touch, and a browser's
// allocator returns large blocks to the system as soon as they are collected, so each step pays again.
// Inside a scope (tensor.ts's tidy, TensorFlow.js's name for it) allocations draw on a pool keyed by
// length, and small arrays are cut from slabs that earlier scopes released; when the scope ends, the
// buffers and slabs it allocated go back to the pool, except those the caller keeps. Outside any scope
// large arrays are fresh and small ones are cut from fresh slabs.

/** Buffers shorter than this are left to the garbage collector (pooling them would save nothing). */
const MIN_POOLED = 1 << 14;
/** The most the pool holds, in bytes; buffers released past it are simply dropped. */
const MAX_POOL_BYTES = 1 << 30;

const free = new Map<number, Float32Array[]>();
let pooledBytes = 0;

/** A slab being cut into small arrays: how far, and whether it was used before (so its arrays need zeroing). */
type Cutter = { slab: ArrayBuffer | null; top: number; reused: boolean };
/** What one open scope has allocated: pooled buffers, and the slabs its small arrays were cut from. */
type Scope = Cutter & { buffers: Float32Array[]; slabs: ArrayBuffer[] };
/** The open scopes, innermost last. */
const scopes: Scope[] = [];

/**
 * Whether a reused array that its op promised to write whole (`zeroed` false) is filled with NaN instead
 * of being left as the last scope wrote it, so that a test sees any element the op failed to write.
 */
let poison = false;

/** Tests only: fill reused arrays that are not zeroed with NaN (see `poison`). */
export function setPoison(on: boolean): void {
  poison = on;
}

/** What a reused array gets before it is handed out: zeros, NaN (poison), or nothing. */
function refill(array: Float32Array, zeroed: boolean): Float32Array {
  return zeroed ? array.fill(0) : poison ? array.fill(NaN) : array;
}

/**
 * A buffer of n floats from the pool inside a scope, or null (allocate a fresh one). Zeroed unless
 * `zeroed` is false, for an output its op writes whole: then it holds whatever the last user left.
 */
export function takeBuffer(n: number, zeroed = true): Float32Array | null {
  const scope = scopes[scopes.length - 1];
  if (!scope || n < MIN_POOLED) return null;
  const reused = free.get(n)?.pop();
  if (reused) pooledBytes -= 4 * n;
  const buffer = reused ? refill(reused, zeroed) : new Float32Array(n);
  scope.buffers.push(buffer);
  return buffer;
}

export function openScope(): void {
  scopes.push({ buffers: [], slabs: [], slab: null, top: SLAB, reused: false });
}

/**
 * Ends the innermost scope: its buffers and slabs return to the pool, except those whose memory `keep`
 * holds, which pass to the enclosing scope (if any) to be released when it ends.
 */
export function closeScope(keep: ReadonlySet<ArrayBufferLike>): void {
  const scope = scopes.pop();
  if (!scope) return;
  const outer = scopes[scopes.length - 1];
  for (const buffer of scope.buffers) {
    if (buffer.length === 0) continue; // moved to another thread (transferred): nothing to reuse
    if (keep.has(buffer.buffer)) {
      outer?.buffers.push(buffer);
    } else if (pooledBytes + 4 * buffer.length <= MAX_POOL_BYTES) {
      let list = free.get(buffer.length);
      if (!list) free.set(buffer.length, (list = []));
      list.push(buffer);
      pooledBytes += 4 * buffer.length;
    }
  }
  for (const slab of scope.slabs) {
    if (keep.has(slab)) outer?.slabs.push(slab);
    else if (freeSlabs.length < MAX_FREE_SLABS) freeSlabs.push(slab);
  }
}

/** Arrays up to this many floats are cut from a slab. */
const MAX_SMALL = 1 << 12;
/** Floats per slab (1 MiB). */
const SLAB = 1 << 18;
/** Slabs kept for reuse by the next scopes. */
const MAX_FREE_SLABS = 64;
const freeSlabs: ArrayBuffer[] = [];
/** Outside any scope: the slab being cut. A slab is collected once no array cut from it is alive. */
const loose: Cutter = { slab: null, top: SLAB, reused: false };

/**
 * A zeroed float32 array of n <= MAX_SMALL floats cut from a slab, or null for a larger one. Its
 * `buffer` is the slab: never transfer it to another thread.
 *
 * Outside a scope the slab is fresh memory, never reused. Inside one, it comes from the slabs earlier
 * scopes released, zeroed again: a browser hands out fresh ArrayBuffer memory far more slowly than it
 * reuses memory it has touched (docs/web.md), and a training step of a toy makes dozens of small arrays.
 */
export function smallArray(n: number, zeroed = true): Float32Array | null {
  if (n > MAX_SMALL || n === 0) return null;
  const scope = scopes[scopes.length - 1];
  const c: Cutter = scope ?? loose;
  if (c.slab === null || c.top + n > SLAB) {
    const reused = scope ? freeSlabs.pop() : undefined;
    c.slab = reused ?? new ArrayBuffer(4 * SLAB);
    c.reused = reused !== undefined;
    scope?.slabs.push(c.slab);
    c.top = 0;
  }
  const array = new Float32Array(c.slab, 4 * c.top, n);
  if (c.reused) refill(array, zeroed); // only what is cut: a step uses a small part of a slab
  c.top += (n + 3) & ~3; // 16-byte aligned, as the kernels' SIMD loads like
  return array;
}

/** Drops every pooled buffer and slab (the memory goes back to the garbage collector). */
export function clearPool(): void {
  free.clear();
  pooledBytes = 0;
  freeSlabs.length = 0;
}
