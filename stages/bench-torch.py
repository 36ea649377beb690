"""PyTorch's figures for the rows of `npm run bench`, on this machine, for the table beside it.

A developer tool, never run by `npm test` or CI (it needs PyTorch: `apt-get install python3-torch`):

    /usr/bin/python3 stages/bench-torch.py [--threads 2] [--rows matmul,conv,train,forward,seed]

Debian's PyTorch multiplies matrices through whichever BLAS the system provides. With only the
reference BLAS (libblas3) its matmul runs at a few GFLOP/s and every row that uses it (attention, linear
layers) is unfairly slow; install OpenBLAS first (`apt-get install libopenblas0-pthread`). The script
warns when it finds a slow BLAS.

Each figure is the median of several timed runs after a warm-up, as in stages/bench.ts, and carries the
same row name, so the two outputs line up; each UNet row runs in a process of its own and reports that
process's peak resident memory (`peakMiB`), as the bench does. The UNet is the reference model of
tests/fixtures/make_golden.py (checked against the TypeScript one by `npm run verify`), built from the
same config files. Forward rows run under torch.inference_mode(), as a sampler would.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures'))
from make_golden import Unet  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')


def timed(fn, min_runs=5, budget=1.5):
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget and len(times) < 50):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1000, len(times)


def emit(bench, value, unit, ms, runs, **extra):
    print(json.dumps({'bench': bench, 'backend': 'pytorch', 'value': round(value, 2), 'unit': unit,
                      'runs': runs, 'ms': round(ms, 2), **extra}), flush=True)


def peak_mib():
    """This process's peak resident memory so far, in MiB (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def model_of(name):
    with open(os.path.join(ROOT, 'stages', 'mnist', name + '.json')) as f:
        cfg = json.load(f)['model_params']
    torch.manual_seed(0)
    return Unet(cfg), cfg


def batch_of(cfg, b):
    """Noise images, their timesteps and, for a class-conditional config, a label each (the classes in
    turn), as stages/bench.ts makes them."""
    x = torch.randn(b, cfg['im_channels'], cfg['im_size'], cfg['im_size'])
    t = torch.tensor([(i * 37) % 1000 for i in range(b)])
    classes = cfg.get('num_classes', 0)
    y = torch.tensor([i % classes for i in range(b)]) if classes > 0 else None
    return x, t, y


def train_step(name, b):
    """One training step of config `name` at batch b (forward, backward, Adam), as a function."""
    model, cfg = model_of(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, t, y = batch_of(cfg, b)
    target = torch.randn_like(x)

    def step():
        loss = ((model(x, t, y) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def forward_step(name, b):
    """One forward pass of config `name` at batch b under torch.inference_mode(), as a sampler runs it."""
    model, cfg = model_of(name)
    model.eval()
    x, t, y = batch_of(cfg, b)

    def step():
        with torch.inference_mode():
            model(x, t, y)

    return step


def unet_row(kind, name, b, min_runs=3, budget=20):
    ms, runs = timed((train_step if kind == 'train' else forward_step)(name, b), min_runs, budget)
    what = 'unet train step' if kind == 'train' else 'unet forward'
    emit(f'{what} b{b}' + ('' if name == 'default' else f' {name}'), b / (ms / 1000), 'images/s', ms, runs,
         peakMiB=peak_mib())


def serve(step):
    """Steps on request for `npm run bench -- --paired` (stages/lib/paired.ts): after a warm-up step a line
    {"ready": true}; then each input line N runs N steps and is answered by their milliseconds."""
    step()
    print(json.dumps({'ready': True}), flush=True)
    while True:
        line = sys.stdin.readline().strip()
        if not line.isdigit() or int(line) < 1:
            return
        ms = []
        for _ in range(int(line)):
            t = time.perf_counter()
            step()
            ms.append((time.perf_counter() - t) * 1000)
        print(json.dumps({'ms': ms}), flush=True)


def unet_row_apart(spec, threads):
    """One UNet row in a process of its own (this script with --unet), so that its peak memory is its own,
    as `npm run bench` measures its UNet rows."""
    run = subprocess.run([sys.executable, os.path.abspath(__file__), '--threads', str(threads), '--unet', spec],
                         capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f'bench-torch --unet {spec} failed: {run.stderr.strip().splitlines()[-1:]}')
    print(run.stdout.strip(), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--rows', default='matmul,conv,train,forward,seed')
    p.add_argument('--unet', help='one UNet row only, in this process: kind:config:batch (train:default:64)')
    p.add_argument('--serve', action='store_true', help='with --unet: serve steps on stdin for the paired bench')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.unet:
        kind, name, b = a.unet.split(':')
        if a.serve:
            serve((train_step if kind == 'train' else forward_step)(name, int(b)))
        else:
            unet_row(kind, name, int(b), *((2, 30) if name == 'seed' else ()))
        return
    print(f'# PyTorch {torch.__version__}, {torch.get_num_threads()} threads', file=sys.stderr)
    rows = a.rows.split(',')
    x = torch.randn(256, 256)
    ms, _ = timed(lambda: x @ x, 5, 0.2)
    if 2 * 256**3 / ms / 1e6 < 20:
        print('# warning: matmul 256^3 runs under 20 GFLOP/s: PyTorch is probably on the reference BLAS;'
              ' apt-get install libopenblas0-pthread', file=sys.stderr)
    with torch.no_grad():
        if 'matmul' in rows:
            for n in [128, 256, 512, 1024]:
                x, y = torch.randn(n, n), torch.randn(n, n)
                ms, runs = timed(lambda: x @ y)
                emit(f'matmul {n}^3', 2 * n**3 / ms / 1e6, 'GFLOP/s', ms, runs)
        if 'conv' in rows:
            for b, cin, cout, hw in [(64, 32, 64, 28), (64, 64, 128, 14), (64, 128, 256, 7)]:
                x, w, bias = torch.randn(b, cin, hw, hw), torch.randn(cout, cin, 3, 3) * 0.1, torch.randn(cout)
                ms, runs = timed(lambda: torch.nn.functional.conv2d(x, w, bias, padding=1))
                flops = 2 * b * cout * hw * hw * cin * 9
                emit(f'conv3x3 {cin}->{cout} @{hw}x{hw} b{b} fwd', flops / ms / 1e6, 'GFLOP/s', ms, runs)
    # the UNet rows each in a process of their own, with its peak memory
    specs = ((['train:default:64', 'train:fast:16'] if 'train' in rows else [])
             + (['forward:default:100', 'forward:fast:100'] if 'forward' in rows else [])
             + (['train:seed:16', 'forward:seed:16'] if 'seed' in rows else []))
    for spec in specs:
        unet_row_apart(spec, a.threads)


if __name__ == '__main__':
    main()
