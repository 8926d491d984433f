/**
 * The RapidJSON-compatible reader: number kinds and values, NaN/Infinity tokens, strings, the
 * error messages and offsets RapidJSON 1.1.0 reports, deep nesting, and the writer's number
 * formatting (`%g` and json_tensor.cc's WriteDecimal).
 */
import assert from "node:assert/strict";
import {
  type JsonDoc,
  JsonParser,
  JsonSyntaxError,
  JsonType,
  NumberFlag,
} from "../../../src/api/rest/json_parse.ts";
import {
  formatG,
  PrettyWriter,
  rapidjsonDtoa,
  writeDecimal,
} from "../../../src/api/rest/json_writer.ts";

const enc = new TextEncoder();
const parser = new JsonParser();

function parse(text: string): JsonDoc {
  return parser.parse(enc.encode(text));
}

function syntaxError(text: string | Uint8Array): string {
  try {
    parser.parse(typeof text === "string" ? enc.encode(text) : text);
  } catch (e) {
    assert.ok(e instanceof JsonSyntaxError);
    return e.message;
  }
  return assert.fail(`expected ${JSON.stringify(text)} to fail`);
}

const { Int, Uint, Int64, Uint64, Double } = NumberFlag;

Deno.test("JsonParser keeps RapidJSON's number kinds", () => {
  const cases: [string, number, number | bigint][] = [
    ["0", Int | Uint | Int64 | Uint64, 0],
    ["-0", Int | Uint | Int64 | Uint64, 0],
    ["1", Int | Uint | Int64 | Uint64, 1],
    ["-1", Int | Int64, -1],
    ["2147483647", Int | Uint | Int64 | Uint64, 2147483647],
    ["2147483648", Uint | Int64 | Uint64, 2147483648],
    ["-2147483648", Int | Int64, -2147483648],
    ["-2147483649", Int64, -2147483649],
    ["4294967295", Uint | Int64 | Uint64, 4294967295],
    ["4294967296", Int64 | Uint64, 4294967296],
    ["9223372036854775807", Int64 | Uint64, 9223372036854775807n],
    ["9223372036854775808", Uint64, 9223372036854775808n],
    ["-9223372036854775808", Int64, -9223372036854775808n],
    ["18446744073709551615", Uint64, 18446744073709551615n],
  ];
  for (const [text, flags, value] of cases) {
    const doc = parse(`[${text}]`);
    assert.equal(doc.kind[1], JsonType.Number, text);
    assert.equal(doc.flags[1], flags, text);
    assert.equal(doc.integer(1), value, text);
  }
  // Beyond uint64, with a fraction or an exponent, or a token: a double.
  for (const text of ["18446744073709551616", "-9223372036854775809", "1.0", "1e0", "NaN"]) {
    const doc = parse(`[${text}]`);
    assert.equal(doc.flags[1], Double, text);
  }
});

Deno.test("JsonParser reads doubles as RapidJSON's normal-precision path does", () => {
  const cases: [string, number][] = [
    ["0.1", 0.1],
    ["2.5", 2.5],
    ["-3.25", -3.25],
    ["0.32941177487373352", 0.32941177487373352],
    ["0.8235294222831726", 0.8235294222831726],
    ["1435774380.0", 1435774380],
    ["1e3", 1000],
    ["1E-3", 0.001],
    ["-0.0", -0],
    ["1.7976931348623157e308", 1.7976931348623157e308],
    ["1e-400", 0],
    // Past 2^64 the digits are accumulated in a double, one rounding per digit: not the
    // correctly rounded 1.2345678901234568e29.
    ["123456789012345678901234567890", 1.2345678901234566e29],
    ["NaN", NaN],
    ["-NaN", NaN],
    ["Inf", Infinity],
    ["-Inf", -Infinity],
    ["Infinity", Infinity],
    ["-Infinity", -Infinity],
    // RapidJSON quirks: after NaN/Inf the fraction and exponent steps still run.
    ["NaN.5", 0.5],
  ];
  for (const [text, value] of cases) {
    const doc = parse(`[${text}]`);
    assert.ok(Object.is(doc.num[1], value), `${text}: ${doc.num[1]} !== ${value}`);
  }
});

Deno.test("JsonParser: strings are bytes; escapes decode; keys and duplicates are kept", () => {
  const doc = parse('{"a": "x\\u00e9\\ud83d\\ude00\\n\\/", "a": 2, "b\\"": "\xe9"}');
  assert.equal(doc.size(0), 3);
  const members = doc.members(0);
  assert.deepEqual(members.map(([k]) => doc.string(k)), ["a", "a", 'b"']);
  assert.equal(doc.string(members[0][1]), "xé😀\n/");
  // FindMember finds the first of duplicates.
  assert.equal(doc.findMember(0, "a"), members[0][1]);
  assert.equal(doc.findMember(0, "c"), -1);
  // A lone low surrogate is encoded as its three bytes; invalid UTF-8 passes through.
  const raw = parser.parse(new Uint8Array([0x5b, 0x22, 0xff, 0xfe, 0x22, 0x5d]));
  assert.deepEqual([...raw.stringBytes(1)], [0xff, 0xfe]);
  assert.deepEqual([...parse('["\\udc00"]').stringBytes(1)], [0xed, 0xb0, 0x80]);
});

Deno.test("JsonParser stops at the end of the root value and skips a BOM", () => {
  const doc = parse('{"a": [1, 2]} trailing garbage');
  assert.equal(doc.count, 5);
  assert.equal(doc.next(0), 5);
  const bom = parser.parse(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]));
  assert.equal(bom.kind[0], JsonType.Object);
});

Deno.test("JsonParser reports RapidJSON's messages and offsets", () => {
  const cases: [string, string][] = [
    ["  ", "The document is empty. at offset: 2"],
    ["{", "Missing a name for object member. at offset: 1"],
    ['{"a":1,}', "Missing a name for object member. at offset: 7"],
    ['{"a" 1}', "Missing a colon after a name of object member. at offset: 5"],
    ['{"a":1 "b"}', "Missing a comma or '}' after an object member. at offset: 7"],
    ['{"a":}', "Invalid value. at offset: 5"],
    ["[1,]", "Invalid value. at offset: 3"],
    ["[1 2]", "Missing a comma or ']' after an array element. at offset: 3"],
    ["[01]", "Missing a comma or ']' after an array element. at offset: 2"],
    ["instances = [1, 2]", "Invalid value. at offset: 0"],
    ["[-]", "Invalid value. at offset: 2"],
    ["[1.]", "Miss fraction part in number. at offset: 3"],
    ["[1e]", "Miss exponent in number. at offset: 3"],
    ["[1e309]", "Number too big to be stored in double. at offset: 1"],
    ["[Infinit]", "Invalid value. at offset: 8"],
    ["[nul]", "Invalid value. at offset: 4"],
    ["[tru]", "Invalid value. at offset: 4"],
    ['["\\q"]', "Invalid escape character in string. at offset: 2"],
    ['["\\u12G4"]', "Incorrect hex digit after \\u escape in string. at offset: 2"],
    ['["\\ud800x"]', "The surrogate pair in string is invalid. at offset: 2"],
    ['["\\ud800\\u0041"]', "The surrogate pair in string is invalid. at offset: 2"],
    ['["a\nb"]', "Invalid escape character in string. at offset: 3"],
    ['["abc', "Missing a closing quotation mark in string. at offset: 5"],
  ];
  for (const [text, message] of cases) assert.equal(syntaxError(text), message, text);
  // A NUL byte ends the input, as RapidJSON's stream does.
  assert.equal(
    syntaxError(new Uint8Array([0x5b, 0x31, 0x00, 0x5d])),
    "Missing a comma or ']' after an array element. at offset: 2",
  );
});

Deno.test("JsonParser handles deep nesting without recursion", () => {
  const text = `{"instances":[1], "nested":${"[".repeat(500000)}${"]".repeat(500000)}}`;
  const doc = parse(text);
  assert.equal(doc.size(0), 2);
  assert.equal(doc.count, 5 + 500000);
});

Deno.test("JsonParser: a reused parser gives each document its own values", () => {
  const p = new JsonParser();
  const big = `[${Array.from({ length: 5000 }, (_, i) => i / 7).join(",")}]`;
  const a = p.parse(enc.encode(big));
  assert.equal(a.size(0), 5000);
  assert.equal(a.num[5000], 4999 / 7);
  const b = p.parse(enc.encode("[3]"));
  assert.equal(b.count, 2);
  assert.equal(b.num[1], 3);
});

Deno.test("formatG prints as printf %g (ties to even)", () => {
  const cases: [number, number, string][] = [
    [0.1, 6, "0.1"],
    [9000000, 6, "9e+06"],
    [999999, 6, "999999"],
    [999999.5, 6, "1e+06"],
    [0.0003, 6, "0.0003"],
    [0.00003, 6, "3e-05"],
    [555557.5, 6, "555558"],
    [1234565, 6, "1.23456e+06"], // an exact tie: to even
    [1234575, 6, "1.23458e+06"],
    [2 ** -13, 9, "0.000122070312"], // 0.0001220703125: an exact tie at the 10th digit
    [3.4028234663852886e38, 9, "3.40282347e+38"],
    [1.401298464324817e-45, 9, "1.40129846e-45"],
    [-2.5, 1, "-2"],
    [-0, 6, "-0"],
    [1e100, 17, "1e+100"],
    [1 / 3, 17, "0.33333333333333331"],
    [0.1, 17, "0.10000000000000001"],
  ];
  for (const [v, p, s] of cases) assert.equal(formatG(v, p), s, `${v} %.${p}g`);
});

Deno.test("writeDecimal: six digits when they read back, else %.9g / %.17g, '.0' on whole numbers", () => {
  const floats: [number, string][] = [
    [3, "3.0"],
    [2.5, "2.5"],
    [9000000, "9e+06"],
    [999999, "999999.0"],
    [0.5, "0.5"],
    [0.0003, "0.0003"],
    [0.00003, "3e-05"],
    [555557.5, "555557.5"],
    [1435774380, "1.43577434e+09"],
    [0.1, "0.1"],
    [0.2, "0.2"],
    [Math.fround(0.11529126), "0.11529126"],
    [NaN, "NaN"],
    [Infinity, "Infinity"],
    [-Infinity, "-Infinity"],
    [-0, "-0.0"],
    [100000, "100000.0"],
    [1000000, "1e+06"],
  ];
  for (const [v, s] of floats) assert.equal(writeDecimal(Math.fround(v), true), s, String(v));
  assert.equal(writeDecimal(0.1, false), "0.1");
  assert.equal(writeDecimal(1 / 3, false), "0.33333333333333331");
  assert.equal(writeDecimal(42, false), "42.0");
});

Deno.test("rapidjsonDtoa lays digits out as RapidJSON's Prettify", () => {
  const cases: [number, string][] = [
    [1, "1.0"],
    [1.5, "1.5"],
    [-0, "-0.0"],
    [0.001234, "0.001234"],
    [1e-7, "1e-7"],
    [1.234e-7, "1.234e-7"],
    [1e21, "1e21"],
    [1e20, "100000000000000000000.0"],
    [1.5e300, "1.5e300"],
    [123.456, "123.456"],
  ];
  for (const [v, s] of cases) assert.equal(rapidjsonDtoa(v), s, String(v));
});

Deno.test("PrettyWriter formats as RapidJSON's PrettyWriter", () => {
  const w = new PrettyWriter();
  w.startObject();
  w.key("predictions");
  w.startArray();
  for (const item of [[1, 2], [3, 4]]) {
    w.startObject();
    w.singleLineArray = true;
    w.key("a");
    w.startArray();
    for (const v of item) w.integer(v);
    w.endArray();
    w.key("b");
    w.string('q"\u0001');
    w.singleLineArray = false;
    w.endObject();
  }
  w.endArray();
  w.endObject();
  assert.equal(
    w.result(),
    '{\n    "predictions": [\n        {\n            "a": [1, 2],\n            "b": "q\\"\\u0001"\n' +
      '        },\n        {\n            "a": [3, 4],\n            "b": "q\\"\\u0001"\n        }\n' +
      "    ]\n}",
  );
  // Invalid UTF-8 is written as the raw bytes.
  const b = new PrettyWriter();
  b.startArray();
  b.bytes(new Uint8Array([0x61, 0xff]));
  b.endArray();
  assert.deepEqual([...(b.result() as Uint8Array)], [
    0x5b,
    0x0a,
    0x20,
    0x20,
    0x20,
    0x20,
    0x22,
    0x61,
    0xff,
    0x22,
    0x0a,
    0x5d,
  ]);
});
