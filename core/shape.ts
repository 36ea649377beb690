// Shape arithmetic shared by the ops: sizes, strides, NumPy broadcasting, axis normalisation.

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape ${formatShape(shape)}`);
    n *= d;
  }
  return n;
}

export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy broadcasting: align trailing dims; each pair must be equal or contain a 1. */
export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: cannot broadcast ${formatShape(a)} with ${formatShape(b)}`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Strides for reading a tensor of shape `from` as if it had the broadcast shape `to`:
 * broadcast (size-1 or missing) dimensions get stride 0.
 */
export function broadcastStrides(from: readonly number[], to: readonly number[]): number[] {
  const own = stridesOf(from);
  const offset = to.length - from.length;
  return to.map((_, i) => {
    const j = i - offset;
    return j < 0 || from[j] === 1 ? 0 : own[j];
  });
}

/** A possibly negative axis as an index in [0, ndim). */
export function normalizeAxis(op: string, axis: number, ndim: number): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= ndim) {
    throw new Error(`${op}: axis ${axis} is out of range for a tensor with ${ndim} dims`);
  }
  return a;
}
