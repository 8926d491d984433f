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

Deno.test("faceboxes: its TF1 while loop compiles into the executor; with every kernel, it matches", async () => {
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
  // With every kernel present, each case matches the reference: the pre-NMS outputs element-wise,
  // the post-NMS counts exactly and the scores position by position (tolerance as in the
  // corpus README; the corpus test does the full row matching of boxes).
  const manifest = JSON.parse(await Deno.readTextFile(`${FACEBOXES}manifest.json`));
  for (const c of manifest.cases) {
    const inp = c.inputs.image_tensor;
    const img = new Tensor(
      DataType.DT_UINT8,
      inp.shape,
      await Deno.readFile(`${FACEBOXES}data/${inp.file}`),
    );
    const out = sig.run({ image_tensor: img });
    for (const key of ["raw_boxes", "raw_scores", "scores", "num_boxes"]) {
      const want = c.outputs[key];
      const got = out[key];
      assert.deepEqual(got.shape, want.shape, `${c.name} ${key}`);
      const bytes = (await Deno.readFile(`${FACEBOXES}data/${want.file}`)).buffer;
      if (want.dtype === "DT_INT32") {
        assert.deepEqual([...(got.data as Int32Array)], [...new Int32Array(bytes)], key);
        continue;
      }
      const ref = new Float32Array(bytes);
      const g = got.data as Float32Array;
      for (let i = 0; i < ref.length; i++) {
        assert.ok(Math.abs(g[i] - ref[i]) <= 1e-4 + 1e-3 * Math.abs(ref[i]), `${key}[${i}]`);
      }
    }
  }
});
