/**
 * Fuzz targets, one per decoder: each runs `n` seeded cases and throws on the first case that
 * does not end in a result or a clean error (a ServingError, or the decoder's own error type),
 * or whose result holds more than the decode limits allow. Used by `tests/fuzz/decoders_test.ts`
 * (a few thousand cases each) and `deno task fuzz` (many more).
 *
 * @module
 */
import { create, type DescMessage, toBinary } from "@bufbuild/protobuf";
import { fileURLToPath } from "node:url";
import { TensorProtoSchema } from "../../src/proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { SavedModelSchema } from "../../src/proto/gen/tensorflow/core/protobuf/saved_model_pb.ts";
import { ClassificationRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/classification_pb.ts";
import { GetModelMetadataRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts";
import { GetModelStatusRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import { MultiInferenceRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/inference_pb.ts";
import { ReloadConfigRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/model_management_pb.ts";
import { PredictRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { PredictionLogSchema } from "../../src/proto/gen/tensorflow_serving/apis/prediction_log_pb.ts";
import { RegressionRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/regression_pb.ts";
import { ServingError } from "../../src/errors.ts";
import { decodeBinary, WireDecodeError } from "../../src/proto/binary.ts";
import {
  decodeRequest,
  RefusedRequest,
  UNDECODABLE,
} from "../../src/api/grpc/service_definition.ts";
import {
  fillClassificationRequestFromJson,
  fillPredictRequestFromJson,
} from "../../src/api/rest/json_tensor.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { decodeExample, encodeExample } from "../../src/tensor/example.ts";
import { DecodeBudget, type DecodeLimits } from "../../src/tensor/limits.ts";
import { type Tensor } from "../../src/tensor/tensor.ts";
import { tensorFromProto } from "../../src/tensor/tensor_proto.ts";
import { inputToExamplesTensor } from "../../src/servables/input.ts";
import { readTFRecords, writeTFRecords } from "../../src/saved_model/tfrecord.ts";
import { TensorBundle } from "../../src/saved_model/tensor_bundle.ts";
import { readTableMap, writeTable } from "../../src/saved_model/table.ts";
import { Prng } from "./prng.ts";

/** Small limits, so that cases reach them often. */
export const FUZZ_LIMITS: DecodeLimits = {
  maxRequestBytes: 64 << 20,
  maxExpansion: 16,
  expansionFloorBytes: 1 << 20,
};

/** What a run saw: how many cases ended in a result and how many in a clean error. */
export interface FuzzStats {
  ok: number;
  errors: number;
}

/** Runs one case: a result or a clean error counts; anything else fails the run. */
function run(
  stats: FuzzStats,
  what: string,
  seed: number,
  i: number,
  fn: () => void,
  clean: (e: unknown) => boolean = (e) => e instanceof ServingError,
): void {
  try {
    fn();
    stats.ok++;
  } catch (e) {
    if (!clean(e)) {
      throw new Error(`${what}: seed ${seed} case ${i} threw ${String(e)}`, { cause: e });
    }
    stats.errors++;
  }
}

/** Bytes a decoded tensor holds. */
function tensorBytes(t: Tensor): number {
  const d = t.data as { byteLength?: number; length: number };
  return d.byteLength ?? d.length * 24;
}

/** Decodes every input of a PredictRequest under one budget, checking the budget held. */
function decodeInputs(inputs: Record<string, import("../../src/proto/mod.ts").TensorProto>) {
  const budget = new DecodeBudget(FUZZ_LIMITS);
  let total = 0;
  for (const [name, p] of Object.entries(inputs)) {
    const t = tensorFromProto(p, `input "${name}"`, budget);
    if (t.size !== t.shape.reduce((a, b) => a * b, 1)) throw new Error("size mismatch");
    total += tensorBytes(t);
  }
  if (total > FUZZ_LIMITS.maxRequestBytes) throw new Error(`decoded ${total} bytes`);
}

function validRequests(): [DescMessage, Uint8Array][] {
  const spec = {
    name: "m",
    signatureName: "s",
    versionChoice: { case: "version", value: { value: 3n } },
  };
  const example = encodeExample({ x: { floatList: [1, 2] }, s: { bytesList: ["a"] } });
  const input = {
    kind: {
      case: "exampleListWithContext",
      value: {
        examples: [{
          features: { feature: { x: { kind: { case: "floatList", value: { value: [1] } } } } },
        }],
        context: {
          features: { feature: { c: { kind: { case: "int64List", value: { value: [5n] } } } } },
        },
      },
    },
  } as never;
  void example;
  return [
    [
      PredictRequestSchema,
      toBinary(
        PredictRequestSchema,
        create(PredictRequestSchema, {
          modelSpec: spec as never,
          inputs: {
            x: {
              dtype: DataType.DT_FLOAT,
              tensorShape: { dim: [{ size: 2n }, { size: 3n }] },
              floatVal: [1, 2, 3],
            },
            s: {
              dtype: DataType.DT_STRING,
              tensorShape: { dim: [{ size: 2n }] },
              stringVal: [new Uint8Array([104])],
            },
            i: {
              dtype: DataType.DT_INT64,
              tensorShape: { dim: [{ size: 4n }] },
              int64Val: [1n, -2n],
            },
            c: {
              dtype: DataType.DT_INT32,
              tensorShape: { dim: [{ size: 2n }] },
              tensorContent: new Uint8Array(8),
            },
          },
          outputFilter: ["y"],
        }),
      ),
    ],
    [
      ClassificationRequestSchema,
      toBinary(
        ClassificationRequestSchema,
        create(ClassificationRequestSchema, { modelSpec: spec as never, input }),
      ),
    ],
    [
      RegressionRequestSchema,
      toBinary(
        RegressionRequestSchema,
        create(RegressionRequestSchema, { modelSpec: spec as never, input }),
      ),
    ],
    [
      MultiInferenceRequestSchema,
      toBinary(
        MultiInferenceRequestSchema,
        create(MultiInferenceRequestSchema, {
          tasks: [{ modelSpec: spec as never, methodName: "tensorflow/serving/classify" }],
          input,
        }),
      ),
    ],
    [
      GetModelMetadataRequestSchema,
      toBinary(
        GetModelMetadataRequestSchema,
        create(GetModelMetadataRequestSchema, {
          modelSpec: spec as never,
          metadataField: ["signature_def"],
        }),
      ),
    ],
    [
      GetModelStatusRequestSchema,
      toBinary(
        GetModelStatusRequestSchema,
        create(GetModelStatusRequestSchema, { modelSpec: spec as never }),
      ),
    ],
    [
      ReloadConfigRequestSchema,
      toBinary(
        ReloadConfigRequestSchema,
        create(ReloadConfigRequestSchema, {
          config: {
            config: { case: "modelConfigList", value: { config: [{ name: "a", basePath: "/b" }] } },
          },
        }),
      ),
    ],
  ];
}

/** gRPC request bytes of every served method, mutated; Predict inputs and Input decoded on. */
export function fuzzGrpcRequests(seed: number, n: number): FuzzStats {
  const rng = new Prng(seed);
  const stats = { ok: 0, errors: 0 };
  const bases = validRequests();
  for (let i = 0; i < n; i++) {
    const [schema, base] = rng.pick(bases);
    const bytes = rng.mutate(base);
    run(stats, `gRPC ${schema.typeName}`, seed, i, () => {
      const m = decodeRequest(schema, bytes, FUZZ_LIMITS);
      if (m === UNDECODABLE || m instanceof RefusedRequest) throw new ServingError(13, "");
      if (schema === PredictRequestSchema) {
        decodeInputs((m as unknown as { inputs: Record<string, never> }).inputs);
      } else if ("input" in (m as object)) {
        inputToExamplesTensor(
          (m as unknown as { input: never }).input,
          new DecodeBudget(FUZZ_LIMITS),
        );
      }
    });
  }
  return stats;
}

const DTYPES = [
  ...Object.values(DataType).filter((v): v is number => typeof v === "number"),
  101,
  119,
  1000,
  -1,
];

/** Random TensorProtos: any dtype (reference types too), absurd shapes, few or many values. */
export function fuzzTensorProtos(seed: number, n: number): FuzzStats {
  const rng = new Prng(seed);
  const stats = { ok: 0, errors: 0 };
  const dims = [0n, 1n, 2n, 3n, 7n, 1000n, 100_000n, 500_000_000n, 2n ** 32n, 2n ** 62n, -1n];
  for (let i = 0; i < n; i++) {
    const rank = rng.pick([0, 1, 2, 3, 4, 8, 65, 254, 255, 1000]);
    const p = create(TensorProtoSchema, {
      dtype: rng.pick(DTYPES),
      tensorShape: {
        dim: Array.from({ length: rank }, () => ({ size: rank > 8 ? 1n : rng.pick(dims) })),
      },
    });
    const k = rng.pick([0, 1, 2, 5, 100]);
    switch (rng.int(6)) {
      case 0:
        p.floatVal = Array.from({ length: k }, () => rng.next());
        break;
      case 1:
        p.int64Val = Array.from({ length: k }, () => BigInt(rng.int(1000)));
        break;
      case 2:
        p.stringVal = Array.from({ length: k }, () => rng.bytes(rng.int(4)));
        break;
      case 3:
        p.tensorContent = rng.bytes(rng.pick([0, 1, 4, 8, 24, 4000]));
        break;
      case 4:
        p.intVal = Array.from({ length: k }, () => rng.int(100));
        p.boolVal = Array.from({ length: k }, () => rng.int(2) === 1);
        break;
      default:
        p.halfVal = Array.from({ length: k }, () => rng.int(65536));
        p.scomplexVal = Array.from({ length: 2 * k }, () => rng.next());
    }
    run(stats, "TensorProto", seed, i, () => decodeInputs({ x: p }));
  }
  return stats;
}

const enc = new TextEncoder();
const JSON_BASES = [
  '{"instances": [[1.0, 2.0], [3.0, 4.0]]}',
  '{"signature_name": "s", "instances": [{"x": [1, 2], "s": {"b64": "aGk="}, "i": 3}]}',
  '{"inputs": {"x": [[1.5, NaN], [Infinity, -2]], "s": ["a", "b"], "i": [1, 2]}}',
  '{"inputs": [[[1]]]}',
  '{"examples": [{"x": [1, 2.5], "s": "a", "i": 3}], "context": {"c": [1]}}',
];
const INFOS = [
  new Map([["x", DataType.DT_FLOAT]]),
  new Map([
    ["x", DataType.DT_FLOAT],
    ["s", DataType.DT_STRING],
    ["i", DataType.DT_INT64],
  ]),
  new Map([["x", DataType.DT_INT32]]),
];

/** REST JSON bodies (Predict row and columnar, Classify), mutated. */
export function fuzzRestJson(seed: number, n: number): FuzzStats {
  const rng = new Prng(seed);
  const stats = { ok: 0, errors: 0 };
  for (let i = 0; i < n; i++) {
    let body = rng.mutate(enc.encode(rng.pick(JSON_BASES)));
    if (rng.int(20) === 0) {
      // Deep nesting, as a hostile client sends it.
      const d = 1 + rng.int(20_000);
      body = enc.encode(`{"instances": ${"[".repeat(d)}1${"]".repeat(d)}}`);
    }
    const infos = rng.pick(INFOS);
    run(stats, "REST JSON", seed, i, () => {
      if (rng.int(3) === 0) {
        fillClassificationRequestFromJson(body, create(ClassificationRequestSchema));
        return;
      }
      const req = create(PredictRequestSchema, { modelSpec: { name: "m" } });
      fillPredictRequestFromJson(body, () => infos, req);
      decodeInputs(req.inputs);
    });
  }
  return stats;
}

/** Serialized tf.Examples, mutated, through the fast-path decoder. */
export function fuzzExamples(seed: number, n: number): FuzzStats {
  const rng = new Prng(seed);
  const stats = { ok: 0, errors: 0 };
  const bases = [
    encodeExample({
      x: { floatList: [1, 2, 3] },
      s: { bytesList: ["ab", "c"] },
      i: { int64List: [1n, -5n] },
    }),
    encodeExample({ x: { floatList: [1] }, i: { int64List: [7] } }, { packed: false }),
    encodeExample({ e: {} }),
  ];
  for (let i = 0; i < n; i++) {
    const bytes = rng.mutate(rng.pick(bases));
    run(stats, "tf.Example", seed, i, () => void decodeExample(bytes));
  }
  return stats;
}

const HALF_PLUS_TWO = fileURLToPath(
  new URL(
    "../../../shared/testdata/tf-serving/saved_model_half_plus_two_cpu/00000123",
    import.meta.url,
  ),
);

/** `saved_model.pb` of half_plus_two, mutated, parsed as the loader parses it. */
export function fuzzSavedModel(seed: number, n: number): FuzzStats {
  const rng = new Prng(seed);
  const stats = { ok: 0, errors: 0 };
  const base = Deno.readFileSync(`${HALF_PLUS_TWO}/saved_model.pb`);
  for (let i = 0; i < n; i++) {
    const bytes = rng.mutate(base);
    run(
      stats,
      "saved_model.pb",
      seed,
      i,
      () => void decodeBinary(SavedModelSchema, bytes, { maxCost: 64 * bytes.length + (1 << 20) }),
      (e) => e instanceof WireDecodeError,
    );
  }
  return stats;
}

/** The TensorBundle index of half_plus_two, mutated; every entry's dtype, shape and data read. */
export function fuzzTensorBundle(seed: number, n: number): FuzzStats {
  const rng = new Prng(seed);
  const stats = { ok: 0, errors: 0 };
  const prefix = `${HALF_PLUS_TWO}/variables/variables`;
  const base = Deno.readFileSync(`${prefix}.index`);
  const entries = [...readTableMap(base, "index")];
  for (let i = 0; i < n; i++) {
    // Mutate the file, or one entry (header or tensor) inside a valid table.
    const bytes = rng.int(2) === 0 ? rng.mutate(base) : writeTable(
      entries.map(([k, v]) => [k, rng.int(entries.length) === 0 ? rng.mutate(v) : v] as const),
    );
    run(stats, "TensorBundle index", seed, i, () => {
      const bundle = TensorBundle.fromIndex(prefix, bytes);
      try {
        for (const k of bundle.keys()) {
          bundle.dtypeAndShape(k);
          bundle.readSync(k);
        }
      } finally {
        bundle.close();
      }
    });
  }
  return stats;
}

/** TFRecord warmup files of PredictionLogs, mutated, read and parsed as warmup does. */
export function fuzzWarmupRecords(seed: number, n: number): FuzzStats {
  const rng = new Prng(seed);
  const stats = { ok: 0, errors: 0 };
  const log = toBinary(
    PredictionLogSchema,
    create(PredictionLogSchema, {
      logType: {
        case: "predictLog",
        value: { request: create(PredictRequestSchema, validPredict()) },
      },
    }),
  );
  const base = writeTFRecords([log, log]);
  for (let i = 0; i < n; i++) {
    // Mutate the file, or a record inside a valid file (its CRCs recomputed).
    const bytes = rng.int(2) === 0 ? rng.mutate(base) : writeTFRecords([rng.mutate(log)]);
    run(stats, "TFRecord warmup", seed, i, () => {
      for (const record of readTFRecords(bytes, "warmup", 1000)) {
        let parsed;
        try {
          parsed = decodeBinary(PredictionLogSchema, record, { maxCost: 16 << 20 });
        } catch (e) {
          if (e instanceof WireDecodeError) throw new ServingError(3, e.message);
          throw e;
        }
        if (parsed.logType.case === "predictLog") {
          decodeInputs(parsed.logType.value.request?.inputs ?? {});
        }
      }
    });
  }
  return stats;
}

function validPredict() {
  return {
    modelSpec: { name: "m" },
    inputs: {
      x: { dtype: DataType.DT_FLOAT, tensorShape: { dim: [{ size: 3n }] }, floatVal: [1, 2] },
    },
  };
}

/** Every target, by name. */
export const TARGETS: Record<string, (seed: number, n: number) => FuzzStats> = {
  grpc: fuzzGrpcRequests,
  tensor_proto: fuzzTensorProtos,
  rest_json: fuzzRestJson,
  example: fuzzExamples,
  saved_model: fuzzSavedModel,
  tensor_bundle: fuzzTensorBundle,
  warmup: fuzzWarmupRecords,
};
