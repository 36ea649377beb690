// GroupNorm, softmax, multi-head attention and the time embedding: each forward against a direct loop
// written from PyTorch's definition, each backward against central differences in float64 (several
// groups, several heads).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as T from '../../core/index.ts';
import { Rng, Tensor } from '../../core/index.ts';
import { rand64 } from '../helpers/gradcheck.ts';
import { checkGrad, close, layerCheck } from '../helpers/layer-checks.ts';
import { getBackend, setBackend } from '../../core/kernels/registry.ts';
import { useBackend } from '../../core/kernels/select.ts';
import '../../core/kernels/wasm/index.ts';

const rng = new Rng(11);
const r = (shape: number[]) => rand64(rng, shape);

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

test('groupNorm with silu equals silu of groupNorm', () => {
  const x = r([2, 6, 3, 5]);
  const [w, b] = [r([6]), r([6])];
  close(T.groupNorm(x, 3, w, b, 1e-5, { silu: true }), T.silu(T.groupNorm(x, 3, w, b)).data, 1e-12, 'affine');
  close(T.groupNorm(x, 2, null, null, 1e-5, { silu: true }), T.silu(T.groupNorm(x, 2, null, null)).data, 1e-12, 'no affine'); // prettier-ignore
});

checkGrad('groupNorm then SiLU in one op', (x, w, b) => T.groupNorm(x, 2, w, b, 1e-5, { silu: true }), [
  r([2, 4, 3, 5]),
  r([4]),
  r([4]),
]);
checkGrad(
  'groupNorm then SiLU in one op, no affine',
  (x) => T.groupNorm(x, 3, null, null, 1e-5, { silu: true }),
  [r([2, 6, 7])],
);

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

layerCheck('GroupNorm module', new T.GroupNorm(2, 4), r([2, 4, 3, 1]));

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

test('MultiheadAttention without gradients (the fused attention kernel) equals the same formula', () => {
  const m = new T.MultiheadAttention(8, 2, new Rng(5), { batchFirst: true }).toDtype('float64');
  const [q, kv] = [r([3, 5, 8]), r([3, 9, 8])];
  close(
    T.noGrad(() => m.forward(q)),
    naiveAttention(m, q, q, q),
    1e-10,
    'self-attention',
  );
  close(
    T.noGrad(() => m.forward(q, kv, kv)),
    naiveAttention(m, q, kv, kv),
    1e-10,
    'cross-attention',
  );
  assert.throws(
    () => T.attention(r([2, 3, 4]), r([2, 5, 4]), r([2, 6, 4])),
    /attention: query \[2,3,4\], key \[2,5,4\] and value \[2,6,4\]/,
  );
});

// with gradients: the attentionBackward kernel (float64 runs the ts one, a query row at a time), self
// and cross, keys as values
checkGrad('attention with gradients, cross', (q, k, v) => T.attention(q, k, v), [
  r([2, 5, 3]),
  r([2, 4, 3]),
  r([2, 4, 3]),
]);
checkGrad('attention with gradients, keys as values', (q, k) => T.attention(q, k, k), [
  r([1, 2, 7, 4]),
  r([1, 2, 7, 4]),
]);

test('attention equals the composed formula in float32 on every backend, values and gradients', async () => {
  const before = getBackend();
  try {
    for (const backend of ['ts', 'wasm']) {
      await useBackend(backend);
      const g = new Rng(8);
      // blocks of queries: 300 rows make several of the wasm kernel's blocks, the last one short
      for (const shape of [
        [2, 3, 50, 8],
        [1, 4, 30, 16],
        [1, 1, 300, 12],
        [2, 2, 21, 5],
      ]) {
        const inputs = () => [0, 1, 2].map(() => g.randn(shape));
        const [q, k, v] = inputs();
        const w = g.randn(shape);
        const run = (f: (a: Tensor, b: Tensor, c: Tensor) => Tensor) => {
          const xs = [q, k, v].map((t) => new Tensor(t.data.slice(), t.shape, { requiresGrad: true }));
          const out = f(xs[0], xs[1], xs[2]);
          T.sum(T.mul(out, w)).backward();
          return [out, ...xs.map((x) => x.grad as Tensor)];
        };
        const fused = run((a, b, c) => T.attention(a, b, c));
        const composed = run((a, b, c) =>
          T.matmul(T.softmax(T.matmul(T.div(a, Math.sqrt(shape[3])), T.transpose(b, -2, -1)), -1), c),
        );
        ['out', 'dq', 'dk', 'dv'].forEach((what, i) =>
          close(fused[i], composed[i].data, 2e-6, `${backend} ${shape}: ${what}`),
        );
      }
    }
  } finally {
    setBackend(before);
  }
});

test('MultiheadAttention: self-attention read in place from the packed projection equals separate q, k, v projections, values and gradients, in float32 on ts and wasm', async () => {
  const before = getBackend();
  try {
    for (const backend of ['ts', 'wasm']) {
      await useBackend(backend);
      const m = new T.MultiheadAttention(16, 4, new Rng(5), { batchFirst: true });
      const g = new Rng(6);
      const [x, w] = [g.randn([3, 10, 16]), g.randn([3, 10, 16])];
      // self: one tensor (the packed path); then three tensors with its values (the projection path)
      const run = (copies: number) => {
        m.zeroGrad();
        const xs = Array.from({ length: copies }, () => new Tensor(x.data.slice(), x.shape, { requiresGrad: true })); // prettier-ignore
        const out = copies === 1 ? m.forward(xs[0]) : m.forward(xs[0], xs[1], xs[2]);
        T.sum(T.mul(out, w)).backward();
        const dx = new Float64Array(x.size);
        for (const t of xs) (t.grad as Tensor).data.forEach((v, i) => (dx[i] += v));
        return [out.data.slice(), dx, ...m.parameters().map((p) => (p.grad as Tensor).data.slice())];
      };
      const [packed, separate] = [run(1), run(3)];
      const names = ['out', 'dx', ...[...m.stateDict().keys()].map((k) => `d ${k}`)];
      names.forEach((what, i) => {
        const scale = Math.max(1, ...Array.from(separate[i], Math.abs));
        close(
          new Tensor(Float32Array.from(packed[i]), [packed[i].length]),
          separate[i],
          2e-6 * scale,
          `${backend}: ${what}`,
        );
      });
    }
  } finally {
    setBackend(before);
  }
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
