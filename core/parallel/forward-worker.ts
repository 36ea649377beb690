// A worker of parallel-forward.ts: builds its copy of the model from the weights it was given, then
// serves forward passes synchronously. It blocks on its control word (Atomics.wait) until the calling
// thread posts a share of a batch, runs it without autograd, writes the output and signals back.
// The same file runs as a Node worker thread and, bundled, as a page's Web Worker (spawn.ts).
import { Rng } from '../random.ts';
import { tidy, Tensor } from '../tensor.ts';
import { UNet } from '../nn/unet.ts';
import { copyIn, startWorkerBackend } from './protocol.ts';
import { CTRL, ForwardChannel, type ForwardSetup } from './forward-channel.ts';
import { workerSide } from './spawn.ts';

const { setup, post } = await workerSide<ForwardSetup>('forward-worker.ts');

let model: UNet | null = null;
try {
  await startWorkerBackend(setup);
  model = new UNet(setup.model, new Rng(0));
  copyIn(new Float32Array(setup.weights), model.parameters());
  post({ ready: true });
} catch (e) {
  post({ error: (e as Error).message });
}

if (model) {
  const net = model;
  const ch = new ForwardChannel(setup.channel);
  for (let seq = 0; ;) {
    Atomics.wait(ch.ctrl, CTRL.request, seq);
    seq = Atomics.load(ch.ctrl, CTRL.request);
    try {
      const { x, t, labels, fractionalTime } = ch.readRequest();
      // written out, then its buffers reused by the next pass (core/buffer-pool.ts)
      tidy(() => {
        const y = net.forward(new Tensor(x, ch.shape()), t, { fractionalTime, labels });
        ch.writeOutput(y.data as Float32Array);
        return [];
      });
    } catch (e) {
      ch.writeError((e as Error).message);
    }
    Atomics.store(ch.ctrl, CTRL.done, seq);
    Atomics.notify(ch.ctrl, CTRL.done);
  }
}
