// Modules hold parameters and sub-modules. Names follow PyTorch's state_dict(): a parameter's key is
// the path of attribute names (or list indices) from the root, joined by dots, e.g. `net.0.weight`,
// so checkpoints move between this code and PyTorch unchanged.
import { Tensor, type DType } from '../tensor.ts';
import { formatShape, sameShape } from '../shape.ts';

/** Marks a tensor as a trainable parameter. */
export function parameter(t: Tensor): Tensor {
  t.requiresGrad = true;
  t.isParameter = true;
  return t;
}

export abstract class Module {
  /** Direct children and parameters, found on the instance's own fields in declaration order. */
  protected entries(): { params: [string, Tensor][]; children: [string, Module][] } {
    const params: [string, Tensor][] = [];
    const children: [string, Module][] = [];
    for (const [key, value] of Object.entries(this)) {
      if (value instanceof Tensor && value.isParameter) params.push([key, value]);
      else if (value instanceof Module) children.push([key, value]);
    }
    return { params, children };
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const { params, children } = this.entries();
    const out: [string, Tensor][] = params.map(([k, p]) => [prefix + k, p]);
    for (const [k, child] of children) out.push(...child.namedParameters(`${prefix}${k}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Parameter tensors by PyTorch key (shared, not copied). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }

  /** Copies values into the parameters; every key must be present with the right shape. */
  loadStateDict(state: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>): void {
    const own = this.stateDict();
    for (const [key, p] of own) {
      const src = state.get(key);
      if (!src) throw new Error(`loadStateDict: missing tensor '${key}' (expected ${formatShape(p.shape)})`);
      if (!sameShape(src.shape, p.shape)) {
        throw new Error(
          `loadStateDict: tensor '${key}' has shape ${formatShape(src.shape)}, expected ${formatShape(p.shape)}`,
        );
      }
      p.data.set(src.data);
    }
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    if (unexpected.length > 0) throw new Error(`loadStateDict: unexpected tensor '${unexpected[0]}'`);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Converts every parameter to `dtype` in place (float64 for gradient checks). */
  toDtype(dtype: DType): this {
    const fields = this as unknown as Record<string, unknown>;
    for (const [key, p] of this.entries().params) fields[key] = parameter(p.astype(dtype));
    for (const [, child] of this.entries().children) child.toDtype(dtype);
    return this;
  }
}

/** A list of sub-modules named by their index, like torch.nn.ModuleList. */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
  }
  protected override entries() {
    return {
      params: [] as [string, Tensor][],
      children: this.items.map((m, i): [string, Module] => [String(i), m]),
    };
  }
  get length(): number {
    return this.items.length;
  }
  at(i: number): M {
    return this.items[i];
  }
}
