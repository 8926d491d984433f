/**
 * The snappy block decoder: equal to the reference implementation (snappyjs, used here only to
 * compress) on random data, and a clear error, never a crash or an oversized allocation, on
 * malformed blocks.
 */
import assert from "node:assert/strict";
import { compress, uncompress as reference } from "snappyjs";
import { SnappyError, uncompress } from "../../src/saved_model/snappy.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Data with runs and repeats at several distances, so every copy kind occurs. */
function sample(r: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n;) {
    const choice = r();
    if (choice < 0.3 || i < 8) {
      out[i++] = Math.floor(r() * 256);
    } else {
      const dist = 1 +
        Math.floor(r() * Math.min(i, choice < 0.6 ? 16 : choice < 0.9 ? 2000 : 70000));
      const len = 1 + Math.floor(r() * 80);
      for (let k = 0; k < len && i < n; k++, i++) out[i] = out[i - dist];
    }
  }
  return out;
}

Deno.test("snappy: decodes what the reference compresses, byte for byte", () => {
  const r = rng(7);
  const sizes = [0, 1, 2, 59, 60, 61, 255, 256, 65535, 65536, 70000, 200_000];
  for (let t = 0; t < 60; t++) sizes.push(Math.floor(r() * 100_000));
  let copies4 = false;
  for (const n of sizes) {
    const data = sample(r, n);
    const packed = new Uint8Array(compress(data));
    const got = uncompress(packed, n);
    assert.deepEqual(got, data, `size ${n}`);
    assert.deepEqual(got, new Uint8Array(reference(packed)));
    if (n > 70000) copies4 = true;
  }
  assert.ok(copies4);
});

Deno.test("snappy: the declared length is checked against the limit before allocating", () => {
  // Preamble 2^32 - 1, no body.
  const huge = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f);
  assert.throws(() => uncompress(huge, 1 << 20), /exceeds the limit/);
  assert.throws(
    () => uncompress(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 1e12),
    SnappyError,
  );
});

Deno.test("snappy: malformed blocks are SnappyErrors, never wrong output", () => {
  const cases: [number[], RegExp][] = [
    [[], /truncated length/],
    [[0x80], /truncated length/],
    [[3, 0x08, 1, 2], /literal past the end/], // literal of 3, 2 bytes given
    [[1, 0x04, 1, 2], /literal past the declared/],
    [[4, 0x00, 9, 0x01, 0x01], /copy offset 1 invalid|copy past/],
    [[4, 0x00, 9, 0x05, 0x00], /copy offset 0 invalid/],
    [[8, 0x00, 9, 0x0e, 0x02, 0x00], /copy offset 2 invalid/],
    [[3, 0x00, 9], /decoded 1 bytes where the preamble declares 3/],
    [[5, 0xf4, 1], /truncated literal length/],
    [[5, 0x03, 1, 0], /truncated copy/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => uncompress(Uint8Array.from(bytes), 1 << 20), (e: unknown) => {
      assert.ok(e instanceof SnappyError, String(e));
      assert.match((e as Error).message, re);
      return true;
    });
  }
  // Random mutations of a valid block: each either decodes to the declared length or throws a
  // SnappyError.
  const r = rng(11);
  const data = sample(r, 5000);
  const packed = new Uint8Array(compress(data));
  for (let t = 0; t < 3000; t++) {
    const m = packed.slice(0, Math.max(1, packed.length - Math.floor(r() * 3)));
    for (let k = 0; k < 3; k++) m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
    try {
      const out = uncompress(m, 1 << 20);
      assert.ok(out.length <= 1 << 20);
    } catch (e) {
      assert.ok(e instanceof SnappyError, String(e));
    }
  }
});
