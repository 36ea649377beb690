// The UNet's configuration: the reference's `model_params` fields, checked once at construction so that
// a bad config fails with a message naming the field instead of a shape error deep in a forward pass.
export const NORM_GROUPS = 8; // every GroupNorm of the reference splits its channels into 8 groups
export const LAST_UP_CHANNELS = 16; // the reference's last up block always outputs 16 channels

export interface UNetConfig {
  im_channels: number;
  im_size: number;
  /** Channels at each level; down block i maps down_channels[i] to down_channels[i + 1]. */
  down_channels: number[];
  /** Mid block i maps mid_channels[i] to mid_channels[i + 1]. */
  mid_channels: number[];
  /** One per down block: whether it halves the resolution (its mirrored up block doubles it). */
  down_sample: boolean[];
  time_emb_dim: number;
  num_down_layers: number;
  num_mid_layers: number;
  num_up_layers: number;
  num_heads: number;
  /**
   * Optional, one per down block (default all true, as in the reference): attn[i] = false removes the
   * attention layers of downs[i] and of the up block that mirrors it, ups[L - 1 - i], both of which work
   * at down level i's input resolution. The mid blocks, at the lowest resolution, always keep theirs.
   */
  attn?: boolean[];
  /**
   * Optional: a class-conditional UNet of this many classes (absent or 0: unconditional, exactly the
   * reference). A learned embedding of num_classes + 1 rows, the last meaning "no class", is added to
   * the time embedding after t_proj, as ADM and diffusers' class_embedding do.
   */
  num_classes?: number;
}

/** A checked config: every field filled in (attn included), num_classes only when the UNet has classes. */
export type CheckedUNetConfig = Required<Omit<UNetConfig, 'num_classes'>> & { num_classes?: number };

export const UNET_FIELDS = [
  'im_channels',
  'im_size',
  'down_channels',
  'mid_channels',
  'down_sample',
  'time_emb_dim',
  'num_down_layers',
  'num_mid_layers',
  'num_up_layers',
  'num_heads',
  'attn',
  'num_classes',
] as const;

export class UNetConfigError extends Error {}

function fail(message: string): never {
  throw new UNetConfigError(`UNet config: ${message}`);
}

function int(
  cfg: Record<string, unknown>,
  field: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = cfg[field];
  if (v === undefined) fail(`missing field '${field}'`);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max < Number.MAX_SAFE_INTEGER ? `in ${min}..${max}` : `>= ${min}`;
    fail(`'${field}' must be an integer ${range}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function list<T>(cfg: Record<string, unknown>, field: string, ok: (v: unknown) => v is T, what: string): T[] {
  const v = cfg[field];
  if (v === undefined) fail(`missing field '${field}'`);
  if (!Array.isArray(v) || !v.every(ok))
    fail(`'${field}' must be a list of ${what}, got ${JSON.stringify(v)}`);
  return v;
}

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

/** The resolution at the input of every down level, given the image size, and the deepest one last. */
export function levelSizes(imSize: number, downSample: readonly boolean[]): number[] {
  const sizes = [imSize];
  for (const halve of downSample)
    sizes.push(halve ? Math.floor(sizes[sizes.length - 1] / 2) : sizes[sizes.length - 1]);
  return sizes;
}

/**
 * A strided 4x4 convolution with padding 1 maps size s to floor(s / 2), and the transposed one maps it
 * back to 2 floor(s / 2): the skip connection only fits when every down-sampled size is even.
 */
export function checkDownSampling(size: number, downSample: readonly boolean[], what: string): void {
  const sizes = levelSizes(size, downSample);
  downSample.forEach((halve, i) => {
    if (halve && (sizes[i] % 2 !== 0 || sizes[i] < 2)) {
      fail(
        `down_sample[${i}] halves a ${sizes[i]}x${sizes[i]} resolution (${what} ${size}), but the up path can only mirror an even size (${sizes[i]} -> ${Math.floor(sizes[i] / 2)} -> ${2 * Math.floor(sizes[i] / 2)})`,
      );
    }
  });
}

/** Checks a parsed config (e.g. JSON) field by field and returns it typed, with `attn` filled in. */
export function validateUNetConfig(raw: unknown): CheckedUNetConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail(`expected an object, got ${JSON.stringify(raw)}`);
  const cfg = raw as Record<string, unknown>;
  const unknown = Object.keys(cfg).filter((k) => !(UNET_FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0) fail(`unknown field '${unknown[0]}' (the fields are ${UNET_FIELDS.join(', ')})`);

  // images up to 16 channels of 1024x1024: past that, one batch of activations would not fit in memory
  const imChannels = int(cfg, 'im_channels', 1, 16);
  const imSize = int(cfg, 'im_size', 1, 1024);
  const down = list(cfg, 'down_channels', isPositiveInt, 'positive integers');
  const mid = list(cfg, 'mid_channels', isPositiveInt, 'positive integers');
  const downSample = list(cfg, 'down_sample', isBool, 'booleans');
  const tDim = int(cfg, 'time_emb_dim', 2);
  const layers = {
    num_down_layers: int(cfg, 'num_down_layers', 1),
    num_mid_layers: int(cfg, 'num_mid_layers', 0),
    num_up_layers: int(cfg, 'num_up_layers', 1),
  };
  const heads = int(cfg, 'num_heads', 1);
  const classes = cfg.num_classes === undefined ? 0 : int(cfg, 'num_classes', 0, 1000);
  const levels = down.length - 1;
  const attn =
    cfg.attn === undefined
      ? new Array<boolean>(Math.max(levels, 0)).fill(true)
      : list(cfg, 'attn', isBool, 'booleans');

  if (down.length < 2)
    fail(`'down_channels' needs at least 2 entries (one down block), got ${JSON.stringify(down)}`);
  if (mid.length < 2)
    fail(`'mid_channels' needs at least 2 entries (one mid block), got ${JSON.stringify(mid)}`);
  if (tDim % 2 !== 0) fail(`'time_emb_dim' must be even (half sines, half cosines), got ${tDim}`);
  if (mid[0] !== down[levels]) {
    fail(
      `mid_channels[0] = ${mid[0]} must equal the last down_channels entry, ${down[levels]} (the mid blocks take the last down block's output)`,
    );
  }
  if (mid[mid.length - 1] !== down[levels - 1]) {
    fail(
      `the last mid_channels entry, ${mid[mid.length - 1]}, must equal down_channels[${levels - 1}] = ${down[levels - 1]} (the first up block expects that many channels)`,
    );
  }
  if (downSample.length !== levels) {
    fail(`'down_sample' needs one entry per down block (${levels}), got ${downSample.length}`);
  }
  if (attn.length !== levels) fail(`'attn' needs one entry per down block (${levels}), got ${attn.length}`);
  for (const [field, values] of [
    ['down_channels', down],
    ['mid_channels', mid],
  ] as const) {
    values.forEach((c, i) => {
      if (c % NORM_GROUPS !== 0)
        fail(`${field}[${i}] = ${c} is not divisible by the ${NORM_GROUPS} GroupNorm groups`);
    });
  }
  // every attention layer works on its block's output channels
  const attended: [string, number][] = [];
  for (let i = 0; i < levels; i++) {
    if (!attn[i]) continue;
    attended.push([`downs.${i}`, down[i + 1]]);
    attended.push([`ups.${levels - 1 - i}`, i === 0 ? LAST_UP_CHANNELS : down[i - 1]]);
  }
  if (layers.num_mid_layers > 0) mid.slice(1).forEach((c, i) => attended.push([`mids.${i}`, c]));
  for (const [block, c] of attended) {
    if (c % heads !== 0)
      fail(`num_heads = ${heads} does not divide the ${c} channels of the attention in ${block}`);
  }
  checkDownSampling(imSize, downSample, 'im_size');
  const checked = {
    im_channels: imChannels,
    im_size: imSize,
    down_channels: down,
    mid_channels: mid,
    down_sample: downSample,
    time_emb_dim: tDim,
    ...layers,
    num_heads: heads,
    attn,
    ...(classes > 0 ? { num_classes: classes } : {}),
  };
  // built, every parameter is allocated at once (and four more times in training: gradient, EMA, Adam)
  const count = unetParameterCount(checked);
  if (count > MAX_PARAMETERS) {
    fail(
      `the UNet would have ${count.toLocaleString('en')} parameters, more than the ${MAX_PARAMETERS.toLocaleString('en')} this project builds (channels, layers or time_emb_dim too large)`,
    );
  }
  return checked;
}

/** The most parameters a config may ask for: 2^28 float32s are 1 GB, and training holds five copies. */
export const MAX_PARAMETERS = 2 ** 28;

/**
 * The number of parameters the UNet of a checked config holds, counted from the config alone (the same
 * layers core/nn/unet.ts builds, without allocating them; a test checks the two agree).
 */
export function unetParameterCount(cfg: CheckedUNetConfig): number {
  const conv = (cin: number, cout: number, k: number) => cout * cin * k * k + cout;
  const linear = (i: number, o: number) => o * i + o;
  const norm = (c: number) => 2 * c;
  const attention = (e: number) => norm(e) + 4 * e * e + 4 * e; // GroupNorm, in_proj, out_proj
  const tDim = cfg.time_emb_dim;
  // `resnets` ResNet layers (the first takes cin channels) and `attns` attention layers on cout channels
  // (in closed form, not a loop: a config can ask for any number of layers)
  const resnet = (width: number, cout: number) =>
    norm(width) +
    conv(width, cout, 3) +
    linear(tDim, cout) +
    norm(cout) +
    conv(cout, cout, 3) +
    conv(width, cout, 1);
  const layers = (cin: number, cout: number, resnets: number, attns: number) =>
    attns * attention(cout) + (resnets > 0 ? resnet(cin, cout) + (resnets - 1) * resnet(cout, cout) : 0);
  const { down_channels: down, mid_channels: mid, down_sample: sample, attn } = cfg;
  const levels = down.length - 1;
  let n = 2 * linear(tDim, tDim) + conv(cfg.im_channels, down[0], 3);
  for (let i = 0; i < levels; i++) {
    n += layers(down[i], down[i + 1], cfg.num_down_layers, attn[i] ? cfg.num_down_layers : 0);
    if (sample[i]) n += conv(down[i + 1], down[i + 1], 4);
  }
  for (let i = 0; i + 1 < mid.length; i++) {
    n += layers(mid[i], mid[i + 1], cfg.num_mid_layers + 1, cfg.num_mid_layers);
  }
  for (let i = levels - 1; i >= 0; i--) {
    const cout = i > 0 ? down[i - 1] : LAST_UP_CHANNELS;
    n += layers(2 * down[i], cout, cfg.num_up_layers, attn[i] ? cfg.num_up_layers : 0);
    if (sample[i]) n += conv(down[i], down[i], 4); // ConvTranspose2d, same count
  }
  const classes = cfg.num_classes ?? 0;
  if (classes > 0) n += (classes + 1) * tDim; // class_emb: one row per class and one for "no class"
  return n + norm(LAST_UP_CHANNELS) + conv(LAST_UP_CHANNELS, cfg.im_channels, 3);
}
