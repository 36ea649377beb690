// Data-parallel training (core/parallel/): a batch split between threads gives the loss and the
// gradient of the unsplit batch, up to the order of float additions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { objectiveOf, readConfig } from '../../stages/lib/config.ts';
import { imageNet } from '../../core/diffusion/image.ts';
import { UNet } from '../../core/nn/unet.ts';
import { DataParallel, shares } from '../../core/parallel/data-parallel.ts';
import { Rng } from '../../core/random.ts';
import { slice } from '../../core/ops/shape.ts';
import { noGrad, type Tensor } from '../../core/tensor.ts';
import { ParallelForward } from '../../core/parallel/parallel-forward.ts';
import '../../core/kernels/wasm/index.ts';
import { sliceDraw, type NoiseDraw } from '../../core/diffusion/objectives.ts';

test('shares split a batch into near-equal parts, never an empty one', () => {
  assert.equal(shares(16, 2), [8, 8]);
  assert.equal(shares(7, 3), [3, 2, 2]);
  assert.equal(shares(2, 4), [1, 1]);
  assert.equal(shares(5, 1), [5]);
});

type Cfg = ReturnType<typeof readConfig>;

function configs(): [string, Cfg][] {
  const ddpm = readConfig('stages/mnist/tiny.json');
  const edm = readConfig('stages/mnist/tiny.json');
  edm.diffusion_params = { ...edm.diffusion_params, objective: 'edm' };
  return [
    ['ddpm', ddpm],
    ['edm', edm],
  ];
}

/** The loss and the gradient of each parameter on images from..to of the batch, on this thread. */
function direct(model: UNet, cfg: Cfg, x0: Tensor, draw: NoiseDraw, from: number, to: number) {
  model.zeroGrad();
  const objective = objectiveOf(cfg);
  const loss = objective.loss(imageNet(model, objective), slice(x0, 0, from, to), sliceDraw(draw, from, to));
  loss.backward();
  return {
    loss: loss.item(),
    grads: model.parameters().map((p) => p.grad?.data.slice() ?? new Float64Array(p.size)),
  };
}

test("the batch gradient is the image-weighted mean of its shares' gradients (float64, both objectives)", () => {
  for (const [name, cfg] of configs()) {
    const rng = new Rng(3);
    const x0 = rng.randn([5, 1, 28, 28]);
    const draw = objectiveOf(cfg).draw(x0, rng);
    const model = new UNet(cfg.model_params, new Rng(0)).toDtype('float64');
    const whole = direct(model, cfg, x0, draw, 0, 5);
    const [a, b] = [direct(model, cfg, x0, draw, 0, 3), direct(model, cfg, x0, draw, 3, 5)];
    const loss = (3 * a.loss + 2 * b.loss) / 5;
    assert.ok(Math.abs(loss - whole.loss) < 1e-12, `${name}: loss ${loss} vs ${whole.loss}`);
    whole.grads.forEach((g, i) => {
      for (let j = 0; j < g.length; j++) {
        const mean = (3 * a.grads[i][j] + 2 * b.grads[i][j]) / 5;
        assert.ok(Math.abs(mean - g[j]) < 1e-12, `${name}: parameter ${i}[${j}]: ${mean} vs ${g[j]}`);
      }
    });
  }
});

test('a worker thread computes its share exactly as this thread would, on the current weights', async () => {
  for (const [name, cfg] of configs()) {
    const rng = new Rng(3);
    const x0 = rng.randn([5, 1, 28, 28]); // odd, so the shares differ in size: 3 here, 2 on the worker
    const draw = objectiveOf(cfg).draw(x0, rng);
    const model = new UNet(cfg.model_params, new Rng(0));
    const parallel = await DataParallel.start(model, objectiveOf(cfg), {
      threads: 2,
      backend: 'ts',
      batch: 8,
    });
    try {
      assert.match(parallel.description, /2 data-parallel threads, 4 \+ 4 images each/);
      for (let step = 0; step < 2; step++) {
        // the second step runs on moved weights: the worker must use them, not the ones it started with
        if (step === 1) for (const p of model.parameters()) p.data[0] += 0.5;
        const [a, b] = [direct(model, cfg, x0, draw, 0, 3), direct(model, cfg, x0, draw, 3, 5)];
        const loss = await parallel.lossAndGrad(x0, draw);
        assert.is(loss, (3 / 5) * a.loss + (2 / 5) * b.loss, `${name}, step ${step}: loss`);
        model.parameters().forEach((p, i) => {
          // the same float32 arithmetic as DataParallel's combine, so the answers agree to the bit
          const want = Float32Array.from(a.grads[i], (v) => v * (3 / 5));
          for (let j = 0; j < want.length; j++) want[j] += (2 / 5) * b.grads[i][j];
          assert.equal(
            Array.from(p.grad?.data ?? []),
            Array.from(want),
            `${name}, step ${step}: parameter ${i}`,
          );
        });
      }
    } finally {
      parallel.close();
    }
  }
});

test('a forward pass split between threads equals the unsplit one bit for bit, labels and times included', async () => {
  const cfg = readConfig('stages/mnist/tiny.json');
  const model = new UNet({ ...cfg.model_params, num_classes: 3 }, new Rng(0));
  for (const p of model.parameters()) p.data[0] += 0.5; // the workers must take these, not a fresh init
  const forward = await ParallelForward.start(model, { threads: 2, backend: 'wasm', maxBatch: 10 });
  try {
    assert.match(forward.description, /^backend wasm \(1 thread\); 2 threads, the batch split between them$/);
    const rng = new Rng(4);
    for (const n of [1, 5, 10, 11]) {
      // 11 is over the workers' room: it runs here alone, with the same answer
      const x = rng.randn([n, 1, 28, 28]);
      const t = Array.from({ length: n }, (_, i) => 0.25 + 97 * i);
      const labels = Array.from({ length: n }, (_, i) => i % 4); // 3 is "no class"
      const opts = { fractionalTime: true, labels };
      const want = noGrad(() => model.forward(x, t, opts));
      assert.equal(Array.from(forward.forward(x, t, opts).data), Array.from(want.data), `batch ${n}`);
      const once = noGrad(() => model.forward(x, [7], { labels }));
      assert.equal(
        Array.from(forward.forward(x, [7], { labels }).data),
        Array.from(once.data),
        `batch ${n}, one t`,
      );
    }
    // a worker's error reaches this thread, named; an error in this thread's share leaves the workers
    // in step, and the next batch is right
    const x = rng.randn([4, 1, 28, 28]);
    assert.throws(
      () => forward.forward(x, [1, 2, 3, 4], { labels: [0, 0, 9, 9] }),
      /parallel forward, worker 1: .*label/,
    );
    assert.throws(() => forward.forward(x, [1, 2, 3, 4], { labels: [9, 0, 0, 0] }), /label/);
    const after = noGrad(() => model.forward(x, [5], { labels: [1, 2, 0, 1] }));
    assert.equal(Array.from(forward.forward(x, [5], { labels: [1, 2, 0, 1] }).data), Array.from(after.data));
  } finally {
    forward.close();
  }
  assert.throws(() => forward.forward(new Rng(4).randn([2, 1, 28, 28]), [1]), /used after close/);
});

test.run();
