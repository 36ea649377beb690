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

  update(step: number): void {
    const d = this.warmup ? Math.min(this.decay, (1 + step) / (10 + step)) : this.decay;
    const shadow = this.shadow.stateDict();
    for (const [key, p] of this.model.stateDict()) {
      const q = (shadow.get(key) as typeof p).data;
      const w = p.data;
      for (let i = 0; i < w.length; i++) q[i] = d * q[i] + (1 - d) * w[i];
    }
  }
}
