// Class conditioning: label dropout, and classifier-free guidance D = D_uncond + W (D_cond - D_uncond)
// computed from one batched forward pass of both halves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Adam,
  dropLabels,
  guidedDenoiser,
  imageNet,
  makeObjective,
  Rng,
  UNet,
  type UNetConfig,
} from '../../core/index.ts';
import { gridShape } from '../../stages/mnist/sample.ts';
import { spreadLabels } from '../../stages/mnist/draw.ts';

const CFG: UNetConfig = {
  im_channels: 1,
  im_size: 8,
  down_channels: [8, 16],
  mid_channels: [16, 8],
  down_sample: [true],
  time_emb_dim: 16,
  num_down_layers: 1,
  num_mid_layers: 1,
  num_up_layers: 1,
  num_heads: 2,
  attn: [false],
  num_classes: 10,
};
const objective = makeObjective({
  kind: 'edm',
  schedule: { kind: 'linear', T: 1000, betaStart: 1e-4, betaEnd: 0.02 },
  sigmaData: 0.5,
  pMean: -1.2,
  pStd: 1.2,
});

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.is(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

test('dropLabels: p = 0 keeps every label, p = 1 replaces every one by "no class", p = 0.25 about a quarter', () => {
  const labels = Array.from({ length: 4000 }, (_, i) => i % 10);
  assert.equal(dropLabels(labels, 0, 10, new Rng(1)), labels);
  assert.ok(dropLabels(labels, 1, 10, new Rng(1)).every((y) => y === 10));
  const dropped = dropLabels(labels, 0.25, 10, new Rng(1)).filter((y) => y === 10).length / labels.length;
  assert.ok(Math.abs(dropped - 0.25) < 0.03, `dropped ${dropped}`);
  assert.equal(dropLabels(labels, 0.25, 10, new Rng(7)), dropLabels(labels, 0.25, 10, new Rng(7)));
});

test('guidance: W = 1 is the conditional denoiser, W = 0 the unconditional one, W = 3 extrapolates past it, inside its interval only', () => {
  const unet = new UNet(CFG, new Rng(3));
  const net = imageNet(unet, objective);
  const denoiserFor = (labels?: number[]) => objective.denoiser(net, labels);
  const x = new Rng(4).randn([3, 1, 8, 8]);
  const level = { a: 1, s: 2.5 };
  const labels = [0, 4, 9];
  const cond = denoiserFor(labels)(x, level).data;
  const uncond = denoiserFor([10, 10, 10])(x, level).data;
  assert.ok(maxDiff(cond, uncond) > 1e-3, 'the labels change the prediction');
  const guided = (w: number) => guidedDenoiser(denoiserFor, labels, w, unet.nullLabel)(x, level).data;
  assert.equal(guided(1), cond); // W = 1 takes the shortcut: one pass, the conditional half only
  // the batched pass of [x; x] gives each half what a pass of its own gives, to float rounding
  assert.ok(maxDiff(guided(0), uncond) < 1e-5, `W = 0: ${maxDiff(guided(0), uncond)}`);
  const expected = Array.from(cond, (c, i) => uncond[i] + 3 * (c - uncond[i]));
  assert.ok(maxDiff(guided(3), expected) < 1e-4, `W = 3: ${maxDiff(guided(3), expected)}`);
  // a guidance interval [1, 3]: guided at sigma 2.5, the conditional prediction alone at sigma 5
  const within = guidedDenoiser(denoiserFor, labels, 3, unet.nullLabel, [1, 3]);
  assert.ok(maxDiff(within(x, level).data, expected) < 1e-4);
  const high = { a: 1, s: 5 };
  assert.equal(within(x, high).data, denoiserFor(labels)(x, high).data);
  const everywhere = guidedDenoiser(denoiserFor, labels, 3, unet.nullLabel);
  assert.ok(
    maxDiff(everywhere(x, high).data, denoiserFor(labels)(x, high).data) > 1e-3,
    'without it, guided',
  );
});

test('cond_drop_prob 1: no label reaches the model, so the class rows keep their initial values', () => {
  const unet = new UNet(CFG, new Rng(5));
  const initial = Float32Array.from(unet.class_emb!.weight.data);
  const optimizer = new Adam(unet.parameters(), { lr: 1e-2 });
  const net = imageNet(unet, objective);
  const width = CFG.time_emb_dim;
  for (let step = 0; step < 3; step++) {
    const rng = new Rng(`drop/${step}`);
    const x0 = rng.randn([4, 1, 8, 8]);
    const draw = objective.draw(x0, rng);
    draw.labels = dropLabels([1, 2, 3, 4], 1, unet.nullLabel, rng);
    optimizer.zeroGrad();
    objective.loss(net, x0, draw).backward();
    optimizer.step();
  }
  const after = unet.class_emb!.weight.data;
  assert.equal(after.subarray(0, 10 * width), initial.subarray(0, 10 * width), 'classes 0..9 untouched');
  assert.ok(maxDiff(after.subarray(10 * width), initial.subarray(10 * width)) > 0, '"no class" trained');
});

test('the samples grid has a row per class asked, also when N does not divide between the classes', () => {
  const names = ['disc', 'square', 'triangle', 'ring', 'cross', 'stripes'];
  const labels = spreadLabels(100, [0, 1, 2, 3, 4, 5]); // 16 or 17 of each
  const grid = gridShape(100, labels, names);
  assert.is(grid.columns, 16);
  assert.equal(grid.rowLabels, names);
  assert.is(grid.picked.length, 6 * 16);
  grid.picked.forEach((i, k) => assert.is(labels[i], Math.floor(k / 16), `image ${k} of the grid`));
  const even = gridShape(30, spreadLabels(30, [3, 7, 9]), undefined);
  assert.equal([even.columns, even.picked], [10, [...Array(30).keys()]]);
  assert.is(gridShape(100, null).columns, 10); // unconditional: a square of the first images
});

test.run();
