import assert from "node:assert/strict";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  BundleEntryProtoSchema,
  BundleHeaderProto_Endianness,
  BundleHeaderProtoSchema,
} from "../../src/proto/gen/tensorflow/core/protobuf/tensor_bundle_pb.ts";
import { TrackableObjectGraphSchema } from "../../src/proto/gen/tensorflow/core/protobuf/trackable_object_graph_pb.ts";
import { Code } from "../../src/errors.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { shapeToProto } from "../../src/tensor/tensor_proto.ts";
import { crc32c, maskCrc, unmaskCrc } from "../../src/saved_model/crc32c.ts";
import { readTable, writeTable } from "../../src/saved_model/table.ts";
import {
  dataFileName,
  encodeBundle,
  indexFileName,
  TensorBundle,
  writeBundle,
  writeBundleSync,
} from "../../src/saved_model/tensor_bundle.ts";
import { assertServingError } from "../assert.ts";

const testdata = new URL("../../../shared/testdata/tf-serving/", import.meta.url);
const enc = new TextEncoder();
const dec = new TextDecoder();

function prefixOf(model: string, version = "00000123"): string {
  return new URL(`${model}/${version}/variables/variables`, testdata).pathname;
}

const assertRejects = assertServingError;

/** Temp dirs made by a test, removed when it ends. */
const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bundle_test_" });
  tempDirs.push(dir);
  return dir;
}

async function removeTempDirs(): Promise<void> {
  for (const d of tempDirs.splice(0)) await Deno.remove(d, { recursive: true });
}

/** Copies a model's variables into a fresh temp dir; returns the new prefix. */
async function copyVariables(model: string): Promise<string> {
  const dir = await tempDir();
  const src = prefixOf(model);
  await Deno.copyFile(indexFileName(src), `${dir}/variables.index`);
  await Deno.copyFile(dataFileName(src, 0, 1), `${dir}/variables.data-00000-of-00001`);
  return `${dir}/variables`;
}

async function patch(path: string, edit: (b: Uint8Array) => Uint8Array | void): Promise<void> {
  const b = await Deno.readFile(path);
  await Deno.writeFile(path, edit(b) ?? b);
}

function floatOf(t: Tensor): number {
  assert.equal(t.dtype, DataType.DT_FLOAT);
  assert.deepEqual(t.shape, []);
  return (t.data as Float32Array)[0];
}

Deno.test("bundle: both versions of half_plus_two: a=0.5, b=2, c=3, every CRC checked", async () => {
  for (const version of ["00000123", "00000124"]) {
    const prefix = prefixOf("saved_model_half_plus_two_2_versions", version);
    using bundle = await TensorBundle.open(prefix);
    assert.equal(bundle.numShards, 1);
    assert.equal(bundle.header.version?.producer, 1);
    assert.deepEqual(bundle.keys(), ["a", "b", "c"]);
    // Check every entry's CRC32C against the data file directly, not only through read().
    const data = await Deno.readFile(dataFileName(prefix, 0, 1));
    for (const key of bundle.keys()) {
      const e = bundle.entry(key);
      assert.equal(e.shardId, 0);
      const bytes = data.subarray(Number(e.offset), Number(e.offset + e.size));
      assert.equal(bytes.length, 4);
      assert.equal(crc32c(bytes), unmaskCrc(e.crc32c), `CRC of ${key} in ${version}`);
    }
    assert.equal(floatOf(await bundle.read("a")), 0.5);
    assert.equal(floatOf(await bundle.read("b")), 2);
    assert.equal(floatOf(await bundle.read("c")), 3);
  }
});

Deno.test("bundle: half_plus_two_cpu (snappy index) has a, a2, b, c, c2", async () => {
  const prefix = prefixOf("saved_model_half_plus_two_cpu");
  using bundle = await TensorBundle.open(prefix);
  assert.deepEqual(bundle.keys(), ["a", "a2", "b", "c", "c2"]);
  const values = await Promise.all(bundle.keys().map((k) => bundle.read(k)));
  assert.deepEqual(values.map(floatOf), [0.5, 0.5, 2, 3, 3]);
  assert.deepEqual(bundle.dtypeAndShape("a2"), { dtype: DataType.DT_FLOAT, shape: [] });
});

Deno.test("bundle: TF2 half_plus_two with the object graph string tensor", async () => {
  const prefix = prefixOf("saved_model_half_plus_two_tf2_cpu");
  const bundle = TensorBundle.openSync(prefix);
  try {
    assert.deepEqual(bundle.keys(), [
      "_CHECKPOINTABLE_OBJECT_GRAPH",
      "a/.ATTRIBUTES/VARIABLE_VALUE",
      "b/.ATTRIBUTES/VARIABLE_VALUE",
      "c/.ATTRIBUTES/VARIABLE_VALUE",
    ]);
    assert.equal(floatOf(bundle.readSync("a/.ATTRIBUTES/VARIABLE_VALUE")), 0.5);
    assert.equal(floatOf(bundle.readSync("b/.ATTRIBUTES/VARIABLE_VALUE")), 2);
    assert.equal(floatOf(bundle.readSync("c/.ATTRIBUTES/VARIABLE_VALUE")), 3);

    const entry = bundle.entry("_CHECKPOINTABLE_OBJECT_GRAPH");
    assert.equal(entry.dtype, DataType.DT_STRING);
    const graph = bundle.readSync("_CHECKPOINTABLE_OBJECT_GRAPH");
    assert.equal(graph.dtype, DataType.DT_STRING);
    assert.deepEqual(graph.shape, []);
    const [bytes] = graph.strings;
    // Stored as varint64 length (2 bytes for 613), 4-byte length checksum, then the bytes.
    assert.equal(Number(entry.size), 2 + 4 + bytes.length);
    const objects = fromBinary(TrackableObjectGraphSchema, bytes);
    const root = objects.nodes[0];
    assert.deepEqual(
      root.children.map((c) => c.localName).slice(0, 3),
      ["a", "b", "c"],
    );
    const keys = objects.nodes.flatMap((n) => n.attributes.map((a) => a.checkpointKey));
    assert.deepEqual(keys.sort(), bundle.keys().slice(1));

    // The sync and async readers agree.
    using asyncBundle = await TensorBundle.open(prefix);
    const again = await asyncBundle.read("_CHECKPOINTABLE_OBJECT_GRAPH");
    assert.deepEqual(again.strings, graph.strings);
  } finally {
    bundle.close();
  }
});

Deno.test("bundle: re-encoding reproduces TensorFlow's files", async () => {
  // TF writes data in Add order and entries in key order; keep the stored data order.
  for (
    const model of ["saved_model_half_plus_two_2_versions", "saved_model_half_plus_two_tf2_cpu"]
  ) {
    const prefix = prefixOf(model);
    using bundle = await TensorBundle.open(prefix);
    const byOffset = bundle.keys().sort((x, y) =>
      Number(bundle.entry(x).offset - bundle.entry(y).offset)
    );
    const tensors = await Promise.all(
      byOffset.map(async (k) => [k, await bundle.read(k)] as const),
    );
    const { index, data } = encodeBundle(tensors);
    assert.deepEqual(data, await Deno.readFile(dataFileName(prefix, 0, 1)), model);
    // Same entries (the TF2 index is snappy-compressed on disk, ours is not).
    const theirs = readTable(await Deno.readFile(indexFileName(prefix)), "theirs");
    const ours = readTable(index, "ours");
    assert.deepEqual(ours, theirs, model);
    if (model.endsWith("2_versions")) {
      assert.deepEqual(index, await Deno.readFile(indexFileName(prefix)));
    }
  }
});

Deno.test("bundle: write/read round trip of every supported dtype, strings included", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bundle_rt_" });
  try {
    const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
    const long = new Uint8Array(300).fill(0x61); // a 2-byte varint length
    const tensors = new Map<string, Tensor>([
      ["w", Tensor.float32([1.5, -2, 3.25, Number.NaN, Infinity, -0], [2, 3])],
      ["i64", Tensor.int64([-(2n ** 63n), 0, 2n ** 63n - 1n], [3])],
      ["i32", Tensor.int32([1, -2, 3], [3, 1])],
      ["f64", new Tensor(DataType.DT_DOUBLE, [2], Float64Array.from([Math.PI, -1e300]))],
      ["bool", new Tensor(DataType.DT_BOOL, [4], Uint8Array.from([1, 0, 0, 1]))],
      ["i8", new Tensor(DataType.DT_INT8, [2], Int8Array.from([-128, 127]))],
      ["u16", new Tensor(DataType.DT_UINT16, [2], Uint16Array.from([0, 65535]))],
      ["half", new Tensor(DataType.DT_HALF, [1], Uint16Array.from([0x3c00]))],
      ["c64", new Tensor(DataType.DT_COMPLEX64, [2], Float32Array.from([1, 2, 3, 4]))],
      ["u64", new Tensor(DataType.DT_UINT64, [1], BigUint64Array.from([2n ** 64n - 1n]))],
      ["empty", Tensor.float32([], [2, 0])],
      ["s", Tensor.strings(["", "héllo", bytes(200), long, "x"], [5])],
      ["s_scalar", Tensor.strings(["only"], [])],
      ["s_empty", Tensor.strings([], [0, 3])],
      // Keys whose UTF-16 order differs from their UTF-8 (table) order.
      ["\uE000", Tensor.float32([1], [])],
      ["😀", Tensor.float32([2], [])],
      ["layer/kernel/.ATTRIBUTES/VARIABLE_VALUE", Tensor.float32([7], [1])],
    ]);
    const prefix = `${dir}/sub/variables`;
    await writeBundle(prefix, tensors);
    using bundle = await TensorBundle.open(prefix);
    assert.deepEqual(new Set(bundle.keys()), new Set(tensors.keys()));
    assert.ok(bundle.keys().indexOf("\uE000") < bundle.keys().indexOf("😀"));
    for (const [name, want] of tensors) {
      for (const got of [await bundle.read(name), bundle.readSync(name)]) {
        assert.equal(got.dtype, want.dtype, name);
        assert.deepEqual(got.shape, want.shape, name);
        if (want.dtype === DataType.DT_STRING) {
          assert.deepEqual(got.strings, want.strings, name);
        } else {
          assert.deepEqual(
            Array.from(got.data as ArrayLike<unknown>),
            Array.from(want.data as ArrayLike<unknown>),
            name,
          );
        }
      }
    }
    // The string layout by hand: lengths 0, 6, 200 (2 bytes), 300 (2 bytes), 1.
    const e = bundle.entry("s");
    const data = await Deno.readFile(dataFileName(prefix, 0, 1));
    const rec = data.subarray(Number(e.offset), Number(e.offset + e.size));
    assert.deepEqual([...rec.subarray(0, 7)], [0, 6, 200, 1, 172, 2, 1]);
    let lengthCrc = 0;
    for (const n of [0, 6, 200, 300, 1]) {
      lengthCrc = crc32c(new Uint8Array(new Uint32Array([n]).buffer), lengthCrc);
    }
    const view = new DataView(rec.buffer, rec.byteOffset);
    assert.equal(view.getUint32(7, true), maskCrc(lengthCrc));
    assert.equal(unmaskCrc(e.crc32c), crc32c(rec.subarray(7), lengthCrc));
    assert.equal(rec.length, 7 + 4 + 0 + 6 + 200 + 300 + 1);

    // The sync writer writes the same files.
    writeBundleSync(`${dir}/sync/variables`, tensors);
    assert.deepEqual(
      await Deno.readFile(`${dir}/sync/variables.index`),
      await Deno.readFile(`${prefix}.index`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bundle: the writer rejects bad input", async () => {
  await assertRejects(
    () => encodeBundle([["", Tensor.float32([1])]]),
    Code.INVALID_ARGUMENT,
    "reserved",
  );
  await assertRejects(
    () => encodeBundle([["a", Tensor.float32([1])], ["a", Tensor.float32([2])]]),
    Code.INVALID_ARGUMENT,
    "duplicate",
  );
  await assertRejects(
    () => encodeBundle([["r", new Tensor(DataType.DT_RESOURCE, [], [])]]),
    Code.INVALID_ARGUMENT,
    "DT_RESOURCE",
  );
});

Deno.test("bundle: corrupt or missing files fail with the right code, naming the file", async (t) => {
  try {
    await corruptionSteps(t);
  } finally {
    await removeTempDirs();
  }
});

async function corruptionSteps(t: Deno.TestContext): Promise<void> {
  const model = "saved_model_half_plus_two_2_versions";

  await t.step("missing index", async () => {
    await assertRejects(
      () => TensorBundle.open("/nonexistent/variables/variables"),
      Code.NOT_FOUND,
      "/nonexistent/variables/variables.index",
    );
    await assertRejects(
      () => TensorBundle.openSync("/nonexistent/variables/variables"),
      Code.NOT_FOUND,
      "/nonexistent/variables/variables.index",
    );
  });

  await t.step("bad footer magic", async () => {
    const prefix = await copyVariables(model);
    await patch(`${prefix}.index`, (b) => {
      b[b.length - 3] ^= 0xff;
    });
    await assertRejects(
      () => TensorBundle.open(prefix),
      Code.DATA_LOSS,
      `${prefix}.index`,
      "bad magic number",
      "at offset 143",
    );
  });

  await t.step("flipped byte in an index block", async () => {
    const prefix = await copyVariables(model);
    await patch(`${prefix}.index`, (b) => {
      b[12] ^= 0x01; // the key "a" becomes "`"
    });
    await assertRejects(
      () => TensorBundle.open(prefix),
      Code.DATA_LOSS,
      `${prefix}.index`,
      "block checksum mismatch",
      "at offset 0",
    );
  });

  await t.step("truncated index", async () => {
    const prefix = await copyVariables(model);
    await patch(`${prefix}.index`, (b) => b.subarray(0, 100));
    await assertRejects(() => TensorBundle.open(prefix), Code.DATA_LOSS, `${prefix}.index`);
    await patch(`${prefix}.index`, (b) => b.subarray(0, 20));
    await assertRejects(() => TensorBundle.open(prefix), Code.DATA_LOSS, "too short");
  });

  await t.step("missing shard", async () => {
    const prefix = await copyVariables(model);
    await Deno.remove(`${prefix}.data-00000-of-00001`);
    using bundle = await TensorBundle.open(prefix);
    await assertRejects(
      () => bundle.read("a"),
      Code.NOT_FOUND,
      `${prefix}.data-00000-of-00001`,
      "Cannot restore a",
    );
    await assertRejects(
      () => bundle.readSync("b"),
      Code.NOT_FOUND,
      `${prefix}.data-00000-of-00001`,
    );
  });

  await t.step("flipped byte in the data file", async () => {
    const prefix = await copyVariables(model);
    await patch(`${prefix}.data-00000-of-00001`, (b) => {
      b[5] ^= 0x40; // inside b
    });
    using bundle = await TensorBundle.open(prefix);
    assert.equal(floatOf(await bundle.read("a")), 0.5);
    await assertRejects(
      () => bundle.read("b"),
      Code.DATA_LOSS,
      "Cannot restore b from",
      `${prefix}.data-00000-of-00001`,
      "checksum does not match",
    );
    await assertRejects(() => bundle.readSync("b"), Code.DATA_LOSS, "checksum does not match");
    assert.equal(floatOf(bundle.readSync("c")), 3);
  });

  await t.step("truncated data file", async () => {
    const prefix = await copyVariables(model);
    await patch(`${prefix}.data-00000-of-00001`, (b) => b.subarray(0, 10));
    using bundle = await TensorBundle.open(prefix);
    assert.equal(floatOf(await bundle.read("b")), 2);
    await assertRejects(
      () => bundle.read("c"),
      Code.DATA_LOSS,
      "Cannot restore c",
      "ends at byte 10",
    );
    await assertRejects(() => bundle.readSync("c"), Code.DATA_LOSS, "ends at byte 10");
  });

  await t.step("missing key", async () => {
    using bundle = await TensorBundle.open(prefixOf(model));
    await assertRejects(
      () => bundle.read("nope"),
      Code.NOT_FOUND,
      /^Key nope not found in checkpoint$/,
    );
    await assertRejects(() => bundle.entry(""), Code.NOT_FOUND, "not found in checkpoint");
    assert.equal(bundle.has("a"), true);
    assert.equal(bundle.has("nope"), false);
  });

  await t.step("string tensor corruption", async () => {
    const prefix = await copyVariables("saved_model_half_plus_two_tf2_cpu");
    const key = "_CHECKPOINTABLE_OBJECT_GRAPH";
    const e = TensorBundle.openSync(prefix).entry(key); // no data read, so nothing to close
    const at = Number(e.offset);
    // A flipped byte in the element bytes: the entry CRC catches it.
    await patch(`${prefix}.data-00000-of-00001`, (b) => {
      b[at + 6 + 100] ^= 0x02;
    });
    await assertRejects(
      async () => {
        using bundle = await TensorBundle.open(prefix);
        return await bundle.read(key);
      },
      Code.DATA_LOSS,
      `Cannot restore ${key} from ${prefix}.data-00000-of-00001`,
      "checksum does not match",
    );
    // A changed length: the lengths checksum catches it.
    await patch(`${prefix}.data-00000-of-00001`, (b) => {
      b[at + 6 + 100] ^= 0x02;
      b[at] ^= 0x01;
    });
    await assertRejects(
      async () => {
        using bundle = await TensorBundle.open(prefix);
        return await bundle.read(key);
      },
      Code.DATA_LOSS,
      "length checksum does not match",
    );
  });
}

/** A one-shard bundle whose index is written by hand, for entries the writer never makes. */
async function handMadeBundle(
  header: MessageInitShape<typeof BundleHeaderProtoSchema>,
  entries: [string, MessageInitShape<typeof BundleEntryProtoSchema>][],
  data = new Uint8Array(16),
): Promise<string> {
  const dir = await tempDir();
  const prefix = `${dir}/variables`;
  const rows: [string, Uint8Array][] = [
    ["", toBinary(BundleHeaderProtoSchema, create(BundleHeaderProtoSchema, header))],
    ...entries.sort((x, y) => (x[0] < y[0] ? -1 : 1)).map(([k, e]) =>
      [k, toBinary(BundleEntryProtoSchema, create(BundleEntryProtoSchema, e))] as [
        string,
        Uint8Array,
      ]
    ),
  ];
  await Deno.writeFile(`${prefix}.index`, writeTable(rows));
  await Deno.writeFile(dataFileName(prefix, 0, 1), data);
  return prefix;
}

Deno.test("bundle: unsupported or invalid entries and headers", async (t) => {
  try {
    await invalidEntrySteps(t);
  } finally {
    await removeTempDirs();
  }
});

async function invalidEntrySteps(t: Deno.TestContext): Promise<void> {
  const v1 = { numShards: 1, version: { producer: 1 } };
  const scalar = { dtype: DataType.DT_FLOAT, shape: shapeToProto([]), size: 4n };

  await t.step("partitioned variable", async () => {
    const prefix = await handMadeBundle(v1, [[
      "part",
      { ...scalar, shape: shapeToProto([4]), slices: [{ extent: [{ start: 0n }] }] },
    ]]);
    using bundle = await TensorBundle.open(prefix);
    await assertRejects(
      () => bundle.read("part"),
      Code.UNIMPLEMENTED,
      "Cannot restore part: partitioned (sliced) variables are not supported",
    );
  });

  await t.step("big-endian bundle", async () => {
    const prefix = await handMadeBundle(
      { ...v1, endianness: BundleHeaderProto_Endianness.BIG },
      [],
    );
    await assertRejects(() => TensorBundle.open(prefix), Code.UNIMPLEMENTED, "big-endian");
  });

  await t.step("too new a format", async () => {
    const prefix = await handMadeBundle(
      { numShards: 1, version: { producer: 2, minConsumer: 2 } },
      [],
    );
    await assertRejects(() => TensorBundle.open(prefix), Code.INVALID_ARGUMENT, "min consumer");
    const bad = await handMadeBundle(
      { numShards: 1, version: { producer: 1, badConsumers: [1] } },
      [],
    );
    await assertRejects(() => TensorBundle.open(bad), Code.INVALID_ARGUMENT, "disallows");
  });

  await t.step("no header", async () => {
    const dir = await tempDir();
    await Deno.writeFile(`${dir}/v.index`, writeTable([["a", new Uint8Array()]]));
    await assertRejects(
      () => TensorBundle.open(`${dir}/v`),
      Code.DATA_LOSS,
      "header",
      `${dir}/v.index`,
    );
  });

  await t.step("bad size, shard, shape and dtype", async () => {
    const prefix = await handMadeBundle({ ...v1, numShards: 2 }, [
      ["size", { ...scalar, size: 8n }],
      ["shard", { ...scalar, shardId: 5 }],
      ["shape", { ...scalar, shape: { dim: [{ size: -1n }] } }],
      ["variant", { dtype: DataType.DT_VARIANT, shape: shapeToProto([]), size: 4n }],
      ["ok", { ...scalar, shardId: 1, crc32c: maskCrc(crc32c(new Uint8Array(4))) }],
    ]);
    using bundle = await TensorBundle.open(prefix);
    assert.equal(bundle.numShards, 2);
    await assertRejects(() => bundle.read("size"), Code.DATA_LOSS, "Invalid size", "stored size 8");
    await assertRejects(() => bundle.read("shard"), Code.DATA_LOSS, "shard 5");
    await assertRejects(() => bundle.read("shape"), Code.DATA_LOSS, "Invalid tensor shape");
    await assertRejects(() => bundle.read("variant"), Code.UNIMPLEMENTED, "DT_VARIANT");
    // Shard 1 of 2 lives in its own file, which does not exist.
    await assertRejects(() => bundle.read("ok"), Code.NOT_FOUND, `${prefix}.data-00001-of-00002`);
    await Deno.writeFile(dataFileName(prefix, 1, 2), new Uint8Array(4));
    assert.equal(floatOf(await bundle.read("ok")), 0);
  });

  await t.step("unparseable entry", async () => {
    const dir = await tempDir();
    const header = toBinary(BundleHeaderProtoSchema, create(BundleHeaderProtoSchema, v1));
    await Deno.writeFile(
      `${dir}/v.index`,
      writeTable([["", header], ["x", new Uint8Array([0xff, 0xff, 0xff])]]),
    );
    using bundle = await TensorBundle.open(`${dir}/v`);
    await assertRejects(() => bundle.read("x"), Code.DATA_LOSS, "Entry for key x not parseable");
  });
}

Deno.test("bundle: closing releases the shard files and stops reads", async () => {
  const bundle = await TensorBundle.open(prefixOf("saved_model_half_plus_two_2_versions"));
  await bundle.read("a");
  bundle.close();
  await assertRejects(() => bundle.read("a"), Code.FAILED_PRECONDITION, "closed");
  bundle.close(); // idempotent
  assert.equal(dec.decode(enc.encode("ok")), "ok");
});
