// The Tensor and the reverse-mode autograd engine.
//
// A Tensor is a contiguous, row-major block of numbers (Float32Array, or Float64Array for precise
// gradient checks) with a shape. Every op that produces a tensor from others records, next to its
// forward computation, a closure that turns the gradient of its output into gradients of its inputs
// (micrograd's idea, on arrays). `backward()` walks that graph in reverse topological order.
import { shapeSize, stridesOf, formatShape } from './shape.ts';
import { closeScope, openScope, smallArray, takeBuffer } from './buffer-pool.ts';

export type DType = 'float32' | 'float64';
export type Storage = Float32Array | Float64Array;

/**
 * A zeroed array of n numbers. float32: a large one from the buffer pool inside tidy, else fresh; a small
 * one a view into a shared slab (core/buffer-pool.ts's smallArray), since a browser allocates and
 * tracks each ArrayBuffer at a cost a tiny op (the toys' 32-wide layers) cannot repay.
 */
export function allocate(dtype: DType, n: number): Storage {
  if (dtype === 'float64') return new Float64Array(n);
  return smallArray(n) ?? takeBuffer(n) ?? new Float32Array(n);
}

/**
 * `allocate` for an output its op writes whole before anyone reads it: inside a scope, a reused buffer
 * is not zeroed first (a forward pass would otherwise write every activation twice).
 */
export function allocateOutput(dtype: DType, n: number): Storage {
  if (dtype === 'float64') return new Float64Array(n);
  return smallArray(n, false) ?? takeBuffer(n, false) ?? new Float32Array(n);
}

export function dtypeOf(data: Storage): DType {
  return data instanceof Float64Array ? 'float64' : 'float32';
}

/** The wider dtype of the inputs: mixing float32 with float64 computes in float64. */
export function resultDtype(...ts: Tensor[]): DType {
  return ts.some((t) => t.dtype === 'float64') ? 'float64' : 'float32';
}

/** t's values in `dtype`: its own storage, or a float64 copy when an op computes wider than t. */
export function dataAs(t: Tensor, dtype: DType): Storage {
  return t.dtype === dtype ? t.data : Float64Array.from(t.data);
}

let gradEnabled = true;

/** Runs `fn` without recording the graph: for sampling and evaluation, where no gradient is needed. */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Runs `fn` without gradients; the float32 buffers the ops allocate inside go back to a pool when it
 * returns, for the next call to reuse (core/buffer-pool.ts), except those behind the tensors `fn`
 * returns. For inference only: nothing made inside may be kept but what `fn` returns.
 */
export function tidy<T extends Tensor | Tensor[]>(fn: () => T): T {
  openScope();
  let result: T | undefined;
  try {
    result = noGrad(fn);
    return result;
  } finally {
    const kept = result === undefined ? [] : Array.isArray(result) ? result : [result];
    closeScope(new Set(kept.map((t) => t.data.buffer)));
  }
}

/**
 * One training step whose every array goes back to the pool when it returns, as tidy's do, but with
 * gradients on. Nothing the step makes may outlive it: it returns a number (the loss), and the
 * gradients of `params` are cleared when it ends, once the optimiser has used them. The parameters and
 * the optimiser's state, made before the step, are updated in place and stay. An async step (one that
 * waits for data-parallel workers) ends when its promise settles; nothing else may run tensor ops while
 * it waits.
 */
export function stepScope(params: readonly Tensor[], fn: () => number): number;
export function stepScope(params: readonly Tensor[], fn: () => Promise<number>): Promise<number>;
export function stepScope(
  params: readonly Tensor[],
  fn: () => number | Promise<number>,
): number | Promise<number> {
  openScope();
  const end = () => {
    for (const p of params) p.grad = null;
    closeScope(new Set());
  };
  let result: number | Promise<number>;
  try {
    result = fn();
  } catch (e) {
    end();
    throw e;
  }
  if (result instanceof Promise) return result.finally(end);
  end();
  return result;
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

export class Tensor {
  readonly data: Storage;
  readonly shape: readonly number[];
  /** Accumulated d(loss)/d(this), same shape and dtype, after `backward()`. */
  grad: Tensor | null = null;
  requiresGrad: boolean;
  /** Name of the op that produced this tensor, for error messages and debugging. */
  readonly op: string;
  /** Set on tensors registered as module parameters. */
  isParameter = false;
  private readonly parents: readonly Tensor[];
  private readonly backwardFn: ((grad: Storage) => void) | null;

  constructor(
    data: Storage,
    shape: readonly number[],
    opts: {
      requiresGrad?: boolean;
      op?: string;
      parents?: readonly Tensor[];
      backward?: (grad: Storage) => void;
    } = {},
  ) {
    const size = shapeSize(shape);
    if (data.length !== size) {
      throw new Error(
        `Tensor: data has ${data.length} elements but shape ${formatShape(shape)} needs ${size}`,
      );
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = opts.requiresGrad ?? false;
    this.op = opts.op ?? 'leaf';
    this.parents = opts.parents ?? [];
    this.backwardFn = opts.backward ?? null;
  }

  get size(): number {
    return this.data.length;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get dtype(): DType {
    return dtypeOf(this.data);
  }
  /** Row-major strides in elements; every tensor here is contiguous. */
  get strides(): number[] {
    return stridesOf(this.shape);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor of shape ${formatShape(this.shape)} is not a scalar`);
    return this.data[0];
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  /** The same numbers, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  /** A copy of the numbers in another dtype, cut from the graph. */
  astype(dtype: DType): Tensor {
    const out = allocateOutput(dtype, this.size);
    out.set(this.data);
    return new Tensor(out, this.shape);
  }

  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape, { requiresGrad: this.requiresGrad });
  }

  /**
   * Adds `g` into this tensor's gradient (called by the backward closures of the ops that used it).
   * `owned` says the caller allocated `g` for this call and keeps no other reference to it, so a first
   * gradient can adopt the buffer instead of copying it.
   */
  accumulateGrad(g: Storage, owned = false): void {
    if (g.length !== this.size) {
      throw new Error(
        `${this.op}: gradient of size ${g.length} for a tensor of shape ${formatShape(this.shape)}`,
      );
    }
    if (this.grad === null && owned && dtypeOf(g) === this.dtype) {
      this.grad = new Tensor(g, this.shape);
      return;
    }
    if (this.grad === null) {
      const copy = allocateOutput(this.dtype, this.size);
      copy.set(g);
      this.grad = new Tensor(copy, this.shape);
      return;
    }
    const acc = this.grad.data;
    for (let i = 0; i < acc.length; i++) acc[i] += g[i];
  }

  /**
   * Backpropagates from this tensor. A scalar seeds with 1; otherwise pass the upstream gradient.
   * Gradients of intermediate tensors are dropped once used, as in PyTorch; leaves keep theirs.
   */
  backward(seed?: Tensor): void {
    if (!this.requiresGrad) throw new Error(`backward: this tensor (from ${this.op}) does not require grad`);
    if (seed === undefined && this.size !== 1) {
      throw new Error(
        `backward: output of shape ${formatShape(this.shape)} is not a scalar; pass a seed gradient`,
      );
    }
    const order = topologicalOrder(this);
    const seedData = allocateOutput(this.dtype, this.size);
    if (seed) seedData.set(seed.data);
    else seedData.fill(1);
    this.accumulateGrad(seedData);
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i];
      if (node.backwardFn === null || node.grad === null) continue;
      node.backwardFn(node.grad.data);
      node.grad = null; // an intermediate: its gradient has been passed on
    }
  }

  toString(): string {
    const head = Array.from(this.data.subarray(0, 8), (v) => v.toPrecision(4)).join(', ');
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}, [${head}${this.size > 8 ? ', ...' : ''}])`;
  }

  /** Parents in the graph, for the engine. */
  get inputs(): readonly Tensor[] {
    return this.parents;
  }
}

/** Every tensor `root` depends on through tensors that require grad, inputs before outputs. */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative DFS: a UNet's graph is deep enough to overflow a recursive one.
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, next] = top;
    if (next < node.inputs.length) {
      top[1] = next + 1;
      const child = node.inputs[next];
      if (child.requiresGrad && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order;
}

/**
 * Creates the output of an op. When gradients are enabled and some input requires one, the output
 * joins the graph with `backward`, which receives d(loss)/d(output) and must call
 * `input.accumulateGrad(...)` for each input that requires grad.
 */
export function opResult(
  op: string,
  data: Storage,
  shape: readonly number[],
  inputs: readonly Tensor[],
  backward: (grad: Storage) => void,
): Tensor {
  const tracked = gradEnabled && inputs.some((t) => t.requiresGrad);
  if (!tracked) return new Tensor(data, shape, { op });
  return new Tensor(data, shape, { op, requiresGrad: true, parents: inputs, backward });
}

// ---------------------------------------------------------------------------------------------
// Creation

export type NestedArray = number | NestedArray[];

function inferShape(values: NestedArray): number[] {
  const shape: number[] = [];
  let v: NestedArray = values;
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

function flatten(values: NestedArray): number[] {
  if (!Array.isArray(values)) return [values];
  const out: number[] = [];
  for (const v of values) out.push(...flatten(v));
  return out;
}

/** A tensor from (nested) arrays or a typed array with an explicit shape. */
export function tensor(
  values: NestedArray | ArrayLike<number>,
  shape?: readonly number[],
  opts: { dtype?: DType; requiresGrad?: boolean } = {},
): Tensor {
  const dtype = opts.dtype ?? 'float32';
  let flat: ArrayLike<number>;
  let finalShape: readonly number[];
  if (typeof values === 'number') {
    flat = [values];
    finalShape = shape ?? [];
  } else if (Array.isArray(values)) {
    finalShape = shape ?? inferShape(values);
    flat = flatten(values);
  } else {
    flat = values as ArrayLike<number>;
    finalShape = shape ?? [flat.length];
  }
  const data = allocate(dtype, flat.length);
  data.set(flat);
  return new Tensor(data, finalShape, { requiresGrad: opts.requiresGrad });
}

/** A column vector, shape [n, 1]: one value per row of a batch. */
export function column(values: ArrayLike<number>, dtype: DType = 'float32'): Tensor {
  return tensor(values, [values.length, 1], { dtype });
}

export function zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return new Tensor(allocate(dtype, shapeSize(shape)), shape);
}

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  const data = allocate(dtype, shapeSize(shape));
  data.fill(value);
  return new Tensor(data, shape);
}

export function ones(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return full([], value, dtype);
}
