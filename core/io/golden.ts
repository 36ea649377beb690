// Checking this UNet against PyTorch's on a golden file: a safetensors file holding the config
// (`__metadata__.config`), the weights (`model.<state_dict key>`), the inputs (`input.x`, `input.t`,
// `input.noise`, and `input.y`, the class labels, for a class-conditional config), and what PyTorch
// computed from them: `output.eps`, `output.loss` = mean((eps - noise)^2)
// and the gradients of that loss (`grad.model.<key>`, `grad.input.x`). tests/fixtures/make_golden.py
// writes such files; `npm run verify` runs the comparison below.
import { Tensor, zeros } from '../tensor.ts';
import { Rng } from '../random.ts';
import { mseLoss } from '../ops/loss.ts';
import { reshape } from '../ops/shape.ts';
import { UNet } from '../nn/unet.ts';
import type { UNetConfig } from '../nn/unet-config.ts';
import { loadModule, requireTensor, type SafetensorsFile } from './safetensors.ts';

export const BAR = 1e-4;
/**
 * A reference gradient smaller than this fraction of all the gradients together is zero up to float32
 * rounding, and its relative error is the ratio of two rounding noises. It happens for real: with 8
 * channels and 8 GroupNorm groups each group is one channel, so a per-channel shift just before a
 * GroupNorm (a conv bias, the time projection) cannot change the output and its exact gradient is 0.
 * Such tensors are judged by their error relative to the norm of all gradients instead.
 */
export const ZERO_FRACTION = 1e-6;

/** Our forward and backward on the file's weights and inputs, under the file's tensor names. */
export function runGoldenPass(
  file: SafetensorsFile,
  source = 'golden file',
): { model: UNet; ours: Map<string, Tensor> } {
  const text = file.metadata.config;
  if (text === undefined) throw new Error(`${source}: no __metadata__.config (the model config as JSON)`);
  let config: UNetConfig;
  try {
    config = JSON.parse(text) as UNetConfig;
  } catch (e) {
    throw new Error(`${source}: __metadata__.config is not valid JSON (${(e as Error).message})`);
  }
  const model = new UNet(config, new Rng(0)); // the weights come from the file
  loadModule(file, model, 'model.', source);
  const xRef = requireTensor(file, 'input.x', undefined, source);
  const batch = xRef.shape[0] ?? 0;
  const t = requireTensor(file, 'input.t', [batch], source);
  const noise = requireTensor(file, 'input.noise', xRef.shape, source);
  const y = model.class_emb ? requireTensor(file, 'input.y', [batch], source) : null;
  const x = xRef.clone();
  x.requiresGrad = true;
  model.zeroGrad();
  const eps = model.forward(x, t.data, { labels: y?.data });
  const loss = mseLoss(eps, noise);
  loss.backward();
  const ours = new Map<string, Tensor>();
  for (const [key, p] of model.stateDict()) ours.set(`model.${key}`, p);
  ours.set('input.x', xRef);
  ours.set('input.t', t);
  ours.set('input.noise', noise);
  if (y) ours.set('input.y', y);
  ours.set('output.eps', eps.detach());
  ours.set('output.loss', reshape(loss.detach(), [1]));
  for (const [key, p] of model.stateDict()) ours.set(`grad.model.${key}`, p.grad ?? zeros(p.shape));
  ours.set('grad.input.x', x.grad ?? zeros(x.shape));
  return { model, ours };
}

export interface Comparison {
  name: string;
  shape: readonly number[];
  /** ||ours - ref|| / ||ref|| */
  relError: number;
  refNorm: number;
  /** The reference is zero to float32 rounding (see ZERO_FRACTION); judged by `error` against all gradients. */
  zeroInReference: boolean;
  /** The figure held to the bar: relError, or ||ours - ref|| / ||all reference gradients|| when zeroInReference. */
  error: number;
}

function norm(a: ArrayLike<number>, b?: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = b ? a[i] - b[i] : a[i];
    s += d * d;
  }
  return Math.sqrt(s);
}

/** Compares `output.*` and `grad.*` of ours with the file's, in our order; every one must be in the file. */
export function compareGolden(
  ours: Map<string, Tensor>,
  file: SafetensorsFile,
  source = 'golden file',
): Comparison[] {
  const names = [...ours.keys()].filter((n) => n.startsWith('output.') || n.startsWith('grad.'));
  const refs = names.map((n) => requireTensor(file, n, ours.get(n)?.shape, source));
  const allGrads = Math.sqrt(
    refs.reduce((s, r, i) => (names[i].startsWith('grad.') ? s + norm(r.data) ** 2 : s), 0),
  );
  return names.map((name, i) => {
    const mine = ours.get(name) as Tensor;
    const ref = refs[i];
    const refNorm = norm(ref.data);
    const diff = norm(mine.data, ref.data);
    const relError = refNorm > 0 ? diff / refNorm : diff === 0 ? 0 : Infinity;
    const zeroInReference = name.startsWith('grad.') && refNorm <= ZERO_FRACTION * allGrads;
    const error = zeroInReference ? diff / allGrads : relError;
    return { name, shape: mine.shape, relError, refNorm, zeroInReference, error };
  });
}
