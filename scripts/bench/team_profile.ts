/**
 * Where a batch-1 call of each corpus model spends its time, per op, with and without a helper
 * isolate splitting kernels (kernels/wasm/team.ts): this isolate runs the plan (as a pool
 * worker does), one worker helps. Runs alternate. `deno run -A scripts/bench/team_profile.ts
 * [model…]`.
 *
 * @module
 */
import { loadModel } from "../../src/runtime/model.ts";
import { kernelMemory } from "../../src/kernels/wasm/shared_memory.ts";
import {
  beginTeamCall,
  endTeamCall,
  joinKernelTeam,
  setKernelSplitting,
  teamStats,
  teamTotals,
} from "../../src/kernels/wasm/team.ts";
import { setStepTimer } from "../../src/graph/plan.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { shareConstants } from "../../src/exec/shared_model.ts";
import { CORPUS_ROOT, corpusModelDir, readManifest } from "../../tests/real_models.ts";

const models = Deno.args.length > 0
  ? Deno.args
  : ["emotion", "ssrnet_age", "meet", "selfie", "movenet_multipose"];
const rounds = 15;

const helper = new Worker(new URL("../../src/exec/worker.ts", import.meta.url).href, {
  type: "module",
});
helper.postMessage({ type: "init", kernelMemory: kernelMemory(), team: true, index: 1 });
joinKernelTeam(0);
await new Promise((r) => setTimeout(r, 200));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const name of models) {
  const manifest = await readManifest(name);
  const c = manifest.cases.find((k) => k.batch === 1) ?? manifest.cases[0];
  const model = await loadModel(corpusModelDir(name), { prepare: shareConstants });
  const sig = model.signature("serving_default");
  const feeds: Record<string, Tensor> = {};
  for (const [k, spec] of Object.entries(c.inputs)) {
    const bytes = await Deno.readFile(`${CORPUS_ROOT}${name}/data/${spec.file}`);
    feeds[k] = spec.dtype === "DT_FLOAT"
      ? new Tensor(DataType.DT_FLOAT, spec.shape, new Float32Array(bytes.buffer))
      : new Tensor(DataType.DT_INT32, spec.shape, new Int32Array(bytes.buffer));
  }
  const byOp = [new Map<string, number[]>(), new Map<string, number[]>()];
  const totals: number[][] = [[], []];
  for (let r = 0; r < rounds + 3; r++) {
    for (const mode of [0, 1]) {
      setKernelSplitting(mode === 1);
      const acc = new Map<string, number>();
      setStepTimer((op, _n, ms) => acc.set(op, (acc.get(op) ?? 0) + ms));
      // As a pool worker runs a call: the helper stays hot for its splits meanwhile.
      if (mode === 1) beginTeamCall();
      const t0 = performance.now();
      sig.run(feeds);
      const t = performance.now() - t0;
      if (mode === 1) endTeamCall();
      setStepTimer(undefined);
      if (r < 3) continue;
      totals[mode].push(t);
      for (const [op, ms] of acc) {
        let l = byOp[mode].get(op);
        if (!l) byOp[mode].set(op, l = []);
        l.push(ms);
      }
    }
  }
  const s = median(totals[0]), p = median(totals[1]);
  console.log(
    `\n## ${name}: one isolate ${s.toFixed(2)} ms, with a helper ${p.toFixed(2)} ms (${
      (p / s).toFixed(2)
    }×)`,
  );
  const ops = [...byOp[0].keys()].sort((a, b) => median(byOp[0].get(b)!) - median(byOp[0].get(a)!));
  console.log("| op | alone ms | % | team ms | team/alone |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const op of ops) {
    const a = median(byOp[0].get(op)!), b = median(byOp[1].get(op) ?? [0]);
    if (a < 0.02) continue;
    console.log(
      `| ${op} | ${a.toFixed(3)} | ${(100 * a / s).toFixed(0)} | ${b.toFixed(3)} | ${
        (b / a).toFixed(2)
      } |`,
    );
  }
}
console.log(teamTotals(), teamStats());
helper.terminate();
Deno.exit(0);
