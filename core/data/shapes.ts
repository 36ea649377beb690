// "Shapes": a data set of coloured shapes drawn in code from a seed, for the RGB rung (nothing is
// downloaded). To reproduce it a model has to learn shape (six classes, any position, size and
// rotation), colour (a saturated shape of any hue) and texture (a graded, faintly rippled background of
// low saturation, so the shape stands out). Everything is smooth enough for a 28x28 model to learn.
import { Rng } from '../random.ts';
import { hsvToRgb } from '../eval/colour.ts';

export const SHAPE_CLASSES = ['disc', 'square', 'triangle', 'ring', 'cross', 'stripes'] as const;

/** count images [count, 3, size, size] (planar CHW per image, row-major), values in [0, 1]; labels index SHAPE_CLASSES */
export type ImageSet = {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  channels: number;
  size: number;
};

/** Lengths below are in pixels of a 28x28 image, scaled by size / 28. */
const BASE_SIZE = 28;
const SIZES = [28, 32];
/** Edge anti-aliasing: the coverage of a pixel is the share of its SUB x SUB subsamples inside the shape. */
const SUB = 4;
/** How far any shape reaches from its centre, in radii (the triangle's corners), to skip far pixels. */
const REACH = 1.2;

type ShapeClass = (typeof SHAPE_CLASSES)[number];
/** One shape's class and free parameters (ring thickness, stripe bars), in the shape's own frame. */
type Shape = { kind: ShapeClass; inner: number; period: number; barHalf: number; squareRegion: boolean };

function drawShapeParameters(kind: ShapeClass, rng: Rng): Shape {
  const shape = { kind, inner: 0, period: 1, barHalf: 0, squareRegion: false };
  if (kind === 'ring') shape.inner = 1 - (0.3 + 0.15 * rng.uniform()); // thickness 0.3-0.45 radius
  if (kind === 'stripes') {
    // 3 or 4 parallel bars across a disc or square region, bars 60% of the period; the gaps show the background.
    shape.period = 2 / rng.int(3, 5);
    shape.barHalf = 0.3 * shape.period;
    shape.squareRegion = rng.uniform() < 0.5;
  }
  return shape;
}

/** Triangle: equilateral with circumradius REACH, its edges at REACH / 2 from the centre. */
const TRIANGLE_INRADIUS = REACH / 2;
const SIN_60 = Math.sqrt(3) / 2;

/**
 * Is the point (u, v), in the shape's own frame (centred, unrotated, radius 1), inside the shape? One
 * function with a switch rather than a closure per shape: V8 inlines it, which halves the drawing time.
 */
function isInside(shape: Shape, u: number, v: number): boolean {
  switch (shape.kind) {
    case 'disc':
      return u * u + v * v <= 1;
    case 'square': // half-side 0.8: about the disc's area
      return Math.abs(u) <= 0.8 && Math.abs(v) <= 0.8;
    case 'triangle': // inside all three edges, outward normals at 90, 210 and 330 degrees
      return (
        v <= TRIANGLE_INRADIUS &&
        -SIN_60 * u - 0.5 * v <= TRIANGLE_INRADIUS &&
        SIN_60 * u - 0.5 * v <= TRIANGLE_INRADIUS
      );
    case 'ring': {
      const d2 = u * u + v * v;
      return d2 <= 1 && d2 >= shape.inner * shape.inner;
    }
    case 'cross': // arms 0.6 radius wide: thick enough to read as a plus at 28x28
      return (Math.abs(u) <= 0.3 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.3 && Math.abs(u) <= 1);
    case 'stripes': {
      const { period, barHalf } = shape;
      const inRegion = shape.squareRegion ? Math.abs(u) <= 0.85 && Math.abs(v) <= 0.85 : u * u + v * v <= 1;
      return inRegion && Math.abs(((u + 1) % period) - period / 2) <= barHalf; // u + 1 >= 0 in the region
    }
  }
}

/** Draws image `index` (class index % 6) into `out` at `offset`, taking its random numbers from `rng`. */
function drawOne(out: Float32Array, offset: number, index: number, size: number, rng: Rng): void {
  const scale = size / BASE_SIZE;
  const plane = size * size;

  // Background: a linear gradient between two low-saturation colours along a random direction, times a
  // faint low-frequency ripple in brightness (multiplicative, so it keeps the background's saturation).
  const bgHue = rng.uniform();
  const from = hsvToRgb(bgHue, 0.05 + 0.3 * rng.uniform(), 0.25 + 0.6 * rng.uniform());
  const to = hsvToRgb(bgHue + 0.15 * rng.normal(), 0.05 + 0.3 * rng.uniform(), 0.25 + 0.6 * rng.uniform());
  const gradAngle = 2 * Math.PI * rng.uniform();
  const [gx, gy] = [Math.cos(gradAngle) / size, Math.sin(gradAngle) / size];
  const rippleAmp = 0.05 + 0.05 * rng.uniform();
  const rippleFreq = (2 * Math.PI * (0.5 + rng.uniform())) / size; // 0.5 to 1.5 cycles across the image
  const rippleAngle = 2 * Math.PI * rng.uniform();
  const [rx, ry] = [Math.cos(rippleAngle) * rippleFreq, Math.sin(rippleAngle) * rippleFreq];
  const ripplePhase = 2 * Math.PI * rng.uniform();

  // Shape: radius 6 to 11 px, centred so that at most a corner leaves the frame, any rotation and hue.
  const radius = (6 + 5 * rng.uniform()) * scale;
  const margin = 0.85 * radius;
  const cx = margin + (size - 2 * margin) * rng.uniform();
  const cy = margin + (size - 2 * margin) * rng.uniform();
  const rotation = 2 * Math.PI * rng.uniform();
  const fg = hsvToRgb(rng.uniform(), 0.6 + 0.4 * rng.uniform(), 0.7 + 0.3 * rng.uniform());
  const shape = drawShapeParameters(SHAPE_CLASSES[index % SHAPE_CLASSES.length], rng);

  // Rotating the pixel into the shape's frame: u along the shape's first axis, v across it.
  const cos = Math.cos(rotation) / radius;
  const sin = Math.sin(rotation) / radius;
  const farSquared = (REACH * radius + 0.75) ** 2; // beyond this, no subsample of the pixel can be inside
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let coverage = 0;
      const dx = x + 0.5 - cx;
      const dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= farSquared) {
        let hits = 0;
        for (let sy = 0; sy < SUB; sy++) {
          const py = y + (sy + 0.5) / SUB - cy;
          for (let sx = 0; sx < SUB; sx++) {
            const px = x + (sx + 0.5) / SUB - cx;
            if (isInside(shape, px * cos + py * sin, py * cos - px * sin)) hits++;
          }
        }
        coverage = hits / (SUB * SUB);
      }
      const t = Math.min(1, Math.max(0, 0.5 + (x + 0.5 - size / 2) * gx + (y + 0.5 - size / 2) * gy));
      const ripple = 1 + rippleAmp * Math.sin(x * rx + y * ry + ripplePhase);
      const p = offset + y * size + x;
      for (let c = 0; c < 3; c++) {
        const bg = (from[c] + (to[c] - from[c]) * t) * ripple;
        out[p + c * plane] = Math.min(1, Math.max(0, bg * (1 - coverage) + fg[c] * coverage));
      }
    }
  }
}

/**
 * `count` images drawn from `seed`; image i has class i % 6, so classes are balanced (exactly when
 * count % 6 === 0). Deterministic: the same (count, seed, size) gives identical bytes, and a size-32 set
 * shows the same scenes as the size-28 one, scaled.
 */
export function drawShapes(count: number, seed: number | string, size = BASE_SIZE): ImageSet {
  if (!SIZES.includes(size)) throw new Error(`drawShapes: size must be 28 or 32, got ${size}`);
  if (!Number.isInteger(count) || count < 0)
    throw new Error(`drawShapes: count must be a whole number >= 0, got ${count}`);
  const rng = new Rng(seed); // one generator, images drawn in order: the set depends on the seed alone
  const stride = 3 * size * size;
  const images = new Float32Array(count * stride);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % SHAPE_CLASSES.length;
    drawOne(images, i * stride, i, size, rng);
  }
  return { images, labels, count, channels: 3, size };
}

const splits = new Map<number, { train: ImageSet; test: ImageSet }>();

/** The fixed split used by the stage: 12,000 training images (seed 'shapes-train') and 2,000 held out (seed 'shapes-test'), cached per size. */
export function shapesSplit(size = BASE_SIZE): { train: ImageSet; test: ImageSet } {
  let split = splits.get(size);
  if (!split) {
    split = { train: drawShapes(12000, 'shapes-train', size), test: drawShapes(2000, 'shapes-test', size) };
    splits.set(size, split);
  }
  return split;
}
