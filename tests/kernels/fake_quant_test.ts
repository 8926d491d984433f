import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import { fakeQuantKernels } from "../../src/kernels/fake_quant.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, failure, runOp } from "./harness.ts";

const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const values = (t: Tensor) => Array.from(t.data as Float32Array);
const fround = (v: number[]) => v.map(Math.fround);

Deno.test("FakeQuantWithMinMaxArgs: no nudging, a quarter step from -10 (TF's kernel test)", () => {
  const out = runOp(fakeQuantKernels, "FakeQuantWithMinMaxArgs", [
    f32([-10.1, -10, -9.9, -9.75, 53.75, 53.8], [2, 3]),
  ], { min: attr.float(-10), max: attr.float(53.75) })[0];
  assert.deepEqual(out.shape, [2, 3]);
  assert.deepEqual(values(out), [-10, -10, -10, -9.75, 53.75, 53.75]);
});

Deno.test("FakeQuantWithMinMaxArgs nudges the range so zero is a level", () => {
  // min -0.1: zero point 0.4 rounds to 0, so the range becomes [0, 63.75].
  const out = runOp(fakeQuantKernels, "FakeQuantWithMinMaxArgs", [
    f32([-0.26, -0.25, -0.24, 0, 63.5, 63.6]),
  ], { min: attr.float(-0.1), max: attr.float(63.65) })[0];
  assert.deepEqual(values(out), fround([0, 0, 0, 0, 63.5, 63.5]));
  // narrow_range: levels 1..255, so with [-10, 53.5] the step is still a quarter.
  const narrow = runOp(fakeQuantKernels, "FakeQuantWithMinMaxArgs", [f32([-10.1, 0.1, 53.6])], {
    min: attr.float(-10),
    max: attr.float(53.5),
    narrow_range: attr.bool(true),
  })[0];
  assert.deepEqual(values(narrow), [-10, 0, 53.5]);
});

Deno.test("FakeQuantWithMinMaxVars and PerChannel read the range from inputs", () => {
  const vars = runOp(fakeQuantKernels, "FakeQuantWithMinMaxVars", [
    f32([-10.1, -9.9, 53.8]),
    f32([-10], []),
    f32([53.75], []),
  ])[0];
  assert.deepEqual(values(vars), [-10, -10, 53.75]);
  const zero = runOp(fakeQuantKernels, "FakeQuantWithMinMaxVars", [
    f32([3, -4]),
    f32([0], []),
    f32([0], []),
  ])[0];
  assert.deepEqual(values(zero), [0, 0]);
  const perChannel = runOp(fakeQuantKernels, "FakeQuantWithMinMaxVarsPerChannel", [
    f32([-10.1, 0.3, 53.8, 0.6], [2, 2]),
    f32([-10, 0]),
    f32([53.75, 0]),
  ])[0];
  assert.deepEqual(values(perChannel), [-10, 0, 53.75, 0]);
});

Deno.test("FakeQuant refuses TF's invalid attrs and sizes", () => {
  const e = failure(() =>
    runOp(fakeQuantKernels, "FakeQuantWithMinMaxArgs", [f32([1])], {
      min: attr.float(6),
      max: attr.float(-6),
    })
  );
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  assert.equal(e.message, "min has to be smaller than max, was: 6 >= -6");
  const bits = failure(() =>
    runOp(fakeQuantKernels, "FakeQuantWithMinMaxVars", [f32([1])], { num_bits: attr.int(17) })
  );
  assert.equal(bits.message, "num_bits must be between 2 and 16, inclusive");
  const size = failure(() =>
    runOp(fakeQuantKernels, "FakeQuantWithMinMaxVarsPerChannel", [
      f32([1, 2], [1, 2]),
      f32([0]),
      f32([1, 1]),
    ])
  );
  assert.equal(size.message, "min has incorrect size, expected 2 was 1");
});
