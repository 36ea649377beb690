// The convolutions: each forward against a direct loop written from PyTorch's definition, and each
// backward against central differences in float64 (stride 2, padding, odd sizes, non-square kernels).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '../../core/index.ts';
import { Rng, Tensor, type Pair } from '../../core/index.ts';
import { kernel } from '../../core/kernels/registry.ts';
import { rand64 } from '../helpers/gradcheck.ts';
import { checkGrad, close, layerCheck, two } from '../helpers/layer-checks.ts';

const rng = new Rng(11);
const r = (shape: number[]) => rand64(rng, shape);

// ---------------------------------------------------------------------------------------------
// Convolutions

/** out[b,o,y,x] = bias[o] + sum_{c,i,j} w[o,c,i,j] x[b, c, y sh - ph + i, x sw - pw + j] (0 outside). */
function naiveConv2d(x: Tensor, w: Tensor, b: Tensor | null, stride: Pair, padding: Pair): number[] {
  const [B, C, H, W] = x.shape;
  const [O, , KH, KW] = w.shape;
  const [sh, sw] = two(stride);
  const [ph, pw] = two(padding);
  const OH = Math.floor((H + 2 * ph - KH) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - KW) / sw) + 1;
  const out: number[] = [];
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++)
      for (let y = 0; y < OH; y++)
        for (let xx = 0; xx < OW; xx++) {
          let s = b ? b.data[o] : 0;
          for (let c = 0; c < C; c++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const iy = y * sh - ph + i;
                const ix = xx * sw - pw + j;
                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                  s += w.data[((o * C + c) * KH + i) * KW + j] * x.data[((n * C + c) * H + iy) * W + ix];
              }
          out.push(s);
        }
  return out;
}

/** Every input pixel scatters x[b,c,y,x] w[c,o,i,j] onto out[b, o, y sh - ph + i, x sw - pw + j]. */
function naiveConvTranspose2d(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  stride: Pair,
  padding: Pair,
  extra: Pair,
) {
  const [B, C, H, W] = x.shape;
  const [, O, KH, KW] = w.shape;
  const [sh, sw] = two(stride);
  const [ph, pw] = two(padding);
  const [eh, ew] = two(extra);
  const OH = (H - 1) * sh - 2 * ph + KH + eh;
  const OW = (W - 1) * sw - 2 * pw + KW + ew;
  const out = new Float64Array(B * O * OH * OW);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < O; o++)
      for (let p = 0; p < OH * OW; p++) out[(n * O + o) * OH * OW + p] = b ? b.data[o] : 0;
  for (let n = 0; n < B; n++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++)
          for (let o = 0; o < O; o++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const oy = y * sh - ph + i;
                const ox = xx * sw - pw + j;
                if (oy >= 0 && oy < OH && ox >= 0 && ox < OW)
                  out[((n * O + o) * OH + oy) * OW + ox] +=
                    x.data[((n * C + c) * H + y) * W + xx] * w.data[((c * O + o) * KH + i) * KW + j];
              }
  return { out, shape: [B, O, OH, OW] };
}

const convCases: { name: string; x: number[]; w: number[]; stride: Pair; padding: Pair }[] = [
  { name: '3x3 stride 1 padding 1', x: [2, 3, 5, 5], w: [4, 3, 3, 3], stride: 1, padding: 1 },
  {
    name: '4x4 stride 2 padding 1 (the down-sampler)',
    x: [2, 2, 6, 6],
    w: [3, 2, 4, 4],
    stride: 2,
    padding: 1,
  },
  { name: '1x1 (the residual conv)', x: [2, 3, 3, 4], w: [2, 3, 1, 1], stride: 1, padding: 0 },
  {
    name: 'odd 5x7 input, 2x3 kernel, stride [2,1], padding [0,1]',
    x: [1, 2, 5, 7],
    w: [3, 2, 2, 3],
    stride: [2, 1],
    padding: [0, 1],
  },
  { name: 'stride 3 leaving a ragged edge', x: [2, 1, 7, 8], w: [2, 1, 3, 2], stride: 3, padding: [1, 0] },
];

for (const c of convCases) {
  test(`conv2d forward equals the direct sum: ${c.name}`, () => {
    const [x, w, b] = [r(c.x), r(c.w), r([c.w[0]])];
    close(T.conv2d(x, w, b, c), naiveConv2d(x, w, b, c.stride, c.padding), 1e-10, c.name);
    close(T.conv2d(x, w, null, c), naiveConv2d(x, w, null, c.stride, c.padding), 1e-10, `${c.name}, no bias`);
  });
  checkGrad(`conv2d ${c.name}`, (x, w, b) => T.conv2d(x, w, b, c), [r(c.x), r(c.w), r([c.w[0]])]);
}
checkGrad('conv2d without bias', (x, w) => T.conv2d(x, w, null, { padding: 1 }), [
  r([2, 2, 4, 3]),
  r([3, 2, 3, 3]),
]);

const transposeCases: {
  name: string;
  x: number[];
  w: number[];
  stride: Pair;
  padding: Pair;
  outputPadding: Pair;
}[] = [
  {
    name: '4x4 stride 2 padding 1 (the up-sampler)',
    x: [2, 3, 3, 3],
    w: [3, 2, 4, 4],
    stride: 2,
    padding: 1,
    outputPadding: 0,
  },
  {
    name: '3x3 stride 1 padding 1',
    x: [1, 2, 4, 5],
    w: [2, 3, 3, 3],
    stride: 1,
    padding: 1,
    outputPadding: 0,
  },
  {
    name: '3x2 kernel, stride [2,3], padding [0,1], output padding [1,2]',
    x: [2, 2, 3, 2],
    w: [2, 2, 3, 2],
    stride: [2, 3],
    padding: [0, 1],
    outputPadding: [1, 2],
  },
];

for (const c of transposeCases) {
  test(`convTranspose2d forward equals the direct scatter: ${c.name}`, () => {
    const [x, w, b] = [r(c.x), r(c.w), r([c.w[1]])];
    const { out, shape } = naiveConvTranspose2d(x, w, b, c.stride, c.padding, c.outputPadding);
    const y = T.convTranspose2d(x, w, b, c);
    assert.equal([...y.shape], shape);
    close(y, out, 1e-10, c.name);
  });
  checkGrad(`convTranspose2d ${c.name}`, (x, w, b) => T.convTranspose2d(x, w, b, c), [
    r(c.x),
    r(c.w),
    r([c.w[1]]),
  ]);
}

test('convTranspose2d with stride 2 exactly undoes the down-sampler shape: 4 -> 2 -> 4, 7 -> 3 -> 6', () => {
  const down = (s: number) =>
    T.conv2d(T.zeros([1, 1, s, s]), T.zeros([1, 1, 4, 4]), null, { stride: 2, padding: 1 });
  const up = (t: Tensor) => T.convTranspose2d(t, T.zeros([1, 1, 4, 4]), null, { stride: 2, padding: 1 });
  assert.equal([...up(down(4)).shape], [1, 1, 4, 4]);
  assert.equal([...up(down(7)).shape], [1, 1, 6, 6]);
});

test('im2col and col2im are adjoint: <im2col(x), c> = <x, col2im(c)>', () => {
  const geo = {
    batch: 2,
    channels: 3,
    height: 5,
    width: 6,
    kh: 3,
    kw: 2,
    strideH: 2,
    strideW: 1,
    padH: 1,
    padW: 1,
    outH: 3,
    outW: 7,
  };
  const x = r([2, 3, 5, 6]).data;
  const c = r([3 * 3 * 2, 2 * 3 * 7]).data;
  const cols = new Float64Array(c.length);
  kernel('im2col', true)({ ...geo, x, cols });
  const back = new Float64Array(x.length);
  kernel('col2im', true)({ ...geo, x: back, cols: c });
  let lhs = 0;
  let rhs = 0;
  for (let i = 0; i < c.length; i++) lhs += cols[i] * c[i];
  for (let i = 0; i < x.length; i++) rhs += x[i] * back[i];
  assert.ok(Math.abs(lhs - rhs) < 1e-10 * Math.abs(lhs), `${lhs} vs ${rhs}`);
});

layerCheck(
  'Conv2d module (stride 2, padding [1,0], 3x2 kernel)',
  new T.Conv2d(2, 3, [3, 2], rng, { stride: 2, padding: [1, 0] }),
  r([2, 2, 5, 4]),
);
layerCheck(
  'ConvTranspose2d module',
  new T.ConvTranspose2d(3, 2, 4, rng, { stride: 2, padding: 1 }),
  r([1, 3, 2, 3]),
);

test('layer init follows PyTorch: GroupNorm 1 and 0, conv bounds from fan_in (ConvTranspose from dim 1)', () => {
  const gn = new T.GroupNorm(8, 16);
  assert.ok(gn.weight?.toArray().every((v) => v === 1) && gn.bias?.toArray().every((v) => v === 0));
  const conv = new T.Conv2d(4, 8, 3, new Rng(1));
  const bound = 1 / Math.sqrt(4 * 9);
  assert.ok(
    conv.weight.toArray().every((v) => Math.abs(v) <= bound) &&
      Math.max(...conv.weight.toArray()) > 0.9 * bound,
  );
  const up = new T.ConvTranspose2d(8, 2, 4, new Rng(1));
  assert.equal([...up.weight.shape], [8, 2, 4, 4]);
  const upBound = 1 / Math.sqrt(2 * 16);
  assert.ok(
    up.weight.toArray().every((v) => Math.abs(v) <= upBound) &&
      Math.max(...up.weight.toArray()) > 0.9 * upBound,
  );
});

test('bad inputs get one clear error naming the op and the shapes', () => {
  const x = T.zeros([1, 3, 5, 5]);
  assert.throws(
    () => T.conv2d(x, T.zeros([4, 2, 3, 3]), null),
    /conv2d: weight \[4,2,3,3\] \(\[out, in, kh, kw\]\) does not match input \[1,3,5,5\] with 3 channels/,
  );
  assert.throws(
    () => T.conv2d(x, T.zeros([4, 3, 3, 3]), T.zeros([3])),
    /conv2d: bias \[3\] does not match 4 output channels/,
  );
  assert.throws(
    () => T.conv2d(x, T.zeros([4, 3, 7, 7]), null),
    /conv2d: input \[1,3,5,5\] padded by 0x0 is smaller than the 7x7 kernel/,
  );
  assert.throws(
    () => T.conv2d(x, T.zeros([4, 3, 3, 3]), null, { stride: 0 }),
    /conv2d: stride must be an integer >= 1/,
  );
  assert.throws(
    () => T.conv2d(T.zeros([3, 5, 5]), T.zeros([4, 3, 3, 3]), null),
    /conv2d: input must be \[batch, channels, height, width\], got \[3,5,5\]/,
  );
  assert.throws(
    () => T.convTranspose2d(x, T.zeros([2, 3, 4, 4]), null),
    /convTranspose2d: weight \[2,3,4,4\] \(\[in, out, kh, kw\]\) does not match input/,
  );
  assert.throws(
    () => T.convTranspose2d(x, T.zeros([3, 2, 4, 4]), null, { stride: 2, outputPadding: 2 }),
    /outputPadding 2x2 must be smaller than the stride 2x2/,
  );
});

test.run();
