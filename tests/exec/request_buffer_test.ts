/**
 * The executor's side of reused request memory (tensor/request_memory.ts): it holds a call's
 * buffer while a worker may read it, lets it go as soon as the call leaves its queue unrun, and
 * lets it be reused only for a version that keeps no state.
 */
import assert from "node:assert/strict";
import { Code } from "../../src/errors.ts";
import { Executor } from "../../src/exec/executor.ts";
import { shareConstants } from "../../src/exec/shared_model.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { RequestMemory } from "../../src/tensor/request_memory.ts";
import { assertServingError } from "../assert.ts";
import { predictCall, writeCounterModel, writeSlowModel } from "./models.ts";

const dir = await Deno.makeTempDir({ prefix: "request_buffer_test_" });
await writeSlowModel(`${dir}/slow`, 12);
await writeCounterModel(`${dir}/counter`);

const load = (name: string) => loadModel(`${dir}/${name}`, { prepare: shareConstants });

const call = predictCall;

Deno.test("a stateless version's request memory is reused once the call is answered", async () => {
  await using exec = new Executor({ workers: 1 });
  const model = await load("slow");
  await exec.attach(model, "slow");
  const memory = new RequestMemory();
  const buffer = memory.create(1 << 16);
  await exec.run(model, call(model, "", { x: Tensor.float32([1]) }), { requestBuffer: buffer });
  assert.equal(memory.idle, 0, "the transport still holds it");
  buffer.release();
  assert.equal(memory.idle, 1);
});

Deno.test("request memory is held while its worker runs, past the call's deadline", async () => {
  await using exec = new Executor({ workers: 1 });
  const model = await load("slow");
  await exec.attach(model, "slow");
  const memory = new RequestMemory();
  const buffer = memory.create(1 << 16);
  const late = exec.run(model, call(model, "", { x: Tensor.float32([1]) }), {
    deadline: Date.now() + 30,
    requestBuffer: buffer,
  });
  await assertServingError(() => late, Code.DEADLINE_EXCEEDED);
  // The transport answered and lets go; the worker still runs the call.
  buffer.release();
  assert.equal(memory.idle, 0, "not reusable while a worker may read it");
  // The next call runs after it on the only worker: by then the memory is back.
  await exec.run(model, call(model, "", { x: Tensor.float32([2]) }));
  assert.equal(memory.idle, 1);
});

Deno.test("a queued call that leaves unrun lets its request memory go at once", async () => {
  await using exec = new Executor({ workers: 1 });
  const model = await load("slow");
  await exec.attach(model, "slow");
  const busy = exec.run(model, call(model, "", { x: Tensor.float32([1]) }));
  const memory = new RequestMemory();
  const buffer = memory.create(1 << 16);
  const gone = new AbortController();
  const dropped = exec.run(model, call(model, "", { x: Tensor.float32([2]) }), {
    signal: gone.signal,
    requestBuffer: buffer,
  });
  gone.abort();
  await assertServingError(() => dropped, Code.CANCELLED);
  buffer.release();
  assert.equal(memory.idle, 1, "back while the worker still runs the other call");
  await busy;
});

Deno.test("a stateful version's request memory is never reused", async () => {
  // Pinned to a worker, where a variable could keep a view of a feed.
  await using exec = new Executor({ workers: 1, heavyWeightElements: 0 });
  const model = await load("counter");
  await exec.attach(model, "counter");
  assert.equal(exec.placement(model), "worker");
  const memory = new RequestMemory();
  const buffer = memory.create(1 << 16);
  await exec.run(model, call(model, "incr_counter_by", { delta: Tensor.float32([2], []) }), {
    requestBuffer: buffer,
  });
  buffer.release();
  assert.equal(memory.idle, 0);
});

Deno.test("a worker's output memory is reused only after the call holding it is answered", async () => {
  await using exec = new Executor({ workers: 1 });
  const model = await load("slow");
  await exec.attach(model, "slow");
  const memory = new RequestMemory();
  // 64 KiB outputs: over the size posted in shared memory.
  const x = (k: number) => Tensor.float32(new Float32Array(16384).fill(k), [16384]);
  const run = async (k: number) => {
    const buffer = memory.create(1 << 16);
    // The transport's own hold, released once the answer is written.
    let outs: Tensor[] = [];
    const prepared = call(model, "", { x: x(k) });
    const finish = prepared.finish;
    await exec.run(model, {
      ...prepared,
      finish: (o: Tensor[]) => {
        outs = o;
        return finish(o);
      },
    }, { requestBuffer: buffer });
    return { buffer, data: outs[0].data as Float32Array };
  };
  const a = await run(1);
  assert.ok(a.data.buffer instanceof SharedArrayBuffer);
  assert.equal(a.data[0], 2);
  // A is not answered yet: B's outputs go elsewhere, A's stay as they were.
  const b = await run(10);
  assert.equal(b.data[0], 11);
  assert.ok(a.data.every((v) => v === 2), "A's outputs untouched while A is held");
  b.buffer.release();
  a.buffer.release();
  // Both given back: the next calls reuse that memory (A's old view now shows a later answer).
  const c = await run(100);
  const d = await run(1000);
  assert.equal(c.data[0], 101);
  assert.equal(d.data[0], 1001);
  const reused = [a.data[0], b.data[0]].filter((v) => v === 101 || v === 1001);
  assert.equal(reused.length, 2, "the worker reused the memory it got back");
  c.buffer.release();
  d.buffer.release();
});
