// `npm run web`: builds the page (web/build.ts) and serves it on http://127.0.0.1:8080/ with the headers
// that make it cross-origin isolated (COOP + COEP), which SharedArrayBuffer, and so the WebAssembly
// kernels' threads, need. It serves the built folder and nothing else: a path that climbs out of it, a
// folder or a missing file gets a 404.
import { createReadStream, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags, runMain } from '../stages/lib/cli.ts';
import { buildPage } from './build.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.css': 'text/css',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};

/** The headers every answer carries: isolation for SharedArrayBuffer, and no sniffing or caching. */
const HEADERS = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-cache',
};

/**
 * The file under `root` that a request path names, with its size, or null (outside root, not a file, or
 * malformed).
 */
export function fileFor(root: string, urlPath: string): { path: string; size: number } | null {
  let path: string;
  try {
    path = decodeURIComponent(new URL(urlPath, 'http://x').pathname);
  } catch {
    return null;
  }
  if (path.includes('\0')) return null;
  const base = resolve(root);
  const file = resolve(base, `.${path.endsWith('/') ? `${path}index.html` : path}`);
  if (!file.startsWith(base + sep)) return null;
  try {
    const stat = statSync(file);
    return stat.isFile() ? { path: file, size: stat.size } : null;
  } catch {
    return null;
  }
}

/** A server for the folder `root` (GET and HEAD only). */
export function pageServer(root: string): Server {
  return createServer((req, res) => {
    const reading = req.method === 'GET' || req.method === 'HEAD';
    const file = reading ? fileFor(root, req.url ?? '/') : null;
    if (!file) {
      res.writeHead(reading ? 404 : 405, { ...HEADERS, 'content-type': 'text/plain' });
      res.end(reading ? 'not found\n' : 'method not allowed\n');
      return;
    }
    const type = TYPES[extname(file.path)] ?? 'application/octet-stream';
    res.writeHead(200, { ...HEADERS, 'content-type': type, 'content-length': file.size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file.path).pipe(res);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runMain(async () => {
    const flags = parseFlags('web', {
      port: { type: 'int', default: 8080, min: 0, help: 'port (0: any free one)' },
      host: { type: 'string', default: '127.0.0.1', help: 'address to listen on (another than loopback exposes the page to the network)' }, // prettier-ignore
      out: { type: 'string', default: 'web/dist', help: 'folder to build the page into and serve' },
    });
    const files = await buildPage(flags.out);
    const server = pageServer(flags.out);
    await new Promise<void>((ok, fail) => {
      server.once(
        'error',
        (err: NodeJS.ErrnoException) =>
        fail(new Error(err.code === 'EADDRINUSE' ? `port ${flags.port} is in use (choose another with --port)` : err.message)), // prettier-ignore
      );
      server.listen(flags.port, flags.host, ok);
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : flags.port;
    const host = flags.host.includes(':') ? `[${flags.host}]` : flags.host;
    console.log(`built ${files.length} files into ${flags.out}/; serving them at http://${host}:${port}/ (Ctrl-C stops)`); // prettier-ignore
    process.once('SIGINT', () => {
      server.close();
      server.closeAllConnections();
      console.log('\nstopped');
    });
  });
}
