import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { parsingKernels } from "../../src/kernels/parsing.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { encodeExample, type FeatureInput } from "../../src/tensor/example.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, runOp } from "./harness.ts";

const dec = new TextDecoder();
const { DT_FLOAT, DT_INT64, DT_STRING, DT_INT32 } = DataType;

const ex = (f: Record<string, FeatureInput>) => encodeExample(f);
const texts = (t: Tensor) => (t.data as Uint8Array[]).map((b) => dec.decode(b));
const ints = (t: Tensor) => Array.from(t.data as BigInt64Array, Number);

function throwsWith(fn: () => unknown, code: Code, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(e.code, code);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

/** Runs ParseExample (v1) with dense features [key, dtype, shape, default] and sparse ones. */
function parseV1(
  serialized: Uint8Array[],
  dense: [string, DataType, number[], Tensor][],
  sparse: [string, DataType][] = [],
  names: string[] = [],
): Tensor[] {
  return runOp(
    parsingKernels,
    "ParseExample",
    [
      Tensor.strings(serialized),
      Tensor.strings(names),
      ...sparse.map(([k]) => Tensor.strings([k], [])),
      ...dense.map(([k]) => Tensor.strings([k], [])),
      ...dense.map(([, , , d]) => d),
    ],
    {
      Nsparse: attr.int(sparse.length),
      Ndense: attr.int(dense.length),
      sparse_types: attr.types(sparse.map(([, t]) => t)),
      Tdense: attr.types(dense.map(([, t]) => t)),
      dense_shapes: attr.shapes(dense.map(([, , s]) => s)),
    },
  );
}

/** Runs ParseExampleV2. */
function parseV2(
  serialized: Tensor,
  dense: [string, DataType, number[], Tensor][],
  sparse: [string, DataType][] = [],
  ragged: [string, DataType, DataType][] = [],
): Tensor[] {
  return runOp(
    parsingKernels,
    "ParseExampleV2",
    [
      serialized,
      Tensor.strings([]),
      Tensor.strings(sparse.map(([k]) => k)),
      Tensor.strings(dense.map(([k]) => k)),
      Tensor.strings(ragged.map(([k]) => k)),
      ...dense.map(([, , , d]) => d),
    ],
    {
      Tdense: attr.types(dense.map(([, t]) => t)),
      num_sparse: attr.int(sparse.length),
      sparse_types: attr.types(sparse.map(([, t]) => t)),
      ragged_value_types: attr.types(ragged.map(([, t]) => t)),
      ragged_split_types: attr.types(ragged.map(([, , t]) => t)),
      dense_shapes: attr.shapes(dense.map(([, , s]) => s)),
    },
  );
}

const noDefault = (dtype: DataType) => Tensor.zeros(dtype, [0]);

Deno.test("ParseExample: dense features with defaults and sparse features", () => {
  const batch = [
    ex({ age: { floatList: [30] }, ids: { int64List: [1, 2] }, tags: { bytesList: ["a", "b"] } }),
    ex({ ids: { int64List: [3, -4] }, name: { bytesList: ["bob"] } }),
    ex({ ids: { int64List: [5, 6] }, tags: { bytesList: ["c"] }, other: { floatList: [1] } }),
  ];
  const [spIdx, spVal, spShape, age, ids, name] = parseV1(
    batch,
    [
      ["age", DT_FLOAT, [1], Tensor.float32([-1], [1])],
      ["ids", DT_INT64, [2], noDefault(DT_INT64)],
      ["name", DT_STRING, [], Tensor.strings(["?"], [])],
    ],
    [["tags", DT_STRING]],
  );
  assert.deepEqual(age.shape, [3, 1]);
  assert.deepEqual(Array.from(age.data as Float32Array), [30, -1, -1]);
  assert.deepEqual(ids.shape, [3, 2]);
  assert.deepEqual(ints(ids), [1, 2, 3, -4, 5, 6]);
  assert.deepEqual(name.shape, [3]);
  assert.deepEqual(texts(name), ["?", "bob", "?"]);
  assert.deepEqual(spIdx.shape, [3, 2]);
  assert.deepEqual(ints(spIdx), [0, 0, 0, 1, 2, 0]);
  assert.deepEqual(texts(spVal), ["a", "b", "c"]);
  assert.deepEqual(ints(spShape), [3, 2]);
});

Deno.test("ParseExample: a 2-D dense float feature, packed and unpacked", () => {
  const features = { x: { floatList: [1, 2, 3, 4, 5, 6] } };
  const batch = [encodeExample(features), encodeExample(features, { packed: false })];
  const [x] = parseV1(batch, [["x", DT_FLOAT, [2, 3], noDefault(DT_FLOAT)]]);
  assert.deepEqual(x.shape, [2, 2, 3]);
  assert.deepEqual(Array.from(x.data as Float32Array), [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]);
});

Deno.test("ParseExample: sparse float and int64 features, empty batch", () => {
  const batch = [
    ex({ s: { floatList: [] } }),
    ex({ s: { floatList: [0.5, 1.5, 2.5] }, i: { int64List: [2n ** 40n] } }),
    ex({}),
  ];
  const [fIdx, iIdx, fVal, iVal, fShape, iShape] = parseV1(batch, [], [
    ["s", DT_FLOAT],
    ["i", DT_INT64],
  ]);
  assert.deepEqual(ints(fIdx), [1, 0, 1, 1, 1, 2]);
  assert.deepEqual(Array.from(fVal.data as Float32Array), [0.5, 1.5, 2.5]);
  assert.deepEqual(ints(fShape), [3, 3]);
  assert.deepEqual(ints(iIdx), [1, 0]);
  assert.deepEqual(Array.from(iVal.data as BigInt64Array), [2n ** 40n]);
  assert.deepEqual(ints(iShape), [3, 1]);

  const [idx, val, shape, dense] = parseV1(
    [],
    [["d", DT_FLOAT, [2], Tensor.float32([0, 0])]],
    [["s", DT_STRING]],
  );
  assert.deepEqual(idx.shape, [0, 2]);
  assert.deepEqual(val.shape, [0]);
  assert.deepEqual(ints(shape), [0, 0]);
  assert.deepEqual(dense.shape, [0, 2]);
});

Deno.test("ParseExample: sparse features accumulate across many examples", () => {
  const batch = Array.from(
    { length: 40 },
    (_, i) => ex({ v: { int64List: Array.from({ length: i % 7 }, (_, j) => i * 100 + j) } }),
  );
  const [idx, val, shape] = parseV1(batch, [], [["v", DT_INT64]]);
  const expected: number[] = [];
  const expectedIdx: number[] = [];
  batch.forEach((_, i) => {
    for (let j = 0; j < i % 7; j++) {
      expected.push(i * 100 + j);
      expectedIdx.push(i, j);
    }
  });
  assert.deepEqual(Array.from(val.data as BigInt64Array, Number), expected);
  assert.deepEqual(ints(idx), expectedIdx);
  assert.deepEqual(ints(shape), [40, 6]);
});

Deno.test("ParseExample: long float lists (block copy) and growing sparse buffers", () => {
  const long = Array.from({ length: 100 }, (_, i) => i / 4);
  const batch = [
    ex({ d: { floatList: long }, s: { floatList: long } }),
    ex({
      d: { floatList: long.map((v) => -v) },
      s: { floatList: [...long, ...long] },
    }),
  ];
  const [, sVal, sShape, d] = parseV1(batch, [["d", DT_FLOAT, [100], noDefault(DT_FLOAT)]], [[
    "s",
    DT_FLOAT,
  ]]);
  assert.deepEqual(Array.from(d.data as Float32Array), [...long, ...long.map((v) => -v)]);
  assert.deepEqual(Array.from(sVal.data as Float32Array), [...long, ...long, ...long]);
  assert.deepEqual(ints(sShape), [2, 200]);
});

Deno.test("ParseExample: errors name the feature like upstream", () => {
  const dense: [string, DataType, number[], Tensor][] = [
    ["x", DT_FLOAT, [2], noDefault(DT_FLOAT)],
  ];
  throwsWith(
    () => parseV1([ex({ y: { floatList: [1] } })], dense),
    Code.INVALID_ARGUMENT,
    "Name: <unknown>, Feature: x (data type: float) is required but could not be found.",
  );
  throwsWith(
    () => parseV1([ex({ x: { floatList: [1, 2] } }), ex({ x: { floatList: [1, 2, 3] } })], dense),
    Code.INVALID_ARGUMENT,
    "Name: <unknown>, Key: x, Index: 1.  Number of float values != expected.  Values size: 3 but output shape: [2]",
  );
  throwsWith(
    () => parseV1([ex({ x: { int64List: [1, 2] } })], dense, [], ["first"]),
    Code.INVALID_ARGUMENT,
    "Name: first, Key: x, Index: 0.  Data types don't match. Data type: int64 but expected type: float",
  );
  throwsWith(
    () => parseV1([ex({ s: { floatList: [1] } })], [], [["s", DT_STRING]]),
    Code.INVALID_ARGUMENT,
    "Name: <unknown>, Key: s, Index: 0.  Data types don't match. Expected type: string, Actual type: float",
  );
  throwsWith(
    () =>
      parseV1(
        [ex({ x: { int64List: [1] } })],
        [["x", DT_INT64, [2], noDefault(DT_INT64)]],
      ),
    Code.INVALID_ARGUMENT,
    "Name: <unknown>, Key: x, Index: 0.  Number of int64 values != expected.  Values size: 1 but output shape: [2]",
  );
  // More byte values than the row holds: upstream's reader fails outright.
  throwsWith(
    () =>
      parseV1(
        [ex({ x: { bytesList: ["a", "b", "c"] } })],
        [["x", DT_STRING, [2], noDefault(DT_STRING)]],
      ),
    Code.INVALID_ARGUMENT,
    "Name: <unknown>, Key: x, Index: 0.  Can't parse serialized Example.",
  );
  const bad = new Uint8Array([0x0a, 0x05, 0x0a, 0x03]);
  throwsWith(
    () => parseV1([bad], dense),
    Code.INVALID_ARGUMENT,
    /^Could not parse example input, value: '/,
  );
  // A Feature whose first field is not one of the three lists.
  // Example{features{feature{key:"x" value{}}}}: a Feature with no kind.
  const weird = new Uint8Array([0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x01, 0x78, 0x12, 0x00]);
  const unsupported = new Uint8Array([
    0x0a,
    0x09,
    0x0a,
    0x07,
    0x0a,
    0x01,
    0x78,
    0x12,
    0x02,
    0x22,
    0x00,
  ]);
  throwsWith(() => parseV1([unsupported], dense), Code.INVALID_ARGUMENT, "Unsupported datatype.");
  // An empty Feature counts as missing: the default applies.
  const [x] = parseV1([weird], [["x", DT_FLOAT, [2], Tensor.float32([7, 8])]]);
  assert.deepEqual(Array.from(x.data as Float32Array), [7, 8]);
});

Deno.test("ParseExample: input validation", () => {
  const dense: [string, DataType, number[], Tensor][] = [
    ["x", DT_FLOAT, [2], Tensor.float32([1, 2, 3])],
  ];
  throwsWith(
    () => parseV1([ex({})], dense),
    Code.INVALID_ARGUMENT,
    "def_value[0].shape() == [3] is not compatible with dense_shapes_[0] == [2]",
  );
  throwsWith(
    () => parseV1([ex({})], [["x", DT_FLOAT, [1], Tensor.int64([1])]]),
    Code.INVALID_ARGUMENT,
    "dense_defaults[0].dtype() == int64 != dense_types_[0] == float",
  );
  throwsWith(
    () => parseV1([ex({}), ex({})], [], [], ["only one"]),
    Code.INVALID_ARGUMENT,
    "Expected names have the same shape as serialized: name.shape=[1], serialized.shape=[2]",
  );
  throwsWith(
    () => parseV1([ex({})], [["x", DT_INT32, [1], Tensor.int32([1])]]),
    Code.INVALID_ARGUMENT,
    "Received input dtype: int32",
  );
});

Deno.test("ParseExampleV2: batch with ragged and variable-length dense features", () => {
  const batch = Tensor.strings([
    ex({ r: { int64List: [1, 2, 3] }, v: { floatList: [1, 2, 3, 4] } }),
    ex({ v: { floatList: [] } }),
    ex({ r: { int64List: [4] }, v: { floatList: [5, 6] } }),
  ]);
  const [v, rv, rs] = parseV2(
    batch,
    [["v", DT_FLOAT, [-1, 2], Tensor.float32([-1], [])]],
    [],
    [["r", DT_INT64, DT_INT32]],
  );
  assert.deepEqual(v.shape, [3, 2, 2]);
  assert.deepEqual(Array.from(v.data as Float32Array), [1, 2, 3, 4, -1, -1, -1, -1, 5, 6, -1, -1]);
  assert.deepEqual(ints(rv), [1, 2, 3, 4]);
  assert.equal(rs.dtype, DT_INT32);
  assert.deepEqual(Array.from(rs.data as Int32Array), [0, 3, 3, 4]);

  throwsWith(
    () =>
      parseV2(Tensor.strings([ex({ v: { floatList: [1, 2, 3] } })]), [
        ["v", DT_FLOAT, [-1, 2], Tensor.float32([0], [])],
      ]),
    Code.INVALID_ARGUMENT,
    "Name: <unknown>, Key: v, Index: 0.  Number of float values is not a multiple of stride length. Saw 3 values but output shape is: [?,2]",
  );
});

Deno.test("ParseExampleV2: a scalar input has no batch dimension", () => {
  const one = Tensor.strings([ex({ d: { floatList: [1, 2] }, s: { bytesList: ["p", "q"] } })], []);
  const [sIdx, sVal, sShape, d, missing] = parseV2(
    one,
    [
      ["d", DT_FLOAT, [2], noDefault(DT_FLOAT)],
      ["m", DT_INT64, [], Tensor.int64([9], [])],
    ],
    [["s", DT_STRING]],
  );
  assert.deepEqual(sIdx.shape, [2, 1]);
  assert.deepEqual(ints(sIdx), [0, 1]);
  assert.deepEqual(texts(sVal), ["p", "q"]);
  assert.deepEqual(ints(sShape), [2]);
  assert.deepEqual(d.shape, [2]);
  assert.deepEqual(Array.from(d.data as Float32Array), [1, 2]);
  assert.deepEqual(missing.shape, []);
  assert.deepEqual(ints(missing), [9]);

  throwsWith(
    () => parseV2(one, [["z", DT_FLOAT, [], noDefault(DT_FLOAT)]]),
    Code.INVALID_ARGUMENT,
    "Feature: z (data type: float) is required but could not be found.",
  );
  throwsWith(
    () => parseV2(one, [["d", DT_FLOAT, [3], noDefault(DT_FLOAT)]]),
    Code.INVALID_ARGUMENT,
    "Key: d.  Can't parse serialized Example: Some float_list slice was not parsed.",
  );
  throwsWith(
    () => parseV2(Tensor.strings(["a", "b", "c", "d"], [2, 2]), []),
    Code.INVALID_ARGUMENT,
    "Expected serialized to be a scalar or vector, got shape: [2,2]",
  );
});

Deno.test("ParseSingleExample: keys from attrs", () => {
  const [idx, val, shape, d] = runOp(
    parsingKernels,
    "ParseSingleExample",
    [
      Tensor.strings([ex({ a: { int64List: [4, 5] }, b: { floatList: [0.25] } })], []),
      Tensor.float32([0], []),
    ],
    {
      num_sparse: attr.int(1),
      sparse_keys: attr.strings(["a"]),
      dense_keys: attr.strings(["b"]),
      sparse_types: attr.types([DT_INT64]),
      Tdense: attr.types([DT_FLOAT]),
      dense_shapes: attr.shapes([[]]),
    },
  );
  assert.deepEqual(ints(idx), [0, 1]);
  assert.deepEqual(ints(val), [4, 5]);
  assert.deepEqual(ints(shape), [2]);
  assert.deepEqual(Array.from(d.data as Float32Array), [0.25]);
});

Deno.test("ParseExample: concatenated examples and duplicate keys keep the last value", () => {
  const a = ex({ x: { floatList: [1] } });
  const b = ex({ x: { floatList: [2] } });
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  const [x] = parseV1([joined], [["x", DT_FLOAT, [], noDefault(DT_FLOAT)]]);
  assert.deepEqual(Array.from(x.data as Float32Array), [2]);
});

Deno.test("ParseExampleV2: a hostile batch is refused before its padded outputs are allocated", () => {
  // One Example with 20,000 values and 20,000 empty Examples would pad to 4·10^8 floats.
  const empty = ex({});
  const long = ex({ v: { floatList: new Array(20_000).fill(1) } });
  const batch = Tensor.strings([long, ...new Array(20_000).fill(empty)]);
  throwsWith(
    () => parseV2(batch, [["v", DT_FLOAT, [-1], Tensor.float32([0], [])]]),
    Code.RESOURCE_EXHAUSTED,
    /ParseExample variable-length dense output/,
  );
  // A fixed-size dense feature: 300,000 empty Examples × 1,000 floats of defaults.
  const many = Tensor.strings(new Array(300_000).fill(empty));
  throwsWith(
    () => parseV2(many, [["d", DT_FLOAT, [1000], Tensor.float32(new Array(1000).fill(0), [1000])]]),
    Code.RESOURCE_EXHAUSTED,
    /ParseExample dense output/,
  );
});
