/**
 * The HPACK Huffman code: the canonically derived codes against RFC 7541 Appendix B, the
 * Appendix C strings both ways, every single symbol and random strings round trip, and the
 * decoder's refusals (EOS, padding too long or not 1s).
 */
import assert from "node:assert/strict";
import {
  HUFFMAN_CODE_LENGTHS,
  HUFFMAN_CODES,
  HUFFMAN_EOS,
  huffmanDecode,
  huffmanDecodedCapacity,
  huffmanEncodedLength,
  huffmanEncodeInto,
} from "../../../../src/api/grpc/h2/huffman.ts";
import { mulberry32 } from "./hpack_random.ts";

/** RFC 7541 Appendix B, "code as hex", symbols 0–255 then EOS. */
// deno-fmt-ignore
const APPENDIX_B_CODES = [
  0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
  0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
  0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
  0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
  0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
  0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
  0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
  0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
  0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
  0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
  0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
  0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
  0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
  0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
  0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
  0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
  0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
  0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
  0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
  0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
  0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
  0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
  0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
  0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
  0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
  0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
  0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
  0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
  0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
  0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
  0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
  0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
  0x3fffffff,
];

function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  return Uint8Array.from({ length: clean.length / 2 }, (_, i) => {
    return parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  });
}

function decode(bytes: Uint8Array): string | undefined {
  const out = new Uint8Array(huffmanDecodedCapacity(bytes.length));
  const n = huffmanDecode(bytes, 0, bytes.length, out);
  return n < 0 ? undefined : String.fromCharCode(...out.subarray(0, n));
}

function encode(s: string): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(s));
  assert.equal(huffmanEncodeInto(s, out, 0), out.length);
  return out;
}

Deno.test("codes derived from the lengths equal Appendix B", () => {
  assert.equal(HUFFMAN_CODE_LENGTHS.length, 257);
  assert.equal(APPENDIX_B_CODES.length, 257);
  assert.deepEqual(Array.from(HUFFMAN_CODES), APPENDIX_B_CODES);
  assert.equal(HUFFMAN_CODES[HUFFMAN_EOS], 0x3fffffff);
});

const EXAMPLES: [string, string][] = [
  ["f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"],
  ["a8eb 1064 9cbf", "no-cache"],
  ["25a8 49e9 5ba9 7d7f", "custom-key"],
  ["25a8 49e9 5bb8 e8b4 bf", "custom-value"],
  ["6402", "302"],
  ["aec3 771a 4b", "private"],
  ["d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff", "Mon, 21 Oct 2013 20:13:21 GMT"],
  ["9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3", "https://www.example.com"],
  ["9bd9 ab", "gzip"],
  [
    `94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0
     03ed 4ee5 b106 3d50 07`,
    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
  ],
];

Deno.test("Appendix C strings decode and encode", () => {
  for (const [coded, text] of EXAMPLES) {
    assert.equal(decode(hex(coded)), text);
    assert.deepEqual(encode(text), hex(coded));
  }
});

Deno.test("every symbol alone and with neighbours round trips, 30-bit codes included", () => {
  for (let c = 0; c < 256; c++) {
    for (const s of [String.fromCharCode(c), `a${String.fromCharCode(c)}\n\r`]) {
      assert.equal(decode(encode(s)), s, `symbol ${c}`);
    }
  }
  const random = mulberry32(5);
  for (let i = 0; i < 300; i++) {
    let s = "";
    const n = Math.floor(random() * 100);
    for (let j = 0; j < n; j++) s += String.fromCharCode(Math.floor(random() * 256));
    assert.equal(decode(encode(s)), s);
  }
});

Deno.test("output never exceeds 8/5 of the input: all-5-bit strings", () => {
  const s = "012aceiost".repeat(50); // the ten 5-bit symbols
  const coded = encode(s);
  assert.ok(huffmanDecodedCapacity(coded.length) >= s.length);
  const tight = encode("00000000"); // 40 bits = 5 octets → 8 symbols
  assert.equal(tight.length, 5);
  assert.equal(huffmanDecodedCapacity(5), 8);
  assert.equal(decode(tight), "00000000");
});

Deno.test("refusals: EOS, padding over 7 bits, padding not 1s", () => {
  assert.equal(decode(hex("ff ff ff ff fc")), undefined); // EOS then more
  assert.equal(decode(hex("ff ff ff ff")), undefined); // 32 ones: EOS inside
  assert.equal(decode(hex("ff")), undefined);
  assert.equal(decode(hex("1f ff")), undefined); // "a" + 11 bits of 1s
  assert.equal(decode(hex("ff 9f ff ff ff")), undefined);
  assert.equal(decode(hex("00")), undefined); // "0" + 000
  assert.equal(decode(hex("1e")), undefined); // "a" + 110
  assert.equal(decode(hex("fe")), undefined); // 1111111 0: not a full code, not 1s
  assert.equal(decode(hex("")), "");
  assert.equal(decode(hex("1f")), "a");
  assert.equal(decode(hex("07")), "0"); // "0" (00000) + 111
});

Deno.test("huffmanEncodedLength rejects chars above 0xff", () => {
  assert.throws(() => huffmanEncodedLength("é\u0100"), RangeError);
  assert.equal(huffmanEncodedLength(""), 0);
  assert.equal(huffmanEncodedLength("a"), 1);
});

/**
 * An independent reference decoder: bit by bit against the code table (a map from length and
 * code to symbol), with the RFC's padding and EOS rules.
 */
function referenceDecode(bytes: Uint8Array): string | undefined {
  const bySize = new Map<number, number>();
  for (let sym = 0; sym <= HUFFMAN_EOS; sym++) {
    bySize.set(HUFFMAN_CODE_LENGTHS[sym] * 2 ** 32 + HUFFMAN_CODES[sym], sym);
  }
  let s = "";
  let code = 0;
  let len = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      const sym = bySize.get(len * 2 ** 32 + code);
      if (sym === HUFFMAN_EOS) return undefined;
      if (sym !== undefined) {
        s += String.fromCharCode(sym);
        code = 0;
        len = 0;
      }
    }
  }
  // Padding: at most 7 bits, all ones.
  return len <= 7 && code === 2 ** len - 1 ? s : undefined;
}

Deno.test("the table decoder agrees with a bit-by-bit reference, on valid and broken input", () => {
  const random = mulberry32(11);
  let invalid = 0;
  for (let i = 0; i < 3000; i++) {
    let s = "";
    const n = Math.floor(random() * 60);
    for (let j = 0; j < n; j++) {
      s += String.fromCharCode(random() < 0.8 ? 32 + Math.floor(random() * 95) : random() * 256);
    }
    let coded = encode(s);
    const r = random();
    if (coded.length > 0 && r < 0.5) {
      coded[Math.floor(random() * coded.length)] ^= 1 << Math.floor(random() * 8);
    } else if (r < 0.6) {
      coded = Uint8Array.of(...coded, 0xff);
    } else if (r < 0.7) {
      coded = Uint8Array.from({ length: Math.floor(random() * 8) }, () => random() * 256);
    }
    const want = referenceDecode(coded);
    assert.equal(decode(coded), want, `input ${coded}`);
    if (want === undefined) invalid++;
  }
  assert.ok(invalid > 300 && invalid < 2700, `${invalid} invalid of 3000`);
});
