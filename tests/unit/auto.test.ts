// The 'auto' backend's choices (core/kernels/auto.ts), on two made-up backends whose gemm only waits:
// which backend a shape gets, and how a second selector of the same program takes a shape the first
// decided instead of measuring it again. The waits differ 10-fold or more, so no margin is close.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AutoSelector, autoLock } from '../../core/kernels/auto.ts';
import type { GemmArgs, KernelSet } from '../../core/kernels/registry.ts';
import { KERNELS } from '../../core/kernels/table.ts';

const wait = (ms: number) => {
  for (const end = performance.now() + ms; performance.now() < end;);
};
const calibrationSize = KERNELS.gemm.calibration().c.length;
const big: GemmArgs = {
  ...KERNELS.gemm.calibration(),
  ...{ a: new Float32Array(256 * 256), b: new Float32Array(256 * 256), c: new Float32Array(256 * 256) },
  ...{ m: 256, n: 256, k: 256 },
};
const id = `gemm:${KERNELS.gemm.key(big)}`;
const fingerprint = `test-auto-${process.pid}`;

/**
 * 'scaled' costs 3 ms a call whatever the size (fixed costs, as copies into a module and handing work to
 * threads); 'small' costs 0.2 ms on the calibration instance and 40 ms on the big one. Each counts its
 * calls in `calls`.
 */
function backends(calls: Map<string, number>) {
  const count = (b: string) => calls.set(b, (calls.get(b) ?? 0) + 1);
  const kernels: Record<string, Partial<KernelSet>> = {
    scaled: { gemm: () => (count('scaled'), wait(3)) },
    small: { gemm: (a) => (count('small'), wait(a.c.length > calibrationSize ? 40 : 0.2)) },
  };
  return (b: string) => kernels[b];
}

test.after(() => {
  const dir = join(process.cwd(), 'node_modules', '.cache', 'diffusion-ts');
  for (const f of readdirSync(dir)) if (f.includes(fingerprint)) rmSync(join(dir, f));
});

test('the first candidate is timed on the real shape even when the calibration instance favours another 15-fold', () => {
  const selector = new AutoSelector(['scaled', 'small'], backends(new Map()), fingerprint);
  selector.dispatcher('gemm')(big);
  assert.is(selector.decisions().get(id), 'scaled');
});

test('a second selector of the program (a worker) takes the shape the first decided, without measuring it', () => {
  autoLock(); // as core/parallel does before starting its workers
  const first = new AutoSelector(['scaled', 'small'], backends(new Map()), `${fingerprint}-shared`);
  const calls = new Map<string, number>();
  const second = new AutoSelector(['scaled', 'small'], backends(calls), `${fingerprint}-shared`); // made before the first decides
  first.dispatcher('gemm')(big);
  second.dispatcher('gemm')(big);
  assert.is(second.decisions().get(id), 'scaled');
  assert.equal([...calls], [['scaled', 1]]); // the call itself, no warm-up and no timing
});

test.run();
