// Parity of the gpu.js im2col, col2im, conv2d forward, GroupNorm and softmax kernels with their TypeScript twins, on
// shapes chosen to break index arithmetic: size-1 everything, odd channel counts and image sizes,
// non-square kernels, stride 2 and mixed strides, padding, one group and one channel per group, rows
// that are not a multiple of 4, and outputs of more than 4096 cells (where webasm threads engage).
// Shared by tests/gpu.test.ts (Node: cpu, webasm, async) and tests/browser/entry.ts (webgl2, webgpu).
// Outputs start filled with junk, so a kernel that adds where it should overwrite (or the reverse:
// col2im adds onto x) is caught.
import type { ConvGeometry, KernelName } from '../../core/kernels/registry.ts';
import { col2imTs, conv2dForwardTs, im2colTs } from '../../core/kernels/ts-conv.ts';
import {
  groupNormBackwardTs,
  groupNormForwardTs,
  softmaxBackwardTs,
  softmaxForwardTs,
} from '../../core/kernels/ts-norm.ts';
import type { GpuKernels } from '../../gpu/kernels.ts';

/** n numbers of a fixed pseudo-random sequence (the caller seeds it), spread around 0. */
export type Fill = (n: number) => Float32Array;

/**
 * The largest error of one kernel over all its cases, and where it was, measured as in
 * tests/kernels.test.ts: |got - want| / ((1 + |want|) sqrt(terms)), where `terms` is how many numbers
 * were summed into that output. The TypeScript twins sum in float64 and these kernels in float32, whose
 * rounding error grows like sqrt(terms); float32 agreement is a worst value below about 1e-5.
 */
export type Worst = { kernel: KernelName; worst: number; where: string; cases: number; error?: string };

/** [batch, channels, height, width, kh, kw, strideH, strideW, padH, padW] */
const CONVS = [
  [1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
  [2, 3, 7, 5, 3, 2, 2, 1, 1, 1],
  [3, 5, 9, 9, 3, 3, 2, 2, 1, 1],
  [2, 4, 6, 6, 4, 4, 2, 2, 1, 1], // the UNet's down- and up-sampling geometry
  [1, 2, 5, 7, 2, 3, 1, 3, 0, 2],
  [4, 8, 16, 16, 3, 3, 1, 1, 1, 1], // 73,728 cols and 8,192 pixels
];

/** [batch, channels, spatial, groups] */
const GROUP_NORMS = [
  [1, 1, 1, 1],
  [2, 6, 35, 3],
  [3, 5, 7, 5],
  [2, 8, 13, 1],
  [4, 16, 256, 8], // 16,384 elements
];

/** [rows, cols] */
const SOFTMAXES = [
  [1, 1],
  [7, 13],
  [5, 1],
  [3, 31],
  [64, 65], // 4,160 elements
];

function geometry([batch, channels, height, width, kh, kw, strideH, strideW, padH, padW]: number[]) {
  const outH = Math.floor((height + 2 * padH - kh) / strideH) + 1;
  const outW = Math.floor((width + 2 * padW - kw) / strideW) + 1;
  const g: ConvGeometry = {
    batch,
    channels,
    height,
    width,
    kh,
    kw,
    strideH,
    strideW,
    padH,
    padW,
    outH,
    outW,
  };
  return { g, pixels: batch * channels * height * width, cols: channels * kh * kw * batch * outH * outW };
}

class Tally {
  worst = 0;
  where = '';
  cases = 0;
  constructor(readonly kernel: KernelName) {}
  check(got: ArrayLike<number>, want: ArrayLike<number>, terms: number, what: string): void {
    this.cases++;
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i] - want[i]) / ((1 + Math.abs(want[i])) * Math.sqrt(terms));
      // NaN compares false: count it as the worst possible error
      if (!(err <= this.worst)) [this.worst, this.where] = [Number.isNaN(err) ? Infinity : err, `${what}[${i}]: ${got[i]} vs ${want[i]}`]; // prettier-ignore
    }
  }
  error?: string;
  result(): Worst {
    const { kernel, worst, where, cases, error } = this;
    return { kernel, worst, where, cases, ...(error === undefined ? {} : { error }) };
  }
}

/** Runs one kernel's `cases`; an exception (gpu.js cannot compile or run it, say) is recorded, not thrown. */
async function guarded(tally: Tally, cases: (check: Tally['check']) => Promise<void>): Promise<Worst> {
  try {
    await cases((got, want, terms, what) => tally.check(got, want, terms, what));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    tally.error = message.split('\n').slice(0, 3).join(' / ');
  }
  return tally.result();
}

/** Runs every case of every kernel on `kernels` and its TypeScript twin; one Worst per kernel. */
export async function parity(kernels: GpuKernels, fill: Fill): Promise<Worst[]> {
  const results: Worst[] = [];
  const convs = CONVS.map((shape) => ({ ...geometry(shape), what: `[${shape.join(',')}]` }));
  results.push(
    await guarded(new Tally('im2col'), async (check) => {
      for (const { g, pixels, cols, what } of convs) {
        const x = fill(pixels);
        const junk = fill(cols);
        const [want, got] = [junk.slice(), junk.slice()];
        im2colTs({ ...g, x, cols: want });
        await kernels.im2col({ ...g, x, cols: got });
        check(got, want, 1, `im2col ${what}`);
      }
    }),
  );
  results.push(
    await guarded(new Tally('col2im'), async (check) => {
      for (const { g, pixels, cols, what } of convs) {
        const c = fill(cols);
        const x0 = fill(pixels); // col2im adds onto whatever x holds
        const [want, got] = [x0.slice(), x0.slice()];
        col2imTs({ ...g, x: want, cols: c });
        await kernels.col2im({ ...g, x: got, cols: c });
        check(got, want, 1 + g.kh * g.kw, `col2im ${what}`);
      }
    }),
  );
  results.push(
    await guarded(new Tally('conv2dForward'), async (check) => {
      // alternate: the layers' layout with a bias, the product's layout without
      for (const [i, { g, pixels, what }] of convs.entries()) {
        const cout = 3;
        const K = g.channels * g.kh * g.kw;
        const outSize = cout * g.batch * g.outH * g.outW;
        const [x, w] = [fill(pixels), fill(cout * K)];
        const bias = i % 2 === 0 ? fill(cout) : null;
        const junk = fill(outSize);
        const [want, got] = [junk.slice(), junk.slice()];
        const args = { ...g, x, w, cout, bias, batchMajor: i % 2 === 0 };
        conv2dForwardTs({ ...args, out: want });
        await kernels.conv2dForward({ ...args, out: got });
        check(got, want, K + 1, `conv2dForward ${what}${bias ? '' : ' product layout, no bias'}`);
      }
    }),
  );

  // alternate: with weight and bias, and with neither (null)
  const norms = GROUP_NORMS.map(([batch, channels, spatial, groups], i) => {
    const affine = i % 2 === 0;
    const n = batch * channels * spatial;
    const x = fill(n).map((v, j) => 3 * v + (j % 7) - 2); // groups with means away from 0
    const what = `[${batch},${channels},${spatial},${groups}]${affine ? '' : ' no affine'}`;
    const [weight, bias] = affine ? [fill(channels), fill(channels)] : [null, null];
    const dims = { batch, channels, spatial, groups };
    // the statistics the backward receives come from the reference forward
    const stats = { out: new Float32Array(n), mean: new Float32Array(batch * groups), rstd: new Float32Array(batch * groups) }; // prettier-ignore
    groupNormForwardTs({ ...dims, x, weight, bias, eps: 1e-5, ...stats });
    const count = (channels / groups) * spatial; // the terms of a group's mean and variance
    return { dims, n, x, weight, bias, what, stats, count };
  });
  results.push(
    await guarded(new Tally('groupNormForward'), async (check) => {
      for (const { dims, n, x, weight, bias, what, count } of norms) {
        const junk = {
          out: fill(n),
          mean: fill(dims.batch * dims.groups),
          rstd: fill(dims.batch * dims.groups),
        };
        const want = { out: junk.out.slice(), mean: junk.mean.slice(), rstd: junk.rstd.slice() };
        const got = { out: junk.out.slice(), mean: junk.mean.slice(), rstd: junk.rstd.slice() };
        groupNormForwardTs({ ...dims, x, weight, bias, eps: 1e-5, ...want });
        await kernels.groupNormForward({ ...dims, x, weight, bias, eps: 1e-5, ...got });
        check(got.out, want.out, count, `out ${what}`);
        check(got.mean, want.mean, count, `mean ${what}`);
        check(got.rstd, want.rstd, count, `rstd ${what}`);
      }
    }),
  );
  results.push(
    await guarded(new Tally('groupNormBackward'), async (check) => {
      for (const { dims, n, x, weight, what, stats, count } of norms) {
        const gy = fill(n);
        // every output, then each optional output alone (the others null)
        for (const needs of ['xwb', 'x', 'w', 'b']) {
          const junk = {
            gx: needs.includes('x') ? fill(n) : null,
            gWeight: needs.includes('w') ? fill(dims.channels) : null,
            gBias: needs.includes('b') ? fill(dims.channels) : null,
          };
          const copy = () => ({ gx: junk.gx?.slice() ?? null, gWeight: junk.gWeight?.slice() ?? null, gBias: junk.gBias?.slice() ?? null }); // prettier-ignore
          const [want, got] = [copy(), copy()];
          const args = { ...dims, x, weight, mean: stats.mean, rstd: stats.rstd, gy };
          groupNormBackwardTs({ ...args, ...want });
          await kernels.groupNormBackward({ ...args, ...got });
          for (const k of ['gx', 'gWeight', 'gBias'] as const) {
            const [g1, g2] = [got[k], want[k]];
            // gx sums over its group, the parameter gradients over every sample and position
            const terms = k === 'gx' ? count : dims.batch * dims.spatial;
            if (g1 && g2) check(g1, g2, terms, `${k} ${what} needs=${needs}`);
          }
        }
      }
    }),
  );

  const softmaxes = SOFTMAXES.map(([rows, cols]) => {
    const x = fill(rows * cols).map((v) => 8 * v); // logits far enough apart that the max matters
    const y = new Float32Array(rows * cols);
    softmaxForwardTs({ x, out: y, rows, cols });
    return { rows, cols, x, y, what: `${rows}x${cols}` };
  });
  results.push(
    await guarded(new Tally('softmaxForward'), async (check) => {
      for (const { rows, cols, x, y, what } of softmaxes) {
        const got = fill(rows * cols);
        await kernels.softmaxForward({ x, out: got, rows, cols });
        check(got, y, cols, `softmax ${what}`);
      }
    }),
  );
  results.push(
    await guarded(new Tally('softmaxBackward'), async (check) => {
      for (const { rows, cols, y, what } of softmaxes) {
        const gy = fill(rows * cols);
        const junk = fill(rows * cols);
        const [want, got] = [junk.slice(), junk.slice()];
        softmaxBackwardTs({ y, gy, gx: want, rows, cols });
        await kernels.softmaxBackward({ y, gy, gx: got, rows, cols });
        check(got, want, cols, `softmax backward ${what}`);
      }
    }),
  );
  return results;
}
