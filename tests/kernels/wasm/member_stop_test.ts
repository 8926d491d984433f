/**
 * A team member that stops in the middle of a part (its worker crashed and was terminated)
 * does not leave the splitting caller waiting: once told (`noteMemberStopped`, what the executor
 * does for a worker it lost), the caller computes the unfinished part itself; and a caller
 * whose splits wait for a slow member learns to run such tasks itself.
 *
 * @module
 */
import assert from "node:assert/strict";
import { kernelMemory, sharedHeap } from "../../../src/kernels/wasm/shared_memory.ts";
import { noteMemberStopped } from "../../../src/kernels/wasm/team.ts";

function startWorker(id: number, hang: boolean, slowMs = 0, judging = false): Promise<Worker> {
  const w = new Worker(new URL("./stop_worker.ts", import.meta.url).href, { type: "module" });
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => (e.data.adopted ? resolve(w) : reject(new Error("not adopted")));
    w.onerror = (e) => reject(e);
    w.postMessage({ type: "init", id, hang, slowMs, judging, memory: kernelMemory() });
  });
}

Deno.test("a caller computes the parts of a member that stopped mid-part", async () => {
  const caller = await startWorker(11, false);
  const hung = await startWorker(12, true);
  const parts = 6;
  const offset = sharedHeap().alloc(parts * 4);
  const words = new Int32Array(kernelMemory().buffer, offset, parts);
  words.fill(0);
  try {
    const done = new Promise<{ split: boolean; words: number[] }>((r) => {
      caller.onmessage = (e) => r(e.data);
    });
    caller.postMessage({ type: "go", offset, parts });
    // Wait until the hanging member has claimed a part, then stop it as the executor would.
    const end = Date.now() + 20_000;
    while (!Array.from(words).includes(-1) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(Array.from(words).includes(-1), "the hanging member claimed a part");
    hung.terminate();
    noteMemberStopped();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      done,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the caller is still waiting")), 30_000);
      }),
    ]).finally(() => clearTimeout(timer));
    assert.ok(result.split);
    assert.deepEqual(result.words, new Array(parts).fill(11), "the caller ran every part");
  } finally {
    sharedHeap().free(offset, parts * 4);
    caller.terminate();
    hung.terminate();
  }
});

Deno.test("a caller learns to run tasks itself when splitting them does not pay", async () => {
  const caller = await startWorker(21, false, 0, true);
  const slow = await startWorker(22, false, 20, true);
  const offset = sharedHeap().alloc(16);
  try {
    const result = await new Promise<{ split: number; alone: number; helped: number }>((r) => {
      caller.onmessage = (e) => r(e.data);
      caller.postMessage({ type: "learn", offset, calls: 40 });
    });
    assert.equal(result.split + result.alone, 40);
    // A split the slow member helps with waits ~20 ms for its part; alone the task takes
    // microseconds. Once it has helped twice, only explorations split (every 16 calls, then less
    // often). On a loaded machine the slow member may not be scheduled in time to help at all:
    // then every split costs what running alone does and there is nothing to learn.
    if (result.helped >= 2) {
      assert.ok(result.split <= 8, `split ${result.split} of 40 (helped ${result.helped})`);
      assert.ok(result.alone >= 32, `alone ${result.alone} of 40`);
    }
  } finally {
    sharedHeap().free(offset, 16);
    caller.terminate();
    slow.terminate();
  }
});
