import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  type MultiInferenceRequest,
  MultiInferenceRequestSchema,
} from "../../src/proto/gen/tensorflow_serving/apis/inference_pb.ts";
import { type Input, InputSchema } from "../../src/proto/gen/tensorflow_serving/apis/input_pb.ts";
import { Code } from "../../src/errors.ts";
import type { Model } from "../../src/runtime/model.ts";
import { multiInference } from "../../src/servables/multi_inference.ts";
import {
  assertModelSpec,
  assertServingError,
  example,
  exampleList,
  model,
  TF1,
  TF2,
  VERSION,
} from "./fixtures.ts";

const CLASSIFY = "tensorflow/serving/classify";
const REGRESS = "tensorflow/serving/regress";

function request(
  tasks: { name?: string; signatureName: string; methodName: string }[],
  input: Input | undefined = exampleList(example({ x: [2] })),
): MultiInferenceRequest {
  return create(MultiInferenceRequestSchema, {
    tasks: tasks.map((t) => ({
      modelSpec: { name: t.name ?? "default", signatureName: t.signatureName },
      methodName: t.methodName,
    })),
    input,
  });
}

function run(m: Model, req: MultiInferenceRequest) {
  return multiInference(m, VERSION, "default", req);
}

Deno.test("multiInference() runs regress and classify as upstream's _TestMultiInference expects", async (t) => {
  for (const rel of [TF1, TF2]) {
    await t.step(rel, async () => {
      const req = request([
        { signatureName: "regress_x_to_y", methodName: REGRESS },
        { signatureName: "classify_x_to_y", methodName: CLASSIFY },
      ]);
      const res = run(await model(rel), req);
      assert.equal(res.results.length, 2);
      const [r0, r1] = res.results;
      assert.equal(r0.result.case, "regressionResult");
      assert.equal(r1.result.case, "classificationResult");
      if (r0.result.case !== "regressionResult") return;
      if (r1.result.case !== "classificationResult") return;
      assert.equal(r0.result.value.regressions[0].value, 3);
      assert.equal(r1.result.value.classifications[0].classes[0].score, 3);
      assertModelSpec(r0.modelSpec, "default", "regress_x_to_y", VERSION);
      assertModelSpec(r1.modelSpec, "default", "classify_x_to_y", VERSION);
    });
  }
});

Deno.test("multiInference() feeds every task's input and cuts each result from one run", async () => {
  // regress_x_to_y2 (0.5x + 3) next to regress_x_to_y (0.5x + 2), over three examples.
  const req = request(
    [
      { signatureName: "regress_x_to_y2", methodName: REGRESS },
      { signatureName: "regress_x_to_y", methodName: REGRESS },
      { signatureName: "classify_x_to_y", methodName: CLASSIFY },
    ],
    exampleList(example({ x: [0] }), example({ x: [2] }), example({ x: [4] })),
  );
  for (const rel of [TF1, TF2]) {
    const res = run(await model(rel), req);
    const vals = res.results.map((r) =>
      r.result.case === "regressionResult"
        ? r.result.value.regressions.map((x) => x.value)
        : r.result.value!.classifications.map((c) => c.classes[0].score)
    );
    assert.deepEqual(vals, [[3, 4, 5], [2, 3, 4], [2, 3, 4]]);
    assert.equal(res.results[2].modelSpec?.signatureName, "classify_x_to_y");
  }
});

Deno.test("multiInference() answers no tasks with no results, but still needs examples", async () => {
  const tf1 = await model(TF1);
  assert.deepEqual(run(tf1, request([])).results, []);
  assertServingError(
    () => run(tf1, request([], create(InputSchema))),
    Code.INVALID_ARGUMENT,
    "Input is empty.",
  );
});

Deno.test("multiInference() rejects requests as upstream's Infer does", async (t) => {
  const tf1 = await model(TF1);
  await t.step("an empty model name", () => {
    assertServingError(
      () => run(tf1, request([{ name: "", signatureName: "regress_x_to_y", methodName: REGRESS }])),
      Code.INVALID_ARGUMENT,
      "Found ModelSpec with an empty model name.",
    );
  });
  await t.step("two model names", () => {
    assertServingError(
      () =>
        run(
          tf1,
          request([
            { signatureName: "regress_x_to_y", methodName: REGRESS },
            { name: "other", signatureName: "classify_x_to_y", methodName: CLASSIFY },
          ]),
        ),
      Code.INVALID_ARGUMENT,
      "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
    );
  });
  await t.step("a signature twice", () => {
    assertServingError(
      () =>
        run(
          tf1,
          request([
            { signatureName: "regress_x_to_y", methodName: REGRESS },
            { signatureName: "regress_x_to_y", methodName: REGRESS },
          ]),
        ),
      Code.INVALID_ARGUMENT,
      "Duplicate evaluation of signature: regress_x_to_y",
    );
  });
  await t.step("an unknown signature", () => {
    assertServingError(
      () => run(tf1, request([{ signatureName: "nope", methodName: REGRESS }])),
      Code.INVALID_ARGUMENT,
      "Requested signature not found in model graph: nope",
    );
  });
  await t.step("a predict task", () => {
    assertServingError(
      () => run(tf1, request([{ signatureName: "", methodName: "tensorflow/serving/predict" }])),
      Code.UNIMPLEMENTED,
      "Unsupported signature method_name: tensorflow/serving/predict",
    );
  });
  await t.step("a signature of the wrong layout", () => {
    assertServingError(
      () => run(tf1, request([{ signatureName: "regress_x_to_y", methodName: CLASSIFY }])),
      Code.INVALID_ARGUMENT,
      /^Expected classification signature outputs to contain at least one of "classes" or "scores"\. Signature was: /,
    );
  });
  await t.step("method names checked when asked (TF2 labels all predict)", async () => {
    const req = request([{ signatureName: "regress_x_to_y", methodName: REGRESS }]);
    const tf2 = await model(TF2);
    assertServingError(
      () =>
        multiInference(tf2, VERSION, "default", req, {
          enableSignatureMethodNameCheck: true,
        }),
      Code.INVALID_ARGUMENT,
      "Expected regression signature method_name to be tensorflow/serving/regress. " +
        "Was: tensorflow/serving/predict",
    );
    const ok = multiInference(await model(TF1), VERSION, "default", req, {
      enableSignatureMethodNameCheck: true,
    });
    assert.equal(ok.results.length, 1);
  });
});
