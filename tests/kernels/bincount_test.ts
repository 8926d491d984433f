import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import { bincountKernels } from "../../src/kernels/bincount.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, failure, runOp } from "./harness.ts";

const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);
const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const run = (op: string, inputs: Tensor[], attrs = {}) =>
  runOp(bincountKernels, op, inputs, attrs)[0];

Deno.test("Bincount counts values below size, or sums their weights", () => {
  const arr = i32([1, 1, 3, 5, 0]);
  const counts = run("Bincount", [arr, i32([4], []), i32([])]);
  assert.deepEqual(counts.shape, [4]);
  assert.deepEqual(Array.from(counts.data as Int32Array), [1, 2, 0, 1]);
  const sums = run("Bincount", [arr, i32([4], []), f32([0.5, 0.25, 2, 9, 1])]);
  assert.deepEqual(Array.from(sums.data as Float32Array), [1, 0.75, 0, 2]);
  const big = run("Bincount", [arr, i32([2], []), Tensor.int64([])]);
  assert.deepEqual(Array.from(big.data as BigInt64Array), [1n, 2n]);
});

Deno.test("DenseBincount counts rows of a matrix, with binary_output", () => {
  const data = i32([0, 1, 1, 2, 2, 2], [2, 3]);
  const out = run("DenseBincount", [data, i32([3], []), f32([])]);
  assert.deepEqual(out.shape, [2, 3]);
  assert.deepEqual(Array.from(out.data as Float32Array), [1, 2, 0, 0, 0, 3]);
  const bin = run("DenseBincount", [data, i32([3], []), f32([])], {
    binary_output: attr.bool(true),
  });
  assert.deepEqual(Array.from(bin.data as Float32Array), [1, 1, 0, 0, 0, 1]);
});

Deno.test("Bincount fails as TensorFlow does", () => {
  const cases: [Tensor[], string][] = [
    [[i32([1, -1]), i32([3], []), i32([])], "Input arr must be non-negative!"],
    [[i32([1]), i32([-2], []), i32([])], "size (-2) must be non-negative"],
    [[i32([1]), i32([3]), i32([])], "Shape must be rank 0 but is rank 1"],
    [[i32([1, 2]), i32([3], []), f32([1])], "Input indices and weights must have the same size."],
  ];
  for (const [inputs, message] of cases) {
    const e = failure(() => run("Bincount", inputs));
    assert.equal(e.code, Code.INVALID_ARGUMENT);
    assert.equal(e.message, message);
  }
  const huge = failure(() => run("Bincount", [i32([1]), i32([2 ** 31 - 1], []), f32([])]));
  assert.equal(huge.code, Code.RESOURCE_EXHAUSTED);
});
