// Debian's Chromium under playwright-core (which never downloads a browser), with WebGL2 and WebGPU on
// SwiftShader, the software GPU: how the browser tests reach real GPU APIs on a machine without a GPU.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** The Chromium binary, or undefined where none is installed (the tests then skip, saying so). */
export const CHROMIUM = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  process.env.CHROMIUM_PATH ?? '',
].find((p) => p !== '' && existsSync(p));

export const NO_CHROMIUM = 'no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)';

/** Starts headless Chromium with a fresh profile; `gpu: false` gives it no GPU at all (no WebGL2). */
export function launchChromium(opts: { gpu?: boolean } = {}): Promise<Browser> {
  const gpu = opts.gpu ?? true;
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu-sandbox',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      ...(gpu
        ? [
            '--use-angle=swiftshader',
            '--enable-unsafe-swiftshader',
            '--enable-unsafe-webgpu',
            '--enable-features=Vulkan',
            '--use-webgpu-adapter=swiftshader',
          ]
        : ['--disable-gpu', '--disable-software-rasterizer']),
    ],
  });
}
