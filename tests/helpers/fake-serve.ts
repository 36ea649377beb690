#!/usr/bin/env -S node --import tsx
// A stand-in for "bench-torch.py --serve" in the bench's tests, where PyTorch is not installed: the
// paired bench's own server (stages/lib/paired.ts), whose step is a millisecond of waiting.
import { serveSteps } from '../../stages/lib/paired.ts';

await serveSteps(() => {
  for (const until = performance.now() + 1; performance.now() < until;);
});
