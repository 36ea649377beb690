// The page's engine: a Web Worker running the project's core, unchanged, so the page never freezes.
// It trains the first rungs (stages/toys/, the same model and recipe as stage:1d and stage:multimodal)
// and draws images from the committed checkpoints (stages/mnist/draw.ts, as `sample` does), posting
// progress, charts (drawn by plots/, as the terminal programs' PNGs are) and each sampler step.
import { conv2d, matmul, noGrad, Rng, tidy, UNet } from '../core/index.ts';
import benchConfig from '../stages/mnist/default.json' with { type: 'json' };
import { parseSafetensors } from '../core/io/safetensors.ts';
import { parseCheckpoint, restoreCheckpoint } from '../core/io/checkpoint.ts';
import { backendChoices, useBackend } from '../core/kernels/select.ts';
import { sharedMemory } from '../core/env.ts';
import { defaultThreads } from '../core/parallel/data-parallel.ts';
import { ParallelForward } from '../core/parallel/parallel-forward.ts';
import '../core/kernels/wasm/index.ts';
import '../gpu/index.ts';
import { noisedMixture } from '../core/diffusion/mixture.ts';
import { modeStats, sampleMean, sampleStd } from '../core/stats.ts';
import { levelHistograms, lossChart, type Canvas } from '../plots/index.ts';
import { scatterLevels } from '../plots/scatter-levels.ts';
import { histogramPanels, rings } from '../stages/lib/toy-plots.ts';
import { validateConfig } from '../stages/lib/config.ts';
import { BATCH, drawImages, GUIDANCE, spreadLabels } from '../stages/mnist/draw.ts';
import { medianTime } from '../stages/lib/timing.ts';
import { Gauss1d } from '../stages/toys/gauss1d.ts';
import { FourSpikes } from '../stages/toys/spikes.ts';
import type { Picture, Reply, Request, Toy } from './protocol.ts';

const post = (reply: Reply, transfer: Transferable[] = []) => self.postMessage(reply, { transfer });
const picture = (c: Canvas): Picture => ({ width: c.width, height: c.height, rgb: c.data });
const pause = () => new Promise((ok) => setTimeout(ok, 0)); // lets a Stop message in
let stopRequested = false;
/** How long each level of the toy's samples stays on screen. */
const LEVEL_MS = 100;

/** Which WebGL2 this worker can reach (gpu.js needs it for its GPU mode), or null. */
function webgl2(): string | null {
  try {
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    return String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
  } catch {
    return null;
  }
}

async function trainToy(toy: Toy, seed: number, steps: number): Promise<void> {
  const rng = new Rng(seed);
  const model = toy === '1d' ? new Gauss1d(rng) : new FourSpikes(rng);
  const losses: number[] = [];
  const started = performance.now();
  for (let step = 0; step < steps;) {
    // a slice of steps at a time, then a pause for messages; progress and the loss chart between slices
    const until = Math.min(steps, step + 200);
    for (; step < until; step++) losses.push(model.trainStep(step, steps));
    const msPerStep = (performance.now() - started) / step;
    post({
      kind: 'progress',
      task: `train ${toy}`,
      done: step,
      total: steps,
      msPerStep,
      loss: losses[step - 1],
    });
    if (step % 2000 === 0 || step === steps) {
      post({ kind: 'picture', id: 'loss', picture: picture(lossChart(losses, 'Training loss')), caption: `step ${step}` }); // prettier-ignore
    }
    await pause();
    if (stopRequested) return void post({ kind: 'stopped' });
  }
  const msPerStep = (performance.now() - started) / steps;
  // sampling, then the samples level by level against the exact density, as the terminal animates them
  const count = 1000;
  const { sigmas } = model;
  const title = (i: number) =>
    i === 0 ? 'start: noise, std 1' : `step ${i}: sigma ${sigmas[i].toPrecision(2)}`;
  // per toy: a picture of some levels (one, for the animation, or all, under `heading`), and the summary
  let draw: (levels: number[], top: string) => Canvas;
  let heading: string;
  let summary: Extract<Reply, { kind: 'toy-done' }>['summary'];
  if (model instanceof Gauss1d) {
    const history = model.sample(count);
    const exact = model.exact();
    draw = (ls, top) =>
      levelHistograms(histogramPanels(ls.map((i) => history[i]), ls.map((i) => exact[i]), ls.map(title)), top); // prettier-ignore
    heading = 'Samples after each denoising step vs the exact noised density';
    const x = history[model.levels];
    summary = { toy: '1d', mean: sampleMean(x), std: sampleStd(x) };
  } else {
    const history = model.sample(count);
    const panels = history.map((h, i) => ({
      title: title(i),
      x: h.data.filter((_, k) => k % 2 === 0),
      y: h.data.filter((_, k) => k % 2 === 1),
      rings: rings(noisedMixture(model.data, 1, sigmas[i])),
    }));
    draw = (ls, top) =>
      scatterLevels(
        ls.map((i) => panels[i]),
        top,
        { range: [-3, 3] },
      );
    heading = 'Four spikes: samples after each denoising step vs the exact noised density';
    const modes = modeStats(history[model.levels].data, 2, model.centres);
    summary = {
      toy: 'multimodal',
      shares: modes.map((m) => m.share),
      stds: modes.map((m) => Math.max(...m.std)),
    };
  }
  const all = [...Array(model.levels + 1).keys()];
  for (const i of all) {
    post({ kind: 'picture', id: 'level', picture: picture(draw([i], `level ${i} of ${model.levels}`)), caption: title(i) }); // prettier-ignore
    await new Promise((ok) => setTimeout(ok, LEVEL_MS));
  }
  post({ kind: 'picture', id: 'levels', picture: picture(draw(all, heading)), caption: 'every level' });
  post({ kind: 'toy-done', summary, seconds: (performance.now() - started) / 1000, msPerStep });
}

async function drawDigits(req: Extract<Request, { kind: 'digits' }>): Promise<void> {
  const response = await fetch(req.checkpoint);
  if (!response.ok) throw new Error(`${req.checkpoint}: the server answered ${response.status} ${response.statusText}`); // prettier-ignore
  const bytes = new Uint8Array(await response.arrayBuffer());
  const ckpt = parseCheckpoint(parseSafetensors(bytes, req.checkpoint), req.checkpoint);
  const cfg = validateConfig(ckpt.config);
  const ema = new UNet(cfg.model_params, new Rng(0));
  restoreCheckpoint(ckpt, req.checkpoint, { ema });
  const classes = cfg.model_params.num_classes ?? 0;
  const { im_channels: channels, im_size: size } = cfg.model_params;
  let labels: number[] | null = null;
  if (classes > 0) {
    const all = [...Array(classes).keys()];
    if (req.classes === 'all') labels = spreadLabels(req.count, all);
    else if (all.includes(req.classes)) labels = Array<number>(req.count).fill(req.classes);
    else throw new Error(`class ${req.classes} is not one of this checkpoint's 0..${classes - 1}`);
  }
  // as `sample` does: each batch split between this thread and a worker holding a copy of the weights
  // (core/parallel/parallel-forward.ts), where threads share memory; the same numbers as on one thread
  const threads = sharedMemory() && chosen !== 'auto' ? defaultThreads(chosen) : 1;
  const started = performance.now();
  const forward = threads > 1 ? await ParallelForward.start(ema, { threads, backend: chosen, maxBatch: 2 * BATCH }) : undefined; // prettier-ignore
  let done = 0;
  let finished: Extract<Reply, { kind: 'digits-done' }>;
  try {
    const { images } = drawImages(ema, cfg, {
      sampler: req.sampler,
      steps: req.steps,
      count: req.count,
      seed: req.seed,
      labels: labels ?? undefined,
      guidance: labels ? req.guidance : 1,
      interval: GUIDANCE[cfg.dataset_params.name].interval, // where guidance applies: as `sample` does by default
      forward,
      onStep: (view) => {
        done++;
        const xt = view.xt();
        const x0 = view.x0();
        post({ kind: 'digits-step', step: view.step, steps: view.steps, start: view.start, channels, size, xt, x0 }, [xt.buffer, x0.buffer]); // prettier-ignore
        const msPerStep = (performance.now() - started) / done;
        post({ kind: 'progress', task: `sample ${req.sampler}`, done: view.step + 1, total: view.steps, msPerStep }); // prettier-ignore
      },
    });
    const seconds = (performance.now() - started) / 1000;
    const where = forward?.description.replace(/^.*; /, '');
    finished = { kind: 'digits-done', images, labels, channels, size, seconds, msPerStep: (1000 * seconds) / done, where }; // prettier-ignore
  } finally {
    if (forward) {
      forward.close();
      await useBackend(chosen); // its own threads again, for what comes next (ParallelForward.close)
    }
  }
  // only now: the page takes 'digits-done' as the end of the request and may send the next one at once
  post(finished);
}

/**
 * Milliseconds of `fn`, the median of the runs that fit in 1.5 s after a warm-up (at least one: on a
 * software GPU one run of the UNet takes seconds).
 */
const medianMs = async (fn: () => unknown) => (await medianTime(fn, 1, 1500, 30)).ms;

/**
 * The bench's rows, as `npm run bench` has them, on every backend in turn (then back to the one chosen):
 * matmul 256^3, a 3x3 convolution 32 -> 64 at 28x28 on 16 images, and the default config's UNet forward
 * pass at batch 4 (random weights; as the sampler runs it, under tidy).
 */
async function bench(current: string): Promise<void> {
  const rng = new Rng(0);
  const [a, b] = [rng.randn([256, 256]), rng.randn([256, 256])];
  const [x, w, bias] = [rng.randn([16, 32, 28, 28]), rng.randn([64, 32, 3, 3]), rng.randn([64])];
  const cfg = validateConfig(benchConfig);
  const net = new UNet(cfg.model_params, new Rng(0));
  const images = rng.randn([4, 1, 28, 28]);
  const t = [999, 700, 300, 10];
  for (const backend of backendChoices().filter((b) => b !== 'auto')) {
    const described = await useBackend(backend);
    const row = (name: string, value: number, unit: string) => post({ kind: 'bench-row', backend: described, row: name, value, unit }); // prettier-ignore
    row('matmul 256^3', (2 * 256 ** 3) / (await medianMs(() => noGrad(() => matmul(a, b)))) / 1e6, 'GFLOP/s'); // prettier-ignore
    await pause();
    const convFlops = 2 * 16 * 64 * 32 * 9 * 28 * 28;
    row('conv3x3 32->64 @28x28, batch 16', convFlops / (await medianMs(() => noGrad(() => conv2d(x, w, bias, { padding: 1 })))) / 1e6, 'GFLOP/s'); // prettier-ignore
    await pause();
    row('UNet forward, default config, batch 4', 4000 / (await medianMs(() => tidy(() => net.forward(images, t)))), 'images/s'); // prettier-ignore
    await pause();
    if (stopRequested) break;
  }
  post({ kind: 'bench-done', backend: await useBackend(current) });
}

let busy = false;
let chosen = 'wasm';
self.onmessage = async (e: MessageEvent<Request>) => {
  const req = e.data;
  if (req.kind === 'stop') {
    stopRequested = true;
    return;
  }
  if (busy) return post({ kind: 'error', message: 'still busy with the last request (Stop it first)' });
  busy = true;
  stopRequested = false;
  try {
    if (req.kind === 'backend') {
      post({ kind: 'backend', name: req.name, described: await useBackend(req.name) });
      chosen = req.name;
    } else if (req.kind === 'bench') await bench(chosen);
    else if (req.kind === 'toy') await trainToy(req.toy, req.seed, req.steps);
    else await drawDigits(req);
  } catch (err) {
    post({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
  } finally {
    busy = false;
  }
};

post({ kind: 'ready', backends: backendChoices() });
// probing WebGL2 starts a GL context, which takes a software GPU a second or two: after 'ready'
post({ kind: 'webgl2', renderer: webgl2() });
