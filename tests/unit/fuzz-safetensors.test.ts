// The safetensors and checkpoint readers under random damage: headers rewritten field by field, random
// JSON headers, lying header lengths, flipped bytes and truncations of real files. The property: a
// parse that succeeds returns exactly the bytes its header points at, tiling the data; any other outcome
// is one Error naming the file; every case answers within CASE_MS.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors, serializeSafetensors, type SafetensorsFile } from '../../core/io/safetensors.ts';
import { readCheckpoint, saveCheckpoint } from '../../core/io/checkpoint.ts';
import { Linear, Rng, Sequential, Tensor } from '../../core/index.ts';
import { CASE_MS, check, fc, outcome } from '../helpers/fuzz.ts';

const SOURCE = 'fuzzed.safetensors';

/** A file written by PyTorch (the golden fixture) and one written here (a small checkpoint). */
const PYTORCH = new Uint8Array(readFileSync('tests/fixtures/unet-small.safetensors'));
const OURS = serializeSafetensors(
  new Map<string, Tensor>([
    ['ema.w', new Rng(1).randn([3, 4])],
    ['ema.b', new Rng(2).randn([4])],
    ['optim.m', new Rng(3).randn([16])],
    ['empty', new Tensor(new Float32Array(0), [0, 2])],
  ]),
  { config: '{"a":1}', state: '{"step":3,"images":24,"seconds":1.5}' },
);

/** A file's parts: the header length it claims, its header text, and the bytes after the header. */
function split(bytes: Uint8Array) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'), body: bytes.subarray(8 + n) };
}

/** Bytes of a file with this header text (its true length unless `length` lies) and body. */
function assemble(header: string, body: Uint8Array, length?: bigint): Uint8Array {
  const json = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/**
 * The reader's verdict on `bytes`, checked against the format by an oracle that reads the header
 * itself: a success must hold, for every tensor, F32 of its shape copied from its own offsets, and the
 * tensors must tile the data exactly; a failure must be one Error that names the file.
 */
function holds(bytes: Uint8Array): boolean {
  const result = outcome(() => parseSafetensors(bytes, SOURCE));
  assert.ok(result.ms < CASE_MS, `took ${result.ms} ms`);
  if (!result.ok) {
    assert.ok(result.error.message.startsWith(`${SOURCE}: `), result.error.message);
    assert.not.match(result.error.message, /\n/);
    return true;
  }
  const file: SafetensorsFile = result.value;
  const { header, body } = split(bytes);
  const entries = JSON.parse(header) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const spans: [number, number][] = [];
  for (const [name, t] of file.tensors) {
    const {
      dtype,
      shape,
      data_offsets: [begin, end],
    } = entries[name];
    assert.equal([...t.shape], shape, name);
    assert.is(file.dtypes.get(name), dtype, name);
    const bytesOf = body.slice(begin, end);
    if (dtype === 'F32') {
      assert.is(4 * t.size, end - begin, name);
      assert.equal(new Uint8Array(t.data.buffer, t.data.byteOffset, 4 * t.size), bytesOf, name);
    } else {
      // integers, held as the float32 numbers they are
      const width = dtype === 'I32' ? 4 : 8;
      assert.is(width * t.size, end - begin, name);
      const view = new DataView(bytesOf.buffer, bytesOf.byteOffset);
      for (let k = 0; k < t.size; k++) {
        const v = width === 4 ? view.getInt32(4 * k, true) : Number(view.getBigInt64(8 * k, true));
        assert.is(t.data[k], v, `${name}[${k}]`);
      }
    }
    spans.push([begin, end]);
  }
  // the tensors tile the data: in order of their offsets, each starts where the one before ends
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [begin, end] of spans) {
    assert.is(begin, at, 'a tensor starts where the one before it ends');
    at = end;
  }
  assert.is(at, body.length, 'the last tensor ends where the file does');
  assert.is(file.tensors.size, Object.keys(entries).filter((k) => k !== '__metadata__').length);
  assert.equal(
    file.metadata,
    (entries as Record<string, unknown>).__metadata__ ?? {},
    'the metadata as written',
  );
  return true;
}

const FILES = { pytorch: PYTORCH, ours: OURS };
/** Which real file a case starts from, by name (so that a counterexample prints short). */
const base = fc.constantFrom('pytorch', 'ours') as fc.Arbitrary<keyof typeof FILES>;

test('truncated at any byte: a clear error, or (cut at the very end) the file itself', () => {
  check(
    fc.property(base, fc.double({ min: 0, max: 1, noNaN: true }), (name, f) =>
      holds(FILES[name].slice(0, Math.floor(f * FILES[name].length))),
    ),
  );
});

test('bytes flipped anywhere, most of them in the header', () => {
  const flips = fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 }), fc.boolean()), { minLength: 1, maxLength: 6 }); // prettier-ignore
  check(
    fc.property(base, flips, (name, changes) => {
      const bytes = FILES[name];
      const out = bytes.slice();
      const headerEnd = 8 + split(bytes).header.length;
      for (const [f, value, inHeader] of changes)
        out[Math.floor(f * (inHeader ? headerEnd : out.length))] = value;
      return holds(out);
    }),
  );
});

test('one field of one tensor rewritten to any JSON value, the header length kept true or made to lie', () => {
  const field = fc.constantFrom('dtype', 'shape', 'data_offsets', 'extra');
  const value = fc.oneof(
    fc.jsonValue(),
    fc.array(fc.integer({ min: -5, max: 2 ** 40 }), { maxLength: 4 }),
    fc.array(fc.oneof(fc.nat(400000), fc.constantFrom(2 ** 53, 2 ** 60, 1.5, -1)), { maxLength: 3 }),
    fc.constantFrom('F16', 'F64', 'I64', 'BF16', 'F32'),
  );
  const lie = fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { freq: 5 });
  check(
    fc.property(base, fc.nat(), field, value, lie, (name, pick, key, v, length) => {
      const { header, body } = split(FILES[name]);
      const json = JSON.parse(header) as Record<string, Record<string, unknown>>;
      const names = Object.keys(json);
      json[names[pick % names.length]][key] = v;
      return holds(assemble(JSON.stringify(json), body, length ?? undefined));
    }),
  );
});

test("one tensor's offsets moved onto another's, or shifted: overlapping, gapped or trailing layouts", () => {
  const shift = fc.integer({ min: -64, max: 64 }).map((d) => 4 * d);
  check(
    fc.property(base, fc.nat(), fc.nat(), fc.boolean(), shift, (name, a, b, copy, d) => {
      const { header, body } = split(FILES[name]);
      const json = JSON.parse(header) as Record<string, { data_offsets?: number[] }>;
      const names = Object.keys(json).filter((k) => k !== '__metadata__');
      const [from, to] = [json[names[a % names.length]], json[names[b % names.length]]];
      if (copy && from.data_offsets) to.data_offsets = [...from.data_offsets];
      else to.data_offsets = (to.data_offsets ?? [0, 0]).map((o) => o + d);
      return holds(assemble(JSON.stringify(json), body));
    }),
  );
});

test('__metadata__ replaced by any JSON value: strings to strings, or one clear error', () => {
  const metadata = fc.oneof(fc.jsonValue(), fc.array(fc.string()), fc.dictionary(fc.string(), fc.string()));
  check(
    fc.property(base, metadata, (name, m) => {
      const { header, body } = split(FILES[name]);
      const json = JSON.parse(header) as Record<string, unknown>;
      json.__metadata__ = m;
      return holds(assemble(JSON.stringify(json), body));
    }),
  );
});

test('any JSON header, over any body', () => {
  const entry = fc.record({
    dtype: fc.constantFrom('F32', 'F32', 'F16', 7),
    shape: fc.array(fc.nat(6), { maxLength: 3 }),
    data_offsets: fc.tuple(fc.nat(200), fc.nat(200)),
  });
  const header = fc.oneof(
    fc.json(),
    fc.dictionary(fc.string(), fc.oneof(entry, fc.jsonValue())).map((h) => JSON.stringify(h)),
  );
  check(fc.property(header, fc.uint8Array({ maxLength: 256 }), (h, body) => holds(assemble(h, body))));
});

test('a header that claims a huge tensor is refused before anything is allocated for it', () => {
  const huge = [[2 ** 20, 2 ** 20, 2 ** 10], [2 ** 52], [2 ** 31, 2 ** 31]];
  for (const shape of huge) {
    const size = 4 * shape.reduce((a, b) => a * b, 1);
    const file = assemble(
      JSON.stringify({ w: { dtype: 'F32', shape, data_offsets: [0, size] } }),
      new Uint8Array(8),
    );
    const result = outcome(() => parseSafetensors(file, SOURCE));
    assert.ok(
      !result.ok && result.ms < 50,
      `${JSON.stringify(shape)}: ${result.ok ? 'read' : result.error.message}`,
    );
    assert.match(
      result.ok ? '' : result.error.message,
      /ends at byte \d+ of the data but the file holds only 8 \(truncated\)|has invalid data_offsets/,
    );
  }
});

test('a checkpoint with any config and state metadata: its state checked, or one error naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fuzz-ckpt-'));
  const path = join(dir, 'ckpt.safetensors');
  const net = new Sequential(new Linear(2, 3, new Rng(0)));
  saveCheckpoint(path, { ema: net, config: {}, state: { step: 1, images: 8, seconds: 0.5 } });
  const clean = new Uint8Array(readFileSync(path));
  const state = fc.oneof(
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc
      .record({ step: fc.jsonValue(), images: fc.jsonValue(), seconds: fc.jsonValue() })
      .map((v) => JSON.stringify(v)),
    fc.string(),
  );
  check(
    fc.property(
      state,
      fc.oneof(
        fc.jsonValue().map((v) => JSON.stringify(v)),
        fc.string(),
      ),
      (s, config) => {
        const { header, body } = split(clean);
        const json = JSON.parse(header) as { __metadata__: Record<string, string> };
        json.__metadata__.state = s;
        json.__metadata__.config = config;
        writeFileSync(path, assemble(JSON.stringify(json), body));
        const result = outcome(() => readCheckpoint(path));
        if (!result.ok) {
          assert.ok(result.error.message.startsWith(`${path}: `), result.error.message);
          return true;
        }
        const st = result.value.state;
        for (const k of ['step', 'images', 'optimizerSteps'] as const)
          assert.ok(Number.isInteger(st[k]) && st[k] >= 0, k);
        assert.ok(Number.isFinite(st.seconds) && st.seconds >= 0, 'seconds');
        return true;
      },
    ),
  );
});

test.run();
