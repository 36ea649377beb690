// safetensors, the checkpoint format PyTorch and this project share: an 8-byte little-endian header
// length N, N bytes of JSON ({"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
// ..., "__metadata__": {string: string}}), then the raw little-endian tensor bytes, offsets counted from
// the end of the header. F32 is read and written; so are I32 and I64 (read as the float32 numbers
// they hold, exactly, up to 2^24: class labels and the like). Reading checks every field against the file,
// so a damaged or foreign file is refused with the name of the tensor at fault; writing goes through a
// temporary file and a rename, so a crash mid-write leaves the previous checkpoint intact.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { Tensor } from '../tensor.ts';
import { formatShape, sameShape, shapeSize } from '../shape.ts';
import type { Module } from '../nn/module.ts';

export type Metadata = Record<string, string>;

/** The dtypes read: 32-bit floats, and integers (held as exact float32 numbers). */
export type Dtype = 'F32' | 'I32' | 'I64';
const WIDTH: Record<Dtype, number> = { F32: 4, I32: 4, I64: 8 };

export interface SafetensorsFile {
  tensors: Map<string, Tensor>;
  /** Each tensor's dtype in the file. */
  dtypes: Map<string, Dtype>;
  metadata: Metadata;
}

// the host's byte order (safetensors is little-endian; where the host is too, bytes are copied whole)
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

class SafetensorsError extends Error {}

/**
 * The bytes of a safetensors file holding `tensors` (float32, written in the map's order; the ones
 * named in `int32` as I32, which must hold integers) and `metadata`.
 */
export function serializeSafetensors(
  tensors: Map<string, Tensor>,
  metadata: Metadata = {},
  opts: { int32?: readonly string[] } = {},
): Uint8Array {
  const ints = new Set(opts.int32 ?? []);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string')
      throw new Error(`safetensors: __metadata__ value '${key}' must be a string`);
  }
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new Error(`safetensors: '__metadata__' cannot name a tensor`);
    if (t.dtype !== 'float32')
      throw new Error(`safetensors: tensor '${name}' is ${t.dtype}; only float32 (F32) is written`);
    if (ints.has(name) && !t.data.every((v) => Number.isInteger(v) && Math.abs(v) < 2 ** 31)) {
      throw new Error(
        `safetensors: tensor '${name}' is to be written as I32 but holds a value that is not an int32`,
      );
    }
    const dtype = ints.has(name) ? 'I32' : 'F32';
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + 4 * t.size] };
    offset += 4 * t.size;
  }
  let json = JSON.stringify(header);
  const encoder = new TextEncoder();
  json += ' '.repeat((8 - (encoder.encode(json).length % 8)) % 8); // the data then starts 8-byte aligned
  const head = encoder.encode(json);
  const bytes = new Uint8Array(8 + head.length + offset);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  bytes.set(head, 8);
  let at = 8 + head.length;
  for (const [name, t] of tensors) {
    if (ints.has(name)) for (let i = 0; i < t.size; i++) view.setInt32(at + 4 * i, t.data[i], true);
    else if (LITTLE_ENDIAN) bytes.set(new Uint8Array(t.data.buffer, t.data.byteOffset, 4 * t.size), at);
    else for (let i = 0; i < t.size; i++) view.setFloat32(at + 4 * i, t.data[i], true);
    at += 4 * t.size;
  }
  return bytes;
}

/** Parses safetensors bytes; every tensor is copied out, so the result does not alias `bytes`. */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };
  if (bytes.length < 8)
    fail(`file is ${bytes.length} bytes, too short for the 8-byte header length (truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > bytes.length - 8) {
    fail(
      `header length ${headerLength} runs past the end of the ${bytes.length}-byte file (truncated, or not safetensors)`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('header is not a JSON object');
  const body = 8 + headerLength;
  const bodyLength = bytes.length - body;
  let metadata: Metadata = {};
  // every entry is checked before anything is allocated for it: a header can claim any size
  const entries: { name: string; dtype: Dtype; dims: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof info !== 'object' || info === null || Array.isArray(info))
        fail('__metadata__ is not an object');
      for (const [key, value] of Object.entries(info as Record<string, unknown>)) {
        if (typeof value !== 'string') fail(`__metadata__ value '${key}' is not a string`);
      }
      // own properties, whatever the key ('__proto__' assigned as metadata[key] would be dropped)
      metadata = Object.fromEntries(Object.entries(info as Record<string, string>));
      continue;
    }
    const entry = (typeof info === 'object' && info !== null ? info : {}) as {
      dtype?: unknown;
      shape?: unknown;
      data_offsets?: unknown;
    };
    if (!(typeof entry.dtype === 'string' && Object.hasOwn(WIDTH, entry.dtype))) {
      fail(`tensor '${name}' has dtype ${JSON.stringify(entry.dtype)}; only F32, I32 and I64 are read`);
    }
    const dtype = entry.dtype as Dtype;
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    }
    const offsets = entry.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const dims = shape as number[];
    const needed = WIDTH[dtype] * shapeSize(dims);
    if (end - begin !== needed) {
      fail(
        `tensor '${name}' spans ${end - begin} bytes but ${dtype} of shape ${formatShape(dims)} needs ${needed}`,
      );
    }
    if (end > bodyLength) {
      fail(
        `tensor '${name}' ends at byte ${end} of the data but the file holds only ${bodyLength} (truncated)`,
      );
    }
    entries.push({ name, dtype, dims, begin, end });
  }
  // the tensors tile the data exactly, in some order, as the format requires: no overlap (two tensors
  // reading the same bytes), no gap and nothing after the last
  const tiles = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const t of tiles) {
    if (t.begin !== at) {
      const before = tiles.find((u) => u.end === at && u !== t)?.name;
      fail(
        `tensor '${t.name}' starts at byte ${t.begin} of the data, where ${before ? `'${before}' ends at ${at}` : `the data before it ends at ${at}`} (overlapping or a gap: not a safetensors layout)`,
      );
    }
    at = t.end;
  }
  if (at !== bodyLength) {
    fail(`${bodyLength - at} bytes follow the last tensor's data (a damaged file, or not safetensors)`);
  }
  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, Dtype>();
  for (const { name, dtype, dims, begin, end } of entries) {
    const data = new Float32Array((end - begin) / WIDTH[dtype]);
    const start = bytes.byteOffset + body + begin;
    if (dtype === 'F32' && LITTLE_ENDIAN) {
      new Uint8Array(data.buffer).set(new Uint8Array(bytes.buffer, start, end - begin));
    } else {
      for (let i = 0; i < data.length; i++) {
        const at = body + begin + WIDTH[dtype] * i;
        const v = dtype === 'F32' ? view.getFloat32(at, true) : dtype === 'I32' ? view.getInt32(at, true) : Number(view.getBigInt64(at, true)); // prettier-ignore
        // an integer past 2^24 has no exact float32: refused rather than rounded
        if (dtype !== 'F32' && Math.abs(v) > 2 ** 24)
          fail(`tensor '${name}' holds ${v} at element ${i}, past the 2^24 read exactly`);
        data[i] = v;
      }
    }
    tensors.set(name, new Tensor(data, dims));
    dtypes.set(name, dtype);
  }
  return { tensors, dtypes, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseSafetensors(bytes, path);
}

/** Writes a temporary file beside `path`, flushes it to disk, then renames it over `path`. */
export function writeSafetensors(
  path: string,
  tensors: Map<string, Tensor>,
  metadata: Metadata = {},
  opts: { int32?: readonly string[] } = {},
): void {
  const bytes = serializeSafetensors(tensors, metadata, opts);
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true, recursive: true });
    throw new Error(`cannot write ${path}: ${(e as Error).message}`);
  }
}

/** The tensor `name` of a file, checked against an expected shape; errors name the tensor and file. */
export function requireTensor(
  file: SafetensorsFile,
  name: string,
  shape?: readonly number[],
  source = 'safetensors',
): Tensor {
  const t = file.tensors.get(name);
  if (!t) {
    const expect = shape ? ` (expected ${formatShape(shape)})` : '';
    throw new SafetensorsError(`${source}: missing tensor '${name}'${expect}`);
  }
  if (shape && !sameShape(t.shape, shape)) {
    throw new SafetensorsError(
      `${source}: tensor '${name}' has shape ${formatShape(t.shape)}, expected ${formatShape(shape)}`,
    );
  }
  return t;
}

/** Refuses a tensor that holds NaN or an infinity, naming it and the first such element. */
export function requireFinite(name: string, t: Tensor, source = 'safetensors'): void {
  for (let i = 0; i < t.size; i++) {
    if (!Number.isFinite(t.data[i])) {
      throw new SafetensorsError(
        `${source}: tensor '${name}' holds ${t.data[i]} at element ${i}: these weights are not usable`,
      );
    }
  }
}

/**
 * Copies the tensors named `prefix + key` into a module's parameters. Every parameter must be present
 * with its shape and finite, and no other tensor may carry the prefix (it would mean a model of another
 * config). The first non-finite weight refuses the file: a model loaded from it could only draw NaN.
 */
export function loadModule(file: SafetensorsFile, module: Module, prefix = '', source = 'safetensors'): void {
  const own = module.stateDict();
  // every check before the first copy, so a refused file leaves the module as it was
  const sources = [...own].map(([key, p]) => {
    const t = requireTensor(file, prefix + key, p.shape, source);
    requireFinite(prefix + key, t, source);
    return [p, t] as const;
  });
  for (const name of file.tensors.keys()) {
    if (name.startsWith(prefix) && !own.has(name.slice(prefix.length))) {
      throw new SafetensorsError(`${source}: unexpected tensor '${name}' (not a parameter of this model)`);
    }
  }
  for (const [p, t] of sources) p.data.set(t.data);
}

/** The parameters of a module, keyed `prefix + state_dict key`, ready for writeSafetensors. */
export function moduleTensors(module: Module, prefix = ''): Map<string, Tensor> {
  return new Map([...module.stateDict()].map(([k, t]) => [prefix + k, t]));
}
