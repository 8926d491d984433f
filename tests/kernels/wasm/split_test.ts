/**
 * Kernels split across the team (`src/kernels/wasm/team.ts`) give exactly the unsplit floats:
 * random Conv2D, depthwise, pooling and product shapes (odd sizes, strides, dilations, paddings,
 * batch 2, a residual side input), bilinear resizes, sigmoids and exps, run in a worker isolate once unsplit and once split while a
 * second worker helps; and split elementwise Add / Sub / Mul (same shape, scalar, per-channel
 * and row broadcasts, either operand first) give each element's float32 result.
 *
 * @module
 */
import assert from "node:assert/strict";
import { kernelMemory } from "../../../src/kernels/wasm/shared_memory.ts";

function startWorker(index: number): Promise<Worker> {
  const w = new Worker(new URL("./split_worker.ts", import.meta.url).href, { type: "module" });
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => (e.data.adopted ? resolve(w) : reject(new Error("not adopted")));
    w.onerror = (e) => reject(e);
    w.postMessage({ type: "init", index, memory: kernelMemory() });
  });
}

Deno.test("split convolutions, depthwise convolutions, poolings, products, resizes, activations and elementwise ops equal unsplit ones", async () => {
  const caller = await startWorker(0);
  const helper = await startWorker(1);
  try {
    const result = await new Promise<{ failures: string[]; splits: Record<string, number> }>(
      (resolve, reject) => {
        caller.onmessage = (e) => resolve(e.data);
        caller.onerror = (e) => reject(e);
        caller.postMessage({ type: "go", seed: 1234, cases: 12 });
      },
    );
    assert.deepEqual(result.failures, []);
    for (const [kind, n] of Object.entries(result.splits)) {
      assert.ok(n > 0, `no ${kind} was split (${JSON.stringify(result.splits)})`);
    }
  } finally {
    caller.terminate();
    helper.terminate();
  }
});

Deno.test("a member that stores nothing sees the kernel memory as such once it asks for it", async () => {
  // A helper computing a split Add's part: its operands must count as in the memory (else it
  // copied them in and out of its own).
  const w = new Worker(new URL("./view_worker.ts", import.meta.url).href, { type: "module" });
  try {
    const r = await new Promise<{ before: boolean; after: boolean; floats: boolean }>(
      (resolve, reject) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = reject;
        w.postMessage(kernelMemory());
      },
    );
    assert.deepEqual(r, { before: false, after: true, floats: true });
  } finally {
    w.terminate();
  }
});
