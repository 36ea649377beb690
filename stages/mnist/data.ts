// The image sets the image stage trains on, named by a config's dataset_params.name: MNIST's digits
// (stage:mnist) and the coloured shapes drawn in code (stage:rgb). Each says what its images are, how
// its classes are called, where its judge is, and which images train and which are held out.
import { mnistSplit } from '../../core/data/mnist.ts';
import { SHAPE_CLASSES, shapesSplit } from '../../core/data/shapes.ts';
import { DATASET_SHAPES, type StageConfig } from '../lib/config.ts';

/** Images [count, channels * size * size] in [0, 1] and their classes. */
export type Images = { images: Float32Array; labels: Int32Array; count: number };

export type ImageData = {
  name: StageConfig['dataset_params']['name'];
  channels: 1 | 3;
  size: number;
  /** What one class is called in the terminal and the pictures: 'digit', 'shape'. */
  noun: string;
  classNames: readonly string[];
  /** The committed judge of this set (trained by `npm run judge:train`). */
  judge: string;
  /** The training images and the held-out ones the judge and the FID compare against. */
  split(): { train: Images; test: Images };
};

export const MNIST: ImageData = {
  name: 'mnist',
  channels: DATASET_SHAPES.mnist.channels,
  size: DATASET_SHAPES.mnist.sizes[0],
  noun: 'digit',
  classNames: [...Array(DATASET_SHAPES.mnist.classes).keys()].map(String),
  judge: 'stages/mnist/judge.safetensors',
  split: () => mnistSplit(),
};

/** The coloured shapes at `size` (28, or 32 for a model of im_size 32). */
export function shapes(size = 28): ImageData {
  return {
    name: 'shapes',
    channels: DATASET_SHAPES.shapes.channels,
    size,
    noun: 'shape',
    classNames: SHAPE_CLASSES,
    judge: `stages/rgb/judge${size === 28 ? '' : `-${size}`}.safetensors`,
    split: () => shapesSplit(size),
  };
}

/** The images at `indices` of a set of images of `pixels` values each, one after another. */
export function pickImages(images: Float32Array, indices: readonly number[], pixels: number): Float32Array {
  const out = new Float32Array(indices.length * pixels);
  indices.forEach((i, k) => out.set(images.subarray(i * pixels, (i + 1) * pixels), k * pixels));
  return out;
}

/** The data set a config trains on. */
export function dataOf(cfg: StageConfig): ImageData {
  return cfg.dataset_params.name === 'mnist' ? MNIST : shapes(cfg.model_params.im_size);
}
