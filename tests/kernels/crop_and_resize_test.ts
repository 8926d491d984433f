import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import { cropAndResizeKernels } from "../../src/kernels/crop_and_resize.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, attr, failure, runOp } from "./harness.ts";

const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);
const crop = (inputs: Tensor[], attrs = {}) =>
  runOp(cropAndResizeKernels, "CropAndResize", inputs, attrs)[0];

const image2x2 = f32([1, 2, 3, 4], [1, 2, 2, 1]);
const u8 = new Tensor(DataType.DT_UINT8, [1, 2, 2, 1], Uint8Array.of(1, 2, 3, 4));

Deno.test("CropAndResize bilinear matches TensorFlow's kernel tests", () => {
  // crop_and_resize_op_test.cc: 2x2 → 1x1 is the centre, 2x2 → 3x3 the bilinear grid.
  const one = crop([u8, f32([0, 0, 1, 1], [1, 4]), i32([0]), i32([1, 1])]);
  assert.deepEqual(one.shape, [1, 1, 1, 1]);
  assert.equal(one.dtype, DataType.DT_FLOAT);
  assert.deepEqual(Array.from(one.data as Float32Array), [2.5]);
  const three = crop([image2x2, f32([0, 0, 1, 1], [1, 4]), i32([0]), i32([3, 3])]);
  assert.deepEqual(Array.from(three.data as Float32Array), [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
  // A flipped box samples in reverse.
  const flipped = crop([image2x2, f32([1, 1, 0, 0], [1, 4]), i32([0]), i32([3, 3])]);
  assert.deepEqual(Array.from(flipped.data as Float32Array), [4, 3.5, 3, 3, 2.5, 2, 2, 1.5, 1]);
});

Deno.test("CropAndResize writes extrapolation_value outside the image", () => {
  const out = crop([image2x2, f32([-1, -1, 1, 1], [1, 4]), i32([0]), i32([3, 3])], {
    extrapolation_value: attr.float(-1),
  });
  assert.deepEqual(Array.from(out.data as Float32Array), [-1, -1, -1, -1, 1, 2, -1, 3, 4]);
});

Deno.test("CropAndResize nearest rounds the sample position half away from zero", () => {
  const image = f32(Array.from({ length: 9 }, (_, i) => i), [1, 3, 3, 1]);
  const out = crop([image, f32([0, 0, 0.25, 0.25], [1, 4]), i32([0]), i32([2, 2])], {
    method: attr.string("nearest"),
  });
  assert.deepEqual(Array.from(out.data as Float32Array), [0, 1, 3, 4]);
  const bilinear = crop([image, f32([0, 0, 0.25, 0.25], [1, 4]), i32([0]), i32([2, 2])]);
  assert.deepEqual(Array.from(bilinear.data as Float32Array), [0, 0.5, 1.5, 2]);
});

Deno.test("CropAndResize picks each box's image and keeps channels", () => {
  const image = f32([1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60, 7, 70, 8, 80], [2, 2, 2, 2]);
  const out = crop([image, f32([0, 0, 1, 1, 0, 0, 0, 0], [2, 4]), i32([1, 0]), i32([1, 1])]);
  assert.deepEqual(out.shape, [2, 1, 1, 2]);
  assertClose(out.data as Float32Array, [6.5, 65, 1, 10]);
});

Deno.test("CropAndResize fails as TensorFlow does on bad boxes and sizes", () => {
  const boxes = f32([0, 0, 1, 1], [1, 4]);
  const bad = failure(() => crop([image2x2, boxes, i32([1]), i32([1, 1])]));
  assert.equal(bad.code, Code.OUT_OF_RANGE);
  assert.equal(bad.message, "box_index has values outside [0, batch_size)");
  const cases: [Tensor[], string][] = [
    [[image2x2, boxes, i32([0, 0]), i32([1, 1])], "box_index has incompatible shape"],
    [[image2x2, f32([0, 0, 1], [1, 3]), i32([0]), i32([1, 1])], "boxes must have 4 columns"],
    [[image2x2, boxes, i32([0]), i32([0, 1])], "crop dimensions must be positive"],
    [[image2x2, boxes, i32([0]), i32([1, 1, 1])], "crop_size must have two elements[3]"],
    [[f32([1, 2], [1, 2, 1]), boxes, i32([0]), i32([1, 1])], "input image must be 4-D[1,2,1]"],
    [
      [image2x2, f32([0, NaN, 1, 1], [1, 4]), i32([0]), i32([1, 1])],
      "Boxes contains at least one element that is not finite",
    ],
  ];
  for (const [inputs, message] of cases) {
    const e = failure(() => crop(inputs));
    assert.equal(e.code, Code.INVALID_ARGUMENT, message);
    assert.equal(e.message, message);
  }
  const huge = failure(() => crop([image2x2, boxes, i32([0]), i32([2 ** 15, 2 ** 15])]));
  assert.equal(huge.code, Code.RESOURCE_EXHAUSTED);
  // No boxes: an empty result.
  const none = crop([image2x2, f32([], [0, 4]), i32([]), i32([2, 2])]);
  assert.deepEqual(none.shape, [0, 2, 2, 1]);
});

Deno.test("CropAndResize refuses an unknown method at load", () => {
  const e = failure(() => crop([image2x2], { method: attr.string("area") }));
  assert.equal(e.code, Code.INVALID_ARGUMENT);
  assert.match(e.message, /^method must be 'bilinear' or 'nearest'area/);
});
