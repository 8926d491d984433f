/**
 * The Executor on its own: worker results equal inline ones, weights are shared, stateful
 * versions stay consistent, deadlines, cancellation and the queue bound.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code } from "../../src/errors.ts";
import { Executor, QUEUE_FULL_MESSAGE } from "../../src/exec/executor.ts";
import { hasStatefulSignature, shareConstants } from "../../src/exec/shared_model.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { prepareMultiInference } from "../../src/servables/multi_inference.ts";
import { MultiInferenceRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/inference_pb.ts";
import { ExampleSchema } from "../../src/proto/gen/tensorflow/core/example/example_pb.ts";
import { testdata } from "../testdata.ts";
import { runPrepared } from "../../src/servables/prepared.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertServingError } from "../assert.ts";
import { predictCall, writeCounterModel, writeSlowModel } from "./models.ts";
import { kernelMemoryStats } from "../../src/kernels/wasm/shared_memory.ts";

const dir = await Deno.makeTempDir({ prefix: "exec_test_" });
await writeSlowModel(`${dir}/slow`, 12);
await writeCounterModel(`${dir}/counter`);

const HALF_PLUS_TWO = testdata("saved_model_half_plus_two_cpu/00000123");

const load = (name: string) => loadModel(`${dir}/${name}`, { prepare: shareConstants });

const call = predictCall;

const values = (r: { outputs: Record<string, { floatVal: number[] }> }, alias: string) =>
  r.outputs[alias].floatVal;

Deno.test("shareConstants() puts large constants in shared memory, viewed by the Const kernel", async () => {
  const model = await load("slow");
  const w = model.bundle.metaGraph.graphDef!.node.find((n) => n.name === "w")!;
  const v = w.attr["value"].value;
  assert.equal(v.case, "tensor");
  assert.ok(v.value.tensorContent.buffer instanceof SharedArrayBuffer);
  // The Const kernel views those bytes in place (what makes every isolate share them).
  const [value] = model.plan({ feeds: [], fetches: ["w:0"] }).run([]);
  assert.ok((value.data as Float32Array).buffer instanceof SharedArrayBuffer);
  assert.equal(hasStatefulSignature(model.bundle), false);
  assert.equal(hasStatefulSignature((await load("counter")).bundle), true);
});

Deno.test("shareConstants() leaves no byte field viewing the file's buffer (a worker would copy it)", async () => {
  const model = await load("slow");
  let views = 0;
  const walk = (v: unknown): void => {
    if (v instanceof Uint8Array) {
      views++;
      assert.ok(
        v.buffer instanceof SharedArrayBuffer || v.byteLength === v.buffer.byteLength,
        `a ${v.byteLength}-byte field views a ${v.buffer.byteLength}-byte buffer`,
      );
    } else if (typeof v === "object" && v !== null && !ArrayBuffer.isView(v)) {
      for (const e of Object.values(v)) walk(e);
    }
  };
  walk(model.bundle.metaGraph);
  // At least the constants a, w and the small `axes` (which viewed the whole file before).
  assert.ok(views >= 3, `the walk saw ${views} byte fields`);
});

Deno.test("Executor runs a signature on a worker with the inline result", async () => {
  await using exec = new Executor({ workers: 2 });
  const model = await load("slow");
  const inline = runPrepared(model, call(model, "", { x: Tensor.float32([1, 2]) }));
  await exec.attach(model, "slow");
  assert.equal(exec.workers, 2);
  const out = exec.run(model, call(model, "", { x: Tensor.float32([1, 2]) }));
  assert.ok(out instanceof Promise, "an unmeasured signature goes to the pool");
  assert.deepEqual(values(await out, "y"), values(inline, "y"));
  assert.deepEqual(values(inline, "y"), [2, 3]);
});

Deno.test("Executor runs a cheap signature inline once measured", async () => {
  await using exec = new Executor({ workers: 1, inlineBelowMs: 1e9 });
  const model = await load("slow");
  await exec.attach(model, "slow");
  const first = exec.run(model, call(model, "", { x: Tensor.float32([1]) }));
  assert.ok(first instanceof Promise);
  await first;
  const second = exec.run(model, call(model, "", { x: Tensor.float32([5]) }));
  assert.ok(!(second instanceof Promise), "measured below the threshold: runs inline");
  assert.deepEqual(values(second, "y"), [6]);
});

Deno.test("a cheap version runs small calls inline and a call with a huge input on the pool", async () => {
  await using exec = new Executor({ workers: 1 });
  const model = await loadModel(HALF_PLUS_TWO, { prepare: shareConstants });
  await exec.attach(model, "half");
  const small = exec.run(model, call(model, "", { x: Tensor.float32([1, 2]) }));
  assert.ok(!(small instanceof Promise), "a small version's first small call runs inline");
  assert.deepEqual(values(small, "y"), [2.5, 3]);
  // 2M elements: no measured cost for that size, so it must not run on the event loop.
  const n = 2_000_000;
  const big = exec.run(model, call(model, "", { x: Tensor.float32(new Float32Array(n).fill(4)) }));
  assert.ok(big instanceof Promise, "a huge input goes to the pool even for a cheap version");
  const y = values(await big, "y");
  assert.equal(y.length, n);
  assert.equal(y[n - 1], 4);
});

/** Runs `f` with the clock jumping `ms` after its first reading (a pause inside the call). */
function withPause<T>(ms: number, f: () => T): T {
  const real = performance.now.bind(performance);
  let reads = 0;
  performance.now = () => real() + (reads++ === 0 ? 0 : ms);
  try {
    return f();
  } finally {
    performance.now = real;
  }
}

Deno.test("pauses in single calls don't send a cheap version to the pool; slow calls do", async () => {
  await using exec = new Executor({ workers: 1 });
  const model = await loadModel(HALF_PLUS_TWO, { prepare: shareConstants });
  await exec.attach(model, "half");
  const x = () => call(model, "", { x: Tensor.float32([1]) });
  // The first call is cold (here: 100 ms): it is not taken as the estimate.
  withPause(100, () => exec.run(model, x()));
  for (let i = 0; i < 20; i++) assert.ok(!(exec.run(model, x()) instanceof Promise));
  assert.equal(exec.workers, 0, "a cold first call started no worker");
  // A 40 ms pause (a GC, a preempted thread) in one µs-cheap call, and again two calls later.
  withPause(40, () => exec.run(model, x()));
  exec.run(model, x());
  withPause(40, () => exec.run(model, x()));
  assert.ok(!(exec.run(model, x()) instanceof Promise), "still inline after one pause");
  assert.equal(exec.workers, 0, "no worker isolate started for it");
  // Calls that really take 400 ms (an input-dependent loop, say): the estimate follows once
  // they are all its last few samples, and the next call goes to the pool.
  for (let i = 0; i < 4; i++) withPause(400, () => exec.run(model, x()));
  const next = exec.run(model, x());
  assert.ok(next instanceof Promise, "a version measured costly runs on the pool");
  assert.deepEqual(values(await next, "y"), [2.5]);
});

Deno.test("a small stateful version is pinned to the main isolate", async () => {
  await using exec = new Executor({ workers: 2 });
  const model = await load("counter");
  await exec.attach(model, "counter");
  assert.equal(exec.placement(model), "main");
  assert.equal(exec.workers, 0, "no worker was started for it");
  const out = exec.run(model, call(model, "incr_counter"));
  assert.ok(!(out instanceof Promise));
  assert.deepEqual(values(out, "output"), [1]);
});

Deno.test("a stateful version runs on one worker: N concurrent AssignAdd leave N", async () => {
  // Every version counts as large here, so the counter is pinned to a worker.
  await using exec = new Executor({ workers: 2, heavyWeightElements: 0 });
  const model = await load("counter");
  await exec.attach(model, "counter");
  assert.equal(exec.placement(model), "worker");
  assert.equal(exec.workers, 2);
  const n = 50;
  const results = await Promise.all(
    Array.from({ length: n }, () => exec.run(model, call(model, "incr_counter"))),
  );
  // One call at a time: every call saw its own value.
  const seen = results.map((r) => values(r, "output")[0]).sort((a, b) => a - b);
  assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i + 1));
  assert.deepEqual(values(await exec.run(model, call(model, "get_counter")), "output"), [n]);
  await exec.run(model, call(model, "incr_counter_by", { delta: Tensor.float32([2.5], []) }));
  assert.deepEqual(values(await exec.run(model, call(model, "get_counter")), "output"), [n + 2.5]);
  // The main isolate's copy is never used again (it stays as it was at attach).
  assert.deepEqual(values(runPrepared(model, call(model, "get_counter")), "output"), [0]);
});

Deno.test("a deadline answers DEADLINE_EXCEEDED while the call runs; the next call succeeds", async () => {
  await using exec = new Executor({ workers: 1 });
  const model = await load("slow");
  await exec.attach(model, "slow");
  const late = exec.run(model, call(model, "", { x: Tensor.float32([1]) }), {
    deadline: Date.now() + 50,
  });
  const queued = exec.run(model, call(model, "", { x: Tensor.float32([2]) }), {
    deadline: Date.now() + 50,
  });
  // Both awaited at once: whichever deadline fires first, its rejection is handled.
  await Promise.all([
    assertServingError(() => late, Code.DEADLINE_EXCEEDED),
    assertServingError(() => queued, Code.DEADLINE_EXCEEDED),
  ]);
  assert.deepEqual(
    values(await exec.run(model, call(model, "", { x: Tensor.float32([3]) })), "y"),
    [
      4,
    ],
  );
});

Deno.test("a call whose client went away leaves the queue before it runs", async () => {
  await using exec = new Executor({ workers: 1, heavyWeightElements: 0 });
  const slow = await load("slow");
  const counter = await load("counter");
  await exec.attach(slow, "slow");
  await exec.attach(counter, "counter");
  const busy = exec.run(slow, call(slow, "", { x: Tensor.float32([1]) }));
  const gone = new AbortController();
  const dropped = exec.run(counter, call(counter, "incr_counter"), { signal: gone.signal });
  gone.abort();
  await assertServingError(() => dropped, Code.CANCELLED);
  await busy;
  assert.deepEqual(values(await exec.run(counter, call(counter, "get_counter")), "output"), [0]);
});

Deno.test("a full queue refuses with UNAVAILABLE and upstream's message", async () => {
  await using exec = new Executor({ workers: 1, maxQueued: 4 });
  const model = await load("slow");
  await exec.attach(model, "slow");
  const deadline = Date.now() + 60_000;
  const accepted = Array.from(
    { length: 5 },
    (_, i) => exec.run(model, call(model, "", { x: Tensor.float32([i]) }), { deadline }),
  );
  const refused = Array.from(
    { length: 200 },
    () => exec.run(model, call(model, "", { x: Tensor.float32([0]) })),
  );
  for (const r of refused) await assertServingError(() => r, Code.UNAVAILABLE, QUEUE_FULL_MESSAGE);
  const ys = (await Promise.all(accepted)).map((r) => values(r, "y")[0]);
  assert.deepEqual(ys, [1, 2, 3, 4, 5]);
});

Deno.test("MultiInference (a plan over tensor names) runs on a worker", async () => {
  await using exec = new Executor({ workers: 1, heavyWeightElements: 0 });
  const model = await loadModel(HALF_PLUS_TWO, { prepare: shareConstants });
  await exec.attach(model, "half_plus_two");
  const example = create(ExampleSchema, {
    features: { feature: { x: { kind: { case: "floatList", value: { value: [2] } } } } },
  });
  const req = create(MultiInferenceRequestSchema, {
    tasks: [
      {
        modelSpec: { name: "m", signatureName: "regress_x_to_y" },
        methodName: "tensorflow/serving/regress",
      },
      {
        modelSpec: { name: "m", signatureName: "classify_x_to_y" },
        methodName: "tensorflow/serving/classify",
      },
    ],
    input: { kind: { case: "exampleList", value: { examples: [example] } } },
  });
  const out = exec.run(model, prepareMultiInference(model, 1, "m", req));
  assert.ok(out instanceof Promise);
  const res = await out;
  const inline = runPrepared(model, prepareMultiInference(model, 1, "m", req));
  assert.deepEqual(res, inline);
  const r = res.results[0].result;
  assert.equal(r.case, "regressionResult");
  assert.equal(r.value.regressions[0].value, 3);
});

Deno.test("a weight is packed once for the main isolate and every worker (shared kernel memory)", async () => {
  // 256×256 weights: small enough to run quickly, large enough to be a shared constant.
  await writeSlowModel(`${dir}/pack_once`, 3, 256, 4);
  const model = await load("pack_once");
  const before = kernelMemoryStats();
  // The main isolate runs it first (as a cheap version runs inline), packing W.
  const inline = values(runPrepared(model, call(model, "", { x: Tensor.float32([1]) })), "y");
  const afterMain = kernelMemoryStats();
  assert.equal(afterMain.packs - before.packs, 1);
  assert.equal(afterMain.references - before.references, 1);
  await using exec = new Executor({ workers: 2, inlineBelowMs: 0 });
  await exec.attach(model, "pack_once");
  // Enough concurrent calls that both workers run it (each takes one of the first two).
  const outs = await Promise.all(
    Array.from({ length: 6 }, () => exec.run(model, call(model, "", { x: Tensor.float32([1]) }))),
  );
  for (const o of outs) assert.deepEqual(values(o, "y"), inline);
  const after = kernelMemoryStats();
  // No isolate packed it again; each worker holds a reference to the main isolate's copy.
  assert.equal(after.packs - before.packs, 1);
  assert.equal(after.references - before.references, 3);
  assert.equal(after.packedBytes - before.packedBytes, 256 * 256 * 4);
});
