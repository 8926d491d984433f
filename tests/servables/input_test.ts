import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ExampleSchema } from "../../src/proto/gen/tensorflow/core/example/example_pb.ts";
import { InputSchema } from "../../src/proto/gen/tensorflow_serving/apis/input_pb.ts";
import { Code } from "../../src/errors.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import {
  checkFeedTypes,
  inputToExamplesTensor,
  serializedInputToExamplesTensor,
  tfTypeString,
} from "../../src/servables/input.ts";
import { makeModelSpec, resolveSignatureName } from "../../src/servables/model_spec.ts";
import { assertServingError, example, exampleList, exampleListWithContext } from "./fixtures.ts";

function floats(bytes: Uint8Array): Record<string, number[]> {
  const ex = fromBinary(ExampleSchema, bytes);
  return Object.fromEntries(
    Object.entries(ex.features?.feature ?? {}).map((
      [k, f],
    ) => [k, f.kind.case === "floatList" ? f.kind.value.value : []]),
  );
}

Deno.test("inputToExamplesTensor() serializes an example_list into a DT_STRING vector", () => {
  const a = example({ x: [1] });
  const b = example({ x: [2, 3] });
  const t = inputToExamplesTensor(exampleList(a, b));
  assert.equal(t.dtype, DataType.DT_STRING);
  assert.deepEqual(t.shape, [2]);
  assert.deepEqual(t.strings[0], toBinary(ExampleSchema, a));
  assert.deepEqual(t.strings[1], toBinary(ExampleSchema, b));
});

Deno.test("inputToExamplesTensor() puts the context's bytes before each example's, as upstream", () => {
  const ctx = example({ c: [7], x: [1] });
  const ex = example({ x: [5] });
  const t = inputToExamplesTensor(exampleListWithContext(ctx, ex, example({})));
  const c = toBinary(ExampleSchema, ctx);
  const e = toBinary(ExampleSchema, ex);
  assert.deepEqual(t.strings[0], Uint8Array.from([...c, ...e]));
  // Parsed, the example's features are added to the context's and win on a shared key.
  assert.deepEqual(floats(t.strings[0]), { c: [7], x: [5] });
  assert.deepEqual(floats(t.strings[1]), { c: [7], x: [1] });
  // No context: the examples alone.
  const bare = create(InputSchema, {
    kind: { case: "exampleListWithContext", value: { examples: [ex] } },
  });
  assert.deepEqual(inputToExamplesTensor(bare).strings[0], e);
});

Deno.test("inputToExamplesTensor() rejects an empty input with upstream's message", () => {
  for (const input of [undefined, create(InputSchema), exampleList()]) {
    assertServingError(
      () => inputToExamplesTensor(input),
      Code.INVALID_ARGUMENT,
      "Input is empty.",
    );
  }
});

Deno.test("serializedInputToExamplesTensor() equals inputToExamplesTensor() on the wire form", () => {
  const inputs = [
    exampleList(example({ x: [1] }), example({ x: [2] })),
    exampleListWithContext(example({ c: [3] }), example({ x: [4] }), example({})),
  ];
  for (const input of inputs) {
    const want = inputToExamplesTensor(input);
    const got = serializedInputToExamplesTensor(toBinary(InputSchema, input));
    assert.deepEqual(got.shape, want.shape);
    assert.deepEqual(got.strings, want.strings);
  }
});

Deno.test("serializedInputToExamplesTensor() follows protobuf merge rules", () => {
  const a = toBinary(InputSchema, exampleList(example({ x: [1] })));
  const b = toBinary(InputSchema, exampleList(example({ x: [2] })));
  const c = toBinary(InputSchema, exampleListWithContext(example({ c: [9] }), example({ x: [3] })));
  // The same field twice appends; the other oneof member later replaces.
  assert.deepEqual(
    serializedInputToExamplesTensor(Uint8Array.from([...a, ...b])).strings.map(floats),
    [{ x: [1] }, { x: [2] }],
  );
  assert.deepEqual(
    serializedInputToExamplesTensor(Uint8Array.from([...a, ...c])).strings.map(floats),
    [{ c: [9], x: [3] }],
  );
});

Deno.test("serializedInputToExamplesTensor() rejects malformed or empty bytes", () => {
  assertServingError(
    () => serializedInputToExamplesTensor(Uint8Array.from([0x0a, 0x05, 0x0a])),
    Code.INVALID_ARGUMENT,
    /^Could not parse Input: /,
  );
  assertServingError(
    () => serializedInputToExamplesTensor(new Uint8Array(0)),
    Code.INVALID_ARGUMENT,
    "Input is empty.",
  );
});

Deno.test("checkFeedTypes() fails as TensorFlow's session does for a wrong dtype", () => {
  assert.equal(tfTypeString(DataType.DT_FLOAT), "float");
  assert.equal(tfTypeString(DataType.DT_STRING), "string");
  assert.equal(tfTypeString(DataType.DT_HALF), "half");
  checkFeedTypes([Tensor.float32([1])], [DataType.DT_FLOAT]);
  assertServingError(
    () =>
      checkFeedTypes([Tensor.float32([1]), Tensor.strings(["a"])], [
        DataType.DT_FLOAT,
        DataType.DT_INT64,
      ]),
    Code.INVALID_ARGUMENT,
    "Expects arg[1] to be int64 but string is provided",
  );
});

Deno.test("makeModelSpec() builds the ModelSpec as upstream's MakeModelSpec", () => {
  assert.equal(resolveSignatureName(""), "serving_default");
  assert.equal(resolveSignatureName("x"), "x");
  const full = makeModelSpec("m", "", 7);
  assert.equal(full.name, "m");
  assert.equal(full.signatureName, "serving_default");
  assert.equal(full.versionChoice.case, "version");
  assert.equal(full.versionChoice.value?.value, 7n);
  const bare = makeModelSpec("m", undefined, undefined);
  assert.equal(bare.signatureName, "");
  assert.equal(bare.versionChoice.case, undefined);
});
