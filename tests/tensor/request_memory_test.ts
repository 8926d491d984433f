/** RequestMemory: a buffer comes back only once every holder let go, and only if vouched for. */
import assert from "node:assert/strict";
import {
  MAX_IDLE_BUFFERS,
  MAX_IDLE_BYTES,
  RequestMemory,
  SharedBufferPool,
} from "../../src/tensor/request_memory.ts";

Deno.test("RequestMemory takes back a buffer after its last holder, if reusable", () => {
  const memory = new RequestMemory();
  const b = memory.create(1000);
  b.allowReuse();
  b.hold();
  b.release();
  assert.equal(memory.idle, 0, "still held");
  b.release();
  assert.equal(memory.idle, 1);
  assert.throws(() => b.release(), /more often than held/);
  assert.throws(() => b.hold(), /released/);
  const again = memory.take(900);
  assert.ok(again !== undefined && again.buffer === b.buffer, "the same memory, lent anew");
  assert.equal(memory.idle, 0);
});

Deno.test("RequestMemory drops a buffer nobody vouched for", () => {
  const memory = new RequestMemory();
  memory.create(1000).release();
  assert.equal(memory.idle, 0);
  assert.equal(memory.take(1000), undefined);
});

Deno.test("RequestMemory.take() lends the smallest fitting buffer, never one over twice the need", () => {
  const memory = new RequestMemory();
  for (const n of [4000, 1000, 2000]) {
    const b = memory.create(n);
    b.allowReuse();
    b.release();
  }
  assert.equal(memory.take(1500)?.buffer.byteLength, 2000);
  assert.equal(memory.take(400), undefined, "1000 is over twice 400");
  assert.equal(memory.take(5000), undefined);
  assert.equal(memory.idle, 2);
});

Deno.test("RequestMemory keeps at most MAX_IDLE_BUFFERS and MAX_IDLE_BYTES idle", () => {
  const memory = new RequestMemory();
  for (let i = 0; i < MAX_IDLE_BUFFERS + 3; i++) {
    const b = memory.create(1024);
    b.allowReuse();
    b.release();
  }
  assert.equal(memory.idle, MAX_IDLE_BUFFERS);
  const big = memory.create(MAX_IDLE_BYTES / 2 + 1);
  big.allowReuse();
  big.release();
  const big2 = memory.create(MAX_IDLE_BYTES / 2 + 1);
  big2.allowReuse();
  big2.release();
  // The oldest went first: the first big one is gone, the second is kept.
  assert.equal(memory.take(MAX_IDLE_BYTES / 2 + 1)?.buffer, big2.buffer);
  assert.equal(memory.take(MAX_IDLE_BYTES / 2 + 1), undefined);
});

Deno.test("RequestBuffer.whenReused() runs after the last holder, and never if not reusable", () => {
  const memory = new RequestMemory();
  const ran: string[] = [];
  const a = memory.create(100);
  a.whenReused(() => ran.push("a"));
  a.allowReuse();
  a.hold();
  a.release();
  assert.deepEqual([...ran], []);
  a.release();
  assert.deepEqual([...ran], ["a"]);
  const b = memory.create(100);
  b.whenReused(() => ran.push("b"));
  b.release();
  assert.deepEqual([...ran], ["a"], "memory nobody vouched for may still be read: never reused");
});

Deno.test("SharedBufferPool lends exact sizes only, within its bounds", () => {
  const pool = new SharedBufferPool();
  const b = new SharedArrayBuffer(4096);
  pool.give(b);
  pool.give(b);
  assert.equal(pool.idle, 1, "given twice, kept once");
  assert.equal(pool.take(4000), undefined);
  assert.equal(pool.take(4096), b);
  assert.equal(pool.take(4096), undefined);
  for (let i = 0; i < MAX_IDLE_BUFFERS + 2; i++) pool.give(new SharedArrayBuffer(16));
  assert.equal(pool.idle, MAX_IDLE_BUFFERS);
});
