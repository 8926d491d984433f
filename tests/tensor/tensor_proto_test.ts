import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { TensorProtoSchema } from "../../src/proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { DecodeBudget, MAX_DIMS } from "../../src/tensor/limits.ts";
import { tensorFromProto } from "../../src/tensor/tensor_proto.ts";

function proto(dtype: DataType, dims: (number | bigint)[], extra: Record<string, unknown> = {}) {
  return create(TensorProtoSchema, {
    dtype,
    tensorShape: { dim: dims.map((d) => ({ size: BigInt(d) })) },
    ...extra,
  });
}

function throwsCode(fn: () => unknown, code: Code, text?: RegExp): ServingError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    if (text) assert.match(e.message, text);
    return e;
  }
  assert.fail(`expected ${Code[code]}`);
}

Deno.test("tensorFromProto() refuses a huge DT_STRING shape without allocating", () => {
  const e = throwsCode(
    () =>
      tensorFromProto(proto(DataType.DT_STRING, [500_000_000]), 'input "x"', new DecodeBudget()),
    Code.RESOURCE_EXHAUSTED,
  );
  assert.match(e.message, /^Cannot decode input "x": it needs 12000000000 bytes/);
  assert.match(e.message, /over the limit of 1073741824 bytes per request/);
  throwsCode(
    () => tensorFromProto(proto(DataType.DT_STRING, [1_000_000]), "x", new DecodeBudget()),
    Code.RESOURCE_EXHAUSTED,
    /--tensor_expansion_floor_bytes=16777216/,
  );
});

Deno.test("tensorFromProto() bounds the repeat-last-value rule by the expansion limit", () => {
  throwsCode(
    () =>
      tensorFromProto(
        proto(DataType.DT_FLOAT, [100_000_000], { floatVal: [1] }),
        "x",
        new DecodeBudget(),
      ),
    Code.RESOURCE_EXHAUSTED,
  );
  throwsCode(
    () =>
      tensorFromProto(
        proto(DataType.DT_FLOAT, [500_000_000], { floatVal: [1] }),
        "x",
        new DecodeBudget(),
      ),
    Code.RESOURCE_EXHAUSTED,
    /per request/,
  );
  // Under the floor, the rule stays: values given, then the last repeated.
  const t = tensorFromProto(proto(DataType.DT_FLOAT, [4], { floatVal: [1, 2] }));
  assert.deepEqual([...(t.data as Float32Array)], [1, 2, 2, 2]);
  const z = tensorFromProto(proto(DataType.DT_INT64, [1000, 1000]));
  assert.equal((z.data as BigInt64Array).length, 1_000_000);
  const b = tensorFromProto(proto(DataType.DT_BOOL, [3], { boolVal: [false, true] }));
  assert.deepEqual([...(b.data as Uint8Array)], [0, 1, 1]);
  // 4 MiB of floats written out decodes at any size up to the request cap.
  const big = new Float32Array(5 << 20);
  const c = tensorFromProto(
    proto(DataType.DT_FLOAT, [big.length], {
      tensorContent: new Uint8Array(big.buffer),
    }),
    "x",
    new DecodeBudget({ maxRequestBytes: 1 << 30, maxExpansion: 16, expansionFloorBytes: 1024 }),
  );
  assert.equal(c.size, big.length);
});

Deno.test("tensorFromProto() checks shapes as TensorShape::IsValidShape", () => {
  throwsCode(
    () => tensorFromProto(proto(DataType.DT_FLOAT, [2n ** 32n, 2n ** 32n, 0])),
    Code.INVALID_ARGUMENT,
    /Shape \[4294967296,4294967296,0\] is too large \(more than 2\*\*63 - 1 entries\)/,
  );
  throwsCode(
    () => tensorFromProto(proto(DataType.DT_FLOAT, [-1, 2])),
    Code.INVALID_ARGUMENT,
    /Shape \[\?,2\] is not fully defined/,
  );
  throwsCode(
    () => tensorFromProto(proto(DataType.DT_FLOAT, new Array(MAX_DIMS + 1).fill(1))),
    Code.INVALID_ARGUMENT,
    /has too many dimensions/,
  );
  throwsCode(
    () => tensorFromProto(proto(DataType.DT_FLOAT, new Array(100_000).fill(0))),
    Code.INVALID_ARGUMENT,
    /has too many dimensions/,
  );
  // 254 dims are fine; so is a zero-size tensor whose product never overflows.
  assert.equal(tensorFromProto(proto(DataType.DT_FLOAT, new Array(MAX_DIMS).fill(1))).size, 1);
  assert.equal(tensorFromProto(proto(DataType.DT_FLOAT, [0, 2n ** 62n])).size, 0);
});

Deno.test("tensorFromProto() refuses reference, invalid and unknown dtypes", () => {
  for (const dtype of [101, 120, 0, 99, 1000]) {
    throwsCode(() => tensorFromProto(proto(dtype, [1])), Code.INVALID_ARGUMENT);
    throwsCode(() => tensorFromProto(proto(dtype, [0])), Code.INVALID_ARGUMENT);
  }
});

Deno.test("tensorFromProto() checks tensor_content's length before the limit", () => {
  throwsCode(
    () =>
      tensorFromProto(
        proto(DataType.DT_FLOAT, [100_000_000], { tensorContent: new Uint8Array(4) }),
      ),
    Code.INVALID_ARGUMENT,
    /tensor_content/,
  );
});

Deno.test("DecodeBudget charges a request's tensors together", () => {
  const budget = new DecodeBudget({
    maxRequestBytes: 1000,
    maxExpansion: 16,
    expansionFloorBytes: 800,
  });
  tensorFromProto(proto(DataType.DT_FLOAT, [150]), "a", budget);
  assert.equal(budget.used, 600);
  throwsCode(
    () => tensorFromProto(proto(DataType.DT_FLOAT, [150]), "b", budget),
    Code.RESOURCE_EXHAUSTED,
    /Cannot decode b: with it the request's tensors need 1200 bytes/,
  );
});

Deno.test("tensorFromProto() without a budget (a graph's Const) keeps TF's unbounded fill", () => {
  const t = tensorFromProto(proto(DataType.DT_FLOAT, [3000, 3000], { floatVal: [0.5] }));
  assert.equal((t.data as Float32Array)[8_999_999], 0.5);
  // The shape checks still apply.
  throwsCode(() => tensorFromProto(proto(101, [1])), Code.INVALID_ARGUMENT);
});
