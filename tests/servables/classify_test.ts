import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import {
  type ClassificationRequest,
  ClassificationRequestSchema,
} from "../../src/proto/gen/tensorflow_serving/apis/classification_pb.ts";
import { type Input, InputSchema } from "../../src/proto/gen/tensorflow_serving/apis/input_pb.ts";
import { Code } from "../../src/errors.ts";
import type { Model } from "../../src/runtime/model.ts";
import { classify } from "../../src/servables/classify.ts";
import { signatureDebugString } from "../../src/servables/model_spec.ts";
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

function request(signatureName: string, input?: Input): ClassificationRequest {
  return create(ClassificationRequestSchema, {
    modelSpec: { name: "default", signatureName },
    input,
  });
}

function scores(m: Model, req: ClassificationRequest): number[][] {
  const res = classify(m, VERSION, "default", req);
  return res.result!.classifications.map((c) => c.classes.map((k) => k.score));
}

Deno.test("classify() scores 0.5x + 2 as upstream's _TestClassify expects", async (t) => {
  for (const rel of [TF1, TF2]) {
    await t.step(rel, async () => {
      const m = await model(rel);
      const req = request("classify_x_to_y", exampleList(example({ x: [2] })));
      const res = classify(m, VERSION, "default", req);
      assert.equal(res.result!.classifications.length, 1);
      assert.equal(res.result!.classifications[0].classes.length, 1);
      assert.equal(res.result!.classifications[0].classes[0].score, 3);
      assert.equal(res.result!.classifications[0].classes[0].label, "");
      assertModelSpec(res.modelSpec, "default", "classify_x_to_y", VERSION);
    });
  }
});

Deno.test("classify() keeps one Classifications per example, in order", async () => {
  const m = await model(TF1);
  const input = exampleList(example({ x: [1] }), example({ x: [2] }), example({ x: [3] }));
  assert.deepEqual(scores(m, request("classify_x_to_y", input)), [[2.5], [3], [3.5]]);
});

Deno.test("classify() merges the context into each example of example_list_with_context", async (t) => {
  for (const rel of [TF1, TF2]) {
    await t.step(rel, async () => {
      const m = await model(rel);
      // x comes from the context where an example lacks it, from the example where it has it.
      const input = exampleListWithContext(
        example({ x: [2] }),
        example({}),
        example({ x: [4] }),
        example({ z: [9] }),
      );
      assert.deepEqual(scores(m, request("classify_x_to_y", input)), [[3], [4], [3]]);
    });
  }
});

Deno.test("classify() rejects requests as upstream's RunClassify does", async (t) => {
  const tf1 = await model(TF1);
  const input = exampleList(example({ x: [2] }));

  await t.step("no model spec", () => {
    const req = request("classify_x_to_y", input);
    req.modelSpec = undefined;
    assertServingError(() => scores(tf1, req), Code.INVALID_ARGUMENT, "Missing ModelSpec");
  });
  await t.step("unknown signature", () => {
    assertServingError(
      () => scores(tf1, request("nope", input)),
      Code.INVALID_ARGUMENT,
      "No signature was found with the name: nope",
    );
  });
  await t.step("empty input", () => {
    for (const empty of [undefined, create(InputSchema), exampleList()]) {
      assertServingError(
        () => scores(tf1, request("classify_x_to_y", empty)),
        Code.INVALID_ARGUMENT,
        "Input is empty.",
      );
    }
    assertServingError(
      () => scores(tf1, request("classify_x_to_y", exampleListWithContext(example({ x: [1] })))),
      Code.INVALID_ARGUMENT,
      "Input is empty.",
    );
  });
  await t.step("a predict signature (no `inputs`)", () => {
    const def = tf1.signatures.get("serving_default")!.def;
    assertServingError(
      () => scores(tf1, request("", input)),
      Code.INVALID_ARGUMENT,
      `No classification inputs found in SignatureDef: ${signatureDebugString(def)}`,
    );
  });
  await t.step("a regress signature (no `classes` or `scores`)", () => {
    const def = tf1.signatures.get("regress_x_to_y")!.def;
    assertServingError(
      () => scores(tf1, request("regress_x_to_y", input)),
      Code.INVALID_ARGUMENT,
      'Expected classification signature outputs to contain at least one of "classes" or ' +
        `"scores". Signature was: ${signatureDebugString(def)}`,
    );
  });
  await t.step("a signature whose input is not DT_STRING", async () => {
    const m = await model(TF1_2_VERSIONS);
    assertServingError(
      () => scores(m, request("classify_x2_to_y3", input)),
      Code.INVALID_ARGUMENT,
      "Expects arg[0] to be float but string is provided",
    );
  });
  await t.step("an example without the feature", () => {
    assert.throws(
      () => scores(tf1, request("classify_x_to_y", exampleList(example({ z: [1] })))),
      (e: { code?: Code }) => e.code === Code.INVALID_ARGUMENT,
    );
  });
});

Deno.test("classify() checks method_name only with enableSignatureMethodNameCheck", async () => {
  const req = request("classify_x_to_y", exampleList(example({ x: [2] })));
  const options = { enableSignatureMethodNameCheck: true };
  // TF1 labels the signature tensorflow/serving/classify.
  const res = classify(await model(TF1), VERSION, "default", req, options);
  assert.equal(res.result!.classifications[0].classes[0].score, 3);
  // TF2 exports label every signature tensorflow/serving/predict.
  const tf2 = await model(TF2);
  assertServingError(
    () => classify(tf2, VERSION, "default", req, options),
    Code.INVALID_ARGUMENT,
    "Expected classification signature method_name to be tensorflow/serving/classify. " +
      "Was: tensorflow/serving/predict",
  );
});

Deno.test("signatureDebugString() prints a SignatureDef as C++ DebugString does", async () => {
  const def = (await model(TF1)).signatures.get("classify_x_to_y")!.def;
  assert.equal(
    signatureDebugString(def),
    [
      "inputs {",
      '  key: "inputs"',
      "  value {",
      '    name: "tf_example:0"',
      "    dtype: DT_STRING",
      "    tensor_shape {",
      "      unknown_rank: true",
      "    }",
      "  }",
      "}",
      "outputs {",
      '  key: "scores"',
      "  value {",
      '    name: "y:0"',
      "    dtype: DT_FLOAT",
      "    tensor_shape {",
      "      dim {",
      "        size: -1",
      "      }",
      "      dim {",
      "        size: 1",
      "      }",
      "    }",
      "  }",
      "}",
      'method_name: "tensorflow/serving/classify"',
      "",
    ].join("\n"),
  );
});
