// Group normalisation (Wu & He 2018), as torch.nn.functional.group_norm: the channels of each sample are
// split into `groups` groups, each normalised to zero mean and unit (biased) variance over its channels
// and positions, then scaled and shifted per channel. One fused kernel forward, one backward.
import { allocate, allocateOutput, dataAs, opResult, resultDtype, Tensor } from '../tensor.ts';
import { formatShape } from '../shape.ts';
import { kernel } from '../kernels/registry.ts';
import '../kernels/ts-norm.ts';

/**
 * x [batch, channels, ...]; weight and bias [channels] or null. With `silu`, returns silu(GroupNorm(x))
 * in the same kernel call (the norm's output is never stored; its backward recomputes it).
 */
export function groupNorm(
  x: Tensor,
  groups: number,
  weight: Tensor | null,
  bias: Tensor | null,
  eps = 1e-5,
  { silu = false }: { silu?: boolean } = {},
): Tensor {
  const op = silu ? 'groupNormSilu' : 'groupNorm';
  if (x.ndim < 2) throw new Error(`${op}: input must be [batch, channels, ...], got ${formatShape(x.shape)}`);
  const [batch, channels] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new Error(
      `${op}: ${channels} channels of input ${formatShape(x.shape)} cannot be split into ${groups} groups`,
    );
  }
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== channels)) {
      throw new Error(
        `${op}: ${name} ${formatShape(t.shape)} does not match the ${channels} channels of ${formatShape(x.shape)}`,
      );
    }
  }
  const dtype = resultDtype(x, ...(weight ? [weight] : []), ...(bias ? [bias] : []));
  const f64 = dtype === 'float64';
  const X = dataAs(x, dtype);
  const W = weight ? dataAs(weight, dtype) : null;
  const spatial = x.size / (batch * channels);
  const dims = { batch, channels, spatial, groups };
  const out = allocateOutput(dtype, x.size);
  const mean = allocate(dtype, batch * groups);
  const rstd = allocate(dtype, batch * groups);
  const B = bias ? dataAs(bias, dtype) : null;
  kernel('groupNormForward', f64)({ ...dims, x: X, weight: W, bias: B, eps, silu, out, mean, rstd });
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return opResult(op, out, x.shape, inputs, (g) => {
    // the kernel writes all three whole
    const gx = x.requiresGrad ? allocateOutput(dtype, x.size) : null;
    const gWeight = weight?.requiresGrad ? allocateOutput(dtype, channels) : null;
    const gBias = bias?.requiresGrad ? allocateOutput(dtype, channels) : null;
    kernel('groupNormBackward', f64)({ ...dims, x: X, weight: W, bias: B, silu, mean, rstd, gy: g, gx, gWeight, gBias }); // prettier-ignore
    if (gx) x.accumulateGrad(gx, true);
    if (gWeight) weight?.accumulateGrad(gWeight, true);
    if (gBias) bias?.accumulateGrad(gBias, true);
  });
}
