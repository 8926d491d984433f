/**
 * The corpus model that needs TensorArrayV3 and NonMaxSuppressionV3 inside a TF1 while loop:
 * faceboxes (`../shared/testdata/real-models/faceboxes`, see its README). The loop itself
 * (Enter/Merge/Switch/LoopCond/NextIteration/Exit) is the control-flow executor's; until those
 * kernels are registered this test is skipped.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

const DIR = fileURLToPath(
  new URL("../../../shared/testdata/real-models/faceboxes/", import.meta.url),
);

const LOOP_OPS = ["Enter", "Exit", "LoopCond", "Merge", "NextIteration", "Switch"];

interface Spec {
  readonly dtype: string;
  readonly shape: number[];
  readonly file: string;
}

Deno.test({
  name: "corpus faceboxes (TF1 loop, TensorArrayV3, NonMaxSuppressionV3) matches its reference",
  ignore: LOOP_OPS.some((op) => defaultRegistry().get(op) === undefined),
  async fn() {
    const manifest = JSON.parse(await Deno.readTextFile(`${DIR}manifest.json`));
    const { rtol, atol } = manifest.compare;
    const model = await loadModel(`${DIR}model/1`);
    for (const c of manifest.cases) {
      const inputs: Record<string, Tensor> = {};
      for (const [key, s] of Object.entries<Spec>(c.inputs)) {
        assert.equal(s.dtype, "DT_UINT8");
        inputs[key] = new Tensor(
          DataType.DT_UINT8,
          s.shape,
          await Deno.readFile(`${DIR}data/${s.file}`),
        );
      }
      const outs = model.signature("serving_default").run(inputs);
      assert.deepEqual(Object.keys(outs).sort(), Object.keys(c.outputs).sort());
      for (const [key, s] of Object.entries<Spec>(c.outputs)) {
        const got = outs[key];
        assert.deepEqual([...got.shape], s.shape, `${c.name} ${key}`);
        const bytes = await Deno.readFile(`${DIR}data/${s.file}`);
        if (s.dtype === "DT_INT32") {
          assert.equal(got.dtype, DataType.DT_INT32);
          assert.deepEqual(
            Array.from(got.data as Int32Array),
            Array.from(new Int32Array(bytes.buffer)),
          );
          continue;
        }
        assert.equal(got.dtype, DataType.DT_FLOAT);
        // Element-wise, the post-NMS rows included: this input has no ties at the cut-off.
        const ref = new Float32Array(bytes.buffer);
        const g = got.data as Float32Array;
        let bad = 0;
        for (let i = 0; i < ref.length; i++) {
          if (!(Math.abs(g[i] - ref[i]) <= atol + rtol * Math.abs(ref[i]))) bad++;
        }
        assert.equal(bad, 0, `${c.name} ${key}: ${bad} of ${ref.length} elements off`);
      }
    }
  },
});
