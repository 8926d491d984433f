/**
 * HPACK: the RFC 7541 Appendix C examples (decoded fields and the dynamic table after each
 * block, evictions included), every malformed-input error, the header-list limit, the stateless
 * encoder (round trips of random lists), a seeded mutation fuzz that may only ever raise
 * HpackError, and header blocks captured from real clients (grpc-js, h2load).
 */
import assert from "node:assert/strict";
import {
  HPACK_STATIC_TABLE,
  HpackDecoder,
  HpackEncoder,
  HpackError,
} from "../../../../src/api/grpc/h2/hpack.ts";
import { mulberry32 } from "./hpack_random.ts";

/** Octets from hex written with any whitespace. */
function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  return Uint8Array.from({ length: clean.length / 2 }, (_, i) => {
    return parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  });
}

/** Flattens [[name, value], …] into the decoder's alternating form. */
function flat(pairs: [string, string][]): string[] {
  return pairs.flat();
}

interface Step {
  readonly block: string;
  readonly fields: [string, string][];
  /** Newest first. */
  readonly table: [string, string][];
  readonly tableSize: number;
}

function runSeries(maxTableSize: number, steps: Step[]): void {
  const decoder = new HpackDecoder(maxTableSize);
  for (const [i, step] of steps.entries()) {
    const got = decoder.decode(hex(step.block));
    assert.deepEqual(got.fields, flat(step.fields), `block ${i + 1} fields`);
    assert.equal(got.oversize, false);
    assert.deepEqual(decoder.dynamicTableEntries(), step.table, `block ${i + 1} table`);
    assert.equal(decoder.dynamicTableSize, step.tableSize, `block ${i + 1} table size`);
  }
}

Deno.test("static table: 61 entries as RFC 7541 Appendix A", () => {
  assert.equal(HPACK_STATIC_TABLE.length, 62);
  assert.deepEqual(HPACK_STATIC_TABLE[1], [":authority", ""]);
  assert.deepEqual(HPACK_STATIC_TABLE[8], [":status", "200"]);
  assert.deepEqual(HPACK_STATIC_TABLE[16], ["accept-encoding", "gzip, deflate"]);
  assert.deepEqual(HPACK_STATIC_TABLE[31], ["content-type", ""]);
  assert.deepEqual(HPACK_STATIC_TABLE[61], ["www-authenticate", ""]);
});

Deno.test("C.2.1 literal header field with indexing", () => {
  runSeries(4096, [{
    block: "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
    fields: [["custom-key", "custom-header"]],
    table: [["custom-key", "custom-header"]],
    tableSize: 55,
  }]);
});

Deno.test("C.2.2 literal header field without indexing", () => {
  runSeries(4096, [{
    block: "040c 2f73 616d 706c 652f 7061 7468",
    fields: [[":path", "/sample/path"]],
    table: [],
    tableSize: 0,
  }]);
});

Deno.test("C.2.3 literal header field never indexed", () => {
  runSeries(4096, [{
    block: "1008 7061 7373 776f 7264 0673 6563 7265 74",
    fields: [["password", "secret"]],
    table: [],
    tableSize: 0,
  }]);
});

Deno.test("C.2.4 indexed header field", () => {
  runSeries(4096, [{ block: "82", fields: [[":method", "GET"]], table: [], tableSize: 0 }]);
});

const REQUEST_FIELDS: [string, string][][] = [
  [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
  [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ],
  [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ],
];
const REQUEST_TABLES: [string, string][][] = [
  [[":authority", "www.example.com"]],
  [["cache-control", "no-cache"], [":authority", "www.example.com"]],
  [["custom-key", "custom-value"], ["cache-control", "no-cache"], [
    ":authority",
    "www.example.com",
  ]],
];
const REQUEST_SIZES = [57, 110, 164];

function requests(blocks: string[]): Step[] {
  return blocks.map((block, i) => ({
    block,
    fields: REQUEST_FIELDS[i],
    table: REQUEST_TABLES[i],
    tableSize: REQUEST_SIZES[i],
  }));
}

Deno.test("C.3 requests without Huffman coding", () => {
  runSeries(
    4096,
    requests([
      "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "8286 84be 5808 6e6f 2d63 6163 6865",
      "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]),
  );
});

Deno.test("C.4 requests with Huffman coding", () => {
  runSeries(
    4096,
    requests([
      "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
      "8286 84be 5886 a8eb 1064 9cbf",
      "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]),
  );
});

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOCATION = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESPONSE_FIELDS: [string, string][][] = [
  [[":status", "302"], ["cache-control", "private"], ["date", DATE1], ["location", LOCATION]],
  [[":status", "307"], ["cache-control", "private"], ["date", DATE1], ["location", LOCATION]],
  [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", DATE2],
    ["location", LOCATION],
    ["content-encoding", "gzip"],
    ["set-cookie", COOKIE],
  ],
];
const RESPONSE_TABLES: [string, string][][] = [
  [["location", LOCATION], ["date", DATE1], ["cache-control", "private"], [":status", "302"]],
  // ":status: 302" was evicted to make room for ":status: 307".
  [[":status", "307"], ["location", LOCATION], ["date", DATE1], ["cache-control", "private"]],
  [["set-cookie", COOKIE], ["content-encoding", "gzip"], ["date", DATE2]],
];
const RESPONSE_SIZES = [222, 222, 215];

function responses(blocks: string[]): Step[] {
  return blocks.map((block, i) => ({
    block,
    fields: RESPONSE_FIELDS[i],
    table: RESPONSE_TABLES[i],
    tableSize: RESPONSE_SIZES[i],
  }));
}

Deno.test("C.5 responses without Huffman coding (256-octet table, evictions)", () => {
  runSeries(
    256,
    responses([
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
       2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
       6c65 2e63 6f6d`,
      "4803 3330 37c1 c0bf",
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
       54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
       5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
       3d31`,
    ]),
  );
});

Deno.test("C.6 responses with Huffman coding (256-octet table, evictions)", () => {
  runSeries(
    256,
    responses([
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
       2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      "4883 640e ffc1 c0bf",
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
       77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
       9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ]),
  );
});

Deno.test("C.1 integers: 10 and 1337 with a 5-bit prefix (as table size updates), 42", () => {
  new HpackDecoder(10).decode(hex("2a")); // 10 fits the prefix (C.1.1)
  assert.throws(() => new HpackDecoder(9).decode(hex("2a")), /update to 10 exceeds/);
  // 1337 = 31 + 1306; 1306 = 26 + 10 * 128 → 0x1f, 0x9a, 0x0a (C.1.2).
  new HpackDecoder(1337).decode(hex("3f 9a 0a"));
  assert.throws(() => new HpackDecoder(1336).decode(hex("3f 9a 0a")), /update to 1337 exceeds/);
  // 42 (C.1.3 uses an 8-bit prefix, which HPACK fields never have): as a 7-bit string length.
  const value = "x".repeat(42);
  const block = new Uint8Array([0x00, 0x01, 0x61, 0x2a, ...enc(value)]);
  assert.deepEqual(new HpackDecoder().decode(block).fields, ["a", value]);
});

function assertHpackError(block: Uint8Array | string, pattern: RegExp, decoder?: HpackDecoder) {
  const bytes = typeof block === "string" ? hex(block) : block;
  assert.throws(() => (decoder ?? new HpackDecoder()).decode(bytes), (e: unknown) => {
    assert.ok(e instanceof HpackError, `expected HpackError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("errors: indices", () => {
  assertHpackError("80", /index 0/);
  assertHpackError("be", /index 62 is beyond/); // dynamic table empty
  assertHpackError("7e 00", /index 62 is beyond/); // incremental indexing, name index 62
  assertHpackError("0f 2f 00", /index 62 is beyond/); // without indexing, 4-bit prefix 15+47
  assertHpackError("1f 2f 00", /index 62 is beyond/); // never indexed
  // After one entry, 62 is valid and 63 is not.
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("4001 6101 62 be")).fields, ["a", "b", "a", "b"]);
  assertHpackError("bf", /index 63 is beyond/, d);
});

Deno.test("errors: integers that overflow or run past the block", () => {
  assertHpackError("ff", /integer runs past the end/);
  assertHpackError("ff 80", /integer runs past the end/);
  // 2^31 - 1 is the largest accepted; as an index it is simply out of range.
  assertHpackError("ff 80 ff ff ff 07", /index 2147483647 is beyond/);
  assertHpackError("ff 81 ff ff ff 07", /exceeds 2\^31 - 1/);
  assertHpackError("ff ff ff ff ff ff 01", /exceeds 2\^31 - 1|too many octets/);
  // Redundant zero continuation octets beyond what 31 bits need.
  assertHpackError("ff 80 80 80 80 80 00", /too many octets/);
  // A string length close to 2^31 is refused by the block's size, before any allocation.
  assertHpackError("00 7f ff ff ff 07", /runs past the end of the header block/);
});

Deno.test("errors: strings beyond the block, missing strings", () => {
  assertHpackError("00 05 616263", /string of 5 octets runs past/);
  assertHpackError("00 01 61 05 6162", /string of 5 octets runs past/);
  assertHpackError("00 85 616263", /string of 5 octets runs past/); // Huffman
  assertHpackError("00", /ends where a string literal should be/);
  assertHpackError("00 01 61", /ends where a string literal should be/);
  assertHpackError("40", /ends where a string literal should be/);
  assertHpackError("44", /ends where a string literal should be/);
});

Deno.test("errors: Huffman EOS, long padding, padding not 1s", () => {
  assertHpackError("00 01 61 85 ffffffffff", /Huffman/); // EOS (30 ones) in the value
  assertHpackError("00 01 61 81 ff", /Huffman/); // 8 bits of padding
  assertHpackError("00 01 61 82 1fff", /Huffman/); // "a" then 11 bits of padding
  assertHpackError("00 01 61 81 00", /Huffman/); // "0" then 3 zero bits
  assertHpackError("00 01 61 81 1e", /Huffman/); // "a" (00011) then 110
  assertHpackError("00 81 ff 01 61", /Huffman/); // in a name too
  // Valid: "a" (00011) + 111 padding, and an empty Huffman string.
  assert.deepEqual(new HpackDecoder().decode(hex("00 01 61 81 1f")).fields, ["a", "a"]);
  assert.deepEqual(new HpackDecoder().decode(hex("00 01 61 80")).fields, ["a", ""]);
});

Deno.test("errors: table size updates above the limit or after a field", () => {
  assertHpackError("3fe2 1f", /4097 exceeds the advertised 4096/);
  assertHpackError("82 20", /size update after a header field/);
  // Several at the start are fine; the last one wins; 0 empties the table.
  const d = new HpackDecoder();
  d.decode(hex("4001 6101 62"));
  assert.equal(d.dynamicTableSize, 34);
  d.decode(hex("20 3f e1 1f 3f 11 82")); // 0, then 4096, then 48
  assert.deepEqual(d.dynamicTableEntries(), []);
  d.decode(hex("4001 6101 62 4001 6301 64")); // room for one 34-octet entry in 48
  assert.deepEqual(d.dynamicTableEntries(), [["c", "d"]]);
  // A table of 0 with an incrementally indexed field: the entry is too big, not an error.
  const z = new HpackDecoder(0);
  assert.deepEqual(z.decode(hex("4001 6101 62")).fields, ["a", "b"]);
  assert.equal(z.dynamicTableSize, 0);
});

Deno.test("an entry larger than the table empties it and is not added", () => {
  const d = new HpackDecoder(64);
  d.decode(hex("4001 6101 62"));
  assert.equal(d.dynamicTableSize, 34);
  const big = "v".repeat(40); // 1 + 40 + 32 > 64
  const block = new Uint8Array([0x40, 0x01, 0x61, 40, ...new TextEncoder().encode(big)]);
  assert.deepEqual(d.decode(block).fields, ["a", big]);
  assert.deepEqual(d.dynamicTableEntries(), []);
});

Deno.test("a new entry may name the entry its own insertion evicts (§4.4)", () => {
  const d = new HpackDecoder(40);
  d.decode(hex("4001 6101 62")); // a: b (34)
  // Incremental indexing, name index 62 (a), value "cc": 35 octets, so "a: b" must go first.
  assert.deepEqual(d.decode(hex("7e 02 6363")).fields, ["a", "cc"]);
  assert.deepEqual(d.dynamicTableEntries(), [["a", "cc"]]);
  assert.equal(d.dynamicTableSize, 35);
});

Deno.test("oversize: fields stop at the limit, the table still follows the whole block", () => {
  // Limit 100: "a: b" counts 34, so two fit (68) and the third (102) crosses.
  const d = new HpackDecoder(4096, 100);
  const got = d.decode(hex("4001 6101 62 4001 6301 64 4001 6501 66 4001 6701 68"));
  assert.equal(got.oversize, true);
  assert.deepEqual(got.fields, ["a", "b", "c", "d"]);
  assert.deepEqual(d.dynamicTableEntries().map((e) => e[0]), ["g", "e", "c", "a"]);
  // The next block on the connection uses those entries.
  const next = d.decode(hex("bf be"));
  assert.equal(next.oversize, false);
  assert.deepEqual(next.fields, ["e", "f", "g", "h"]);
  // Exactly at the limit is not over it.
  assert.equal(new HpackDecoder(4096, 68).decode(hex("0001 6101 62 0001 6301 64")).oversize, false);
  // Many references to one large entry: sizes count what the references stand for.
  const e = new HpackDecoder(4096, 16384);
  const value = "v".repeat(1000);
  e.decode(
    new Uint8Array([0x40, 0x01, 0x61, 0x7f, 0x80 | (1000 - 127 - 128 * 6), 6, ...enc(value)]),
  );
  const refs = e.decode(new Uint8Array(100).fill(0xbe));
  assert.equal(refs.oversize, true);
  assert.equal(refs.fields.length, 2 * Math.floor(16384 / 1033));
});

function enc(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

Deno.test("unindexed literals with a static name: repeated octets give the same string", () => {
  const d = new HpackDecoder();
  const a = "0402 6162"; // :path "ab" raw (length 2)
  const b = "0402 6163"; // same length, other octets
  const h = "0481 1f"; // :path "a" Huffman-coded
  const c = "0402 6164"; // a third
  const sequence = [[a, "ab"], [a, "ab"], [b, "ac"], [a, "ab"], [b, "ac"], [c, "ad"], [a, "ab"]]
    .concat([[c, "ad"], [b, "ac"], [h, "a"], [h, "a"], [a, "ab"]]);
  for (const [block, want] of sequence) {
    assert.deepEqual(d.decode(hex(`${block} 84`)).fields, [":path", want, ":path", "/"]);
  }
  // Never indexed (0001) takes the same path; a bad string is still refused after a hit.
  assert.deepEqual(d.decode(hex("1402 6162")).fields, [":path", "ab"]);
  assertHpackError("0405 6162", /string of 5 octets runs past/, d);
  assertHpackError("04", /ends where a string literal should be/, d);
  assertHpackError("04ff", /integer runs past/, d);
  assert.deepEqual(d.dynamicTableEntries(), []);
});

Deno.test("long strings: Huffman beyond the shared scratch buffer, raw beyond one apply chunk", () => {
  const long = "abc".repeat(12000); // 36000 octets, Huffman-coded to 5 bits each
  const encoded = new HpackEncoder().encode(["x-long", long, "x-raw", "\xff".repeat(20000)]);
  const got = new HpackDecoder(4096, 1 << 20).decode(encoded);
  assert.deepEqual(got.fields, ["x-long", long, "x-raw", "\xff".repeat(20000)]);
});

Deno.test("octets above 0x7f decode one char each (latin1), raw and Huffman", () => {
  const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
  const encoded = new HpackEncoder().encode(["x-all", all, "x-high", "\xff\x80\xe9"]);
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(encoded).fields, ["x-all", all, "x-high", "\xff\x80\xe9"]);
  const raw = new Uint8Array([0x00, 0x01, 0x61, 0x03, 0xff, 0x80, 0xe9]);
  assert.deepEqual(d.decode(raw).fields, ["a", "\xff\x80\xe9"]);
});

Deno.test("encoder: static indices, static names, literal names, shorter of raw/Huffman", () => {
  const e = new HpackEncoder();
  // :method POST = 3, :scheme http = 6, :status 200 = 8; content-type name = 31.
  assert.deepEqual(e.encode([":method", "POST", ":status", "200"]), hex("83 88"));
  assert.deepEqual(e.encode([":authority", ""]), hex("81"));
  // content-type is static name 31 = 15 + 16 with a 4-bit prefix; the value is Huffman-coded.
  const ct = e.encode(["content-type", "application/grpc"]);
  assert.deepEqual(Array.from(ct.subarray(0, 2)), [0x0f, 0x10]);
  assert.ok(ct[2] & 0x80);
  assert.ok((ct[2] & 0x7f) < 16);
  assert.equal(ct.length, 3 + (ct[2] & 0x7f));
  assert.deepEqual(new HpackDecoder().decode(ct).fields, ["content-type", "application/grpc"]);
  // grpc-status: not in the static table: 0x00, then the name (Huffman, shorter), then "0".
  const gs = e.encode(["grpc-status", "0"]);
  assert.equal(gs[0], 0x00);
  assert.deepEqual(new HpackDecoder().decode(gs).fields, ["grpc-status", "0"]);
  // Raw when Huffman is not shorter: "\x00" (13 bits) is 1 raw octet.
  assert.deepEqual(e.encode(["x", "\x00"]).subarray(-2), hex("01 00"));
  // The same list always encodes the same (no dynamic table).
  assert.deepEqual(e.encode(["grpc-status", "0"]), gs);
  assert.throws(() => e.encode(["a"]), RangeError);
  assert.throws(() => e.encode(["a", "\u0100"]), RangeError);
});

Deno.test("encoder → decoder round trip of seeded random header lists", () => {
  const random = mulberry32(7541);
  const encoder = new HpackEncoder();
  const decoder = new HpackDecoder(4096, 1 << 30);
  const names = HPACK_STATIC_TABLE.slice(1).map((e) => e[0]).concat(["grpc-timeout", "te"]);
  const values = HPACK_STATIC_TABLE.slice(1).map((e) => e[1]);
  for (let round = 0; round < 500; round++) {
    const fields: string[] = [];
    const n = Math.floor(random() * 12);
    for (let i = 0; i < n; i++) {
      const kind = random();
      const name = kind < 0.5
        ? names[Math.floor(random() * names.length)]
        : randomString(random, 1 + Math.floor(random() * 20), 0x21, 0x7e).toLowerCase();
      const value = kind < 0.25
        ? values[Math.floor(random() * values.length)]
        : randomString(random, Math.floor(random() * (random() < 0.1 ? 3000 : 40)), 0, 0xff);
      fields.push(name, value);
    }
    const got = decoder.decode(encoder.encode(fields));
    assert.deepEqual(got.fields, fields);
    assert.deepEqual(decoder.dynamicTableEntries(), []);
  }
});

function randomString(random: () => number, length: number, lo: number, hi: number): string {
  let s = "";
  for (let i = 0; i < length; i++) {
    s += String.fromCharCode(lo + Math.floor(random() * (hi - lo + 1)));
  }
  return s;
}

Deno.test("fuzz: mutated and random blocks raise only HpackError, tables stay consistent", () => {
  const random = mulberry32(20261205);
  const seeds = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
    "4803 3330 37c1 c0bf 20 3f e1 1f",
    "3f e1 1f 1008 7061 7373 776f 7264 0673 6563 7265 74",
  ].map(hex);
  let errors = 0;
  let decoder = new HpackDecoder(256, 4096);
  for (let round = 0; round < 20000; round++) {
    let block: Uint8Array;
    if (random() < 0.2) {
      block = Uint8Array.from({ length: Math.floor(random() * 40) }, () => random() * 256);
    } else {
      block = seeds[Math.floor(random() * seeds.length)].slice();
      const mutations = 1 + Math.floor(random() * 4);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(random() * block.length);
        const r = random();
        if (r < 0.5) block[at] ^= 1 << Math.floor(random() * 8);
        else if (r < 0.7) block[at] = random() * 256;
        else if (r < 0.85) block = block.subarray(0, at);
        else {block = Uint8Array.from([
            ...block.subarray(0, at),
            random() * 256,
            ...block.subarray(at),
          ]);}
      }
    }
    try {
      const got = decoder.decode(block);
      assert.ok(got.fields.length % 2 === 0);
      let size = 0;
      for (const [n, v] of decoder.dynamicTableEntries()) size += n.length + v.length + 32;
      assert.equal(decoder.dynamicTableSize, size);
      assert.ok(size <= 256);
    } catch (e) {
      if (!(e instanceof HpackError)) throw e;
      errors++;
      decoder = new HpackDecoder(256, 4096); // the connection would end
    }
  }
  assert.ok(errors > 1000, `only ${errors} errors: the mutations are too gentle`);
});
