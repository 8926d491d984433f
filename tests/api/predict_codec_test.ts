/**
 * The direct Predict path (bytes → tensor views → run → bytes) against the message path
 * (general decoder → PredictRequest → run → toBinary) on the same bytes: valid requests of many
 * forms, and mutated ones. Both must end the same way — the same response bytes, or the same
 * status code and message — and the plain form must actually take the direct path.
 */
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { Buffer } from "node:buffer";
import {
  encodePredictOutputPieces,
  encodePredictOutputs,
  largeValuesOffset,
  NEED_MORE,
  NO_RUN,
  readPredictRequest,
} from "../../src/api/grpc/predict_codec.ts";
import {
  decodeRequest,
  RefusedRequest,
  UNDECODABLE,
} from "../../src/api/grpc/service_definition.ts";
import { ServingError } from "../../src/errors.ts";
import type { TensorProto } from "../../src/proto/gen/tensorflow/core/framework/tensor_pb.ts";
import type { ModelSpec } from "../../src/proto/gen/tensorflow_serving/apis/model_pb.ts";
import {
  type PredictRequest,
  PredictRequestSchema,
  type PredictResponse,
  PredictResponseSchema,
} from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import type { Model } from "../../src/runtime/model.ts";
import { PredictOutputs, preparePredict, preparePredictView } from "../../src/servables/predict.ts";
import type { ServableOptions } from "../../src/servables/model_spec.ts";
import { runPrepared } from "../../src/servables/prepared.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { type DecodeLimits, DEFAULT_DECODE_LIMITS } from "../../src/tensor/limits.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { Prng } from "../fuzz/prng.ts";
import { model, TF1_2_VERSIONS } from "../servables/fixtures.ts";

const SMALL_LIMITS: DecodeLimits = {
  maxRequestBytes: 1 << 20,
  maxExpansion: 2,
  expansionFloorBytes: 4 << 10,
};

/** How one request ended: response bytes as hex, or status. */
type Outcome = string;

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

function failure(e: unknown): Outcome {
  const err = ServingError.from(e);
  return `error ${err.code}: ${err.message}`;
}

/** A spec as the manager reads it. */
function specKey(spec: ModelSpec | undefined): string {
  if (spec === undefined) return "none";
  const c = spec.versionChoice;
  const v = c.case === "version"
    ? `v${c.value.value}`
    : c.case === "versionLabel"
    ? `l${c.value}`
    : "";
  return `${spec.name}|${spec.signatureName}|${v}`;
}

/** The message path, as the transport ran it before the direct path. */
function viaMessage(
  m: Model,
  bytes: Uint8Array,
  limits: DecodeLimits,
  options: ServableOptions,
): { outcome: Outcome; spec: string } {
  const req = decodeRequest(PredictRequestSchema, bytes, limits);
  if (req === UNDECODABLE) return { outcome: "undecodable", spec: "" };
  if (req instanceof RefusedRequest) return { outcome: `refused ${req.status.details}`, spec: "" };
  let outcome: Outcome;
  try {
    const res: PredictResponse = runPrepared(m, preparePredict(m, 7, "m", req, options));
    outcome = hex(toBinary(PredictResponseSchema, res));
  } catch (e) {
    outcome = failure(e);
  }
  return { outcome, spec: specKey(req.modelSpec) };
}

/** The direct path, as the transport runs it now. */
function viaView(
  m: Model,
  bytes: Uint8Array,
  limits: DecodeLimits,
  options: ServableOptions,
): { outcome: Outcome; spec: string; direct: boolean; outputs: boolean } {
  const view = readPredictRequest(bytes, limits);
  if (view === undefined) {
    return { ...viaMessage(m, bytes, limits, options), direct: false, outputs: false };
  }
  let outcome: Outcome;
  let outputs = false;
  try {
    const res = runPrepared(m, preparePredictView(m, 7, "m", view, options));
    outputs = res instanceof PredictOutputs;
    outcome = hex(
      res instanceof PredictOutputs
        ? encodePredictOutputs(res)
        : toBinary(PredictResponseSchema, res),
    );
  } catch (e) {
    outcome = failure(e);
  }
  return { outcome, spec: specKey(view.modelSpec), direct: true, outputs };
}

const DTYPES = [
  DataType.DT_FLOAT,
  DataType.DT_FLOAT,
  DataType.DT_FLOAT,
  DataType.DT_DOUBLE,
  DataType.DT_INT32,
  DataType.DT_INT64,
  DataType.DT_STRING,
  DataType.DT_BOOL,
  DataType.DT_HALF,
  DataType.DT_UINT32,
  DataType.DT_UINT64,
  DataType.DT_COMPLEX64,
  DataType.DT_INVALID,
  DataType.DT_RESOURCE,
  DataType.DT_FLOAT_REF,
];

/** A random input tensor proto: often right for half_plus_two, sometimes not. */
function randomInput(rng: Prng): TensorProto {
  const dtype = rng.pick(DTYPES);
  const rank = rng.int(3);
  const shape = Array.from({ length: rank }, () => rng.pick([0, 1, 2, 3, 64, 1000]));
  const n = shape.reduce((a, b) => a * b, 1);
  const given = rng.pick([n, n, n, 0, 1, Math.max(0, n - 1), n + 1]);
  const values = Array.from({ length: Math.min(given, 5000) }, () => rng.next() * 100 - 50);
  let t: Tensor;
  switch (dtype) {
    case DataType.DT_STRING:
      t = Tensor.strings(values.map((v) => String(v)), [values.length]);
      break;
    case DataType.DT_INT64:
      t = new Tensor(dtype, [values.length], BigInt64Array.from(values, (v) => BigInt(v | 0)));
      break;
    case DataType.DT_UINT64:
      t = new Tensor(dtype, [values.length], BigUint64Array.from(values, (v) => BigInt(v >>> 0)));
      break;
    case DataType.DT_DOUBLE:
      t = new Tensor(dtype, [values.length], Float64Array.from(values));
      break;
    case DataType.DT_INT32:
      t = new Tensor(dtype, [values.length], Int32Array.from(values, (v) => v | 0));
      break;
    case DataType.DT_BOOL:
      t = new Tensor(dtype, [values.length], Uint8Array.from(values, (v) => v > 0 ? 1 : 0));
      break;
    case DataType.DT_HALF:
      t = new Tensor(dtype, [values.length], Uint16Array.from(values, (v) => v & 0xffff));
      break;
    case DataType.DT_UINT32:
      t = new Tensor(dtype, [values.length], Uint32Array.from(values, (v) => v >>> 0));
      break;
    case DataType.DT_COMPLEX64:
      t = new Tensor(
        dtype,
        [values.length >> 1],
        Float32Array.from(values.slice(0, values.length & ~1)),
      );
      break;
    default:
      t = new Tensor(DataType.DT_FLOAT, [values.length], Float32Array.from(values));
  }
  const proto = tensorToProto(t, rng.int(4) === 0);
  proto.dtype = dtype;
  proto.tensorShape = { $typeName: "tensorflow.TensorShapeProto", dim: [], unknownRank: false };
  for (const d of shape) {
    proto.tensorShape.dim.push({
      $typeName: "tensorflow.TensorShapeProto.Dim",
      size: BigInt(d),
      name: "",
    });
  }
  if (rng.int(20) === 0) proto.tensorShape.dim[0] && (proto.tensorShape.dim[0].name = "batch");
  return proto;
}

/** A valid request for half_plus_two's x → y (batch 1 to 64, values or content, a filter). */
function validRequest(rng: Prng): PredictRequest {
  const rows = rng.pick([1, 2, 64]);
  const x = Tensor.float32(Array.from({ length: rows }, () => rng.next() * 10), [rows, 1]);
  return create(PredictRequestSchema, {
    modelSpec: {
      name: "m",
      signatureName: rng.pick(["", "serving_default"]),
      versionChoice: rng.int(2) === 0 ? { case: "version", value: { value: 7n } } : undefined,
    },
    inputs: { x: tensorToProto(x, rng.int(2) === 0) },
    outputFilter: rng.int(3) === 0 ? ["y"] : [],
  });
}

/** A random PredictRequest for the half_plus_two signatures. */
function randomRequest(rng: Prng): PredictRequest {
  if (rng.int(3) === 0) return validRequest(rng);
  const inputs: Record<string, TensorProto> = {};
  const count = rng.pick([1, 1, 1, 1, 0, 2]);
  for (let i = 0; i < count; i++) {
    inputs[rng.pick(["x", "x", "x", "y", "", "inputs"])] = randomInput(rng);
  }
  const version = rng.int(4);
  return create(PredictRequestSchema, {
    modelSpec: rng.int(20) === 0 ? undefined : {
      name: rng.pick(["m", "", "half_plus_two", "é"]),
      signatureName: rng.pick(["", "", "serving_default", "regress_x_to_y", "nope"]),
      versionChoice: version === 0
        ? { case: "version", value: { value: BigInt(rng.int(200)) } }
        : version === 1
        ? { case: "versionLabel", value: rng.pick(["stable", ""]) }
        : { case: undefined },
    },
    inputs,
    outputFilter: rng.int(3) === 0
      ? Array.from({ length: 1 + rng.int(3) }, () => rng.pick(["y", "y", "x", "nope"]))
      : [],
  });
}

Deno.test("the direct Predict path ends as the message path on random and mutated requests", async () => {
  const m = await model(TF1_2_VERSIONS);
  const rng = new Prng(1205);
  let direct = 0;
  let outputs = 0;
  const seen = new Set<string>();
  let refused = 0;
  let exhaustedDirect = 0;
  let undecodable = 0;
  for (let i = 0; i < 6000; i++) {
    const req = randomRequest(rng);
    let bytes: Uint8Array = toBinary(PredictRequestSchema, req);
    if (i % 3 === 2) bytes = rng.mutate(bytes);
    const limits = i % 5 === 4 ? SMALL_LIMITS : DEFAULT_DECODE_LIMITS;
    const options: ServableOptions = {
      decodeLimits: limits,
      enableSerializationAsTensorContent: i % 7 === 0,
      enableSignatureMethodNameCheck: i % 11 === 0,
    };
    const want = viaMessage(m, bytes, limits, options);
    const got = viaView(m, bytes, limits, options);
    assert.equal(got.outcome, want.outcome, `case ${i}`);
    if (got.direct) assert.equal(got.spec, want.spec, `case ${i}: model spec`);
    if (got.direct) direct++;
    if (got.outputs) outputs++;
    seen.add(want.outcome.slice(0, 40));
    if (got.direct && want.outcome.startsWith("error 8:")) exhaustedDirect++;
    if (want.outcome.startsWith("refused")) refused++;
    if (want.outcome === "undecodable") undecodable++;
  }
  // Hostile sizes were met: refused by the message cost estimate, over a tensor limit after a
  // direct read, and bytes that do not parse.
  assert.ok(refused > 0, "some requests refused before decoding");
  assert.ok(exhaustedDirect > 0, "some tensors over a decode limit after a direct read");
  assert.ok(undecodable > 0, "some requests undecodable");
  // Most requests are read directly and many answered straight from the tensors; the cases
  // cover many distinct answers (responses and errors).
  assert.ok(direct > 3000, `${direct} read directly`);
  assert.ok(outputs > 300, `${outputs} answered directly`);
  assert.ok(seen.size > 30, `${seen.size} distinct outcomes`);
});

Deno.test("a plain Predict request takes the direct path, batch 1 and 64, values or content", async () => {
  const m = await model(TF1_2_VERSIONS);
  for (const rows of [1, 64]) {
    for (const content of [false, true]) {
      const x = Tensor.float32(Array.from({ length: rows }, (_, i) => i / 2), [rows, 1]);
      const bytes = toBinary(
        PredictRequestSchema,
        create(PredictRequestSchema, {
          modelSpec: { name: "m", versionChoice: { case: "version", value: { value: 7n } } },
          inputs: { x: tensorToProto(x, content) },
        }),
      );
      const view = readPredictRequest(bytes, DEFAULT_DECODE_LIMITS);
      assert.ok(view !== undefined);
      const res = runPrepared(m, preparePredictView(m, 7, "m", view, {}));
      assert.ok(res instanceof PredictOutputs);
      assert.deepEqual(
        Array.from(res.tensors[0].data as Float32Array),
        Array.from(x.data as Float32Array, (v) => v / 2 + 2),
      );
      assert.equal(
        hex(encodePredictOutputs(res, true)),
        viaMessage(m, bytes, DEFAULT_DECODE_LIMITS, {}).outcome,
      );
    }
  }
});

Deno.test("encodePredictOutputs() writes the response map in a JS record's key order", () => {
  const t = (v: number) => Tensor.float32([v], [1]);
  for (
    const aliases of [
      ["b", "a"],
      ["10", "9", "a", "0"],
      ["é", "z", "4294967295", "4294967294"],
      ["", "x"],
    ]
  ) {
    const tensors = aliases.map((_, i) => t(i));
    for (const version of [0, 1, 2 ** 40]) {
      const out = new PredictOutputs("", "sig", version, aliases, tensors, false);
      const res = create(PredictResponseSchema, {
        modelSpec: {
          name: "",
          signatureName: "sig",
          versionChoice: { case: "version", value: { value: BigInt(version) } },
        },
      });
      aliases.forEach((a, i) => res.outputs[a] = tensorToProto(tensors[i]));
      assert.equal(
        hex(encodePredictOutputs(out)),
        hex(toBinary(PredictResponseSchema, res)),
        JSON.stringify({ aliases, version }),
      );
    }
  }
});

Deno.test("encodePredictOutputPieces() is the response in pieces, large values in place", () => {
  const rng = new Prng(7);
  const tensor = (dtype: DataType, n: number) =>
    dtype === DataType.DT_FLOAT
      ? new Tensor(dtype, [n], Float32Array.from({ length: n }, () => rng.int(1000) / 7))
      : dtype === DataType.DT_DOUBLE
      ? new Tensor(dtype, [n], Float64Array.from({ length: n }, () => rng.int(1000) / 7))
      : new Tensor(dtype, [n], Int32Array.from({ length: n }, () => rng.int(1000) - 500));
  for (const useContent of [false, true]) {
    for (let round = 0; round < 20; round++) {
      const k = 1 + rng.int(4);
      const aliases = Array.from({ length: k }, (_, i) => `out${i}`);
      const tensors = aliases.map(() =>
        tensor(
          rng.pick([DataType.DT_FLOAT, DataType.DT_DOUBLE, DataType.DT_INT32]),
          rng.pick([0, 1, 100, 1023, 1024, 5000]),
        )
      );
      const out = new PredictOutputs("m", "s", 3, aliases, tensors, useContent);
      const whole = encodePredictOutputs(out);
      const pieces = encodePredictOutputPieces(out);
      const joined = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of pieces) {
        joined.set(p, o);
        o += p.length;
      }
      assert.equal(hex(joined), hex(whole), JSON.stringify({ useContent, round }));
      // Values of 4 KiB and more written as their own bytes are the tensors' storage itself.
      for (const t of tensors) {
        const own = t.data as Float32Array;
        const bytesItself = t.dtype !== DataType.DT_INT32 || useContent;
        const inPlace = pieces.some((p) => p.buffer === own.buffer);
        assert.equal(inPlace, bytesItself && own.byteLength >= 4096);
      }
    }
  }
});

Deno.test("largeValuesOffset() finds an input's first large run of values as bytes arrive", () => {
  const content = new Uint8Array(4096).map((_, i) => i);
  const bytes = toBinary(
    PredictRequestSchema,
    create(PredictRequestSchema, {
      modelSpec: { name: "model", signatureName: "serving_default" },
      inputs: {
        small: { dtype: DataType.DT_FLOAT, tensorShape: { dim: [{ size: 2n }] }, floatVal: [1, 2] },
        x: {
          dtype: DataType.DT_FLOAT,
          tensorShape: { dim: [{ size: 1024n }] },
          tensorContent: content,
        },
      },
    } as never),
  );
  // Where the run is: its bytes follow, equal to the content.
  let at = -1;
  for (let i = 0; i + content.length <= bytes.length && at < 0; i++) {
    if (bytes[i] === 0 && bytes[i + 1] === 1 && bytes[i + 4095] === 255) at = i;
  }
  assert.ok(at > 0);
  assert.equal(largeValuesOffset(bytes, bytes.length), at);
  assert.equal(largeValuesOffset(bytes, at), at, "known once its tag and length are in");
  assert.equal(largeValuesOffset(bytes, at - 1), NEED_MORE);
  assert.equal(largeValuesOffset(bytes, 3), NEED_MORE);
  // Packed floats count too; a request with no large run, or not a PredictRequest, has none.
  const floats = toBinary(
    PredictRequestSchema,
    create(PredictRequestSchema, {
      inputs: {
        x: { dtype: DataType.DT_FLOAT, floatVal: Array.from({ length: 300 }, (_, i) => i) },
      },
    } as never),
  );
  const f = largeValuesOffset(floats, floats.length);
  assert.ok(f > 0);
  assert.equal(new DataView(floats.buffer, floats.byteOffset + f).getFloat32(4, true), 1);
  const small = toBinary(
    PredictRequestSchema,
    create(PredictRequestSchema, { inputs: { x: { floatVal: [1, 2, 3] } } } as never),
  );
  assert.equal(largeValuesOffset(small, small.length), NEED_MORE);
  assert.equal(largeValuesOffset(new Uint8Array([0x0b, 1, 2]), 3), NO_RUN, "a group wire type");
});
