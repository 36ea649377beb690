// Stage 5: the reference UNet trained as a diffusion model on real MNIST digits.
//   npm run stage:mnist [-- train] [flags]   train a config (resuming when a checkpoint exists), sample, judge
//   npm run stage:mnist -- sample [flags]    draw digits from a checkpoint (default: the committed one)
//   npm run stage:mnist -- judge DIR         score DIR/samples.safetensors with the judge
// One file per command (stages/mnist/train.ts, sample.ts, judge.ts); their flags in stages/mnist/flags.ts.
import { runMain } from './lib/cli.ts';
import { MNIST_STAGE } from './mnist/flags.ts';
import { runImageStage } from './mnist/program.ts';

runMain(() => runImageStage(MNIST_STAGE, process.argv.slice(2)));
