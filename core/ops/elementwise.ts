// Elementwise ops. Each op computes its forward and, right beside it, the backward closure that
// maps d(loss)/d(out) to d(loss)/d(input) by the chain rule. Binary ops broadcast like NumPy.
import { allocateOutput, opResult, resultDtype, scalar, Tensor, type Storage } from '../tensor.ts';
import { broadcastShapes, shapeSize } from '../shape.ts';
import { expandData, sumToShape } from './strided.ts';
import { kernel } from '../kernels/registry.ts';
import '../kernels/ts.ts';

export type Operand = Tensor | number;

/** Both operands as tensors; a number becomes a scalar of the other operand's dtype. */
function operands(op: string, a: Operand, b: Operand): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${op}: needs at least one tensor`);
  const like = (typeof a === 'number' ? b : a) as Tensor;
  return [
    typeof a === 'number' ? scalar(a, like.dtype) : a,
    typeof b === 'number' ? scalar(b, like.dtype) : b,
  ];
}

/** Both operands expanded to their common broadcast shape (no copy when already that shape). */
function aligned(op: string, a: Tensor, b: Tensor) {
  const shape = broadcastShapes(op, a.shape, b.shape);
  const dtype = resultDtype(a, b);
  const x = expandData(a.data, a.shape, shape, dtype);
  const y = expandData(b.data, b.shape, shape, dtype);
  return { x, y, shape, dtype, n: x.length };
}

/**
 * Sends a gradient of the broadcast shape back to an input of its own shape. `owned`: no one else will
 * read or write `g` (a buffer the closure allocated, or the closure's own incoming gradient, which the
 * engine drops after the call), so a first gradient may adopt it; a reduced copy is always owned.
 */
function backTo(input: Tensor, g: Storage, shape: readonly number[], owned: boolean): void {
  if (!input.requiresGrad) return;
  const reduced = sumToShape(g, shape, input.shape, input.dtype);
  input.accumulateGrad(reduced, owned || reduced !== g);
}

/**
 * When an operand of shape `from` broadcast to `shape` repeats each of its values over a run of
 * consecutive elements, that run's length: `from` is `shape` with its leading and trailing dimensions
 * set to 1 (a per-channel value [B, C, 1, 1] or [1, C, 1, 1] added to [B, C, H, W], or a scalar), and
 * run r of the output takes value r % size(from). 0 for any other broadcast.
 */
function runLength(from: readonly number[], shape: readonly number[]): number {
  const pad = shape.length - from.length;
  const dim = (i: number) => (i < pad ? 1 : from[i - pad]);
  let k = shape.length;
  while (k > 0 && dim(k - 1) === 1) k--; // the trailing ones
  let j = k;
  while (j > 0 && dim(j - 1) === shape[j - 1]) j--; // the dimensions it shares
  for (let i = 0; i < j; i++) if (dim(i) !== 1) return 0;
  return shapeSize(shape.slice(k));
}

export function add(aIn: Operand, bIn: Operand): Tensor {
  const [a, b] = operands('add', aIn, bIn);
  const shape = broadcastShapes('add', a.shape, b.shape);
  const n = shapeSize(shape);
  const [big, small] = a.size === n ? [a, b] : [b, a];
  const inner = big.size === n && small.size < n ? runLength(small.shape, shape) : 0;
  const out = allocateOutput(resultDtype(a, b), n);
  if (inner >= 8) {
    // each value of the smaller operand covers `inner` consecutive outputs, cyclically: no expanded copy
    // (shorter runs, such as a bias along the last axis, go as fast through the expanded one)
    const [x, y] = [big.data, small.data];
    for (let r = 0, i = 0; i < n; r = r + 1 === y.length ? 0 : r + 1) {
      const v = y[r];
      for (const end = i + inner; i < end; i++) out[i] = x[i] + v;
    }
  } else {
    const { x, y } = aligned('add', a, b);
    for (let i = 0; i < n; i++) out[i] = x[i] + y[i];
  }
  return opResult('add', out, shape, [a, b], (g) => {
    backTo(a, g, shape, true); // d(a+b)/da = 1: a may adopt the incoming gradient, b gets a copy
    backTo(b, g, shape, false);
  });
}

export function sub(aIn: Operand, bIn: Operand): Tensor {
  const [a, b] = operands('sub', aIn, bIn);
  const { x, y, shape, dtype, n } = aligned('sub', a, b);
  const out = allocateOutput(dtype, n);
  for (let i = 0; i < n; i++) out[i] = x[i] - y[i];
  return opResult('sub', out, shape, [a, b], (g) => {
    if (b.requiresGrad) {
      const gb = allocateOutput(dtype, n);
      for (let i = 0; i < n; i++) gb[i] = -g[i];
      backTo(b, gb, shape, true);
    }
    backTo(a, g, shape, true); // after b's, which reads g: a may adopt it
  });
}

export function mul(aIn: Operand, bIn: Operand): Tensor {
  const [a, b] = operands('mul', aIn, bIn);
  const { x, y, shape, dtype, n } = aligned('mul', a, b);
  const out = allocateOutput(dtype, n);
  for (let i = 0; i < n; i++) out[i] = x[i] * y[i];
  return opResult('mul', out, shape, [a, b], (g) => {
    if (a.requiresGrad) {
      const ga = allocateOutput(dtype, n);
      for (let i = 0; i < n; i++) ga[i] = g[i] * y[i]; // d(xy)/dx = y
      backTo(a, ga, shape, true);
    }
    if (b.requiresGrad) {
      const gb = allocateOutput(dtype, n);
      for (let i = 0; i < n; i++) gb[i] = g[i] * x[i];
      backTo(b, gb, shape, true);
    }
  });
}

export function div(aIn: Operand, bIn: Operand): Tensor {
  const [a, b] = operands('div', aIn, bIn);
  const { x, y, shape, dtype, n } = aligned('div', a, b);
  const out = allocateOutput(dtype, n);
  for (let i = 0; i < n; i++) out[i] = x[i] / y[i];
  return opResult('div', out, shape, [a, b], (g) => {
    if (a.requiresGrad) {
      const ga = allocateOutput(dtype, n);
      for (let i = 0; i < n; i++) ga[i] = g[i] / y[i]; // d(x/y)/dx = 1/y
      backTo(a, ga, shape, true);
    }
    if (b.requiresGrad) {
      const gb = allocateOutput(dtype, n);
      for (let i = 0; i < n; i++) gb[i] = (-g[i] * out[i]) / y[i]; // d(x/y)/dy = -x/y^2
      backTo(b, gb, shape, true);
    }
  });
}

/** Elementwise power. A number exponent is the common case; a tensor exponent also gets a gradient. */
export function pow(aIn: Operand, pIn: Operand): Tensor {
  const [a, p] = operands('pow', aIn, pIn);
  const { x, y, shape, dtype, n } = aligned('pow', a, p);
  const out = allocateOutput(dtype, n);
  for (let i = 0; i < n; i++) out[i] = Math.pow(x[i], y[i]);
  return opResult('pow', out, shape, [a, p], (g) => {
    if (a.requiresGrad) {
      const ga = allocateOutput(dtype, n);
      // d(x^p)/dx = p x^(p-1); written without dividing by x so that x = 0 works for p >= 1
      for (let i = 0; i < n; i++) ga[i] = y[i] === 0 ? 0 : g[i] * y[i] * Math.pow(x[i], y[i] - 1);
      backTo(a, ga, shape, true);
    }
    if (p.requiresGrad) {
      const gp = allocateOutput(dtype, n);
      for (let i = 0; i < n; i++) gp[i] = g[i] * out[i] * Math.log(x[i]); // d(x^p)/dp = x^p ln x
      backTo(p, gp, shape, true);
    }
  });
}

/** Defines a unary op from its forward f(x) and its derivative written in terms of x and y = f(x). */
function unary(op: string, f: (x: number) => number, df: (x: number, y: number) => number) {
  return (a: Tensor): Tensor => {
    const n = a.size;
    const x = a.data;
    const out = allocateOutput(a.dtype, n);
    for (let i = 0; i < n; i++) out[i] = f(x[i]);
    return opResult(op, out, a.shape, [a], (g) => {
      const ga = allocateOutput(a.dtype, n);
      for (let i = 0; i < n; i++) ga[i] = g[i] * df(x[i], out[i]);
      a.accumulateGrad(ga, true);
    });
  };
}

const sigmoidOf = (x: number) => 1 / (1 + Math.exp(-x));

export const neg = unary(
  'neg',
  (x) => -x,
  () => -1,
);
export const exp = unary('exp', Math.exp, (_x, y) => y);
export const log = unary('log', Math.log, (x) => 1 / x);
export const sqrt = unary('sqrt', Math.sqrt, (_x, y) => 0.5 / y);
export const sin = unary('sin', Math.sin, (x) => Math.cos(x));
export const cos = unary('cos', Math.cos, (x) => -Math.sin(x));
export const tanh = unary('tanh', Math.tanh, (_x, y) => 1 - y * y);
export const sigmoid = unary('sigmoid', sigmoidOf, (_x, y) => y * (1 - y));
/**
 * ReLU, max(x, 0), written out rather than through unary(): every closure unary() makes shares one call
 * site for f, which therefore sees every unary op and cannot be inlined; the MLPs call ReLU on every
 * hidden activation, forward and backward.
 */
export function relu(a: Tensor): Tensor {
  const n = a.size;
  const x = a.data;
  const out = allocateOutput(a.dtype, n);
  for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? x[i] : 0;
  return opResult('relu', out, a.shape, [a], (g) => {
    const ga = allocateOutput(a.dtype, n);
    for (let i = 0; i < n; i++) ga[i] = x[i] > 0 ? g[i] : 0;
    a.accumulateGrad(ga, true);
  });
}
/** SiLU (swish), x * sigmoid(x): a registry kernel, because every ResNet block calls it twice. */
export function silu(a: Tensor): Tensor {
  const f64 = a.dtype === 'float64';
  const out = allocateOutput(a.dtype, a.size);
  kernel('siluForward', f64)({ x: a.data, out });
  return opResult('silu', out, a.shape, [a], (g) => {
    const gx = allocateOutput(a.dtype, a.size);
    kernel('siluBackward', f64)({ x: a.data, g, gx }); // d(x s)/dx = s + x s (1 - s), s = sigmoid(x)
    a.accumulateGrad(gx, true);
  });
}
export const abs = unary('abs', Math.abs, (x) => Math.sign(x));
export const square = unary(
  'square',
  (x) => x * x,
  (x) => 2 * x,
);
