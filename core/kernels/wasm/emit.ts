// A minimal WebAssembly binary writer: just enough to assemble the SIMD kernels in this folder from
// TypeScript, so the project needs no compiler toolchain. See the WebAssembly core specification
// (binary format, sections 5.x) and the fixed-width SIMD proposal for the opcodes.

export type Bytes = number[];

/** Unsigned LEB128 (spec 5.2.2). */
export function uleb(n: number): Bytes {
  const out: Bytes = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128. */
export function sleb(n: number): Bytes {
  const out: Bytes = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const name = (s: string): Bytes => [...uleb(s.length), ...new TextEncoder().encode(s)];
const vec = (items: Bytes[]): Bytes => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Bytes): Bytes => [id, ...uleb(body.length), ...body];

export const I32 = 0x7f;
export const V128 = 0x7b;
export const F32 = 0x7d;

/** Instructions, each as its byte sequence. Memory offsets are in bytes. */
export const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (v: number) => [0x41, ...sleb(v)],
  eqz: [0x45],
  eq: [0x46],
  ltS: [0x48],
  ltU: [0x49],
  add: [0x6a],
  sub: [0x6b],
  mul: [0x6c],
  shl: [0x74],
  and: [0x71],
  i32Load: (offset: number) => [0x28, 2, ...uleb(offset)],
  f32Load: (offset: number) => [0x2a, 2, ...uleb(offset)],
  f32Add: [0x92],
  f32Store: (offset: number) => [0x38, 2, ...uleb(offset)],
  /** memory.fill(dst, value, bytes) from the bulk-memory proposal */
  memoryFill: [0xfc, ...uleb(11), 0x00],
  /** memory.copy(dst, src, bytes) */
  memoryCopy: [0xfc, ...uleb(10), 0x00, 0x00],
  v128Load: (offset: number) => [0xfd, ...uleb(0x00), 4, ...uleb(offset)],
  v128Store: (offset: number) => [0xfd, ...uleb(0x0b), 4, ...uleb(offset)],
  /** load one f32 and broadcast it to all four lanes */
  v128Load32Splat: (offset: number) => [0xfd, ...uleb(0x09), 2, ...uleb(offset)],
  v128Zero: [0xfd, ...uleb(0x0c), ...new Array<number>(16).fill(0)],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Sub: [0xfd, ...uleb(0xe5)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
  f32x4Div: [0xfd, ...uleb(0xe7)],
  f32x4Min: [0xfd, ...uleb(0xe8)],
  f32x4Max: [0xfd, ...uleb(0xe9)],
  /** pseudo-minimum b < a ? b : a, and pseudo-maximum a < b ? b : a: one x64 instruction each, where
   * min and max cost several to get NaN and signed zeros right */
  f32x4Pmin: [0xfd, ...uleb(0xea)],
  f32x4Pmax: [0xfd, ...uleb(0xeb)],
  f32x4Nearest: [0xfd, ...uleb(0x6a)],
  f32x4Splat: [0xfd, ...uleb(0x13)],
  /** i8x16.shuffle of two vectors, by float lanes: 0-3 pick from the first, 4-7 from the second */
  f32x4Shuffle: (lanes: readonly number[]) => [
    0xfd,
    ...uleb(0x0d),
    ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
  ],
  f32x4ExtractLane: (lane: number) => [0xfd, ...uleb(0x1f), lane],
  i32x4TruncSatF32x4S: [0xfd, ...uleb(0xf8)],
  i32x4Add: [0xfd, ...uleb(0xae)],
  i32x4Shl: [0xfd, ...uleb(0xab)],
  i32x4Splat: [0xfd, ...uleb(0x11)],
  f32: (v: number) => [0x43, ...new Uint8Array(new Float32Array([v]).buffer)],
  f32Sub: [0x93],
  f32Mul: [0x94],
  f32Div: [0x95],
  f32Min: [0x96],
  f32Max: [0x97],
  f32Nearest: [0x90],
  /** saturating: NaN gives 0 instead of a trap */
  i32TruncSatF32S: [0xfc, 0x00],
  f32ReinterpretI32: [0xbe],
};

/** A function body under construction: declare locals, then append instructions. */
export class FunctionBuilder {
  readonly code: Bytes = [];
  private readonly localGroups: [number, number][] = [];
  private nextLocal: number;

  constructor(readonly params: number) {
    this.nextLocal = params;
  }

  /** Declares `count` locals of `type` and returns the index of the first. */
  locals(count: number, type: number): number {
    const first = this.nextLocal;
    this.localGroups.push([count, type]);
    this.nextLocal += count;
    return first;
  }

  emit(...instructions: Bytes[]): this {
    for (const ins of instructions) this.code.push(...ins);
    return this;
  }

  encode(): Bytes {
    const body = [...vec(this.localGroups.map(([n, t]) => [...uleb(n), t])), ...this.code, ...op.end];
    return [...uleb(body.length), ...body];
  }
}

/**
 * A module importing one memory as env.mem (shared when `shared`, so worker threads can run the same
 * code on it) and exporting functions whose parameters are all i32 and that return nothing.
 */
export function assembleModule(
  functions: { name: string; body: FunctionBuilder }[],
  memory: { minPages: number; maxPages: number; shared: boolean },
): Uint8Array<ArrayBuffer> {
  const types = functions.map((f) => [0x60, ...vec(new Array<Bytes>(f.body.params).fill([I32])), 0x00]);
  const memLimits = [memory.shared ? 0x03 : 0x01, ...uleb(memory.minPages), ...uleb(memory.maxPages)];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // magic, version 1
    ...section(1, vec(types)),
    ...section(2, vec([[...name('env'), ...name('mem'), 0x02, ...memLimits]])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(functions.map((f) => f.body.encode()))),
  ];
  return new Uint8Array(bytes) as Uint8Array<ArrayBuffer>;
}
