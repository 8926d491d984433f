import assert from "node:assert/strict";
import { crc32c, maskCrc, unmaskCrc } from "../../src/saved_model/crc32c.ts";

const enc = new TextEncoder();

/** A byte-at-a-time reference, straight from the definition. */
function slowCrc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

Deno.test("crc32c: check value and iSCSI (RFC 3720 B.4) vectors", () => {
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  // TensorFlow's crc32c_test.cc: "a" and "foo".
  assert.equal(crc32c(enc.encode("a")), 0xc1d04330);
  assert.equal(crc32c(enc.encode("foo")), 0xcfc4ae1d);
});

Deno.test("crc32c: agrees with the bytewise definition at every length and offset", () => {
  const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
  for (let start = 0; start < 9; start++) {
    for (let len = 0; len + start <= data.length; len += 7) {
      const v = data.subarray(start, start + len);
      assert.equal(crc32c(v), slowCrc32c(v), `start ${start} len ${len}`);
    }
  }
});

Deno.test("crc32c: extend equals the CRC of the concatenation", () => {
  const a = enc.encode("hello ");
  const b = enc.encode("world, and a somewhat longer tail to cross 8-byte steps");
  const ab = new Uint8Array(a.length + b.length);
  ab.set(a);
  ab.set(b, a.length);
  assert.equal(crc32c(b, crc32c(a)), crc32c(ab));
  assert.equal(crc32c(new Uint8Array(0), 0x12345678), 0x12345678);
});

Deno.test("crc32c: mask and unmask (crc32c.h)", () => {
  const crc = crc32c(enc.encode("foo"));
  assert.notEqual(maskCrc(crc), crc);
  assert.notEqual(maskCrc(maskCrc(crc)), crc);
  assert.equal(unmaskCrc(maskCrc(crc)), crc);
  assert.equal(unmaskCrc(unmaskCrc(maskCrc(maskCrc(crc)))), crc);
  for (const v of [0, 1, 0xffffffff, 0x80000000, 0xdeadbeef]) {
    assert.equal(unmaskCrc(maskCrc(v)), v);
    assert.ok(maskCrc(v) >= 0 && maskCrc(v) <= 0xffffffff);
  }
  // The formula itself: ((crc >> 15) | (crc << 17)) + 0xa282ead8, modulo 2^32.
  assert.equal(maskCrc(0), 0xa282ead8);
  assert.equal(maskCrc(1), ((1 << 17) + 0xa282ead8) >>> 0);
});

// Its speed belongs to the bench, not to a timed assertion: here the slicing-by-8 loop is checked
// against the bit-at-a-time definition on lengths and offsets that leave every tail.
Deno.test("crc32c: slicing-by-8 equals the bitwise definition at every alignment", () => {
  const bitwise = (b: Uint8Array): number => {
    let c = 0xffffffff;
    for (const x of b) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  const big = new Uint8Array(70_001);
  for (let i = 0; i < big.length; i++) big[i] = Math.imul(i, 2654435761) >>> 24;
  for (let off = 0; off < 9; off++) {
    for (const len of [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 70_001 - 9]) {
      const part = big.subarray(off, off + len);
      assert.equal(crc32c(part), bitwise(part), `offset ${off}, length ${len}`);
    }
  }
});
