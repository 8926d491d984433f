import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { ioKernels } from "../../src/kernels/io.ts";
import { writeBundle } from "../../src/saved_model/tensor_bundle.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, runOp } from "./harness.ts";

const testdata = new URL("../../../shared/testdata/tf-serving/", import.meta.url);

function prefixOf(model: string, version = "00000123"): string {
  return new URL(`${model}/${version}/variables/variables`, testdata).pathname;
}

/** Runs RestoreV2 with a scalar prefix, `names`, `slices` (default all "") and `dtypes`. */
function restore(
  prefix: string,
  names: string[],
  dtypes: DataType[],
  slices: string[] = names.map(() => ""),
): Tensor[] {
  return runOp(
    ioKernels,
    "RestoreV2",
    [Tensor.strings([prefix], []), Tensor.strings(names), Tensor.strings(slices)],
    { dtypes: attr.types(dtypes) },
  );
}

function assertFails(fn: () => unknown, code: Code, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ServingError, `expected a ServingError, got ${err}`);
  assert.equal(Code[err.code], Code[code], err.message);
  for (const p of parts) assert.ok(err.message.includes(p), `"${err.message}" lacks "${p}"`);
}

const F = DataType.DT_FLOAT;

Deno.test("RestoreV2: restores half_plus_two's variables in the order asked", () => {
  for (const version of ["00000123", "00000124"]) {
    const prefix = prefixOf("saved_model_half_plus_two_2_versions", version);
    const out = restore(prefix, ["c", "a", "b"], [F, F, F]);
    assert.equal(out.length, 3);
    for (const t of out) {
      assert.equal(t.dtype, F);
      assert.deepEqual(t.shape, []);
    }
    assert.deepEqual(out.map((t) => (t.data as Float32Array)[0]), [3, 0.5, 2]);
  }
  const cpu = restore(prefixOf("saved_model_half_plus_two_cpu"), ["a2", "c2"], [F, F]);
  assert.deepEqual(cpu.map((t) => (t.data as Float32Array)[0]), [0.5, 3]);
  assert.deepEqual(restore(prefixOf("saved_model_half_plus_two_cpu"), [], []), []);
});

Deno.test("RestoreV2: TF2 names and the string object graph", () => {
  const out = restore(
    prefixOf("saved_model_half_plus_two_tf2_cpu"),
    ["_CHECKPOINTABLE_OBJECT_GRAPH", "b/.ATTRIBUTES/VARIABLE_VALUE"],
    [DataType.DT_STRING, F],
  );
  assert.equal(out[0].dtype, DataType.DT_STRING);
  assert.equal(out[0].strings[0].length, 613);
  assert.equal((out[1].data as Float32Array)[0], 2);
});

Deno.test("RestoreV2: restores what writeBundle wrote", async () => {
  const dir = await Deno.makeTempDir({ prefix: "restore_test_" });
  try {
    const prefix = `${dir}/variables/variables`;
    await writeBundle(prefix, [
      ["dense/kernel", Tensor.float32([1, 2, 3, 4, 5, 6], [2, 3])],
      ["global_step", Tensor.int64([42], [])],
      ["vocab", Tensor.strings(["a", "", "ccc"])],
    ]);
    const [k, step, vocab] = restore(
      prefix,
      ["dense/kernel", "global_step", "vocab"],
      [F, DataType.DT_INT64, DataType.DT_STRING],
    );
    assert.deepEqual(k.shape, [2, 3]);
    assert.deepEqual(Array.from(k.data as Float32Array), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(step.data as BigInt64Array), [42n]);
    assert.deepEqual(vocab.strings.map((s) => new TextDecoder().decode(s)), ["a", "", "ccc"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RestoreV2: errors as TensorFlow reports them", () => {
  const prefix = prefixOf("saved_model_half_plus_two_2_versions");
  assertFails(
    () => restore(prefix, ["a", "b"], [F, DataType.DT_INT32, DataType.DT_DOUBLE]),
    Code.INVALID_ARGUMENT,
    "Got 2 tensor names, but 3 expected dtypes.",
  );
  assertFails(
    () => restore(prefix, ["a", "b"], [DataType.DT_INT32, DataType.DT_DOUBLE]),
    Code.INVALID_ARGUMENT,
    "tensor_name = a; expected dtype int32 does not equal original dtype float\n" +
      "tensor_name = b; expected dtype double does not equal original dtype float",
  );
  assertFails(
    () => restore(prefix, ["a", "nope"], [F, F]),
    Code.NOT_FOUND,
    "Key nope not found in checkpoint",
  );
  assertFails(
    () => restore(prefix, ["a"], [F], ["4 0,2"]),
    Code.UNIMPLEMENTED,
    "Cannot restore a:",
    "4 0,2",
  );
  assertFails(
    () => restore("/nonexistent/variables", ["a"], [F]),
    Code.NOT_FOUND,
    "/nonexistent/variables.index",
  );
  assertFails(
    () => restore(prefix, ["a", "b"], [F, F], [""]),
    Code.INVALID_ARGUMENT,
    "tensor_names and shape_and_slices have different number of elements: 2 vs. 1",
  );
  assertFails(
    () =>
      runOp(
        ioKernels,
        "RestoreV2",
        [Tensor.strings([prefix, prefix]), Tensor.strings(["a"]), Tensor.strings([""])],
        { dtypes: attr.types([F]) },
      ),
    Code.INVALID_ARGUMENT,
    "Input prefix should have a single element, got 2 instead.",
  );
  assertFails(
    () =>
      runOp(
        ioKernels,
        "RestoreV2",
        [Tensor.strings([prefix], []), Tensor.strings(["a"], [1, 1]), Tensor.strings([""], [1])],
        { dtypes: attr.types([F]) },
      ),
    Code.INVALID_ARGUMENT,
    "should be an 1-D tensors, got [1,1] and [1] instead.",
  );
  assertFails(
    () =>
      runOp(ioKernels, "RestoreV2", [
        Tensor.strings([prefix], []),
        Tensor.strings(["a"]),
        Tensor.strings([""]),
      ]),
    Code.INVALID_ARGUMENT,
    'attr "dtypes"',
  );
});
