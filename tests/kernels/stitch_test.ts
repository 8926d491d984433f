import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import { stitchKernels } from "../../src/kernels/stitch.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, failure, runOp } from "./harness.ts";

const run = (op: string, inputs: Tensor[], attrs = {}) =>
  runOp(stitchKernels, op, inputs, attrs)[0];
const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);

Deno.test("DynamicStitch places rows by index, later inputs winning (TF's documented example)", () => {
  const out = run("DynamicStitch", [
    i32([6], []),
    i32([4, 1]),
    i32([5, 2, 0, 3], [2, 2]),
    i32([61, 62], [2]),
    i32([41, 42, 11, 12], [2, 2]),
    i32([51, 52, 21, 22, 1, 2, 31, 32], [2, 2, 2]),
  ]);
  assert.deepEqual(out.shape, [7, 2]);
  assert.deepEqual(Array.from(out.data as Int32Array), [
    1,
    2,
    11,
    12,
    21,
    22,
    31,
    32,
    41,
    42,
    51,
    52,
    61,
    62,
  ]);
  const dup = run("ParallelDynamicStitch", [i32([0, 1]), i32([1]), f32([1, 2]), f32([9])]);
  assert.deepEqual(Array.from(dup.data as Float32Array), [1, 9]);
  const e = failure(() => run("DynamicStitch", [i32([0, -1]), f32([1, 2])]));
  assert.equal(e.message, "indices[1] is out of range");
  const shape = failure(() => run("DynamicStitch", [i32([0, 1]), f32([1, 2, 3], [3])]));
  assert.equal(shape.message, "data[0].shape = [3] does not start with indices[0].shape = [2]");
});

Deno.test("SparseToDense writes values over the default; TF's index validation", () => {
  const out = run("SparseToDense", [
    i32([0, 1, 2, 0], [2, 2]),
    i32([3, 2]),
    f32([5, 7]),
    f32([-1], []),
  ]);
  assert.deepEqual(out.shape, [3, 2]);
  assert.deepEqual(Array.from(out.data as Float32Array), [-1, 5, -1, -1, 7, -1]);
  // A scalar value goes to every index; a vector of indices addresses a 1-D output.
  const vec = run("SparseToDense", [i32([1, 3]), i32([4]), f32([2], []), f32([0], [])]);
  assert.deepEqual(Array.from(vec.data as Float32Array), [0, 2, 0, 2]);
  const strings = run("SparseToDense", [
    i32([1]),
    i32([2]),
    Tensor.strings(["b"]),
    Tensor.strings(["-"], []),
  ]);
  assert.deepEqual(strings.strings.map((b) => new TextDecoder().decode(b)), ["-", "b"]);
  const cases: [Tensor[], string][] = [
    [
      [i32([0, 2, 0, 1], [2, 2]), i32([3, 3]), f32([1, 2]), f32([0], [])],
      "indices[1] = [0,1] is out of order. Many sparse ops require sorted indices.\n" +
      "    Use `tf.sparse.reorder` to create a correctly ordered copy.\n\n",
    ],
    [[i32([1, 1]), i32([3]), f32([1, 2]), f32([0], [])], "indices[1] = [1] is repeated"],
    [
      [i32([0, 3]), i32([3]), f32([1, 2]), f32([0], [])],
      "indices[1] = [3] is out of bounds: need 0 <= index < [3]",
    ],
    [
      [i32([0, 1]), i32([3]), f32([1, 2, 3]), f32([0], [])],
      "sparse_values has incorrect shape [3], should be [] or [2]",
    ],
    [
      [i32([0, 1], [1, 2]), i32([3]), f32([1]), f32([0], [])],
      "output_shape has incorrect number of elements: 1 should be: 2",
    ],
    [[i32([0]), i32([3]), f32([1]), f32([0])], "default_value should be a scalar."],
  ];
  for (const [inputs, message] of cases) {
    const e = failure(() => run("SparseToDense", inputs));
    assert.equal(e.code, Code.INVALID_ARGUMENT);
    assert.equal(e.message, message);
  }
  // Without validation a repeated index keeps the later value; out of bounds still fails.
  const noCheck = { validate_indices: attr.bool(false) };
  const dup = run("SparseToDense", [i32([1, 1]), i32([2]), f32([1, 2]), f32([0], [])], noCheck);
  assert.deepEqual(Array.from(dup.data as Float32Array), [0, 2]);
  const oob = failure(() =>
    run("SparseToDense", [i32([5]), i32([2]), f32([1]), f32([0], [])], noCheck)
  );
  assert.equal(oob.message, "Indices are not valid (out of bounds).  Shape: [2]");
  const huge = failure(() =>
    run("SparseToDense", [i32([0]), Tensor.int64([2 ** 40]), f32([1]), f32([0], [])])
  );
  assert.equal(huge.code, Code.RESOURCE_EXHAUSTED);
});
