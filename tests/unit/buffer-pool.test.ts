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
  noGrad,
  Rng,
  stepScope,
  Tensor,
  tidy,
  UNet,
  type Storage,
} from '../../core/index.ts';
import { clearPool, setPoison } from '../../core/buffer-pool.ts';
import { attention } from '../../core/ops/attention.ts';
import { getBackend, setBackend } from '../../core/kernels/registry.ts';
import { useBackend } from '../../core/kernels/select.ts';
import '../../core/kernels/wasm/index.ts';

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

for (const backend of ['ts', 'wasm']) {
  test(`${backend}: ops that write their output whole leave no element unwritten: a UNet pass and a training step on NaN-filled reused buffers equal those on fresh ones`, async () => {
    const before = getBackend();
    await useBackend(backend);
    clearPool();
    setPoison(true); // reused outputs that are not zeroed arrive full of NaN, so any unwritten element shows
    try {
      const config = {
        ...{
          im_channels: 1,
          im_size: 16,
          down_channels: [16, 32],
          mid_channels: [32, 16],
          down_sample: [true],
        },
        ...{ time_emb_dim: 16, num_down_layers: 1, num_mid_layers: 1, num_up_layers: 1, num_heads: 2 },
        ...{ attn: [true], num_classes: 3 },
      };
      const rng = new Rng(3);
      const x = rng.randn([8, 1, 16, 16]); // 8 x 16 x 16 x 16 activations: large enough to be pooled
      const [t, labels] = [
        [3, 50, 100, 200, 400, 600, 800, 999],
        [0, 1, 2, 3, 0, 1, 2, 3],
      ];
      const model = new UNet(config, new Rng(0));
      // tidy runs without autograd, which takes other paths (fused attention): compare like with like
      const fresh = Array.from(noGrad(() => model.forward(x, t, { labels })).data);
      for (let i = 0; i < 3; i++) {
        const pooled = tidy(() => model.forward(x, t, { labels }));
        assert.equal(Array.from(pooled.data), fresh, `forward pass ${i + 1} under tidy`);
      }
      const train = (scoped: boolean) => {
        const net = new UNet(config, new Rng(0));
        const opt = new Adam(net.parameters(), { lr: 1e-3 });
        const step = () => {
          opt.zeroGrad();
          const loss = mseLoss(net.forward(x, t, { labels }), x);
          loss.backward();
          opt.step();
          return loss.item();
        };
        return Array.from({ length: 3 }, () => (scoped ? stepScope(net.parameters(), step) : step()));
      };
      const plain = train(false);
      assert.ok(plain.every(Number.isFinite));
      assert.equal(train(true), plain);
    } finally {
      setPoison(false);
      clearPool();
      setBackend(before);
    }
  });

  test(`${backend}: attention and a residual sum take their gradients whole from NaN-filled reused buffers`, async () => {
    const before = getBackend();
    await useBackend(backend);
    clearPool();
    setPoison(true);
    try {
      const [q, k, v] = [1, 2, 3].map(
        (s) => new Tensor(new Rng(s).randn([2, 40, 16]).data, [2, 40, 16], { requiresGrad: true }),
      );
      const grads = () => {
        for (const t of [q, k, v]) t.grad = null;
        const y = attention(q, k, v);
        const loss = mseLoss(add(y, mul(y, q)), k); // y feeds two ops: one adopts its gradient, one adds
        loss.backward();
        return [loss.item(), ...[q, k, v].map((t) => Array.from(t.grad?.data ?? []))];
      };
      const fresh = grads();
      for (let i = 0; i < 3; i++) {
        let scoped: ReturnType<typeof grads> = [];
        stepScope([q, k, v], () => {
          scoped = grads();
          return 0;
        });
        assert.equal(scoped, fresh, `step ${i + 1} in a scope`);
      }
    } finally {
      setPoison(false);
      clearPool();
      setBackend(before);
    }
  });
}

test.run();
