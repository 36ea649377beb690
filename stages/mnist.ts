// Stage 5: the reference UNet trained as a diffusion model on real MNIST digits.
//   npm run stage:mnist [-- train] [flags]   train a config (resuming when a checkpoint exists), sample, judge
//   npm run stage:mnist -- sample [flags]    draw digits from a checkpoint (default: the committed one)
//   npm run stage:mnist -- judge DIR         score DIR/samples.safetensors with the judge
// One file per command (stages/mnist/train.ts, sample.ts, judge.ts); their flags in stages/mnist/flags.ts.
import { parseFlags, runMain, UsageError } from './lib/cli.ts';
import { JUDGE_FLAGS, SAMPLE_FLAGS, TRAIN_FLAGS } from './mnist/flags.ts';
import { judge } from './mnist/judge.ts';
import { sample } from './mnist/sample.ts';
import { train } from './mnist/train.ts';

runMain(async () => {
  const argv = process.argv.slice(2);
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'train';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  if (command === 'train') await train(parseFlags('stage:mnist', TRAIN_FLAGS, rest));
  else if (command === 'sample') await sample(parseFlags('stage:mnist -- sample', SAMPLE_FLAGS, rest));
  else if (command === 'judge') await judge(parseFlags('stage:mnist -- judge', JUDGE_FLAGS, rest, 'DIR'));
  else
    throw new UsageError(
      `unknown command '${command}' (train, sample, judge)`,
      'usage: npm run stage:mnist -- [train|sample|judge] [flags]',
    );
});
