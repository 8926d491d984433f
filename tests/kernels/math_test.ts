import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { argMaxKernels } from "../../src/kernels/arg_max.ts";
import { arithmeticKernels } from "../../src/kernels/arithmetic.ts";
import { castKernels } from "../../src/kernels/cast.ts";
import { einsumKernels } from "../../src/kernels/einsum.ts";
import { matMulKernels } from "../../src/kernels/matmul.ts";
import { reductionKernels } from "../../src/kernels/reduce.ts";
import { scanKernels } from "../../src/kernels/scan.ts";
import {
  bfloat16BitsToNumber,
  decodeFloat16,
  encodeFloat16,
  halfBitsToNumber,
  numberToBfloat16Bits,
  numberToHalfBits,
} from "../../src/kernels/elementwise.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, attr, runOp } from "./harness.ts";

const T = DataType;
/** The math-op families (one file each under src/kernels/). */
const mathKernels = [
  ...arithmeticKernels,
  ...castKernels,
  ...matMulKernels,
  ...reductionKernels,
  ...argMaxKernels,
  ...scanKernels,
  ...einsumKernels,
];
type Attrs = Parameters<typeof runOp>[3];

function run(op: string, inputs: Tensor[], attrs: Attrs = {}): Tensor {
  return runOp(mathKernels, op, inputs, attrs)[0];
}

/** Runs a binary op with attr T set from the first input. */
function bin(op: string, a: Tensor, b: Tensor, attrs: Attrs = {}): Tensor {
  return run(op, [a, b], { T: attr.type(a.dtype), ...attrs });
}

function un(op: string, a: Tensor, attrs: Attrs = {}): Tensor {
  return run(op, [a], { T: attr.type(a.dtype), ...attrs });
}

const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);
const i64 = (v: (number | bigint)[], shape?: number[]) => Tensor.int64(v, shape);
const f64 = (v: number[], shape: number[] = [v.length]) =>
  new Tensor(T.DT_DOUBLE, shape, Float64Array.from(v));
const bool = (v: boolean[], shape: number[] = [v.length]) =>
  new Tensor(T.DT_BOOL, shape, Uint8Array.from(v, Number));
const typed = (dtype: DataType, v: number[], shape: number[] = [v.length]) => {
  const t = Tensor.zeros(dtype, shape);
  (t.data as Int32Array).set(v);
  return t;
};

function values(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

function assertServingError(fn: () => unknown, code: Code, message: string | RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof ServingError, `expected ServingError, got ${e}`);
    assert.equal(e.code, code, `code ${Code[e.code]}: ${e.message}`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Binary arithmetic and broadcasting
// ---------------------------------------------------------------------------------------------

Deno.test("Add: same shape, row broadcast, outer broadcast, scalars", () => {
  const same = bin("Add", f32([1, 2, 3, 4], [2, 2]), f32([10, 20, 30, 40], [2, 2]));
  assert.equal(same.dtype, T.DT_FLOAT);
  assert.deepEqual(same.shape, [2, 2]);
  assert.deepEqual(values(same), [11, 22, 33, 44]);

  const row = bin("AddV2", f32([1, 2, 3, 4, 5, 6], [2, 3]), f32([10, 20, 30]));
  assert.deepEqual(row.shape, [2, 3]);
  assert.deepEqual(values(row), [11, 22, 33, 14, 25, 36]);

  const outer = bin("Add", f32([1, 2], [2, 1]), f32([10, 20, 30], [1, 3]));
  assert.deepEqual(outer.shape, [2, 3]);
  assert.deepEqual(values(outer), [11, 21, 31, 12, 22, 32]);

  const col = bin("Add", f32([1, 2, 3, 4, 5, 6], [2, 3]), f32([100, 200], [2, 1]));
  assert.deepEqual(values(col), [101, 102, 103, 204, 205, 206]);

  const right = bin("Add", f32([1, 2, 3]), f32([0.5], []));
  assert.deepEqual(right.shape, [3]);
  assert.deepEqual(values(right), [1.5, 2.5, 3.5]);

  const left = bin("Sub", f32([10], []), f32([1, 2, 3]));
  assert.deepEqual(values(left), [9, 8, 7]);

  // A single element with more dims than the other side widens the shape.
  const wide = bin("Add", f32([1], [1, 1]), f32([1, 2, 3]));
  assert.deepEqual(wide.shape, [1, 3]);
  assert.deepEqual(values(wide), [2, 3, 4]);

  const scalars = bin("Mul", f32([3], []), f32([4], []));
  assert.deepEqual(scalars.shape, []);
  assert.deepEqual(values(scalars), [12]);
});

Deno.test("Add: rank-4 general broadcast matches a reference", () => {
  const aShape = [2, 1, 3, 1];
  const bShape = [4, 1, 5];
  const a = f32(Array.from({ length: 6 }, (_, i) => i + 1), aShape);
  const b = f32(Array.from({ length: 20 }, (_, i) => (i + 1) * 100), bShape);
  const out = bin("Add", a, b);
  assert.deepEqual(out.shape, [2, 4, 3, 5]);
  const expected: number[] = [];
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 4; j++) {
      for (let k = 0; k < 3; k++) {
        for (let l = 0; l < 5; l++) expected.push((i * 3 + k + 1) + (j * 5 + l + 1) * 100);
      }
    }
  }
  assert.deepEqual(values(out), expected);
});

Deno.test("Sub: a vector along the last axis on either side matches a reference", () => {
  let seed = 3;
  const rand = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % k;
  };
  for (let t = 0; t < 30; t++) {
    const rank = 1 + rand(4);
    const shape = Array.from({ length: rank }, () => 1 + rand(5));
    const m = shape[rank - 1];
    const vRank = 1 + rand(rank);
    const vShape = [...Array(vRank - 1).fill(1), m];
    const n = shape.reduce((a, b) => a * b, 1);
    const big = f32(Array.from({ length: n }, () => rand(1000) / 7), shape);
    const vec = f32(Array.from({ length: m }, () => rand(1000) / 3), vShape);
    const want = (bigFirst: boolean) =>
      Array.from({ length: n }, (_, i) => {
        const u = (big.data as Float32Array)[i], v = (vec.data as Float32Array)[i % m];
        return Math.fround(bigFirst ? u - v : v - u);
      });
    const a = bin("Sub", big, vec), b = bin("Sub", vec, big);
    const what = `${JSON.stringify(shape)} vs ${JSON.stringify(vShape)}`;
    assert.deepEqual(a.shape, shape, what);
    assert.deepEqual(b.shape, shape, what);
    assert.deepEqual(values(a), want(true), what);
    assert.deepEqual(values(b), want(false), what);
  }
});

Deno.test("Binary ops: shape errors and empty tensors", () => {
  assertServingError(
    () => bin("Add", f32([1, 2, 3, 4, 5, 6], [2, 3]), f32([1, 2, 3, 4])),
    Code.INVALID_ARGUMENT,
    "Incompatible shapes: [2,3] vs. [4]",
  );
  const empty = bin("Mul", f32([], [0, 3]), f32([1, 2, 3]));
  assert.deepEqual(empty.shape, [0, 3]);
  assert.equal(empty.size, 0);
  assertServingError(
    () => run("Add", [f32([1]), i32([1])]),
    Code.INVALID_ARGUMENT,
    /DT_FLOAT and DT_INT32/,
  );
});

Deno.test("Integer arithmetic wraps like C++", () => {
  assert.deepEqual(values(bin("Add", i32([2147483647]), i32([1]))), [-2147483648]);
  assert.deepEqual(values(bin("Sub", i32([-2147483648]), i32([1]))), [2147483647]);
  assert.deepEqual(values(bin("Mul", i32([65536, 46341]), i32([65536, 46341]))), [
    0,
    -2147479015,
  ]);
  assert.deepEqual(values(bin("Add", typed(T.DT_INT8, [127]), typed(T.DT_INT8, [1]))), [-128]);
  assert.deepEqual(values(bin("Sub", typed(T.DT_UINT8, [0]), typed(T.DT_UINT8, [1]))), [255]);
  assert.deepEqual(
    values(bin("Mul", typed(T.DT_UINT32, [4000000000]), typed(T.DT_UINT32, [3]))),
    [(4000000000 * 3) % 2 ** 32],
  );
  const big = bin("Add", i64([9223372036854775807n]), i64([1n]));
  assert.deepEqual(Array.from(big.data as BigInt64Array), [-9223372036854775808n]);
  const prod = bin("Mul", i64([4294967296n]), i64([4294967296n]));
  assert.deepEqual(Array.from(prod.data as BigInt64Array), [0n]);
  assert.deepEqual(values(bin("Maximum", i32([1, 5, -3]), i32([2, 4, -3]))), [2, 5, -3]);
  assert.deepEqual(values(bin("Minimum", i64([1, 5]), i64([2, 4]))), [1, 4]);
});

Deno.test("Division: Div truncates, FloorDiv floors, FloorMod takes the divisor's sign", () => {
  const a = i32([7, -7, 7, -7, 6]);
  const b = i32([2, 2, -2, -2, 3]);
  assert.deepEqual(values(bin("Div", a, b)), [3, -3, -3, 3, 2]);
  assert.deepEqual(values(bin("TruncateDiv", a, b)), [3, -3, -3, 3, 2]);
  assert.deepEqual(values(bin("FloorDiv", a, b)), [3, -4, -4, 3, 2]);
  assert.deepEqual(values(bin("FloorMod", a, b)), [1, 1, -1, -1, 0]);
  assert.deepEqual(values(bin("TruncateMod", a, b)), [1, -1, 1, -1, 0]);
  assert.deepEqual(values(bin("Mod", a, b)), [1, -1, 1, -1, 0]);

  const a64 = i64([7, -7, 7, -7]);
  const b64 = i64([2, 2, -2, -2]);
  assert.deepEqual(values(bin("Div", a64, b64)), [3, -3, -3, 3]);
  assert.deepEqual(values(bin("FloorDiv", a64, b64)), [3, -4, -4, 3]);
  assert.deepEqual(values(bin("FloorMod", a64, b64)), [1, 1, -1, -1]);

  // INT_MIN / -1 overflows back to INT_MIN instead of trapping.
  assert.deepEqual(values(bin("Div", i32([-2147483648]), i32([-1]))), [-2147483648]);

  for (const op of ["Div", "FloorDiv", "FloorMod", "TruncateDiv", "TruncateMod"]) {
    assertServingError(
      () => bin(op, i32([1, 2]), i32([1, 0])),
      Code.INVALID_ARGUMENT,
      "Integer division by zero",
    );
  }
  assertServingError(
    () => bin("FloorDiv", i64([1]), i64([0])),
    Code.INVALID_ARGUMENT,
    "Integer division by zero",
  );

  // Floats.
  assert.deepEqual(values(bin("RealDiv", f32([1, -1, 0, 6]), f32([0, 0, 0, 4]))), [
    Infinity,
    -Infinity,
    NaN,
    1.5,
  ]);
  assert.deepEqual(values(bin("Div", f32([1, 6]), f32([4, -4]))), [0.25, -1.5]);
  assert.deepEqual(values(bin("FloorDiv", f32([7, -7]), f32([2, 2]))), [3, -4]);
  assert.deepEqual(values(bin("FloorMod", f32([-7.5, 7.5, 7.5]), f32([2, -2, 2]))), [
    0.5,
    -0.5,
    1.5,
  ]);
  assert.deepEqual(values(bin("DivNoNan", f32([1, 0, 6]), f32([0, 0, 3]))), [0, 0, 2]);
  assert.deepEqual(values(bin("MulNoNan", f32([Infinity, 2]), f32([0, 3]))), [0, 6]);
  assertServingError(
    () => bin("RealDiv", i32([1]), i32([1])),
    Code.UNIMPLEMENTED,
    'RealDiv is not implemented for DT_INT32 (node "test_RealDiv")',
  );
});

Deno.test("Maximum and Minimum propagate NaN", () => {
  const a = f32([1, NaN, 3, -0]);
  const b = f32([2, 1, NaN, 5]);
  assert.deepEqual(values(bin("Maximum", a, b)), [2, NaN, NaN, 5]);
  assert.deepEqual(values(bin("Minimum", a, b)), [1, NaN, NaN, -0]);
});

Deno.test("Pow", () => {
  assertClose(values(bin("Pow", f32([2, 9, 2, 1, -1]), f32([10, 0.5, -1, NaN, Infinity]))), [
    1024,
    3,
    0.5,
    1,
    1,
  ]);
  assert.ok(Number.isNaN(values(bin("Pow", f32([-8]), f32([1 / 3])))[0]));
  assert.deepEqual(values(bin("Pow", i32([3, -2, 2, 5]), i32([4, 3, 31, 0]))), [
    81,
    -8,
    -2147483648,
    1,
  ]);
  assert.deepEqual(values(bin("Pow", i64([3, 2]), i64([4, 62]))), [81, 2 ** 62]);
  assertServingError(
    () => bin("Pow", i32([2]), i32([-1])),
    Code.INVALID_ARGUMENT,
    "Integers to negative integer powers are not allowed",
  );
});

Deno.test("SquaredDifference", () => {
  assert.deepEqual(values(bin("SquaredDifference", f32([1, 5]), f32([4, 2]))), [9, 9]);
  assert.deepEqual(values(bin("SquaredDifference", i32([1, 5]), i32([4, 2]))), [9, 9]);
  assert.deepEqual(values(bin("SquaredDifference", i64([10]), i64([-10]))), [400]);
  assert.deepEqual(values(bin("Atan2", f32([1]), f32([1]))), [Math.fround(Math.PI / 4)]);
});

Deno.test("Comparisons give bool", () => {
  const a = f32([1, 2, 3]);
  const b = f32([2], []);
  const less = bin("Less", a, b);
  assert.equal(less.dtype, T.DT_BOOL);
  assert.ok(less.data instanceof Uint8Array);
  assert.deepEqual(values(less), [1, 0, 0]);
  assert.deepEqual(values(bin("LessEqual", a, b)), [1, 1, 0]);
  assert.deepEqual(values(bin("Greater", a, b)), [0, 0, 1]);
  assert.deepEqual(values(bin("GreaterEqual", a, b)), [0, 1, 1]);
  assert.deepEqual(values(bin("Equal", a, b)), [0, 1, 0]);
  assert.deepEqual(values(bin("NotEqual", a, b)), [1, 0, 1]);
  assert.deepEqual(values(bin("Equal", f32([NaN]), f32([NaN]))), [0]);
  assert.deepEqual(values(bin("NotEqual", f32([NaN]), f32([NaN]))), [1]);
  assert.deepEqual(values(bin("Less", i64([-5n, 2n ** 62n]), i64([3n, 2n ** 62n]))), [1, 0]);
  assert.deepEqual(values(bin("Greater", typed(T.DT_UINT8, [200]), typed(T.DT_UINT8, [100]))), [
    1,
  ]);
  assert.deepEqual(values(bin("Equal", bool([true, false]), bool([true, true]))), [1, 0]);
  const s = bin("Equal", Tensor.strings(["a", "bc", ""]), Tensor.strings(["a", "b", ""]));
  assert.deepEqual(values(s), [1, 0, 1]);
  const outer = bin("Less", f32([1, 2], [2, 1]), f32([1, 2, 3], [1, 3]));
  assert.deepEqual(outer.shape, [2, 3]);
  assert.deepEqual(values(outer), [0, 1, 1, 0, 0, 1]);
});

Deno.test("Equal/NotEqual with incompatible_shape_error = false", () => {
  const lenient = { incompatible_shape_error: attr.bool(false) };
  const eq = bin("Equal", f32([1, 2]), f32([1, 2, 3]), lenient);
  assert.deepEqual(eq.shape, []);
  assert.deepEqual(values(eq), [0]);
  const ne = bin("NotEqual", f32([1, 2]), f32([1, 2, 3]), lenient);
  assert.deepEqual(values(ne), [1]);
  assert.deepEqual(values(bin("Equal", f32([1, 2]), f32([1, 3]), lenient)), [1, 0]);
  assertServingError(
    () => bin("Equal", f32([1, 2]), f32([1, 2, 3])),
    Code.INVALID_ARGUMENT,
    "Incompatible shapes: [2] vs. [3]",
  );
});

Deno.test("Logical ops and string Add", () => {
  const a = bool([true, true, false, false]);
  const b = bool([true, false, true, false]);
  assert.deepEqual(values(bin("LogicalAnd", a, b)), [1, 0, 0, 0]);
  assert.deepEqual(values(bin("LogicalOr", a, b)), [1, 1, 1, 0]);
  assert.deepEqual(values(un("LogicalNot", a)), [0, 0, 1, 1]);
  const s = bin("Add", Tensor.strings(["ab", "c"]), Tensor.strings(["!"], []));
  assert.deepEqual(s.strings.map((x) => new TextDecoder().decode(x)), ["ab!", "c!"]);
});

Deno.test("Half and bfloat16 binary ops compute through float32", () => {
  const h = (v: number[]) => new Tensor(T.DT_HALF, [v.length], encodeFloat16(v, T.DT_HALF));
  const out = bin("Add", h([1, 2.5, 65504]), h([0.5, 0.25, 65504]));
  assert.equal(out.dtype, T.DT_HALF);
  assert.deepEqual(Array.from(decodeFloat16(out.data as Uint16Array, T.DT_HALF)), [
    1.5,
    2.75,
    Infinity,
  ]);
  const bf = (v: number[]) =>
    new Tensor(T.DT_BFLOAT16, [v.length], encodeFloat16(v, T.DT_BFLOAT16));
  const less = bin("Less", bf([1, 3]), bf([2, 2]));
  assert.equal(less.dtype, T.DT_BOOL);
  assert.deepEqual(values(less), [1, 0]);
});

// ---------------------------------------------------------------------------------------------
// Unary
// ---------------------------------------------------------------------------------------------

Deno.test("Unary float ops", () => {
  const x = f32([0.25, 1, 4]);
  assertClose(values(un("Exp", x)), [Math.exp(0.25), Math.E, Math.exp(4)]);
  assertClose(values(un("Log", x)), [Math.log(0.25), 0, Math.log(4)]);
  assertClose(values(un("Log1p", f32([0, 1e-10]))), [0, 1e-10], 1e-12);
  assertClose(values(un("Sqrt", x)), [0.5, 1, 2]);
  assertClose(values(un("Rsqrt", x)), [2, 1, 0.5]);
  assertClose(values(un("Reciprocal", x)), [4, 1, 0.25]);
  assertClose(values(un("Square", f32([-3, 0.5]))), [9, 0.25]);
  assertClose(values(un("Sin", f32([0, Math.PI / 2]))), [0, 1]);
  assertClose(values(un("Cos", f32([0, Math.PI]))), [1, -1]);
  assert.deepEqual(values(un("Neg", f32([1, -2, 0]))), [-1, 2, -0]);
  assert.deepEqual(values(un("Abs", f32([-1.5, 2]))), [1.5, 2]);
  assert.deepEqual(values(un("Floor", f32([-1.5, 1.5]))), [-2, 1]);
  assert.deepEqual(values(un("Ceil", f32([-1.5, 1.5]))), [-1, 2]);
  assert.deepEqual(values(un("Sign", f32([-3, 0, 2, NaN]))), [-1, 0, 1, NaN]);
  assert.deepEqual(values(un("Log", f32([0, -1]))), [-Infinity, NaN]);
  assert.deepEqual(values(un("IsNan", f32([NaN, 1, Infinity]))), [1, 0, 0]);
  assert.deepEqual(values(un("IsInf", f32([NaN, 1, -Infinity]))), [0, 0, 1]);
  assert.deepEqual(values(un("IsFinite", f32([NaN, 1, -Infinity]))), [0, 1, 0]);
  assert.deepEqual(un("Exp", f32([1, 2, 3, 4], [2, 2])).shape, [2, 2]);
  const d = un("Sqrt", f64([2]));
  assert.equal(d.dtype, T.DT_DOUBLE);
  assert.deepEqual(values(d), [Math.SQRT2]);
});

Deno.test("Round rounds half to even", () => {
  const x = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 2.4, -2.6, 0.49999997];
  assert.deepEqual(values(un("Round", f32(x))), [-2, -2, -0, 0, 2, 2, 4, 2, -3, 0]);
  assert.deepEqual(values(un("Round", i32([3, -4]))), [3, -4]);
});

Deno.test("Unary integer ops wrap", () => {
  assert.deepEqual(values(un("Neg", i32([-2147483648, 5]))), [-2147483648, -5]);
  assert.deepEqual(values(un("Abs", i32([-2147483648, -5]))), [-2147483648, 5]);
  assert.deepEqual(values(un("Square", i32([65536, -3]))), [0, 9]);
  assert.deepEqual(values(un("Sign", i32([-7, 0, 9]))), [-1, 0, 1]);
  assert.deepEqual(values(un("Abs", i64([-5n]))), [5]);
  assert.deepEqual(values(un("Neg", i64([-9223372036854775808n]))), [-9223372036854775808]);
  assert.deepEqual(values(un("Sign", i64([-5n, 0n, 5n]))), [-1, 0, 1]);
});

Deno.test("Erf", () => {
  const x = [-3, -1, -0.5, 0, 0.5, 1, 2, 3, 5];
  const want = [
    -0.9999779095030014,
    -0.8427007929497149,
    -0.5204998778130465,
    0,
    0.5204998778130465,
    0.8427007929497149,
    0.9953222650189527,
    0.9999779095030014,
    0.9999999999984626,
  ];
  assertClose(values(un("Erf", f32(x))), want, 2e-7);
  assertClose(values(un("Erf", f64(x))), want, 1e-14);
  assertClose(values(un("Erf", f64([2.5, 4, 7]))), [
    0.999593047982555,
    0.9999999845827421,
    1,
  ], 1e-14);
  assert.ok(Number.isNaN(values(un("Erf", f64([NaN])))[0]));
});

Deno.test("Unsupported dtypes fail UNIMPLEMENTED naming op, node and dtype", () => {
  assertServingError(
    () => un("Sqrt", i32([4])),
    Code.UNIMPLEMENTED,
    'Sqrt is not implemented for DT_INT32 (node "test_Sqrt")',
  );
  // Without a T attr the check happens on the input.
  assertServingError(
    () => run("Exp", [i32([1])]),
    Code.UNIMPLEMENTED,
    /Exp is not implemented for DT_INT32/,
  );
  assertServingError(
    () => bin("LogicalAnd", f32([1]), f32([1])),
    Code.UNIMPLEMENTED,
    /LogicalAnd is not implemented for DT_FLOAT/,
  );
  assertServingError(
    () => bin("Less", bool([true]), bool([false])),
    Code.UNIMPLEMENTED,
    /Less is not implemented for DT_BOOL/,
  );
});

// ---------------------------------------------------------------------------------------------
// 16-bit float conversions
// ---------------------------------------------------------------------------------------------

Deno.test("Half and bfloat16 bit conversions round to nearest even", () => {
  assert.equal(numberToHalfBits(1), 0x3c00);
  assert.equal(numberToHalfBits(-2), 0xc000);
  assert.equal(numberToHalfBits(65504), 0x7bff);
  assert.equal(numberToHalfBits(65520), 0x7c00); // rounds up to infinity
  assert.equal(numberToHalfBits(2 ** -24), 0x0001);
  assert.equal(numberToHalfBits(2 ** -25), 0x0000); // tie to even
  assert.equal(numberToHalfBits(3 * 2 ** -25), 0x0002); // tie to even (1.5 → 2)
  assert.equal(numberToHalfBits(1 + 2 ** -11), 0x3c00); // tie to even
  assert.equal(numberToHalfBits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(numberToHalfBits(NaN) & 0x7e00, 0x7e00);
  assert.equal(halfBitsToNumber(0x3555), 0.333251953125);
  assert.equal(halfBitsToNumber(0x0001), 2 ** -24);
  assert.equal(halfBitsToNumber(0xfc00), -Infinity);
  assert.equal(numberToBfloat16Bits(1), 0x3f80);
  assert.equal(numberToBfloat16Bits(1 + 2 ** -8), 0x3f80); // tie to even
  assert.equal(numberToBfloat16Bits(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(numberToBfloat16Bits(1 + 3 * 2 ** -8, true), 0x3f81);
  assert.equal(numberToBfloat16Bits(NaN), 0x7fc0);
  assert.equal(bfloat16BitsToNumber(0x4049), 3.140625);
  for (let h = 0; h < 0x7c00; h += 37) {
    assert.equal(numberToHalfBits(halfBitsToNumber(h)), h);
  }
});

// ---------------------------------------------------------------------------------------------
// AddN
// ---------------------------------------------------------------------------------------------

Deno.test("AddN", () => {
  const out = run("AddN", [f32([1, 2], [2]), f32([10, 20]), f32([100, 200])], {
    N: attr.int(3),
    T: attr.type(T.DT_FLOAT),
  });
  assert.deepEqual(values(out), [111, 222]);
  assert.deepEqual(values(run("AddN", [i32([2147483647]), i32([1])])), [-2147483648]);
  assert.deepEqual(values(run("AddN", [i64([1n]), i64([2n])])), [3]);
  const one = f32([5]);
  assert.equal(run("AddN", [one]), one);
  assertServingError(
    () => run("AddN", [f32([1, 2, 3, 4, 5, 6], [2, 3]), f32([1, 2, 3])]),
    Code.INVALID_ARGUMENT,
    "Inputs to operation test_AddN of type AddN must have the same size and shape.  " +
      "Input 0: [2,3] != input 1: [3]",
  );
  const inputs = [f32([1, 2, 3, 4], [2, 2]), f32([1, 1, 1, 1], [2, 2])];
  assert.deepEqual(run("AddN", inputs).shape, [2, 2]);
});

Deno.test("AddN of large float32 tensors: left to right, each sum rounded to float32", () => {
  // Large enough for the WebAssembly add (the small ones above take the loop): values whose
  // sums round, NaN and infinities included.
  for (const count of [2, 3, 5]) {
    const n = 5000 + count;
    const ins = Array.from({ length: count }, (_, k) => {
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = Math.fround(Math.sin(i * 7 + k) * 10 ** (i % 9 - 4));
      v[k] = [NaN, Infinity, -Infinity][k % 3];
      return new Tensor(T.DT_FLOAT, [n], v);
    });
    const got = values(run("AddN", ins, { N: attr.int(count), T: attr.type(T.DT_FLOAT) }));
    for (let i = 0; i < n; i++) {
      let want = (ins[0].data as Float32Array)[i];
      for (let k = 1; k < count; k++) want = Math.fround(want + (ins[k].data as Float32Array)[i]);
      assert.ok(Object.is(got[i], want), `${count} inputs, element ${i}: ${got[i]} != ${want}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Cast
// ---------------------------------------------------------------------------------------------

function cast(x: Tensor, dst: DataType, truncate = false): Tensor {
  return run("Cast", [x], {
    SrcT: attr.type(x.dtype),
    DstT: attr.type(dst),
    Truncate: attr.bool(truncate),
  });
}

Deno.test("Cast float to integers truncates toward zero; out-of-range as x86", () => {
  const x = f32([-1.7, 1.7, -0.5, 2.5, NaN, 3e9, -3e9, Infinity]);
  const i = cast(x, T.DT_INT32);
  assert.equal(i.dtype, T.DT_INT32);
  assert.ok(i.data instanceof Int32Array);
  const m = -2147483648;
  assert.deepEqual(values(i), [-1, 1, 0, 2, m, m, m, m]);
  assert.deepEqual(values(cast(f32([300, -1, 255.9, NaN]), T.DT_UINT8)), [44, 255, 255, 0]);
  assert.deepEqual(values(cast(f32([200, -129, NaN]), T.DT_INT8)), [-56, 127, 0]);
  assert.deepEqual(values(cast(f32([-1, 4294967296, NaN]), T.DT_UINT32)), [4294967295, 0, 0]);
  const l = cast(f64([-1.5, 2 ** 40 + 0.5, NaN, 1e19]), T.DT_INT64);
  assert.deepEqual(Array.from(l.data as BigInt64Array), [
    -1n,
    2n ** 40n,
    -(2n ** 63n),
    -(2n ** 63n),
  ]);
  const u = cast(f64([-1, 1e19]), T.DT_UINT64);
  assert.deepEqual(Array.from(u.data as BigUint64Array), [2n ** 64n - 1n, 10n ** 19n]);
});

Deno.test("Cast between integers wraps; to and from bool", () => {
  assert.deepEqual(values(cast(i64([2n ** 32n + 5n, -1n]), T.DT_INT32)), [5, -1]);
  assert.deepEqual(values(cast(i32([-1, 256, 257]), T.DT_UINT8)), [255, 0, 1]);
  const wide = cast(i32([-1, 7]), T.DT_INT64);
  assert.deepEqual(Array.from(wide.data as BigInt64Array), [-1n, 7n]);
  const u64 = cast(i64([-1n]), T.DT_UINT64);
  assert.deepEqual(Array.from(u64.data as BigUint64Array), [2n ** 64n - 1n]);
  assert.deepEqual(values(cast(f32([0, -0, 0.1, NaN, -2]), T.DT_BOOL)), [0, 0, 1, 1, 1]);
  assert.deepEqual(values(cast(i64([0n, 5n]), T.DT_BOOL)), [0, 1]);
  const fb = cast(bool([true, false]), T.DT_FLOAT);
  assert.equal(fb.dtype, T.DT_FLOAT);
  assert.deepEqual(values(fb), [1, 0]);
  assert.deepEqual(values(cast(typed(T.DT_UINT8, [255, 0]), T.DT_FLOAT)), [255, 0]);
});

Deno.test("Cast between floats, 16-bit floats and complex", () => {
  const x = f64([1 / 3, 16777217, 1e300]);
  assert.deepEqual(values(cast(x, T.DT_FLOAT)), [Math.fround(1 / 3), 16777216, Infinity]);
  // Truncate drops bits instead of rounding: 1 + 2^-23 + 2^-24 + tiny would round up.
  const t = cast(f64([1 + 2 ** -23 + 2 ** -24 + 2 ** -40]), T.DT_FLOAT, true);
  assert.deepEqual(values(t), [1 + 2 ** -23]);
  const h = cast(f32([1 / 3, 70000]), T.DT_HALF);
  assert.equal(h.dtype, T.DT_HALF);
  assert.deepEqual(Array.from(h.data as Uint16Array), [0x3555, 0x7c00]);
  assert.deepEqual(values(cast(h, T.DT_FLOAT)), [0.333251953125, Infinity]);
  const b = cast(f32([Math.PI]), T.DT_BFLOAT16);
  assert.deepEqual(Array.from(b.data as Uint16Array), [0x4049]);
  assert.deepEqual(values(cast(b, T.DT_DOUBLE)), [3.140625]);
  const bt = cast(f32([1 + 3 * 2 ** -8]), T.DT_BFLOAT16, true);
  assert.deepEqual(Array.from(bt.data as Uint16Array), [0x3f81]);
  assert.deepEqual(values(cast(i32([3]), T.DT_HALF)).map(halfBitsToNumber), [3]);
  const c = cast(f32([1.5, -2]), T.DT_COMPLEX64);
  assert.deepEqual(Array.from(c.data as Float32Array), [1.5, 0, -2, 0]);
  assert.deepEqual(values(cast(c, T.DT_INT32)), [1, -2]);
  assert.deepEqual(values(cast(i64([2n ** 53n + 1n]), T.DT_DOUBLE)), [2 ** 53]);
});

Deno.test("Cast to the same type returns the input; strings are unsupported", () => {
  const x = f32([1, 2]);
  assert.equal(cast(x, T.DT_FLOAT), x);
  assertServingError(
    () => cast(Tensor.strings(["1"]), T.DT_FLOAT),
    Code.UNIMPLEMENTED,
    'Cast string to float is not supported (node "test_Cast")',
  );
  assertServingError(
    () => cast(f32([1]), T.DT_STRING),
    Code.UNIMPLEMENTED,
    /Cast float to string is not supported/,
  );
});

// ---------------------------------------------------------------------------------------------
// MatMul
// ---------------------------------------------------------------------------------------------

/** Reference product of row-major matrices. */
function naiveMatMul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  M: number,
  K: number,
  N: number,
  ta = false,
  tb = false,
): number[] {
  const out: number[] = [];
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        s += (ta ? a[k * M + i] : a[i * K + k]) * (tb ? b[j * K + k] : b[k * N + j]);
      }
      out.push(s);
    }
  }
  return out;
}

function matmul(a: Tensor, b: Tensor, ta = false, tb = false): Tensor {
  return run("MatMul", [a, b], {
    T: attr.type(a.dtype),
    transpose_a: attr.bool(ta),
    transpose_b: attr.bool(tb),
  });
}

Deno.test("MatMul with transposes", () => {
  const a = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = f32([7, 8, 9, 10, 11, 12], [3, 2]);
  const ab = matmul(a, b);
  assert.deepEqual(ab.shape, [2, 2]);
  assert.deepEqual(values(ab), [58, 64, 139, 154]);
  // a^T is [3,2]; a^T · a^T... use shapes that fit each transpose.
  const at = f32([1, 4, 2, 5, 3, 6], [3, 2]); // a stored transposed
  assert.deepEqual(values(matmul(at, b, true, false)), [58, 64, 139, 154]);
  const bt = f32([7, 9, 11, 8, 10, 12], [2, 3]); // b stored transposed
  assert.deepEqual(values(matmul(a, bt, false, true)), [58, 64, 139, 154]);
  assert.deepEqual(values(matmul(at, bt, true, true)), [58, 64, 139, 154]);
});

Deno.test("MatMul shape errors", () => {
  assertServingError(
    () => matmul(f32([1, 2, 3], [1, 3]), f32([1, 2, 3, 4, 5, 6, 7, 8], [2, 4])),
    Code.INVALID_ARGUMENT,
    "Matrix size-incompatible: In[0]: [1,3], In[1]: [2,4]",
  );
  assertServingError(
    () => matmul(f32([1, 2, 3]), f32([1, 2, 3], [3, 1])),
    Code.INVALID_ARGUMENT,
    "In[0] is not a matrix. Instead it has shape [3]",
  );
  assertServingError(
    () => matmul(f32([1, 2, 3], [1, 3]), f32([1])),
    Code.INVALID_ARGUMENT,
    "In[1] is not a matrix. Instead it has shape [1]",
  );
  assertServingError(
    () => matmul(typed(T.DT_UINT8, [1], [1, 1]), typed(T.DT_UINT8, [1], [1, 1])),
    Code.UNIMPLEMENTED,
    /MatMul is not implemented for DT_UINT8/,
  );
});

Deno.test("MatMul matches a reference across loop orders and dtypes", () => {
  const rand = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 4);
  const cases: [number, number, number][] = [[1, 784, 10], [7, 33, 40], [9, 5, 17], [4, 3, 64], [
    0,
    3,
    2,
  ], [2, 0, 3]];
  for (const [M, K, N] of cases) {
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const av = rand(M * K, 1);
        const bv = rand(K * N, 2);
        const a = f32(av, ta ? [K, M] : [M, K]);
        const b = f32(bv, tb ? [N, K] : [K, N]);
        const want = naiveMatMul(Float32Array.from(av), Float32Array.from(bv), M, K, N, ta, tb);
        const got = matmul(a, b, ta, tb);
        assert.deepEqual(got.shape, [M, N]);
        assertClose(values(got), want, 1e-4);
        const g64 = matmul(f64(av, a.shape as number[]), f64(bv, b.shape as number[]), ta, tb);
        assert.equal(g64.dtype, T.DT_DOUBLE);
        assertClose(values(g64), naiveMatMul(av, bv, M, K, N, ta, tb), 1e-12);
      }
    }
  }
  // int32 wraps; int64 exact.
  const ai = i32([65536, 1], [1, 2]);
  const bi = i32([65536, 7], [2, 1]);
  assert.deepEqual(values(matmul(ai, bi)), [7]);
  const al = i64([2n ** 32n, 1n], [1, 2]);
  const bl = i64([2n ** 20n, 7n], [2, 1]);
  assert.deepEqual(Array.from(matmul(al, bl).data as BigInt64Array), [2n ** 52n + 7n]);
  const ints = i32([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [4, 3]);
  const intsB = i32(Array.from({ length: 3 * 20 }, (_, i) => i - 30), [3, 20]);
  assert.deepEqual(
    values(matmul(ints, intsB)),
    naiveMatMul(values(ints), values(intsB), 4, 3, 20),
  );
});

Deno.test("BatchMatMulV2 broadcasts batch dims; adj_x/adj_y transpose", () => {
  const a = f32(Array.from({ length: 12 }, (_, i) => i + 1), [2, 2, 3]);
  const b = f32(Array.from({ length: 6 }, (_, i) => i - 2), [3, 2]);
  const out = run("BatchMatMulV2", [a, b], { T: attr.type(T.DT_FLOAT) });
  assert.deepEqual(out.shape, [2, 2, 2]);
  const av = values(a);
  const bv = values(b);
  assert.deepEqual(values(out), [
    ...naiveMatMul(av.slice(0, 6), bv, 2, 3, 2),
    ...naiveMatMul(av.slice(6), bv, 2, 3, 2),
  ]);

  // [2,1,2,3] x [3,3,2] with adjoints: x^T is [3,2], so use adj_x on a [.,3,2] layout.
  const x = f32(Array.from({ length: 2 * 3 * 2 }, (_, i) => i * 0.5), [2, 1, 3, 2]);
  const y = f32(Array.from({ length: 3 * 4 * 3 }, (_, i) => 10 - i), [3, 4, 3]);
  const r = run("BatchMatMulV2", [x, y], { adj_x: attr.bool(true), adj_y: attr.bool(true) });
  assert.deepEqual(r.shape, [2, 3, 2, 4]);
  const xv = values(x);
  const yv = values(y);
  const want: number[] = [];
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 3; j++) {
      want.push(
        ...naiveMatMul(
          xv.slice(i * 6, i * 6 + 6),
          yv.slice(j * 12, j * 12 + 12),
          2,
          3,
          4,
          true,
          true,
        ),
      );
    }
  }
  assertClose(values(r), want);

  const v3 = run("BatchMatMulV3", [a, b], {
    Ta: attr.type(T.DT_FLOAT),
    Tb: attr.type(T.DT_FLOAT),
    Tout: attr.type(T.DT_FLOAT),
  });
  assert.deepEqual(values(v3), values(out));
  const v1 = run("BatchMatMul", [a, a], { adj_y: attr.bool(true) });
  assert.deepEqual(v1.shape, [2, 2, 2]);
  assert.deepEqual(
    values(v1).slice(0, 4),
    naiveMatMul(av.slice(0, 6), av.slice(0, 6), 2, 3, 2, false, true),
  );
});

Deno.test("BatchMatMul errors", () => {
  const a = f32(new Array(12).fill(1), [2, 2, 3]);
  assertServingError(
    () => run("BatchMatMulV2", [a, f32(new Array(12).fill(1), [3, 2, 2])]),
    Code.INVALID_ARGUMENT,
    "In[0] and In[1] must have compatible batch dimensions: [2,2,3] vs. [3,2,2]",
  );
  assertServingError(
    () => run("BatchMatMulV2", [a, f32(new Array(8).fill(1), [2, 2, 2])]),
    Code.INVALID_ARGUMENT,
    "In[0] mismatch In[1] shape: 3 vs. 2: [2,2,3] [2,2,2] 0 0",
  );
  assertServingError(
    () => run("BatchMatMulV2", [f32([1, 2, 3]), a]),
    Code.INVALID_ARGUMENT,
    "In[0] ndims must be >= 2: 1",
  );
  assertServingError(
    () => run("BatchMatMul", [a, f32(new Array(3).fill(1), [3, 1])]),
    Code.INVALID_ARGUMENT,
    "In[0] and In[1] has different ndims: [2,2,3] vs. [3,1]",
  );
});

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

function reduce(op: string, x: Tensor, axes: number[] | number | Tensor, keep = false): Tensor {
  const axis = axes instanceof Tensor
    ? axes
    : typeof axes === "number"
    ? Tensor.int32([axes], [])
    : Tensor.int32(axes);
  return run(op, [x, axis], {
    T: attr.type(x.dtype),
    Tidx: attr.type(axis.dtype),
    keep_dims: attr.bool(keep),
  });
}

Deno.test("Sum over axes, negative axes, keep_dims, int64 axes", () => {
  const x = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  const s0 = reduce("Sum", x, [0]);
  assert.deepEqual(s0.shape, [3]);
  assert.deepEqual(values(s0), [5, 7, 9]);
  const s1 = reduce("Sum", x, -1);
  assert.deepEqual(s1.shape, [2]);
  assert.deepEqual(values(s1), [6, 15]);
  const sk = reduce("Sum", x, [1], true);
  assert.deepEqual(sk.shape, [2, 1]);
  assert.deepEqual(values(sk), [6, 15]);
  const all = reduce("Sum", x, [0, 1]);
  assert.deepEqual(all.shape, []);
  assert.deepEqual(values(all), [21]);
  const allKeep = reduce("Sum", x, [-2, -1], true);
  assert.deepEqual(allKeep.shape, [1, 1]);
  assert.deepEqual(values(reduce("Sum", x, Tensor.int64([1]))), [6, 15]);
  // Duplicate axes count once.
  assert.deepEqual(values(reduce("Sum", x, [1, -1])), [6, 15]);
  // An empty axis list reduces nothing.
  const none = reduce("Sum", x, []);
  assert.deepEqual(none.shape, [2, 3]);
  assert.deepEqual(values(none), [1, 2, 3, 4, 5, 6]);
});

Deno.test("Reductions over non-adjacent axes", () => {
  const x = f32(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
  const r = reduce("Sum", x, [0, 2]);
  assert.deepEqual(r.shape, [3]);
  const want = [0, 1, 2].map((j) => {
    let s = 0;
    for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) s += i * 12 + j * 4 + k;
    return s;
  });
  assert.deepEqual(values(r), want);
  const m = reduce("Max", x, [1]);
  assert.deepEqual(m.shape, [2, 4]);
  assert.deepEqual(values(m), [8, 9, 10, 11, 20, 21, 22, 23]);
  const k = reduce("Min", x, [0, 2], true);
  assert.deepEqual(k.shape, [1, 3, 1]);
  assert.deepEqual(values(k), [0, 4, 8]);
  // Size-1 dims in between are skipped.
  const y = f32(Array.from({ length: 6 }, (_, i) => i), [2, 1, 3]);
  assert.deepEqual(values(reduce("Sum", y, [0, 1])), [3, 5, 7]);
  assert.deepEqual(values(reduce("Sum", y, [1])), [0, 1, 2, 3, 4, 5]);
});

Deno.test("Mean, Max, Min, Prod, All, Any", () => {
  const x = f32([1, 2, 3, 4], [2, 2]);
  assert.deepEqual(values(reduce("Mean", x, [0])), [2, 3]);
  assert.deepEqual(values(reduce("Mean", x, [0, 1])), [2.5]);
  assert.deepEqual(values(reduce("Mean", i32([1, 2, -1, -2], [2, 2]), [1])), [1, -1]);
  assert.deepEqual(values(reduce("Mean", i64([7n, 8n]), [0])), [7]);
  assert.deepEqual(values(reduce("Max", f32([1, NaN, 3]), [0])), [NaN]);
  assert.deepEqual(values(reduce("Min", f32([1, NaN, 3]), [0])), [NaN]);
  assert.deepEqual(values(reduce("Max", f32([-Infinity, -Infinity]), [0])), [-Infinity]);
  assert.deepEqual(values(reduce("Max", i32([-5, -2, -9]), [0])), [-2]);
  assert.deepEqual(values(reduce("Min", i64([-5n, 2n ** 62n]), [0])), [-5]);
  assert.deepEqual(values(reduce("Prod", x, [1])), [2, 12]);
  assert.deepEqual(values(reduce("Prod", i32([65536, 65536]), [0])), [0]);
  assert.deepEqual(values(reduce("Sum", i32([2147483647, 1]), [0])), [-2147483648]);
  assert.deepEqual(values(reduce("Sum", typed(T.DT_UINT8, [200, 100]), [0])), [44]);
  const b = bool([true, false, true, true], [2, 2]);
  assert.deepEqual(values(reduce("All", b, [1])), [0, 1]);
  assert.deepEqual(values(reduce("Any", b, [1])), [1, 1]);
  assert.deepEqual(values(reduce("Any", bool([false, false]), [0])), [0]);
  const d = reduce("Mean", f64([0.1, 0.2]), [0]);
  assert.equal(d.dtype, T.DT_DOUBLE);
  assertClose(values(d), [0.15], 1e-15);
});

Deno.test("Reductions of empty inputs give the identity", () => {
  const e = f32([], [0, 3]);
  assert.deepEqual(values(reduce("Sum", e, [0])), [0, 0, 0]);
  assert.deepEqual(values(reduce("Prod", e, [0])), [1, 1, 1]);
  assert.deepEqual(values(reduce("Max", e, [0])), [-Infinity, -Infinity, -Infinity]);
  assert.deepEqual(values(reduce("Min", e, [0])), [Infinity, Infinity, Infinity]);
  assert.deepEqual(values(reduce("Mean", e, [0])), [NaN, NaN, NaN]);
  assert.deepEqual(values(reduce("Max", i32([], [0]), [0])), [-2147483648]);
  assert.deepEqual(reduce("Sum", e, [1]).shape, [0]);
  assert.deepEqual(values(reduce("All", bool([], [0]), [0])), [1]);
});

Deno.test("Reduction errors", () => {
  const x = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  assertServingError(
    () => reduce("Sum", x, [2]),
    Code.INVALID_ARGUMENT,
    "Invalid reduction dimension (2 for input with 2 dimension(s)",
  );
  assertServingError(
    () => reduce("Mean", x, [-3]),
    Code.INVALID_ARGUMENT,
    "Invalid reduction dimension (-3 for input with 2 dimension(s)",
  );
  assertServingError(
    () => reduce("All", x, [0]),
    Code.UNIMPLEMENTED,
    /All is not implemented for DT_FLOAT/,
  );
});

Deno.test("Reductions on half compute in float32", () => {
  const h = new Tensor(T.DT_HALF, [2, 2], encodeFloat16([1, 2, 3, 4], T.DT_HALF));
  const s = reduce("Sum", h, [1]);
  assert.equal(s.dtype, T.DT_HALF);
  assert.deepEqual(Array.from(decodeFloat16(s.data as Uint16Array, T.DT_HALF)), [3, 7]);
});

// ---------------------------------------------------------------------------------------------
// ArgMax / ArgMin
// ---------------------------------------------------------------------------------------------

function arg(op: string, x: Tensor, dim: number, outType?: DataType): Tensor {
  const attrs: Attrs = { T: attr.type(x.dtype) };
  if (outType !== undefined) attrs.output_type = attr.type(outType);
  return run(op, [x, Tensor.int32([dim], [])], attrs);
}

Deno.test("ArgMax/ArgMin: ties give the first index; int64 output by default", () => {
  const x = f32([1, 3, 3, 0, 5, 5, 5, 1], [2, 4]);
  const m = arg("ArgMax", x, 1);
  assert.equal(m.dtype, T.DT_INT64);
  assert.deepEqual(m.shape, [2]);
  assert.deepEqual(Array.from(m.data as BigInt64Array), [1n, 0n]);
  const m0 = arg("ArgMax", x, 0, T.DT_INT32);
  assert.equal(m0.dtype, T.DT_INT32);
  assert.deepEqual(values(m0), [1, 1, 1, 1]);
  assert.deepEqual(values(arg("ArgMin", x, -1, T.DT_INT32)), [3, 3]);
  assert.deepEqual(values(arg("ArgMin", x, 0, T.DT_INT32)), [0, 0, 0, 0]);
  // NaN never wins; all-equal lines give 0.
  assert.deepEqual(values(arg("ArgMax", f32([NaN, 1, 2]), 0, T.DT_INT32)), [2]);
  assert.deepEqual(values(arg("ArgMax", f32([-Infinity, -Infinity]), 0, T.DT_INT32)), [0]);
  assert.deepEqual(values(arg("ArgMax", i64([5n, 2n ** 62n, 7n]), 0, T.DT_INT32)), [1]);
  assert.deepEqual(values(arg("ArgMin", i32([5, -9, -9]), 0, T.DT_INT32)), [1]);
  const y = f32(Array.from({ length: 24 }, (_, i) => (i * 7) % 24), [2, 3, 4]);
  const r = arg("ArgMax", y, 1, T.DT_INT32);
  assert.deepEqual(r.shape, [2, 4]);
  const yv = values(y);
  const want: number[] = [];
  for (let i = 0; i < 2; i++) {
    for (let k = 0; k < 4; k++) {
      let best = 0;
      for (let j = 1; j < 3; j++) if (yv[i * 12 + j * 4 + k] > yv[i * 12 + best * 4 + k]) best = j;
      want.push(best);
    }
  }
  assert.deepEqual(values(r), want);
});

Deno.test("ArgMax errors", () => {
  const x = f32([1, 2, 3, 4], [2, 2]);
  assertServingError(
    () => arg("ArgMax", x, 2),
    Code.INVALID_ARGUMENT,
    "Expected dimension in the range [-2, 2), but got 2",
  );
  assertServingError(
    () => arg("ArgMin", f32([], [0, 2]), 0),
    Code.INVALID_ARGUMENT,
    "Reduction axis 0 is empty in shape [0,2]",
  );
  assertServingError(
    () => run("ArgMax", [x, Tensor.int32([0, 1])]),
    Code.INVALID_ARGUMENT,
    "dim must be a scalar, but received tensor of shape: [2]",
  );
});

// ---------------------------------------------------------------------------------------------
// MatMul through WebAssembly
// ---------------------------------------------------------------------------------------------

Deno.test("MatMul float32 runs a persistent W through WebAssembly with the same results", () => {
  const rnd = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 2);
  for (const [m, k, n, tb] of [[1, 784, 10, false], [3, 5, 3, true], [7, 33, 17, false]] as const) {
    const a = f32(rnd(m * k, 1), [m, k]);
    const w = f32(rnd(k * n, 2), tb ? [n, k] : [k, n]);
    // Reference in float64.
    const ref: number[] = [];
    const av = values(a), wv = values(w);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += av[i * k + p] * (tb ? wv[j * k + p] : wv[p * n + j]);
        ref.push(s);
      }
    }
    const attrs = { T: attr.type(T.DT_FLOAT), transpose_b: attr.bool(tb) };
    const first = run("MatMul", [a, w], attrs); // JavaScript (W seen once)
    const second = run("MatMul", [a, w], attrs); // WebAssembly from now on, when supported
    assert.deepEqual([...second.shape], [m, n]);
    assertClose(values(first), ref, 1e-5);
    assertClose(values(second), ref, 1e-5);
  }
});

// ---------------------------------------------------------------------------------------------
// ClipByValue, Cumsum, Cumprod, Erfc
// ---------------------------------------------------------------------------------------------

Deno.test("ClipByValue with scalar and tensor bounds, NaN kept, min wins over max", () => {
  const clip = (x: Tensor, lo: Tensor, hi: Tensor) =>
    run("ClipByValue", [x, lo, hi], { T: attr.type(x.dtype) });
  const s = (v: number) => f32([v], []);
  assertClose(values(clip(f32([-2, 0.5, 3, NaN]), s(-1), s(1))), [-1, 0.5, 1, NaN]);
  assert.deepEqual(values(clip(f32([2, -1, 3]), f32([0, 0, 5]), f32([1, 1, 1]))), [1, 0, 5]);
  assert.deepEqual(values(clip(f32([2, -1, 3]), f32([0, 0, 2]), s(2.5))), [2, 0, 2.5]);
  assert.deepEqual(values(clip(f32([2, -1, 3]), s(0), f32([1, 5, 1]))), [1, 0, 1]);
  assert.deepEqual(values(clip(f32([5]), s(3), s(1))), [3]);
  const ints = clip(i32([-5, 0, 5], [3]), i32([-1], []), i32([1], []));
  assert.equal(ints.dtype, T.DT_INT32);
  assert.deepEqual(values(ints), [-1, 0, 1]);
  assert.deepEqual(values(clip(i64([-5n, 2n ** 40n]), i64([0], []), i64([2n ** 33n], []))), [
    0,
    2 ** 33,
  ]);
  const h = (v: number[], shape?: number[]) =>
    new Tensor(T.DT_HALF, shape ?? [v.length], encodeFloat16(v, T.DT_HALF));
  const hc = clip(h([-3, 0.25, 7]), h([-1], []), h([2], []));
  assert.equal(hc.dtype, T.DT_HALF);
  assert.deepEqual(Array.from(decodeFloat16(hc.data as Uint16Array, T.DT_HALF)), [-1, 0.25, 2]);
  assertServingError(
    () => clip(f32([1, 2, 3]), f32([0, 0]), s(1)),
    Code.INVALID_ARGUMENT,
    "clip_value_min and clip_value_max must be either of the same shape as input, or a scalar. " +
      "input shape: [3]clip_value_min shape: [2]clip_value_max shape: []",
  );
  assertServingError(
    () => clip(f32([1, 2]), f32([0], [1]), s(1)),
    Code.INVALID_ARGUMENT,
    /^clip_value_min and clip_value_max must be/,
  );
  assertServingError(
    () => clip(typed(T.DT_UINT32, [1]), typed(T.DT_UINT32, [0], []), typed(T.DT_UINT32, [1], [])),
    Code.UNIMPLEMENTED,
    /ClipByValue is not implemented for DT_UINT32/,
  );
});

Deno.test("Cumsum and Cumprod with exclusive and reverse", () => {
  const scan = (op: string, x: Tensor, axis: number, exclusive = false, reverse = false) =>
    run(op, [x, i32([axis], [])], {
      T: attr.type(x.dtype),
      exclusive: attr.bool(exclusive),
      reverse: attr.bool(reverse),
    });
  const x = f32([1, 2, 3, 4]);
  assert.deepEqual(values(scan("Cumsum", x, 0)), [1, 3, 6, 10]);
  assert.deepEqual(values(scan("Cumsum", x, 0, true)), [0, 1, 3, 6]);
  assert.deepEqual(values(scan("Cumsum", x, 0, false, true)), [10, 9, 7, 4]);
  assert.deepEqual(values(scan("Cumsum", x, 0, true, true)), [9, 7, 4, 0]);
  assert.deepEqual(values(scan("Cumprod", x, 0)), [1, 2, 6, 24]);
  assert.deepEqual(values(scan("Cumprod", x, 0, true)), [1, 1, 2, 6]);
  assert.deepEqual(values(scan("Cumprod", x, 0, false, true)), [24, 24, 12, 4]);
  assert.deepEqual(values(scan("Cumprod", x, 0, true, true)), [24, 12, 4, 1]);
  const m = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  const c0 = scan("Cumsum", m, 0);
  assert.deepEqual([...c0.shape], [2, 3]);
  assert.deepEqual(values(c0), [1, 2, 3, 5, 7, 9]);
  assert.deepEqual(values(scan("Cumsum", m, 1)), [1, 3, 6, 4, 9, 15]);
  assert.deepEqual(values(scan("Cumsum", m, -1, true, true)), [5, 3, 0, 11, 6, 0]);
  assert.deepEqual(values(scan("Cumprod", m, -2, true)), [1, 1, 1, 1, 2, 3]);
  // float32 partial sums round at every step: 2^24 + 1 + 1 stays 2^24.
  assert.deepEqual(values(scan("Cumsum", f32([16777216, 1, 1]), 0)), [
    16777216,
    16777216,
    16777216,
  ]);
  assert.ok(Object.is(values(scan("Cumsum", f32([-0]), 0))[0], 0)); // 0 + -0
  // Integers wrap; int64 and half.
  assert.deepEqual(values(scan("Cumsum", i32([2 ** 31 - 1, 1]), 0)), [2 ** 31 - 1, -(2 ** 31)]);
  assert.deepEqual(values(scan("Cumprod", i32([65536, 65536, 3]), 0)), [65536, 0, 0]);
  assert.deepEqual(values(scan("Cumprod", typed(T.DT_UINT8, [16, 16, 2]), 0)), [16, 0, 0]);
  const big = scan("Cumprod", i64([2n ** 62n, 2n, 3n]), 0);
  assert.deepEqual(Array.from(big.data as BigInt64Array), [2n ** 62n, -(2n ** 63n), -(2n ** 63n)]);
  const half = scan(
    "Cumsum",
    new Tensor(T.DT_HALF, [3], encodeFloat16([2048, 1, 1], T.DT_HALF)),
    0,
  );
  assert.deepEqual(Array.from(decodeFloat16(half.data as Uint16Array, T.DT_HALF)), [
    2048,
    2048,
    2048,
  ]);
  assert.deepEqual(values(scan("Cumsum", f32([], [0, 3]), 1)), []);
  assertServingError(
    () => run("Cumsum", [x, i32([0])]),
    Code.INVALID_ARGUMENT,
    "ScanOp: axis must be a scalar, not [1]",
  );
  assertServingError(
    () => scan("Cumsum", m, -3),
    Code.INVALID_ARGUMENT,
    "ScanOp: Expected scan axis in the range [-2, 2), but got -1",
  );
  assertServingError(
    () => scan("Cumprod", m, 2),
    Code.INVALID_ARGUMENT,
    "ScanOp: Expected scan axis in the range [-2, 2), but got 2",
  );
  assertServingError(() => scan("Cumsum", bool([true]), 0), Code.UNIMPLEMENTED, /DT_BOOL/);
});

Deno.test("Erfc", () => {
  const x = [-1, 0, 0.5, 1, 3, 10, -Infinity, Infinity, NaN];
  const ref = [
    1.8427007929497148,
    1,
    0.4795001221869535,
    0.15729920705028513,
    2.209049699858544e-05,
    2.088487583762545e-45,
    2,
    0,
    NaN,
  ];
  assertClose(values(un("Erfc", f64(x))), ref, 1e-15);
  const f = un("Erfc", f32(x));
  assert.equal(f.dtype, T.DT_FLOAT);
  assertClose(values(f), Array.from(Float32Array.from(ref)), 1e-7);
  assertServingError(() => un("Erfc", i32([1])), Code.UNIMPLEMENTED, /Erfc/);
});

// ---------------------------------------------------------------------------------------------
// Einsum
// ---------------------------------------------------------------------------------------------

/**
 * A brute-force einsum over explicit labels (no ellipsis): every assignment of every label,
 * accumulating products into the output.
 */
function einsumReference(eq: string, xs: { shape: number[]; v: number[] }[]): number[] {
  const [ins, out] = eq.split("->");
  const subs = ins.split(",");
  const size = new Map<string, number>();
  subs.forEach((s, i) => [...s].forEach((c, d) => size.set(c, xs[i].shape[d])));
  const labels = [...size.keys()];
  const outSize = [...out].reduce((p, c) => p * size.get(c)!, 1);
  const res = new Array<number>(outSize).fill(0);
  const at = (s: string, idx: Map<string, number>, shape: number[]) =>
    [...s].reduce((o, c, d) => o * shape[d] + idx.get(c)!, 0);
  const idx = new Map<string, number>(labels.map((l) => [l, 0]));
  const total = labels.reduce((p, l) => p * size.get(l)!, 1);
  for (let n = 0; n < total; n++) {
    let r = n;
    for (let i = labels.length - 1; i >= 0; i--) {
      const s = size.get(labels[i])!;
      idx.set(labels[i], r % s);
      r = Math.floor(r / s);
    }
    let p = 1;
    subs.forEach((s, i) => (p *= xs[i].v[at(s, idx, xs[i].shape)]));
    res[at(out, idx, [...out].map((c) => size.get(c)!))] += p;
  }
  return res;
}

Deno.test("Einsum: matmul, transpose, reductions, dot and outer products", () => {
  const es = (eq: string, ...xs: Tensor[]) =>
    run("Einsum", xs, {
      equation: attr.string(eq),
      T: attr.type(xs[0].dtype),
      N: attr.int(xs.length),
    });
  const ab = es("ab,bc->ac", f32([1, 2, 3, 4], [2, 2]), f32([5, 6, 7, 8], [2, 2]));
  assert.deepEqual([...ab.shape], [2, 2]);
  assert.deepEqual(values(ab), [19, 22, 43, 50]);
  const m = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  const t = es("ij->ji", m);
  assert.deepEqual([...t.shape], [3, 2]);
  assert.deepEqual(values(t), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(values(es("ij->i", m)), [6, 15]);
  assert.deepEqual(values(es("ij->j", m)), [5, 7, 9]);
  const all = es("ij->", m);
  assert.deepEqual([...all.shape], []);
  assert.deepEqual(values(all), [21]);
  assert.deepEqual(values(es("i,i->", f32([1, 2, 3]), f32([4, 5, 6]))), [32]);
  assert.deepEqual(values(es("i,j->ij", f32([1, 2]), f32([3, 4]))), [3, 4, 6, 8]);
  // Labels summed away on one side only, and the free labels in swapped order.
  assert.deepEqual(values(es("ij,jk->k", m, f32([1, 0, 0, 1, 1, 1], [3, 2]))), [14, 16]);
  assert.deepEqual(values(es("ab,bc->ca", f32([1, 2, 3, 4], [2, 2]), f32([5, 6, 7, 8], [2, 2]))), [
    19,
    43,
    22,
    50,
  ]);
  const ints = es("ab,bc->ac", i32([1, 2, 3, 4], [2, 2]), i32([5, 6, 7, 8], [2, 2]));
  assert.equal(ints.dtype, T.DT_INT32);
  assert.deepEqual(values(ints), [19, 22, 43, 50]);
  const h = (v: number[], shape: number[]) =>
    new Tensor(T.DT_HALF, shape, encodeFloat16(v, T.DT_HALF));
  const hh = es("ab,bc->ac", h([1, 2, 3, 4], [2, 2]), h([5, 6, 7, 8], [2, 2]));
  assert.equal(hh.dtype, T.DT_HALF);
  assert.deepEqual(Array.from(decodeFloat16(hh.data as Uint16Array, T.DT_HALF)), [19, 22, 43, 50]);
});

Deno.test("Einsum: the equations Keras layers export agree with a brute-force reference", () => {
  const rnd = (shape: number[], seed: number) => {
    const n = shape.reduce((p, d) => p * d, 1);
    return { shape, v: Array.from({ length: n }, (_, i) => Math.round(Math.sin(seed + i) * 8)) };
  };
  const cases: [string, number[], number[]][] = [
    ["ab,bc->ac", [3, 4], [4, 5]],
    ["abc,cd->abd", [2, 3, 4], [4, 5]],
    ["abc,cde->abde", [2, 3, 4], [4, 2, 3]],
    ["abcd,cd->abc", [2, 3, 4, 5], [4, 5]],
    ["bij,bjk->bik", [2, 3, 4], [2, 4, 5]],
    ["aecd,abcd->acbe", [2, 3, 2, 4], [2, 5, 2, 4]],
    ["acbe,aecd->abcd", [2, 2, 5, 3], [2, 3, 2, 4]],
    ["abcd,cde->abe", [2, 3, 2, 4], [2, 4, 5]],
    ["ab,cb->ac", [3, 4], [2, 4]],
    ["ba,bc->ca", [4, 3], [4, 2]],
  ];
  for (const [eq, sx, sy] of cases) {
    const x = rnd(sx, 1), y = rnd(sy, 2);
    const out = run("Einsum", [f32(x.v, sx), f32(y.v, sy)], { equation: attr.string(eq) });
    assert.deepEqual(values(out), einsumReference(eq, [x, y]), eq);
    const outShape = [...eq.split("->")[1]].map((c) => {
      const [a, b] = eq.split("->")[0].split(",");
      return a.includes(c) ? sx[a.indexOf(c)] : sy[b.indexOf(c)];
    });
    assert.deepEqual([...out.shape], outShape, eq);
  }
});

Deno.test("Einsum: ellipsis dims broadcast as numpy's", () => {
  const es = (eq: string, ...xs: Tensor[]) => run("Einsum", xs, { equation: attr.string(eq) });
  const x = f32(Array.from({ length: 12 }, (_, i) => i), [3, 2, 2]);
  const w = f32([1, 2, 3, 4], [2, 2]);
  const r = es("...ij,jk->...ik", x, w);
  assert.deepEqual([...r.shape], [3, 2, 2]);
  assert.deepEqual(
    values(r),
    einsumReference("aij,jk->aik", [{ shape: [3, 2, 2], v: values(x) }, {
      shape: [2, 2],
      v: [1, 2, 3, 4],
    }]),
  );
  // [2,1,3] · [4,3] over j, broadcasting the leading dims to [2,4].
  const a = f32([1, 2, 3, 4, 5, 6], [2, 1, 3]);
  const b = f32([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1], [4, 3]);
  const d = es("...j,...j->...", a, b);
  assert.deepEqual([...d.shape], [2, 4]);
  assert.deepEqual(values(d), [1, 2, 3, 6, 4, 5, 6, 15]);
  // An ellipsis standing for nothing, and a single-operand one.
  assert.deepEqual(values(es("...i,i->...", f32([1, 2]), f32([3, 4]))), [11]);
  const s = es("...ij->...j", x);
  assert.deepEqual([...s.shape], [3, 2]);
  assert.deepEqual(values(s), [2, 4, 10, 12, 18, 20]);
});

Deno.test("Einsum errors", () => {
  const es = (eq: string, ...xs: Tensor[]) => run("Einsum", xs, { equation: attr.string(eq) });
  const m = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  assertServingError(
    () => es("ij", m),
    Code.INVALID_ARGUMENT,
    "Expecting exactly one '->' in einsum equation: ij",
  );
  assertServingError(
    () => es("i,j,k->ijk", m),
    Code.INVALID_ARGUMENT,
    "Expecting 1 or 2 input subscripts in equation 'i,j,k->ijk' but got: 3",
  );
  assertServingError(() => es("ii->i", m), Code.UNIMPLEMENTED, /Einsum equation "ii->i" repeats/);
  assertServingError(() => es("ij->k", m), Code.INVALID_ARGUMENT, /output label 'k' appears in no/);
  assertServingError(
    () => es("ijk->kji", m),
    Code.INVALID_ARGUMENT,
    "Expected input 0 to have rank 3 but got: 2",
  );
  assertServingError(
    () => es("ij,ij->i", m, f32([1, 2, 3], [3, 1])),
    Code.INVALID_ARGUMENT,
    "Expected dimension 2 at axis 0 of the input shaped [3,1] but got dimension 3",
  );
  assertServingError(
    () => es("...ijk->ijk", m),
    Code.INVALID_ARGUMENT,
    "Expected input 0 to have rank at least 3 but got: 2",
  );
  assertServingError(
    () => es("...j->j", m),
    Code.INVALID_ARGUMENT,
    "Output contains 1 broadcasting dimension(s) but no ellipsis (...) was found in the output subscripts.",
  );
  assertServingError(
    () =>
      es(
        "...j,...j->...",
        f32([1, 2, 3, 4, 5, 6], [2, 3]),
        f32([1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 3]),
      ),
    Code.INVALID_ARGUMENT,
    /^Invalid broadcasting dimensions: /,
  );
  assertServingError(
    () => es("ij,jk->ik", m, i32([1, 2, 3], [3, 1])),
    Code.INVALID_ARGUMENT,
    /Einsum needs inputs of one type/,
  );
});

Deno.test("MatMul and BatchMatMulV2 refuse products over the tensor limit before allocating", () => {
  const col = new Tensor(T.DT_FLOAT, [2 ** 15, 1], new Float32Array(2 ** 15));
  const row = new Tensor(T.DT_FLOAT, [1, 2 ** 15], new Float32Array(2 ** 15));
  for (const op of ["MatMul", "BatchMatMulV2"]) {
    assert.throws(
      () => run(op, [col, row]),
      (e: unknown) => e instanceof ServingError && e.code === Code.RESOURCE_EXHAUSTED,
      op,
    );
  }
});
