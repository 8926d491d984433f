import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import { attr, failure, runOp } from "./harness.ts";
import { scatterKernels } from "../../src/kernels/scatter.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const run = (op: string, inputs: Tensor[], attrs = {}) =>
  runOp(scatterKernels, op, inputs, attrs)[0];
const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);

Deno.test("TensorScatter ops combine update rows into a copy of the tensor, in index order", () => {
  const tensor = f32([1, 2, 3, 4, 5, 6], [3, 2]);
  const indices = i32([2, 0, 2], [3, 1]);
  const updates = f32([10, 20, 30, 40, 0.5, 50], [3, 2]);
  const cases: [string, number[]][] = [
    ["TensorScatterUpdate", [30, 40, 3, 4, 0.5, 50]],
    ["TensorScatterAdd", [31, 42, 3, 4, 15.5, 76]],
    ["TensorScatterSub", [-29, -38, 3, 4, -5.5, -64]],
    ["TensorScatterMax", [30, 40, 3, 4, 10, 50]],
    ["TensorScatterMin", [1, 2, 3, 4, 0.5, 6]],
  ];
  for (const [op, want] of cases) {
    const out = run(op, [tensor, indices, updates]);
    assert.deepEqual(out.shape, [3, 2], op);
    assert.deepEqual(Array.from(out.data as Float32Array), want, op);
  }
  // The input is not written.
  assert.deepEqual(Array.from(tensor.data as Float32Array), [1, 2, 3, 4, 5, 6]);
  // Element indices (depth = rank) and strings for Update.
  const s = run("TensorScatterUpdate", [
    Tensor.strings(["a", "b", "c", "d"], [2, 2]),
    i32([1, 0], [1, 2]),
    Tensor.strings(["z"]),
  ]);
  assert.deepEqual(s.strings.map((b) => new TextDecoder().decode(b)), ["a", "b", "z", "d"]);
  // int32 wraps.
  const w = run("TensorScatterAdd", [i32([2 ** 31 - 1]), i32([0], [1, 1]), i32([1])]);
  assert.deepEqual(Array.from(w.data as Int32Array), [-(2 ** 31)]);
});

Deno.test("TensorScatter ops fail as TensorFlow does on bad indices and shapes", () => {
  const tensor = f32([1, 2, 3, 4], [2, 2]);
  const e = failure(() =>
    run("TensorScatterUpdate", [tensor, i32([0, 2], [2, 1]), f32([9, 9, 9, 9], [2, 2])])
  );
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  assert.equal(e.message, "indices[1] = [2] does not index into shape [2,2]");
  const neg = failure(() => run("TensorScatterAdd", [tensor, i32([-1, 0], [1, 2]), f32([1])]));
  assert.equal(neg.message, "indices[0] = [-1, 0] does not index into shape [2,2]");
  const inner = failure(() =>
    run("TensorScatterUpdate", [tensor, i32([0], [1, 1]), f32([1, 2, 3], [1, 3])])
  );
  assert.equal(
    inner.message,
    "The inner 1 dimensions of output.shape=[2,2] must match the inner 1 dimensions of " +
      "updates.shape=[1,3]",
  );
  const outer = failure(() =>
    run("TensorScatterUpdate", [tensor, i32([0, 1], [2, 1]), f32([1, 2], [1, 2])])
  );
  assert.equal(
    outer.message,
    "Outer dimensions of indices and update must match. Indices shape: [2,1], updates shape:[1,2]",
  );
  const rank = failure(() =>
    run("TensorScatterUpdate", [tensor, i32([0], [1, 1]), f32([1, 2, 3, 4], [1, 2, 2])])
  );
  assert.equal(
    rank.message,
    "Inner dimensions of output shape must match inner dimensions of updates shape. " +
      "Output: [2,2] updates: [1,2,2]",
  );
  const scalar = failure(() => run("TensorScatterUpdate", [tensor, i32([0], []), f32([1])]));
  assert.equal(scalar.message, "Indices shape must have rank at least one. Found:[]");
});

Deno.test("TensorScatter ops: bad_indices_policy IGNORE skips bad rows; others are refused", () => {
  const tensor = f32([1, 2]);
  const out = run("TensorScatterUpdate", [tensor, i32([5, 1], [2, 1]), f32([8, 9])], {
    bad_indices_policy: attr.string("IGNORE"),
  });
  assert.deepEqual(Array.from(out.data as Float32Array), [1, 9]);
  const e = failure(() =>
    run("TensorScatterUpdate", [tensor, i32([0], [1, 1]), f32([1])], {
      bad_indices_policy: attr.string("CLAMP"),
    })
  );
  assert.equal(e.code, Code.UNIMPLEMENTED);
  assert.match(e.message, /bad_indices_policy="CLAMP"/);
});

Deno.test("TensorScatterMax refuses types TF has no kernel for (UNIMPLEMENTED)", () => {
  const b = new Tensor(DataType.DT_BOOL, [1], Uint8Array.of(0));
  const e = failure(() => run("TensorScatterMax", [b, i32([0], [1, 1]), b]));
  assert.equal(e.code, Code.UNIMPLEMENTED);
});

Deno.test("ScatterNd refuses an output shape over the tensor limit before allocating", () => {
  const e = failure(() =>
    run("ScatterNd", [i32([0, 0], [1, 2]), f32([1]), i32([2 ** 15, 2 ** 14])])
  );
  assert.equal(e.code, Code.RESOURCE_EXHAUSTED);
});

Deno.test("ScatterNd honours bad_indices_policy IGNORE and refuses unknown policies", () => {
  const out = run("ScatterNd", [i32([5, 1], [2, 1]), f32([8, 9]), i32([2])], {
    bad_indices_policy: attr.string("IGNORE"),
  });
  assert.deepEqual(Array.from(out.data as Float32Array), [0, 9]);
  const e = failure(() =>
    run("ScatterNd", [i32([1], [1, 1]), f32([1]), i32([2])], {
      bad_indices_policy: attr.string("CLAMP"),
    })
  );
  assert.equal(e.code, Code.UNIMPLEMENTED);
  assert.match(e.message, /^ScatterNd node "test_ScatterNd": attr bad_indices_policy="CLAMP"/);
});
