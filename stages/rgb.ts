// Stage 7: colour. The same UNet, commands and checkpointing as stage:mnist (stages/mnist/), on RGB
// images of six coloured shapes drawn in code (core/data/shapes.ts), class-conditional with guidance.
//   npm run stage:rgb [-- train] [flags]   train stages/rgb/shapes.json (resuming when a checkpoint exists)
//   npm run stage:rgb -- sample [flags]    draw shapes from a checkpoint (default: the committed one)
//   npm run stage:rgb -- judge DIR         score DIR/samples.safetensors: the shapes' judge and a colour check
import { runMain } from './lib/cli.ts';
import { RGB_STAGE } from './mnist/flags.ts';
import { runImageStage } from './mnist/program.ts';

runMain(() => runImageStage(RGB_STAGE, process.argv.slice(2)));
