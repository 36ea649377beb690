// The page's second engine thread for drawing images: core/parallel/forward-worker.ts, which runs a share
// of each sampler batch, with the backends it may be asked for registered first (a Node worker imports
// the modules its creator registered instead; a bundle has no such modules to import).
import '../core/kernels/wasm/index.ts';
import '../core/parallel/forward-worker.ts';
