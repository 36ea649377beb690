// Modules: PyTorch state_dict names, default initialisation, loading, float64 conversion.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Linear,
  Module,
  ModuleList,
  ReLU,
  Rng,
  Sequential,
  SiLU,
  tensor,
  type Tensor,
} from '../../core/index.ts';

class Net extends Module {
  net: Sequential;
  heads: ModuleList<Linear>;
  constructor(rng: Rng) {
    super();
    this.net = new Sequential(new Linear(2, 8, rng), new ReLU(), new Linear(8, 1, rng));
    this.heads = new ModuleList([new Linear(1, 1, rng), new Linear(1, 1, rng, { bias: false })]);
  }
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }
}

test('state_dict keys follow PyTorch naming', () => {
  const keys = [...new Net(new Rng(0)).stateDict().keys()];
  assert.equal(keys, [
    'net.0.weight',
    'net.0.bias',
    'net.2.weight',
    'net.2.bias',
    'heads.0.weight',
    'heads.0.bias',
    'heads.1.weight',
  ]);
});

test('Linear init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias', () => {
  const layer = new Linear(64, 512, new Rng(1));
  const bound = 1 / 8;
  for (const p of [layer.weight, layer.bias as Tensor]) {
    const values = p.toArray();
    assert.ok(Math.max(...values) <= bound && Math.min(...values) >= -bound);
    assert.ok(Math.max(...values) > 0.9 * bound && Math.min(...values) < -0.9 * bound);
  }
});

test('loadStateDict copies values and names a missing or misshapen tensor', () => {
  const a = new Net(new Rng(0));
  const b = new Net(new Rng(1));
  b.loadStateDict(a.stateDict());
  assert.equal(
    b.net.at(0).stateDict().get('weight')?.toArray(),
    a.net.at(0).stateDict().get('weight')?.toArray(),
  );
  const partial = a.stateDict();
  partial.delete('net.2.bias');
  assert.throws(() => b.loadStateDict(partial), /missing tensor 'net.2.bias'/);
  const wrong = a.stateDict();
  wrong.set('net.0.bias', tensor([1, 2]));
  assert.throws(() => b.loadStateDict(wrong), /'net.0.bias' has shape \[2\], expected \[8\]/);
});

test('toDtype converts every parameter and keeps the names', () => {
  const n = new Net(new Rng(0)).toDtype('float64');
  assert.ok(n.parameters().every((p) => p.dtype === 'float64' && p.requiresGrad));
  assert.is(n.stateDict().size, 7);
  assert.is(new Sequential(new SiLU()).numParameters(), 0);
});

test.run();
