import assert from "node:assert/strict";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import {
  parseFloatText,
  parseInt32Text,
  parseInt64Text,
  stringKernels,
} from "../../src/kernels/strings.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, runOp } from "./harness.ts";

const dec = new TextDecoder();
const texts = (t: Tensor) => (t.data as Uint8Array[]).map((b) => dec.decode(b));

function throwsWith(fn: () => unknown, code: Code, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(e.code, code);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

const run = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = {}) =>
  runOp(stringKernels, op, inputs, attrs)[0];

Deno.test("StringJoin broadcasts scalars and checks shapes", () => {
  const out = run(
    "StringJoin",
    [
      Tensor.strings(["a", "b"], [2, 1]),
      Tensor.strings(["-"], []),
      Tensor.strings(["x", "y"], [2, 1]),
    ],
    { N: attr.int(3), separator: attr.string("/") },
  );
  assert.deepEqual(out.shape, [2, 1]);
  assert.deepEqual(texts(out), ["a/-/x", "b/-/y"]);
  const scalar = run("StringJoin", [Tensor.strings(["a"], []), Tensor.strings(["b"], [])]);
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual(texts(scalar), ["ab"]);
  throwsWith(
    () => run("StringJoin", [Tensor.strings(["a", "b"]), Tensor.strings(["a", "b", "c"])]),
    Code.INVALID_ARGUMENT,
    "Input shapes do not match: [2] vs. [3]",
  );
});

Deno.test("ShardedFilename and ShardedFilespec", () => {
  const name = run("ShardedFilename", [
    Tensor.strings(["/tmp/ckpt"], []),
    Tensor.int32([3], []),
    Tensor.int32([10], []),
  ]);
  assert.deepEqual(texts(name), ["/tmp/ckpt-00003-of-00010"]);
  const big = run("ShardedFilename", [
    Tensor.strings(["f"], []),
    Tensor.int32([123456], []),
    Tensor.int32([7], [1]),
  ]);
  assert.deepEqual(texts(big), ["f-123456-of-00007"]);
  const spec = run("ShardedFilespec", [Tensor.strings(["f"], []), Tensor.int32([2], [])]);
  assert.deepEqual(texts(spec), ["f-?????-of-00002"]);
  throwsWith(
    () =>
      run("ShardedFilename", [
        Tensor.strings(["a", "b"]),
        Tensor.int32([1], []),
        Tensor.int32([2], []),
      ]),
    Code.INVALID_ARGUMENT,
    "basename must be a scalar, got shape [2]",
  );
});

Deno.test("AsString formats like printf", () => {
  const fmt = (x: Tensor, attrs: Record<string, AttrValue> = {}) =>
    texts(run("AsString", [x], { T: attr.type(x.dtype), ...attrs }));
  assert.deepEqual(fmt(Tensor.int32([-42, 0, 42])), ["-42", "0", "42"]);
  assert.deepEqual(fmt(Tensor.int64([2n ** 62n, -5])), ["4611686018427387904", "-5"]);
  const w4 = (fill: string) => ({ width: attr.int(4), fill: attr.string(fill) });
  assert.deepEqual(fmt(Tensor.int64([-42, 0, 42]), w4("0")), ["-042", "0000", "0042"]);
  assert.deepEqual(fmt(Tensor.int64([-42, 0, 42]), w4(" ")), [" -42", "   0", "  42"]);
  assert.deepEqual(fmt(Tensor.int64([-42, 0, 42]), w4("-")), ["-42 ", "0   ", "42  "]);
  assert.deepEqual(fmt(Tensor.int64([-42, 0, 42]), w4("")), [" -42", "   0", "  42"]);
  assert.deepEqual(fmt(Tensor.int64([-42, 0, 42]), w4("+")), [" -42", "  +0", " +42"]);

  // %f: exact decimal value, ties to even (1/128 = 0.0078125).
  assert.deepEqual(
    fmt(Tensor.float32([3.5, -0, 1 / 128, 0.1, 1e10, NaN, Infinity, -Infinity])),
    [
      "3.500000",
      "-0.000000",
      "0.007812",
      "0.100000",
      "10000000000.000000",
      "nan",
      "inf",
      "-inf",
    ],
  );
  assert.deepEqual(
    fmt(Tensor.float32([0.5, 1.5, 2.5, 0.125]), { precision: attr.int(0) }),
    ["0", "2", "2", "0"],
  );
  assert.deepEqual(fmt(Tensor.float32([0.125, 0.375]), { precision: attr.int(2) }), [
    "0.12",
    "0.38",
  ]);
  // %g (shortest).
  assert.deepEqual(
    fmt(Tensor.float32([0.1, 123456789, 100000, 1e6, 0.0001, 0, 1.5e-5, 999999.5]), {
      shortest: attr.bool(true),
    }),
    ["0.1", "1.23457e+08", "100000", "1e+06", "0.0001", "0", "1.5e-05", "1e+06"],
  );
  assert.deepEqual(
    fmt(new Tensor(DataType.DT_DOUBLE, [2], Float64Array.from([0.1, 2 / 3])), {
      shortest: attr.bool(true),
      precision: attr.int(17),
    }),
    ["0.10000000000000001", "0.66666666666666663"],
  );
  // %e.
  assert.deepEqual(
    fmt(Tensor.float32([1234.5, 0, 9.9999999e-5]), { scientific: attr.bool(true) }),
    ["1.234500e+03", "0.000000e+00", "1.000000e-04"],
  );
  assert.deepEqual(
    fmt(Tensor.float32([1.5]), { scientific: attr.bool(true), precision: attr.int(0) }),
    ["2e+00"],
  );
  assert.deepEqual(
    fmt(Tensor.float32([3.25]), {
      width: attr.int(8),
      precision: attr.int(1),
      fill: attr.string("0"),
    }),
    ["000003.2"],
  );
  assert.deepEqual(fmt(new Tensor(DataType.DT_BOOL, [2], Uint8Array.from([1, 0]))), [
    "true",
    "false",
  ]);
  assert.deepEqual(fmt(Tensor.strings(["ab"]), { width: attr.int(4) }), ["  ab"]);
  assert.deepEqual(fmt(Tensor.strings(["ab"])), ["ab"]);
  throwsWith(
    () =>
      run("AsString", [Tensor.int32([1])], {
        T: attr.type(DataType.DT_INT32),
        precision: attr.int(2),
      }),
    Code.INVALID_ARGUMENT,
    "precision not supported for datatype int32",
  );
  throwsWith(
    () =>
      run("AsString", [Tensor.int32([1])], {
        T: attr.type(DataType.DT_INT32),
        fill: attr.string("ab"),
      }),
    Code.INVALID_ARGUMENT,
    "Fill string must be one or fewer characters",
  );
});

Deno.test("StringToNumber follows safe_strto* rules", () => {
  const conv = (values: string[], outType?: DataType) =>
    run(
      "StringToNumber",
      [Tensor.strings(values)],
      outType === undefined ? {} : { out_type: attr.type(outType) },
    );
  const f = conv(["0", "3", "-1", "1.12", "0xF", "   -10.5", "3.40283e+38", "NAN", "INF", "+.5 "]);
  assert.equal(f.dtype, DataType.DT_FLOAT);
  assert.deepEqual(Array.from(f.data as Float32Array), [
    0,
    3,
    -1,
    Math.fround(1.12),
    15,
    -10.5,
    Infinity,
    NaN,
    Infinity,
    0.5,
  ]);
  throwsWith(
    () => conv(["10foobar"]),
    Code.INVALID_ARGUMENT,
    "StringToNumberOp could not correctly convert string: 10foobar",
  );
  const d = conv(["3.40283e+38"], DataType.DT_DOUBLE);
  assert.deepEqual(Array.from(d.data as Float64Array), [3.40283e+38]);
  const i = conv(["0", "    -10", "-2147483648", "2147483647"], DataType.DT_INT32);
  assert.deepEqual(Array.from(i.data as Int32Array), [0, -10, -2147483648, 2147483647]);
  for (const bad of ["2147483648", "-2147483649", "2.9", "+1", ""]) {
    throwsWith(
      () => conv([bad], DataType.DT_INT32),
      Code.INVALID_ARGUMENT,
      `StringToNumberOp could not correctly convert string: ${bad}`,
    );
  }
  const l = conv(["-9223372036854775808", "2147483648 "], DataType.DT_INT64);
  assert.deepEqual(Array.from(l.data as BigInt64Array), [-(2n ** 63n), 2147483648n]);
  assert.equal(parseInt64Text("9223372036854775808"), undefined);
  assert.equal(parseInt32Text("-5", true), undefined);
  assert.equal(parseFloatText("1".repeat(32)), undefined);
  assert.equal(parseFloatText("1e"), undefined);
});

Deno.test("ReduceJoin joins along axes", () => {
  const x = Tensor.strings(["a", "b", "c", "d", "e", "f"], [2, 3]);
  const rj = (axes: number[], attrs: Record<string, AttrValue> = {}) =>
    run("ReduceJoin", [x, Tensor.int32(axes)], attrs);
  const rows = rj([1], { separator: attr.string(",") });
  assert.deepEqual(rows.shape, [2]);
  assert.deepEqual(texts(rows), ["a,b,c", "d,e,f"]);
  const cols = rj([-2], { keep_dims: attr.bool(true) });
  assert.deepEqual(cols.shape, [1, 3]);
  assert.deepEqual(texts(cols), ["ad", "be", "cf"]);
  const all = rj([0, 1]);
  assert.deepEqual(all.shape, []);
  assert.deepEqual(texts(all), ["abcdef"]);
  const none = rj([]);
  assert.deepEqual(none.shape, [2, 3]);
  assert.deepEqual(texts(none), ["a", "b", "c", "d", "e", "f"]);
  throwsWith(
    () => rj([2]),
    Code.OUT_OF_RANGE,
    "Invalid reduction dimension 2 for input with 2 dimension(s)",
  );
  throwsWith(() => rj([1, -1]), Code.INVALID_ARGUMENT, "Duplicate reduction dimension -1");
});
