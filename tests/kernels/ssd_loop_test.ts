/**
 * The shape of a TF Object Detection API SSD post-processor: a TF1 while loop over the batch
 * whose body runs NonMaxSuppressionV5 on one image and writes the kept boxes and scores into
 * TensorLists, stacked after the loop. The loop kernels (Enter/Merge/Switch/LoopCond/
 * NextIteration/Exit) are the control-flow executor's; until they are registered this test is
 * skipped.
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose } from "./harness.ts";

const F = DataType.DT_FLOAT;
const I = DataType.DT_INT32;
const V = DataType.DT_VARIANT;
const T = (t: DataType) => ({ T: attrValue.type(t) });
const LOOP_OPS = ["Enter", "Exit", "LoopCond", "Merge", "NextIteration", "Switch"];

/** A TF1 while loop as tf.while_loop builds it; returns the Exit outputs. */
function whileLoop(
  g: GraphBuilder,
  p: string,
  vars: { init: string; dtype: DataType }[],
  invariants: { value: string; dtype: DataType }[],
  cond: (vs: string[], inv: string[]) => string,
  body: (vs: string[], inv: string[]) => string[],
): string[] {
  const enter = (dtype: DataType, constant: boolean) => ({
    ...T(dtype),
    frame_name: attrValue.string(p),
    is_constant: attrValue.bool(constant),
    parallel_iterations: attrValue.int(10),
  });
  const merges = vars.map((v, i) => {
    g.op(`${p}/Enter_${i}`, "Enter", [v.init], enter(v.dtype, false));
    return g.op(`${p}/Merge_${i}`, "Merge", [`${p}/Enter_${i}:0`, `${p}/NextIteration_${i}:0`], {
      ...T(v.dtype),
      N: attrValue.int(2),
    });
  });
  const inv = invariants.map((v, i) =>
    g.op(`${p}/EnterInv_${i}`, "Enter", [v.value], enter(v.dtype, true))
  );
  const lc = g.op(`${p}/LoopCond`, "LoopCond", [cond(merges, inv)]);
  const ids = vars.map((v, i) => {
    g.op(`${p}/Switch_${i}`, "Switch", [merges[i], lc], T(v.dtype));
    return g.op(`${p}/Identity_${i}`, "Identity", [`${p}/Switch_${i}:1`], T(v.dtype));
  });
  body(ids, inv).forEach((n, i) =>
    g.op(`${p}/NextIteration_${i}`, "NextIteration", [n], T(vars[i].dtype))
  );
  return vars.map((v, i) => g.op(`${p}/Exit_${i}`, "Exit", [`${p}/Switch_${i}:0`], T(v.dtype)));
}

Deno.test({
  name: "SSD-style post-processing: a while loop over the batch with NMSV5 and TensorLists",
  ignore: LOOP_OPS.some((op) => defaultRegistry().get(op) === undefined),
  fn() {
    const g = new GraphBuilder();
    const boxes = g.placeholder("boxes", F, [2, 6, 4]);
    const scores = g.placeholder("scores", F, [2, 6]);
    const c = (name: string, t: Tensor) => g.constant(name, t);
    const batch = c("batch", Tensor.int32([2], []));
    const zero = c("zero", Tensor.int32([0], []));
    const boxShape = c("box_shape", Tensor.int32([3, 4]));
    const scoreShape = c("score_shape", Tensor.int32([3]));
    const listAttrs = {
      element_dtype: attrValue.type(F),
      shape_type: attrValue.type(I),
    };
    const boxList = g.op("boxes_list", "TensorListReserve", [boxShape, batch], listAttrs);
    const scoreList = g.op("scores_list", "TensorListReserve", [scoreShape, batch], listAttrs);
    const params = [
      c("max_out", Tensor.int32([3], [])),
      c("iou", Tensor.float32([0.5], [])),
      c("score_threshold", Tensor.float32([0], [])),
      c("sigma", Tensor.float32([0.5], [])),
      c("one", Tensor.int32([1], [])),
      c("axis", Tensor.int32([0], [])),
    ];
    const [, outBoxes, outScores] = whileLoop(
      g,
      "map/while",
      [{ init: zero, dtype: I }, { init: boxList, dtype: V }, { init: scoreList, dtype: V }],
      [
        { value: batch, dtype: I },
        { value: boxes, dtype: F },
        { value: scores, dtype: F },
        ...params.map((value, k) => ({ value, dtype: k === 0 || k >= 4 ? I : F })),
      ],
      ([i], [n]) => g.op("map/while/Less", "Less", [i, n], T(I)),
      ([i, bl, sl], [, b, s, maxOut, iou, thr, sigma, one, axis]) => {
        const gather = (name: string, x: string, idx: string) =>
          g.op(name, "GatherV2", [x, idx, axis], {
            Tparams: attrValue.type(F),
            Tindices: attrValue.type(I),
            Taxis: attrValue.type(I),
            batch_dims: attrValue.int(0),
          });
        const bi = gather("map/while/boxes_i", b, i);
        const si = gather("map/while/scores_i", s, i);
        const nms = g.op(
          "map/while/nms",
          "NonMaxSuppressionV5",
          [bi, si, maxOut, iou, thr, sigma],
          {
            ...T(F),
            pad_to_max_output_size: attrValue.bool(true),
          },
        );
        const kept = gather("map/while/kept", bi, nms);
        const set = (name: string, list: string, item: string) =>
          g.op(name, "TensorListSetItem", [list, i, item], { element_dtype: attrValue.type(F) });
        return [
          g.op("map/while/next_i", "AddV2", [i, one], T(I)),
          set("map/while/set_boxes", bl, kept),
          set("map/while/set_scores", sl, "map/while/nms:1"),
        ];
      },
    );
    const stack = (name: string, list: string, shape: string) =>
      g.op(name, "TensorListStack", [list, shape], {
        element_dtype: attrValue.type(F),
        num_elements: attrValue.int(2),
      });
    stack("detection_boxes", outBoxes, boxShape);
    stack("detection_scores", outScores, scoreShape);

    const s = new Session(g.graph(), [], defaultRegistry());
    const plan = s.compile({
      feeds: [parseTensorName("boxes:0"), parseTensorName("scores:0")],
      fetches: [parseTensorName("detection_boxes:0"), parseTensorName("detection_scores:0")],
    }, "ssd");
    const clusters = [
      [0, 0, 1, 1],
      [0, 0.1, 1, 1.1],
      [0, -0.1, 1, 0.9],
      [0, 10, 1, 11],
      [0, 10.1, 1, 11.1],
      [0, 100, 1, 101],
    ];
    const [db, ds] = plan.run([
      Tensor.float32([...clusters, ...clusters].flat(), [2, 6, 4]),
      Tensor.float32([0.9, 0.75, 0.6, 0.95, 0.5, 0.3, 0.3, 0.5, 0.95, 0.6, 0.75, 0.9], [2, 6]),
    ]);
    assert.deepEqual([...db.shape], [2, 3, 4]);
    assert.deepEqual([...ds.shape], [2, 3]);
    // Image 0: soft-NMS keeps 3, 0, then 1 decayed by exp(-(9/11)²); image 1: 2, 5, 4 (disjoint).
    assertClose(db.data as Float32Array, [
      ...clusters[3],
      ...clusters[0],
      ...clusters[1],
      ...clusters[2],
      ...clusters[5],
      ...clusters[4],
    ]);
    assertClose(
      ds.data as Float32Array,
      [0.95, 0.9, 0.75 * Math.exp(-((9 / 11) ** 2)), 0.95, 0.9, 0.75],
      1e-6,
    );
  },
});
