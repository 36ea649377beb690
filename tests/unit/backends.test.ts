// The backends end to end: five Adam steps of a small UNet (convolutions, transposed convolutions,
// GroupNorm, attention's softmax, Adam: every registry kernel) on one fixed batch give the same loss
// trajectory on 'ts', 'wasm' and 'gpu', to float32 rounding. The kernels are checked one by one in
// kernels.test.ts and gpu.test.ts; this catches what those cannot, such as an argument a backend
// reads differently from the ops that call it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Adam, mseLoss, Rng, UNet, type UNetConfig } from '../../core/index.ts';
import { backendKernels, getBackend, listBackends, setBackend } from '../../core/kernels/registry.ts';
import { backendChoices, useBackend } from '../../core/kernels/select.ts';
import { KERNEL_NAMES } from '../../core/kernels/table.ts';
import '../../core/kernels/wasm/index.ts';
import { gpuKernels } from '../../gpu/backend.ts';

const CONFIG: UNetConfig = {
  im_channels: 1,
  im_size: 8,
  down_channels: [8, 16, 16],
  mid_channels: [16, 16, 16],
  down_sample: [true, false],
  time_emb_dim: 16,
  num_down_layers: 1,
  num_mid_layers: 1,
  num_up_layers: 1,
  num_heads: 4,
};
const STEPS = 5;

/** The loss before each of STEPS Adam steps, from the same initial weights and batch every time. */
function trajectory(backend: string): number[] {
  setBackend(backend);
  const rng = new Rng(21);
  const model = new UNet(CONFIG, rng);
  const x = rng.randn([4, 1, 8, 8]);
  const noise = rng.randn([4, 1, 8, 8]);
  const t = [3, 250, 500, 999];
  const opt = new Adam(model.parameters(), { lr: 1e-3 });
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    opt.zeroGrad();
    const loss = mseLoss(model.forward(x, t), noise);
    loss.backward();
    opt.step();
    losses.push(loss.data[0]);
  }
  return losses;
}

test("a small UNet's loss over 5 Adam steps is the same on the ts, wasm and gpu backends", () => {
  const before = getBackend();
  try {
    const backends = ['ts', 'wasm', 'gpu'];
    for (const b of backends) assert.ok(listBackends().includes(b), `backend ${b} is not registered here`);
    const reference = trajectory('ts');
    // the loss must move, or equal trajectories would prove nothing about the backward and Adam
    assert.ok(reference[STEPS - 1] < reference[0], `ts loss did not fall: ${reference.join(', ')}`);
    for (const backend of backends.slice(1)) {
      const losses = trajectory(backend);
      losses.forEach((loss, step) => {
        const rel = Math.abs(loss - reference[step]) / Math.abs(reference[step]);
        assert.ok(
          rel < 1e-4,
          `${backend} step ${step}: loss ${loss} vs ts ${reference[step]} (relative ${rel.toExponential(2)})`,
        );
      });
    }
    // and the gpu.js kernels really ran (a kernel missing from the gpu backend falls back to ts silently);
    // softmax's are off this path (attention has kernels of its own) and checked by the parity tests
    const ran = gpuKernels().ranBy;
    for (const key of ['gemm', 'im2col', 'col2im', 'gnApply', 'gnGx', 'adamP']) {
      assert.ok(ran.has(key), `the gpu backend never ran its ${key} kernel`);
    }
  } finally {
    setBackend(before);
  }
});

test("'auto' dispatches every kernel of the table, over every backend the program registered", async () => {
  const before = getBackend();
  try {
    assert.equal(backendChoices(), ['auto', 'wasm', 'ts', 'gpu']);
    const described = await useBackend('auto');
    assert.match(described, /among wasm \(\d threads?\), ts \(plain TypeScript\), gpu \(gpu\.js \w+\)$/);
    assert.equal(Object.keys(backendKernels('auto')).sort(), [...KERNEL_NAMES].sort());
    const refused = await useBackend('cuda').then(
      () => '',
      (e: Error) => e.message,
    );
    assert.match(refused, /^unknown backend 'cuda' \(choose one of auto, wasm, ts, gpu\)$/);
  } finally {
    setBackend(before);
  }
});

test.run();
