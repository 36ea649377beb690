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
      x.accumulateGrad(gx, true);
    }
  });
}

/**
 * Cross-entropy of logits [N, C] against integer class labels, averaged over N (torch's
 * F.cross_entropy): loss = mean(logsumexp(z) - z[label]); d/dz = (softmax(z) - onehot(label)) / N.
 */
export function crossEntropy(logits: Tensor, labels: ArrayLike<number>): Tensor {
  if (logits.ndim !== 2 || logits.shape[0] !== labels.length) {
    throw new Error(`crossEntropy: logits ${formatShape(logits.shape)} do not match ${labels.length} labels`);
  }
  const [n, c] = logits.shape;
  const z = logits.data;
  const probs = allocate(logits.dtype, n * c);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    if (!Number.isInteger(label) || label < 0 || label >= c)
      throw new Error(`crossEntropy: label ${label} not in 0..${c - 1}`);
    let max = -Infinity;
    for (let j = 0; j < c; j++) max = Math.max(max, z[i * c + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(z[i * c + j] - max); // shifted by the max: no overflow
    for (let j = 0; j < c; j++) probs[i * c + j] = Math.exp(z[i * c + j] - max) / s;
    total += max + Math.log(s) - z[i * c + label];
  }
  const out = allocate(logits.dtype, 1);
  out[0] = total / n;
  return opResult('crossEntropy', out, [], [logits], (g) => {
    const gz = allocate(logits.dtype, n * c);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < c; j++) gz[i * c + j] = (g[0] * (probs[i * c + j] - (j === labels[i] ? 1 : 0))) / n;
    }
    logits.accumulateGrad(gz, true);
  });
}
