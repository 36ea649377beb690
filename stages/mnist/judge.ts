// `npm run stage:mnist -- judge DIR`: scores DIR/samples.safetensors with the judge (core/eval/judge.ts),
// trained by `npm run judge:train` and committed as stages/mnist/judge.safetensors.
import { join } from 'node:path';
import { mnistSplit } from '../../core/data/mnist.ts';
import { checkImages, judgeSamples, loadJudge, type JudgeScores } from '../../core/eval/judge.ts';
import { readSafetensors } from '../../core/io/safetensors.ts';
import { useBackend } from '../../core/kernels/select.ts';
import { usageLine, UsageError } from '../lib/cli.ts';
import { OutputDir } from '../lib/output.ts';
import { JUDGE_FLAGS, type JudgeFlags } from './flags.ts';

export const JUDGE = 'stages/mnist/judge.safetensors';

/**
 * The judge's scores of `count` images [count, 1, 28, 28] in [0, 1], against the 2,000 held-out digits;
 * with the digit each was asked to be, the share that is.
 */
export function judgeImages(images: Float32Array, count: number, asked?: ArrayLike<number>): JudgeScores {
  const { judge, real } = committedJudge();
  return judgeSamples(judge, images, count, real, asked);
}

let loaded: ReturnType<typeof loadJudge> | null = null;

/** The committed judge and the features of the held-out digits, loaded once per process. */
function committedJudge(): ReturnType<typeof loadJudge> {
  loaded ??= loadJudge(JUDGE, mnistSplit().test);
  return loaded;
}

export function formatScores(s: JudgeScores): string {
  const line = `confident ${s.confident.toFixed(3)} | class entropy ${s.entropy.toFixed(3)} | MNIST-FID ${s.fid.toFixed(1)} (${s.samples} samples)`;
  if (!s.asked) return line;
  const each = s.asked.perDigit.map((a, d) => (a === null ? '' : `${d}: ${a.toFixed(2)}`)).filter(Boolean);
  return `asked digit ${s.asked.accuracy.toFixed(3)} (${each.join(', ')}) | ${line}`;
}

export async function judge(flags: JudgeFlags): Promise<void> {
  if (flags.positionals.length !== 1) {
    const got = flags.positionals.length;
    throw new UsageError(
      `judge needs one folder holding samples.safetensors, got ${got} argument${got === 1 ? '' : 's'}`,
      usageLine('stage:mnist -- judge', JUDGE_FLAGS, 'DIR'),
    );
  }
  const dir = flags.positionals[0];
  const path = join(dir, 'samples.safetensors');
  const file = readSafetensors(path);
  const samples = file.tensors.get('samples');
  const [, c, h, w] = samples?.shape ?? [];
  if (!samples || samples.ndim !== 4 || c !== 1 || h !== 28 || w !== 28) {
    throw new Error(`${path}: needs a tensor 'samples' of shape [N, 1, 28, 28]`);
  }
  const labels = file.tensors.get('labels');
  if (
    labels &&
    !(labels.ndim === 1 && labels.shape[0] === samples.shape[0] && file.dtypes.get('labels') !== 'F32')
  ) {
    throw new Error(`${path}: 'labels' must be ${samples.shape[0]} integers (I32 or I64), one per sample`);
  }
  checkImages(samples.data as Float32Array, samples.shape[0]); // before the work of judging
  await useBackend(flags.backend); // the judge's features of 2,000 real digits are most of the work
  const scores = judgeImages(samples.data as Float32Array, samples.shape[0], labels?.data);
  new OutputDir(dir).writeJson('scores.json', scores);
  console.log(formatScores(scores));
}
