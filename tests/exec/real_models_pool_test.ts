/**
 * Every model of the development corpus run at batch 1 on an Executor of two workers (which split
 * kernels between them, kernels/wasm/team.ts, with intermediates in the shared kernel memory)
 * gives exactly the floats of the one-thread run, and so matches the tfjs references within the
 * corpus' tolerance.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Executor } from "../../src/exec/executor.ts";
import { shareConstants } from "../../src/exec/shared_model.ts";
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
    name: `real model ${name} on two workers: the one-thread floats and the tfjs reference`,
    ignore: !corpusPresent,
    async fn() {
      const manifest = await readManifest(name);
      const { rtol, atol } = manifest.compare;
      const c = manifest.cases.find((k) => k.batch === 1) ?? manifest.cases[0];
      const feeds: Record<string, Tensor> = {};
      for (const [k, spec] of Object.entries(c.inputs)) {
        feeds[k] = await readCorpusTensor(name, spec);
      }
      const single = (await loadModel(corpusModelDir(name))).signature("serving_default")
        .run(feeds);
      const model = await loadModel(corpusModelDir(name), { prepare: shareConstants });
      await using exec = new Executor({ workers: 2, inlineBelowMs: 0 });
      await exec.attach(model, name);
      const sig = model.signature("serving_default");
      const aliases = sig.outputs.map((o) => o.alias);
      // Twice: the second run reuses the arena's stored intermediates.
      for (let run = 0; run < 2; run++) {
        const outs = await exec.run(model, {
          target: { signature: "serving_default", outputs: aliases },
          feeds: sig.inputs.map((t) => feeds[t.alias]),
          finish: (o) => o,
        });
        for (let j = 0; j < aliases.length; j++) {
          const k = aliases[j], got = outs[j];
          const want = single[k];
          assert.equal(got.dtype, want.dtype, `${k}: dtype`);
          assert.deepEqual(got.shape, want.shape, `${k}: shape`);
          const g = got.data as ArrayLike<number>, w = want.data as ArrayLike<number>;
          for (let e = 0; e < w.length; e++) {
            if (!Object.is(g[e], w[e])) assert.fail(`${k}[${e}]: ${g[e]} on the pool, ${w[e]}`);
          }
          const spec = c.outputs[k];
          const ref = await readCorpusTensor(name, spec);
          const { bad, first } = mismatches(g, ref.data as ArrayLike<number>, rtol, atol);
          assert.equal(bad, 0, `${k}: ${bad} elements off the reference, first at ${first}`);
        }
      }
    },
  });
}
