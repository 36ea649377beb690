// The core in one import: tensors and autograd, ops, layers, optimisers, randomness, diffusion maths.
export * from './tensor.ts';
export * from './shape.ts';
export * from './ops/elementwise.ts';
export * from './ops/reduce.ts';
export * from './ops/matmul.ts';
export * from './ops/shape.ts';
export * from './ops/loss.ts';
export * from './nn/module.ts';
export * from './nn/layers.ts';
export * from './optim.ts';
export * from './random.ts';
export * from './diffusion/edm.ts';
export * from './nn/embedding.ts';
