// The page's UI thread: forms, canvases and status lines. Everything numeric runs in the worker
// (web/worker.ts), so this thread only draws what the worker posts.
import type { Picture, Reply, Request, Toy } from './protocol.ts';

type CheckpointEntry = { file: string; label: string; classes: string[] | null; guidance: number | null };

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const num = (id: string) => Number($<HTMLInputElement>(id).value);
const worker = new Worker('worker.js', { type: 'module' });
const send = (req: Request) => worker.postMessage(req);

/** What the tests read back (tests/stages/web.test.ts): the last results, as plain data. */
const results: { toy?: Extract<Reply, { kind: 'toy-done' }>; digits?: { images: number[]; labels: number[] | null; seconds: number; backend: string; where?: string } } = {}; // prettier-ignore
(globalThis as unknown as { pageResults: typeof results }).pageResults = results;

let backend = '';
let checkpoints: CheckpointEntry[] = [];

function showPicture(canvas: HTMLCanvasElement, p: Picture): void {
  canvas.width = p.width;
  canvas.height = p.height;
  const rgba = new ImageData(p.width, p.height);
  for (let i = 0, j = 0; i < p.rgb.length; i += 3, j += 4) {
    rgba.data[j] = p.rgb[i];
    rgba.data[j + 1] = p.rgb[i + 1];
    rgba.data[j + 2] = p.rgb[i + 2];
    rgba.data[j + 3] = 255;
  }
  canvas.getContext('2d')!.putImageData(rgba, 0, 0);
}

/** Images [n, channels, size, size] in [0, 1] as a grid, `columns` to a row, 2 px apart, scaled up 3x. */
function showGrid(
  canvas: HTMLCanvasElement,
  images: Float32Array,
  n: number,
  channels: number,
  size: number,
  columns: number,
): void {
  // prettier-ignore
  const rows = Math.ceil(n / columns);
  const cell = size + 2;
  if (canvas.width !== columns * cell || canvas.height !== rows * cell) {
    canvas.width = columns * cell;
    canvas.height = rows * cell;
    canvas.style.width = `${3 * canvas.width}px`;
  }
  const img = new ImageData(canvas.width, canvas.height);
  img.data.fill(255);
  const plane = size * size;
  for (let k = 0; k < n && (k + 1) * channels * plane <= images.length; k++) {
    const [ox, oy] = [(k % columns) * cell + 1, Math.floor(k / columns) * cell + 1];
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const at = 4 * ((oy + y) * canvas.width + ox + x);
        for (let c = 0; c < 3; c++) {
          const v = images[k * channels * plane + (channels === 3 ? c : 0) * plane + y * size + x];
          img.data[at + c] = Math.round(255 * v);
        }
      }
    }
  }
  canvas.getContext('2d')!.putImageData(img, 0, 0);
}

const eta = (done: number, total: number, ms: number) => `${((total - done) * ms / 1000).toFixed(1)} s left`; // prettier-ignore

let digitsBatch = { xt: new Float32Array(0), x0: new Float32Array(0) };
/** The images being drawn, and the grid's columns: a row per class when every class is asked. */
let drawing: { request: Extract<Request, { kind: 'digits' }>; columns: number } | null = null;

function setBusy(busy: boolean): void {
  for (const id of ['toy-run', 'draw', 'backend', 'bench-run']) $<HTMLButtonElement>(id).disabled = busy;
  $<HTMLButtonElement>('toy-stop').disabled = !busy;
}

worker.onmessage = (e: MessageEvent<Reply>) => {
  const r = e.data;
  switch (r.kind) {
    case 'ready': {
      const select = $<HTMLSelectElement>('backend');
      for (const b of r.backends) select.add(new Option(b === 'gpu' ? 'gpu (gpu.js)' : b, b));
      const start = r.backends.includes('wasm') ? 'wasm' : 'ts';
      select.value = start;
      setBusy(true);
      send({ kind: 'backend', name: start });
      break;
    }
    case 'webgl2': {
      document.body.dataset.webgl2 = r.renderer ?? 'none';
      if (r.renderer === null) {
        $('notice').hidden = false;
        $('notice').textContent = 'This browser gives the page no WebGL2, so gpu.js cannot reach a GPU here: the page runs on WebAssembly.'; // prettier-ignore
      }
      break;
    }
    case 'backend': {
      backend = r.described;
      const isolated = crossOriginIsolated
        ? 'cross-origin isolated'
        : 'not cross-origin isolated: one thread';
      $('backend-status').textContent = `${r.described} (${isolated})`;
      setBusy(false);
      document.body.dataset.ready = 'yes';
      break;
    }
    case 'progress': {
      const line = `${r.task}: ${r.done}/${r.total}, ${r.msPerStep.toFixed(2)} ms/step, ${eta(r.done, r.total, r.msPerStep)}${r.loss === undefined ? '' : `, loss ${r.loss.toFixed(4)}`}`; // prettier-ignore
      $(r.task.startsWith('train') ? 'toy-status' : 'digits-status').textContent = line;
      break;
    }
    case 'picture': {
      showPicture($<HTMLCanvasElement>(r.id === 'loss' ? 'toy-loss' : r.id === 'level' ? 'toy-level' : 'toy-levels'), r.picture); // prettier-ignore
      if (r.id === 'level') $('toy-level-caption').textContent = r.caption;
      break;
    }
    case 'toy-done': {
      results.toy = r;
      const s = r.summary;
      $('toy-result').textContent =
        s.toy === '1d'
          ? `samples: mean ${s.mean.toFixed(4)}, std ${s.std.toFixed(4)} (goal 1.0000 and 0.0100; stage:1d's bar: mean within 0.01, std within 25%)` // prettier-ignore
          : `samples by nearest spike: ${s.shares.map((v) => `${(100 * v).toFixed(1)}%`).join(' ')}, std ${s.stds.map((v) => v.toFixed(4)).join(' ')} (goal 25% each, std 0.0100)`; // prettier-ignore
      $('toy-status').textContent += ` | done in ${r.seconds.toFixed(1)} s`;
      setBusy(false);
      break;
    }
    case 'digits-step': {
      if (!drawing) break;
      const { count } = drawing.request;
      const per = r.channels * r.size * r.size;
      if (digitsBatch.xt.length !== count * per) digitsBatch = { xt: new Float32Array(count * per), x0: new Float32Array(count * per) }; // prettier-ignore
      digitsBatch.xt.set(r.xt, r.start * per);
      digitsBatch.x0.set(r.x0, r.start * per);
      showGrid($<HTMLCanvasElement>('xt'), digitsBatch.xt, count, r.channels, r.size, drawing.columns);
      showGrid($<HTMLCanvasElement>('x0'), digitsBatch.x0, count, r.channels, r.size, drawing.columns);
      break;
    }
    case 'digits-done': {
      results.digits = { images: Array.from(r.images), labels: r.labels, seconds: r.seconds, backend, where: r.where }; // prettier-ignore
      $('digits-status').textContent = `${r.images.length / (r.channels * r.size * r.size)} images in ${r.seconds.toFixed(2)} s (${r.msPerStep.toFixed(0)} ms per sampler step) on ${backend}${r.where ? `; ${r.where}` : ''}`; // prettier-ignore
      drawing = null;
      setBusy(false);
      break;
    }
    case 'bench-row': {
      const table = $<HTMLTableElement>('bench');
      if (table.rows.length === 0) table.insertRow().append(...['backend', 'row', 'speed'].map((h) => Object.assign(document.createElement('th'), { textContent: h }))); // prettier-ignore
      const tr = table.insertRow();
      for (const text of [r.backend, r.row, `${r.value.toFixed(r.value < 10 ? 2 : 1)} ${r.unit}`]) tr.insertCell().textContent = text; // prettier-ignore
      $('bench-status').textContent = `measured ${r.row} on ${r.backend}`;
      break;
    }
    case 'bench-done':
      $('bench-status').textContent = `done; back on ${r.backend}`;
      document.body.dataset.bench = 'done';
      setBusy(false);
      break;
    case 'stopped':
      $('toy-status').textContent += ' | stopped';
      setBusy(false);
      break;
    case 'error':
      $('error').textContent = r.message;
      drawing = null;
      setBusy(false);
      break;
  }
};
worker.onerror = (e) => {
  $('error').textContent = `the worker failed: ${e.message}`;
};

/** The checkpoint chosen in the menu. */
const chosenCheckpoint = () => checkpoints.find((c) => c.file === $<HTMLSelectElement>('ckpt').value);

function fillClasses(): void {
  const entry = chosenCheckpoint();
  const select = $<HTMLSelectElement>('classes');
  select.length = 1;
  for (const [i, name] of (entry?.classes ?? []).entries()) select.add(new Option(name, String(i)));
  select.disabled = !entry?.classes;
  $<HTMLInputElement>('guidance').disabled = !entry?.classes;
  if (entry?.guidance) $<HTMLInputElement>('guidance').value = String(entry.guidance);
}

$('backend').addEventListener('change', () => {
  $('error').textContent = '';
  setBusy(true);
  send({ kind: 'backend', name: $<HTMLSelectElement>('backend').value });
});

$('toy-run').addEventListener('click', () => {
  $('error').textContent = '';
  $('toy-result').textContent = '';
  setBusy(true);
  send({ kind: 'toy', toy: $<HTMLSelectElement>('toy').value as Toy, seed: num('toy-seed'), steps: num('toy-steps') }); // prettier-ignore
});
$('toy-stop').addEventListener('click', () => send({ kind: 'stop' }));
$('bench-run').addEventListener('click', () => {
  $('error').textContent = '';
  $<HTMLTableElement>('bench').replaceChildren();
  setBusy(true);
  send({ kind: 'bench' });
});

$('draw').addEventListener('click', () => {
  $('error').textContent = '';
  const classes = $<HTMLSelectElement>('classes').value;
  const request = {
    kind: 'digits' as const,
    checkpoint: $<HTMLSelectElement>('ckpt').value,
    sampler: $<HTMLSelectElement>('sampler').value as 'ddim',
    steps: num('steps'),
    count: num('count'),
    seed: num('seed'),
    classes: classes === 'all' ? ('all' as const) : Number(classes),
    guidance: num('guidance'),
  };
  const kinds = chosenCheckpoint()?.classes?.length ?? 0;
  const columns = Math.ceil(
    kinds > 0 && classes === 'all' ? request.count / kinds : Math.sqrt(request.count),
  );
  drawing = { request, columns };
  setBusy(true);
  send(request);
});
$('ckpt').addEventListener('change', fillClasses);

fetch('checkpoints.json')
  .then((r) => {
    if (!r.ok) throw new Error(`checkpoints.json: ${r.status} ${r.statusText}`);
    return r.json() as Promise<CheckpointEntry[]>;
  })
  .then((list) => {
    checkpoints = list;
    for (const c of list) $<HTMLSelectElement>('ckpt').add(new Option(c.label, c.file));
    fillClasses();
  })
  .catch((err: Error) => ($('error').textContent = `cannot list the checkpoints: ${err.message}`));
