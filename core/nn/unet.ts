// The config-driven DDPM UNet of the reference implementation, layer for layer and name for name, so a
// state_dict saved by either loads into the other.
//
//   x ─ conv_in ─ downs[0] ─ downs[1] ─ ... ─ mids ─ ... ─ ups[L-2] ─ ups[L-1] ─ norm_out ─ SiLU ─ conv_out
//        │            └──────── skip ─────────────────────────┘           │
//        └──────────────────────── skip ──────────────────────────────────┘
//
// Every block is a stack of layers, each a ResNet layer (GroupNorm, SiLU, 3x3 conv; + the projected time
// embedding; GroupNorm, SiLU, 3x3 conv; + a 1x1 conv of the layer's input) followed by a self-attention
// layer over the h*w positions (GroupNorm, multi-head attention, + its input). A down block ends with a
// strided 4x4 conv that halves the resolution; an up block starts with a transposed 4x4 conv that
// doubles it and concatenates the skip: the input of the down block it mirrors. A mid block is one ResNet
// layer followed by (attention, ResNet) pairs. The time embedding is sinusoidal, then Linear, SiLU,
// Linear (`t_proj`), computed once and given to every ResNet layer.
import { Tensor } from '../tensor.ts';
import type { Rng } from '../random.ts';
import { formatShape } from '../shape.ts';
import { add } from '../ops/elementwise.ts';
import { concat, reshape, transpose } from '../ops/shape.ts';
import { Module, ModuleList } from './module.ts';
import { Linear, Sequential, SiLU } from './layers.ts';
import { Conv2d, ConvTranspose2d } from './conv.ts';
import { GroupNorm } from './norm.ts';
import { MultiheadAttention } from './attention.ts';
import { Embedding, timeEmbedding } from './embedding.ts';
import {
  checkDownSampling,
  NORM_GROUPS,
  LAST_UP_CHANNELS,
  UNetConfigError,
  validateUNetConfig,
  type CheckedUNetConfig,
  type UNetConfig,
} from './unet-config.ts';

/**
 * GroupNorm, SiLU, 3x3 conv: the two halves of a ResNet layer. The norm and the SiLU run as one op
 * (groupNorm's `silu`); the SiLU module stays in the list so the parameters keep PyTorch's indices.
 */
class NormActConv extends Sequential {
  constructor(cin: number, cout: number, rng: Rng) {
    super(new GroupNorm(NORM_GROUPS, cin), new SiLU(), new Conv2d(cin, cout, 3, rng, { padding: 1 }));
  }
  override forward(x: Tensor): Tensor {
    const [norm, , conv] = this.items;
    return conv.forward((norm as GroupNorm).forward(x, { silu: true }));
  }
}

/** What a block is built from: channels in and out, time-embedding size, layers, heads, options. */
export interface BlockSpec {
  cin: number;
  cout: number;
  tDim: number;
  layers: number;
  heads: number;
  /** Whether the block has attention layers (always, for mid blocks). */
  attn: boolean;
  /** Down blocks: halve the resolution at the end; up blocks: double it at the start. */
  resample: boolean;
}

/**
 * The parameter lists every block holds, named as the reference names them: `resnets` ResNet layers
 * (the first takes cin channels, the rest cout) and `attns` attention layers, all on cout channels.
 */
class Layers extends Module {
  resnet_conv_first: ModuleList<Sequential>;
  t_emb_layers: ModuleList<Sequential>;
  resnet_conv_second: ModuleList<Sequential>;
  attention_norms: ModuleList<GroupNorm>;
  attentions: ModuleList<MultiheadAttention>;
  residual_input_conv: ModuleList<Conv2d>;

  constructor({ cin, cout, tDim, heads }: BlockSpec, resnets: number, attns: number, rng: Rng) {
    super();
    const width = (k: number) => (k === 0 ? cin : cout);
    const times = <T>(n: number, make: (k: number) => T) => Array.from({ length: n }, (_, k) => make(k));
    this.resnet_conv_first = new ModuleList(times(resnets, (k) => new NormActConv(width(k), cout, rng)));
    this.t_emb_layers = new ModuleList(
      times(resnets, () => new Sequential(new SiLU(), new Linear(tDim, cout, rng))),
    );
    this.resnet_conv_second = new ModuleList(times(resnets, () => new NormActConv(cout, cout, rng)));
    this.attention_norms = new ModuleList(times(attns, () => new GroupNorm(NORM_GROUPS, cout)));
    this.attentions = new ModuleList(
      times(attns, () => new MultiheadAttention(cout, heads, rng, { batchFirst: true })),
    );
    this.residual_input_conv = new ModuleList(times(resnets, (k) => new Conv2d(width(k), cout, 1, rng)));
  }

  /** ResNet layer k: h = conv(act(norm(x))) + proj(t_emb); h = conv(act(norm(h))); out = h + conv1x1(x). */
  resnet(k: number, x: Tensor, tEmb: Tensor): Tensor {
    let h = this.resnet_conv_first.at(k).forward(x);
    const t = this.t_emb_layers.at(k).forward(tEmb); // [B, C], the same shift at every position
    h = add(h, reshape(t, [t.shape[0], t.shape[1], 1, 1]));
    h = this.resnet_conv_second.at(k).forward(h);
    return add(h, this.residual_input_conv.at(k).forward(x));
  }

  /** Attention layer k: every one of the h*w positions attends to all others; out = x + attention. */
  attention(k: number, x: Tensor): Tensor {
    const [B, C, H, W] = x.shape;
    const seq = transpose(this.attention_norms.at(k).forward(reshape(x, [B, C, H * W])), 1, 2); // [B, HW, C]
    const out = this.attentions.at(k).forward(seq);
    return add(x, reshape(transpose(out, 1, 2), [B, C, H, W]));
  }

  /** The ResNet layers, each followed by its attention layer if this block has them. */
  stack(x: Tensor, tEmb: Tensor): Tensor {
    let h = x;
    for (let k = 0; k < this.resnet_conv_first.length; k++) {
      h = this.resnet(k, h, tEmb);
      if (this.attentions.length > 0) h = this.attention(k, h);
    }
    return h;
  }
}

export class DownBlock extends Layers {
  down_sample_conv: Conv2d | null;
  constructor(spec: BlockSpec, rng: Rng) {
    super(spec, spec.layers, spec.attn ? spec.layers : 0, rng);
    const c = spec.cout;
    this.down_sample_conv = spec.resample ? new Conv2d(c, c, 4, rng, { stride: 2, padding: 1 }) : null;
  }
  forward(x: Tensor, tEmb: Tensor): Tensor {
    const h = this.stack(x, tEmb);
    return this.down_sample_conv ? this.down_sample_conv.forward(h) : h;
  }
}

/** One ResNet layer, then `layers` pairs of (attention, ResNet). */
export class MidBlock extends Layers {
  constructor(spec: BlockSpec, rng: Rng) {
    super(spec, spec.layers + 1, spec.layers, rng);
  }
  forward(x: Tensor, tEmb: Tensor): Tensor {
    let h = this.resnet(0, x, tEmb);
    for (let k = 0; k < this.attentions.length; k++) h = this.resnet(k + 1, this.attention(k, h), tEmb);
    return h;
  }
}

export class UpBlock extends Layers {
  up_sample_conv: ConvTranspose2d | null;
  /** spec.cin counts the concatenated skip: the block receives cin / 2 channels and a skip of cin / 2. */
  constructor(spec: BlockSpec, rng: Rng) {
    super(spec, spec.layers, spec.attn ? spec.layers : 0, rng);
    const half = spec.cin / 2;
    this.up_sample_conv = spec.resample
      ? new ConvTranspose2d(half, half, 4, rng, { stride: 2, padding: 1 })
      : null;
  }
  forward(x: Tensor, skip: Tensor, tEmb: Tensor): Tensor {
    const up = this.up_sample_conv ? this.up_sample_conv.forward(x) : x;
    return this.stack(concat([up, skip], 1), tEmb);
  }
}

export class UNet extends Module {
  readonly config: CheckedUNetConfig;
  t_proj: Sequential;
  /** The class embedding of a conditional UNet (num_classes + 1 rows, the last "no class"), else null. */
  class_emb: Embedding | null;
  conv_in: Conv2d;
  downs: ModuleList<DownBlock>;
  mids: ModuleList<MidBlock>;
  ups: ModuleList<UpBlock>;
  norm_out: GroupNorm;
  conv_out: Conv2d;

  /** Builds the model from a config (validated first: a bad field throws a UNetConfigError naming it). */
  constructor(config: UNetConfig, rng: Rng) {
    super();
    const cfg = validateUNetConfig(config);
    this.config = cfg;
    const { down_channels: down, mid_channels: mid, down_sample: sample, attn } = cfg;
    const tDim = cfg.time_emb_dim;
    const heads = cfg.num_heads;
    const levels = down.length - 1;
    this.t_proj = new Sequential(new Linear(tDim, tDim, rng), new SiLU(), new Linear(tDim, tDim, rng));
    const classes = cfg.num_classes ?? 0;
    this.class_emb = classes > 0 ? new Embedding(classes + 1, tDim, rng) : null;
    this.conv_in = new Conv2d(cfg.im_channels, down[0], 3, rng, { padding: 1 });
    const downs: DownBlock[] = [];
    for (let i = 0; i < levels; i++) {
      const spec = { cin: down[i], cout: down[i + 1], layers: cfg.num_down_layers, attn: attn[i] };
      downs.push(new DownBlock({ ...spec, tDim, heads, resample: sample[i] }, rng));
    }
    this.downs = new ModuleList(downs);
    const mids: MidBlock[] = [];
    for (let i = 0; i + 1 < mid.length; i++) {
      const spec = { cin: mid[i], cout: mid[i + 1], layers: cfg.num_mid_layers, attn: true };
      mids.push(new MidBlock({ ...spec, tDim, heads, resample: false }, rng));
    }
    this.mids = new ModuleList(mids);
    // ups[j] mirrors down level i = L-1-j: it takes down[i] channels plus a skip of down[i], and gives back
    // what down level i received (LAST_UP_CHANNELS for the outermost block, as the reference hard-codes)
    const ups: UpBlock[] = [];
    for (let i = levels - 1; i >= 0; i--) {
      const cout = i > 0 ? down[i - 1] : LAST_UP_CHANNELS;
      const spec = { cin: 2 * down[i], cout, layers: cfg.num_up_layers, attn: attn[i] };
      ups.push(new UpBlock({ ...spec, tDim, heads, resample: sample[i] }, rng));
    }
    this.ups = new ModuleList(ups);
    this.norm_out = new GroupNorm(NORM_GROUPS, LAST_UP_CHANNELS);
    this.conv_out = new Conv2d(LAST_UP_CHANNELS, cfg.im_channels, 3, rng, { padding: 1 });
  }

  /** The label that means "no class" (classifier-free guidance's unconditional half), or -1 without classes. */
  get nullLabel(): number {
    return this.config.num_classes ?? -1;
  }

  /**
   * The predicted noise eps(x_t, t) for images x [B, im_channels, H, W] at integer timesteps t (B of them,
   * or 1 for all); `fractionalTime` accepts non-integer t (the sinusoidal embedding is defined for any t).
   * A conditional UNet also takes `labels`, one per image: a class in 0..num_classes-1, or num_classes
   * for "no class".
   */
  forward(
    x: Tensor,
    t: ArrayLike<number>,
    opts: { fractionalTime?: boolean; labels?: ArrayLike<number> } = {},
  ): Tensor {
    const { im_channels: channels, down_sample: sample, time_emb_dim: tDim } = this.config;
    if (x.ndim !== 4 || x.shape[1] !== channels) {
      throw new Error(`UNet: input ${formatShape(x.shape)} must be [batch, ${channels}, height, width]`);
    }
    if (t.length !== x.shape[0] && t.length !== 1) {
      throw new Error(
        `UNet: ${t.length} timesteps for a batch of ${x.shape[0]} (give one per image, or one for all)`,
      );
    }
    // The reference truncates t to an integer; a continuous-time objective (EDM) asks for fractions.
    for (let i = 0; i < t.length; i++) {
      if (!opts.fractionalTime && !Number.isInteger(t[i])) {
        throw new Error(`UNet: timestep t[${i}] = ${t[i]} is not an integer`);
      }
      if (!Number.isFinite(t[i])) throw new Error(`UNet: timestep t[${i}] = ${t[i]} is not finite`);
    }
    for (const [axis, size] of [
      ['height', x.shape[2]],
      ['width', x.shape[3]],
    ] as const) {
      try {
        checkDownSampling(size, sample, `input ${axis}`);
      } catch (e) {
        throw new Error(
          `UNet: input ${formatShape(x.shape)}: ${(e as UNetConfigError).message.replace(/^UNet config: /, '')}`,
        );
      }
    }
    let tEmb = this.t_proj.forward(timeEmbedding(t, tDim, this.conv_in.weight.dtype));
    if (this.class_emb) tEmb = add(tEmb, this.class_emb.forward(this.checkLabels(opts.labels, x.shape[0])));
    else if (opts.labels)
      throw new Error('UNet: this UNet has no classes (num_classes is not set) but was given labels');
    let h = this.conv_in.forward(x);
    const skips: Tensor[] = [];
    for (const block of this.downs.items) {
      skips.push(h);
      h = block.forward(h, tEmb);
    }
    for (const block of this.mids.items) h = block.forward(h, tEmb);
    for (const block of this.ups.items) h = block.forward(h, skips.pop() as Tensor, tEmb);
    return this.conv_out.forward(this.norm_out.forward(h, { silu: true }));
  }

  private checkLabels(labels: ArrayLike<number> | undefined, batch: number): ArrayLike<number> {
    const classes = this.config.num_classes ?? 0;
    if (!labels)
      throw new Error(`UNet: a conditional UNet (num_classes ${classes}) needs one label per image`);
    if (labels.length !== batch) throw new Error(`UNet: ${labels.length} labels for a batch of ${batch}`);
    for (let i = 0; i < labels.length; i++) {
      if (!(Number.isInteger(labels[i]) && labels[i] >= 0 && labels[i] <= classes)) {
        throw new Error(
          `UNet: label ${labels[i]} (image ${i}) is not a class in 0..${classes - 1} or ${classes} (no class)`,
        );
      }
    }
    return labels;
  }
}
