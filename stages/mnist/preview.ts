// The live preview of the image stage's training: every few minutes of training the current EMA weights
// draw the same starting noise into images (DDIM, a few steps). Eight are shown under the progress bar
// as character cells (colour as brightness) and saved as a PNG; all of them are scored by the judge, a
// row of preview-log.csv, so a run carries its own curve. At the end one picture lines the previews up
// over time: the same noise becoming digits, or shapes.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { Tensor, type UNet } from '../../core/index.ts';
import type { JudgeScores } from '../../core/eval/judge.ts';
import type { TrainingState } from '../../core/io/checkpoint.ts';
import { readSafetensors, writeSafetensors } from '../../core/io/safetensors.ts';
import { imageGrid } from '../../plots/index.ts';
import { terminalImages } from '../../plots/terminal.ts';
import type { StageConfig } from '../lib/config.ts';
import type { OutputDir } from '../lib/output.ts';
import type { ImageData } from './data.ts';
import { judgeImages } from './judge.ts';
import { GUIDANCE } from './draw.ts';
import { drawSamples } from './sample.ts';

/** Images drawn per preview (all judged), of which the first `SHOWN` are shown; DDIM with `STEPS` steps. */
export const PREVIEW = { count: 32, shown: 8, steps: 10 };

type Row = { step: number; images: number; minutes: number; scores: JudgeScores; shown: Float32Array };

const LOG_HEADER = 'step,images,minutes,confident,entropy,fid,samples';

export class Preview {
  private readonly rows: Row[] = [];
  private next: number;
  /** Seconds spent on previews by this process, and the training time it started from. */
  private spent = 0;
  private readonly startSeconds: number;

  /** Previews every `minutes` of training, continuing a run resumed at `state` (its later rows dropped). */
  constructor(
    private readonly out: OutputDir,
    private readonly cfg: StageConfig,
    private readonly data: ImageData,
    private readonly minutes: number,
    private readonly seed: number,
    state: TrainingState,
  ) {
    this.next = (Math.floor(state.seconds / 60 / minutes) + 1) * minutes * 60;
    this.startSeconds = state.seconds;
    const log = out.path('preview-log.csv');
    const header = cfg.model_params.num_classes ? `${LOG_HEADER},asked` : LOG_HEADER;
    if (state.step === 0 || !existsSync(log)) out.writeFile('preview-log.csv', `${header}\n`);
    else {
      const lines = readFileSync(log, 'utf8').trim().split('\n');
      const kept = lines.filter((l, i) => i === 0 || Number(l.split(',')[0]) <= state.step);
      out.writeFile('preview-log.csv', kept.join('\n') + '\n');
    }
    if (state.step > 0) this.rows.push(...this.saved().filter((r) => r.step <= state.step));
  }

  /** Whether `seconds` of training have reached the next preview. */
  due(seconds: number): boolean {
    return seconds >= this.next;
  }

  /** Draws, saves and judges the preview of the EMA weights `ema` at `state`, and `show`s its picture. */
  take(ema: UNet, state: TrainingState, show: (text: string) => void): void {
    const t0 = performance.now();
    this.next = (Math.floor(state.seconds / 60 / this.minutes) + 1) * this.minutes * 60;
    const { count, shown, steps } = PREVIEW;
    // a conditional model is asked for the classes in turn, 0, 1, ..., 9, 0, ..., with the recommended guidance
    const classes = this.cfg.model_params.num_classes ?? 0;
    const labels = classes > 0 ? Array.from({ length: count }, (_, i) => i % classes) : undefined;
    const recommended = GUIDANCE[this.cfg.dataset_params.name];
    const { images } = drawSamples(ema, this.cfg, {
      ...{ sampler: 'ddim', steps, count, seed: this.seed, quiet: true },
      ...{ labels, guidance: recommended.scale, interval: recommended.interval },
    });
    const scores = judgeImages(this.data, images, count, labels);
    const minutes = state.seconds / 60;
    const row = {
      step: state.step,
      images: state.images,
      minutes,
      scores,
      shown: images.slice(0, shown * this.pixels),
    };
    this.rows.push(row);
    const label = `${minutes.toFixed(1)} min, ${state.images.toLocaleString('en')} images`;
    this.grid(
      `preview-step${String(state.step).padStart(6, '0')}.png`,
      row.shown,
      1,
      [],
      `${label}: ${scoreText(scores, count, this.data)}`,
    );
    appendFileSync(
      this.out.path('preview-log.csv'),
      `${state.step},${state.images},${minutes.toFixed(2)},${scores.confident},${scores.entropy.toFixed(4)},${scores.fid.toFixed(2)},${count}${scores.asked ? `,${scores.asked.accuracy}` : ''}\n`,
    );
    this.save();
    const { size } = this.data;
    const grey = brightness(row.shown, shown, this.data);
    show(`preview at ${label}: ${scoreText(scores, count, this.data)}\n${terminalImages(grey, { count: shown, height: size, width: size })}`); // prettier-ignore
    this.spent += (performance.now() - t0) / 1000;
  }

  /**
   * After training: when previews were taken, the trained model's closes the strip, and the film strip
   * is drawn. Returns a line saying what the previews cost, or null when there were none.
   */
  finish(ema: UNet, state: TrainingState, show: (text: string) => void): string | null {
    const last = this.rows.at(-1);
    if (!last) return null;
    if (last.step !== state.step) this.take(ema, state, show);
    const labels = this.rows.map((r) => `${r.minutes.toFixed(r.minutes < 10 ? 1 : 0)} min`);
    const title = 'The same noise, drawn by the EMA weights as training goes on';
    this.grid('preview-film.png', this.stack(), this.rows.length, labels, title);
    const trained = state.seconds - this.startSeconds;
    return `previews: ${this.spent.toFixed(1)} s, ${((100 * this.spent) / Math.max(trained, 1e-9)).toFixed(1)}% of the ${trained.toFixed(0)} s trained here`;
  }

  /** Values in one image. */
  private get pixels(): number {
    return this.data.channels * this.data.size ** 2;
  }

  private grid(file: string, data: Float32Array, rows: number, rowLabels: string[], title: string): void {
    const { channels, size } = this.data;
    imageGrid({ data, n: rows * PREVIEW.shown, channels, height: size, width: size, nrow: PREVIEW.shown, rowLabels, title }) // prettier-ignore
      .save(this.out.record(this.out.path(file)));
  }

  /** Every preview so far in one file, so that a resumed run's film strip starts at the beginning. */
  private save(): void {
    const data = this.stack();
    const meta = this.rows.map(({ step, images, minutes, scores }) => ({ step, images, minutes, scores }));
    writeSafetensors(
      this.out.path('previews.safetensors'),
      new Map([['previews', new Tensor(data, [this.rows.length, PREVIEW.shown, this.data.channels, this.data.size, this.data.size])]]), // prettier-ignore
      { rows: JSON.stringify(meta) },
    );
  }

  /** The shown digits of every preview, one after another. */
  private stack(): Float32Array {
    const data = new Float32Array(this.rows.length * PREVIEW.shown * this.pixels);
    this.rows.forEach((r, i) => data.set(r.shown, i * r.shown.length));
    return data;
  }

  private saved(): Row[] {
    const path = this.out.path('previews.safetensors');
    if (!existsSync(path)) return [];
    const file = readSafetensors(path);
    const data = file.tensors.get('previews');
    const meta = JSON.parse(file.metadata.rows ?? '[]') as Omit<Row, 'shown'>[];
    const per = PREVIEW.shown * this.pixels;
    if (!data || data.size !== meta.length * per)
      throw new Error(`${path}: previews and their rows disagree`);
    return meta.map((m, i) => ({ ...m, shown: (data.data as Float32Array).slice(i * per, (i + 1) * per) }));
  }
}

const scoreText = (s: JudgeScores, n: number, data: ImageData) =>
  `${s.asked ? `asked ${data.noun} ${s.asked.accuracy.toFixed(2)}, ` : ''}confident ${s.confident.toFixed(2)}, entropy ${s.entropy.toFixed(2)}, FID(${n}) ${s.fid.toFixed(0)}`;

/** `count` images as grey levels for the terminal: colour images by their luma (ITU-R BT.601 weights). */
function brightness(images: Float32Array, count: number, { channels, size }: ImageData): Float32Array {
  if (channels === 1) return images;
  const plane = size * size;
  const grey = new Float32Array(count * plane);
  for (let n = 0; n < count; n++) {
    const at = n * 3 * plane;
    for (let p = 0; p < plane; p++) {
      grey[n * plane + p] = 0.299 * images[at + p] + 0.587 * images[at + plane + p] + 0.114 * images[at + 2 * plane + p]; // prettier-ignore
    }
  }
  return grey;
}
