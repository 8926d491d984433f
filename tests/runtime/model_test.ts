import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ExampleSchema } from "../../src/proto/gen/tensorflow/core/example/example_pb.ts";
import { SavedModelSchema } from "../../src/proto/gen/tensorflow/core/protobuf/saved_model_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { loadModel, type Model } from "../../src/runtime/model.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose } from "../kernels/harness.ts";
import { copyModel, testdata } from "../testdata.ts";

/** Serialized tf.Examples with float features. */
function examples(rows: Record<string, number[]>[]): Tensor {
  return Tensor.strings(
    rows.map((features) =>
      toBinary(
        ExampleSchema,
        create(ExampleSchema, {
          features: {
            feature: Object.fromEntries(
              Object.entries(features).map(([k, v]) => [
                k,
                { kind: { case: "floatList" as const, value: { value: v } } },
              ]),
            ),
          },
        }),
      )
    ),
  );
}

function floats(m: Model, sig: string, inputs: Record<string, Tensor>, out: string): number[] {
  const t = m.signature(sig).run(inputs)[out];
  assert.equal(t.dtype, DataType.DT_FLOAT);
  return Array.from(t.data as Float32Array);
}

async function rejects(p: Promise<unknown> | (() => unknown), code: Code, text: RegExp) {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    assert.ok(e instanceof ServingError, `not a ServingError: ${e}`);
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, text);
    return;
  }
  assert.fail("did not throw");
}

const half = (xs: number[], plus: number) => xs.map((x) => 0.5 * x + plus);

for (
  const dir of [
    "saved_model_half_plus_two_cpu/00000123",
    "saved_model_half_plus_two_2_versions/00000123",
    "saved_model_half_plus_two_2_versions/00000124",
  ]
) {
  Deno.test(`loadModel() runs every signature of TF1 ${dir}`, async () => {
    const m = await loadModel(testdata(dir));
    const xs = [1, 2, 5];
    const x = Tensor.float32(xs, [3, 1]);
    assertClose(floats(m, "serving_default", { x }, "y"), half(xs, 2));
    assertClose(floats(m, "", { x }, "y"), half(xs, 2));
    const ex = examples(xs.map((v) => ({ x: [v] })));
    assertClose(floats(m, "classify_x_to_y", { inputs: ex }, "scores"), half(xs, 2));
    assertClose(floats(m, "regress_x_to_y", { inputs: ex }, "outputs"), half(xs, 2));
    assertClose(floats(m, "regress_x_to_y2", { inputs: ex }, "outputs"), half(xs, 3));
    assertClose(floats(m, "regress_x2_to_y3", { inputs: x }, "outputs"), half(xs, 3));
    if (m.signatures.has("classify_x2_to_y3")) {
      assertClose(floats(m, "classify_x2_to_y3", { inputs: x }, "scores"), half(xs, 3));
    }
    // The asset-path variable was set by the init op.
    assert.equal(m.bundle.assets.length, 1);
    assert.match(m.bundle.assets[0].path, /assets\/foo\.txt$/);
    assert.deepEqual(m.bundle.assetsExtra, []);
  });
}

Deno.test("loadModel() runs every signature of the TF2 half_plus_two", async () => {
  const m = await loadModel(testdata("saved_model_half_plus_two_tf2_cpu/00000123"));
  assert.deepEqual(
    [...m.signatures.keys()].sort(),
    [
      "classify_x2_to_y3",
      "classify_x_to_y",
      "regress_x2_to_y3",
      "regress_x_to_y",
      "regress_x_to_y2",
      "serving_default",
    ],
  );
  assertClose(floats(m, "serving_default", { x: Tensor.float32([4]) }, "y"), [4]);
  const ex = examples([{ x: [1] }, { x: [6], x2: [7] }]);
  assertClose(floats(m, "classify_x_to_y", { inputs: ex }, "scores"), half([1, 6], 2));
  assertClose(floats(m, "regress_x_to_y", { inputs: ex }, "outputs"), half([1, 6], 2));
  assertClose(floats(m, "regress_x_to_y2", { inputs: ex }, "outputs"), half([1, 6], 3));
  assertClose(floats(m, "regress_x2_to_y3", { inputs: Tensor.float32([8]) }, "outputs"), [7]);
  assertClose(floats(m, "classify_x2_to_y3", { inputs: Tensor.float32([8]) }, "scores"), [7]);
  // The asset variable holds the asset's path, fed by the init op.
  const v = m.session.resources.get("localhost/Variable") as { value?: Tensor } | undefined;
  assert.match(new TextDecoder().decode(v?.value?.strings[0]), /assets\/foo\.txt$/);
});

Deno.test("loadModel() runs matrix_half_plus_two", async () => {
  const m = await loadModel(testdata("matrix_half_plus_two/1"));
  const xs = Array.from({ length: 18 }, (_, i) => i - 4);
  assertClose(floats(m, "serving_default", { x: Tensor.float32(xs, [2, 3, 3]) }, "y"), half(xs, 2));
});

Deno.test("Signature.run() checks its inputs", async (t) => {
  const m = await loadModel(testdata("saved_model_half_plus_two_cpu/00000123"));
  const sig = m.signature("serving_default");
  await t.step(
    "unknown signature",
    () =>
      rejects(
        () => m.signature("nope"),
        Code.FAILED_PRECONDITION,
        /Serving signature key "nope" not found/,
      ),
  );
  await t.step(
    "wrong dtype",
    () =>
      rejects(
        () => sig.run({ x: Tensor.int32([1], [1, 1]) }),
        Code.INVALID_ARGUMENT,
        /"x".*DT_FLOAT, got DT_INT32/,
      ),
  );
  await t.step(
    "wrong shape",
    () =>
      rejects(
        () => sig.run({ x: Tensor.float32([1, 2], [1, 2]) }),
        Code.INVALID_ARGUMENT,
        /"x".*\[1,2\].*\[-1,1\]/,
      ),
  );
  await t.step(
    "missing input",
    () => rejects(() => sig.run({}), Code.INVALID_ARGUMENT, /Missing input.*"x"/),
  );
  await t.step(
    "unknown input",
    () =>
      rejects(
        () => sig.run({ x: Tensor.float32([1], [1, 1]), z: Tensor.float32([1]) }),
        Code.INVALID_ARGUMENT,
        /"z" is not in/,
      ),
  );
  await t.step(
    "unknown output",
    () =>
      rejects(
        () => sig.run({ x: Tensor.float32([1], [1, 1]) }, ["q"]),
        Code.INVALID_ARGUMENT,
        /Output "q"/,
      ),
  );
  await t.step("missing required feature", () =>
    rejects(
      () => m.signature("regress_x_to_y").run({ inputs: examples([{ x2: [1] }]) }),
      Code.INVALID_ARGUMENT,
      /x.*required/,
    ));
  await t.step("a bad request leaves the model working", () => {
    assertClose(floats(m, "serving_default", { x: Tensor.float32([10], [1, 1]) }, "y"), [7]);
  });
});

Deno.test("loadModel() reports corrupt or missing files", async (t) => {
  const V = "saved_model_half_plus_two_2_versions/00000123";
  await t.step("missing saved_model.pb", async () => {
    const dir = await Deno.makeTempDir();
    await rejects(
      loadModel(dir),
      Code.NOT_FOUND,
      /Could not find SavedModel \.pb or \.pbtxt at supplied export directory path/,
    );
  });
  await t.step("truncated saved_model.pb", async () => {
    const dir = await copyModel(V);
    const pb = await Deno.readFile(`${dir}/saved_model.pb`);
    await Deno.writeFile(`${dir}/saved_model.pb`, pb.subarray(0, pb.length - 100));
    await rejects(loadModel(dir), Code.DATA_LOSS, /saved_model\.pb/);
  });
  await t.step("garbage saved_model.pb", async () => {
    const dir = await copyModel(V);
    await Deno.writeFile(`${dir}/saved_model.pb`, new Uint8Array(64).fill(0xff));
    await rejects(loadModel(dir), Code.DATA_LOSS, /saved_model\.pb/);
  });
  await t.step("bad table footer", async () => {
    const dir = await copyModel(V);
    const path = `${dir}/variables/variables.index`;
    const b = await Deno.readFile(path);
    b[b.length - 1] ^= 0xff;
    await Deno.writeFile(path, b);
    await rejects(loadModel(dir), Code.DATA_LOSS, /variables\.index/);
  });
  await t.step("CRC mismatch in the data shard", async () => {
    const dir = await copyModel(V);
    const path = `${dir}/variables/variables.data-00000-of-00001`;
    const b = await Deno.readFile(path);
    b[0] ^= 0x01;
    await Deno.writeFile(path, b);
    await rejects(loadModel(dir), Code.DATA_LOSS, /variables\.data-00000-of-00001|checksum|CRC/i);
  });
  await t.step("missing shard", async () => {
    const dir = await copyModel(V);
    await Deno.remove(`${dir}/variables/variables.data-00000-of-00001`);
    await rejects(loadModel(dir), Code.NOT_FOUND, /variables\.data-00000-of-00001/);
  });
  await t.step("missing variable", async () => {
    const dir = await copyModel(V);
    const sm = fromBinary(SavedModelSchema, await Deno.readFile(`${dir}/saved_model.pb`));
    const names = sm.metaGraphs[0].graphDef!.node.find((n) =>
      n.name === "save/RestoreV2/tensor_names"
    )!;
    const value = names.attr["value"].value;
    assert.equal(value.case, "tensor");
    value.value.stringVal[0] = new TextEncoder().encode("not_there");
    await Deno.writeFile(`${dir}/saved_model.pb`, toBinary(SavedModelSchema, sm));
    await rejects(loadModel(dir), Code.NOT_FOUND, /not_there not found in checkpoint/);
  });
  await t.step("unknown tag set", async () => {
    await rejects(
      loadModel(testdata(V), { tags: ["serve", "gpu"] }),
      Code.NOT_FOUND,
      /Could not find meta graph def matching supplied tags: \{ serve gpu \}/,
    );
  });
  await t.step("an op without a kernel", async () => {
    const dir = await copyModel("matrix_half_plus_two/1");
    const sm = fromBinary(SavedModelSchema, await Deno.readFile(`${dir}/saved_model.pb`));
    const nodes = sm.metaGraphs[0].graphDef!.node;
    nodes.find((n) => n.name === "Mul")!.op = "FancyMul";
    nodes.find((n) => n.name === "y")!.op = "FancyAdd";
    await Deno.writeFile(`${dir}/saved_model.pb`, toBinary(SavedModelSchema, sm));
    await rejects(
      loadModel(dir),
      Code.UNIMPLEMENTED,
      /no kernel for op\(s\) .*FancyAdd.*FancyMul|FancyMul.*FancyAdd/,
    );
  });
});
