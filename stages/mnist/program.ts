// The image stage as a program of three commands, train (the default), sample and judge, run with
// the defaults of stage:mnist or stage:rgb.
import { parseFlags, UsageError } from '../lib/cli.ts';
import { stageFlags, type ImageStage } from './flags.ts';
import { judge } from './judge.ts';
import { sample } from './sample.ts';
import { train } from './train.ts';

export async function runImageStage(stage: ImageStage, argv: string[]): Promise<void> {
  const flags = stageFlags(stage);
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'train';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  const name = stage.command;
  if (command === 'train') await train(parseFlags(name, flags.train, rest));
  else if (command === 'sample') await sample(parseFlags(`${name} -- sample`, flags.sample, rest), stage);
  else if (command === 'judge')
    await judge(parseFlags(`${name} -- judge`, flags.judge, rest, 'DIR'), stage, flags.judge);
  else
    throw new UsageError(
      `unknown command '${command}' (train, sample, judge)`,
      `usage: npm run ${name} -- [train|sample|judge] [flags]`,
    );
}
