#!/usr/bin/env node
/* global console, performance, process */
// A stand-in for `bench-torch.py --serve` in the bench's tests, where PyTorch is not installed: it
// speaks the paired bench's protocol (stages/lib/paired.ts) and its "step" is a millisecond of waiting.
import { createInterface } from 'node:readline';

const step = () => {
  const until = performance.now() + 1;
  while (performance.now() < until);
};
console.log(JSON.stringify({ ready: true }));
for await (const line of createInterface({ input: process.stdin })) {
  const n = Number(line);
  if (!(Number.isInteger(n) && n >= 1)) break;
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    step();
    ms.push(performance.now() - t0);
  }
  console.log(JSON.stringify({ ms }));
}
