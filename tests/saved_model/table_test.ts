import assert from "node:assert/strict";
import { compress } from "snappyjs";
import { Code, ServingError } from "../../src/errors.ts";
import { crc32c, maskCrc } from "../../src/saved_model/crc32c.ts";
import {
  readFixed32,
  readTable,
  readTableMap,
  readVarint,
  writeTable,
} from "../../src/saved_model/table.ts";

const testdata = new URL("../../../shared/testdata/tf-serving/", import.meta.url);
const enc = new TextEncoder();
const dec = new TextDecoder();

function indexPath(model: string, version: string): string {
  return new URL(`${model}/${version}/variables/variables.index`, testdata).pathname;
}

function keysOf(bytes: Uint8Array, name = "t"): string[] {
  return readTable(bytes, name).map((e) => dec.decode(e.key));
}

/** Asserts `fn` throws a ServingError with `code` whose message matches every pattern. */
function assertFails(fn: () => unknown, code: Code, ...patterns: RegExp[]): ServingError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ServingError, `expected a ServingError, got ${err}`);
  assert.equal(Code[err.code], Code[code], err.message);
  for (const p of patterns) assert.match(err.message, p);
  return err;
}

/** The handles in a table's footer: [metaindex, index] as [offset, size]. */
function footerHandles(bytes: Uint8Array): [number, number][] {
  let p = bytes.length - 48;
  const out: [number, number][] = [];
  for (let i = 0; i < 2; i++) {
    const o = readVarint(bytes, p, bytes.length)!;
    const s = readVarint(bytes, o.next, bytes.length)!;
    out.push([o.value, s.value]);
    p = s.next;
  }
  return out;
}

/** Rewrites the trailer CRC of the block at [offset, offset+size) after a test edits it. */
function fixCrc(bytes: Uint8Array, offset: number, size: number): void {
  const crc = maskCrc(crc32c(bytes.subarray(offset, offset + size + 1)));
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(offset + size + 1, crc, true);
}

Deno.test("table: reads the real uncompressed index of both half_plus_two versions", () => {
  for (const v of ["00000123", "00000124"]) {
    const path = indexPath("saved_model_half_plus_two_2_versions", v);
    const bytes = Deno.readFileSync(path);
    const entries = readTable(bytes, path);
    assert.deepEqual(entries.map((e) => dec.decode(e.key)), ["", "a", "b", "c"]);
    // The header proto: num_shards 1 (08 01), version { producer 1 } (1a 02 08 01).
    assert.deepEqual([...entries[0].value], [0x08, 0x01, 0x1a, 0x02, 0x08, 0x01]);
    const map = readTableMap(bytes, path);
    assert.deepEqual([...map.keys()], ["", "a", "b", "c"]);
  }
});

Deno.test("table: reads the real snappy-compressed indexes", () => {
  const cpu = indexPath("saved_model_half_plus_two_cpu", "00000123");
  const cpuBytes = Deno.readFileSync(cpu);
  // The (only) data block is snappy-compressed (type byte 1) in this file; the index block is
  // stored plain, its first entry holding the data block's handle after a 1-byte key.
  const [, [indexOffset, indexSize]] = footerHandles(cpuBytes);
  assert.equal(cpuBytes[indexOffset + indexSize], 0);
  const handleAt = indexOffset + 3 + cpuBytes[indexOffset + 1];
  const dataOffset = readVarint(cpuBytes, handleAt, cpuBytes.length)!;
  const dataSize = readVarint(cpuBytes, dataOffset.next, cpuBytes.length)!;
  assert.equal(cpuBytes[dataOffset.value + dataSize.value], 1);
  assert.deepEqual(keysOf(cpuBytes, cpu), ["", "a", "a2", "b", "c", "c2"]);

  const tf2 = indexPath("saved_model_half_plus_two_tf2_cpu", "00000123");
  assert.deepEqual(keysOf(Deno.readFileSync(tf2), tf2), [
    "",
    "_CHECKPOINTABLE_OBJECT_GRAPH",
    "a/.ATTRIBUTES/VARIABLE_VALUE",
    "b/.ATTRIBUTES/VARIABLE_VALUE",
    "c/.ATTRIBUTES/VARIABLE_VALUE",
  ]);
});

Deno.test("table: the writer reproduces TensorFlow's file byte for byte", () => {
  const path = indexPath("saved_model_half_plus_two_2_versions", "00000123");
  const bytes = Deno.readFileSync(path);
  const rewritten = writeTable(readTable(bytes, path).map((e) => [e.key, e.value] as const));
  assert.deepEqual(rewritten, bytes);
});

Deno.test("table: round trip with many blocks, restarts and shared prefixes", () => {
  const entries: [string, Uint8Array][] = [];
  for (let i = 0; i < 2000; i++) {
    const key = `layer_${String(i).padStart(5, "0")}/kernel/.ATTRIBUTES/VARIABLE_VALUE`;
    entries.push([key, enc.encode(`value-${i}-`.repeat(i % 7))]);
  }
  for (const blockSize of [1, 64, 4096, 262144]) {
    for (const restartInterval of [1, 3, 16]) {
      const bytes = writeTable(entries, { blockSize, restartInterval });
      const back = readTable(bytes, "mem");
      assert.equal(back.length, entries.length);
      for (let i = 0; i < entries.length; i++) {
        assert.equal(dec.decode(back[i].key), entries[i][0]);
        assert.deepEqual(back[i].value, entries[i][1]);
      }
    }
  }
});

Deno.test("table: binary keys, 0xff runs, large values and the empty table", () => {
  const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
  const entries: [Uint8Array, Uint8Array][] = [
    [new Uint8Array([]), enc.encode("header")],
    [new Uint8Array([0]), new Uint8Array(0)],
    [new Uint8Array([0, 0xff]), big],
    [new Uint8Array([1, 2, 3]), enc.encode("x")],
    [new Uint8Array([1, 2, 0xff, 0xff]), enc.encode("y")],
    [new Uint8Array([1, 3]), big.subarray(0, 300)],
    [new Uint8Array([0xff, 0xff]), enc.encode("z")],
  ];
  for (const blockSize of [16, 1024, 262144]) {
    const back = readTable(writeTable(entries, { blockSize }), "mem");
    assert.deepEqual(
      back.map((e) => [e.key, e.value]),
      entries.map(([k, v]) => [k, v]),
    );
  }
  const empty = writeTable([]);
  assert.deepEqual(readTable(empty, "mem"), []);
  // Multi-byte varints: a key longer than 127 bytes sharing a long prefix.
  const long = "k".repeat(300);
  const back = readTable(writeTable([[long + "a", big], [long + "b", big]]), "mem");
  assert.deepEqual(back.map((e) => dec.decode(e.key)), [long + "a", long + "b"]);
});

Deno.test("table: the writer rejects unsorted or duplicate keys", () => {
  assertFails(
    () => writeTable([["b", new Uint8Array()], ["a", new Uint8Array()]]),
    Code.INVALID_ARGUMENT,
    /not strictly increasing at key "a"/,
  );
  assertFails(
    () => writeTable([["a", new Uint8Array()], ["a", new Uint8Array()]]),
    Code.INVALID_ARGUMENT,
  );
});

Deno.test("table: corrupt files fail with DATA_LOSS naming the file and offset", () => {
  const good = writeTable([["a", enc.encode("1")], ["b", enc.encode("2")]]);
  const name = "/x/variables.index";

  const badMagic = good.slice();
  badMagic[badMagic.length - 1] ^= 1;
  assertFails(
    () => readTable(badMagic, name),
    Code.DATA_LOSS,
    /^Cannot read table \/x\/variables\.index: not an sstable \(bad magic number\) at offset/,
    new RegExp(`at offset ${good.length - 8}$`),
  );

  const flipped = good.slice();
  flipped[5] ^= 0x10; // inside the first data block
  assertFails(
    () => readTable(flipped, name),
    Code.DATA_LOSS,
    /\/x\/variables\.index: block checksum mismatch .* at offset 0$/,
  );

  // The CRC covers the type byte too.
  const [, [indexOffset, indexSize]] = footerHandles(good);
  const badType = good.slice();
  badType[indexOffset + indexSize] = 1;
  assertFails(() => readTable(badType, name), Code.DATA_LOSS, /block checksum mismatch/);
  fixCrc(badType, indexOffset, indexSize);
  badType[indexOffset + indexSize] = 7;
  fixCrc(badType, indexOffset, indexSize);
  assertFails(
    () => readTable(badType, name),
    Code.DATA_LOSS,
    new RegExp(`bad block type 7 at offset ${indexOffset}$`),
  );

  assertFails(() => readTable(good.subarray(0, 40), name), Code.DATA_LOSS, /too short/, /index/);
  assertFails(
    () => readTable(good.subarray(0, good.length - 1), name),
    Code.DATA_LOSS,
    /bad magic number/,
  );
  // Truncated at the front (footer intact, block handles now past the end).
  assertFails(
    () => readTable(good.subarray(30), name),
    Code.DATA_LOSS,
    /truncated block read|block checksum mismatch/,
  );

  // The metaindex block directly follows the only data block and its trailer.
  const dataSize = footerHandles(good)[0][0] - 5;
  assert.equal(readFixed32(good, dataSize - 4), 1); // one restart point

  // A block whose entry claims more key bytes than the block holds (with a valid CRC).
  const badEntry = good.slice();
  badEntry[1] = 100; // non_shared of the first entry
  fixCrc(badEntry, 0, dataSize);
  assertFails(() => readTable(badEntry, name), Code.DATA_LOSS, /bad entry in block at offset 0$/);

  // An impossible number of restart points.
  const badRestarts = good.slice();
  new DataView(badRestarts.buffer).setUint32(dataSize - 4, 1000, true);
  fixCrc(badRestarts, 0, dataSize);
  assertFails(() => readTable(badRestarts, name), Code.DATA_LOSS, /bad block contents/);
});

Deno.test("table: a corrupt snappy block fails with DATA_LOSS", () => {
  // Build a one-block table by hand with a snappy-compressed data block.
  const plain = writeTable([["key", enc.encode("value value value value value")]]);
  const [[metaOffset]] = footerHandles(plain);
  const dataSize = metaOffset - 5;
  const block = plain.subarray(0, dataSize);
  const compressed = compress(block) as Uint8Array;
  const rebuilt = (payload: Uint8Array): Uint8Array => {
    // [snappy block][trailer][rest of the file with handles shifted]
    const out: number[] = [
      ...payload,
      1,
      ...le32(maskCrc(crc32c(new Uint8Array([...payload, 1])))),
    ];
    // metaindex (empty block), index block pointing at the data block, footer.
    const meta = [0, 0, 0, 0, 1, 0, 0, 0];
    const metaAt = out.length;
    out.push(...meta, 0, ...le32(maskCrc(crc32c(new Uint8Array([...meta, 0])))));
    const handle = [...varint(0), ...varint(payload.length)];
    const idx = [0, 1, handle.length, 0x6c, ...handle, 0, 0, 0, 0, 1, 0, 0, 0];
    const idxAt = out.length;
    out.push(...idx, 0, ...le32(maskCrc(crc32c(new Uint8Array([...idx, 0])))));
    const footer = [
      ...varint(metaAt),
      ...varint(meta.length),
      ...varint(idxAt),
      ...varint(idx.length),
    ];
    while (footer.length < 40) footer.push(0);
    footer.push(...le32(0x8b80fb57), ...le32(0xdb477524));
    out.push(...footer);
    return new Uint8Array(out);
  };
  const ok = rebuilt(compressed);
  assert.deepEqual(readTable(ok, "s").map((e) => dec.decode(e.value)), [
    "value value value value value",
  ]);
  const broken = compressed.slice();
  broken[0] = 0xff; // an impossible uncompressed length varint
  broken[1] = 0xff;
  broken[2] = 0xff;
  broken[3] = 0xff;
  broken[4] = 0x7f;
  assertFails(() => readTable(rebuilt(broken), "s"), Code.DATA_LOSS, /corrupted compressed block/);
});

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}
