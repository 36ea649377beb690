// The page (web/), end to end: its server serves the built folder and nothing else; in headless
// Chromium the page loads without a console error, trains stage:1d's toy to stage:1d's bar, draws digits
// on wasm and ts equal bit for bit to `npm run stage:mnist -- sample`, and on gpu.js's WebGL2 (SwiftShader)
// within float tolerance of them; without WebGL2 it says so and runs on WebAssembly. The browser half is
// skipped, with a one-line notice, where no Chromium is installed (.ci/run installs Debian's).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { readSafetensors } from '../../core/io/safetensors.ts';
import { buildPage } from '../../web/build.ts';
import { pageServer } from '../../web/serve.ts';
import { CHROMIUM, NO_CHROMIUM, launchChromium } from '../helpers/chromium.ts';
import { spawn } from 'node:child_process';

async function serve(root: string) {
  const server = pageServer(root);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

test('the server answers only files of its folder, with the cross-origin isolation headers', async () => {
  const root = mkdtempSync(join(tmpdir(), 'web-root-'));
  mkdirSync(join(root, 'sub'));
  writeFileSync(join(root, 'index.html'), '<p>page</p>');
  writeFileSync(join(root, 'sub', 'a.json'), '{}');
  writeFileSync(join(tmpdir(), 'web-secret.txt'), 'secret'); // beside the root: must stay out of reach
  const { server, url } = await serve(root);
  try {
    const page = await fetch(`${url}/`);
    assert.is(page.status, 200);
    assert.is(await page.text(), '<p>page</p>');
    assert.is(page.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.is(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.is((await fetch(`${url}/sub/a.json`)).headers.get('content-type'), 'application/json');
    const secret = join(tmpdir(), 'web-secret.txt').split('/').pop();
    const refused = ['/missing.js', '/sub', '/sub/', `/../${secret}`, `/%2e%2e/${secret}`, `/sub/..%2f..%2f${secret}`, '/%00', '/%E0%A4%A']; // prettier-ignore
    for (const path of refused) {
      // fetch would normalise '..' away: send the path as written
      const res = await new Promise<{ status: number; body: string }>((ok, fail) => {
        get(`${url}${path}`, (r) => {
          let body = '';
          r.on('data', (c) => (body += c));
          r.on('end', () => ok({ status: r.statusCode ?? 0, body }));
        }).on('error', fail);
      });
      assert.is(res.status, 404, `${path}: ${res.status}`);
      assert.not.match(res.body, /secret/);
    }
    assert.is((await fetch(`${url}/`, { method: 'POST' })).status, 405);
  } finally {
    server.close();
  }
});

if (!CHROMIUM) {
  console.log(`page tests skipped: ${NO_CHROMIUM}`);
} else {
  let browser: Browser;
  let page: Page;
  let url = '';
  let closeServer = () => {};
  const consoleErrors: string[] = [];
  // what the page's digits must equal: `sample` in a child process, started at once so that it runs
  // while the page trains its toy
  const STEPS = 4;
  const nodeOut = mkdtempSync(join(tmpdir(), 'web-node-'));
  const nodeOutTs = mkdtempSync(join(tmpdir(), 'web-node-ts-'));
  let nodeSample: Promise<{ status: number | null; stderr: string }>;
  let nodeSampleTs: Promise<{ status: number | null; stderr: string }>;
  const sample = (args: string[]) =>
    new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'stages/mnist.ts', 'sample', ...args], {
        stdio: 'pipe',
      });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      child.on('close', (status) => resolve({ status, stderr }));
    });

  // uvu reports a failing before-hook as zero tests run and still exits 0: keep the error for the tests
  let setupError: unknown = null;
  test.before(async () => {
    const common = ['--sampler', 'ddim', '--seed', '0', '--quiet'];
    nodeSample = sample(['--n', '16', '--steps', String(STEPS), ...common, '--backend', 'wasm', '--out', nodeOut]); // prettier-ignore
    // the plain TypeScript kernels are slow: four digits in two steps
    nodeSampleTs = nodeSample.then(() => sample(['--n', '4', '--steps', '2', ...common, '--backend', 'ts', '--out', nodeOutTs])); // prettier-ignore
    try {
      const root = mkdtempSync(join(tmpdir(), 'web-page-'));
      await buildPage(root);
      const served = await serve(root);
      url = served.url;
      closeServer = () => served.server.close();
      browser = await launchChromium();
      page = await openPage(browser);
    } catch (err) {
      setupError = err;
    }
  });

  test.after(async () => {
    await browser?.close();
    closeServer();
  });

  async function openPage(b: Browser): Promise<Page> {
    const p = await b.newPage();
    p.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    p.on('pageerror', (e) => consoleErrors.push(e.message));
    await p.goto(`${url}/`);
    await p.waitForSelector('body[data-ready="yes"]', { timeout: 60_000 });
    return p;
  }

  const ready = () => {
    if (setupError) throw setupError;
  };
  const errorLine = () => page.textContent('#error');

  /** Selects a backend in the page and waits until the worker has switched to it. */
  async function useBackend(name: string): Promise<string> {
    await page.selectOption('#backend', name);
    await page.waitForFunction(() => !(document.querySelector('#backend') as HTMLSelectElement).disabled);
    assert.is(await errorLine(), '');
    return (await page.textContent('#backend-status')) ?? '';
  }

  type Digits = { images: number[]; labels: number[] | null; backend: string };
  /**
   * Draws `count` images with DDIM in `steps` steps, seed 0: from the default MNIST checkpoint, or with
   * `digit`, that digit from the class-conditional one (guidance 1: the conditional model alone).
   */
  async function drawDigits(count: number, steps: number, digit?: number): Promise<Digits> {
    await page.evaluate(
      () => delete (globalThis as unknown as { pageResults: { digits?: unknown } }).pageResults.digits,
    );
    const ckpt = digit === undefined ? 'mnist-default' : 'mnist-class';
    await page.selectOption('#ckpt', `checkpoints/${ckpt}.safetensors`);
    if (digit !== undefined) {
      await page.selectOption('#classes', String(digit));
      await page.fill('#guidance', '1');
    }
    await page.selectOption('#sampler', 'ddim');
    await page.fill('#count', String(count));
    await page.fill('#steps', String(steps));
    await page.fill('#seed', '0');
    await page.click('#draw');
    const done = () => {
      const g = globalThis as unknown as { pageResults: { digits?: unknown } };
      return g.pageResults.digits !== undefined || document.querySelector('#error')!.textContent !== '';
    };
    await page.waitForFunction(done, null, { timeout: 240_000 });
    assert.is(await errorLine(), '');
    return page.evaluate(
      () => (globalThis as unknown as { pageResults: { digits: Digits } }).pageResults.digits,
    );
  }

  test('the page loads without a console error and starts on the WebAssembly kernels', async () => {
    ready();
    assert.match((await page.textContent('#backend-status')) ?? '', /^backend wasm \(\d threads?\) \(cross-origin isolated\)/); // prettier-ignore
    assert.equal(consoleErrors, []);
  });

  test("stage:1d's toy trains in the page to stage:1d's bar: |mean - 1| < 0.01, std within 25% of 0.01", async () => {
    ready();
    await page.fill('#toy-seed', '3'); // tests/stages/stage1d.test.ts runs seed 1 in Node
    await page.fill('#toy-steps', '12000');
    await page.click('#toy-run');
    const done = () =>
      (globalThis as unknown as { pageResults: { toy?: unknown } }).pageResults.toy !== undefined ||
      document.querySelector('#error')!.textContent !== '';
    await page.waitForFunction(done, null, { timeout: 240_000 });
    assert.is(await errorLine(), '');
    const { summary } = await page.evaluate(
      () => (globalThis as unknown as { pageResults: { toy: { summary: { mean: number; std: number } } } }).pageResults.toy, // prettier-ignore
    );
    assert.ok(Math.abs(summary.mean - 1) < 0.01, `mean ${summary.mean}`);
    assert.ok(Math.abs(summary.std - 0.01) < 0.0025, `std ${summary.std}`);
    assert.equal(consoleErrors, []);
  });

  test('digits drawn in the page on wasm and ts equal `stage:mnist -- sample` bit for bit; on WebGL2 they agree within tolerance', async () => {
    ready();
    const node = await nodeSample;
    assert.is(node.status, 0, node.stderr);
    const want = readSafetensors(join(nodeOut, 'samples.safetensors')).tensors.get('samples')!.data;
    const wasm = await drawDigits(16, STEPS);
    assert.match(wasm.backend, /^backend wasm/);
    assert.is(wasm.images.length, want.length);
    const differing = wasm.images.filter((v, i) => v !== want[i]).length;
    assert.is(differing, 0, `${differing} of ${want.length} pixels differ from Node's`);
    // the README's picture of the page: the toy trained above, and these digits
    mkdirSync('out/web', { recursive: true });
    await page.screenshot({ path: 'out/web/page.png', fullPage: true });

    // the same on the plain TypeScript kernels, four digits in two steps
    const nodeTs = await nodeSampleTs;
    assert.is(nodeTs.status, 0, nodeTs.stderr);
    const wantTs = readSafetensors(join(nodeOutTs, 'samples.safetensors')).tensors.get('samples')!.data;
    assert.match(await useBackend('ts'), /^backend ts/);
    const ts = await drawDigits(4, 2);
    assert.is(ts.images.length, wantTs.length);
    const differingTs = ts.images.filter((v, i) => v !== wantTs[i]).length;
    assert.is(differingTs, 0, `ts: ${differingTs} of ${wantTs.length} pixels differ from Node's`);
    await useBackend('wasm');

    // gpu.js on a software GPU takes seconds per step: one 7 from the (smaller) class-conditional
    // checkpoint in two steps, against the same on wasm
    const small = await drawDigits(1, 2, 7);
    assert.equal(small.labels, [7]);
    const status = await useBackend('gpu');
    assert.match(status, /^backend gpu \(gpu\.js webgl2\)/, `gpu.js ran in another mode: ${status}`);
    const gl = await drawDigits(1, 2, 7);
    let worst = 0;
    gl.images.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - small.images[i]))));
    assert.ok(worst < 1e-5, `WebGL2 differs from wasm by up to ${worst} (pixels in [0, 1])`);
    await useBackend('wasm');
    assert.equal(consoleErrors, []);
  });

  test('without WebGL2 the page says so in one line and runs on WebAssembly', async () => {
    ready();
    const plain = await launchChromium({ gpu: false });
    try {
      const p = await openPage(plain);
      await p.waitForSelector('body[data-webgl2]');
      assert.is(await p.getAttribute('body', 'data-webgl2'), 'none');
      assert.match((await p.textContent('#notice')) ?? '', /no WebGL2.*runs on WebAssembly/);
      assert.ok(await p.isVisible('#notice'));
      assert.match((await p.textContent('#backend-status')) ?? '', /^backend wasm/);
      assert.equal(consoleErrors, []);
    } finally {
      await plain.close();
    }
  });
}

test.run();
