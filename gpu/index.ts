// Registers the 'gpu' backend (gpu.js) when a program imports this file. gpu.js is a large import, so
// the kernels (backend.ts) load only when the backend is first activated: by `--backend gpu`, or by
// 'auto', which measures every backend.
import { registerBackend } from '../core/kernels/registry.ts';

registerBackend(
  'gpu',
  {},
  {
    rank: 2,
    activate: async () => (await import('./backend.ts')).describeGpu(),
    module: import.meta.url,
    // one device for every thread: data-parallel training on gpu runs a single thread
    shared: true,
  },
);
