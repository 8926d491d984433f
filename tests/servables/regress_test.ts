import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import type { Input } from "../../src/proto/gen/tensorflow_serving/apis/input_pb.ts";
import {
  type RegressionRequest,
  RegressionRequestSchema,
} from "../../src/proto/gen/tensorflow_serving/apis/regression_pb.ts";
import { Code } from "../../src/errors.ts";
import type { Model } from "../../src/runtime/model.ts";
import { signatureDebugString } from "../../src/servables/model_spec.ts";
import { regress } from "../../src/servables/regress.ts";
import {
  assertModelSpec,
  assertServingError,
  example,
  exampleList,
  exampleListWithContext,
  model,
  TF1,
  TF1_2_VERSIONS,
  TF2,
  VERSION,
} from "./fixtures.ts";

function request(signatureName: string, input?: Input): RegressionRequest {
  return create(RegressionRequestSchema, {
    modelSpec: { name: "default", signatureName },
    input,
  });
}

function values(m: Model, req: RegressionRequest): number[] {
  return regress(m, VERSION, "default", req).result!.regressions.map((r) => r.value);
}

Deno.test("regress() computes regress_x_to_y as upstream's _TestRegress expects", async (t) => {
  for (const rel of [TF1, TF2]) {
    await t.step(rel, async () => {
      const m = await model(rel);
      const req = request("regress_x_to_y", exampleList(example({ x: [2] })));
      const res = regress(m, VERSION, "default", req);
      assert.equal(res.result!.regressions.length, 1);
      assert.equal(res.result!.regressions[0].value, 3);
      assertModelSpec(res.modelSpec, "default", "regress_x_to_y", VERSION);
    });
  }
});

Deno.test("regress() computes regress_x_to_y2 = 0.5x + 3", async (t) => {
  for (const rel of [TF1, TF1_2_VERSIONS, TF2]) {
    await t.step(rel, async () => {
      const input = exampleList(example({ x: [2] }), example({ x: [4] }), example({ x: [-1] }));
      assert.deepEqual(values(await model(rel), request("regress_x_to_y2", input)), [4, 5, 2.5]);
    });
  }
});

Deno.test("regress() merges the context into each example", async () => {
  const input = exampleListWithContext(example({ x: [10] }), example({}), example({ x: [0] }));
  assert.deepEqual(values(await model(TF2), request("regress_x_to_y", input)), [7, 2]);
});

Deno.test("regress() rejects requests as upstream's RunRegress does", async (t) => {
  const tf1 = await model(TF1);
  const input = exampleList(example({ x: [2] }));

  await t.step("no model spec", () => {
    const req = request("regress_x_to_y", input);
    req.modelSpec = undefined;
    assertServingError(() => values(tf1, req), Code.INVALID_ARGUMENT, "Missing ModelSpec");
  });
  await t.step("unknown signature", () => {
    assertServingError(
      () => values(tf1, request("nope", input)),
      Code.INVALID_ARGUMENT,
      "No signature was found with the name: nope",
    );
  });
  await t.step("empty input", () => {
    assertServingError(
      () => values(tf1, request("regress_x_to_y")),
      Code.INVALID_ARGUMENT,
      "Input is empty.",
    );
  });
  await t.step("a predict signature (no `inputs`)", () => {
    const def = tf1.signatures.get("serving_default")!.def;
    assertServingError(
      () => values(tf1, request("", input)),
      Code.INVALID_ARGUMENT,
      `No regression inputs found in SignatureDef: ${signatureDebugString(def)}`,
    );
  });
  await t.step("a classify signature (no `outputs`)", () => {
    const def = tf1.signatures.get("classify_x_to_y")!.def;
    assertServingError(
      () => values(tf1, request("classify_x_to_y", input)),
      Code.INVALID_ARGUMENT,
      `No regression outputs found in SignatureDef: ${signatureDebugString(def)}`,
    );
  });
  await t.step("a signature whose input is not DT_STRING", () => {
    assertServingError(
      () => values(tf1, request("regress_x2_to_y3", input)),
      Code.INVALID_ARGUMENT,
      "Expects arg[0] to be float but string is provided",
    );
  });
});

Deno.test("regress() checks method_name only with enableSignatureMethodNameCheck", async () => {
  const req = request("regress_x_to_y", exampleList(example({ x: [2] })));
  const options = { enableSignatureMethodNameCheck: true };
  const tf2 = await model(TF2);
  assert.equal(
    regress(await model(TF1), VERSION, "d", req, options).result!.regressions[0].value,
    3,
  );
  assert.equal(regress(tf2, VERSION, "d", req).result!.regressions[0].value, 3);
  assertServingError(
    () => regress(tf2, VERSION, "d", req, options),
    Code.INVALID_ARGUMENT,
    "Expected regression signature method_name to be tensorflow/serving/regress. " +
      "Was: tensorflow/serving/predict",
  );
});
