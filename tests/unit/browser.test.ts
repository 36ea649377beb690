// The gpu/ kernels on real GPU APIs: headless Chromium gives WebGL2 (ANGLE on SwiftShader) and WebGPU
// (SwiftShader's Vulkan) on this CPU-only machine, so the GLSL and WGSL that gpu.js generates run here.
// Every kernel of gpu/ is checked on both (the cases of gpu/parity.ts for all but gemm and Adam); a kernel
// gpu.js cannot compile or run there fails its test with the error, by name. Skipped, with a one-line
// notice, where no Chromium is installed (.ci/run installs Debian's).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM, NO_CHROMIUM, launchChromium } from '../helpers/chromium.ts';
import type { Report } from '../helpers/browser-entry.ts';

if (!CHROMIUM) {
  console.log(`browser tests skipped: ${NO_CHROMIUM}`);
} else {
  let browser: Browser;
  let server: Server;
  let page: Page;

  // uvu reports a failing before-hook as zero tests run and still exits 0: keep the error for the tests
  let setupError: unknown = null;
  test.before(async () => {
    try {
      await setup();
    } catch (err) {
      setupError = err;
    }
  });

  async function setup() {
    const bundle = await build({
      entryPoints: ['tests/helpers/browser-entry.ts'],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'browser',
      logLevel: 'silent',
    });
    const script = bundle.outputFiles[0].text;
    server = createServer((req, res) => {
      if (req.url === '/bundle.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
      else res.writeHead(200, { 'content-type': 'text/html' }).end('<script src="/bundle.js"></script>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForFunction(() => 'parity' in globalThis);
  }

  test.after(async () => {
    await browser?.close();
    server?.close();
  });

  const reports = new Map<string, Promise<Report>>();
  const report = (mode: string) => {
    if (setupError) throw setupError;
    let r = reports.get(mode);
    if (!r) {
      r = page.evaluate(
        (m) => (globalThis as unknown as { parity: (mode: string) => Promise<Report> }).parity(m),
        mode,
      );
      reports.set(mode, r);
    }
    return r;
  };

  for (const mode of ['webgl2', 'webgpu'] as const) {
    test(`gpu.js ${mode} in Chromium: every kernel ran on ${mode}; gemm and Adam equal the TypeScript kernels`, async () => {
      const { ran, ranBy, worst, where } = await report(mode);
      // gpu.js falls back to cpu silently when a context is missing: insist on the API asked for
      const elsewhere = Object.entries(ranBy).filter(([, m]) => m !== mode);
      assert.equal(ran, [mode], `kernels ran on ${ran.join(', ')}: ${elsewhere.map((e) => e.join(' on ')).join(', ')}`); // prettier-ignore
      assert.ok(worst < 1e-4, `worst relative error ${worst} at ${where}`);
    });

    test(`gpu.js ${mode} in Chromium: im2col, col2im, the conv2d forward pass, GroupNorm and softmax equal the TypeScript kernels`, async () => {
      const { kernels, pipeline } = await report(mode);
      // on WebGL2 the convolution's cols stays on the GPU as a texture between its two kernels
      assert.is(pipeline, mode === 'webgl2', `pipeline mode ${pipeline ? 'on' : 'off'} on ${mode}`);
      assert.is(kernels.length, 7);
      for (const k of kernels) {
        assert.is(k.error, undefined, `${k.kernel} failed on ${mode}: ${k.error}`);
        // the Node bar (gpu/parity.ts): 1e-5 sqrt(terms summed) (1 + |want|)
        assert.ok(k.worst < 1e-5, `${mode} ${k.kernel}: error ${k.worst} at ${k.where}`);
      }
    });
  }
}

test.run();
