// npm run verify -- <file.safetensors> [--out <file.safetensors>]
//
// Is this UNet the reference one? A golden file holds a PyTorch UNet's config, weights and inputs, and
// what PyTorch computed from them (tests/fixtures/make_golden.py writes one for any config). We rebuild
// the model from the config, load the weights, run the same forward pass and the backward pass of
// mean((eps - noise)^2), and print the relative error ||ours - ref|| / ||ref|| of the output, the loss
// and every gradient. Exit code 0 only if every one is under 1e-4.
import { parseFlags, runMain, usageLine, UsageError } from './lib/cli.ts';
import {
  BAR,
  compareGolden,
  formatShape,
  readSafetensors,
  runGoldenPass,
  writeSafetensors,
} from '../core/index.ts';

const FLAGS = {
  out: { type: 'string', default: '', help: 'also write our tensors, under the same names, to this file' },
} as const;
const OPERANDS = '<file.safetensors>';

runMain(() => {
  const flags = parseFlags('verify', FLAGS, process.argv.slice(2), OPERANDS);
  if (flags.positionals.length !== 1) {
    throw new UsageError(
      `expected one golden file, got ${flags.positionals.length} arguments`,
      usageLine('verify', FLAGS, OPERANDS),
    );
  }
  const path = flags.positionals[0];

  // The model, its weights and inputs from the file; our forward and backward pass.
  const file = readSafetensors(path);
  const started = performance.now();
  const { model, ours } = runGoldenPass(file, path);
  const seconds = (performance.now() - started) / 1000;
  const x = ours.get('input.x');
  console.log(`${path}`);
  console.log(`config ${file.metadata.config}`);
  console.log(
    `${model.stateDict().size} parameter tensors, ${model.numParameters()} parameters; input ${formatShape(x?.shape ?? [])}; forward + backward ${seconds.toFixed(2)}s`,
  );

  // Every output and gradient against the file's.
  const results = compareGolden(ours, file, path);
  const width = Math.max(...results.map((r) => r.name.length));
  console.log(`\n${'tensor'.padEnd(width)}  ${'shape'.padEnd(14)}  ||ours - ref|| / ||ref||`);
  for (const r of results) {
    const note = r.zeroInReference
      ? `  * zero up to float32 rounding (||ref|| ${r.refNorm.toExponential(1)}): error / ||all gradients||; raw ratio ${r.relError.toExponential(1)}`
      : '';
    console.log(
      `${r.name.padEnd(width)}  ${formatShape(r.shape).padEnd(14)}  ${r.error.toExponential(2)}${note}`,
    );
  }
  if (results.some((r) => r.zeroInReference)) {
    console.log(
      '\n* a gradient that is exactly zero in exact arithmetic (e.g. a per-channel shift just before a GroupNorm\n' +
        '  with one channel per group) is float32 noise in both files, so it is compared with the size of all gradients.',
    );
  }

  if (flags.out) {
    const metadata = {
      config: file.metadata.config,
      produced_by: 'diffusion-ts npm run verify (TypeScript, float32)',
    };
    writeSafetensors(flags.out, ours, { ...metadata, loss: 'mean((eps - noise)^2)' });
    console.log(`wrote ${flags.out}`);
  }

  const worst = results.reduce((a, b) => (b.error > a.error || Number.isNaN(b.error) ? b : a));
  const pass = results.every((r) => r.error < BAR);
  console.log(
    `\nworst: ${worst.name} ${worst.error.toExponential(2)} (bar ${BAR.toExponential(0)}): ${pass ? 'PASS' : 'FAIL'}`,
  );
  process.exitCode = pass ? 0 : 1;
});
