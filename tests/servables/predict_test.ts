import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  type TensorProto,
  TensorProtoSchema,
} from "../../src/proto/gen/tensorflow/core/framework/tensor_pb.ts";
import {
  type PredictRequest,
  PredictRequestSchema,
} from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { Code } from "../../src/errors.ts";
import type { Model } from "../../src/runtime/model.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorFromProto, tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { predict } from "../../src/servables/predict.ts";
import { assertModelSpec, assertServingError, model, TF1, TF2, VERSION } from "./fixtures.ts";

/** Upstream's VerifyPredictRequest input: x = [2.0] of shape [1], as float_val. */
function xFloatVal(values: number[] = [2], dims: number[] = [values.length]): TensorProto {
  return create(TensorProtoSchema, {
    dtype: DataType.DT_FLOAT,
    floatVal: values,
    tensorShape: { dim: dims.map((size) => ({ size: BigInt(size) })) },
  });
}

function request(init: {
  signatureName?: string;
  inputs?: Record<string, TensorProto>;
  outputFilter?: string[];
}): PredictRequest {
  return create(PredictRequestSchema, {
    modelSpec: { name: "default", signatureName: init.signatureName ?? "" },
    inputs: init.inputs ?? { x: xFloatVal() },
    outputFilter: init.outputFilter ?? [],
  });
}

function run(m: Model, req: PredictRequest) {
  return predict(m, VERSION, "default", req);
}

Deno.test("predict() computes y = 0.5x + 2 as upstream's VerifyPredictRequest expects", async (t) => {
  for (const rel of [TF1, TF2]) {
    await t.step(rel, async () => {
      const m = await model(rel);
      const res = run(m, request({ signatureName: "serving_default", outputFilter: ["y"] }));
      assert.deepEqual(Object.keys(res.outputs), ["y"]);
      const y = res.outputs.y;
      assert.equal(y.dtype, DataType.DT_FLOAT);
      assert.deepEqual(y.floatVal, [3]);
      assert.equal(y.tensorContent.length, 0);
      assertModelSpec(res.modelSpec, "default", "serving_default", VERSION);
    });
  }
});

Deno.test("predict() resolves an empty signature name to serving_default", async () => {
  const res = run(await model(TF1), request({}));
  assert.equal(res.modelSpec?.signatureName, "serving_default");
  assert.deepEqual(res.outputs.y.floatVal, [3]);
});

Deno.test("predict() reads tensor_content inputs and keeps the batch shape", async () => {
  const x = tensorToProto(Tensor.float32([1, 2, 3], [3, 1]), true);
  assert.ok(x.tensorContent.length === 12 && x.floatVal.length === 0);
  const res = run(await model(TF1), request({ inputs: { x } }));
  const y = tensorFromProto(res.outputs.y);
  assert.deepEqual(y.shape, [3, 1]);
  assert.deepEqual(Array.from(y.data as Float32Array), [2.5, 3, 3.5]);
  assert.deepEqual(res.outputs.y.floatVal, [2.5, 3, 3.5]);
});

Deno.test("predict() does not check fed shapes against the signature, as TensorFlow", async () => {
  // Upstream's REST test sends {"instances": [2.0, 3.0, 4.0]}: shape [3] for x of [-1,1].
  const res = run(await model(TF1), request({ inputs: { x: xFloatVal([2, 3, 4]) } }));
  assert.deepEqual(res.outputs.y.floatVal, [3, 3.5, 4]);
});

Deno.test("predict() fills a missing input from the signature's defaults (TF2)", async () => {
  // The TF2 export's serving_default has a default x = [0].
  const res = run(await model(TF2), request({ inputs: {} }));
  assert.deepEqual(res.outputs.y.floatVal, [2]);
});

Deno.test("predict() with enableSerializationAsTensorContent writes tensor_content", async () => {
  const res = predict(await model(TF1), VERSION, "default", request({}), {
    enableSerializationAsTensorContent: true,
  });
  const y = res.outputs.y;
  assert.deepEqual(y.floatVal, []);
  assert.deepEqual(
    Array.from(new Float32Array(y.tensorContent.slice().buffer)),
    [3],
  );
  assert.deepEqual(y.tensorShape?.dim.map((d) => d.size), [1n]);
});

Deno.test("predict() rejects requests as upstream's RunPredict does", async (t) => {
  const tf1 = await model(TF1);
  const tf2 = await model(TF2);

  await t.step("no model spec", () => {
    const req = request({});
    req.modelSpec = undefined;
    assertServingError(() => run(tf1, req), Code.INVALID_ARGUMENT, "Missing ModelSpec");
  });
  await t.step("unknown signature", () => {
    assertServingError(
      () => run(tf1, request({ signatureName: "nope" })),
      Code.FAILED_PRECONDITION,
      'Serving signature key "nope" not found.',
    );
  });
  await t.step("an extra input", () => {
    assertServingError(
      () => run(tf1, request({ inputs: { x: xFloatVal(), z: xFloatVal() } })),
      Code.INVALID_ARGUMENT,
      "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. " +
        "Missing but required: {}.",
    );
  });
  await t.step("no inputs, no defaults", () => {
    assertServingError(
      () => run(tf1, request({ inputs: {} })),
      Code.INVALID_ARGUMENT,
      "input size does not match signature: 0!=1 len({}) != len({x}). Sent extra: {}. " +
        "Missing but required: {x}.",
    );
  });
  await t.step("a wrong alias, no defaults", () => {
    assertServingError(
      () => run(tf1, request({ inputs: { z: xFloatVal() } })),
      Code.INVALID_ARGUMENT,
      "Signature input alias: x(feed name: x:0) not found in request and no default value " +
        "provided. Inputs expected to be in the request {z}, or default input alias set: ",
    );
  });
  await t.step("a wrong alias beside a default", () => {
    assertServingError(
      () => run(tf2, request({ inputs: { z: xFloatVal() } })),
      Code.INVALID_ARGUMENT,
      "Inputs contains invalid name. Used request inputs: , request input: z",
    );
  });
  await t.step("an unparsable tensor", () => {
    const x = create(TensorProtoSchema, {
      dtype: DataType.DT_FLOAT,
      tensorShape: { dim: [{ size: 2n }] },
      tensorContent: new Uint8Array(3),
    });
    assertServingError(
      () => run(tf1, request({ inputs: { x } })),
      Code.INVALID_ARGUMENT,
      "tensor parsing error: x",
    );
  });
  await t.step("a wrong dtype", () => {
    const x = tensorToProto(Tensor.int32([2], [1]));
    assertServingError(
      () => run(tf1, request({ inputs: { x } })),
      Code.INVALID_ARGUMENT,
      "Expects arg[0] to be float but int32 is provided",
    );
  });
  await t.step("an unknown output in the filter", () => {
    assertServingError(
      () => run(tf1, request({ outputFilter: ["z"] })),
      Code.INVALID_ARGUMENT,
      "output tensor alias not found in signature: z Outputs expected to be in the set {y}.",
    );
  });
  await t.step("a duplicate output in the filter", () => {
    assertServingError(
      () => run(tf1, request({ outputFilter: ["y", "y"] })),
      Code.INVALID_ARGUMENT,
      "duplicate output tensor alias: y",
    );
  });
});

Deno.test("predict() checks method_name only with enableSignatureMethodNameCheck", async () => {
  const tf1 = await model(TF1);
  // A classify signature is a valid Predict target either way.
  const req = create(PredictRequestSchema, {
    modelSpec: { name: "default", signatureName: "regress_x2_to_y3" },
    inputs: { inputs: xFloatVal([2]) },
  });
  const res = predict(tf1, VERSION, "default", req, { enableSignatureMethodNameCheck: true });
  assert.deepEqual(res.outputs.outputs.floatVal, [4]); // y3 = 0.5 * x2 + 3

  // A signature with another method_name: a stand-in, since the testdata has none.
  const serving = tf1.signatures.get("serving_default")!;
  const odd = Object.create(serving, { methodName: { value: "tensorflow/serving/other" } });
  const fake = { signatures: new Map([["odd", odd]]) } as unknown as Model;
  const oddReq = request({ signatureName: "odd" });
  assertServingError(
    () => predict(fake, VERSION, "default", oddReq, { enableSignatureMethodNameCheck: true }),
    Code.INTERNAL,
    "Expected prediction signature method_name to be one of {tensorflow/serving/predict, " +
      "tensorflow/serving/classify, tensorflow/serving/regress}. Was: tensorflow/serving/other",
  );
});
