/**
 * Per-op time of the corpus models (`../shared/testdata/real-models/`), batch 1, one thread:
 * every kernel is wrapped in a timer (a registry of wrapped kernels passed to loadModel), the
 * signature runs `--runs` times after warm-up, and the best time per node (the machine may be
 * shared: the others include time spent descheduled) is summed by op
 * (fused nodes are labelled with their fused_ops and private attrs). Shows where a model's time
 * goes outside the convolution and matmul kernels. Fused nodes the plan compiles itself, not
 * through the registry (`_FusedMulAdd`, `_FusedDenseSoftmax`), are not timed one by one: their
 * time is in "outside the kernels".
 *
 * Usage: deno run --allow-read --allow-env scripts/profile_ops.ts [--runs=N] [--nodes=K] [model…]
 *
 * @module
 */
import { defaultRegistry, KernelRegistry } from "../src/kernels/mod.ts";
import type { Kernel, KernelContext } from "../src/kernels/kernel.ts";
import { loadModel } from "../src/runtime/model.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import {
  CORPUS_MODELS,
  corpusModelDir,
  readCorpusTensor,
  readManifest,
} from "../tests/real_models.ts";

/** Ops counted as the convolution / matmul kernels. */
const CONV_OPS = new Set([
  "Conv2D",
  "DepthwiseConv2dNative",
  "Conv2DBackpropInput",
  "MatMul",
  "BatchMatMul",
  "BatchMatMulV2",
  "_FusedConv2D",
  "_FusedDepthwiseConv2dNative",
  "_FusedMatMul",
  "_FusedDenseSoftmax",
]);

interface NodeTimes {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly label: string;
  readonly op: string;
  readonly times: number[];
  shapes: string;
}

function label(ctx: KernelContext): string {
  const extra: string[] = [];
  try {
    const f = ctx.attr.has("fused_ops") ? ctx.attr.strings("fused_ops") : undefined;
    if (f) extra.push(f.join("+"));
  } catch { /* not a list */ }
  for (const k of ["_hard_swish", "_broadcast_add", "_add_after_activation"]) {
    if (ctx.attr.has(k)) extra.push(k);
  }
  return extra.length ? `${ctx.op}[${extra.join(",")}]` : ctx.op;
}

function wrappedRegistry(nodes: NodeTimes[]): KernelRegistry {
  const base = defaultRegistry();
  const reg = new KernelRegistry();
  for (const op of base.ops()) {
    const k = base.get(op)!;
    const w: Kernel = {
      op,
      honours: k.honours,
      compile(ctx) {
        const run = k.compile(ctx);
        const rec: NodeTimes = {
          name: ctx.name,
          inputs: ctx.inputNames,
          label: label(ctx),
          op: ctx.op,
          times: [],
          shapes: "",
        };
        nodes.push(rec);
        return (inputs: Tensor[]) => {
          const t0 = performance.now();
          const outs = run(inputs);
          rec.times.push(performance.now() - t0);
          if (rec.shapes === "") {
            rec.shapes = inputs.map((t) => `[${t.shape}]`).join(" ") + " → " +
              outs.map((t) => `[${t.shape}]`).join(" ");
          }
          return outs;
        };
      },
    };
    reg.register(w);
  }
  return reg;
}

/** The fastest of the runs: on a shared machine the others include time spent descheduled. */
function best(xs: number[]): number {
  let m = Infinity;
  for (const x of xs) if (x < m) m = x;
  return xs.length === 0 ? 0 : m;
}

/** The cost of one performance.now() call, in ms (the best of a few batches). */
function timerCost(): number {
  let bestBatch = Infinity;
  for (let b = 0; b < 5; b++) {
    const t0 = performance.now();
    for (let i = 0; i < 10000; i++) performance.now();
    bestBatch = Math.min(bestBatch, performance.now() - t0);
  }
  return bestBatch / 10000;
}

const args = Deno.args.filter((a) => !a.startsWith("--"));
const opt = (name: string, d: number) => {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split("=")[1]) : d;
};
const runs = opt("runs", 15);
const topNodes = opt("nodes", 8);
const trace = Deno.args.includes("--trace");
const models = args.length ? args : CORPUS_MODELS.filter((m) => m !== "faceboxes");

for (const name of models) {
  const nodes: NodeTimes[] = [];
  const model = await loadModel(corpusModelDir(name), { registry: wrappedRegistry(nodes) });
  const manifest = await readManifest(name);
  const c = manifest.cases.find((k) => k.batch === 1) ?? manifest.cases[0];
  const feeds: Record<string, Tensor> = {};
  for (const [k, spec] of Object.entries(c.inputs)) feeds[k] = await readCorpusTensor(name, spec);
  const sig = model.signature("serving_default");
  for (let i = 0; i < 3; i++) sig.run(feeds);
  for (const n of nodes) n.times.length = 0;
  const totals: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    sig.run(feeds);
    totals.push(performance.now() - t0);
  }
  const byOp = new Map<string, { ms: number; count: number; conv: boolean }>();
  let conv = 0, all = 0;
  for (const n of nodes) {
    if (n.times.length === 0) continue;
    const ms = best(n.times) * (n.times.length / runs);
    const e = byOp.get(n.label) ?? { ms: 0, count: 0, conv: CONV_OPS.has(n.op) };
    e.ms += ms;
    e.count++;
    byOp.set(n.label, e);
    all += ms;
    if (CONV_OPS.has(n.op)) conv += ms;
  }
  const total = best(totals);
  // Time outside the kernels (the plan's own work, the timers), run by run: every node runs
  // once per run here, so times[r] of each node belongs to run r.
  // The timers themselves cost (a performance.now() call is ~0.4 µs here): two per node run.
  const timerMs = 2 * timerCost() * nodes.filter((n) => n.times.length === runs).length;
  const outside = totals.map((t, r) => {
    let k = 0;
    for (const n of nodes) if (n.times.length === runs) k += n.times[r];
    return t - k;
  });
  console.log(
    `\n## ${name}: ${total.toFixed(2)} ms per run (best of ${runs}); kernels ${
      all.toFixed(2)
    } ms, conv/matmul ${conv.toFixed(2)} ms (${(100 * conv / all).toFixed(0)}%), other ${
      (all - conv).toFixed(2)
    } ms; outside the kernels ${best(outside).toFixed(2)} ms (best run), of which the timers ~${
      timerMs.toFixed(2)
    } ms\n`,
  );
  console.log("| op (non-conv) | nodes | ms | % of run |\n|---|---:|---:|---:|");
  for (const [op, e] of [...byOp].filter(([, e]) => !e.conv).sort((a, b) => b[1].ms - a[1].ms)) {
    if (e.ms < 0.005) continue;
    console.log(
      `| ${op} | ${e.count} | ${e.ms.toFixed(3)} | ${(100 * e.ms / total).toFixed(1)} |`,
    );
  }
  console.log("\nslowest non-conv nodes:");
  for (
    const n of nodes.filter((n) => !CONV_OPS.has(n.op) && n.times.length).sort((a, b) =>
      best(b.times) - best(a.times)
    ).slice(0, topNodes)
  ) {
    console.log(`  ${best(n.times).toFixed(3)} ms ${n.label} ${n.shapes}`);
  }
  if (trace) {
    console.log("every node, in order of compilation:");
    for (const n of nodes) {
      if (n.times.length === 0 || n.op === "Const") continue;
      console.log(
        `  ${best(n.times).toFixed(3)} ${n.label} ${n.name} (${n.inputs.join(", ")}) ${n.shapes}`,
      );
    }
  }
  console.log("conv ops:");
  for (const [op, e] of [...byOp].filter(([, e]) => e.conv).sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`  ${op} ×${e.count}: ${e.ms.toFixed(2)} ms`);
  }
}
