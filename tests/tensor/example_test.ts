import assert from "node:assert/strict";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { ExampleSchema } from "../../src/proto/gen/tensorflow/core/example/example_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import {
  decodeExample,
  encodeExample,
  FeatureKind,
  featureKind,
  FeatureLocator,
  KeyIndex,
  readFloatList,
} from "../../src/tensor/example.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("encodeExample writes the upstream wire format (pinned bytes)", () => {
  // Example{features{feature{key:"a" value{float_list{value:[1.0]}}}}}, value packed.
  const expected = new Uint8Array([
    0x0a,
    0x0f, // Example.features (1), 15 bytes
    0x0a,
    0x0d, // Features.feature (1) map entry, 13 bytes
    0x0a,
    0x01,
    0x61, // entry key (1) "a"
    0x12,
    0x08, // entry value (2): Feature, 8 bytes
    0x12,
    0x06, // Feature.float_list (2), 6 bytes
    0x0a,
    0x04,
    0x00,
    0x00,
    0x80,
    0x3f, // FloatList.value (1) packed: 1.0f
  ]);
  assert.deepEqual(encodeExample({ a: { floatList: [1] } }), expected);
  const decoded = decodeExample(expected);
  assert.deepEqual([...decoded.keys()], ["a"]);
  assert.deepEqual(decoded.get("a"), { floatList: new Float32Array([1]) });
});

Deno.test("encodeExample agrees with protobuf-es in both directions", () => {
  const bytes = encodeExample({
    age: { floatList: [29.5, -1] },
    ids: { int64List: [1, -2, 9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n] },
    name: { bytesList: ["héllo", new Uint8Array([0, 255, 128])] },
    empty: {},
  });
  const msg = fromBinary(ExampleSchema, bytes);
  const f = msg.features!.feature;
  assert.deepEqual(f.age.kind, { case: "floatList", value: f.age.kind.value });
  assert.deepEqual((f.age.kind.value as { value: number[] }).value, [29.5, -1]);
  assert.deepEqual(
    (f.ids.kind.value as { value: bigint[] }).value,
    [1n, -2n, 9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n],
  );
  const names = (f.name.kind.value as { value: Uint8Array[] }).value;
  assert.equal(dec.decode(names[0]), "héllo");
  assert.deepEqual(names[1], new Uint8Array([0, 255, 128]));
  assert.equal(f.empty.kind.case, undefined);

  const decoded = decodeExample(toBinary(ExampleSchema, msg));
  assert.deepEqual(decoded.get("age"), { floatList: new Float32Array([29.5, -1]) });
  assert.deepEqual(decoded.get("ids"), {
    int64List: BigInt64Array.from([1n, -2n, 9007199254740993n, -(2n ** 63n), 2n ** 63n - 1n]),
  });
  assert.deepEqual(decoded.get("empty"), {});
});

Deno.test("unpacked float and int64 lists decode like packed ones", () => {
  const features = { x: { floatList: [1.5, 2.5, -3] }, y: { int64List: [7, -7, 300] } };
  const packed = encodeExample(features);
  const unpacked = encodeExample(features, { packed: false });
  assert.notDeepEqual(packed, unpacked);
  assert.deepEqual(decodeExample(unpacked), decodeExample(packed));
  // protobuf-es reads the unpacked form too.
  const msg = fromBinary(ExampleSchema, unpacked);
  assert.deepEqual((msg.features!.feature.y.kind.value as { value: bigint[] }).value, [
    7n,
    -7n,
    300n,
  ]);
});

Deno.test("concatenated Examples merge, later entries win", () => {
  const a = encodeExample({ k: { int64List: [1] }, only_a: { bytesList: ["a"] } });
  const b = encodeExample({ k: { int64List: [2] } });
  const merged = decodeExample(concat(a, b));
  assert.deepEqual(merged.get("k"), { int64List: BigInt64Array.from([2n]) });
  assert.equal(dec.decode((merged.get("only_a") as { bytesList: Uint8Array[] }).bytesList[0]), "a");
});

Deno.test("map entries may hold value before key; unknown top-level fields are skipped", () => {
  // Entry with value (2) first, then key (1).
  const feature = new Uint8Array([0x1a, 0x03, 0x0a, 0x01, 0x05]); // int64_list packed [5]
  const entry = concat(new Uint8Array([0x12, feature.length]), feature, enc.encode("\x0a\x01k"));
  const features = concat(new Uint8Array([0x0a, entry.length]), entry);
  const example = concat(
    new Uint8Array([0x10, 0x96, 0x01]), // unknown field 2, varint 150
    new Uint8Array([0x0a, features.length]),
    features,
    new Uint8Array([0x1d, 1, 2, 3, 4]), // unknown field 3, fixed32
  );
  assert.deepEqual(decodeExample(example).get("k"), { int64List: BigInt64Array.from([5n]) });
});

Deno.test("malformed bytes fail with INVALID_ARGUMENT", () => {
  const good = encodeExample({ a: { floatList: [1, 2, 3] } });
  for (
    const bad of [
      good.subarray(0, good.length - 1),
      new Uint8Array([0x0a]),
      new Uint8Array([0x0b, 0x01]),
    ]
  ) {
    assert.throws(
      () => decodeExample(bad),
      (e: unknown) =>
        e instanceof ServingError && e.code === Code.INVALID_ARGUMENT &&
        e.message.startsWith("Could not parse example input, value: '"),
    );
  }
  // An empty input is an empty Example; so is an unknown field whose length overruns the input,
  // because upstream ignores the failed skip.
  assert.equal(decodeExample(new Uint8Array(0)).size, 0);
  assert.equal(decodeExample(enc.encode("junk")).size, 0);
});

Deno.test("FeatureLocator finds keys by bytes and reads floats in place", () => {
  const bytes = encodeExample({
    b: { bytesList: ["x"] },
    a: { floatList: [1, 2] },
    a2: { floatList: [9] },
  });
  const index = new KeyIndex([enc.encode("a"), enc.encode("zz"), enc.encode("b")]);
  const loc = new FeatureLocator(index);
  assert.ok(loc.locate(bytes));
  assert.equal(loc.starts[1], -1);
  assert.equal(featureKind(bytes, loc.starts[0], loc.ends[0]), FeatureKind.Float);
  assert.equal(featureKind(bytes, loc.starts[2], loc.ends[2]), FeatureKind.Bytes);
  const out = new Float32Array(4);
  // Capacity limits the writes; the count is the list length.
  assert.equal(
    readFloatList(bytes, loc.starts[0], loc.ends[0], new Int32Array(out.buffer), 1, 1),
    2,
  );
  assert.deepEqual(out, new Float32Array([0, 1, 0, 0]));
  assert.throws(() => new KeyIndex([enc.encode("a"), enc.encode("a")]), /Duplicate feature key/);
});
