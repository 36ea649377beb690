// stage:mnist refuses bad input with one clear line: a bad config, a corrupt checkpoint, non-finite
// weights or samples, judge input outside [0, 1].
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors } from '../../core/io/safetensors.ts';
import { saveCheckpoint } from '../../core/io/checkpoint.ts';
import { Tensor } from '../../core/tensor.ts';
import { PIXELS } from '../../core/data/mnist.ts';
import { Rng } from '../../core/random.ts';
import { readConfig } from '../../stages/lib/config.ts';
import { UNet } from '../../core/nn/unet.ts';
import '../../core/kernels/wasm/index.ts';
import { runStage } from '../helpers/run.ts';
import { fresh, TINY, tinyConfig } from '../helpers/mnist.ts';

test('a bad config or a corrupt checkpoint is refused with one clear line', () => {
  const dir = fresh();
  const bad = tinyConfig(dir, (c) => (c.diffusion_params.prediction = 'noise'));
  const r1 = runStage('stages/mnist.ts', ['--config', bad, '--quiet', '--backend', 'wasm'], {
    out: join(dir, 'x'),
  });
  assert.is(r1.status, 1);
  assert.match(
    r1.stderr,
    /^error: config: diffusion_params.prediction must be one of eps, x0, v; got 'noise'/,
  );
  const badModel = tinyConfig(dir, (c) => (c.model_params.mid_channels = [16, 12]));
  const r2 = runStage('stages/mnist.ts', ['--config', badModel, '--quiet', '--backend', 'wasm'], {
    out: join(dir, 'y'),
  });
  assert.is(r2.status, 1);
  assert.match(r2.stderr, /^error: config: model_params: .*mid_channels/);
  const corrupt = join(dir, 'corrupt.safetensors');
  writeFileSync(corrupt, Buffer.from([1, 2, 3]));
  const r3 = runStage(
    'stages/mnist.ts',
    ['sample', '--checkpoint', corrupt, '--quiet', '--backend', 'wasm'],
    {
      out: join(dir, 'z'),
    },
  );
  assert.is(r3.status, 1);
  assert.is(r3.stderr.trim().split('\n').length, 1, r3.stderr);
  assert.match(r3.stderr, /corrupt\.safetensors/);
  const r4 = runStage('stages/mnist.ts', ['sample', '--sampler', 'euler'], { out: join(dir, 'w') });
  assert.is(r4.status, 2);
});

test('non-finite weights, non-finite samples and judge input outside [0, 1] each get one clear line', () => {
  const dir = fresh();
  const cfg = readConfig(TINY);
  const state = { step: 6, images: 48, seconds: 1 };
  const checkpoint = (name: string, edit: (p: Tensor, i: number) => void) => {
    const net = new UNet(cfg.model_params, new Rng(0));
    net.parameters().forEach(edit);
    const path = join(dir, name);
    saveCheckpoint(path, { ema: net, config: cfg, state });
    return path;
  };
  const oneLine = (run: { status: number | null; stderr: string }, status: number, message: RegExp) => {
    assert.is(run.status, status, run.stderr);
    assert.is(run.stderr.trim().split('\n').length, 1, run.stderr);
    assert.match(run.stderr.trim(), message);
  };
  // a NaN among the weights: refused on loading, naming the tensor, by sample and by resuming training
  const nan = checkpoint('nan.safetensors', (p, i) => i === 3 && (p.data[5] = NaN));
  const sampled = runStage(
    'stages/mnist.ts',
    ['sample', '--checkpoint', nan, '--n', '2', '--quiet', '--backend', 'ts'],
    {
      out: join(dir, 'a'),
    },
  );
  oneLine(
    sampled,
    1,
    /^error: .*nan\.safetensors: tensor 'ema\.[\w.]+' holds NaN at element 5: these weights are not usable$/,
  );
  assert.not.ok(existsSync(join(dir, 'a', 'samples.safetensors')), 'no samples written');
  // finite weights so large that the network overflows: sampling stops at the step that went wrong
  const huge = checkpoint('huge.safetensors', (p) => p.data.fill(1e30));
  const overflow = runStage(
    'stages/mnist.ts',
    ['sample', '--checkpoint', huge, '--n', '2', '--steps', '3', '--quiet', '--backend', 'ts'],
    {
      out: join(dir, 'b'),
    },
  );
  oneLine(
    overflow,
    1,
    /^error: sampling: step 1 of 3 \(from noise level sigma = [\d.e+]+\) gave (NaN|-?Infinity) at element \d+; the model or its weights produce non-finite values$/,
  );
  assert.not.ok(existsSync(join(dir, 'b', 'samples.safetensors')), 'no samples written');
  // the judge scores grey levels in [0, 1] only
  for (const [value, shown] of [
    [1.5, '1.5'],
    [NaN, 'NaN'],
  ] as const) {
    const judged = join(dir, `judge-${shown}`);
    const images = new Float32Array(3 * PIXELS).fill(0.5);
    images[PIXELS + 10] = value;
    mkdirSync(judged, { recursive: true });
    writeSafetensors(
      join(judged, 'samples.safetensors'),
      new Map([['samples', new Tensor(images, [3, 1, 28, 28])]]),
    );
    const args = ['--import', 'tsx', 'stages/mnist.ts', 'judge', judged, '--backend', 'ts'];
    const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
    oneLine(
      run,
      1,
      new RegExp(
        `^error: judge: sample 1 has ${shown} at pixel 10; samples must be finite grey levels in \\[0, 1\\]$`,
      ),
    );
  }
});

test.run();
