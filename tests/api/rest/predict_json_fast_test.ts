/**
 * The fast Predict paths (predict_json_fast.ts, `writeDecimalInto`) against the general ones
 * they stand in for, byte for byte, on seeded random inputs: every body the scan accepts gives
 * the general path's tensor exactly (and every body the general path refuses is declined), every
 * answer written as bytes is the general writer's text, every float the text of `writeDecimal`.
 */
import assert from "node:assert/strict";
import {
  fastTensor,
  predictJsonBytes,
  scanPredictBody,
} from "../../../src/api/rest/predict_json_fast.ts";
import {
  type JsonPredictRequestFormat,
  makeJsonFromTensorList,
  predictTensorsFromJson,
} from "../../../src/api/rest/json_tensor.ts";
import { writeDecimal, writeDecimalInto } from "../../../src/api/rest/json_writer.ts";
import { isRestPath, REST_PATH } from "../../../src/api/rest/handler.ts";
import { DataType, type NumericArray } from "../../../src/tensor/dtype.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";

const enc = new TextEncoder();

/**
 * A seeded generator of values in [0, 1) (mulberry32: a long period, so many thousands of cases
 * stay distinct), so a failure reproduces.
 */
function rng(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const dec = new TextDecoder();

/** The bytes `writeDecimalInto` writes for `v`. */
function decimalBytes(v: number, isFloat: boolean): string {
  const out = new Uint8Array(64);
  const end = writeDecimalInto(out, 7, v, isFloat);
  return dec.decode(out.subarray(7, end));
}

/** A float32 from 32 random bits (every exponent, subnormals, NaNs and infinities included). */
function randomFloatBits(next: () => number): number {
  const u = new Uint32Array(1);
  u[0] = ((next() * 65536) << 16) | (next() * 65536);
  return new Float32Array(u.buffer)[0];
}

function randomDoubleBits(next: () => number): number {
  const u = new Uint32Array(2);
  u[0] = ((next() * 65536) << 16) | (next() * 65536);
  u[1] = ((next() * 65536) << 16) | (next() * 65536);
  return new Float64Array(u.buffer)[0];
}

Deno.test("writeDecimalInto() writes writeDecimal's text for floats and doubles", () => {
  const special = [
    0,
    -0,
    NaN,
    Infinity,
    -Infinity,
    1,
    -1,
    0.1,
    2.5,
    1e-45,
    -1e-45,
    1.1754942e-38,
    1.17549435e-38,
    3.4028235e38,
    9000000,
    100000,
    999999.5,
    1e-5,
    0.0001,
    123456789,
    5e-324,
    2.2250738585072014e-308,
    2.225073858507201e-308,
    1.7976931348623157e308,
    1e21,
    1e22,
    1e23,
    0.30000000000000004,
  ];
  for (const v of special) {
    for (const isFloat of [true, false]) {
      const x = isFloat ? Math.fround(v) : v;
      assert.equal(decimalBytes(x, isFloat), writeDecimal(x, isFloat), `${x} float=${isFloat}`);
    }
  }
  // Powers of ten and their neighbours (the exponent estimate's edges), and values at a half
  // unit of the sixth digit (the tie check).
  for (let k = -45; k <= 38; k++) {
    const p = Math.fround(Number(`1e${k}`));
    const f32 = new Float32Array([p]);
    const u = new Uint32Array(f32.buffer);
    for (const d of [-2, -1, 0, 1, 2]) {
      const w = new Uint32Array([u[0] + d]);
      const v = new Float32Array(w.buffer)[0];
      assert.equal(decimalBytes(v, true), writeDecimal(v, true), `${v}`);
    }
    const tie = Math.fround(1.234565 * Number(`1e${k}`));
    assert.equal(decimalBytes(tie, true), writeDecimal(tie, true), `${tie}`);
  }
  const next = rng(20261205);
  for (let i = 0; i < 100_000; i++) {
    const f = randomFloatBits(next);
    assert.equal(decimalBytes(f, true), writeDecimal(f, true), `float ${f}`);
    const d = randomDoubleBits(next);
    assert.equal(decimalBytes(d, false), writeDecimal(d, false), `double ${d}`);
    // Short decimals (the common answers), as float and double.
    const s = Number(((next() - 0.5) * 10 ** Math.floor(next() * 12 - 6)).toPrecision(
      1 + Math.floor(next() * 8),
    ));
    assert.equal(decimalBytes(Math.fround(s), true), writeDecimal(Math.fround(s), true), `${s}`);
    assert.equal(decimalBytes(s, false), writeDecimal(s, false), `${s}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Request bodies

const DTYPES = [
  DataType.DT_FLOAT,
  DataType.DT_DOUBLE,
  DataType.DT_INT32,
  DataType.DT_INT16,
  DataType.DT_INT8,
  DataType.DT_UINT8,
  DataType.DT_UINT32,
  DataType.DT_INT64,
  DataType.DT_UINT64,
  DataType.DT_BOOL,
  DataType.DT_STRING,
];

/** A number literal: integers, decimals, `-0`, long fractions, and some the scan declines. */
function literal(next: () => number, clean: boolean, ints: boolean): string {
  if (ints && clean) {
    const sign = next() < 0.3 ? "-" : "";
    return sign + String(Math.floor(next() * 10 ** Math.floor(next() * 10)));
  }
  const r = clean ? next() * 0.75 : next();
  const sign = next() < 0.3 ? "-" : "";
  if (r < 0.25) return sign + String(Math.floor(next() * 10 ** Math.floor(next() * 10)));
  if (r < 0.6) {
    const int = Math.floor(next() * 10 ** Math.floor(next() * 5));
    const frac = String(Math.floor(next() * 10 ** Math.floor(1 + next() * 8))).padStart(
      Math.floor(1 + next() * 3),
      "0",
    );
    return `${sign}${int}.${frac}`;
  }
  if (r < 0.65) return next() < 0.5 ? "-0" : "-0.0";
  if (r < 0.7) return `${sign}0.${"0".repeat(Math.floor(next() * 330))}1`; // deep fractions
  if (r < 0.75) return `${sign}${Math.floor(next() * 999)}.${"9".repeat(Math.floor(next() * 20))}`;
  if (r < 0.8) return `${sign}1234567890`; // ten digits
  if (r < 0.85) return `${sign}${(next() * 100).toFixed(2)}e${Math.floor(next() * 40 - 20)}`;
  if (r < 0.88) return ["NaN", "-Infinity", "Infinity"][Math.floor(next() * 3)];
  if (r < 0.9) return `${sign}${(next() * 1e-300).toExponential()}`;
  if (r < 0.95) return sign + String(Math.floor(next() * 100));
  return `${sign}${Math.floor(next() * 1000)}.${Math.floor(next() * 1000)}`;
}

/** Random whitespace (JSON's four characters), mostly none. */
function ws(next: () => number): string {
  if (next() < 0.8) return "";
  return Array.from({ length: 1 + Math.floor(next() * 3) }, () => " \n\r\t"[Math.floor(next() * 4)])
    .join("");
}

/** A dense nest of lists of `dims` holding literals (sometimes broken: ragged, empty, stray). */
function nest(
  dims: readonly number[],
  next: () => number,
  breakIt: boolean,
  ints = false,
): string {
  if (dims.length === 0) {
    if (breakIt && next() < 0.01) {
      return ['"a"', "true", "null", "{}", "[]"][Math.floor(next() * 5)];
    }
    // Mostly literals the scan reads (else a single other one declines the whole body).
    return literal(next, !breakIt || next() < 0.95, ints);
  }
  let n = dims[0];
  if (breakIt && next() < 0.02) n += next() < 0.5 ? -1 : 1;
  const items = Array.from(
    { length: Math.max(0, n) },
    () => nest(dims.slice(1), next, breakIt, ints),
  );
  return `[${ws(next)}${items.join(`${ws(next)},${ws(next)}`)}${ws(next)}]`;
}

function randomBody(next: () => number): string {
  const rank = Math.floor(next() * 4);
  const dims = Array.from({ length: rank }, () => 1 + Math.floor(next() * 4));
  const breakIt = next() < 0.25;
  const ints = next() < 0.3;
  const r = next();
  if (r < 0.45) {
    const rows = next() < 0.5 ? 1 : next() < 0.5 ? 64 : 1 + Math.floor(next() * 8);
    const body = `{${ws(next)}"instances"${ws(next)}:${ws(next)}${
      nest([rows, ...dims], next, breakIt, ints)
    }${ws(next)}}${ws(next)}`;
    return body;
  }
  if (r < 0.85) {
    return `{${ws(next)}"inputs"${ws(next)}:${ws(next)}${nest(dims, next, breakIt, ints)}${
      ws(next)
    }}`;
  }
  // Forms the scan leaves to the general path.
  const other = [
    `{"signature_name": "serving_default", "instances": ${nest([2], next, false)}}`,
    `{"instances": ${nest([2], next, false)}, "inputs": [1]}`,
    `{"instances": []}`,
    `{"instances": [[], []]}`,
    `{"inputs": []}`,
    `{"instances": 1}`,
    `{"instances": [1, 2]} trailing`,
    `{"instances": [1, 2]`,
    `\ufeff{"instances": [1]}`,
    `{"instances": [{"x": 1}]}`,
    `{"instances": [[1, 2], 3]}`,
    `{"instances": [1, [2]]}`,
    `{"instanc\\u0065s": [1]}`,
    `{"inputs": {"x": [1]}}`,
    `{"inputs": 5, 6}`,
    `{"inputs": 5 6}`,
    `{"inputs": [5, 6], 7}`,
    `{"instances": [1, 2], "x"}`,
    `{"instances": [1,, 2]}`,
    `{"instances": [1, 2,]}`,
    `{"instances": [[1, 2]]]}`,
    `{"instances": [[1, 2]}`,
    `{"instances": [1 2]}`,
    `{"inputs": -}`,
    `{"inputs": 1.}`,
    `{"inputs": .5}`,
    `{"inputs": +1}`,
    `{"inputs": 01}`,
    `{"inputs": [1e5]}`,
    `{"inputs": [1.5E5]}`,
    `[1, 2]`,
    ``,
  ];
  return other[Math.floor(next() * other.length)];
}

function sameTensor(a: Tensor, b: Tensor, what: string): void {
  assert.equal(a.dtype, b.dtype, what);
  assert.deepEqual([...a.shape], [...b.shape], what);
  const x = a.data as NumericArray;
  const y = b.data as NumericArray;
  assert.equal(x.constructor, y.constructor, what);
  assert.equal(x.length, y.length, what);
  // Bit for bit (NaN payloads and -0 included).
  assert.deepEqual(
    new Uint8Array(x.buffer, x.byteOffset, x.byteLength),
    new Uint8Array(y.buffer, y.byteOffset, y.byteLength),
    what,
  );
}

Deno.test("scanPredictBody() and fastTensor() give the general path's tensors, or decline", () => {
  const next = rng(4242);
  let accepted = 0;
  let declined = 0;
  for (let i = 0; i < 6000; i++) {
    const text = randomBody(next);
    const body = enc.encode(text);
    const r = next();
    const dtype = r < 0.4
      ? DataType.DT_FLOAT
      : r < 0.6
      ? DataType.DT_DOUBLE
      : DTYPES[Math.floor(next() * DTYPES.length)];
    const what = `${DataType[dtype]} ${text.slice(0, 200)}`;
    let general: { tensor: Tensor; format: JsonPredictRequestFormat } | undefined;
    try {
      const d = predictTensorsFromJson(body, () => new Map([["x", dtype]]), "");
      general = { tensor: d.inputs.get("x")!, format: d.format };
    } catch {
      general = undefined;
    }
    const scan = scanPredictBody(body);
    const fast = scan === undefined ? undefined : fastTensor(scan, dtype);
    if (fast === undefined) {
      declined++;
      continue;
    }
    accepted++;
    assert.ok(general !== undefined, `accepted a body the general path refuses: ${what}`);
    assert.equal(scan!.format, general.format, what);
    sameTensor(fast, general.tensor, what);
  }
  // Both outcomes are exercised.
  assert.ok(accepted > 1500, `${accepted} accepted`);
  assert.ok(declined > 1500, `${declined} declined`);
});

Deno.test("scanPredictBody() reads the benchmark's 1- and 64-row bodies", () => {
  for (const rows of [1, 64]) {
    const text = `{"instances":[${
      Array.from({ length: rows }, (_, i) => `[${i + 1}.0]`).join(",")
    }]}`;
    const scan = scanPredictBody(enc.encode(text));
    assert.ok(scan);
    assert.deepEqual(scan.shape, [rows, 1]);
    const t = fastTensor(scan, DataType.DT_FLOAT)!;
    assert.deepEqual([...(t.data as Float32Array)], Array.from({ length: rows }, (_, i) => i + 1));
  }
  // A scalar in the columnar form; a refused dtype.
  const scalar = scanPredictBody(enc.encode('{"inputs": -2.5}'))!;
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual([...(fastTensor(scalar, DataType.DT_DOUBLE)!.data as Float64Array)], [-2.5]);
  assert.equal(fastTensor(scalar, DataType.DT_INT32), undefined);
  assert.equal(fastTensor(scalar, DataType.DT_STRING), undefined);
});

Deno.test("scanPredictBody() declines a body over its size limit", () => {
  const text = `{"instances":[${Array.from({ length: 40_000 }, () => "1").join(",")}]}`;
  assert.equal(scanPredictBody(enc.encode(text)), undefined);
});

// ---------------------------------------------------------------------------------------------
// Answers

const OUT_DTYPES = [
  DataType.DT_FLOAT,
  DataType.DT_FLOAT,
  DataType.DT_DOUBLE,
  DataType.DT_INT32,
  DataType.DT_INT8,
  DataType.DT_UINT8,
  DataType.DT_INT16,
  DataType.DT_UINT32,
  DataType.DT_INT64,
  DataType.DT_UINT64,
  DataType.DT_BOOL,
  DataType.DT_STRING,
];

function randomTensor(dtype: DataType, shape: number[], next: () => number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (dtype) {
    case DataType.DT_FLOAT:
      return new Tensor(
        dtype,
        shape,
        Float32Array.from(
          { length: n },
          () => next() < 0.5 ? randomFloatBits(next) : Math.fround((next() - 0.5) * 100),
        ),
      );
    case DataType.DT_DOUBLE:
      return new Tensor(
        dtype,
        shape,
        Float64Array.from(
          { length: n },
          () => next() < 0.5 ? randomDoubleBits(next) : (next() - 0.5) * 100,
        ),
      );
    case DataType.DT_INT64:
      return new Tensor(
        dtype,
        shape,
        BigInt64Array.from({ length: n }, () => BigInt(Math.floor((next() - 0.5) * 2 ** 53))),
      );
    case DataType.DT_UINT64:
      return new Tensor(
        dtype,
        shape,
        BigUint64Array.from({ length: n }, () => BigInt(Math.floor(next() * 2 ** 53)) * 1000n),
      );
    case DataType.DT_STRING:
      return new Tensor(dtype, shape, Array.from({ length: n }, () => enc.encode("s")));
    default: {
      const ctor = {
        [DataType.DT_INT32]: Int32Array,
        [DataType.DT_INT8]: Int8Array,
        [DataType.DT_UINT8]: Uint8Array,
        [DataType.DT_INT16]: Int16Array,
        [DataType.DT_UINT32]: Uint32Array,
        [DataType.DT_BOOL]: Uint8Array,
      }[dtype as number]!;
      const data = new ctor(n);
      for (let k = 0; k < n; k++) {
        data[k] = dtype === DataType.DT_BOOL
          ? (next() < 0.5 ? 1 : 0)
          : Math.floor((next() - 0.5) * 2 ** 33);
      }
      return new Tensor(dtype, shape, data);
    }
  }
}

/** Equality without assert's diff (which is huge for a long answer). */
function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const NAMES = ["y", "scores", "a_out", "b", "\u00e9t\u00e9", 'q"uote', "tab\there", "z"];

Deno.test("predictJsonBytes() writes makeJsonFromTensorList's bytes, or declines", () => {
  const next = rng(777);
  let written = 0;
  for (let i = 0; i < 3000; i++) {
    const outputs = 1 + Math.floor(next() * 3);
    const format: JsonPredictRequestFormat = next() < 0.6 ? "row" : "columnar";
    const batch = next() < 0.4 ? 1 : next() < 0.5 ? 64 : Math.floor(next() * 5);
    const names = [...new Set(Array.from({ length: outputs }, () => NAMES[Math.floor(next() * 8)]))]
      .sort();
    const tensors = names.map(() => {
      const rank = Math.floor(next() * 4);
      const shape = Array.from({ length: rank }, () => Math.floor(next() * 4));
      // The row format needs a batch dimension, the same for all (sometimes not, on purpose).
      if (format === "row" && next() < 0.95) shape.unshift(batch);
      const dtype = next() < 0.8
        ? OUT_DTYPES[Math.floor(next() * 3)]
        : OUT_DTYPES[Math.floor(next() * OUT_DTYPES.length)];
      return randomTensor(dtype, shape, next);
    });
    const what = `${format} ${names} ${tensors.map((t) => `${DataType[t.dtype]}[${t.shape}]`)}`;
    let general: string | undefined;
    try {
      const g = makeJsonFromTensorList(names, tensors, format);
      general = typeof g === "string" ? g : dec.decode(g);
    } catch {
      general = undefined;
    }
    const fast = predictJsonBytes(names, tensors, format);
    if (fast === undefined) {
      // Declined: an error of the general path, or a type this path leaves to it.
      assert.ok(
        general === undefined || tensors.some((t) => t.dtype === DataType.DT_STRING),
        `declined ${what}`,
      );
      continue;
    }
    written++;
    assert.ok(general !== undefined, `wrote an answer the general path refuses: ${what}`);
    assert.deepEqual(fast, enc.encode(general), what);
  }
  assert.ok(written > 1500, `${written} written`);
});

Deno.test("predictJsonBytes() answers stay valid while later answers are written", () => {
  const t = (v: number) => new Tensor(DataType.DT_FLOAT, [2, 1], new Float32Array([v, v + 1]));
  const first = predictJsonBytes(["y"], [t(1)], "row")!;
  const copy = first.slice();
  // Enough answers to move on to new slabs several times, one of them large.
  for (let i = 0; i < 2000; i++) predictJsonBytes(["y"], [t(i)], "columnar");
  const big = new Tensor(DataType.DT_FLOAT, [50_000], new Float32Array(50_000).fill(0.125));
  const large = predictJsonBytes(["y"], [big], "columnar")!;
  assert.deepEqual(first, copy);
  assert.equal(dec.decode(first), '{\n    "predictions": [[1.0], [2.0]\n    ]\n}');
  const want = makeJsonFromTensorList(["y"], [big], "columnar");
  assert.ok(bytesEqual(large, typeof want === "string" ? enc.encode(want) : want));
});

Deno.test("isRestPath() answers as REST_PATH", () => {
  const next = rng(99);
  const chars = ["/", "v", "V", "1", "2", "x", ":", "?", "\n", "\r", "\u2028", "%", " "];
  const paths = ["", "/", "/v1", "/v1/", "/V1/models/x:predict", "/v2/", "v1/", "/v1/\n", "//v1/"];
  for (let i = 0; i < 20_000; i++) {
    const len = Math.floor(next() * 12);
    let s = next() < 0.7 ? "/v1/" : "";
    for (let k = 0; k < len; k++) s += chars[Math.floor(next() * chars.length)];
    paths.push(s);
  }
  for (const p of paths) assert.equal(isRestPath(p), REST_PATH.test(p), JSON.stringify(p));
});

Deno.test("scanPredictBody() on mutated bodies: the general path's tensor, or declined", () => {
  const next = rng(31337);
  const bases = [
    '{"instances":[[1.0],[2.0],[3.5]]}',
    '{"instances": [1, -2, 3]}',
    '{ "inputs" : [[1.25, -0.5], [3, 4]] }',
    '{"inputs": -7.125}',
    '{"instances":[[[1,2],[3,4]],[[5,6],[7,8]]]}',
  ];
  const bytes = enc.encode('0123456789-.,[]{}":eE \n\tabc');
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const body = Array.from(enc.encode(bases[Math.floor(next() * bases.length)]));
    for (let m = 1 + Math.floor(next() * 3); m > 0; m--) {
      const at = Math.floor(next() * (body.length + 1));
      const r = next();
      const byte = bytes[Math.floor(next() * bytes.length)];
      if (r < 0.4) body[at] = byte;
      else if (r < 0.7) body.splice(at, 0, byte);
      else body.splice(at, 1);
    }
    const b = new Uint8Array(body);
    const dtype = next() < 0.7 ? DataType.DT_FLOAT : DataType.DT_INT32;
    const what = `${DataType[dtype]} ${dec.decode(b)}`;
    let general: Tensor | undefined;
    try {
      general = predictTensorsFromJson(b, () => new Map([["x", dtype]]), "").inputs.get("x");
    } catch {
      general = undefined;
    }
    const scan = scanPredictBody(b);
    const fast = scan === undefined ? undefined : fastTensor(scan, dtype);
    if (fast === undefined) continue;
    accepted++;
    assert.ok(general !== undefined, `accepted a body the general path refuses: ${what}`);
    sameTensor(fast, general, what);
  }
  assert.ok(accepted > 500, `${accepted} accepted`);
});
