// safetensors checkpoints: bit-identical round trips, PyTorch-compatible layout, and one clear error
// (naming the tensor) for every kind of damaged or foreign file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Linear,
  loadModule,
  moduleTensors,
  parseSafetensors,
  readSafetensors,
  Rng,
  Sequential,
  serializeSafetensors,
  Tensor,
  tensor,
  writeSafetensors,
} from '../../core/index.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'safetensors-'));

/** A header and body written by hand, to build files this module would never write itself. */
function rawFile(header: unknown, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

test('a checkpoint written and read back gives bit-identical tensors and the same metadata', () => {
  // awkward values: -0, the smallest denormal, the largest float, infinities and a NaN with a payload
  const special = new Float32Array(8);
  new Uint32Array(special.buffer).set([
    0x80000000, 0x00000001, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00123, 0x3eaaaaab, 0xc0490fdb,
  ]);
  const tensors = new Map<string, Tensor>([
    ['special', new Tensor(special, [2, 4])],
    ['random', new Rng(3).randn([3, 5, 7])],
    ['scalar', tensor(2.5)],
    ['empty', tensor([], [0, 3])],
  ]);
  const metadata = {
    config: JSON.stringify({ a: [1, 2] }),
    step: '1200',
    rng: '{"alea":[1,2,3,4],"spare":null}',
  };
  const path = join(dir(), 'ckpt.safetensors');
  writeSafetensors(path, tensors, metadata);
  const back = readSafetensors(path);
  assert.equal(back.metadata, metadata);
  assert.equal([...back.tensors.keys()], [...tensors.keys()]);
  for (const [name, t] of tensors) {
    const r = back.tensors.get(name) as Tensor;
    assert.equal([...r.shape], [...t.shape], name);
    const bits = (x: Tensor) => Array.from(new Uint32Array(x.data.buffer, x.data.byteOffset, x.size));
    assert.equal(bits(r), bits(t), name);
  }
});

test('the layout is safetensors: u64 header length, JSON header padded to 8 bytes, F32 data', () => {
  const bytes = serializeSafetensors(new Map([['w', tensor([1, 2, 3])]]), { note: 'x' });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is((8 + n) % 8, 0);
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString());
  assert.equal(header, {
    __metadata__: { note: 'x' },
    w: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
  });
  assert.equal(Array.from(new Float32Array(bytes.slice(8 + n).buffer)), [1, 2, 3]);
  // and PyTorch's own file (the golden fixture) reads and re-serialises to the same tensors
  const golden = readSafetensors('tests/fixtures/unet-small.safetensors');
  const again = parseSafetensors(serializeSafetensors(golden.tensors, golden.metadata));
  assert.is(again.tensors.size, golden.tensors.size);
  assert.equal(
    again.tensors.get('model.conv_in.weight')?.toArray(),
    golden.tensors.get('model.conv_in.weight')?.toArray(),
  );
});

test('module parameters save under their state_dict keys and load back; a refused file changes nothing', () => {
  const a = new Sequential(new Linear(3, 4, new Rng(1)), new Linear(4, 2, new Rng(2)));
  const b = new Sequential(new Linear(3, 4, new Rng(3)), new Linear(4, 2, new Rng(4)));
  const path = join(dir(), 'model.safetensors');
  writeSafetensors(path, moduleTensors(a, 'model.'));
  assert.equal(
    [...readSafetensors(path).tensors.keys()],
    ['model.0.weight', 'model.0.bias', 'model.1.weight', 'model.1.bias'],
  );
  loadModule(readSafetensors(path), b, 'model.', path);
  assert.equal(
    b.parameters().map((p) => p.toArray()),
    a.parameters().map((p) => p.toArray()),
  );

  const c = new Sequential(new Linear(3, 4, new Rng(5)), new Linear(4, 2, new Rng(6)));
  const before = c.parameters().map((p) => p.toArray());
  const file = readSafetensors(path);
  file.tensors.delete('model.1.bias');
  assert.throws(
    () => loadModule(file, c, 'model.', 'ckpt'),
    /ckpt: missing tensor 'model.1.bias' \(expected \[2\]\)/,
  );
  assert.equal(
    c.parameters().map((p) => p.toArray()),
    before,
  );

  const wrong = readSafetensors(path);
  wrong.tensors.set('model.0.weight', tensor([1, 2, 3, 4], [2, 2]));
  assert.throws(
    () => loadModule(wrong, c, 'model.', 'ckpt'),
    /ckpt: tensor 'model.0.weight' has shape \[2,2\], expected \[4,3\]/,
  );
  const extra = readSafetensors(path);
  extra.tensors.set('model.2.weight', tensor([1]));
  assert.throws(() => loadModule(extra, c, 'model.', 'ckpt'), /ckpt: unexpected tensor 'model.2.weight'/);
});

test('a truncated file is refused, naming the tensor that runs past the end', () => {
  const path = join(dir(), 'cut.safetensors');
  writeSafetensors(
    path,
    new Map([
      ['first', tensor([1, 2])],
      ['second', tensor([3, 4, 5])],
    ]),
  );
  const whole = readFileSync(path);
  writeFileSync(path, whole.subarray(0, whole.length - 4));
  assert.throws(
    () => readSafetensors(path),
    /cut.safetensors: tensor 'second' ends at byte 20 of the data but the file holds only 16 \(truncated\)/,
  );
  writeFileSync(path, whole.subarray(0, 20));
  assert.throws(() => readSafetensors(path), /header length \d+ runs past the end of the 20-byte file/);
  writeFileSync(path, whole.subarray(0, 5));
  assert.throws(() => readSafetensors(path), /file is 5 bytes, too short for the 8-byte header length/);
});

test('a tensor of another dtype than F32, I32 or I64 is refused, naming it and its dtype', () => {
  const bytes = rawFile({ half: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4));
  assert.throws(
    () => parseSafetensors(bytes, 'f16.safetensors'),
    /f16.safetensors: tensor 'half' has dtype "F16"; only F32, I32 and I64 are read/,
  );
  assert.throws(
    () => serializeSafetensors(new Map([['x', tensor([1], [1], { dtype: 'float64' })]])),
    /tensor 'x' is float64; only float32/,
  );
});

test('a bad header is refused: not JSON, not an object, bad shape or offsets, non-string metadata', () => {
  const broken = rawFile('{"w": {"dtype": "F3');
  assert.throws(() => parseSafetensors(broken, 'h'), /h: header is not valid JSON/);
  assert.throws(() => parseSafetensors(rawFile([1, 2]), 'h'), /h: header is not a JSON object/);
  const body = new Uint8Array(16);
  assert.throws(
    () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, body), 'h'),
    /h: tensor 'w' has an invalid shape \[2,-1\]/,
  );
  assert.throws(
    () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } }, body), 'h'),
    /h: tensor 'w' spans 12 bytes but F32 of shape \[2,2\] needs 16/,
  );
  assert.throws(
    () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [4] } }, body), 'h'),
    /h: tensor 'w' has invalid data_offsets \[4\]/,
  );
  assert.throws(
    () => parseSafetensors(rawFile({ __metadata__: { step: 3 } }), 'h'),
    /h: __metadata__ value 'step' is not a string/,
  );
});

test('writes go through a temporary file: none is left behind, and a failed write keeps the old checkpoint', () => {
  const folder = dir();
  const path = join(folder, 'ckpt.safetensors');
  writeSafetensors(path, new Map([['v', tensor([1, 2, 3])]]));
  writeSafetensors(path, new Map([['v', tensor([4, 5, 6])]]));
  assert.equal(readdirSync(folder), ['ckpt.safetensors']);
  assert.equal(readSafetensors(path).tensors.get('v')?.toArray(), [4, 5, 6]);
  // make the temporary file impossible to create: the write fails, the previous file is untouched
  mkdirSync(`${path}.tmp-${process.pid}`);
  writeFileSync(join(`${path}.tmp-${process.pid}`, 'occupant'), 'x');
  assert.throws(
    () => writeSafetensors(path, new Map([['v', tensor([7, 8, 9])]])),
    /cannot write .*ckpt.safetensors/,
  );
  assert.equal(readSafetensors(path).tensors.get('v')?.toArray(), [4, 5, 6]);
  assert.ok(existsSync(path));
});

// Found by tests/unit/fuzz-safetensors.test.ts: metadata[key] = value drops a key named __proto__.
test('a metadata key named __proto__ is read back as written, not dropped', () => {
  const file = parseSafetensors(rawFile('{"__metadata__":{"__proto__":"x","config":"{}"}}'));
  assert.equal(Object.entries(file.metadata), [
    ['__proto__', 'x'],
    ['config', '{}'],
  ]);
});

// The format's layout, which the reader holds files to: tensors tile the data, nothing overlaps.
test('overlapping, gapped or trailing tensor data is refused, naming the tensor', () => {
  const body = new Uint8Array(16);
  const cases: [unknown, RegExp][] = [
    [{ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, /tensor 'b' starts at byte 0 of the data, where 'a' ends at 8 \(overlapping or a gap/], // prettier-ignore
    [{ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, /tensor 'a' starts at byte 4 of the data, where the data before it ends at 0/], // prettier-ignore
    [{ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, /8 bytes follow the last tensor's data/],
    [{ __metadata__: ['x'] }, /__metadata__ is not an object/],
  ];
  for (const [header, message] of cases) {
    assert.throws(() => parseSafetensors(rawFile(header, body), 'f.safetensors'), message);
  }
});

test('integer tensors: I32 written and read back exactly; I64 read; past 2^24 refused, not rounded', () => {
  const labels = tensor([0, 3, 9, -2], [4]);
  const bytes = serializeSafetensors(new Map([['labels', labels]]), {}, { int32: ['labels'] });
  const back = parseSafetensors(bytes);
  assert.equal(Array.from(back.tensors.get('labels')?.data ?? []), [0, 3, 9, -2]);
  assert.is(back.dtypes.get('labels'), 'I32');
  assert.throws(
    () => serializeSafetensors(new Map([['labels', tensor([0.5])]]), {}, { int32: ['labels'] }),
    /'labels' is to be written as I32 but holds a value that is not an int32/,
  );
  const i64 = new Uint8Array(16);
  new DataView(i64.buffer).setBigInt64(0, 7n, true);
  new DataView(i64.buffer).setBigInt64(8, -1n, true);
  const long = parseSafetensors(rawFile({ y: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, i64));
  assert.equal(Array.from(long.tensors.get('y')?.data ?? []), [7, -1]);
  new DataView(i64.buffer).setBigInt64(8, 2n ** 40n, true);
  assert.throws(
    () => parseSafetensors(rawFile({ y: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, i64), 'l'),
    /l: tensor 'y' holds 1099511627776 at element 1, past the 2\^24 read exactly/,
  );
});

test.run();
