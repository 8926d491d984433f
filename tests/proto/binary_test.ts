import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { PredictRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { ClassificationRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/classification_pb.ts";
import { GetModelStatusRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import { TensorProtoSchema } from "../../src/proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { decodeBinary, WireDecodeError } from "../../src/proto/binary.ts";
import {
  decodeRequest,
  RefusedRequest,
  UNDECODABLE,
} from "../../src/api/grpc/service_definition.ts";
import { DEFAULT_DECODE_LIMITS } from "../../src/tensor/limits.ts";

function predictBytes(): Uint8Array {
  return toBinary(
    PredictRequestSchema,
    create(PredictRequestSchema, {
      modelSpec: {
        name: "m",
        signatureName: "s",
        versionChoice: { case: "version", value: { value: 7n } },
      },
      inputs: {
        x: {
          dtype: 1,
          tensorShape: { dim: [{ size: 2n, name: "a" }] },
          floatVal: [1, 2.5],
          int64Val: [-1n, 5n],
          stringVal: [new Uint8Array([1, 2])],
          boolVal: [true, false],
        },
        "": { dtype: 7, tensorContent: new Uint8Array([9, 9]) },
      },
      outputFilter: ["y", "z"],
    }),
  );
}

Deno.test("decodeBinary() decodes valid messages as fromBinary does", () => {
  const bytes = predictBytes();
  assert.deepEqual(
    decodeBinary(PredictRequestSchema, bytes),
    fromBinary(PredictRequestSchema, bytes),
  );
  const c = toBinary(
    ClassificationRequestSchema,
    create(ClassificationRequestSchema, {
      modelSpec: { name: "m", versionChoice: { case: "versionLabel", value: "l" } },
      input: {
        kind: {
          case: "exampleListWithContext",
          value: {
            examples: [{
              features: { feature: { a: { kind: { case: "floatList", value: { value: [1] } } } } },
            }],
            context: { features: { feature: {} } },
          },
        },
      },
    }),
  );
  assert.deepEqual(
    decodeBinary(ClassificationRequestSchema, c),
    fromBinary(ClassificationRequestSchema, c),
  );
});

/** Bytes written with a BinaryWriter. */
function wire(fn: (w: BinaryWriter) => void): Uint8Array {
  const w = new BinaryWriter();
  fn(w);
  return w.finish();
}

function fails(bytes: Uint8Array, overLimit = false, maxCost?: number) {
  assert.throws(
    () => decodeBinary(PredictRequestSchema, bytes, { maxCost }),
    (e: unknown) => e instanceof WireDecodeError && e.overLimit === overLimit,
  );
}

Deno.test("decodeBinary() takes a field with an unexpected wire type as unknown, as C++", () => {
  const bytes = wire((w) => {
    w.tag(1, WireType.Varint).uint32(5); // model_spec (a message) as a varint
    w.tag(3, WireType.Bit32).fixed32(1); // output_filter (strings) as fixed32
    w.tag(2, WireType.StartGroup).tag(1, WireType.Varint).uint32(1).tag(2, WireType.EndGroup);
    w.tag(3, WireType.LengthDelimited).string("y"); // then a good one
  });
  const m = decodeBinary(PredictRequestSchema, bytes);
  assert.equal(m.modelSpec, undefined);
  assert.deepEqual(m.outputFilter, ["y"]);
  assert.equal(m.$unknown, undefined);
  // Scalars: dtype (varint) as fixed64 is skipped; float_val takes packed and unpacked.
  const t = wire((w) => {
    w.tag(1, WireType.Bit64).fixed64(3n);
    w.tag(5, WireType.Bit32).float(1.5);
    w.tag(5, WireType.LengthDelimited).fork().float(2).float(3).join();
    w.tag(5, WireType.Varint).uint32(4); // not a float's wire type: unknown
  });
  const tp = decodeBinary(TensorProtoSchema, t);
  assert.equal(tp.dtype, 0);
  assert.deepEqual(tp.floatVal, [1.5, 2, 3]);
});

Deno.test("decodeBinary() fails where C++ fails the parse", () => {
  fails(new Uint8Array([0x00])); // tag 0
  fails(new Uint8Array([0x07])); // field 0
  fails(new Uint8Array([0x0e, 0x00])); // wire type 6
  fails(new Uint8Array([0x0c])); // end group outside a group
  fails(new Uint8Array([0x0a, 0x05, 0x01])); // truncated
  fails(new Uint8Array([0x08, ...new Array(11).fill(0xff), 0x01])); // varint over 10 bytes
  fails(wire((w) => w.tag(3, WireType.LengthDelimited).bytes(new Uint8Array([0xff])))); // UTF-8
  fails(wire((w) => w.tag(9, WireType.StartGroup).tag(8, WireType.EndGroup))); // wrong end
});

Deno.test("decodeBinary() stops nesting at depth 100, groups and messages alike", () => {
  const groups = (n: number) =>
    new Uint8Array([...new Array(n).fill(0x4b), ...new Array(n).fill(0x4c)]); // field 9
  decodeBinary(PredictRequestSchema, groups(99));
  fails(groups(101));
  fails(groups(100_000));
  // TensorProto.variant_val → VariantTensorDataProto.tensors → TensorProto → …
  let inner: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < 200; i++) {
    const variant = wire((w) => w.tag(3, WireType.LengthDelimited).bytes(inner));
    inner = wire((w) => w.tag(15, WireType.LengthDelimited).bytes(variant));
  }
  assert.throws(() => decodeBinary(TensorProtoSchema, inner), /nesting deeper than 100/);
});

Deno.test("decodeBinary() keeps no unknown fields and bounds what it builds", () => {
  const bomb = new Uint8Array(2_000_000);
  for (let i = 0; i < bomb.length; i += 2) bomb[i] = 0x78; // field 15, varint 0
  const m = decodeBinary(PredictRequestSchema, bomb, { maxCost: 1 << 20 });
  assert.equal(m.$unknown, undefined);
  // A million empty inputs entries: two bytes each on the wire, objects in memory.
  const entries = new Uint8Array(2_000_000);
  for (let i = 0; i < entries.length; i += 2) entries[i] = 0x12; // field 2 (inputs), length 0
  fails(entries, true, 16 << 20);
  const strings = new Uint8Array(2_000_000);
  for (let i = 0; i < strings.length; i += 2) strings[i] = 0x1a; // output_filter ""
  fails(strings, true, 16 << 20);
  const packed = wire((w) =>
    w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("x")
      .tag(2, WireType.LengthDelimited).fork()
      .tag(10, WireType.LengthDelimited).bytes(new Uint8Array(1_000_000)).join().join()
  );
  fails(packed, true, 16 << 20); // a million int64 varints: a bigint each
  decodeBinary(PredictRequestSchema, packed, { maxCost: 64 << 20 });
  const status = toBinary(
    GetModelStatusRequestSchema,
    create(GetModelStatusRequestSchema, {
      modelSpec: { name: "m" },
    }),
  );
  assert.equal(decodeBinary(GetModelStatusRequestSchema, status).modelSpec?.name, "m");
});

Deno.test("decodeRequest() takes a well-formed request of a million one-byte int64 values", () => {
  const req = create(PredictRequestSchema, {
    modelSpec: { name: "m" },
    inputs: {
      ids: {
        dtype: 9,
        tensorShape: { dim: [{ size: 1_000_000n }] },
        int64Val: Array.from({ length: 1_000_000 }, (_, i) => BigInt(i % 100)),
      },
    },
  });
  const bytes = toBinary(PredictRequestSchema, req);
  const m = decodeRequest(PredictRequestSchema, bytes, DEFAULT_DECODE_LIMITS);
  assert.ok(m !== UNDECODABLE && !(m instanceof RefusedRequest), "refused");
  assert.equal(m.inputs.ids.int64Val.length, 1_000_000);
  // A million empty output_filter strings (2 MB) is not well-formed use: refused.
  const strings = new Uint8Array(2_000_000);
  for (let i = 0; i < strings.length; i += 2) strings[i] = 0x1a;
  assert.ok(
    decodeRequest(PredictRequestSchema, strings, {
      ...DEFAULT_DECODE_LIMITS,
      maxExpansion: 4,
    }) instanceof RefusedRequest,
  );
});
