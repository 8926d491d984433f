import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import { halfBitsToNumber, numberToHalfBits } from "../../src/kernels/elementwise.ts";
import { segmentKernels } from "../../src/kernels/segment.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { failure, runOp } from "./harness.ts";

const run = (op: string, inputs: Tensor[]) => runOp(segmentKernels, op, inputs)[0];
const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);

Deno.test("SegmentSum/Mean/Prod/Min/Max reduce sorted segments; gaps are 0 (Prod: 1)", () => {
  const data = f32([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
  const ids = i32([0, 0, 2, 2]);
  const cases: [string, number[]][] = [
    ["SegmentSum", [4, 6, 0, 0, 12, 14]],
    ["SegmentMean", [2, 3, 0, 0, 6, 7]],
    ["SegmentProd", [3, 8, 1, 1, 35, 48]],
    ["SegmentMin", [1, 2, 0, 0, 5, 6]],
    ["SegmentMax", [3, 4, 0, 0, 7, 8]],
  ];
  for (const [op, want] of cases) {
    const out = run(op, [data, ids]);
    assert.deepEqual(out.shape, [3, 2], op);
    assert.deepEqual(Array.from(out.data as Float32Array), want, op);
  }
  // A single-row segment is copied: -0 stays -0.
  const neg = run("SegmentSum", [f32([-0]), i32([0])]);
  assert.ok(Object.is((neg.data as Float32Array)[0], -0));
  // Empty input: zero rows.
  assert.deepEqual(run("SegmentSum", [f32([], [0, 3]), i32([])]).shape, [0, 3]);
});

Deno.test("Segment ops compute in the element type: int32 wraps, integer Mean truncates", () => {
  const out = run("SegmentSum", [i32([2 ** 31 - 1, 1]), i32([0, 0])]);
  assert.deepEqual(Array.from(out.data as Int32Array), [-(2 ** 31)]);
  const prod = run("SegmentProd", [i32([65536, 65536]), i32([0, 0])]);
  assert.deepEqual(Array.from(prod.data as Int32Array), [0]);
  const mean = run("SegmentMean", [i32([-7, 0]), i32([0, 0])]);
  assert.deepEqual(Array.from(mean.data as Int32Array), [-3]);
  const big = run("SegmentSum", [Tensor.int64([2n ** 62n, 2n ** 62n]), i32([0, 0])]);
  assert.deepEqual(Array.from(big.data as BigInt64Array), [-(2n ** 63n)]);
  // float32 rounds at every step: 2^24 + 1 + 1 is 2^24 in float32, not 2^24 + 2.
  const f = run("SegmentSum", [f32([2 ** 24, 1, 1]), i32([0, 0, 0])]);
  assert.deepEqual(Array.from(f.data as Float32Array), [2 ** 24]);
  const h = (v: number) => numberToHalfBits(v);
  const half = new Tensor(DataType.DT_HALF, [3], Uint16Array.of(h(2048), h(1), h(1)));
  const hs = run("SegmentSum", [half, i32([0, 0, 0])]);
  assert.deepEqual(Array.from(hs.data as Uint16Array, halfBitsToNumber), [2048]);
});

Deno.test("Segment ops fail as TensorFlow does on bad segment ids", () => {
  const data = f32([1, 2, 3]);
  const cases: [Tensor, Tensor, string][] = [
    [data, i32([0, 2, 1]), "segment ids are not increasing"],
    [
      data,
      i32([-1, 0, 0]),
      "Segment id -1 out of range [0, 1), possibly because 'segment_ids' " +
      "input is not sorted.",
    ],
    [data, i32([-3, -2, -2]), "segment ids must be >= 0"],
    [data, i32([0, 0]), "segment_ids should be the same size as dimension 0 of input."],
    [data, i32([0, 0, 0], [3, 1]), "segment_ids should be a vector."],
  ];
  for (const [d, ids, message] of cases) {
    const e = failure(() => run("SegmentSum", [d, ids]));
    assert.equal(e.code, Code.INVALID_ARGUMENT);
    assert.equal(e.message, message);
  }
});

Deno.test("SegmentSum refuses an output the last id makes too large, before allocating", () => {
  const e = failure(() => run("SegmentSum", [f32([1, 2], [2, 1]), i32([0, 2 ** 31 - 2])]));
  assert.equal(e.code, Code.RESOURCE_EXHAUSTED);
});

Deno.test("UnsortedSegment ops fold rows by id in any order; negative ids are dropped", () => {
  const data = f32([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
  const ids = i32([2, 0, -1, 2]);
  const num = i32([4], []);
  const lo = -3.4028234663852886e38;
  const cases: [string, number[]][] = [
    ["UnsortedSegmentSum", [3, 4, 0, 0, 8, 10, 0, 0]],
    ["UnsortedSegmentProd", [3, 4, 1, 1, 7, 16, 1, 1]],
    ["UnsortedSegmentMax", [3, 4, lo, lo, 7, 8, lo, lo]],
    ["UnsortedSegmentMin", [3, 4, -lo, -lo, 1, 2, -lo, -lo]],
  ];
  for (const [op, want] of cases) {
    const out = run(op, [data, ids, num]);
    assert.deepEqual(out.shape, [4, 2], op);
    assert.deepEqual(Array.from(out.data as Float32Array), want, op);
  }
  // Ids of rank 2: the leading dims of data are the ids' shape.
  const out = run("UnsortedSegmentSum", [
    i32([1, 2, 3, 4], [2, 2]),
    i32([1, 1, 0, 1], [2, 2]),
    Tensor.int64([2], []),
  ]);
  assert.deepEqual(out.shape, [2]);
  assert.deepEqual(Array.from(out.data as Int32Array), [3, 7]);
  const i8 = new Tensor(DataType.DT_INT8, [1], Int8Array.of(5));
  const mx = run("UnsortedSegmentMax", [i8, i32([1]), i32([2], [])]);
  assert.deepEqual(Array.from(mx.data as Int8Array), [-128, 5]);
});

Deno.test("UnsortedSegment ops fail as TensorFlow does on bad inputs", () => {
  const data = f32([1, 2, 3, 4], [2, 2]);
  const cases: [Tensor[], string][] = [
    [[data, i32([0, 5]), i32([3], [])], "segment_ids[1] = 5 is out of range [0, 3)"],
    [
      [data, i32([0, 3], [1, 2]), i32([3], [])],
      "data.shape = [2,2] does not start with segment_ids.shape = [1,2]",
    ],
    [[data, i32([0, 1]), i32([3])], "num_segments should be a scalar, not shape [1]"],
    [[data, i32([0, 1]), i32([-1], [])], "Input num_segments == -1 must not be negative."],
  ];
  for (const [inputs, message] of cases) {
    const e = failure(() => run("UnsortedSegmentSum", inputs));
    assert.equal(e.code, Code.INVALID_ARGUMENT);
    assert.equal(e.message, message);
  }
  const big = failure(() =>
    run("UnsortedSegmentSum", [data, i32([0, 1]), Tensor.int64([2n ** 40n], [])])
  );
  assert.equal(big.code, Code.RESOURCE_EXHAUSTED);
  // No data: every row holds the initial value and ids are not checked (as TF).
  const empty = run("UnsortedSegmentSum", [f32([], [0]), i32([]), i32([2], [])]);
  assert.deepEqual(Array.from(empty.data as Float32Array), [0, 0]);
});

Deno.test("Segment ops refuse complex data (UNIMPLEMENTED)", () => {
  const c = new Tensor(DataType.DT_COMPLEX64, [1], new Float32Array(2));
  assert.equal(failure(() => run("SegmentSum", [c, i32([0])])).code, Code.UNIMPLEMENTED);
});
