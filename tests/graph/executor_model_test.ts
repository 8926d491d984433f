/**
 * The control-flow executor on a real TF1 graph: faceboxes (development corpus), a `tf.map_fn`
 * over the batch as a TF1 while loop with TensorArrays and NonMaxSuppressionV3.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Code, ServingError } from "../../src/errors.ts";
import { ExecutorPlan } from "../../src/graph/executor.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { KernelRegistry } from "../../src/kernels/registry.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const FACEBOXES = fileURLToPath(
  new URL("../../../shared/testdata/real-models/faceboxes/", import.meta.url),
);

/** The ops faceboxes needs beyond the loop itself (kernels written elsewhere). */
const LOOP_PAYLOAD_OPS = [
  "TensorArrayV3",
  "TensorArrayScatterV3",
  "TensorArrayReadV3",
  "TensorArrayWriteV3",
  "TensorArraySizeV3",
  "TensorArrayGatherV3",
  "NonMaxSuppressionV3",
];

/**
 * The shipped kernels, plus a stub for each of those ops that has none yet: the stub compiles
 * (so the graph's loop structure is compiled and checked) and fails when run.
 */
function registryWithStubs(): { registry: KernelRegistry; stubbed: string[] } {
  const base = defaultRegistry();
  const registry = new KernelRegistry();
  for (const op of base.ops()) registry.register(base.get(op)!);
  const stubbed = LOOP_PAYLOAD_OPS.filter((op) => !base.get(op));
  for (const op of stubbed) {
    registry.register({
      op,
      compile: () => () => {
        throw new ServingError(Code.UNIMPLEMENTED, `stub kernel for ${op}`);
      },
    });
  }
  return { registry, stubbed };
}

Deno.test("faceboxes: its TF1 while loop compiles into the executor (no cycle error)", async () => {
  const { registry, stubbed } = registryWithStubs();
  const model = await loadModel(`${FACEBOXES}model/1`, { registry });
  const sig = model.signature("serving_default");
  const plan = sig.plan(sig.outputs.map((t) => t.alias));
  assert.ok(plan instanceof ExecutorPlan);
  for (const op of ["Enter", "Merge", "Switch", "LoopCond", "NextIteration", "Exit"]) {
    assert.ok(plan.ops.includes(op), op);
  }
  const input = await Deno.readFile(`${FACEBOXES}data/b1_in0.bin`);
  const image = new Tensor(DataType.DT_UINT8, [1, 256, 256, 3], input);
  if (stubbed.length > 0) {
    // The run reaches the loop's payload: the first TensorArray op fails, naming its node.
    assert.throws(
      () => sig.run({ image_tensor: image }),
      (e: unknown) =>
        e instanceof ServingError && e.code === Code.UNIMPLEMENTED &&
        /stub kernel for TensorArray/.test(e.message) && e.message.includes("[[{{node nms/map/"),
    );
    return;
  }
  // With every kernel present, the pre-NMS outputs match the reference element-wise and the
  // post-NMS counts exactly (the full comparison is the corpus test's).
  const out = sig.run({ image_tensor: image });
  const ref = async (i: number) =>
    new Float32Array((await Deno.readFile(`${FACEBOXES}data/b1_out${i}.bin`)).buffer);
  const near = (got: Float32Array, want: Float32Array, what: string) => {
    assert.equal(got.length, want.length, what);
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i] - want[i]) <= 1e-4 + 1e-3 * Math.abs(want[i]), `${what}[${i}]`);
    }
  };
  near(out["raw_boxes"].data as Float32Array, await ref(2), "raw_boxes");
  near(out["raw_scores"].data as Float32Array, await ref(3), "raw_scores");
  const numBoxes = new Int32Array((await Deno.readFile(`${FACEBOXES}data/b1_out1.bin`)).buffer);
  assert.deepEqual([...(out["num_boxes"].data as Int32Array)], [...numBoxes]);
});
