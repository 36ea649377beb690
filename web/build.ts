// `npm run web:build`: the page as a static folder (web/dist by default, git-ignored) that any static
// host can serve: index.html, the bundled UI and worker (esbuild), and the committed checkpoints the
// digits panel fetches. `npm run web` builds it and serves it (web/serve.ts).
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { readCheckpoint } from '../core/io/checkpoint.ts';
import { validateConfig } from '../stages/lib/config.ts';
import { dataOf } from '../stages/mnist/data.ts';
import { GUIDANCE } from '../stages/mnist/draw.ts';
import { parseFlags, runMain } from '../stages/lib/cli.ts';

/** The checkpoints the page offers: the files `sample` reads by default, under a name for the menu. */
export const PAGE_CHECKPOINTS = [
  { file: 'mnist-default.safetensors', from: 'stages/mnist/default.safetensors', label: 'MNIST digits (default config)' }, // prettier-ignore
  { file: 'mnist-class.safetensors', from: 'stages/mnist/class.safetensors', label: 'MNIST digits, class-conditional' }, // prettier-ignore
  { file: 'rgb-shapes.safetensors', from: 'stages/rgb/shapes.safetensors', label: 'RGB shapes, class-conditional' }, // prettier-ignore
];

/**
 * The core imports a few Node modules (files, worker threads, pngjs for PNGs) on paths a page never
 * takes. In the bundle each becomes a stub whose every export throws, naming what was called, so a
 * path that does reach one fails with a clear error instead of a missing-module crash at load.
 */
const nodeOnly: Plugin = {
  name: 'node-only',
  setup(b) {
    b.onResolve({ filter: /^(node:.*|pngjs)$/ }, (args) => ({ path: args.path, namespace: 'node-only' }));
    b.onLoad({ filter: /.*/, namespace: 'node-only' }, (args) => ({
      loader: 'js',
      contents: `const name = ${JSON.stringify(args.path)};
module.exports = Object.create(new Proxy({}, {
  get: (_, key) => typeof key !== 'string' || key === '__esModule' ? undefined : () => {
    throw new Error(name + '.' + key + ' is not available in a page');
  },
}));`,
    }));
  },
};

/** Builds the page into `outDir` and returns the files written. */
export async function buildPage(outDir = 'web/dist'): Promise<string[]> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'checkpoints'), { recursive: true });
  await build({
    entryPoints: { main: 'web/main.ts', worker: 'web/worker.ts', 'forward-worker': 'web/forward-worker.ts' },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    plugins: [nodeOnly],
    logLevel: 'warning',
  });
  copyFileSync('web/index.html', join(outDir, 'index.html'));
  for (const c of PAGE_CHECKPOINTS) copyFileSync(c.from, join(outDir, 'checkpoints', c.file));
  // each with its class names when it is class-conditional, so the page offers them
  const list = PAGE_CHECKPOINTS.map(({ file, from, label }) => {
    const cfg = validateConfig(readCheckpoint(from).config);
    const classes = cfg.model_params.num_classes ? dataOf(cfg).classNames.slice(0, cfg.model_params.num_classes) : null; // prettier-ignore
    // and the guidance `sample` recommends for its data set, as the page's default
    const guidance = classes ? GUIDANCE[cfg.dataset_params.name].scale : null;
    return { file: `checkpoints/${file}`, label, classes, guidance };
  });
  writeFileSync(join(outDir, 'checkpoints.json'), JSON.stringify(list, null, 1));
  return [
    'index.html',
    'main.js',
    'worker.js',
    'forward-worker.js',
    'checkpoints.json',
    ...list.map((c) => c.file),
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runMain(async () => {
    const flags = parseFlags('web:build', {
      out: { type: 'string', default: 'web/dist', help: 'folder to write the page to' },
    });
    const files = await buildPage(flags.out);
    console.log(`wrote ${files.length} files to ${flags.out}/ (serve it with any static server; SharedArrayBuffer, hence wasm threads, needs the headers in web/serve.ts)`); // prettier-ignore
  });
}
