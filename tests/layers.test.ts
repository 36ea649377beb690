// The image layers: each forward against a direct loop written from PyTorch's definition, and each
// backward against central differences in float64 (stride 2, padding, odd sizes, non-square kernels,
// several groups, several heads).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '../core/index.ts';
import { Rng, Tensor, type Pair } from '../core/index.ts';
import { kernel } from '../core/kernels/registry.ts';
import { gradcheck, rand64 } from './gradcheck.ts';

const rng = new Rng(11);
const TOL = 1e-6;
const r = (shape: number[]) => rand64(rng, shape);
const two = (p: Pair = 0): [number, number] => (typeof p === 'number' ? [p, p] : [p[0], p[1]]);

function close(actual: Tensor, expected: ArrayLike<number>, tol = 1e-10, what = '') {
  assert.is(actual.size, expected.length, `${what}: size`);
  let worst = 0;
  for (let i = 0; i < actual.size; i++) worst = Math.max(worst, Math.abs(actual.data[i] - expected[i]));
  assert.ok(worst < tol, `${what}: max difference ${worst}`);
}

function checkGrad(name: string, f: (...xs: Tensor[]) => Tensor, inputs: Tensor[]) {
  test(`gradient of ${name}`, () => {
    const { maxError, worst } = gradcheck(f, inputs);
    assert.ok(maxError < TOL, `${name}: max error ${maxError} at ${worst}`);
  });
}

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

// ---------------------------------------------------------------------------------------------
// GroupNorm and softmax

function naiveGroupNorm(
  x: Tensor,
  groups: number,
  w: Tensor | null,
  b: Tensor | null,
  eps: number,
): number[] {
  const [B, C] = x.shape;
  const S = x.size / (B * C);
  const per = C / groups;
  const out = new Array<number>(x.size);
  for (let n = 0; n < B; n++)
    for (let g = 0; g < groups; g++) {
      const vals: number[] = [];
      for (let c = g * per; c < (g + 1) * per; c++)
        for (let s = 0; s < S; s++) vals.push(x.data[(n * C + c) * S + s]);
      const mu = vals.reduce((a, v) => a + v, 0) / vals.length;
      const v = vals.reduce((a, u) => a + (u - mu) ** 2, 0) / vals.length; // biased, as PyTorch
      for (let c = g * per; c < (g + 1) * per; c++)
        for (let s = 0; s < S; s++) {
          const i = (n * C + c) * S + s;
          out[i] = ((x.data[i] - mu) / Math.sqrt(v + eps)) * (w ? w.data[c] : 1) + (b ? b.data[c] : 0);
        }
    }
  return out;
}

test('groupNorm forward equals the formula (biased variance, eps inside the root)', () => {
  const x = r([2, 6, 3, 5]);
  const [w, b] = [r([6]), r([6])];
  close(T.groupNorm(x, 3, w, b), naiveGroupNorm(x, 3, w, b, 1e-5), 1e-10, '3 groups');
  close(
    T.groupNorm(x, 1, null, null, 0.1),
    naiveGroupNorm(x, 1, null, null, 0.1),
    1e-10,
    '1 group, no affine',
  );
  close(T.groupNorm(x, 6, w, b), naiveGroupNorm(x, 6, w, b, 1e-5), 1e-10, 'one channel per group');
});

checkGrad('groupNorm 2 groups of 2 channels over odd 3x5', (x, w, b) => T.groupNorm(x, 2, w, b), [
  r([2, 4, 3, 5]),
  r([4]),
  r([4]),
]);
checkGrad('groupNorm 3 groups on [B, C, L] (as before attention)', (x, w, b) => T.groupNorm(x, 3, w, b), [
  r([2, 6, 7]),
  r([6]),
  r([6]),
]);
checkGrad('groupNorm one group, no affine', (x) => T.groupNorm(x, 1, null, null), [r([3, 2, 2, 3])]);
checkGrad('groupNorm one channel per group', (x, w, b) => T.groupNorm(x, 4, w, b), [
  r([2, 4, 3, 3]),
  r([4]),
  r([4]),
]);

test('softmax rows are positive, sum to 1 and equal exp(x) / sum exp(x), even for large inputs', () => {
  const x = r([3, 4, 5]);
  const y = T.softmax(x);
  for (let row = 0; row < 12; row++) {
    let denom = 0;
    for (let j = 0; j < 5; j++) denom += Math.exp(x.data[row * 5 + j]);
    for (let j = 0; j < 5; j++)
      assert.ok(Math.abs(y.data[row * 5 + j] - Math.exp(x.data[row * 5 + j]) / denom) < 1e-14);
  }
  const big = T.softmax(T.tensor([1000, 1001, 999]));
  assert.ok(big.toArray().every(Number.isFinite));
  assert.ok(Math.abs(big.data[1] - 1 / (1 + Math.exp(-1) + Math.exp(-2))) < 1e-6);
});

checkGrad('softmax over the last axis', (x) => T.softmax(x), [r([2, 3, 6])]);
checkGrad('softmax over a single column', (x) => T.softmax(x, 1), [r([4, 1])]);

// ---------------------------------------------------------------------------------------------
// Layers as modules (float64 copies, every parameter perturbed)

function layerCheck(name: string, layer: T.Module & { forward(x: Tensor): Tensor }, xShape: number[]) {
  const params = layer.toDtype('float64').parameters();
  checkGrad(name, (x) => layer.forward(x), [r(xShape), ...params]);
}

layerCheck(
  'Conv2d module (stride 2, padding [1,0], 3x2 kernel)',
  new T.Conv2d(2, 3, [3, 2], rng, { stride: 2, padding: [1, 0] }),
  [2, 2, 5, 4],
);
layerCheck(
  'ConvTranspose2d module',
  new T.ConvTranspose2d(3, 2, 4, rng, { stride: 2, padding: 1 }),
  [1, 3, 2, 3],
);
layerCheck('GroupNorm module', new T.GroupNorm(2, 4), [2, 4, 3, 1]);

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

// ---------------------------------------------------------------------------------------------
// Multi-head attention

/** Per head h: softmax(q_h k_h^T / sqrt(d)) v_h, with q, k, v from the packed in_proj; then out_proj. */
function naiveAttention(m: T.MultiheadAttention, q: Tensor, k: Tensor, v: Tensor): number[] {
  const [B, L, E] = q.shape;
  const S = k.shape[1];
  const H = m.numHeads;
  const d = E / H;
  const W = m.in_proj_weight.data;
  const bias = m.in_proj_bias.data;
  const project = (t: Tensor, which: number, n: number, len: number) => {
    const out = new Float64Array(len * E);
    for (let l = 0; l < len; l++)
      for (let e = 0; e < E; e++) {
        let s = bias[which * E + e];
        for (let f = 0; f < E; f++) s += W[(which * E + e) * E + f] * t.data[(n * len + l) * E + f];
        out[l * E + e] = s;
      }
    return out;
  };
  const result: number[] = [];
  for (let n = 0; n < B; n++) {
    const [Q, K, V] = [project(q, 0, n, L), project(k, 1, n, S), project(v, 2, n, S)];
    const concat = new Float64Array(L * E);
    for (let h = 0; h < H; h++)
      for (let l = 0; l < L; l++) {
        const scores = Array.from({ length: S }, (_, s) => {
          let dot = 0;
          for (let e = h * d; e < (h + 1) * d; e++) dot += Q[l * E + e] * K[s * E + e];
          return dot / Math.sqrt(d);
        });
        const max = Math.max(...scores);
        const ex = scores.map((x) => Math.exp(x - max));
        const z = ex.reduce((a, x) => a + x, 0);
        for (let e = h * d; e < (h + 1) * d; e++)
          concat[l * E + e] = ex.reduce((a, p, s) => a + (p / z) * V[s * E + e], 0);
      }
    const Wo = m.out_proj.weight.data;
    const bo = m.out_proj.bias?.data ?? new Float64Array(E);
    for (let l = 0; l < L; l++)
      for (let e = 0; e < E; e++) {
        let s = bo[e];
        for (let f = 0; f < E; f++) s += Wo[e * E + f] * concat[l * E + f];
        result.push(s);
      }
  }
  return result;
}

test('MultiheadAttention forward equals per-head attention with the packed q, k, v weights', () => {
  const m = new T.MultiheadAttention(6, 3, rng, { batchFirst: true }).toDtype('float64');
  for (const p of [m.in_proj_bias, m.out_proj.bias as Tensor]) p.data.set(r([p.size]).data); // off their zero init
  const x = r([2, 5, 6]);
  close(m.forward(x), naiveAttention(m, x, x, x), 1e-10, 'self-attention');
  const [q, kv] = [r([2, 3, 6]), r([2, 4, 6])];
  close(m.forward(q, kv, kv), naiveAttention(m, q, kv, kv), 1e-10, 'cross-attention');
});

test('MultiheadAttention without batchFirst takes [L, B, E], like PyTorch by default', () => {
  const m = new T.MultiheadAttention(4, 2, new Rng(3)).toDtype('float64');
  const x = r([2, 5, 4]); // [B, L, E]
  const seqFirst = m.forward(T.transpose(x, 0, 1));
  assert.equal([...seqFirst.shape], [5, 2, 4]);
  close(T.transpose(seqFirst, 0, 1), naiveAttention(m, x, x, x), 1e-10, 'sequence first');
});

test('MultiheadAttention parameters carry PyTorch names and init', () => {
  const m = new T.MultiheadAttention(8, 2, new Rng(0));
  assert.equal(
    [...m.stateDict().keys()],
    ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias'],
  );
  assert.equal([...m.in_proj_weight.shape], [24, 8]);
  assert.ok(
    m.in_proj_bias.toArray().every((v) => v === 0) && m.out_proj.bias?.toArray().every((v) => v === 0),
  );
  const xavier = Math.sqrt(6 / (8 + 24));
  assert.ok(Math.max(...m.in_proj_weight.toArray().map(Math.abs)) <= xavier);
});

for (const heads of [1, 2, 4]) {
  const m = new T.MultiheadAttention(4, heads, rng, { batchFirst: true }).toDtype('float64');
  checkGrad(`MultiheadAttention, ${heads} head(s), every parameter`, (x) => m.forward(x), [
    r([2, 3, 4]),
    ...m.parameters(),
  ]);
}
{
  const m = new T.MultiheadAttention(4, 2, rng, { batchFirst: true }).toDtype('float64');
  checkGrad('MultiheadAttention cross-attention (query, key, value)', (q, k, v) => m.forward(q, k, v), [
    r([2, 2, 4]),
    r([2, 3, 4]),
    r([2, 3, 4]),
  ]);
}

// ---------------------------------------------------------------------------------------------
// Time embedding, and errors

test('time embedding: sin(t / 10000^(j / (d/2))) for j < d/2, then the cosines', () => {
  const emb = T.timeEmbedding([0, 3, 700], 8, 'float64');
  assert.equal([...emb.shape], [3, 8]);
  for (const [row, t] of [0, 3, 700].entries())
    for (let j = 0; j < 4; j++) {
      const angle = t / Math.pow(10000, j / 4);
      assert.ok(Math.abs(emb.data[row * 8 + j] - Math.sin(angle)) < 1e-4, `sin t=${t} j=${j}`);
      assert.ok(Math.abs(emb.data[row * 8 + 4 + j] - Math.cos(angle)) < 1e-4, `cos t=${t} j=${j}`);
    }
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
  assert.throws(
    () => T.groupNorm(T.zeros([2, 6, 4]), 4, null, null),
    /groupNorm: 6 channels of input \[2,6,4\] cannot be split into 4 groups/,
  );
  assert.throws(
    () => T.groupNorm(T.zeros([2, 6, 4]), 3, T.zeros([4]), null),
    /groupNorm: weight \[4\] does not match the 6 channels/,
  );
  assert.throws(() => new T.GroupNorm(8, 12), /GroupNorm: 12 channels cannot be split into 8 groups/);
  assert.throws(() => T.softmax(T.zeros([2, 3]), 0), /softmax: only the last axis is supported/);
  assert.throws(
    () => new T.MultiheadAttention(6, 4, rng),
    /MultiheadAttention: 4 heads do not divide the embedding dimension 6/,
  );
  const m = new T.MultiheadAttention(4, 2, rng, { batchFirst: true });
  assert.throws(
    () => m.forward(T.zeros([2, 3, 5])),
    /MultiheadAttention: query \[2,3,5\] must be 3-D with 4 features last/,
  );
  assert.throws(() => m.forward(T.zeros([2, 3, 4]), T.zeros([1, 3, 4])), /disagree on batch or length/);
});

test.run();
