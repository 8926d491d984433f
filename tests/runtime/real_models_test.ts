/**
 * Every model of the development corpus (`../shared/testdata/real-models/`, see its README) loads
 * and runs each of its cases through the server's runtime (fused WebAssembly kernels, the TF1
 * control-flow executor), and its outputs match the references computed by TensorFlow.js with
 * the corpus' tolerance.
 *
 * @module
 */
import assert from "node:assert/strict";
import { loadModel } from "../../src/runtime/model.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import {
  CORPUS_MODELS,
  corpusModelDir,
  corpusPresent,
  mismatches,
  readCorpusTensor,
  readManifest,
} from "../real_models.ts";

for (const name of CORPUS_MODELS) {
  Deno.test({
    name: `real model ${name}: every case matches the tfjs reference`,
    ignore: !corpusPresent,
    async fn() {
      const manifest = await readManifest(name);
      const { rtol, atol } = manifest.compare;
      const model = await loadModel(corpusModelDir(name));
      for (const c of manifest.cases) {
        const feeds: Record<string, Tensor> = {};
        for (const [k, spec] of Object.entries(c.inputs)) {
          feeds[k] = await readCorpusTensor(name, spec);
        }
        const out = model.signature("serving_default").run(feeds);
        assert.deepEqual(Object.keys(out).sort(), Object.keys(c.outputs).sort());
        for (const [k, spec] of Object.entries(c.outputs)) {
          const ref = await readCorpusTensor(name, spec);
          const got = out[k];
          const what = `${c.name} ${k}`;
          assert.equal(got.dtype, ref.dtype, `${what}: dtype`);
          assert.deepEqual(got.shape, ref.shape, `${what}: shape`);
          const g = got.data as ArrayLike<number>, r = ref.data as ArrayLike<number>;
          const { bad, first } = mismatches(g, r, rtol, atol);
          assert.equal(
            bad,
            0,
            `${what}: ${bad} elements off, first at ${first}: ${g[first]} vs ${r[first]}`,
          );
        }
      }
    },
  });
}
