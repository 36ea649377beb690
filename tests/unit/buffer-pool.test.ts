// tidy and the buffer pool (core/buffer-pool.ts): buffers made inside are reused by the next tidy,
// zeroed; what a tidy returns is never handed out again; results equal those without the pool.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  add,
  allocate,
  Adam,
  Linear,
  mseLoss,
  mul,
  Rng,
  stepScope,
  Tensor,
  tidy,
  type Storage,
} from '../../core/index.ts';
import { clearPool } from '../../core/buffer-pool.ts';

const N = 1 << 15; // above the size the pool starts at

test('a buffer made inside tidy is reused, zeroed, by the next tidy; outside tidy nothing is pooled', () => {
  clearPool();
  const made: Storage[] = [];
  tidy(() => {
    made.push(allocate('float32', N).fill(7));
    return [];
  });
  const first = made[0];
  const again = tidy(() => [new Tensor(allocate('float32', N), [N])])[0];
  assert.ok(again.data === first, 'the released buffer is handed out again');
  assert.ok(
    again.data.every((v) => v === 0),
    'and it is zeroed',
  );
  assert.ok(allocate('float32', N) !== first, 'outside tidy a fresh array');
  clearPool();
});

test('what tidy returns (and a view of its memory) is never handed out again; nested tidies keep what the inner returns', () => {
  clearPool();
  const kept = tidy(() => {
    const inner = tidy(() => new Tensor(allocate('float32', N), [N]));
    inner.data.fill(3);
    allocate('float32', N); // a temporary of the outer scope
    return inner;
  });
  for (let i = 0; i < 3; i++) {
    const other = tidy(() => [new Tensor(allocate('float32', N), [N])])[0];
    assert.ok(other.data !== kept.data);
    other.data.fill(9);
  }
  assert.ok(
    kept.data.every((v) => v === 3),
    'the kept tensor was not overwritten',
  );
  clearPool();
});

test('a computation under tidy gives the same numbers as without, call after call', () => {
  clearPool();
  const rng = new Rng(4);
  const x = rng.randn([64, 512]);
  const w = rng.randn([64, 512]);
  const plain = add(mul(x, w), x).data;
  for (let i = 0; i < 3; i++) {
    const y = tidy(() => add(mul(add(mul(x, w), x), 1), 0));
    assert.equal(Array.from(y.data), Array.from(plain));
  }
  clearPool();
});

test('small arrays: a slab a tidy released is cut again, zeroed, by the next; what a tidy returns keeps its slab', () => {
  clearPool();
  const n = 100; // below the size small arrays are cut from slabs at
  const temp = tidy(() => {
    const t = allocate('float32', n).fill(5);
    const kept = new Tensor(allocate('float32', n).fill(6), [n]);
    return [kept, new Tensor(t, [n])];
  });
  const [kept] = temp;
  const released: Storage[] = [];
  tidy(() => {
    released.push(allocate('float32', n).fill(7));
    return [];
  });
  const again = tidy(() => [new Tensor(allocate('float32', n), [n])])[0];
  assert.ok(released[0].buffer === again.data.buffer, 'the released slab is cut again');
  assert.ok(kept.data.buffer !== again.data.buffer, 'a returned array keeps its slab to itself');
  assert.ok(
    again.data.every((v) => v === 0),
    'a reused slab hands out zeros',
  );
  assert.ok(
    kept.data.every((v) => v === 6),
    'the kept array was not overwritten',
  );
  clearPool();
});

test('stepScope: training steps give the same parameters as without it, and leave no gradient behind', () => {
  clearPool();
  const run = (scoped: boolean) => {
    const rng = new Rng(2);
    const layer = new Linear(8, 4, rng);
    const opt = new Adam(layer.parameters(), { lr: 1e-2 });
    const x = rng.randn([16, 8]);
    const y = rng.randn([16, 4]);
    const step = () => {
      opt.zeroGrad();
      const loss = mseLoss(layer.forward(x), y);
      loss.backward();
      opt.step();
      return loss.item();
    };
    const losses = Array.from({ length: 5 }, () => (scoped ? stepScope(layer.parameters(), step) : step()));
    return { losses, params: layer.parameters(), grads: layer.parameters().map((p) => p.grad) };
  };
  const plain = run(false);
  const scoped = run(true);
  assert.equal(scoped.losses, plain.losses);
  scoped.params.forEach((p, i) => assert.equal(Array.from(p.data), Array.from(plain.params[i].data)));
  assert.ok(
    scoped.grads.every((g) => g === null),
    'the step cleared its gradients',
  );
  clearPool();
});

test.run();
