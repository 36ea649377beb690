// `npm run stage:mnist -- judge DIR` (and stage:rgb's): scores DIR/samples.safetensors with the data
// set's judge (core/eval/judge.ts), trained by `npm run judge:train` and committed beside the stage's
// checkpoints; RGB images are also scored on their colours (core/eval/colour.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { colourDistance } from '../../core/eval/colour.ts';
import { parallelBarsShare } from '../../core/eval/stripes.ts';
import {
  checkImages,
  judgeSamples,
  loadJudge,
  type FeatureStats,
  type ImageJudge,
  type JudgeScores,
} from '../../core/eval/judge.ts';
import { readSafetensors } from '../../core/io/safetensors.ts';
import { useBackend } from '../../core/kernels/select.ts';
import { usageLine, UsageError, type FlagSpec } from '../lib/cli.ts';
import { OutputDir } from '../lib/output.ts';
import { pickImages, type ImageData, type Images } from './data.ts';
import type { ImageStage, JudgeFlags } from './flags.ts';

/**
 * The judge's scores, plus for colour images the distance between the samples' and the held-out images'
 * histograms of mean hue and saturation (0: the same colours, 1: none in common), and for shapes asked
 * to be stripes the share whose bars are parallel (core/eval/stripes.ts), which the judge cannot tell.
 */
export type StageScores = JudgeScores & { colour?: number; bars?: number };

/** Judge geometry of a data set. */
const shapeOf = (data: ImageData) => ({ ...data, classes: data.classNames.length });

/**
 * The judge's scores of `count` images [count, C, H, W] in [0, 1] of `data`, against its held-out
 * images; with the class each was asked to be, the share that is.
 */
export function judgeImages(
  data: ImageData,
  images: Float32Array,
  count: number,
  asked?: ArrayLike<number>,
): StageScores {
  return scoreImages(committedJudge(data), data, images, count, asked);
}

/** judgeImages with a given judge and its held-out images' features (judge:train scores its new one). */
export function scoreImages(
  { judge, real, test }: { judge: ImageJudge; real: FeatureStats; test: Images },
  data: ImageData,
  images: Float32Array,
  count: number,
  asked?: ArrayLike<number>,
): StageScores {
  const scores: StageScores = judgeSamples(judge, images, count, real, asked);
  if (data.channels === 3) scores.colour = colourDistance(images, count, test.images, test.count, data.size);
  const stripes = data.classNames.indexOf('stripes');
  if (data.name === 'shapes' && asked && scores.asked?.perClass[stripes] != null) {
    const pixels = data.channels * data.size * data.size;
    const which = Array.from(asked, (k, i) => (k === stripes ? i : -1)).filter((i) => i >= 0);
    scores.bars = parallelBarsShare(pickImages(images, which, pixels), which.length, data.size);
  }
  return scores;
}

const loaded = new Map<string, ReturnType<typeof loadJudge> & { test: ReturnType<ImageData['split']>['test'] }>(); // prettier-ignore

/** A data set's committed judge and the features of its held-out images, loaded once per process. */
function committedJudge(data: ImageData) {
  let entry = loaded.get(data.judge);
  if (!entry) {
    if (!existsSync(data.judge)) {
      const how = data.name === 'mnist' ? '' : ` -- --data ${data.name} --size ${data.size} --steps 3000`;
      throw new Error(`no judge for these images at ${data.judge}; train one with npm run judge:train${how}`);
    }
    const { test } = data.split();
    entry = { ...loadJudge(data.judge, test, shapeOf(data)), test };
    loaded.set(data.judge, entry);
  }
  return entry;
}

export function formatScores(s: StageScores, data: ImageData): string {
  const fid = data.name === 'mnist' ? 'MNIST-FID' : 'FID';
  const colour = s.colour === undefined ? '' : ` | colour ${s.colour.toFixed(3)}`;
  const bars = s.bars === undefined ? '' : ` | stripes with parallel bars ${s.bars.toFixed(3)}`;
  const line = `confident ${s.confident.toFixed(3)} | class entropy ${s.entropy.toFixed(3)} | ${fid} ${s.fid.toFixed(1)}${colour}${bars} (${s.samples} samples)`; // prettier-ignore
  if (!s.asked) return line;
  const name = (k: number) => data.classNames[k];
  const each = s.asked.perClass
    .map((a, k) => (a === null ? '' : `${name(k)}: ${a.toFixed(2)}`))
    .filter(Boolean);
  return `asked ${data.noun} ${s.asked.accuracy.toFixed(3)} (${each.join(', ')}) | ${line}`;
}

export async function judge(
  flags: JudgeFlags,
  stage: ImageStage,
  spec: Record<string, FlagSpec>,
): Promise<void> {
  if (flags.positionals.length !== 1) {
    const got = flags.positionals.length;
    throw new UsageError(
      `judge needs one folder holding samples.safetensors, got ${got} argument${got === 1 ? '' : 's'}`,
      usageLine(`${stage.command} -- judge`, spec, 'DIR'),
    );
  }
  const dir = flags.positionals[0];
  const path = join(dir, 'samples.safetensors');
  const file = readSafetensors(path);
  const samples = file.tensors.get('samples');
  const [, c, h, w] = samples?.shape ?? [];
  const data = stage.dataFor(h ?? 0);
  const { channels, size } = data;
  if (!samples || samples.ndim !== 4 || c !== channels || h !== size || w !== size) {
    throw new Error(
      `${path}: ${stage.command} judges a tensor 'samples' of shape [N, ${channels}, ${size}, ${size}]`,
    );
  }
  const labels = file.tensors.get('labels');
  if (
    labels &&
    !(labels.ndim === 1 && labels.shape[0] === samples.shape[0] && file.dtypes.get('labels') !== 'F32')
  ) {
    throw new Error(`${path}: 'labels' must be ${samples.shape[0]} integers (I32 or I64), one per sample`);
  }
  checkImages(samples.data as Float32Array, samples.shape[0], shapeOf(data)); // before the work of judging
  await useBackend(flags.backend); // the judge's features of 2,000 real images are most of the work
  const scores = judgeImages(data, samples.data as Float32Array, samples.shape[0], labels?.data);
  new OutputDir(dir).writeJson('scores.json', scores);
  console.log(formatScores(scores, data));
}
