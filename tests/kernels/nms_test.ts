import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { numberToHalfBits } from "../../src/kernels/elementwise.ts";
import { nmsKernels, stdSort } from "../../src/kernels/nms.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { assertClose, attr, compileOp, runOp } from "./harness.ts";

const run = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = {}) =>
  runOp(nmsKernels, op, inputs, attrs);
const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const scalarF = (v: number) => f32([v], []);
const scalarI = (v: number) => Tensor.int32([v], []);
const ints = (t: Tensor) => Array.from(t.data as Int32Array);

function throwsCode(f: () => unknown, code: Code, text: RegExp): void {
  assert.throws(f, (e) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, text);
    return true;
  });
}

// TensorFlow's test boxes (non_max_suppression_op_test.cc): three clusters of overlapping boxes.
const CLUSTERS = f32([
  0,
  0,
  1,
  1, //
  0,
  0.1,
  1,
  1.1,
  0,
  -0.1,
  1,
  0.9,
  0,
  10,
  1,
  11,
  0,
  10.1,
  1,
  11.1,
  0,
  100,
  1,
  101,
], [6, 4]);
const CLUSTER_SCORES = f32([0.9, 0.75, 0.6, 0.95, 0.5, 0.3]);

Deno.test("NonMaxSuppressionV2/V3 select from three clusters", () => {
  assert.deepEqual(
    ints(run("NonMaxSuppressionV2", [CLUSTERS, CLUSTER_SCORES, scalarI(3), scalarF(0.5)])[0]),
    [3, 0, 5],
  );
  const v3 = (max: number, iou: number, score: number) =>
    ints(
      run("NonMaxSuppressionV3", [
        CLUSTERS,
        CLUSTER_SCORES,
        scalarI(max),
        scalarF(iou),
        scalarF(score),
      ])[0],
    );
  assert.deepEqual(v3(3, 0.5, 0), [3, 0, 5]);
  assert.deepEqual(v3(2, 0.5, 0), [3, 0]);
  assert.deepEqual(v3(30, 0.5, 0), [3, 0, 5]);
  // score_threshold is strict: 0.3 is not > 0.3; 0.5 and 0.6 are suppressed by overlap.
  assert.deepEqual(v3(30, 0.5, 0.3), [3, 0]);
  assert.deepEqual(v3(30, 0.5, 0.95), []);
  // IoU threshold 0: every overlap suppresses; 1: nothing does.
  assert.deepEqual(v3(30, 0, 0), [3, 0, 5]);
  assert.deepEqual(v3(30, 1, 0), [3, 0, 1, 2, 4, 5]);
  // Flipped corners give the same IoUs.
  const flipped = f32([
    1,
    1,
    0,
    0, //
    0,
    0.1,
    1,
    1.1,
    0,
    0.9,
    1,
    -0.1,
    0,
    10,
    1,
    11,
    1,
    10.1,
    0,
    11.1,
    1,
    101,
    0,
    100,
  ], [6, 4]);
  assert.deepEqual(
    ints(
      run("NonMaxSuppressionV3", [
        flipped,
        CLUSTER_SCORES,
        scalarI(3),
        scalarF(0.5),
        scalarF(0),
      ])[0],
    ),
    [3, 0, 5],
  );
});

Deno.test("NMS suppresses only at IoU strictly greater than the threshold", () => {
  // IoU of [0,0,1,1] and [0,0,1,0.5] is exactly 0.5 (0.5 / 1 in float32).
  const boxes = f32([0, 0, 1, 1, 0, 0, 1, 0.5], [2, 4]);
  const scores = f32([0.9, 0.8]);
  const v3 = (iou: number) =>
    ints(
      run("NonMaxSuppressionV3", [boxes, scores, scalarI(10), scalarF(iou), scalarF(0)])[0],
    );
  assert.deepEqual(v3(0.5), [0, 1]);
  assert.deepEqual(v3(0.4999), [0]);
  // A box with no area has IoU 0 with everything.
  const flat = f32([0, 0, 1, 1, 0.5, 0, 0.5, 1], [2, 4]);
  assert.deepEqual(
    ints(run("NonMaxSuppressionV3", [flat, scores, scalarI(10), scalarF(0), scalarF(0)])[0]),
    [0, 1],
  );
});

Deno.test("NMS breaks score ties by the lower box index", () => {
  const disjoint = f32([
    0,
    0,
    1,
    1, //
    0,
    2,
    1,
    3,
    0,
    4,
    1,
    5,
    0,
    6,
    1,
    7,
  ], [4, 4]);
  assert.deepEqual(
    ints(
      run("NonMaxSuppressionV3", [
        disjoint,
        f32([0.5, 0.7, 0.7, 0.5]),
        scalarI(10),
        scalarF(0.5),
        scalarF(0),
      ])[0],
    ),
    [1, 2, 0, 3],
  );
  // Ten identical boxes with one score: only the first survives.
  const same = f32(Array.from({ length: 10 }, () => [0, 0, 1, 1]).flat(), [10, 4]);
  const scores = f32(Array(10).fill(0.9));
  assert.deepEqual(
    ints(run("NonMaxSuppressionV3", [same, scores, scalarI(3), scalarF(0.5), scalarF(0)])[0]),
    [0],
  );
  assert.deepEqual(
    ints(
      run("NonMaxSuppression", [same, scores, scalarI(3)], { iou_threshold: attr.float(0.5) })[0],
    ),
    [0],
  );
});

Deno.test("NonMaxSuppressionV4 pads to max_output_size and counts the valid outputs", () => {
  const [idx, valid] = run(
    "NonMaxSuppressionV4",
    [CLUSTERS, CLUSTER_SCORES, scalarI(5), scalarF(0.5), scalarF(0)],
    { pad_to_max_output_size: attr.bool(true) },
  );
  assert.deepEqual(ints(idx), [3, 0, 5, 0, 0]);
  assert.deepEqual(ints(valid), [3]);
  const [idx2, valid2] = run(
    "NonMaxSuppressionV4",
    [CLUSTERS, CLUSTER_SCORES, scalarI(5), scalarF(0.5), scalarF(0.4)],
  );
  assert.deepEqual(ints(idx2), [3, 0]);
  assert.deepEqual(ints(valid2), [2]);
});

Deno.test("NonMaxSuppressionV5 soft-NMS decays scores by exp(-IoU²/(2σ))", () => {
  const [idx, scores, valid] = run("NonMaxSuppressionV5", [
    CLUSTERS,
    CLUSTER_SCORES,
    scalarI(6),
    scalarF(0.5),
    scalarF(0),
    scalarF(0.5),
  ]);
  // IoU(0,1) = IoU(0,2) = IoU(3,4) = 0.9 / 1.1 = 9/11; IoU(1,2) = 0.8 / 1.2 = 2/3.
  // With σ = 0.5 the weight is exp(-IoU²). Box 1 (0.75 → 0.384) now beats box 5 (0.3); box 2
  // is decayed by both box 0 and box 1.
  assert.deepEqual(ints(idx), [3, 0, 1, 5, 4, 2]);
  const w = (iou: number) => Math.exp(-iou * iou);
  assertClose(
    scores.data as Float32Array,
    [0.95, 0.9, 0.75 * w(9 / 11), 0.3, 0.5 * w(9 / 11), 0.6 * w(9 / 11) * w(2 / 3)],
    1e-6,
  );
  assert.deepEqual(ints(valid), [6]);

  // Without soft-NMS, V5 is V4 with scores: TF's "PadFive" case.
  const [i2, s2, v2] = run(
    "NonMaxSuppressionV5",
    [CLUSTERS, CLUSTER_SCORES, scalarI(5), scalarF(0.5), scalarF(0), scalarF(0)],
    { pad_to_max_output_size: attr.bool(true) },
  );
  assert.deepEqual(ints(i2), [3, 0, 5, 0, 0]);
  assertClose(s2.data as Float32Array, [0.95, 0.9, 0.3, 0, 0]);
  assert.deepEqual(ints(v2), [3]);

  // A score decayed to the threshold or below is dropped.
  const [i3] = run("NonMaxSuppressionV5", [
    CLUSTERS,
    CLUSTER_SCORES,
    scalarI(6),
    scalarF(0.5),
    scalarF(0.35),
    scalarF(0.5),
  ]);
  assert.deepEqual(ints(i3), [3, 0, 1]);
});

Deno.test("NMS validates inputs and refuses unsupported types at load", () => {
  throwsCode(
    () =>
      run("NonMaxSuppressionV3", [CLUSTERS, CLUSTER_SCORES, scalarI(3), scalarF(1.2), scalarF(0)]),
    Code.INVALID_ARGUMENT,
    /iou_threshold must be in \[0, 1\]/,
  );
  throwsCode(
    () =>
      run("NonMaxSuppressionV3", [
        CLUSTERS,
        f32([1, 2, 3, 4, 5]),
        scalarI(3),
        scalarF(0.5),
        scalarF(0),
      ]),
    Code.INVALID_ARGUMENT,
    /scores has incompatible shape/,
  );
  throwsCode(
    () =>
      run("NonMaxSuppressionV5", [
        CLUSTERS,
        CLUSTER_SCORES,
        scalarI(3),
        scalarF(0.5),
        scalarF(0),
        scalarF(-1),
      ]),
    Code.INVALID_ARGUMENT,
    /soft_nms_sigma_val must be >= 0/,
  );
  throwsCode(
    () => compileOp(nmsKernels, "NonMaxSuppressionV3", { T: attr.type(DataType.DT_DOUBLE) }, 5),
    Code.UNIMPLEMENTED,
    /node "test_NonMaxSuppressionV3": attr T=DT_DOUBLE/,
  );
  throwsCode(
    () =>
      run("NonMaxSuppressionV4", [
        CLUSTERS,
        CLUSTER_SCORES,
        scalarI(2 ** 30),
        scalarF(0.5),
        scalarF(0),
      ], {
        pad_to_max_output_size: attr.bool(true),
      }),
    Code.RESOURCE_EXHAUSTED,
    /limit/,
  );
});

Deno.test("NMS in half precision rounds the IoU to half before comparing", () => {
  const h = (v: number[], shape: number[] = [v.length]) =>
    new Tensor(DataType.DT_HALF, shape, Uint16Array.from(v, (x) => numberToHalfBits(x)));
  const boxes = h([0, 0, 1, 1, 0, 0, 1, 0.5], [2, 4]);
  const [idx, scores] = run(
    "NonMaxSuppressionV5",
    [boxes, h([0.75, 0.5]), scalarI(5), h([0.5], []), h([0], []), h([0], [])],
    { T: attr.type(DataType.DT_HALF) },
  );
  assert.deepEqual(ints(idx), [0, 1]);
  assert.equal(scores.dtype, DataType.DT_HALF);
  assert.deepEqual(Array.from(scores.data as Uint16Array), [0x3a00, 0x3800]);
});

Deno.test("CombinedNonMaxSuppression matches TensorFlow's kernel tests", () => {
  const boxes = f32([
    0,
    0,
    0.1,
    0.1, //
    0,
    0.01,
    0.1,
    0.11,
    0,
    -0.01,
    0.1,
    0.09,
    0,
    0.11,
    0.1,
    0.2,
    0,
    0.12,
    0.1,
    0.21,
    0,
    0.3,
    1,
    0.4,
  ], [1, 6, 1, 4]);
  const scores = f32([0.9, 0.75, 0.6, 0.95, 0.5, 0.3], [1, 6, 1]);
  const [b, s, c, v] = run("CombinedNonMaxSuppression", [
    boxes,
    scores,
    scalarI(3),
    scalarI(3),
    scalarF(0.5),
    scalarF(0),
  ]);
  assert.deepEqual([...b.shape], [1, 3, 4]);
  assertClose(b.data as Float32Array, [0, 0.11, 0.1, 0.2, 0, 0, 0.1, 0.1, 0, 0.3, 1, 0.4]);
  assertClose(s.data as Float32Array, [0.95, 0.9, 0.3]);
  assertClose(c.data as Float32Array, [0, 0, 0]);
  assert.deepEqual(ints(v), [3]);

  // Score threshold 0.4 leaves two detections; the rest is zero padding.
  const [b2, s2, , v2] = run("CombinedNonMaxSuppression", [
    boxes,
    scores,
    scalarI(3),
    scalarI(3),
    scalarF(0.5),
    scalarF(0.4),
  ]);
  assertClose(b2.data as Float32Array, [0, 0.11, 0.1, 0.2, 0, 0, 0.1, 0.1, 0, 0, 0, 0]);
  assertClose(s2.data as Float32Array, [0.95, 0.9, 0]);
  assert.deepEqual(ints(v2), [2]);

  // Two classes with per-class boxes (q = 2), pad_per_class, no clipping.
  const boxes2 = f32([
    0,
    0,
    2,
    2,
    0,
    0,
    1,
    1, //
    0,
    0,
    2,
    2,
    5,
    5,
    6,
    6,
  ], [1, 2, 2, 4]);
  const scores2 = f32([0.9, 0.8, 0.7, 0.6], [1, 2, 2]);
  const [b3, s3, c3, v3] = run(
    "CombinedNonMaxSuppression",
    [boxes2, scores2, scalarI(1), scalarI(10), scalarF(0.5), scalarF(0)],
    { pad_per_class: attr.bool(true), clip_boxes: attr.bool(false) },
  );
  // max_size_per_class 1 × 2 classes = 2 rows per batch.
  assert.deepEqual([...b3.shape], [1, 2, 4]);
  assertClose(b3.data as Float32Array, [0, 0, 2, 2, 0, 0, 1, 1]);
  assertClose(s3.data as Float32Array, [0.9, 0.8]);
  assertClose(c3.data as Float32Array, [0, 1]);
  assert.deepEqual(ints(v3), [2]);
});

Deno.test("stdSort sorts like std::sort (a permutation in comparator order)", () => {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (const n of [0, 1, 5, 16, 17, 100, 1000]) {
    const a = Array.from({ length: n }, (_, i) => ({ k: Math.floor(rnd() * 10), i }));
    const b = a.slice();
    stdSort(b, (x, y) => y.k < x.k);
    for (let i = 1; i < n; i++) assert.ok(b[i - 1].k >= b[i].k);
    assert.deepEqual(b.map((e) => e.i).sort((x, y) => x - y), a.map((e) => e.i));
  }
});
