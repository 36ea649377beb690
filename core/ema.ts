// An exponential moving average of a model's weights (Polyak averaging, as DDPM samples with): after
// every optimiser step, ema = decay ema + (1 - decay) w. The first steps use a smaller decay,
// (1 + step) / (10 + step), so the average is not dominated by the random initial weights.
import type { Module } from './nn/module.ts';

export class Ema {
  constructor(
    readonly model: Module,
    readonly shadow: Module,
    readonly decay: number,
  ) {
    if (!(decay >= 0 && decay < 1)) throw new Error(`Ema: decay must be in [0, 1), got ${decay}`);
    const [a, b] = [model.stateDict(), shadow.stateDict()];
    for (const [key, p] of a) {
      const q = b.get(key);
      if (!q || q.size !== p.size) throw new Error(`Ema: the shadow model has no matching '${key}'`);
      q.data.set(p.data);
    }
  }

  update(step: number): void {
    const d = Math.min(this.decay, (1 + step) / (10 + step));
    const shadow = this.shadow.stateDict();
    for (const [key, p] of this.model.stateDict()) {
      const q = (shadow.get(key) as typeof p).data;
      const w = p.data;
      for (let i = 0; i < w.length; i++) q[i] = d * q[i] + (1 - d) * w[i];
    }
  }
}
