/**
 * The storage arena (`tensor/arena.ts`): what is recycled, what is never handed out again, and
 * the zero-fill contract of `allocate`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  activateArena,
  Arena,
  type FloatStore,
  isSlab,
  setFloatStore,
  SLAB_BYTES,
  SMALL_BYTES,
  uninitialized,
  zeroed,
} from "../../src/tensor/arena.ts";
import { allocate, DataType } from "../../src/tensor/dtype.ts";

const BIG = 8192; // floats: above the arena's minimum size

Deno.test("Arena hands a released buffer out again, for the same type and length only", () => {
  const a = new Arena();
  const x = a.take(Float32Array, BIG, false);
  a.hold(x, false);
  a.release(x);
  assert.notEqual(a.take(Float32Array, BIG + 4, false), x);
  assert.notEqual(a.take(Int32Array, BIG, false), x);
  assert.equal(a.take(Float32Array, BIG, false), x);
});

Deno.test("Arena frees a buffer only when no slot holds a tensor on it (views count)", () => {
  const a = new Arena();
  const x = a.take(Float32Array, BIG, false);
  const view = x.subarray(16, 32);
  a.hold(x, false);
  a.hold(view, false);
  a.release(x);
  assert.notEqual(a.take(Float32Array, BIG, false), x);
  a.release(view);
  assert.equal(a.take(Float32Array, BIG, false), x);
});

Deno.test("Arena never hands out again a buffer held by a kept slot, or one not its own", () => {
  const a = new Arena();
  const x = a.take(Float32Array, BIG, false);
  a.hold(x, false);
  a.hold(x.subarray(1), true); // e.g. a Reshape of it is fetched
  a.release(x);
  assert.notEqual(a.take(Float32Array, BIG, false), x);
  const foreign = new Float32Array(BIG);
  a.hold(foreign, false);
  a.release(foreign);
  assert.notEqual(a.take(Float32Array, BIG, false), foreign);
});

Deno.test("Arena keeps what the last run freed and lets older spare storage go", () => {
  const a = new Arena();
  const x = a.take(Float32Array, BIG, false);
  a.hold(x, false);
  a.release(x);
  a.endRun();
  // Run 2 frees nothing: x is still there for run 2 but not after it.
  a.endRun();
  assert.notEqual(a.take(Float32Array, BIG, false), x);
  // Storage live at the end of a run (an output) is never recycled.
  const y = a.take(Float32Array, BIG, false);
  a.hold(y, false);
  a.endRun();
  a.release(y);
  assert.notEqual(a.take(Float32Array, BIG, false), y);
});

Deno.test("allocate() zero-fills recycled storage; uninitialized() may not", () => {
  const a = new Arena();
  const prev = activateArena(a);
  try {
    const x = zeroed(Float32Array, BIG);
    x.fill(7);
    a.hold(x, false);
    a.release(x);
    const y = allocate(DataType.DT_FLOAT, BIG);
    assert.equal(y, x);
    assert.ok(y.every((v) => v === 0));
    y.fill(5);
    a.hold(y, false);
    a.release(y);
    const z = uninitialized(Float32Array, BIG);
    assert.equal(z, x);
    const big = zeroed(BigInt64Array, BIG);
    big.fill(3n);
    a.hold(big, false);
    a.release(big);
    assert.ok(zeroed(BigInt64Array, BIG).every((v) => v === 0n));
  } finally {
    activateArena(prev);
  }
  // Without an arena, storage is always new.
  const n = uninitialized(Float32Array, BIG);
  assert.ok(n.every((v) => v === 0));
});

Deno.test("Arena is wanted after runs with large arrays, and only now and then after others", () => {
  const a = new Arena();
  assert.ok(a.wanted());
  a.take(Float32Array, 10, false); // small: not counted
  a.endRun();
  const asked = Array.from({ length: 32 }, () => a.wanted());
  assert.equal(asked.filter((w) => w).length, 2);
  a.take(Float32Array, BIG, false);
  a.endRun();
  assert.ok(a.wanted() && a.wanted());
});

Deno.test("tiny arrays are zero-filled, disjoint views into a shared slab; larger ones own their buffer", () => {
  const seen: Float64Array[] = [];
  // More than one slab's worth, of every kind of call that hands out storage.
  for (let i = 0; i < (2 * SLAB_BYTES) / 8; i++) {
    const a = i % 3 === 0
      ? zeroed(Float64Array, 1)
      : i % 3 === 1
      ? uninitialized(Float64Array, 1)
      : allocate(DataType.DT_DOUBLE, 1) as Float64Array;
    assert.equal(a.length, 1);
    assert.equal(a[0], 0);
    assert.ok(isSlab(a.buffer));
    assert.equal(a.byteOffset % 8, 0);
    a[0] = i + 1;
    seen.push(a);
  }
  // Each kept its own value: no two share an element.
  seen.forEach((a, i) => assert.equal(a[0], i + 1));
  const big = zeroed(Float32Array, SMALL_BYTES / 4 + 1);
  assert.ok(!isSlab(big.buffer));
  assert.equal(big.byteLength, big.buffer.byteLength);
  // Odd sizes keep later arrays aligned.
  const bytes = uninitialized(Uint8Array, 3);
  const after = zeroed(BigInt64Array, 2);
  assert.ok(isSlab(bytes.buffer));
  assert.equal(after.byteOffset % 8, 0);
  assert.deepEqual([...after], [0n, 0n]);
});

Deno.test("a slab moved to another isolate is replaced, not carved from again", () => {
  const a = zeroed(Float32Array, 2);
  structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
  assert.equal(a.length, 0); // detached
  const b = zeroed(Float32Array, 2);
  assert.equal(b.length, 2);
  assert.ok(isSlab(b.buffer));
});

/** A store over one plain buffer (first fit is not needed: blocks are never reused here). */
function fakeStore(): FloatStore & { live: Set<number>; freed: number } {
  const buffer = new ArrayBuffer(64 * BIG * 4);
  let top = 0;
  const live = new Set<number>();
  return {
    live,
    freed: 0,
    alloc(length: number) {
      if (top + length * 4 > buffer.byteLength) return undefined;
      const a = new Float32Array(buffer, top, length);
      a.fill(NaN); // unspecified contents
      live.add(top);
      top += length * 4;
      return a;
    },
    free(a: Float32Array) {
      assert.ok(live.delete(a.byteOffset), "freed once");
      this.freed++;
    },
    holds: (a: ArrayBufferView) => a.buffer === buffer,
  };
}

Deno.test("Arena carves float32 storage from a FloatStore, counts views, and reuses it", () => {
  const store = fakeStore();
  const old = setFloatStore(store);
  try {
    const a = new Arena();
    const x = a.take(Float32Array, BIG, true);
    assert.ok(store.holds(x) && a.stored(x));
    assert.ok(x.every((v) => v === 0), "zero-filled when asked");
    // Other types stay ordinary.
    assert.ok(!store.holds(a.take(Int32Array, BIG, false) as unknown as Float32Array));
    const view = x.subarray(8, 40);
    a.hold(x, false);
    a.hold(view, false);
    a.release(x);
    const y = a.take(Float32Array, BIG, false);
    assert.notEqual(y.byteOffset, x.byteOffset, "a view still holds it");
    a.release(view);
    assert.equal(a.take(Float32Array, BIG, false), x, "free once no slot holds it");
    assert.equal(store.freed, 0);
  } finally {
    setFloatStore(old);
  }
});

Deno.test("Arena recycles stored storage live at the end of a run and frees what it lets go", () => {
  const store = fakeStore();
  const old = setFloatStore(store);
  try {
    const a = new Arena();
    // Taken and never released (an unused output): garbage once the run ends.
    const x = a.take(Float32Array, BIG, false);
    a.endRun();
    assert.equal(a.take(Float32Array, BIG, false), x);
    a.endRun();
    // x was live again at the end of that run: kept as spare; a run that does not take it lets
    // it go, back to the store.
    assert.equal(store.freed, 0);
    a.endRun();
    assert.equal(store.freed, 1);
    assert.equal(store.live.size, 0);
  } finally {
    setFloatStore(old);
  }
});
