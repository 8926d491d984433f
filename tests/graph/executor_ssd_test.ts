/**
 * The shape of a TF1 Object Detection API post-processor: a while loop over the classes, each
 * iteration running NonMaxSuppressionV5 on that class's scores and writing the result into a
 * TensorList (a DT_VARIANT loop variable), stacked after the loop.
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { ExecutorPlan } from "../../src/graph/executor.ts";
import { MissingOpsError } from "../../src/graph/plan.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const I = DataType.DT_INT32;
const F = DataType.DT_FLOAT;
const V = DataType.DT_VARIANT;
const T = (t: DataType) => ({ T: attrValue.type(t) });

/** The ops this graph needs beyond the loop (kernels written elsewhere). */
const PAYLOAD_OPS = [
  "TensorListReserve",
  "TensorListSetItem",
  "TensorListStack",
  "NonMaxSuppressionV5",
];

function ssdGraph(): GraphBuilder {
  const g = new GraphBuilder();
  const boxes = g.placeholder("boxes", F, [-1, 4]);
  const scores = g.placeholder("scores", F, [-1, -1]);
  const k = (name: string, t: Tensor, controls: string[] = []) =>
    g.op(name, "Const", controls.map((c) => `^${c}`), {
      dtype: attrValue.type(t.dtype),
      value: attrValue.tensor(t),
    });
  const maxOut = 3;
  // Classes = scores' second dim; the list holds one [maxOut] row per class.
  const numClasses = g.op("num_classes", "StridedSlice", [
    g.op("scores_shape", "Shape", [scores], { ...T(F), out_type: attrValue.type(I) }),
    k("b1", Tensor.int32([1])),
    k("e1", Tensor.int32([2])),
    k("s1", Tensor.int32([1])),
  ], {
    ...T(I),
    Index: attrValue.type(I),
    begin_mask: attrValue.int(0),
    end_mask: attrValue.int(0),
    ellipsis_mask: attrValue.int(0),
    new_axis_mask: attrValue.int(0),
    shrink_axis_mask: attrValue.int(1),
  });
  const list = g.op("list", "TensorListReserve", [
    k("elem_shape", Tensor.int32([maxOut])),
    numClasses,
  ], {
    element_dtype: attrValue.type(F),
    shape_type: attrValue.type(I),
  });
  const enter = (name: string, x: string, dtype: DataType, constant: boolean) =>
    g.op(`while/${name}`, "Enter", [x], {
      ...T(dtype),
      frame_name: attrValue.string("while/while_context"),
      is_constant: attrValue.bool(constant),
      parallel_iterations: attrValue.int(32),
    });
  const e0 = enter("Enter", k("zero", Tensor.scalar(I, 0)), I, false);
  const e1 = enter("Enter_1", list, V, false);
  const eBoxes = enter("Enter_boxes", boxes, F, true);
  const eScores = enter("Enter_scores", scores, F, true);
  const eN = enter("Enter_n", numClasses, I, true);
  const m0 = g.op("while/Merge", "Merge", [e0, "while/NextIteration:0"], {
    ...T(I),
    N: attrValue.int(2),
  });
  const m1 = g.op("while/Merge_1", "Merge", [e1, "while/NextIteration_1:0"], {
    ...T(V),
    N: attrValue.int(2),
  });
  const lc = g.op("while/LoopCond", "LoopCond", [g.op("while/Less", "Less", [m0, eN], T(I))]);
  g.op("while/Switch", "Switch", [m0, lc], T(I));
  g.op("while/Switch_1", "Switch", [m1, lc], T(V));
  const c = g.op("while/Identity", "Identity", ["while/Switch:1"], T(I));
  const l = g.op("while/Identity_1", "Identity", ["while/Switch_1:1"], T(V));
  // This class's scores: scores[:, c].
  const classScores = g.op("while/class_scores", "GatherV2", [
    eScores,
    c,
    k("while/axis", Tensor.scalar(I, 1), ["while/Identity"]),
  ], { Tparams: attrValue.type(F), Tindices: attrValue.type(I), Taxis: attrValue.type(I) });
  g.op("while/nms", "NonMaxSuppressionV5", [
    eBoxes,
    classScores,
    k("while/max_out", Tensor.scalar(I, maxOut), ["while/Identity"]),
    k("while/iou", Tensor.scalar(F, 0.5), ["while/Identity"]),
    k("while/score_threshold", Tensor.scalar(F, 0.05), ["while/Identity"]),
    k("while/sigma", Tensor.scalar(F, 0), ["while/Identity"]),
  ], { ...T(F), pad_to_max_output_size: attrValue.bool(true) });
  const set = g.op("while/set", "TensorListSetItem", [l, c, "while/nms:1"], {
    element_dtype: attrValue.type(F),
  });
  const next = g.op("while/add", "AddV2", [
    c,
    k("while/one", Tensor.scalar(I, 1), ["while/Identity"]),
  ], T(I));
  g.op("while/NextIteration", "NextIteration", [next], T(I));
  g.op("while/NextIteration_1", "NextIteration", [set], T(V));
  g.op("while/Exit", "Exit", ["while/Switch:0"], T(I));
  g.op("while/Exit_1", "Exit", ["while/Switch_1:0"], T(V));
  g.op("detection_scores", "TensorListStack", ["while/Exit_1:0", "elem_shape:0"], {
    element_dtype: attrValue.type(F),
    num_elements: attrValue.int(-1),
  });
  return g;
}

Deno.test("an SSD-style loop of NMS over the classes into a TensorList compiles and runs", () => {
  const registry = defaultRegistry();
  const s = new Session(ssdGraph().graph(), [], registry);
  const spec = {
    feeds: [parseTensorName("boxes"), parseTensorName("scores")],
    fetches: [parseTensorName("detection_scores"), parseTensorName("while/Exit")],
  };
  const missing = PAYLOAD_OPS.filter((op) => !registry.get(op));
  if (missing.length > 0) {
    // Only missing kernels stop it: the loop itself compiles (no cycle error).
    assert.throws(() => s.compile(spec, "ssd"), (e: unknown) => {
      assert.ok(e instanceof MissingOpsError, String(e));
      assert.deepEqual([...e.ops.keys()].sort(), missing.sort());
      return true;
    });
    return;
  }
  const plan = s.compile(spec, "ssd");
  assert.ok(plan instanceof ExecutorPlan);
  // Boxes 0 and 1 overlap (IoU 1/1.1 > 0.5); box 2 is apart.
  const boxes = Tensor.float32([0, 0, 1, 1, 0, 0, 1, 1.1, 2, 2, 3, 3], [3, 4]);
  const scores = Tensor.float32([0.9, 0.1, 0.8, 0.95, 0.7, 0.6], [3, 2]);
  const [det, classes] = plan.run([boxes, scores]);
  assert.equal((classes.data as Int32Array)[0], 2);
  assert.deepEqual(det.shape, [2, 3]);
  // Class 0: box 0 (0.9), box 1 suppressed, box 2 (0.7), padding. Class 1: box 1 (0.95), box 0
  // suppressed, box 2 (0.6), padding.
  assert.deepEqual([...(det.data as Float32Array)].map((x) => Math.round(x * 100)), [
    90,
    70,
    0,
    95,
    60,
    0,
  ]);
});
