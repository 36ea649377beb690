// A data-parallel worker (data-parallel.ts): builds its copy of the model, then for each share of a
// batch it is sent, loads the current weights from shared memory, runs the loss forward and backward,
// and leaves the gradient in its shared slot.
import { parentPort, workerData } from 'node:worker_threads';
import { Rng } from '../random.ts';
import { stepScope, Tensor } from '../tensor.ts';
import { UNet } from '../nn/unet.ts';
import { imageNet } from '../diffusion/image.ts';
import { makeObjective } from '../diffusion/objectives.ts';
import {
  copyIn,
  copyOut,
  startWorkerBackend,
  type GradReply,
  type GradRequest,
  type WorkerSetup,
} from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('grad-worker.ts runs as a worker thread of core/parallel/data-parallel.ts');
const setup = workerData as WorkerSetup;
const reply = (m: GradReply) => port.postMessage(m);

try {
  const backend = await startWorkerBackend(setup);
  // initial values do not matter: every step starts by copying the weights in
  const model = new UNet(setup.model, new Rng(0));
  const params = model.parameters();
  const objective = makeObjective(setup.objective);
  const net = imageNet(model, objective);
  const weights = new Float32Array(setup.weights);
  const grads = new Float32Array(setup.grads);
  port.on('message', (req: GradRequest) => {
    try {
      copyIn(weights, params);
      model.zeroGrad();
      const x0 = new Tensor(req.x0, req.shape);
      const noise = new Tensor(req.noise, req.shape);
      // the share's arrays go back to a pool for the next share (core/buffer-pool.ts); the gradient
      // leaves through the shared slot before the step's gradients are cleared
      const value = stepScope(params, () => {
        const loss = objective.loss(net, x0, { levels: req.levels, noise, labels: req.labels });
        const v = loss.item();
        loss.backward();
        copyOut(params, grads, true);
        return v;
      });
      reply({ loss: value });
    } catch (e) {
      reply({ error: (e as Error).message });
    }
  });
  reply({ ready: backend });
} catch (e) {
  reply({ error: (e as Error).message });
}
