import assert from "node:assert/strict";
import { basicKernels } from "../../src/kernels/basic.ts";
import { concatSplitKernels } from "../../src/kernels/concat_split.ts";
import { createKernels } from "../../src/kernels/create.ts";
import { gatherKernels } from "../../src/kernels/gather.ts";
import { padKernels } from "../../src/kernels/pad.ts";
import { scatterKernels } from "../../src/kernels/scatter.ts";
import { selectKernels } from "../../src/kernels/select.ts";
import { shapeKernels } from "../../src/kernels/shape.ts";
import { planStridedSlice, sliceKernels } from "../../src/kernels/slice.ts";
import { topKKernels } from "../../src/kernels/top_k.ts";
import { transposeKernels } from "../../src/kernels/transpose.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, compileOp, runOp } from "./harness.ts";
import {
  type AttrValue,
  AttrValueSchema,
} from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { create } from "@bufbuild/protobuf";
import { Attrs } from "../../src/kernels/attrs.ts";
import { halfBitsToNumber, numberToHalfBits } from "../../src/kernels/elementwise.ts";
import { Resources } from "../../src/runtime/resources.ts";

/** The array-op families (one file each under src/kernels/). */
const arrayKernels = [
  ...basicKernels,
  ...shapeKernels,
  ...concatSplitKernels,
  ...sliceKernels,
  ...transposeKernels,
  ...padKernels,
  ...createKernels,
  ...selectKernels,
  ...gatherKernels,
  ...scatterKernels,
  ...topKKernels,
];

const run = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = {}) =>
  runOp(arrayKernels, op, inputs, attrs);
const run1 = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = {}) =>
  run(op, inputs, attrs)[0];

const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);
const i64 = (v: number[], shape?: number[]) => Tensor.int64(v, shape);
const str = (v: string[], shape?: number[]) => Tensor.strings(v, shape);
const scalar = (v: number) => Tensor.int32([v], []);
const iota = (n: number, shape: number[]) => f32(Array.from({ length: n }, (_, i) => i), shape);
const bools = (v: boolean[], shape?: number[]) =>
  new Tensor(DataType.DT_BOOL, shape ?? [v.length], Uint8Array.from(v, (b) => (b ? 1 : 0)));

/** The values of a tensor as plain numbers (or decoded strings). */
function vals(t: Tensor): (number | string)[] {
  if (t.dtype === DataType.DT_STRING) return t.strings.map((b) => new TextDecoder().decode(b));
  return Array.from(t.numbers as ArrayLike<number | bigint>, Number);
}

function check(t: Tensor, shape: number[], values: (number | string)[], dtype?: DataType): void {
  assert.deepEqual([...t.shape], shape);
  assert.deepEqual(vals(t), values);
  if (dtype !== undefined) assert.equal(t.dtype, dtype);
}

function throwsInvalid(fn: () => unknown, message: string | RegExp, code = Code.INVALID_ARGUMENT) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, `not a ServingError: ${e}`);
    assert.equal(e.code, code);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

function sameStorage(a: Tensor, b: Tensor): boolean {
  if (Array.isArray(a.data)) return a.data === b.data;
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  return x.buffer === y.buffer;
}

Deno.test("Const returns the same converted tensor every run", () => {
  const v = f32([1, 2, 3], [3]);
  const k = compileOp(arrayKernels, "Const", {
    value: attr.tensor(v),
    dtype: attr.type(DataType.DT_FLOAT),
  });
  const a = k([])[0];
  check(a, [3], [1, 2, 3], DataType.DT_FLOAT);
  assert.equal(k([])[0], a);
  throwsInvalid(
    () =>
      compileOp(arrayKernels, "Const", {
        value: attr.tensor(v),
        dtype: attr.type(DataType.DT_INT32),
      }),
    "Type mismatch between value (float) and dtype (int32)",
  );
  check(
    compileOp(arrayKernels, "Const", { value: attr.tensor(str(["a", "bc"])) })([])[0],
    [2],
    ["a", "bc"],
  );
});

Deno.test("Identity family passes inputs through without copying", () => {
  const x = f32([1, 2], [2]);
  for (
    const op of [
      "Identity",
      "StopGradient",
      "PreventGradient",
      "Snapshot",
      "PlaceholderWithDefault",
    ]
  ) {
    assert.equal(run1(op, [x]), x);
  }
  const s = str(["a"]);
  const out = run("IdentityN", [x, s]);
  assert.equal(out[0], x);
  assert.equal(out[1], s);
  assert.deepEqual(run("NoOp", []), []);
});

Deno.test("Placeholder fails when it was not fed, as TF words it", () => {
  throwsInvalid(
    () =>
      run("Placeholder", [], {
        dtype: attr.type(DataType.DT_FLOAT),
        shape: attr.shape([-1, 784]),
      }),
    "You must feed a value for placeholder tensor 'test_Placeholder' with dtype float and shape [?,784]",
  );
  throwsInvalid(
    () => run("Placeholder", [], { dtype: attr.type(DataType.DT_STRING), shape: attr.shape([]) }),
    "You must feed a value for placeholder tensor 'test_Placeholder' with dtype string",
  );
});

Deno.test("Shape, ShapeN, Size and Rank", () => {
  const x = iota(6, [2, 3]);
  check(run1("Shape", [x]), [2], [2, 3], DataType.DT_INT32);
  check(
    run1("Shape", [x], { out_type: attr.type(DataType.DT_INT64) }),
    [2],
    [2, 3],
    DataType.DT_INT64,
  );
  check(run1("Shape", [scalar(1)]), [0], []);
  const [a, b] = run("ShapeN", [x, str(["a"])], { N: attr.int(2) });
  check(a, [2], [2, 3]);
  check(b, [1], [1]);
  check(run1("Size", [x]), [], [6], DataType.DT_INT32);
  check(run1("Size", [x], { out_type: attr.type(DataType.DT_INT64) }), [], [6], DataType.DT_INT64);
  check(run1("Rank", [x]), [], [2], DataType.DT_INT32);
});

Deno.test("Reshape infers -1, shares storage and words errors as TF", () => {
  const x = iota(6, [2, 3]);
  const y = run1("Reshape", [x, i32([-1])]);
  check(y, [6], [0, 1, 2, 3, 4, 5]);
  assert.ok(sameStorage(x, y));
  check(run1("Reshape", [x, i64([3, -1])]), [3, 2], [0, 1, 2, 3, 4, 5]);
  check(run1("Reshape", [f32([7], [1, 1]), i32([])]), [], [7]);
  check(run1("Reshape", [str(["a", "b"]), i32([2, 1])]), [2, 1], ["a", "b"]);
  // A zero dim in sizes keeps the other dims inferable.
  check(run1("Reshape", [f32([], [0, 3]), i32([-1, 0])]), [3, 0], []);
  throwsInvalid(
    () => run("Reshape", [x, i32([2, 2])]),
    "Input to reshape is a tensor with 6 values, but the requested shape has 4",
  );
  throwsInvalid(
    () => run("Reshape", [x, i32([4, -1])]),
    "Input to reshape is a tensor with 6 values, but the requested shape requires a multiple of 4",
  );
  throwsInvalid(
    () => run("Reshape", [x, i32([-1, -1])]),
    "Only one input size may be -1, not both 0 and 1",
  );
  throwsInvalid(() => run("Reshape", [x, i32([-2, 3])]), "Size 0 must be non-negative, not -2");
});

Deno.test("ExpandDims and Squeeze", () => {
  const x = iota(6, [2, 3]);
  check(run1("ExpandDims", [x, scalar(0)]), [1, 2, 3], [0, 1, 2, 3, 4, 5]);
  check(run1("ExpandDims", [x, scalar(-1)]), [2, 3, 1], [0, 1, 2, 3, 4, 5]);
  check(run1("ExpandDims", [x, i64([1])]), [2, 1, 3], [0, 1, 2, 3, 4, 5]);
  assert.ok(sameStorage(x, run1("ExpandDims", [x, scalar(2)])));
  throwsInvalid(
    () => run("ExpandDims", [x, scalar(4)]),
    "Tried to expand dim index 4 for tensor with 2 dimensions.",
  );
  const y = iota(3, [1, 3, 1]);
  check(run1("Squeeze", [y]), [3], [0, 1, 2]);
  check(run1("Squeeze", [y], { squeeze_dims: attr.ints([-1]) }), [1, 3], [0, 1, 2]);
  check(run1("Squeeze", [y], { axis: attr.ints([0]) }), [3, 1], [0, 1, 2]);
  check(run1("Squeeze", [str(["a"], [1, 1])]), [], ["a"]);
  throwsInvalid(
    () => run("Squeeze", [y], { squeeze_dims: attr.ints([1]) }),
    "Can not squeeze dim[1], expected a dimension of 1, got 3",
  );
  throwsInvalid(
    () => run("Squeeze", [y], { squeeze_dims: attr.ints([3]) }),
    "Tried to squeeze dim index 3 for tensor with 3 dimensions.",
  );
});

Deno.test("ConcatV2 and Concat", () => {
  const a = iota(4, [2, 2]);
  const b = f32([10, 11, 12, 13, 14, 15], [2, 3]);
  check(run1("ConcatV2", [a, b, scalar(1)]), [2, 5], [0, 1, 10, 11, 12, 2, 3, 13, 14, 15]);
  check(run1("ConcatV2", [a, b, i64([-1], [])]), [2, 5], [0, 1, 10, 11, 12, 2, 3, 13, 14, 15]);
  check(run1("ConcatV2", [a, a, scalar(0)]), [4, 2], [0, 1, 2, 3, 0, 1, 2, 3]);
  check(run1("Concat", [scalar(0), a, a]), [4, 2], [0, 1, 2, 3, 0, 1, 2, 3]);
  check(
    run1("ConcatV2", [str(["a", "b"], [2, 1]), str(["c", "d"], [2, 1]), scalar(1)]),
    [2, 2],
    ["a", "c", "b", "d"],
  );
  // Legacy scalars concatenate into a vector.
  check(run1("ConcatV2", [f32([1], []), f32([2], []), scalar(0)]), [2], [1, 2]);
  // Empty inputs contribute nothing.
  check(run1("ConcatV2", [f32([], [0, 2]), a, scalar(0)]), [2, 2], [0, 1, 2, 3]);
  // Large rows take the TypedArray.set path.
  const big = iota(100, [2, 50]);
  const c = run1("ConcatV2", [big, big, scalar(1)]);
  assert.deepEqual([...c.shape], [2, 100]);
  assert.equal(vals(c)[50], 0);
  assert.equal(vals(c)[150], 50);
  throwsInvalid(
    () => run("ConcatV2", [a, b, scalar(0)]),
    "ConcatOp : Dimension 1 in both shapes must be equal: shape[0] = [2,2] vs. shape[1] = [2,3]",
  );
  throwsInvalid(
    () => run("ConcatV2", [a, iota(2, [2]), scalar(0)]),
    "ConcatOp : Ranks of all input tensors should match: shape[0] = [2,2] vs. shape[1] = [2]",
  );
  throwsInvalid(
    () => run("ConcatV2", [a, a, scalar(2)]),
    "ConcatOp : Expected concatenating dimensions in the range [-2, 2), but got 2",
  );
});

Deno.test("Pack and Unpack", () => {
  const a = f32([1, 2]);
  const b = f32([3, 4]);
  check(run1("Pack", [a, b], { N: attr.int(2) }), [2, 2], [1, 2, 3, 4]);
  check(run1("Pack", [a, b], { N: attr.int(2), axis: attr.int(1) }), [2, 2], [1, 3, 2, 4]);
  check(run1("Pack", [a, b], { axis: attr.int(-1) }), [2, 2], [1, 3, 2, 4]);
  check(run1("Pack", [f32([1], []), f32([2], [])]), [2], [1, 2]);
  check(run1("Pack", [str(["x", "y"]), str(["z", "w"])], { axis: attr.int(1) }), [2, 2], [
    "x",
    "z",
    "y",
    "w",
  ]);
  throwsInvalid(() => run("Pack", [a, b], { axis: attr.int(2) }), "axis = 2 not in [-2, 2)");
  throwsInvalid(
    () => run("Pack", [a, f32([1])]),
    "Shapes of all inputs must match: values[0].shape = [2] != values[1].shape = [1]",
  );

  const x = iota(6, [2, 3]);
  const rows = run("Unpack", [x], { num: attr.int(2) });
  check(rows[0], [3], [0, 1, 2]);
  check(rows[1], [3], [3, 4, 5]);
  assert.ok(sameStorage(x, rows[1]));
  const cols = run("Unpack", [x], { num: attr.int(3), axis: attr.int(-1) });
  check(cols[0], [2], [0, 3]);
  check(cols[2], [2], [2, 5]);
  const s = run("Unpack", [str(["a", "b", "c", "d"], [2, 2])], {
    num: attr.int(2),
    axis: attr.int(1),
  });
  check(s[1], [2], ["b", "d"]);
  throwsInvalid(
    () => run("Unpack", [x], { num: attr.int(3) }),
    "Input shape axis 0 must equal 3, got shape [2,3]",
  );
  throwsInvalid(
    () => run("Unpack", [x], { num: attr.int(2), axis: attr.int(2) }),
    "axis = 2 not in [-2, 2)",
  );
});

/** Runs StridedSlice with masks. */
function ss(
  x: Tensor,
  begin: number[],
  end: number[],
  strides: number[],
  masks: { b?: number; e?: number; el?: number; na?: number; sh?: number } = {},
): Tensor {
  return run1("StridedSlice", [x, i32(begin), i32(end), i32(strides)], {
    begin_mask: attr.int(masks.b ?? 0),
    end_mask: attr.int(masks.e ?? 0),
    ellipsis_mask: attr.int(masks.el ?? 0),
    new_axis_mask: attr.int(masks.na ?? 0),
    shrink_axis_mask: attr.int(masks.sh ?? 0),
  });
}

Deno.test("StridedSlice follows TF's mask semantics", async (t) => {
  const x = iota(12, [3, 4]);
  await t.step("x[1:, ::-1]", () => {
    check(ss(x, [1, 0], [0, 0], [1, -1], { b: 2, e: 3 }), [2, 4], [7, 6, 5, 4, 11, 10, 9, 8]);
  });
  await t.step("x[..., 0]", () => {
    check(ss(x, [0, 0], [0, 1], [1, 1], { el: 1, sh: 2 }), [3], [0, 4, 8]);
  });
  await t.step("x[:, tf.newaxis] is a shared reshape", () => {
    const y = ss(x, [0, 0], [0, 0], [1, 1], { b: 1, e: 1, na: 2 });
    check(y, [3, 1, 4], vals(x));
    assert.ok(sameStorage(x, y));
  });
  await t.step("x[tf.newaxis, ..., tf.newaxis]", () => {
    check(ss(x, [0, 0, 0], [0, 0, 0], [1, 1, 1], { el: 2, na: 5 }), [1, 3, 4, 1], vals(x));
  });
  await t.step("x[1] shrinks and shares storage", () => {
    const y = ss(x, [1], [2], [1], { sh: 1 });
    check(y, [4], [4, 5, 6, 7]);
    assert.ok(sameStorage(x, y));
  });
  await t.step("x[-1, 1:3]", () => {
    check(ss(x, [-1, 1], [0, 3], [1, 1], { sh: 1 }), [2], [9, 10]);
  });
  await t.step("x[::-2, -1]", () => {
    check(ss(x, [0, -1], [0, 0], [-2, 1], { b: 1, e: 1, sh: 2 }), [2], [11, 3]);
  });
  await t.step("x[2:0:-1, 3:0:-2]", () => {
    check(ss(x, [2, 3], [0, 0], [-1, -2]), [2, 2], [11, 9, 7, 5]);
  });
  await t.step("x[::-1] reverses rows", () => {
    check(ss(x, [0], [0], [-1], { b: 1, e: 1 }), [3, 4], [8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3]);
  });
  await t.step("x[:, 1::2]", () => {
    check(ss(x, [0, 1], [0, 0], [1, 2], { b: 1, e: 3 }), [3, 2], [1, 3, 5, 7, 9, 11]);
  });
  await t.step("out-of-range bounds clamp; empty ranges give empty tensors", () => {
    check(ss(x, [-100], [100], [1]), [3, 4], vals(x));
    check(ss(x, [5], [10], [1]), [0, 4], []);
    check(ss(x, [2], [1], [1]), [0, 4], []);
    check(ss(x, [0, 3], [0, 0], [1, 1], { b: 1, e: 1 }), [3, 0], []);
  });
  await t.step("ellipsis in the middle of a 3-D input", () => {
    const y = iota(24, [2, 3, 4]);
    check(ss(y, [1, 0, 2], [2, 0, 3], [1, 1, 1], { el: 2, sh: 5 }), [3], [14, 18, 22]);
    check(ss(y, [0, 0, 1], [0, 0, 2], [1, 1, 1], { el: 1, na: 2, sh: 4 }), [2, 3, 1], [
      1,
      5,
      9,
      13,
      17,
      21,
    ]);
    // y[1:, ..., ::-1]
    check(ss(y, [1, 0, 0], [0, 0, 0], [1, 1, -1], { e: 5, b: 4, el: 2 }), [1, 3, 4], [
      15,
      14,
      13,
      12,
      19,
      18,
      17,
      16,
      23,
      22,
      21,
      20,
    ]);
  });
  await t.step("strings and int64 specs", () => {
    const s = str(["a", "b", "c", "d"]);
    check(ss(s, [0], [0], [-1], { b: 1, e: 1 }), [4], ["d", "c", "b", "a"]);
    check(
      run1("StridedSlice", [s, i64([1]), i64([3]), i64([1])]),
      [2],
      ["b", "c"],
    );
    check(ss(s, [-1], [0], [1], { sh: 1 }), [], ["d"]);
  });
  await t.step("complex64 elements move as pairs", () => {
    const c = new Tensor(DataType.DT_COMPLEX64, [3], Float32Array.from([1, 2, 3, 4, 5, 6]));
    const y = ss(c, [0], [0], [-1], { b: 1, e: 1 });
    assert.deepEqual(Array.from(y.data as Float32Array), [5, 6, 3, 4, 1, 2]);
  });
  await t.step("errors", () => {
    throwsInvalid(
      () => ss(x, [3], [4], [1], { sh: 1 }),
      "slice index 3 of dimension 0 out of bounds.",
    );
    throwsInvalid(
      () => ss(x, [-4], [0], [1], { sh: 1 }),
      "slice index -1 of dimension 0 out of bounds.",
    );
    throwsInvalid(() => ss(x, [0], [1], [0]), "strides[0] must be non-zero");
    throwsInvalid(
      () => ss(x, [0, 0], [1, 1], [1, 1], { el: 3 }),
      "Multiple ellipses in slice spec not allowed",
    );
    throwsInvalid(
      () => ss(x, [0, 0, 0], [1, 1, 1], [1, 1, 1]),
      "Index out of range using input dim 2; input has only 2 dims",
    );
    throwsInvalid(
      () => ss(x, [0], [1], [-1], { sh: 1 }),
      "only stride 1 allowed on non-range indexing.",
    );
    throwsInvalid(
      () => run("StridedSlice", [x, i32([0, 0]), i32([1]), i32([1, 1])]),
      "Expected begin, end, and strides to be 1D equal size tensors, but got shapes [2], [1], and [2] instead.",
    );
  });
  await t.step("planStridedSlice exposes TF's processing and final shapes", () => {
    const p = planStridedSlice([3, 4], [1, 0], [0, 0], [1, -1], {
      begin: 2,
      end: 3,
      ellipsis: 0,
      newAxis: 0,
      shrink: 0,
    });
    assert.deepEqual(p.processingShape, [2, 4]);
    assert.deepEqual(p.begin, [1, 3]);
    assert.deepEqual(p.end, [3, -1]);
    assert.equal(p.identity, false);
  });
});

Deno.test("Slice with size -1, views and errors", () => {
  const x = iota(12, [3, 4]);
  check(run1("Slice", [x, i32([1, 1]), i32([2, -1])]), [2, 3], [5, 6, 7, 9, 10, 11]);
  check(run1("Slice", [x, i64([0, 2]), i64([-1, 1])]), [3, 1], [2, 6, 10]);
  const rows = run1("Slice", [x, i32([1, 0]), i32([1, 4])]);
  check(rows, [1, 4], [4, 5, 6, 7]);
  assert.ok(sameStorage(x, rows));
  assert.equal(run1("Slice", [x, i32([0, 0]), i32([-1, -1])]), x);
  check(run1("Slice", [str(["a", "b", "c"]), i32([1]), i32([2])]), [2], ["b", "c"]);
  throwsInvalid(
    () => run("Slice", [x, i32([0, 3]), i32([1, 2])]),
    "Expected size[1] in [0, 1], but got 2",
  );
  throwsInvalid(
    () => run("Slice", [x, i32([4, 0]), i32([1, 2])]),
    "Expected begin[0] in [0, 3], but got 4",
  );
  throwsInvalid(
    () => run("Slice", [x, i32([0]), i32([1])]),
    "Expected begin and size arguments to be 1-D tensors of size 2, but got shapes [1] and [1] instead.",
  );
});

Deno.test("Transpose", () => {
  const x = iota(6, [2, 3]);
  check(run1("Transpose", [x, i32([1, 0])]), [3, 2], [0, 3, 1, 4, 2, 5]);
  const y = iota(24, [2, 3, 4]);
  const t = run1("Transpose", [y, i64([2, 0, 1])]);
  assert.deepEqual([...t.shape], [4, 2, 3]);
  // out[k][i][j] = y[i][j][k]
  const v = vals(t) as number[];
  for (let k = 0; k < 4; k++) {
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) assert.equal(v[k * 6 + i * 3 + j], i * 12 + j * 4 + k);
    }
  }
  // Inner contiguous block kept: perm [1, 0, 2].
  check(run1("Transpose", [iota(8, [2, 2, 2]), i32([1, 0, 2])]), [2, 2, 2], [
    0,
    1,
    4,
    5,
    2,
    3,
    6,
    7,
  ]);
  // Size-1 dims moving around is a reshape, sharing storage.
  const z = iota(3, [1, 3]);
  const zt = run1("Transpose", [z, i32([1, 0])]);
  check(zt, [3, 1], [0, 1, 2]);
  assert.ok(sameStorage(z, zt));
  check(run1("Transpose", [str(["a", "b", "c", "d"], [2, 2]), i32([1, 0])]), [2, 2], [
    "a",
    "c",
    "b",
    "d",
  ]);
  const c = new Tensor(DataType.DT_COMPLEX64, [2, 2], Float32Array.from([1, 1, 2, 2, 3, 3, 4, 4]));
  assert.deepEqual(
    Array.from(run1("Transpose", [c, i32([1, 0])]).data as Float32Array),
    [1, 1, 3, 3, 2, 2, 4, 4],
  );
  throwsInvalid(() => run("Transpose", [x, i32([0, 2])]), "2 is out of range [0 .. 2)");
  throwsInvalid(() => run("Transpose", [x, i32([0, 0])]), "1 is missing from {0,0}.");
  throwsInvalid(
    () => run("Transpose", [x, i32([0])]),
    "transpose expects a vector of size 2. But input(1) is a vector of size 1",
  );
});

Deno.test("Pad, PadV2 and MirrorPad", () => {
  const x = f32([1, 2, 3, 4], [2, 2]);
  check(run1("Pad", [x, i32([1, 1, 2, 0], [2, 2])]), [4, 4], [
    ...[0, 0, 0, 0],
    ...[0, 0, 1, 2],
    ...[0, 0, 3, 4],
    ...[0, 0, 0, 0],
  ]);
  check(run1("PadV2", [x, i64([0, 1, 1, 0], [2, 2]), f32([9], [])]), [3, 3], [
    9,
    1,
    2,
    9,
    3,
    4,
    9,
    9,
    9,
  ]);
  check(run1("Pad", [str(["a", "b"]), i32([1, 1], [1, 2])]), [4], ["", "a", "b", ""]);
  check(run1("Pad", [f32([5], []), i32([], [0, 2])]), [], [5]);
  throwsInvalid(
    () => run("Pad", [x, i32([1, -1, 0, 0], [2, 2])]),
    "Paddings must be non-negative: 1 -1",
  );
  throwsInvalid(
    () => run("Pad", [x, i32([1, 1, 1], [1, 3])]),
    "paddings must be a matrix with 2 columns: [1,3]",
  );

  const m = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  const pads = i32([1, 1, 2, 2], [2, 2]);
  check(run1("MirrorPad", [m, pads], { mode: attr.string("REFLECT") }), [4, 7], [
    ...[6, 5, 4, 5, 6, 5, 4],
    ...[3, 2, 1, 2, 3, 2, 1],
    ...[6, 5, 4, 5, 6, 5, 4],
    ...[3, 2, 1, 2, 3, 2, 1],
  ]);
  check(run1("MirrorPad", [m, pads], { mode: attr.string("SYMMETRIC") }), [4, 7], [
    ...[2, 1, 1, 2, 3, 3, 2],
    ...[2, 1, 1, 2, 3, 3, 2],
    ...[5, 4, 4, 5, 6, 6, 5],
    ...[5, 4, 4, 5, 6, 6, 5],
  ]);
  throwsInvalid(
    () => run("MirrorPad", [m, i32([2, 0, 0, 0], [2, 2])], { mode: attr.string("REFLECT") }),
    "paddings must be less than the dimension size: 2, 0 not less than 2",
  );
});

Deno.test("Fill, ZerosLike and OnesLike", () => {
  check(run1("Fill", [i32([2, 3]), f32([7], [])]), [2, 3], [7, 7, 7, 7, 7, 7]);
  check(run1("Fill", [i64([2]), str(["s"], [])]), [2], ["s", "s"]);
  check(run1("Fill", [i32([]), scalar(4)]), [], [4]);
  throwsInvalid(() => run("Fill", [i32([2, -1]), f32([7], [])]), "Dimension -1 must be >= 0");
  throwsInvalid(
    () => run("Fill", [i32([2]), f32([7, 8])]),
    "value must represent a scalar, got shape [2]",
  );
  check(run1("ZerosLike", [f32([1, 2])]), [2], [0, 0], DataType.DT_FLOAT);
  check(run1("ZerosLike", [i64([1, 2])]), [2], [0, 0], DataType.DT_INT64);
  check(run1("OnesLike", [i64([1, 2])]), [2], [1, 1], DataType.DT_INT64);
  check(run1("OnesLike", [bools([false, true])]), [2], [1, 1], DataType.DT_BOOL);
  const h = run1("OnesLike", [new Tensor(DataType.DT_HALF, [1], new Uint16Array(1))]);
  assert.deepEqual(Array.from(h.data as Uint16Array), [0x3c00]);
  const c = run1("OnesLike", [new Tensor(DataType.DT_COMPLEX64, [1], new Float32Array(2))]);
  assert.deepEqual(Array.from(c.data as Float32Array), [1, 0]);
});

Deno.test("Select and SelectV2", () => {
  const t = f32([1, 2, 3, 4], [2, 2]);
  const e = f32([-1, -2, -3, -4], [2, 2]);
  check(run1("Select", [bools([true, false, false, true], [2, 2]), t, e]), [2, 2], [1, -2, -3, 4]);
  check(run1("Select", [bools([false, true]), t, e]), [2, 2], [-1, -2, 3, 4]);
  assert.equal(run1("Select", [bools([true], []), t, e]), t);
  check(run1("Select", [bools([true, false]), str(["a", "b"]), str(["c", "d"])]), [2], ["a", "d"]);
  throwsInvalid(
    () => run("Select", [bools([true, false, true]), t, e]),
    "Number of batches of 'then' must match size of 'cond', but saw: 2 vs. 3",
  );
  throwsInvalid(
    () => run("Select", [bools([true, false], [1, 2]), t, e]),
    "Inputs to operation test_Select of type Select must have the same size and shape.  Input 0: [1,2] != input 1: [2,2]",
  );
  // SelectV2 broadcasts all three.
  check(run1("SelectV2", [bools([true, false]), t, f32([0], [])]), [2, 2], [1, 0, 3, 0]);
  check(run1("SelectV2", [bools([true, false], [2, 1]), f32([5], []), e]), [2, 2], [5, 5, -3, -4]);
  assert.equal(run1("SelectV2", [bools([false], []), t, e]), e);
  check(run1("SelectV2", [bools([true, false]), str(["x"], []), str(["y", "z"])]), [2], ["x", "z"]);
  throwsInvalid(
    () => run("SelectV2", [bools([true, false, true]), t, e]),
    "condition [3], then [2,2], and else [2,2] must be broadcastable",
  );
});

Deno.test("GatherV2 and Gather", () => {
  const p = iota(10, [5, 2]);
  check(run1("GatherV2", [p, i32([4, 0]), scalar(0)]), [2, 2], [8, 9, 0, 1]);
  check(run1("GatherV2", [p, i64([[0, 4], [2, 2]].flat(), [2, 2]), scalar(0)]), [2, 2, 2], [
    0,
    1,
    8,
    9,
    4,
    5,
    4,
    5,
  ]);
  check(run1("GatherV2", [p, i32([1, 1, 0]), scalar(-1)]), [5, 3], [
    1,
    1,
    0,
    3,
    3,
    2,
    5,
    5,
    4,
    7,
    7,
    6,
    9,
    9,
    8,
  ]);
  check(run1("GatherV2", [p, scalar(3), scalar(0)]), [2], [6, 7]);
  check(run1("Gather", [str(["a", "b", "c"]), i32([2, 2, 0])]), [3], ["c", "c", "a"]);
  // A wide row takes the subarray path.
  const wide = iota(200, [2, 100]);
  const g = run1("GatherV2", [wide, i32([1]), scalar(0)]);
  assert.equal(vals(g)[0], 100);
  assert.equal(vals(g)[99], 199);
  // batch_dims = 1: out[b, j] = params[b, indices[b, j]]
  check(
    run1("GatherV2", [iota(6, [2, 3]), i32([2, 0, 1, 1], [2, 2]), scalar(1)], {
      batch_dims: attr.int(1),
    }),
    [2, 2],
    [2, 0, 4, 4],
  );
  throwsInvalid(
    () => run("GatherV2", [p, i32([0, 7]), scalar(0)]),
    "indices[1] = 7 is not in [0, 5)",
  );
  throwsInvalid(
    () => run("GatherV2", [p, i32([0, 1, -1, 0], [2, 2]), scalar(0)]),
    "indices[1,0] = -1 is not in [0, 5)",
  );
  throwsInvalid(() => run("GatherV2", [p, scalar(5), scalar(0)]), "indices = 5 is not in [0, 5)");
  throwsInvalid(
    () => run("GatherV2", [p, i32([0]), scalar(2)]),
    "Shape must be at least rank 3 but is rank 2",
  );
});

Deno.test("Tile and BroadcastTo", () => {
  const x = f32([1, 2, 3, 4], [2, 2]);
  check(run1("Tile", [x, i32([2, 3])]), [4, 6], [
    ...[1, 2, 1, 2, 1, 2],
    ...[3, 4, 3, 4, 3, 4],
    ...[1, 2, 1, 2, 1, 2],
    ...[3, 4, 3, 4, 3, 4],
  ]);
  check(run1("Tile", [x, i64([1, 0])]), [2, 0], []);
  check(run1("Tile", [str(["a", "b"]), i32([2])]), [4], ["a", "b", "a", "b"]);
  // Long rows repeated use the segment path.
  const long = iota(40, [40]);
  const lt = run1("Tile", [long, i32([3])]);
  assert.deepEqual(vals(lt), [...vals(long), ...vals(long), ...vals(long)]);
  throwsInvalid(
    () => run("Tile", [x, i32([2])]),
    "Expected multiples argument to be a vector of length 2 but got length 1",
  );
  throwsInvalid(() => run("Tile", [x, i32([1, -1])]), "Expected multiples[1] >= 0, but got -1");

  check(run1("BroadcastTo", [f32([1, 2, 3]), i32([2, 3])]), [2, 3], [1, 2, 3, 1, 2, 3]);
  check(run1("BroadcastTo", [f32([1, 2], [2, 1]), i64([2, 3])]), [2, 3], [1, 1, 1, 2, 2, 2]);
  check(run1("BroadcastTo", [str(["s"], []), i32([2])]), [2], ["s", "s"]);
  assert.equal(run1("BroadcastTo", [x, i32([2, 2])]), x);
  throwsInvalid(
    () => run("BroadcastTo", [f32([1, 2]), i32([3])]),
    "Incompatible shapes: [2] vs. [3]",
  );
  throwsInvalid(
    () => run("BroadcastTo", [x, i32([2])]),
    "Unable to broadcast tensor of shape [2,2] to tensor of shape [2]",
  );
});

Deno.test("Range for int32, int64 and float", () => {
  check(run1("Range", [scalar(0), scalar(5), scalar(2)]), [3], [0, 2, 4], DataType.DT_INT32);
  check(run1("Range", [scalar(5), scalar(0), scalar(-2)]), [3], [5, 3, 1]);
  check(run1("Range", [scalar(3), scalar(3), scalar(1)]), [0], []);
  check(
    run1("Range", [i64([1], []), i64([4], []), i64([1], [])], {
      Tidx: attr.type(DataType.DT_INT64),
    }),
    [3],
    [1, 2, 3],
    DataType.DT_INT64,
  );
  const r = run1("Range", [f32([0], []), f32([1], []), f32([0.25], [])], {
    Tidx: attr.type(DataType.DT_FLOAT),
  });
  check(r, [4], [0, 0.25, 0.5, 0.75], DataType.DT_FLOAT);
  // Float32 accumulation: ten steps of 0.1 in float32.
  const tenths = run1("Range", [f32([0], []), f32([1], []), f32([0.1], [])]);
  assert.equal(tenths.size, 10);
  let acc = 0;
  for (let i = 0; i < 10; i++, acc = Math.fround(acc + Math.fround(0.1))) {
    assert.equal((tenths.data as Float32Array)[i], acc);
  }
  throwsInvalid(() => run("Range", [scalar(0), scalar(5), scalar(0)]), "Requires delta != 0: 0");
  throwsInvalid(
    () => run("Range", [scalar(5), scalar(0), scalar(1)]),
    "Requires start <= limit when delta > 0: 5/0",
  );
  throwsInvalid(
    () => run("Range", [i32([0, 1]), scalar(5), scalar(1)]),
    "start must be a scalar, not shape [2]",
  );
});

Deno.test("TopKV2 sorts descending and keeps lower indices first on ties", () => {
  const [v, i] = run("TopKV2", [f32([1, 3, 3, 2]), scalar(2)]);
  check(v, [2], [3, 3], DataType.DT_FLOAT);
  check(i, [2], [1, 2], DataType.DT_INT32);
  const [v2, i2] = run("TopKV2", [f32([5, 1, 5, 7, 0, 5], [2, 3]), scalar(3)]);
  check(v2, [2, 3], [5, 5, 1, 7, 5, 0]);
  check(i2, [2, 3], [0, 2, 1, 0, 2, 1]);
  const [v3, i3] = run("TopKV2", [f32([2, 9, 9, 1]), scalar(1)]);
  check(v3, [1], [9]);
  check(i3, [1], [1]);
  const [v0] = run("TopKV2", [f32([1, 2], [1, 2]), scalar(0)]);
  check(v0, [1, 0], []);
  const [vi, ii] = run("TopKV2", [i64([4, 8, 8]), scalar(2)]);
  check(vi, [2], [8, 8], DataType.DT_INT64);
  check(ii, [2], [1, 2]);
  // Half values compare by value, not by raw bits (-1.0 is 0xbc00, 2.0 is 0x4000).
  const [vh, ih] = run("TopKV2", [
    new Tensor(DataType.DT_HALF, [3], Uint16Array.from([0xbc00, 0x4000, 0x3c00])),
    scalar(2),
  ]);
  assert.deepEqual(Array.from(vh.data as Uint16Array), [0x4000, 0x3c00]);
  check(ih, [2], [1, 2]);
  // Both selection paths (insertion for small k, full sort for large k) agree with a reference.
  const n = 300;
  const data = Array.from({ length: n }, (_, j) => (j * 7919) % 50);
  const ref = data.map((x, j) => [x, j]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const k of [1, 5, 64, 65, 300]) {
    const [vk, ik] = run("TopKV2", [f32(data), scalar(k)]);
    assert.deepEqual(vals(vk), ref.slice(0, k).map((r) => r[0]), `k=${k}`);
    assert.deepEqual(vals(ik), ref.slice(0, k).map((r) => r[1]), `k=${k}`);
  }
  throwsInvalid(
    () => run("TopKV2", [f32([1, 2, 3]), scalar(5)]),
    "input must have at least k columns. Had 3, needed 5",
  );
  throwsInvalid(() => run("TopKV2", [f32([1, 2, 3]), scalar(-1)]), "Need k >= 0, got -1");
  throwsInvalid(
    () => run("TopKV2", [f32([1], []), scalar(1)]),
    "input must be >= 1-D, got shape []",
  );
});

Deno.test("Where, OneHot, ReverseV2 and Unique", () => {
  const w = run1("Where", [bools([true, false, false, true], [2, 2])]);
  check(w, [2, 2], [0, 0, 1, 1], DataType.DT_INT64);
  check(run1("Where", [f32([0, 3, 0])]), [1, 1], [1]);

  check(run1("OneHot", [i32([0, 2, -1]), scalar(3), f32([1], []), f32([0], [])]), [3, 3], [
    ...[1, 0, 0],
    ...[0, 0, 1],
    ...[0, 0, 0],
  ]);
  check(
    run1("OneHot", [i64([1, 0]), scalar(2), f32([5], []), f32([-1], [])], { axis: attr.int(0) }),
    [2, 2],
    [-1, 5, 5, -1],
  );

  const x = iota(6, [2, 3]);
  check(run1("ReverseV2", [x, i32([1])]), [2, 3], [2, 1, 0, 5, 4, 3]);
  check(run1("ReverseV2", [x, i64([0, -1])]), [2, 3], [5, 4, 3, 2, 1, 0]);
  check(run1("ReverseV2", [str(["a", "b"]), i32([0])]), [2], ["b", "a"]);
  throwsInvalid(() => run("ReverseV2", [x, i32([2])]), "'axis'[0] = 2 is out of valid range [0, 1");
  throwsInvalid(() => run("ReverseV2", [x, i32([1, -1])]), "axis 1 specified more than once.");

  const [y, idx] = run("Unique", [f32([1, 1, 2, 4, 4, 4, 7, 8, 8])]);
  check(y, [5], [1, 2, 4, 7, 8]);
  check(idx, [9], [0, 0, 1, 2, 2, 2, 3, 4, 4], DataType.DT_INT32);
  const [ys, is] = run("Unique", [str(["b", "a", "b"])], { out_idx: attr.type(DataType.DT_INT64) });
  check(ys, [2], ["b", "a"]);
  check(is, [3], [0, 1, 0], DataType.DT_INT64);
  throwsInvalid(() => run("Unique", [x]), "unique expects a 1D vector.");
});

Deno.test("arrayKernels registers each op once", () => {
  const ops = arrayKernels.map((k) => k.op);
  assert.equal(new Set(ops).size, ops.length);
  for (
    const op of [
      "Const",
      "StridedSlice",
      "GatherV2",
      "TopKV2",
      "ConcatV2",
      "SelectV2",
      "BroadcastTo",
    ]
  ) {
    assert.ok(ops.includes(op), op);
  }
});

Deno.test("Split cuts evenly along the axis (axis input first)", () => {
  const x = iota(6, [2, 3]);
  const parts = run("Split", [scalar(1), x], { num_split: attr.int(3) });
  assert.equal(parts.length, 3);
  check(parts[0], [2, 1], [0, 3]);
  check(parts[1], [2, 1], [1, 4]);
  check(parts[2], [2, 1], [2, 5]);
  // Along dim 0 each piece is a view of the input.
  const rows = run("Split", [scalar(0), iota(8, [4, 2])], { num_split: attr.int(2) });
  check(rows[0], [2, 2], [0, 1, 2, 3]);
  check(rows[1], [2, 2], [4, 5, 6, 7]);
  const y = iota(8, [4, 2]);
  assert.ok(sameStorage(run("Split", [scalar(0), y], { num_split: attr.int(2) })[1], y));
  // Negative axis, strings, one piece.
  const s = run("Split", [scalar(-1), str(["a", "b", "c", "d"], [2, 2])], {
    num_split: attr.int(2),
  });
  check(s[0], [2, 1], ["a", "c"]);
  check(s[1], [2, 1], ["b", "d"]);
  assert.equal(run1("Split", [scalar(0), x], { num_split: attr.int(1) }).data, x.data);
  throwsInvalid(
    () => run("Split", [scalar(1), x], { num_split: attr.int(2) }),
    "Number of ways to split should evenly divide the split dimension, but got split_dim 1 " +
      "(size = 3) and num_split 2",
  );
  throwsInvalid(
    () => run("Split", [scalar(2), x], { num_split: attr.int(1) }),
    "-input rank(-2) <= split_dim < input rank (2), but got 2",
  );
  throwsInvalid(
    () => run("Split", [i32([1]), x], { num_split: attr.int(1) }),
    "split_dim must be a scalar but has rank 1",
  );
});

Deno.test("SplitV with sizes, a -1 size, and TF's errors", () => {
  const x = iota(10, [2, 5]);
  const split = (sizes: Tensor, axis: number, num: number) =>
    run("SplitV", [x, sizes, scalar(axis)], { num_split: attr.int(num) });
  const [a, b, c] = split(i32([1, -1, 2]), 1, 3);
  check(a, [2, 1], [0, 5]);
  check(b, [2, 2], [1, 2, 6, 7]);
  check(c, [2, 2], [3, 4, 8, 9]);
  const [r0, r1] = split(i64([0, 2]), 0, 2);
  check(r0, [0, 5], []);
  check(r1, [2, 5], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(split(i32([5]), -1, 1)[0].data, x.data);
  throwsInvalid(
    () => split(i32([4]), 1, 1),
    "If there is only one output, it must have the same size as the input. Input size: 5 output size: 4",
  );
  throwsInvalid(() => split(i32([-1, -1]), 1, 2), "There can only be one -1 in the input.");
  throwsInvalid(
    () => split(i32([1, 2]), 1, 2),
    "Determined shape must either match input shape along split_dim exactly if fully specified, " +
      "or be less than the size of the input along split_dim if not fully specified.  Got: 3",
  );
  throwsInvalid(() => split(i32([4, -2, -1]), 1, 3), "Split size at index 1 must be >= 0. Got: -2");
  throwsInvalid(
    () => split(i32([1, 4]), 1, 3),
    "size of the split_tensor must be 1-D and have the same elements as outputs got 1 -D and 2 elements",
  );
  throwsInvalid(
    () => split(i32([1, 4]), 2, 2),
    "-input rank(-2) <= split_dim < input rank (2), but got 2",
  );
  throwsInvalid(
    () => run("SplitV", [x, i32([5]), i32([1, 1])], { num_split: attr.int(1) }),
    "split_dim_tensor must have exactly one element.",
  );
});

Deno.test("GatherNd gathers elements and slices, and names a bad index", () => {
  const p = str(["a", "b", "c", "d"], [2, 2]);
  check(run1("GatherNd", [p, i32([0, 0, 1, 1], [2, 2])]), [2], ["a", "d"]);
  check(run1("GatherNd", [p, i32([1, 0], [2, 1])]), [2, 2], ["c", "d", "a", "b"]);
  check(run1("GatherNd", [p, i64([1, 0, 0, 1], [2, 1, 2])]), [2, 1], ["c", "b"]);
  const x = iota(8, [2, 2, 2]);
  check(run1("GatherNd", [x, i32([0, 1, 1, 0], [2, 2])]), [2, 2], [2, 3, 4, 5]);
  check(run1("GatherNd", [x, i32([1, 1, 1], [3])]), [], [7]);
  // An index depth of 0 takes the whole of params per row.
  check(run1("GatherNd", [i32([1, 2]), i32([], [3, 0])]), [3, 2], [1, 2, 1, 2, 1, 2]);
  check(run1("GatherNd", [x, i32([], [0, 2])]), [0, 2], []);
  throwsInvalid(
    () => run("GatherNd", [p, i32([0, 0, 2, 1], [2, 2])]),
    "indices[1] = [2, 1] does not index into param shape [2,2], node name: test_GatherNd",
  );
  throwsInvalid(
    () => run("GatherNd", [p, i32([0, 0, 0, -1], [1, 2, 2])]),
    "indices[0,1] = [0, -1] does not index into param shape [2,2], node name: test_GatherNd",
  );
  check(
    run1("GatherNd", [iota(4, [2, 2]), i32([0, 0, 2, 1], [2, 2])], {
      bad_indices_policy: attr.string("IGNORE"),
    }),
    [2],
    [0, 0],
  );
  throwsInvalid(
    () => run("GatherNd", [p, i32([0, 0, 0], [1, 3])]),
    "index innermost dimension length must be <= params rank; saw: 3 vs. 2",
  );
  throwsInvalid(
    () => run("GatherNd", [f32([1], []), i32([0], [1])]),
    "params must be at least a vector",
  );
  throwsInvalid(() => run("GatherNd", [p, scalar(0)]), "indices must be at least a vector");
  throwsInvalid(
    () => run("GatherNd", [f32([], [0, 2]), i32([0], [1, 1])]),
    "Requested more than 0 entries, but params is empty.  Params shape: [0,2]",
  );
});

Deno.test("ScatterNd sums updates into zeros", () => {
  const scatter = (indices: Tensor, updates: Tensor, shape: number[]) =>
    run1("ScatterNd", [indices, updates, i32(shape)]);
  check(
    scatter(i32([4, 3, 1, 7], [4, 1]), f32([9, 10, 11, 12]), [8]),
    [8],
    [0, 11, 0, 10, 9, 0, 0, 12],
  );
  // Duplicates add; slices; int32 wraps; int64 indices.
  check(scatter(i32([1, 1], [2, 1]), f32([1, 2]), [3]), [3], [0, 3, 0]);
  check(
    scatter(i64([0, 2], [2, 1]), i32([5, 5, 6, 6], [2, 2]), [3, 2]),
    [3, 2],
    [5, 5, 0, 0, 6, 6],
    DataType.DT_INT32,
  );
  check(
    scatter(i32([0, 0], [2, 1]), i32([2 ** 31 - 1, 1]), [1]),
    [1],
    [-(2 ** 31)],
  );
  check(scatter(i32([1, 0, 0, 1], [2, 2]), i64([3, 4]), [2, 2]), [2, 2], [0, 4, 3, 0]);
  check(scatter(i32([0, 0], [2, 1]), bools([true, false]), [2]), [2], [1, 0], DataType.DT_BOOL);
  check(scatter(i32([0, 0, 1], [3, 1]), str(["a", "b", "c"]), [2]), [2], ["ab", "c"]);
  // 16-bit floats round after every addition: 2048 + 1 is 2048 in half precision.
  const half = new Tensor(
    DataType.DT_HALF,
    [2],
    Uint16Array.from([numberToHalfBits(2048), numberToHalfBits(1)]),
  );
  const h = scatter(i32([0, 0], [2, 1]), half, [1]);
  assert.equal(h.dtype, DataType.DT_HALF);
  assert.equal(halfBitsToNumber((h.data as Uint16Array)[0]), 2048);
  // Nothing to scatter.
  check(scatter(i32([], [0, 1]), f32([]), [2]), [2], [0, 0]);
  throwsInvalid(
    () => scatter(i32([4], [1, 1]), f32([1]), [4]),
    "indices[0] = [4] does not index into shape [4]",
  );
  throwsInvalid(
    () => scatter(i32([0, 1], [2, 1]), f32([1, 2, 3, 4, 5, 6], [2, 3]), [4, 4]),
    "Dimensions [1,2) of input[shape=[4,4]] must match dimensions [1,2) of updates[shape=[2,3]]",
  );
  throwsInvalid(
    () => scatter(i32([0, 1], [2, 1]), f32([1, 2, 3]), [4]),
    "Dimensions [0,1) of indices[shape=[2,1]] must match dimensions [0,1) of updates[shape=[3]]",
  );
  throwsInvalid(
    () =>
      scatter(i32(new Array(8).fill(0), [2, 2, 2]), i32(new Array(8).fill(0), [2, 2, 2]), [
        0,
        3,
        2,
      ]),
    "Indices and updates specified for empty output.  indices shape: [2,2,2]",
  );
  throwsInvalid(
    () => scatter(scalar(0), f32([1]), [2]),
    "Indices shape must have rank at least one. Found:[]",
  );
  throwsInvalid(
    () => run("ScatterNd", [i32([0], [1, 1]), f32([1]), i32([2], [1, 1])]),
    "Shape must be a vector",
  );
  throwsInvalid(() => scatter(i32([0], [1, 1]), f32([1]), [-2]), "Dimension -2 must be >= 0");
});

Deno.test("EnsureShape passes compatible tensors and words a mismatch as TF", () => {
  const x = iota(6, [2, 3]);
  const ensure = (t: Tensor, shape: AttrValue) => run1("EnsureShape", [t], { shape });
  assert.equal(ensure(x, attr.shape([-1, 3])).data, x.data);
  assert.equal(ensure(x, attr.shape([2, 3])).data, x.data);
  const unknownRank = create(AttrValueSchema, {
    value: { case: "shape", value: { unknownRank: true } },
  });
  assert.equal(ensure(x, unknownRank).data, x.data);
  throwsInvalid(
    () => ensure(f32([1, 2, 3]), attr.shape([-1, 3])),
    "Shape of tensor input_0 [3] is not compatible with expected shape [?,3].",
  );
  throwsInvalid(
    () => ensure(x, attr.shape([3, 3])),
    "Shape of tensor input_0 [2,3] is not compatible with expected shape [3,3].",
  );
  // With input names from the runtime, the message names the input as TF does.
  const kernel = arrayKernels.find((k) => k.op === "EnsureShape")!;
  const ctx = {
    name: "es",
    op: "EnsureShape",
    attr: new Attrs("es", { shape: attr.shape([3, 3]) }),
    numInputs: 1,
    resources: new Resources(),
    compileFunction: () => {
      throw new Error("none");
    },
    inputNames: ["x"],
    inputOps: ["Placeholder"],
  };
  throwsInvalid(
    () => kernel.compile(ctx)([f32([1, 2, 3])]),
    "Shape of tensor x [3] is not compatible with expected shape [3,3].",
  );
});

Deno.test("Reverse (v1) takes a bool per dim", () => {
  const x = iota(6, [2, 3]);
  check(run1("Reverse", [x, bools([false, true])]), [2, 3], [2, 1, 0, 5, 4, 3]);
  check(run1("Reverse", [x, bools([true, true])]), [2, 3], [5, 4, 3, 2, 1, 0]);
  check(run1("Reverse", [x, bools([true, false])]), [2, 3], [3, 4, 5, 0, 1, 2]);
  assert.equal(run1("Reverse", [x, bools([false, false])]).data, x.data);
  check(run1("Reverse", [f32([7], []), bools([])]), [], [7]);
  throwsInvalid(
    () => run("Reverse", [x, bools([true])]),
    "'dims' must have the same number of values as 'input' has dimensions. 'input' has 2'dims' has 1 values",
  );
  throwsInvalid(
    () => run("Reverse", [x, bools([true, true], [1, 2])]),
    "'dims' must be 1-dimension, not 2",
  );
  throwsInvalid(
    () => run("Reverse", [f32([1], new Array(9).fill(1)), bools(new Array(9).fill(true))]),
    "reverse is not implemented for tensors of rank > 8.",
    Code.UNIMPLEMENTED,
  );
});

Deno.test("array ops refuse outputs over the tensor limit before allocating", () => {
  const big = 2 ** 15;
  const cases: [string, Tensor[], Record<string, AttrValue>?][] = [
    ["Fill", [i32([big, big]), f32([0], [])]],
    ["Range", [scalar(0), scalar(2 ** 30), scalar(1)]],
    ["Tile", [f32([1], [1, 1]), i32([big, big])]],
    ["BroadcastTo", [f32([1]), i32([big, big])]],
    ["Pad", [f32([1], [1, 1]), i32([0, big, 0, big], [2, 2])]],
    ["OneHot", [i32([0, 1], [2]), scalar(2 ** 28), f32([1], []), f32([0], [])]],
    ["GatherV2", [
      new Tensor(DataType.DT_FLOAT, [1, 2 ** 10], new Float32Array(2 ** 10)),
      new Tensor(DataType.DT_INT32, [2 ** 19], new Int32Array(2 ** 19)),
      scalar(0),
    ]],
  ];
  for (const [op, inputs, attrs] of cases) {
    assert.throws(
      () => run(op, inputs, attrs),
      (e: unknown) => e instanceof ServingError && e.code === Code.RESOURCE_EXHAUSTED,
      op,
    );
  }
});

Deno.test("BroadcastArgs, InvertPermutation and LinSpace as TF's kernels", () => {
  check(run1("BroadcastArgs", [i32([2, 1, 3]), i32([4, 1])]), [3], [2, 4, 3]);
  check(run1("BroadcastArgs", [i64([1, 0]), i64([5, 1])]), [2], [5, 0], DataType.DT_INT64);
  throwsInvalid(
    () => run("BroadcastArgs", [i32([2, 3]), i32([4])]),
    "Incompatible shapes: [2,3] vs. [4]",
  );
  throwsInvalid(() => run("BroadcastArgs", [i32([2], []), i32([4])]), "In[0] must be a vector.[]");

  check(run1("InvertPermutation", [i32([3, 4, 0, 2, 1])]), [5], [2, 4, 3, 0, 1]);
  throwsInvalid(() => run("InvertPermutation", [i32([0, 2])]), "2 is not between 0 and 2");
  throwsInvalid(() => run("InvertPermutation", [i32([1, 1])]), "1 is duplicated in the input.");

  check(run1("LinSpace", [f32([10], []), f32([12], []), scalar(3)]), [3], [10, 11, 12]);
  // float32 steps: start + step * i rounded in float32; the last value is exactly stop.
  const step = Math.fround(1 / 10);
  check(run1("LinSpace", [f32([0], []), f32([1], []), scalar(11)]), [11], [
    ...Array.from({ length: 10 }, (_, i) => Math.fround(step * i)),
    1,
  ]);
  check(run1("LinSpace", [f32([5], []), f32([7], []), scalar(1)]), [1], [5]);
  throwsInvalid(
    () => run("LinSpace", [f32([0], []), f32([1], []), scalar(0)]),
    "Requires num > 0: 0",
  );
});

Deno.test("ReverseSequence reverses each batch entry's prefix, as TF's kernel", () => {
  const seqDim1 = { seq_dim: attr.int(1), batch_dim: attr.int(0) };
  check(
    run1("ReverseSequence", [i32([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]), i64([3, 1])], seqDim1),
    [2, 4],
    [3, 2, 1, 4, 5, 6, 7, 8],
  );
  const seqDim0 = { seq_dim: attr.int(0), batch_dim: attr.int(1) };
  check(
    run1("ReverseSequence", [i32([1, 2, 3, 4, 5, 6], [3, 2]), i32([2, 3])], seqDim0),
    [3, 2],
    [3, 6, 1, 4, 5, 2],
  );
  throwsInvalid(
    () => run("ReverseSequence", [i32([1, 2], [1, 2]), i32([3])], seqDim1),
    "seq_lens(0) > input.dims(1)",
  );
  throwsInvalid(
    () => run("ReverseSequence", [i32([1, 2], [1, 2]), i32([1, 1])], seqDim1),
    "Length of seq_lengths != input.dims(0), (2 vs. 1)",
  );
  throwsInvalid(
    () => run("ReverseSequence", [i32([1, 2]), i32([1])], seqDim1),
    "seq_dim must be < input rank ( 1 vs. 1)",
  );
});

Deno.test("MatrixBandPart keeps the band (TF's documented examples)", () => {
  const m = i32([0, 1, 2, 3, -1, 0, 1, 2, -2, -1, 0, 1, -3, -2, -1, 0], [4, 4]);
  check(run1("MatrixBandPart", [m, i64([1], []), i64([-1], [])]), [4, 4], [
    0,
    1,
    2,
    3,
    -1,
    0,
    1,
    2,
    0,
    -1,
    0,
    1,
    0,
    0,
    -1,
    0,
  ]);
  check(run1("MatrixBandPart", [m, i64([2], []), i64([1], [])]), [4, 4], [
    0,
    1,
    0,
    0,
    -1,
    0,
    1,
    0,
    -2,
    -1,
    0,
    1,
    0,
    -2,
    -1,
    0,
  ]);
  // Batched, float: the lower triangle.
  const ones = f32(new Array(8).fill(1), [2, 2, 2]);
  check(run1("MatrixBandPart", [ones, scalar(-1), scalar(0)]), [2, 2, 2], [1, 0, 1, 1, 1, 0, 1, 1]);
  throwsInvalid(
    () => run("MatrixBandPart", [m, scalar(5), scalar(0)]),
    "num_lower must be negative or less or equal to number of rows (4) got: 5",
  );
  throwsInvalid(
    () => run("MatrixBandPart", [i32([1, 2]), scalar(0), scalar(0)]),
    "input must be at least 2-dim, received shape: [2]",
  );
});

Deno.test("UniqueWithCounts adds how often each distinct value occurs", () => {
  const [y, idx, count] = run("UniqueWithCounts", [i32([1, 1, 2, 4, 4, 4, 7, 8, 8])]);
  check(y, [5], [1, 2, 4, 7, 8]);
  check(idx, [9], [0, 0, 1, 2, 2, 2, 3, 4, 4]);
  check(count, [5], [2, 1, 3, 1, 2], DataType.DT_INT32);
  const [, , c64] = run("UniqueWithCounts", [str(["a", "b", "a"])], {
    out_idx: attr.type(DataType.DT_INT64),
  });
  check(c64, [2], [2, 1], DataType.DT_INT64);
});

Deno.test("ListDiff keeps the elements of x not in y, with their positions", () => {
  const [out, idx] = run("ListDiff", [i32([1, 2, 3, 4, 5, 6]), i32([1, 3, 5])]);
  check(out, [3], [2, 4, 6]);
  check(idx, [3], [1, 3, 5]);
  const [nan] = run("ListDiff", [f32([NaN, 1, -0]), f32([NaN, 0])]);
  assert.ok(Number.isNaN((nan.data as Float32Array)[0]));
  assert.equal(nan.size, 2);
  const [s] = run("ListDiff", [str(["a", "b"]), str(["b"])]);
  check(s, [1], ["a"]);
  throwsInvalid(() => run("ListDiff", [i32([1], []), i32([1])]), "x should be a 1D vector.");
});

Deno.test("ConcatV2 of float32 along every axis matches a reference, short and long runs", () => {
  let seed = 9;
  const rand = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % k;
  };
  for (let t = 0; t < 40; t++) {
    const rank = 1 + rand(4);
    const axis = rand(rank);
    // Long runs (≥ 64 floats) only at rank ≤ 2, to keep the tensors small.
    const long = t % 2 === 0 && rank <= 2;
    const base = Array.from({ length: rank }, () => 1 + rand(long ? 70 : 5));
    const parts = Array.from({ length: 2 + rand(2) }, () => {
      const s = base.slice();
      s[axis] = 1 + rand(long ? 90 : 5);
      const n = s.reduce((a, b) => a * b, 1);
      return f32(Array.from({ length: n }, () => rand(10000)), s);
    });
    const out = run1("ConcatV2", [...parts, scalar(axis)]);
    const outShape = base.slice();
    outShape[axis] = parts.reduce((a, p) => a + p.shape[axis], 0);
    assert.deepEqual(out.shape, outShape);
    // Reference: per output element, find its part along the axis.
    const outer = base.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = base.slice(axis + 1).reduce((a, b) => a * b, 1);
    const want: number[] = [];
    for (let o = 0; o < outer; o++) {
      for (const p of parts) {
        const len = p.shape[axis] * inner;
        const d = p.data as Float32Array;
        for (let k = 0; k < len; k++) want.push(d[o * len + k]);
      }
    }
    assert.deepEqual(Array.from(out.data as Float32Array), want);
  }
});
