// The project's seams: the core reaches backends only through its registry (it imports no file of gpu/,
// plots/ or stages/), and the kernel table the docs show is the one the code dispatches.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { backendKernels } from '../../core/kernels/registry.ts';
import { KERNEL_NAMES, KERNELS } from '../../core/kernels/table.ts';
import '../../core/index.ts'; // the whole core, so the ts backend is registered as in any program
import '../../core/kernels/wasm/index.ts';
import '../../gpu/backend.ts';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const path = join(dir, f);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

test('no file of core/ imports gpu/, plots/ or stages/', () => {
  const offenders = files('core').flatMap((path) => {
    const imports = [...readFileSync(path, 'utf8').matchAll(/(?:from|import\(?)\s*['"]([^'"]+)['"]/g)];
    return imports
      .map((m) => m[1])
      .filter((spec) => /^(\.\.\/)+(gpu|plots|stages)\//.test(spec))
      .map((spec) => `${path} imports ${spec}`);
  });
  assert.equal(offenders, []);
});

/** The kernel table as docs/performance.md should show it, row by row. */
function kernelRows(): string[] {
  const mark = (backend: string, k: string) => (k in backendKernels(backend) ? 'yes' : '');
  return KERNEL_NAMES.map(
    (k) => `| \`${k}\` | ${KERNELS[k].about} | ${mark('ts', k)} | ${mark('wasm', k)} | ${mark('gpu', k)} |`,
  );
}

test('docs/performance.md lists exactly the kernels of core/kernels/table.ts, with the backends that implement each', () => {
  const doc = readFileSync('docs/performance.md', 'utf8');
  const table = doc.split('<!-- kernel-table -->')[1]?.split('<!-- /kernel-table -->')[0] ?? '';
  const rows = table
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('| `'));
  const want = kernelRows();
  assert.equal(rows, want, `docs/performance.md should list:\n${want.join('\n')}`);
});

test.run();
