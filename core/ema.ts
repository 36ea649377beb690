// An exponential moving average of a model's weights (Polyak averaging, as DDPM samples with): after
// every optimiser step, ema = decay ema + (1 - decay) w. With `warmup` (as diffusers does) the first
// steps use a smaller decay, (1 + step) / (10 + step), so the average is not dominated by the random
// initial weights. That warm-up only reaches 0.9995 at step 17,990, so a run that starts from trained
// weights (init_from) should switch it off, or its ema_decay never takes effect.
import type { Module } from './nn/module.ts';

export class Ema {
  constructor(
    readonly model: Module,
    readonly shadow: Module,
    readonly decay: number,
    readonly warmup = true,
  ) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`Ema: decay must be in [0, 1), got ${decay}`);
    const [a, b] = [model.stateDict(), shadow.stateDict()];
    for (const [key, p] of a) {
      const q = b.get(key);
      if (!q || q.size !== p.size) throw new Error(`Ema: the shadow model has no matching '${key}'`);
      q.data.set(p.data);
    }
  }

  /** The first step at which the warm-up decay (1 + step) / (10 + step) reaches `decay`: (10 d - 1) / (1 - d). */
  static warmupSteps(decay: number): number {
    return Math.ceil((10 * decay - 1) / (1 - decay) - 1e-6); // 1e-6: 0.999 gives 8990.000...1
  }

  /** The decay applied after optimiser step `step` (counted from 0). */
  decayAt(step: number): number {
    return this.warmup ? Math.min(this.decay, (1 + step) / (10 + step)) : this.decay;
  }

  update(step: number): void {
    const d = this.decayAt(step);
    const shadow = this.shadow.stateDict();
    for (const [key, p] of this.model.stateDict()) {
      const q = (shadow.get(key) as typeof p).data;
      const w = p.data;
      for (let i = 0; i < w.length; i++) q[i] = d * q[i] + (1 - d) * w[i];
    }
  }
}

/** The widest a power-function EMA can be: sigma_rel at gamma = 0 (eq. 3), sqrt(1 / 12), about 0.2887. */
export const MAX_SIGMA_REL = Math.sqrt(1 / 12);

/**
 * EDM2's power-function EMA (Karras et al. 2024, eq. 2): after the t-th step (t = step + 1) the decay is
 * (1 - 1/t)^(gamma + 1), so the average always spans the same share of the training so far, however long
 * it runs. It is named by sigma_rel, the width of its weighting relative to the training's length (eq. 3:
 * sigma_rel^2 = (gamma + 1) / ((gamma + 2)^2 (gamma + 3))); EDM2's best are 0.05 to 0.15. For comparison,
 * the warm-up decay (1 + step) / (10 + step) of Ema is gamma = 8 while it lasts, sigma_rel 0.09.
 */
export class PowerEma extends Ema {
  readonly gamma: number;

  constructor(
    model: Module,
    shadow: Module,
    readonly sigmaRel: number,
  ) {
    super(model, shadow, 0, false);
    this.gamma = PowerEma.gammaOf(sigmaRel);
  }

  /** gamma for a sigma_rel in (0, MAX_SIGMA_REL): eq. 3 solved by bisection (sigma_rel falls as gamma grows). */
  static gammaOf(sigmaRel: number): number {
    const rel = (g: number) => Math.sqrt((g + 1) / ((g + 2) ** 2 * (g + 3)));
    if (!(sigmaRel > 0 && sigmaRel < MAX_SIGMA_REL)) {
      throw new Error(`PowerEma: sigma_rel must be in (0, ${MAX_SIGMA_REL.toFixed(4)}), got ${sigmaRel}`);
    }
    let [lo, hi] = [0, 1e7];
    for (let i = 0; i < 200; i++) {
      const mid = (lo + hi) / 2;
      if (rel(mid) > sigmaRel) lo = mid;
      else hi = mid;
    }
    return (lo + hi) / 2;
  }

  override decayAt(step: number): number {
    return (1 - 1 / (step + 1)) ** (this.gamma + 1);
  }
}
