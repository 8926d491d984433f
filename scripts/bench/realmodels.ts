/**
 * Real-model benchmark (issue: real models at the speed of the best JavaScript engine): each
 * model of the development corpus (`../shared/testdata/real-models/`) that the server loads,
 * batch 1, through the executor (`Signature.run`, what a Predict runs after decoding), next to
 * the same graph on TensorFlow.js 4.22.0's WebAssembly backend (XNNPACK, SIMD, one thread) and
 * its plain-JavaScript CPU backend, all in one process and one run. Server and tfjs-wasm runs
 * alternate, so both see the same load on a shared machine; tfjs-cpu, 10-40× slower, gets a
 * few runs of its own.
 *
 * Also reported: the convolution / matmul kernels' achieved GFLOP/s (work of the WebAssembly
 * kernels over the time spent in them, copies in and out included) next to the machine's
 * measured SIMD multiply-add peak, and batch-8 throughput where the signature allows it.
 *
 * The pool column runs the same call through an Executor with 2 inference workers, which split
 * large convolutions between them (intra-op parallelism, kernels/wasm/team.ts); its runs
 * alternate with the others, one isolated call at a time (the workers idle between), and its
 * outputs must equal the one-thread server's exactly.
 *
 * The served column is the issue's measure, batch-1 Predict latency through the server: the
 * real server (`deno task serve`'s launcher, one worker per CPU) and a closed-loop gRPC client
 * (h2load, one call at a time), in blocks alternating with tfjs-wasm blocks (served_latency.ts).
 *
 * Every output is checked against the corpus reference (rtol 1e-3, atol 1e-4) before timing.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { loadModel, type Model } from "../../src/runtime/model.ts";
import { convWasmPeak, convWasmRelaxed, setConvProfiling } from "../../src/kernels/wasm/conv.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { table } from "./timing.ts";
import { Executor } from "../../src/exec/executor.ts";
import { shareConstants } from "../../src/exec/shared_model.ts";
import { loadTfjs, runTfjs, type TfjsModel } from "./tfjs_graph.ts";
import { servedLatency } from "./served_latency.ts";
import {
  CORPUS_ROOT,
  type CorpusIo as IoSpec,
  corpusModelDir,
  mismatches,
  readManifest,
} from "../../tests/real_models.ts";

/**
 * The corpus models benchmarked: float32/int32 inputs (faceboxes takes uint8 and loops;
 * facemesh_detection_full is left out to bound the run).
 */
export const BENCH_MODELS = [
  "emotion",
  "ssrnet_age",
  "meet",
  "selfie",
  "movenet_multipose",
  "facemesh_attention",
];

type Data = Float32Array | Int32Array;

async function readData(model: string, spec: IoSpec): Promise<Data> {
  const bytes = await Deno.readFile(`${CORPUS_ROOT}${model}/data/${spec.file}`);
  if (spec.dtype === "DT_FLOAT") return new Float32Array(bytes.buffer);
  if (spec.dtype === "DT_INT32") return new Int32Array(bytes.buffer);
  throw new Error(`${model}: dtype ${spec.dtype} is not benchmarked`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function tensorOf(spec: IoSpec, data: Data, batch = 1): Tensor {
  const dtype = spec.dtype === "DT_FLOAT" ? DataType.DT_FLOAT : DataType.DT_INT32;
  if (batch === 1) return new Tensor(dtype, spec.shape, data);
  const tiled = new (data.constructor as new (n: number) => Data)(data.length * batch);
  for (let b = 0; b < batch; b++) tiled.set(data, b * data.length);
  return new Tensor(dtype, [batch, ...spec.shape.slice(1)], tiled);
}

const fmt = (ms: number) => ms < 10 ? ms.toFixed(2) : ms.toFixed(1);

/** Loads a tfjs model on `backend`, or returns the reason it cannot run there. */
async function tfjsOn(backend: string, dir: string): Promise<TfjsModel | string> {
  await tf.setBackend(backend);
  try {
    return await loadTfjs(dir);
  } catch (e) {
    return e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
}

/** Runs the section and returns its markdown report. */
export async function benchRealModels(
  models: readonly string[] = BENCH_MODELS,
  rounds = 25,
  serve = true,
): Promise<string> {
  // The peak is measured before every model and the best kept: on a shared machine a single
  // measurement may land in a busy moment.
  let peak = 0;
  const load0 = Deno.loadavg()[0];
  const rows: (string | number)[][] = [];
  const notes: string[] = [];
  await using pool = new Executor({ workers: 2, inlineBelowMs: 0 });
  for (const name of models) {
    peak = Math.max(peak, convWasmPeak(200));
    const manifest = await readManifest(name);
    const c = manifest.cases.find((k) => k.batch === 1) ?? manifest.cases[0];
    const dir = corpusModelDir(name);
    const model: Model = await loadModel(dir);
    const sig = model.signature("serving_default");
    const raw: Record<string, Data> = {};
    const feeds: Record<string, Tensor> = {};
    for (const [k, spec] of Object.entries(c.inputs)) {
      raw[k] = await readData(name, spec);
      feeds[k] = tensorOf(spec, raw[k]);
    }
    const refs: Record<string, Data> = {};
    for (const [k, spec] of Object.entries(c.outputs)) refs[k] = await readData(name, spec);
    const check = (who: string, out: Record<string, ArrayLike<number>>) => {
      for (const [k, ref] of Object.entries(refs)) {
        const { bad } = mismatches(out[k], ref);
        if (bad > 0) throw new Error(`${name}: ${who} output ${k} misses the reference at ${bad}`);
      }
    };
    const server = () => sig.run(feeds);
    const single = server();
    check(
      "server",
      Object.fromEntries(Object.entries(single).map(([k, t]) => [k, t.data as Data])),
    );
    // The same model on the pool (its own copy, constants shared with the workers).
    const pooled = await loadModel(dir, { prepare: shareConstants });
    await pool.attach(pooled, name);
    const psig = pooled.signature("serving_default");
    const aliases = psig.outputs.map((o) => o.alias);
    const call = {
      target: { signature: "serving_default", outputs: aliases },
      feeds: psig.inputs.map((i) => feeds[i.alias]),
      finish: (outs: readonly Tensor[]) => outs,
    };
    const onPool = async () => await pool.run(pooled, call);
    (await onPool()).forEach((t, i) => {
      const want = single[aliases[i]].data as Data;
      if (!(t.data as Data).every((v, j) => Object.is(v, want[j]))) {
        throw new Error(`${name}: pool output ${aliases[i]} differs from the one-thread run`);
      }
    });
    const tfFeeds = Object.fromEntries(
      Object.entries(c.inputs).map(([k, spec]) => [k, { data: raw[k], shape: spec.shape }]),
    );
    const wasm = await tfjsOn("wasm", dir);
    const cpu = await tfjsOn("cpu", dir);
    const runOn = (backend: string, m: TfjsModel) => {
      tf.setBackend(backend);
      return runTfjs(m, tfFeeds);
    };
    let wasmNote = "";
    let wasmOk = typeof wasm !== "string";
    if (typeof wasm === "string") wasmNote = wasm;
    else {
      try {
        check("tfjs-wasm", runOn("wasm", wasm));
      } catch (e) {
        wasmOk = false;
        wasmNote = e instanceof Error ? e.message.split("\n")[0] : String(e);
      }
    }
    if (wasmNote) notes.push(`${name}: tfjs-wasm does not run it (${wasmNote})`);
    // Warm up, then alternate server and tfjs-wasm runs.
    for (let i = 0; i < 3; i++) {
      server();
      await onPool();
      if (wasmOk) runOn("wasm", wasm as TfjsModel);
    }
    const ts: number[] = [], tw: number[] = [], tp: number[] = [];
    let flops = 0, kernelMs = 0;
    for (let r = 0; r < rounds; r++) {
      setConvProfiling(true);
      let t0 = performance.now();
      server();
      ts.push(performance.now() - t0);
      const st = setConvProfiling(false)!;
      flops += st.flops;
      kernelMs += st.ms;
      if (wasmOk) {
        t0 = performance.now();
        runOn("wasm", wasm as TfjsModel);
        tw.push(performance.now() - t0);
      }
      t0 = performance.now();
      await onPool();
      tp.push(performance.now() - t0);
    }
    pool.detach(pooled);
    // Through the real server (gRPC, closed loop), blocks alternating with tfjs-wasm blocks.
    let served = "—", servedRatio = "—";
    if (wasmOk && serve) {
      const r = await servedLatency(
        name,
        `${CORPUS_ROOT}${name}/model`,
        feeds,
        (outs) =>
          check(
            "served",
            Object.fromEntries(Object.entries(outs).map(([k, t]) => [k, t.data as Data])),
          ),
        () => runOn("wasm", wasm as TfjsModel),
      );
      served = `${fmt(r.servedMs)} (${fmt(r.betweenMs)})`;
      servedRatio = `${(r.servedMs / r.betweenMs).toFixed(2)}×`;
    }
    let cpuMs = NaN;
    if (typeof cpu !== "string") {
      try {
        runOn("cpu", cpu);
        const tc: number[] = [];
        for (let r = 0; r < 3; r++) {
          const t0 = performance.now();
          runOn("cpu", cpu);
          tc.push(performance.now() - t0);
        }
        cpuMs = median(tc);
      } catch (e) {
        notes.push(`${name}: tfjs-cpu failed (${e instanceof Error ? e.message : e})`);
      }
    }
    // Batch 8, where the signature's batch dimension is open.
    const dims = Object.values(manifest.signature.inputs)[0]?.tensorShape.dim;
    let b8 = "—";
    if (dims !== undefined && dims.length > 0 && dims[0].size === "-1") {
      const feeds8 = Object.fromEntries(
        Object.entries(c.inputs).map(([k, spec]) => [k, tensorOf(spec, raw[k], 8)]),
      );
      sig.run(feeds8);
      const t8: number[] = [];
      for (let r = 0; r < 3; r++) {
        const t0 = performance.now();
        sig.run(feeds8);
        t8.push(performance.now() - t0);
      }
      const perImage = median(t8) / 8;
      b8 = `${fmt(perImage)} ms (${(1000 / perImage).toFixed(0)}/s)`;
    }
    const s = median(ts);
    const w = wasmOk ? median(tw) : NaN;
    const pm = median(tp);
    const serverTotal = ts.reduce((a, b) => a + b, 0);
    const recorded = manifest.latency_ms["tfjs-wasm"]?.median_ms;
    rows.push([
      name,
      fmt(s),
      wasmOk ? fmt(w) : "n/a",
      Number.isNaN(cpuMs) ? "n/a" : fmt(cpuMs),
      wasmOk ? `${(s / w).toFixed(2)}×` : "—",
      wasmOk ? `${(Math.min(...ts) / Math.min(...tw)).toFixed(2)}×` : "—",
      fmt(pm),
      wasmOk ? `${(pm / w).toFixed(2)}×` : "—",
      `${(pm / s).toFixed(2)}×`,
      served,
      servedRatio,
      recorded === undefined ? "—" : fmt(recorded),
      kernelMs > 0 ? `${(flops / kernelMs / 1e6).toFixed(1)}` : "—",
      `${((kernelMs / serverTotal) * 100).toFixed(0)}%`,
      b8,
    ]);
  }
  return [
    "### Real models (batch 1, one thread)",
    "",
    table(
      [
        "model",
        "server ms",
        "tfjs-wasm ms",
        "tfjs-cpu ms",
        "server / tfjs-wasm (medians)",
        "(minima)",
        "pool ms (2 workers)",
        "pool / tfjs-wasm",
        "pool / server",
        "served ms, gRPC closed loop (tfjs-wasm ms, same window)",
        "served / tfjs-wasm",
        "tfjs-wasm ms recorded in the corpus",
        "conv/matmul GFLOP/s",
        "time in conv/matmul",
        "batch 8, per image",
      ],
      rows,
    ),
    "",
    `WASM SIMD multiply-add loop (12 independent f32x4 chains${
      convWasmRelaxed ? ", relaxed_madd" : ""
    }), best of ${models.length}: ${peak.toFixed(1)} GFLOP/s.` +
    " Medians; server and tfjs-wasm runs alternate. The recorded column is the corpus build's" +
    " figure for the original tfjs graph, on a quieter machine." +
    ` Load average (1 min) ${load0.toFixed(1)} at the start, ${
      Deno.loadavg()[0].toFixed(1)
    } at the end (${navigator.hardwareConcurrency} CPUs).`,
    ...notes.map((n) => `- ${n}`),
  ].join("\n");
}

if (import.meta.main) {
  const names = Deno.args.filter((a) => a !== "--");
  console.log(await benchRealModels(names.length > 0 ? names : BENCH_MODELS));
}
