// The messages between the page (web/main.ts) and the Web Worker that runs the core (web/worker.ts).
import type { ImageSampler } from '../core/diffusion/image.ts';

export type Toy = '1d' | 'multimodal';

export type Request =
  | { kind: 'backend'; name: string }
  | { kind: 'toy'; toy: Toy; seed: number; steps: number }
  | {
      kind: 'digits';
      checkpoint: string;
      sampler: ImageSampler;
      steps: number;
      count: number;
      seed: number;
      /** A class-conditional checkpoint: the class asked of every sample, or 'all' (spread evenly). */
      classes: number | 'all';
      guidance: number;
    }
  | { kind: 'bench' }
  | { kind: 'stop' };

/** An RGB raster drawn by plots/ in the worker, shown on a canvas. */
export type Picture = { width: number; height: number; rgb: Uint8ClampedArray };

export type ToySummary =
  { toy: '1d'; mean: number; std: number } | { toy: 'multimodal'; shares: number[]; stds: number[] };

export type Reply =
  | { kind: 'ready'; backends: string[] }
  /** The WebGL2 renderer the worker reaches (gpu.js needs it for its GPU mode), or null. */
  | { kind: 'webgl2'; renderer: string | null }
  | { kind: 'backend'; name: string; described: string }
  | { kind: 'progress'; task: string; done: number; total: number; msPerStep: number; loss?: number }
  | { kind: 'picture'; id: 'loss' | 'levels' | 'level'; picture: Picture; caption: string }
  | { kind: 'toy-done'; summary: ToySummary; seconds: number; msPerStep: number }
  | {
      kind: 'digits-step';
      step: number;
      steps: number;
      start: number;
      channels: number;
      size: number;
      xt: Float32Array;
      x0: Float32Array;
    }
  | {
      kind: 'digits-done';
      images: Float32Array;
      labels: number[] | null;
      channels: number;
      size: number;
      seconds: number;
      msPerStep: number;
      /** How the batches were split between threads, when they were. */
      where?: string;
    }
  /** One bench row on one backend: `value` in `unit` (higher is faster). */
  | { kind: 'bench-row'; backend: string; row: string; value: number; unit: string }
  | { kind: 'bench-done'; backend: string }
  | { kind: 'stopped' }
  | { kind: 'error'; message: string };
