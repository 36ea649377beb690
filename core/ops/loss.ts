// Losses.
import { allocate, opResult, Tensor } from '../tensor.ts';
import { formatShape, sameShape } from '../shape.ts';

/** mean((pred - target)^2) over every element, like torch.nn.functional.mse_loss. */
export function mseLoss(pred: Tensor, target: Tensor): Tensor {
  if (!sameShape(pred.shape, target.shape)) {
    throw new Error(
      `mseLoss: prediction ${formatShape(pred.shape)} and target ${formatShape(target.shape)} differ`,
    );
  }
  const n = pred.size;
  const p = pred.data;
  const t = target.data;
  let acc = 0;
  for (let i = 0; i < n; i++) acc += (p[i] - t[i]) * (p[i] - t[i]);
  const out = allocate(pred.dtype, 1);
  out[0] = acc / n;
  return opResult('mseLoss', out, [], [pred, target], (g) => {
    const scale = (2 * g[0]) / n; // d/dp of mean (p - t)^2 = 2 (p - t) / n
    for (const [x, sign] of [
      [pred, 1],
      [target, -1],
    ] as const) {
      if (!x.requiresGrad) continue;
      const gx = allocate(x.dtype, n);
      for (let i = 0; i < n; i++) gx[i] = sign * scale * (p[i] - t[i]);
      x.accumulateGrad(gx);
    }
  });
}
