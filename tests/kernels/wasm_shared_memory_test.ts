/**
 * Tests of the kernels' shared memory (`src/kernels/wasm/shared_memory.ts`): the allocator whose
 * state lives in the memory, the table of packed weights shared between isolates, and the
 * weight cache on top (the executor test checks the sharing across real workers).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  kernelMemory,
  kernelMemoryStats,
  MAX_SHARED_BYTES,
  PackKind,
  shareBufferId,
  sharedBufferIdOf,
  SharedHeap,
  sharedHeap,
  WeightCache,
} from "../../src/kernels/wasm/shared_memory.ts";

Deno.test("SharedHeap allocates aligned blocks, reuses freed ones and merges neighbours", () => {
  const heap = sharedHeap();
  const a = heap.alloc(100);
  const b = heap.alloc(5000);
  const c = heap.alloc(16);
  assert.equal(a % 16, 0);
  assert.equal(b, a + 112);
  assert.equal(c, b + 5008);
  heap.free(a, 100);
  heap.free(b, 5000);
  // a and b merged: a block of their joint size fits where a was.
  assert.equal(heap.alloc(112 + 5008), a);
  heap.free(a, 112 + 5008);
  heap.free(c, 16);
  // Everything freed went back to the bump pointer: the next block starts at a again.
  const d = heap.alloc(16);
  assert.equal(d, a);
  heap.free(d, 16);
  assert.equal(heap.alloc(MAX_SHARED_BYTES + 16), -1, "past the limit: -1, no throw");
});

Deno.test("SharedHeap grows the memory, and a second heap over it sees the same state", () => {
  const heap = sharedHeap();
  const other = new SharedHeap(kernelMemory());
  const before = kernelMemory().buffer.byteLength;
  const big = heap.alloc(before + 65536);
  assert.ok(big > 0);
  assert.ok(kernelMemory().buffer.byteLength >= big + before + 65536);
  heap.f32[(big >>> 2) + 10] = 3.5;
  assert.equal(other.f32[(big >>> 2) + 10], 3.5);
  // The other heap allocates after the big block: the bump pointer is in the memory.
  const next = other.alloc(16);
  assert.ok(next >= big + before + 65536);
  other.free(next, 16);
  heap.free(big, before + 65536);
});

Deno.test("WeightCache packs a weight in a registered buffer once for every cache", () => {
  const buffer = new SharedArrayBuffer(64 * 4);
  const w = new Float32Array(buffer, 16, 32);
  w.forEach((_, i) => w[i] = i + 1);
  const id = shareBufferId(buffer);
  assert.equal(shareBufferId(buffer), id, "one id per buffer");
  assert.equal(sharedBufferIdOf(buffer), id);
  assert.equal(sharedBufferIdOf(new ArrayBuffer(8)), undefined);
  const heap = sharedHeap();
  const one = new WeightCache(heap);
  const two = new WeightCache(heap);
  let fills = 0;
  const fill = (f32: Float32Array, base: number) => {
    fills++;
    f32.set(w, base);
  };
  const s0 = kernelMemoryStats();
  const at = one.offset(w, PackKind.Gemm8, 32, 1, 0, 40, fill);
  // Another cache (as another isolate would) finds the same copy; so does a second array
  // viewing the same bytes.
  assert.equal(two.offset(w, PackKind.Gemm8, 32, 1, 0, 40, fill), at);
  assert.equal(
    two.offset(new Float32Array(buffer, 16, 32), PackKind.Gemm8, 32, 1, 0, 40, fill),
    at,
  );
  assert.equal(fills, 1);
  const s1 = kernelMemoryStats();
  assert.equal(s1.packs - s0.packs, 1);
  assert.equal(s1.references - s0.references, 3);
  assert.equal(s1.packedBytes - s0.packedBytes, 160);
  assert.deepEqual(Array.from(heap.f32.subarray(at >>> 2, (at >>> 2) + 40)), [
    ...Array.from(w),
    ...new Array(8).fill(0),
  ]);
  // Another layout of the same bytes is another entry.
  const dw = one.offset(w, PackKind.Depthwise, 8, 4, 0, 32, fill);
  assert.notEqual(dw, at);
  assert.equal(fills, 2);
});

Deno.test("WeightCache packs an unregistered array privately, once per cache", () => {
  const heap = sharedHeap();
  const cache = new WeightCache(heap);
  const w = new Float32Array([1, 2, 3]);
  let fills = 0;
  const fill = (f32: Float32Array, base: number) => {
    fills++;
    f32.set(w, base);
  };
  const s0 = kernelMemoryStats();
  const at = cache.offset(w, PackKind.Dense4, 3, 1, 0, 4, fill);
  assert.equal(cache.offset(w, PackKind.Dense4, 3, 1, 0, 4, fill), at);
  assert.equal(fills, 1);
  assert.equal(kernelMemoryStats().packs, s0.packs, "not in the shared table");
  assert.deepEqual(Array.from(heap.f32.subarray(at >>> 2, (at >>> 2) + 4)), [1, 2, 3, 0]);
});

Deno.test("SharedHeap: isolates allocating and freeing at once never get overlapping blocks", async () => {
  const workers = [1, 2, 3].map(() =>
    new Worker(new URL("./heap_stress_worker.ts", import.meta.url).href, { type: "module" })
  );
  try {
    const results = await Promise.all(
      workers.map((w, i) =>
        new Promise<{ bad: number }>((resolve, reject) => {
          w.onmessage = (e) => resolve(e.data);
          w.onerror = (e) => reject(e);
          w.postMessage({ memory: kernelMemory(), id: i + 1, rounds: 3000 });
        })
      ),
    );
    assert.deepEqual(results, [{ bad: 0 }, { bad: 0 }, { bad: 0 }]);
  } finally {
    for (const w of workers) w.terminate();
  }
});
