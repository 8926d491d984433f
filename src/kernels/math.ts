/**
 * Math kernels: elementwise arithmetic and comparisons with broadcasting, AddN, Cast, ClipByValue,
 * MatMul, BatchMatMul and Einsum, reductions (Sum, Mean, Max, Min, Prod, All, Any), scans (Cumsum,
 * Cumprod) and ArgMax/ArgMin.
 *
 * Semantics follow TensorFlow's CPU kernels: integer arithmetic wraps as in C++, integer Div and
 * TruncateDiv truncate toward zero while FloorDiv/FloorMod floor, integer division by zero fails
 * with "Integer division by zero", Maximum/Minimum and the Max/Min reductions propagate NaN, Round
 * rounds half to even, Cast from floating point to integers behaves as x86 does, and scans
 * accumulate in the element type (float32 partial sums round at every step, as Eigen's do).
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { allocate, DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, shapeString, sizeOf, Tensor, toIntArray } from "../tensor/tensor.ts";
import { broadcastShapes, forEachBlock, sameShape, stridedPlan } from "./broadcast.ts";
import {
  bfloat16BitsToNumber,
  binaryKernel,
  checkAllowed,
  decodeFloat16,
  elementKind,
  encodeFloat16,
  halfBitsToNumber,
  isFloat16,
  numberToBfloat16Bits,
  numberToHalfBits,
  specialize,
  unaryKernel,
  unsupportedDtype,
} from "./elementwise.ts";
import { transposeTensor } from "./array.ts";
import type { Kernel } from "./kernel.ts";
import { denseF32, isWeightSource } from "./wasm/dense.ts";

// ---------------------------------------------------------------------------------------------
// Dtype sets (as TensorFlow registers the CPU kernels, rounded up to every integer width)
// ---------------------------------------------------------------------------------------------

const T = DataType;
/** Floating point types. */
const FLOATS = [T.DT_FLOAT, T.DT_DOUBLE, T.DT_HALF, T.DT_BFLOAT16] as const;
/** Integer types held as numbers. */
const SMALL_INTS = [T.DT_INT8, T.DT_INT16, T.DT_INT32, T.DT_UINT8, T.DT_UINT16, T.DT_UINT32];
/** Integer types held as bigints. */
const BIG_INTS = [T.DT_INT64, T.DT_UINT64] as const;
/** Every integer type. */
const INTS = [...SMALL_INTS, ...BIG_INTS];
/** Every real number type. */
const REALS = [...FLOATS, ...INTS];
/** Signed types (Neg, Abs, Sign). */
const SIGNED = [...FLOATS, T.DT_INT8, T.DT_INT16, T.DT_INT32, T.DT_INT64];

// ---------------------------------------------------------------------------------------------
// Scalar helpers
// ---------------------------------------------------------------------------------------------

function divisionByZero(): ServingError {
  return invalidArgument("Integer division by zero");
}

function negativePower(): ServingError {
  return invalidArgument("Integers to negative integer powers are not allowed");
}

/** C++ integer division: truncates toward zero. Exact: |a| < 2^53 keeps the quotient exact. */
function truncDivInt(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return Math.trunc(a / b);
}

function truncDivBig(a: bigint, b: bigint): bigint {
  if (b === 0n) throw divisionByZero();
  return a / b;
}

/** Integer division rounding toward negative infinity (TensorFlow's FloorDiv). */
function floorDivInt(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return Math.floor(a / b);
}

function floorDivBig(a: bigint, b: bigint): bigint {
  if (b === 0n) throw divisionByZero();
  const q = a / b;
  return q * b !== a && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

/** Remainder with the divisor's sign (TensorFlow's FloorMod); also right for floats. */
function floorModNumber(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && (b < 0) !== (r < 0) ? r + b : r;
}

function floorModInt(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return floorModNumber(a, b);
}

function floorModBig(a: bigint, b: bigint): bigint {
  if (b === 0n) throw divisionByZero();
  const r = a % b;
  return r !== 0n && (b < 0n) !== (r < 0n) ? r + b : r;
}

function truncModInt(a: number, b: number): number {
  if (b === 0) throw divisionByZero();
  return a % b;
}

function truncModBig(a: bigint, b: bigint): bigint {
  if (b === 0n) throw divisionByZero();
  return a % b;
}

/** C's pow: 1^y = 1 and (-1)^±inf = 1, where JavaScript gives NaN. */
function powFloat(a: number, b: number): number {
  if (a === 1 || (a === -1 && (b === Infinity || b === -Infinity))) return 1;
  return a ** b;
}

/** Integer power by squaring with 32-bit wrap-around (wider results wrap the same mod 2^k). */
function powInt(x: number, y: number): number {
  if (y < 0) throw negativePower();
  let r = 1;
  let base = x | 0;
  let e = y >>> 0;
  while (e > 0) {
    if (e & 1) r = Math.imul(r, base);
    base = Math.imul(base, base);
    e >>>= 1;
  }
  return r;
}

function powBig(x: bigint, y: bigint): bigint {
  if (y < 0n) throw negativePower();
  let r = 1n;
  let base = x;
  let e = y;
  while (e > 0n) {
    if (e & 1n) r = BigInt.asIntN(64, r * base);
    base = BigInt.asIntN(64, base * base);
    e >>= 1n;
  }
  return r;
}

/** Rounds half to even, as TensorFlow's Round (and numpy's) does. */
function roundHalfEven(x: number): number {
  const r = Math.round(x); // rounds halves up
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Maximum that propagates NaN and keeps `a` on ties, as std::max does. */
function maxNaN(a: number, b: number): number {
  if (a !== a || b !== b) return a + b;
  return a < b ? b : a;
}

/** Minimum that propagates NaN and keeps `a` on ties, as std::min does. */
function minNaN(a: number, b: number): number {
  if (a !== a || b !== b) return a + b;
  return b < a ? b : a;
}

/** sign(x) with sign(NaN) = NaN and sign(±0) = 0, as Eigen does. */
function signNumber(x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : x;
}

/**
 * erf for float32: Eigen's rational approximation (the one TensorFlow's float kernel uses),
 * accurate to float32 precision; |x| > 4 is ±1 in float32 anyway.
 */
function erfFloat32(v: number): number {
  const x = Math.min(4, Math.max(-4, v));
  const x2 = x * x;
  let p = x2 * -2.72614225801306e-10 + 2.77068142495902e-8;
  p = x2 * p - 2.10102402082508e-6;
  p = x2 * p - 5.69250639462346e-5;
  p = x2 * p - 7.34990630326855e-4;
  p = x2 * p - 2.95459980854025e-3;
  p = x2 * p - 1.60960333262415e-2;
  let q = x2 * -1.45660718464996e-5 - 2.13374055278905e-4;
  q = x2 * q - 1.68282697438203e-3;
  q = x2 * q - 7.37332916720468e-3;
  q = x2 * q - 1.42647390514189e-2;
  return (x * p) / q;
}

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/**
 * erf for float64, to about 1e-15: a positive-term series below 3 (no cancellation), and
 * 1 - erfc from its continued fraction between 3 and 6; beyond 6 erf is ±1 in double.
 */
function erfFloat64(x: number): number {
  if (x !== x) return x;
  const ax = Math.abs(x);
  let r: number;
  if (ax >= 6) {
    r = 1;
  } else if (ax < 3) {
    // erf(x) = 2/√π e^{-x²} Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1))
    const x2 = 2 * ax * ax;
    let term = ax;
    let sum = ax;
    for (let n = 1; term > sum * 1e-17; n++) {
      term *= x2 / (2 * n + 1);
      sum += term;
    }
    r = TWO_OVER_SQRT_PI * Math.exp(-ax * ax) * sum;
  } else {
    // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated bottom-up.
    let f = ax;
    for (let n = 80; n >= 1; n--) f = ax + n / 2 / f;
    r = 1 - (ONE_OVER_SQRT_PI * Math.exp(-ax * ax)) / f;
  }
  return x < 0 ? -r : r;
}

/**
 * erfc for float64, to about 1e-15 relative: 1 - erf below 0.5 (no cancellation there), the
 * continued fraction of erfc above (evaluated bottom-up; 3000 terms near 0.5 fall to 30 by 6),
 * 2 - erfc(-x) for negative x; erfc underflows to 0 past about 27.3.
 */
function erfcFloat64(x: number): number {
  if (x !== x) return x;
  if (x < 0) return 2 - erfcFloat64(-x);
  if (x < 0.5) return 1 - erfFloat64(x);
  if (x > 27.3) return 0;
  // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))).
  const terms = Math.ceil(20 + 400 / (x * x));
  let f = x;
  for (let n = terms; n >= 1; n--) f = x + n / 2 / f;
  return (ONE_OVER_SQRT_PI * Math.exp(-x * x)) / f;
}

/** Byte-string equality. */
function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Unary ops
// ---------------------------------------------------------------------------------------------

const floatOnly = (fn: (x: number) => number) => ({ float: fn });

const unaryKernels: Kernel[] = [
  unaryKernel("Neg", { float: (x) => -x, int: (x) => -x, int64: (x) => -x }, SIGNED),
  unaryKernel(
    "Abs",
    { float: Math.abs, int: Math.abs, int64: (x) => (x < 0n ? -x : x) },
    SIGNED,
  ),
  unaryKernel(
    "Square",
    { float: (x) => x * x, int: (x) => Math.imul(x, x), int64: (x) => x * x },
    REALS,
  ),
  unaryKernel(
    "Sign",
    { float: signNumber, int: signNumber, int64: (x) => (x > 0n ? 1n : x < 0n ? -1n : 0n) },
    SIGNED,
  ),
  unaryKernel("Exp", floatOnly(Math.exp), FLOATS),
  unaryKernel("Expm1", floatOnly(Math.expm1), FLOATS),
  unaryKernel("Log", floatOnly(Math.log), FLOATS),
  unaryKernel("Log1p", floatOnly(Math.log1p), FLOATS),
  unaryKernel("Sqrt", floatOnly(Math.sqrt), FLOATS),
  unaryKernel("Rsqrt", floatOnly((x) => 1 / Math.sqrt(x)), FLOATS),
  unaryKernel("Reciprocal", floatOnly((x) => 1 / x), FLOATS),
  unaryKernel("Inv", floatOnly((x) => 1 / x), FLOATS),
  unaryKernel("Floor", floatOnly(Math.floor), FLOATS),
  unaryKernel("Ceil", floatOnly(Math.ceil), FLOATS),
  unaryKernel(
    "Round",
    { float: roundHalfEven, int: (x) => x, int64: (x) => x },
    [...FLOATS, T.DT_INT8, T.DT_INT16, T.DT_INT32, T.DT_INT64],
  ),
  unaryKernel("Rint", floatOnly(roundHalfEven), FLOATS),
  unaryKernel("Sin", floatOnly(Math.sin), FLOATS),
  unaryKernel("Cos", floatOnly(Math.cos), FLOATS),
  unaryKernel("Tan", floatOnly(Math.tan), FLOATS),
  unaryKernel("Asin", floatOnly(Math.asin), FLOATS),
  unaryKernel("Acos", floatOnly(Math.acos), FLOATS),
  unaryKernel("Atan", floatOnly(Math.atan), FLOATS),
  unaryKernel("Sinh", floatOnly(Math.sinh), FLOATS),
  unaryKernel("Cosh", floatOnly(Math.cosh), FLOATS),
  // float32 (and the 16-bit floats, computed in float32) use Eigen's float approximation, as
  // TensorFlow does; float64 an accurate one.
  unaryKernel("Erf", { float: erfFloat32, double: erfFloat64 }, FLOATS),
  // Computed in double and rounded to the element type (float32 agrees with std::erfc's float
  // overload to the last bit or so).
  unaryKernel("Erfc", floatOnly(erfcFloat64), FLOATS),
  unaryKernel("IsNan", floatOnly((x) => (x !== x ? 1 : 0)), FLOATS, { out: T.DT_BOOL }),
  unaryKernel(
    "IsInf",
    floatOnly((x) => (x === Infinity || x === -Infinity ? 1 : 0)),
    FLOATS,
    { out: T.DT_BOOL },
  ),
  unaryKernel(
    "IsFinite",
    floatOnly((x) => (x - x === 0 ? 1 : 0)),
    FLOATS,
    { out: T.DT_BOOL },
  ),
  unaryKernel("LogicalNot", { bool: (x) => (x === 0 ? 1 : 0) }, [T.DT_BOOL]),
];

// ---------------------------------------------------------------------------------------------
// Binary ops
// ---------------------------------------------------------------------------------------------

const add = {
  float: (a: number, b: number) => a + b,
  int: (a: number, b: number) => a + b,
  int64: (a: bigint, b: bigint) => a + b,
};
const sub = {
  float: (a: number, b: number) => a - b,
  int: (a: number, b: number) => a - b,
  int64: (a: bigint, b: bigint) => a - b,
};
const mul = {
  float: (a: number, b: number) => a * b,
  int: Math.imul,
  int64: (a: bigint, b: bigint) => a * b,
};

/** Comparison functions over numbers, bigints and (for Equal/NotEqual) bools and strings. */
function comparison(
  num: (a: number, b: number) => boolean,
  big: (a: bigint, b: bigint) => boolean,
) {
  return {
    float: (a: number, b: number) => (num(a, b) ? 1 : 0),
    int: (a: number, b: number) => (num(a, b) ? 1 : 0),
    int64: (a: bigint, b: bigint) => (big(a, b) ? 1 : 0),
    bool: (a: number, b: number) => (num(a, b) ? 1 : 0),
  };
}

const BOOL_OUT = { out: T.DT_BOOL };

const binaryKernels: Kernel[] = [
  binaryKernel(
    "Add",
    { ...add, string: concatBytes },
    [...REALS, T.DT_STRING],
  ),
  binaryKernel("AddV2", add, REALS),
  binaryKernel("Sub", sub, REALS),
  binaryKernel("Mul", mul, REALS),
  binaryKernel("RealDiv", { float: (a, b) => a / b }, FLOATS),
  binaryKernel("Div", { float: (a, b) => a / b, int: truncDivInt, int64: truncDivBig }, REALS),
  binaryKernel("TruncateDiv", { int: truncDivInt, int64: truncDivBig }, INTS),
  binaryKernel(
    "FloorDiv",
    { float: (a, b) => Math.floor(a / b), int: floorDivInt, int64: floorDivBig },
    REALS,
  ),
  binaryKernel(
    "FloorMod",
    { float: floorModNumber, int: floorModInt, int64: floorModBig },
    REALS,
  ),
  binaryKernel("TruncateMod", { float: (a, b) => a % b, int: truncModInt, int64: truncModBig }, [
    T.DT_FLOAT,
    T.DT_DOUBLE,
    ...INTS,
  ]),
  binaryKernel("Mod", { float: (a, b) => a % b, int: truncModInt, int64: truncModBig }, [
    T.DT_FLOAT,
    T.DT_DOUBLE,
    ...INTS,
  ]),
  binaryKernel(
    "Maximum",
    { float: maxNaN, int: (a, b) => (a < b ? b : a), int64: (a, b) => (a < b ? b : a) },
    REALS,
  ),
  binaryKernel(
    "Minimum",
    { float: minNaN, int: (a, b) => (b < a ? b : a), int64: (a, b) => (b < a ? b : a) },
    REALS,
  ),
  binaryKernel("Pow", { float: powFloat, int: powInt, int64: powBig }, [
    ...FLOATS,
    T.DT_INT8,
    T.DT_INT16,
    T.DT_INT32,
    T.DT_INT64,
  ]),
  binaryKernel(
    "SquaredDifference",
    {
      float: (a, b) => (a - b) * (a - b),
      int: (a, b) => {
        const d = (a - b) | 0;
        return Math.imul(d, d);
      },
      int64: (a, b) => (a - b) * (a - b),
    },
    REALS,
  ),
  binaryKernel("DivNoNan", { float: (a, b) => (b === 0 ? 0 : a / b) }, FLOATS),
  binaryKernel("MulNoNan", { float: (a, b) => (b === 0 ? 0 : a * b) }, FLOATS),
  binaryKernel("Atan2", { float: Math.atan2 }, FLOATS),
  binaryKernel(
    "Equal",
    {
      ...comparison((a, b) => a === b, (a, b) => a === b),
      string: (a, b) => (bytesEqual(a, b) ? 1 : 0),
    },
    [...REALS, T.DT_BOOL, T.DT_STRING],
    { out: T.DT_BOOL, incompatibleShapeResult: false },
  ),
  binaryKernel(
    "NotEqual",
    {
      ...comparison((a, b) => a !== b, (a, b) => a !== b),
      string: (a, b) => (bytesEqual(a, b) ? 0 : 1),
    },
    [...REALS, T.DT_BOOL, T.DT_STRING],
    { out: T.DT_BOOL, incompatibleShapeResult: true },
  ),
  binaryKernel("Less", comparison((a, b) => a < b, (a, b) => a < b), REALS, BOOL_OUT),
  binaryKernel("LessEqual", comparison((a, b) => a <= b, (a, b) => a <= b), REALS, BOOL_OUT),
  binaryKernel("Greater", comparison((a, b) => a > b, (a, b) => a > b), REALS, BOOL_OUT),
  binaryKernel(
    "GreaterEqual",
    comparison((a, b) => a >= b, (a, b) => a >= b),
    REALS,
    BOOL_OUT,
  ),
  binaryKernel("LogicalAnd", { bool: (a, b) => a & b }, [T.DT_BOOL]),
  binaryKernel("LogicalOr", { bool: (a, b) => a | b }, [T.DT_BOOL]),
];

// ---------------------------------------------------------------------------------------------
// AddN
// ---------------------------------------------------------------------------------------------

interface AccumulateLoop {
  (o: NumericArray, x: NumericArray, n: number): void;
}

const ACCUMULATE_SOURCE =
  "return function (o, x, n) { for (let i = 0; i < n; i++) o[i] = o[i] + x[i]; };";

const addNLoops = new Map<DataType, AccumulateLoop>();

/** AddN: the sum of N tensors of one shape, added left to right in the element type. */
const addNKernel: Kernel = {
  op: "AddN",
  compile(ctx) {
    const node = ctx.name;
    if (ctx.attr.has("T")) checkAllowed("AddN", node, REALS, ctx.attr.type("T"));
    return (inputs) => {
      const first = inputs[0];
      if (inputs.length === 1) return [first];
      for (let i = 1; i < inputs.length; i++) {
        const t = inputs[i];
        if (t.dtype !== first.dtype) {
          throw invalidArgument(
            `AddN needs inputs of one type, got ${dtypeName(first.dtype)} and ` +
              `${dtypeName(t.dtype)} (node "${node}")`,
          );
        }
        if (!sameShape(t.shape, first.shape)) {
          throw invalidArgument(
            `Inputs to operation ${node} of type AddN must have the same size and shape.  ` +
              `Input 0: ${shapeString(first.shape)} != input ${i}: ${shapeString(t.shape)}`,
          );
        }
      }
      const dtype = first.dtype;
      if (!REALS.includes(dtype)) throw unsupportedDtype("AddN", node, dtype);
      const half = isFloat16(dtype);
      const work = half ? T.DT_FLOAT : dtype;
      let loop = addNLoops.get(work);
      if (loop === undefined) {
        addNLoops.set(work, loop = specialize<AccumulateLoop>([], ACCUMULATE_SOURCE));
      }
      const read = (t: Tensor): NumericArray =>
        half ? decodeFloat16(t.data as Uint16Array, dtype) : t.numbers;
      const n = first.size;
      const out = allocate(work, n);
      out.set(read(first) as never);
      for (let i = 1; i < inputs.length; i++) loop(out, read(inputs[i]), n);
      const data = half ? encodeFloat16(out as Float32Array, dtype) : out;
      return [new Tensor(dtype, first.shape, data)];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Cast
// ---------------------------------------------------------------------------------------------

/** TensorFlow's short type name (DataTypeString): DT_FLOAT → "float". */
function tfTypeName(dtype: DataType): string {
  return dtypeName(dtype).replace(/^DT_/, "").toLowerCase();
}

const CASTABLE = new Set<DataType>([
  ...REALS,
  T.DT_BOOL,
  T.DT_COMPLEX64,
  T.DT_COMPLEX128,
]);

const TWO_31 = 2 ** 31;
const TWO_63 = 2 ** 63;
const TWO_64 = 2 ** 64;
const INT64_MIN = -(2n ** 63n);

/**
 * The source of a cast as plain values: numbers (floats, 8–32-bit ints, bools, the real part of
 * complex numbers, decoded 16-bit floats) or bigints (int64/uint64).
 */
function castSource(t: Tensor): NumericArray {
  const d = t.data as NumericArray;
  if (isFloat16(t.dtype)) return decodeFloat16(d as Uint16Array, t.dtype);
  if (t.dtype === T.DT_COMPLEX64 || t.dtype === T.DT_COMPLEX128) {
    const re = t.dtype === T.DT_COMPLEX64 ? new Float32Array(t.size) : new Float64Array(t.size);
    for (let i = 0; i < re.length; i++) re[i] = (d as Float32Array)[2 * i];
    return re;
  }
  return d;
}

/** Whether the source values are floating point (so casts to integers truncate and clamp). */
function isFloatSource(dtype: DataType): boolean {
  return elementKind(dtype) === "float" || dtype === T.DT_COMPLEX64 ||
    dtype === T.DT_COMPLEX128;
}

/**
 * Converts `t` to `dst`. Float to integer truncates toward zero as C++ static_cast does; values
 * the target can't hold (and NaN) give what x86 gives: INT32_MIN for 8- to 32-bit signed and
 * 8/16-bit unsigned targets (then wrapped to the width: NaN → 0 for int8/int16/uint8/uint16),
 * INT64_MIN for int64, 0 for uint32 (its low bits of INT64_MIN), and 2^63 for uint64.
 * Integer to narrower integer wraps. Anything to bool is `!= 0` (NaN → true). Complex to real
 * keeps the real part. With `truncate`, float32 → half/bfloat16 and float64 → float32 drop the
 * low mantissa bits instead of rounding, as TensorFlow's Truncate attr does.
 */
function castTensor(t: Tensor, dst: DataType, truncate: boolean): Tensor {
  const src = t.dtype;
  const n = t.size;
  if (dst === T.DT_COMPLEX64 || dst === T.DT_COMPLEX128) {
    const out = allocate(dst, n) as Float32Array | Float64Array;
    if (src === T.DT_COMPLEX64 || src === T.DT_COMPLEX128) {
      out.set(t.data as Float32Array | Float64Array);
    } else {
      const v = castSource(t);
      for (let i = 0; i < n; i++) out[2 * i] = Number(v[i]);
    }
    return new Tensor(dst, t.shape, out);
  }
  if (dst === T.DT_BOOL) {
    const out = new Uint8Array(n);
    const d = t.data as NumericArray;
    if (src === T.DT_COMPLEX64 || src === T.DT_COMPLEX128) {
      for (let i = 0; i < n; i++) out[i] = d[2 * i] !== 0 || d[2 * i + 1] !== 0 ? 1 : 0;
    } else {
      const v = castSource(t);
      if (v instanceof BigInt64Array || v instanceof BigUint64Array) {
        for (let i = 0; i < n; i++) out[i] = v[i] !== 0n ? 1 : 0;
      } else {
        for (let i = 0; i < n; i++) out[i] = v[i] !== 0 ? 1 : 0;
      }
    }
    return new Tensor(dst, t.shape, out);
  }
  if (isFloat16(dst)) {
    const f32 = castTensor(t, T.DT_FLOAT, truncate && src === T.DT_DOUBLE);
    const bits = encodeFloat16(f32.data as Float32Array, dst, truncate);
    return new Tensor(dst, t.shape, bits);
  }
  const v = castSource(t);
  const out = allocate(dst, n);
  const bigSrc = v instanceof BigInt64Array || v instanceof BigUint64Array;
  if (dst === T.DT_FLOAT || dst === T.DT_DOUBLE) {
    if (bigSrc) {
      for (let i = 0; i < n; i++) out[i] = Number(v[i]);
    } else if (truncate && src === T.DT_DOUBLE && dst === T.DT_FLOAT) {
      // Clear the 29 mantissa bits float32 lacks, so the rounding store truncates.
      const f = new Float64Array(v as Float64Array);
      const w = new Uint32Array(f.buffer);
      for (let i = 0; i < n; i++) w[2 * i] &= 0xe0000000;
      (out as Float64Array).set(f);
    } else {
      (out as Float64Array).set(v as Float64Array); // exact, or rounded to nearest as static_cast does
    }
    return new Tensor(dst, t.shape, out);
  }
  if (dst === T.DT_INT64 || dst === T.DT_UINT64) {
    const o = out as BigInt64Array;
    if (bigSrc) {
      o.set(v as BigInt64Array); // reinterprets between int64 and uint64 with wrap-around
    } else if (isFloatSource(src)) {
      const unsigned = dst === T.DT_UINT64;
      for (let i = 0; i < n; i++) {
        const x = v[i] as number;
        if (x > -TWO_63 && x < (unsigned ? TWO_64 : TWO_63)) o[i] = BigInt(Math.trunc(x));
        else o[i] = unsigned ? 2n ** 63n : INT64_MIN;
      }
    } else {
      for (let i = 0; i < n; i++) o[i] = BigInt(v[i] as number);
    }
    return new Tensor(dst, t.shape, out);
  }
  // 8- to 32-bit integer targets: the typed-array store truncates and wraps to the width.
  if (bigSrc) {
    for (let i = 0; i < n; i++) out[i] = Number(BigInt.asIntN(32, v[i] as bigint));
  } else if (isFloatSource(src)) {
    if (dst === T.DT_UINT32) {
      // Compilers convert through int64 here: out-of-range and NaN give INT64_MIN, whose low
      // 32 bits are 0.
      for (let i = 0; i < n; i++) {
        const x = v[i] as number;
        out[i] = x > -TWO_63 && x < TWO_63 ? x : 0;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const x = v[i] as number;
        out[i] = x > -TWO_31 - 1 && x < TWO_31 ? x : -TWO_31;
      }
    }
  } else {
    (out as Int32Array).set(v as Int32Array);
  }
  return new Tensor(dst, t.shape, out);
}

/** Cast: attrs SrcT, DstT, Truncate. */
const castKernel: Kernel = {
  op: "Cast",
  compile(ctx) {
    const node = ctx.name;
    const dst = ctx.attr.type("DstT");
    const truncate = ctx.attr.bool("Truncate", false);
    const check = (src: DataType) => {
      if (src !== dst && (!CASTABLE.has(src) || !CASTABLE.has(dst))) {
        throw new ServingError(
          Code.UNIMPLEMENTED,
          `Cast ${tfTypeName(src)} to ${tfTypeName(dst)} is not supported (node "${node}")`,
        );
      }
    };
    if (ctx.attr.has("SrcT")) check(ctx.attr.type("SrcT"));
    return (inputs) => {
      const x = inputs[0];
      if (x.dtype === dst) return [x];
      check(x.dtype);
      return [castTensor(x, dst, truncate)];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// MatMul
// ---------------------------------------------------------------------------------------------

/**
 * out[M,N] = op(A) · op(B) for matrices at offsets in flat storage; op transposes when `ta`/`tb`.
 * The element type's arithmetic comes from `add`, `mul`, `zero` and the accumulator array `Acc`.
 */
type Gemm = (
  a: NumericArray,
  aOff: number,
  b: NumericArray,
  bOff: number,
  o: NumericArray,
  oOff: number,
  M: number,
  K: number,
  N: number,
  ta: boolean,
  tb: boolean,
) => void;

// Two loop orders. When B is transposed (its rows are our columns; with many rows of A it is
// transposed back first) or N is small, each output is a dot product, computed four outputs at a time so each A element is loaded once per four
// products. Otherwise i-k-j: four rows of A at a time sweep rows of B, accumulating four output
// rows, which reads B once per four rows and keeps every inner access contiguous.
const GEMM_SOURCE = `return function gemm(a, aOff, b, bOff, o, oOff, M, K, N, ta, tb) {
  const ais = ta ? 1 : K, aks = ta ? M : 1;
  if (tb && M >= 8 && N > 16) {
    // Enough rows to pay for transposing B once and taking the faster i-k-j path.
    const t = new b.constructor(K * N);
    for (let j = 0; j < N; j++) {
      for (let k = 0, src = bOff + j * K; k < K; k++) t[k * N + j] = b[src + k];
    }
    b = t; bOff = 0; tb = false;
  }
  if (tb || N <= 16) {
    const bjs = tb ? K : 1, bks = tb ? 1 : N;
    const b1 = bjs, b2 = 2 * bjs, b3 = 3 * bjs;
    for (let i = 0; i < M; i++) {
      const ai = aOff + i * ais, oi = oOff + i * N;
      let j = 0;
      for (; j + 4 <= N; j += 4) {
        let s0 = zero, s1 = zero, s2 = zero, s3 = zero;
        for (let k = 0, ak = ai, bk = bOff + j * bjs; k < K; k++, ak += aks, bk += bks) {
          const av = a[ak];
          s0 = add(s0, mul(av, b[bk]));
          s1 = add(s1, mul(av, b[bk + b1]));
          s2 = add(s2, mul(av, b[bk + b2]));
          s3 = add(s3, mul(av, b[bk + b3]));
        }
        o[oi + j] = s0; o[oi + j + 1] = s1; o[oi + j + 2] = s2; o[oi + j + 3] = s3;
      }
      for (; j < N; j++) {
        let s = zero;
        for (let k = 0, ak = ai, bk = bOff + j * bjs; k < K; k++, ak += aks, bk += bks) {
          s = add(s, mul(a[ak], b[bk]));
        }
        o[oi + j] = s;
      }
    }
    return;
  }
  const acc = new Acc(4 * N);
  const N2 = 2 * N, N3 = 3 * N;
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    acc.fill(zero);
    const a0 = aOff + i * ais, a1 = a0 + ais, a2 = a1 + ais, a3 = a2 + ais;
    for (let k = 0, ko = 0, bo = bOff; k < K; k++, ko += aks, bo += N) {
      const v0 = a[a0 + ko], v1 = a[a1 + ko], v2 = a[a2 + ko], v3 = a[a3 + ko];
      for (let j = 0; j < N; j++) {
        const bv = b[bo + j];
        acc[j] = add(acc[j], mul(v0, bv));
        acc[N + j] = add(acc[N + j], mul(v1, bv));
        acc[N2 + j] = add(acc[N2 + j], mul(v2, bv));
        acc[N3 + j] = add(acc[N3 + j], mul(v3, bv));
      }
    }
    const oi = oOff + i * N;
    for (let j = 0; j < 4 * N; j++) o[oi + j] = acc[j];
  }
  for (; i < M; i++) {
    acc.fill(zero, 0, N);
    for (let k = 0, ak = aOff + i * ais, bo = bOff; k < K; k++, ak += aks, bo += N) {
      const v = a[ak];
      for (let j = 0; j < N; j++) acc[j] = add(acc[j], mul(v, b[bo + j]));
    }
    const oi = oOff + i * N;
    for (let j = 0; j < N; j++) o[oi + j] = acc[j];
  }
};`;

const gemms = new Map<DataType, Gemm>();

/** The matrix product loop for a dtype (float32/float64 accumulate in double). */
function gemmFor(dtype: DataType): Gemm {
  let g = gemms.get(dtype);
  if (g !== undefined) return g;
  const params = ["add", "mul", "zero", "Acc"];
  switch (dtype) {
    case T.DT_FLOAT:
    case T.DT_DOUBLE:
      g = specialize<Gemm>(
        params,
        GEMM_SOURCE,
        (s: number, p: number) => s + p,
        (x: number, y: number) => x * y,
        0,
        Float64Array,
      );
      break;
    case T.DT_INT32:
      g = specialize<Gemm>(
        params,
        GEMM_SOURCE,
        (s: number, p: number) => (s + p) | 0,
        Math.imul,
        0,
        Float64Array,
      );
      break;
    default: // DT_INT64
      g = specialize<Gemm>(
        params,
        GEMM_SOURCE,
        (s: bigint, p: bigint) => BigInt.asIntN(64, s + p),
        (x: bigint, y: bigint) => x * y,
        0n,
        BigInt64Array,
      );
  }
  gemms.set(dtype, g);
  return g;
}

const MATMUL_TYPES = [T.DT_FLOAT, T.DT_DOUBLE, T.DT_HALF, T.DT_BFLOAT16, T.DT_INT32, T.DT_INT64];

/** Storage to multiply: 16-bit floats decoded to float32. */
function gemmInput(t: Tensor): NumericArray {
  return isFloat16(t.dtype) ? decodeFloat16(t.data as Uint16Array, t.dtype) : t.numbers;
}

/** Wraps a gemm result in the output dtype (16-bit floats encoded back). */
function gemmOutput(dtype: DataType, shape: Shape, data: NumericArray): Tensor {
  if (isFloat16(dtype)) return new Tensor(dtype, shape, encodeFloat16(data as Float32Array, dtype));
  return new Tensor(dtype, shape, data);
}

function checkSameType(op: string, node: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) {
    throw invalidArgument(
      `${op} needs two inputs of one type, got ${dtypeName(a.dtype)} and ` +
        `${dtypeName(b.dtype)} (node "${node}")`,
    );
  }
  if (!MATMUL_TYPES.includes(a.dtype)) throw unsupportedDtype(op, node, a.dtype);
}

/**
 * MatMul: attrs transpose_a, transpose_b. float32 products with a persistent right-hand operand
 * and no transpose_a run in the WebAssembly SIMD kernel; the rest in the JavaScript loops.
 */
const matMulKernel: Kernel = {
  op: "MatMul",
  compile(ctx) {
    const node = ctx.name;
    if (ctx.attr.has("T")) checkAllowed("MatMul", node, MATMUL_TYPES, ctx.attr.type("T"));
    const ta = ctx.attr.bool("transpose_a", false);
    const tb = ctx.attr.bool("transpose_b", false);
    // Only weights (constants, variables) go to WebAssembly (see isWeightSource).
    const wasm = !ta && isWeightSource(ctx.inputOps[1] ?? "");
    return (inputs) => {
      const [a, b] = inputs;
      checkSameType("MatMul", node, a, b);
      if (a.rank !== 2) {
        throw invalidArgument(
          `In[0] is not a matrix. Instead it has shape ${shapeString(a.shape)}`,
        );
      }
      if (b.rank !== 2) {
        throw invalidArgument(
          `In[1] is not a matrix. Instead it has shape ${shapeString(b.shape)}`,
        );
      }
      const M = ta ? a.shape[1] : a.shape[0];
      const K = ta ? a.shape[0] : a.shape[1];
      const K2 = tb ? b.shape[1] : b.shape[0];
      const N = tb ? b.shape[0] : b.shape[1];
      if (K !== K2) {
        throw invalidArgument(
          `Matrix size-incompatible: In[0]: ${shapeString(a.shape)}, In[1]: ${
            shapeString(b.shape)
          }`,
        );
      }
      if (wasm && a.dtype === T.DT_FLOAT) {
        // WebAssembly SIMD, accumulating in float32 as TensorFlow's Eigen kernel does; null
        // (no SIMD, switched off, out of memory, empty product) falls through to the loops.
        const y = denseF32(
          a.data as Float32Array,
          b.data as Float32Array,
          null,
          M,
          K,
          N,
          tb,
          false,
        );
        if (y !== null) return [new Tensor(T.DT_FLOAT, [M, N], y)];
      }
      const work = isFloat16(a.dtype) ? T.DT_FLOAT : a.dtype;
      const out = allocate(work, M * N);
      gemmFor(work)(gemmInput(a), 0, gemmInput(b), 0, out, 0, M, K, N, ta, tb);
      return [gemmOutput(a.dtype, [M, N], out)];
    };
  },
};

/**
 * Batched products: for every index of the broadcast `batch` shape, the M×N product of the
 * matching matrices of `a` (batch dims `aBatch`, then M×K, or K×M with `ta`) and `b` (batch dims
 * `bBatch`, then K×N, or N×K with `tb`). Shared by BatchMatMul and Einsum.
 */
function batchedGemm(
  work: DataType,
  a: NumericArray,
  aBatch: Shape,
  b: NumericArray,
  bBatch: Shape,
  batch: Shape,
  M: number,
  K: number,
  N: number,
  ta: boolean,
  tb: boolean,
): NumericArray {
  const gemm = gemmFor(work);
  const mn = M * N;
  const out = allocate(work, sizeOf(batch) * mn);
  const plan = stridedPlan([aBatch, bBatch], batch);
  const r = plan.dims.length;
  const n0 = plan.dims[r - 2], n1 = plan.dims[r - 1];
  const [sx, sy] = plan.strides;
  const am = M * K, bm = K * N;
  forEachBlock(plan, (off, first) => {
    let o = first * mn;
    for (let i = 0; i < n0; i++) {
      let xi = off[0] + i * sx[r - 2];
      let yi = off[1] + i * sy[r - 2];
      for (let j = 0; j < n1; j++, xi += sx[r - 1], yi += sy[r - 1], o += mn) {
        gemm(a, xi * am, b, yi * bm, out, o, M, K, N, ta, tb);
      }
    }
  });
  return out;
}

/**
 * BatchMatMul (V1: equal batch dims), BatchMatMulV2 and V3 (broadcast batch dims): attrs
 * adj_x, adj_y (adjoint = transpose for real types).
 */
function batchMatMulKernel(op: "BatchMatMul" | "BatchMatMulV2" | "BatchMatMulV3"): Kernel {
  return {
    op,
    compile(ctx) {
      const node = ctx.name;
      const adjX = ctx.attr.bool("adj_x", false);
      const adjY = ctx.attr.bool("adj_y", false);
      if (op === "BatchMatMulV3") {
        const ta = ctx.attr.type("Ta");
        const tb = ctx.attr.type("Tb");
        const tout = ctx.attr.type("Tout");
        if (ta !== tb || ta !== tout) {
          throw new ServingError(
            Code.UNIMPLEMENTED,
            `BatchMatMulV3 with Ta=${dtypeName(ta)}, Tb=${dtypeName(tb)}, Tout=${
              dtypeName(tout)
            } is not implemented (node "${node}")`,
          );
        }
        checkAllowed(op, node, MATMUL_TYPES, ta);
      } else if (ctx.attr.has("T")) {
        checkAllowed(op, node, MATMUL_TYPES, ctx.attr.type("T"));
      }
      return (inputs) => {
        const [x, y] = inputs;
        checkSameType(op, node, x, y);
        const rx = x.rank;
        const ry = y.rank;
        if (op === "BatchMatMul") {
          if (rx !== ry) {
            throw invalidArgument(
              `In[0] and In[1] has different ndims: ${shapeString(x.shape)} vs. ${
                shapeString(y.shape)
              }`,
            );
          }
          if (rx < 2) throw invalidArgument(`In[0] ndims must be >= 2: ${rx}`);
          for (let i = 0; i < rx - 2; i++) {
            if (x.shape[i] !== y.shape[i]) {
              throw invalidArgument(
                `In[0].dim(${i}) and In[1].dim(${i}) must be the same: ${shapeString(x.shape)} vs ${
                  shapeString(y.shape)
                }`,
              );
            }
          }
        }
        if (rx < 2) throw invalidArgument(`In[0] ndims must be >= 2: ${rx}`);
        if (ry < 2) throw invalidArgument(`In[1] ndims must be >= 2: ${ry}`);
        const xBatch = x.shape.slice(0, rx - 2);
        const yBatch = y.shape.slice(0, ry - 2);
        let batch: number[];
        try {
          batch = broadcastShapes(xBatch, yBatch);
        } catch {
          throw invalidArgument(
            `In[0] and In[1] must have compatible batch dimensions: ${shapeString(x.shape)} vs. ${
              shapeString(y.shape)
            }`,
          );
        }
        const xr = x.shape[rx - 2], xc = x.shape[rx - 1];
        const yr = y.shape[ry - 2], yc = y.shape[ry - 1];
        const M = adjX ? xc : xr;
        const K = adjX ? xr : xc;
        const K2 = adjY ? yc : yr;
        const N = adjY ? yr : yc;
        if (K !== K2) {
          throw invalidArgument(
            `In[0] mismatch In[1] shape: ${K} vs. ${K2}: ${shapeString(x.shape)} ${
              shapeString(y.shape)
            } ${adjX ? 1 : 0} ${adjY ? 1 : 0}`,
          );
        }
        const work = isFloat16(x.dtype) ? T.DT_FLOAT : x.dtype;
        const out = batchedGemm(
          work,
          gemmInput(x),
          xBatch,
          gemmInput(y),
          yBatch,
          batch,
          M,
          K,
          N,
          adjX,
          adjY,
        );
        return [gemmOutput(x.dtype, [...batch, M, N], out)];
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

/** The smallest and largest value of a dtype (floats: ±Infinity). */
function typeRange(dtype: DataType): [number | bigint, number | bigint] {
  switch (dtype) {
    case T.DT_INT8:
      return [-128, 127];
    case T.DT_INT16:
      return [-32768, 32767];
    case T.DT_INT32:
      return [-TWO_31, TWO_31 - 1];
    case T.DT_UINT8:
      return [0, 255];
    case T.DT_UINT16:
      return [0, 65535];
    case T.DT_UINT32:
      return [0, 2 ** 32 - 1];
    case T.DT_INT64:
      return [INT64_MIN, 2n ** 63n - 1n];
    case T.DT_UINT64:
      return [0n, 2n ** 64n - 1n];
    default:
      return [-Infinity, Infinity];
  }
}

/** One reduction: its dtypes, identity, and per-kind step functions. */
interface ReducerSpec {
  readonly op: string;
  readonly dtypes: readonly DataType[];
  /** The identity (the result over no elements, except Mean). */
  identity(dtype: DataType): number | bigint;
  readonly step: {
    readonly float?: (acc: number, x: number) => number;
    readonly int?: (acc: number, x: number) => number;
    readonly int64?: (acc: bigint, x: bigint) => bigint;
    readonly bool?: (acc: number, x: number) => number;
  };
  /** Divides by the count at the end (Mean). */
  readonly mean?: boolean;
}

const zeroOf = (dtype: DataType) => (elementKind(dtype) === "int64" ? 0n : 0);
const oneOf = (dtype: DataType) => (elementKind(dtype) === "int64" ? 1n : 1);

const sumSteps = {
  float: (acc: number, x: number) => acc + x,
  int: (acc: number, x: number) => (acc + x) | 0,
  int64: (acc: bigint, x: bigint) => acc + x,
};

const REDUCERS: readonly ReducerSpec[] = [
  { op: "Sum", dtypes: REALS, identity: zeroOf, step: sumSteps },
  { op: "Mean", dtypes: REALS, identity: zeroOf, step: sumSteps, mean: true },
  {
    op: "Prod",
    dtypes: REALS,
    identity: oneOf,
    step: {
      float: (acc, x) => acc * x,
      int: Math.imul,
      int64: (acc, x) => BigInt.asIntN(64, acc * x),
    },
  },
  {
    op: "Max",
    dtypes: REALS,
    identity: (d) => typeRange(d)[0],
    step: {
      float: (acc, x) => (x > acc || x !== x ? x : acc),
      int: (acc, x) => (x > acc ? x : acc),
      int64: (acc, x) => (x > acc ? x : acc),
    },
  },
  {
    op: "Min",
    dtypes: REALS,
    identity: (d) => typeRange(d)[1],
    step: {
      float: (acc, x) => (x < acc || x !== x ? x : acc),
      int: (acc, x) => (x < acc ? x : acc),
      int64: (acc, x) => (x < acc ? x : acc),
    },
  },
  { op: "All", dtypes: [T.DT_BOOL], identity: () => 1, step: { bool: (acc, x) => acc & x } },
  { op: "Any", dtypes: [T.DT_BOOL], identity: () => 0, step: { bool: (acc, x) => acc | x } },
];

interface ReduceLoops {
  /** Folds x[off..off+n) into `acc` and returns it. */
  run(x: NumericArray, off: number, n: number, acc: unknown): unknown;
  /** acc[ao+j] = step(acc[ao+j], x[off+j]) for j < n. */
  rows(x: NumericArray, off: number, n: number, acc: NumericArray, ao: number): void;
}

const REDUCE_SOURCE = `return {
  run(x, off, n, acc) { for (let i = off, e = off + n; i < e; i++) acc = step(acc, x[i]); return acc; },
  rows(x, off, n, acc, ao) { for (let j = 0; j < n; j++) acc[ao + j] = step(acc[ao + j], x[off + j]); },
};`;

/** How one reduction walks its input: runs of kept and reduced dims, as TensorFlow simplifies. */
interface ReducePlan {
  readonly inShape: readonly number[];
  readonly axes: readonly number[];
  readonly outShape: number[];
  readonly outSize: number;
  /** Input elements per output element. */
  readonly count: number;
  /** Alternating runs of collapsed dims; empty when nothing is reduced. */
  readonly runs: { size: number; reduced: boolean }[];
}

/** Reads and checks the axis input: scalar or vector, int32 or int64, in [-rank, rank). */
function readAxes(axis: Tensor, rank: number): number[] {
  if (axis.rank > 1) {
    throw invalidArgument(
      `Expected the reduction axes to be a scalar or a vector, got shape ${
        shapeString(axis.shape)
      }`,
    );
  }
  const axes = toIntArray(axis, "reduction axes");
  for (const a of axes) {
    if (a < -rank || a >= rank) {
      throw invalidArgument(
        `Invalid reduction dimension (${a} for input with ${rank} dimension(s)`,
      );
    }
  }
  return axes;
}

function planReduction(shape: readonly number[], axes: readonly number[], keep: boolean) {
  const rank = shape.length;
  const reduced = new Array<boolean>(rank).fill(false);
  for (const a of axes) reduced[a < 0 ? a + rank : a] = true;
  const outShape: number[] = [];
  let outSize = 1;
  let count = 1;
  for (let i = 0; i < rank; i++) {
    if (!reduced[i]) {
      outShape.push(shape[i]);
      outSize *= shape[i];
    } else {
      if (keep) outShape.push(1);
      count *= shape[i];
    }
  }
  // Dims of size 1 change nothing; adjacent dims of the same kind merge into one run.
  const runs: { size: number; reduced: boolean }[] = [];
  for (let i = 0; i < rank; i++) {
    if (shape[i] === 1) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.reduced === reduced[i]) last.size *= shape[i];
    else runs.push({ size: shape[i], reduced: reduced[i] });
  }
  const plan: ReducePlan = {
    inShape: shape,
    axes,
    outShape,
    outSize,
    count,
    runs: runs.some((r) => r.reduced) ? runs : [],
  };
  return plan;
}

/** Folds `x` into `acc` (one slot per output element) following `plan`. */
function reduceInto(
  loops: ReduceLoops,
  plan: ReducePlan,
  x: NumericArray,
  acc: NumericArray,
): void {
  const runs = plan.runs;
  const last = runs[runs.length - 1];
  const seg = last.size;
  const total = x.length;
  if (total === 0) return;
  // Output stride of each earlier run: kept runs are laid out row-major in the output.
  const outer = runs.length - 1;
  const os = new Array<number>(outer);
  let stride = last.reduced ? 1 : seg;
  for (let d = outer - 1; d >= 0; d--) {
    if (runs[d].reduced) os[d] = 0;
    else {
      os[d] = stride;
      stride *= runs[d].size;
    }
  }
  const idx = new Array<number>(outer).fill(0);
  let outOff = 0;
  const accArr = acc as unknown as unknown[];
  for (let off = 0; off < total; off += seg) {
    if (last.reduced) accArr[outOff] = loops.run(x, off, seg, accArr[outOff]);
    else loops.rows(x, off, seg, acc, outOff);
    for (let d = outer - 1; d >= 0; d--) {
      idx[d]++;
      outOff += os[d];
      if (idx[d] < runs[d].size) break;
      outOff -= os[d] * runs[d].size;
      idx[d] = 0;
    }
  }
}

/** A reduction kernel: inputs (input, axis); attrs keep_dims, T, Tidx. */
function reductionKernel(spec: ReducerSpec): Kernel {
  const loopsByType = new Map<DataType, ReduceLoops>();
  const loopsFor = (dtype: DataType): ReduceLoops => {
    let l = loopsByType.get(dtype);
    if (l === undefined) {
      const kind = elementKind(dtype) as keyof ReducerSpec["step"];
      l = specialize<ReduceLoops>(["step"], REDUCE_SOURCE, spec.step[kind]);
      loopsByType.set(dtype, l);
    }
    return l;
  };
  return {
    op: spec.op,
    compile(ctx) {
      const node = ctx.name;
      const keep = ctx.attr.bool("keep_dims", false);
      if (ctx.attr.has("T")) checkAllowed(spec.op, node, spec.dtypes, ctx.attr.type("T"));
      let cached: ReducePlan | undefined;
      return (inputs) => {
        const [input, axis] = inputs;
        const dtype = input.dtype;
        if (!spec.dtypes.includes(dtype)) throw unsupportedDtype(spec.op, node, dtype);
        const axes = readAxes(axis, input.rank);
        // Shapes and axes rarely change between calls of a node: reuse the last plan.
        let plan = cached;
        if (
          plan === undefined || !sameNumbers(plan.inShape, input.shape) ||
          !sameNumbers(plan.axes, axes)
        ) {
          plan = cached = planReduction(input.shape, axes, keep);
        }
        if (plan.runs.length === 0 && input.size > 0) {
          // Nothing is reduced (no axes, or only dims of size 1): the values are the input's.
          return [new Tensor(dtype, plan.outShape, input.data)];
        }
        const half = isFloat16(dtype);
        const work = half ? T.DT_FLOAT : dtype;
        const x = half ? decodeFloat16(input.data as Uint16Array, dtype) : input.numbers;
        const kind = elementKind(work);
        const acc: NumericArray = kind === "int64"
          ? allocate(work, plan.outSize)
          : new Float64Array(
            plan.outSize,
          );
        (acc as unknown as { fill(v: unknown): void }).fill(spec.identity(work));
        if (plan.runs.length > 0) reduceInto(loopsFor(work), plan, x, acc);
        let out: NumericArray;
        if (spec.mean) out = finishMean(work, acc, plan.count);
        else {
          out = allocate(work, plan.outSize);
          out.set(acc as never);
        }
        if (half) {
          return [new Tensor(dtype, plan.outShape, encodeFloat16(out as Float32Array, dtype))];
        }
        return [new Tensor(dtype, plan.outShape, out)];
      };
    },
  };
}

/**
 * Mean from sums. Floats divide (0/0 = NaN for an empty reduction, as TensorFlow gives). Integers
 * wrap the sum and the count to the type, then divide truncating; a zero count gives 0.
 */
function finishMean(dtype: DataType, sums: NumericArray, count: number): NumericArray {
  const n = sums.length;
  const out = allocate(dtype, n);
  if (elementKind(dtype) === "float") {
    for (let i = 0; i < n; i++) out[i] = (sums[i] as number) / count;
    return out;
  }
  out.set(sums as never);
  const c = allocate(dtype, 1);
  if (c instanceof BigInt64Array || c instanceof BigUint64Array) {
    c[0] = BigInt(count);
    const d = c[0];
    const o = out as BigInt64Array;
    for (let i = 0; i < n; i++) o[i] = d === 0n ? 0n : o[i] / d;
  } else {
    c[0] = count;
    const d = c[0];
    for (let i = 0; i < n; i++) out[i] = d === 0 ? 0 : Math.trunc((out[i] as number) / d);
  }
  return out;
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// ArgMax / ArgMin
// ---------------------------------------------------------------------------------------------

interface ArgLoop {
  (
    x: NumericArray,
    outer: number,
    n: number,
    inner: number,
    start: unknown,
    out: NumericArray,
  ): void;
}

// Scans each line along the axis in order and keeps the first index of the best value: a value
// replaces the best only when strictly better, so ties keep the first index and NaN never wins
// (as Eigen's argmax reducer does). `start` is the type's lowest (ArgMax) or highest (ArgMin)
// value, Eigen's initial accumulator, so an all-NaN or all-(-inf) line gives index 0.
const ARG_SOURCE = `return function (x, outer, n, inner, start, out) {
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let best = start, bi = 0;
      for (let k = 0, p = o * n; k < n; k++, p++) {
        const v = x[p];
        if (better(v, best)) { best = v; bi = k; }
      }
      out[o] = idx(bi);
    }
    return;
  }
  const bestV = new Array(inner), bestI = new Int32Array(inner);
  for (let o = 0; o < outer; o++) {
    bestV.fill(start); bestI.fill(0);
    for (let k = 0, p = o * n * inner; k < n; k++) {
      for (let j = 0; j < inner; j++, p++) {
        const v = x[p];
        if (better(v, bestV[j])) { bestV[j] = v; bestI[j] = k; }
      }
    }
    for (let j = 0; j < inner; j++) out[o * inner + j] = idx(bestI[j]);
  }
};`;

/** The lowest finite value of a float type (Eigen's NumTraits::lowest). */
function lowestFinite(dtype: DataType): number {
  switch (dtype) {
    case T.DT_FLOAT:
      return -3.4028234663852886e38;
    case T.DT_HALF:
      return -65504;
    case T.DT_BFLOAT16:
      return -3.3895313892515355e38;
    default:
      return -Number.MAX_VALUE;
  }
}

/** ArgMax or ArgMin: inputs (input, dimension); attr output_type (int32 or int64, default int64). */
function argKernel(op: "ArgMax" | "ArgMin"): Kernel {
  const loops = new Map<string, ArgLoop>();
  const max = op === "ArgMax";
  return {
    op,
    compile(ctx) {
      const node = ctx.name;
      const outType = ctx.attr.type("output_type", T.DT_INT64);
      if (outType !== T.DT_INT32 && outType !== T.DT_INT64) {
        throw new ServingError(
          Code.UNIMPLEMENTED,
          `${op} with output_type ${dtypeName(outType)} is not implemented (node "${node}")`,
        );
      }
      if (ctx.attr.has("T")) checkAllowed(op, node, REALS, ctx.attr.type("T"));
      return (inputs) => {
        const [input, dimension] = inputs;
        const dtype = input.dtype;
        if (!REALS.includes(dtype)) throw unsupportedDtype(op, node, dtype);
        if (dimension.rank !== 0) {
          throw invalidArgument(
            `dim must be a scalar, but received tensor of shape: ${shapeString(dimension.shape)}`,
          );
        }
        const dim = toIntArray(dimension, "dimension")[0];
        const rank = input.rank;
        const axis = dim < 0 ? dim + rank : dim;
        if (axis < 0 || axis >= rank) {
          throw invalidArgument(
            `Expected dimension in the range [${-rank}, ${rank}), but got ${dim}`,
          );
        }
        const shape = input.shape;
        const n = shape[axis];
        if (n === 0) {
          throw invalidArgument(
            `Reduction axis ${dim} is empty in shape ${shapeString(shape)}`,
          );
        }
        let outer = 1;
        for (let i = 0; i < axis; i++) outer *= shape[i];
        let inner = 1;
        for (let i = axis + 1; i < rank; i++) inner *= shape[i];
        const outShape = [...shape.slice(0, axis), ...shape.slice(axis + 1)];
        const out = allocate(outType, outer * inner);
        if (outer * inner === 0) return [new Tensor(outType, outShape, out)];
        const half = isFloat16(dtype);
        const x = half ? decodeFloat16(input.data as Uint16Array, dtype) : input.numbers;
        const kind = elementKind(half ? T.DT_FLOAT : dtype);
        const key = `${kind === "int64" ? "big" : "num"}:${outType}`;
        let loop = loops.get(key);
        if (loop === undefined) {
          const better = max
            ? (v: number | bigint, b: number | bigint) => v > b
            : (v: number | bigint, b: number | bigint) => v < b;
          const idx = outType === T.DT_INT64 ? (i: number) => BigInt(i) : (i: number) => i;
          loop = specialize<ArgLoop>(["better", "idx"], ARG_SOURCE, better, idx);
          loops.set(key, loop);
        }
        const range = typeRange(dtype);
        const start = kind === "float"
          ? (max ? lowestFinite(dtype) : -lowestFinite(dtype))
          : (max ? range[0] : range[1]);
        loop(x, outer, n, inner, start, out);
        return [new Tensor(outType, outShape, out)];
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ClipByValue
// ---------------------------------------------------------------------------------------------

/** The types TensorFlow registers ClipByValue for on CPU (complex aside). */
const CLIP_TYPES = [
  ...FLOATS,
  T.DT_INT8,
  T.DT_INT16,
  T.DT_INT32,
  T.DT_INT64,
  T.DT_UINT8,
  T.DT_UINT16,
];

/**
 * ClipByValue(t, min, max): std::max(std::min(t, max), min) per element, so NaN inputs stay NaN
 * and min wins when min > max. min and max are each a scalar or of t's shape.
 */
const clipKernel: Kernel = {
  op: "ClipByValue",
  compile(ctx) {
    const node = ctx.name;
    if (ctx.attr.has("T")) checkAllowed("ClipByValue", node, CLIP_TYPES, ctx.attr.type("T"));
    return (inputs) => {
      const [x, lo, hi] = inputs;
      for (const t of [lo, hi]) {
        if (t.dtype !== x.dtype) {
          throw invalidArgument(
            `ClipByValue needs inputs of one type, got ${dtypeName(x.dtype)} and ` +
              `${dtypeName(t.dtype)} (node "${node}")`,
          );
        }
      }
      if (!CLIP_TYPES.includes(x.dtype)) throw unsupportedDtype("ClipByValue", node, x.dtype);
      const loScalar = lo.rank === 0;
      const hiScalar = hi.rank === 0;
      if (
        !(sameShape(x.shape, lo.shape) || loScalar) || !(sameShape(x.shape, hi.shape) || hiScalar)
      ) {
        throw invalidArgument(
          "clip_value_min and clip_value_max must be either of the same shape as input, or a " +
            `scalar. input shape: ${shapeString(x.shape)}clip_value_min shape: ${
              shapeString(lo.shape)
            }clip_value_max shape: ${shapeString(hi.shape)}`,
        );
      }
      const half = isFloat16(x.dtype);
      const read = (t: Tensor) =>
        (half ? decodeFloat16(t.data as Uint16Array, t.dtype) : t.data) as Float64Array;
      const v = read(x);
      const l = read(lo);
      const h = read(hi);
      const n = x.size;
      const o = (half ? new Float32Array(n) : allocate(x.dtype, n)) as Float64Array;
      // The comparisons as std::min / std::max write them: min(a, b) = b < a ? b : a,
      // max(a, b) = a < b ? b : a.
      if (loScalar && hiScalar) {
        const ls = l[0], hs = h[0];
        for (let i = 0; i < n; i++) {
          const a = hs < v[i] ? hs : v[i];
          o[i] = a < ls ? ls : a;
        }
      } else {
        const ls = loScalar ? 0 : 1, hs = hiScalar ? 0 : 1;
        for (let i = 0; i < n; i++) {
          const hv = h[i * hs], lv = l[i * ls];
          const a = hv < v[i] ? hv : v[i];
          o[i] = a < lv ? lv : a;
        }
      }
      const data = half ? encodeFloat16(o as unknown as Float32Array, x.dtype) : o;
      return [new Tensor(x.dtype, x.shape, data)];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Cumsum, Cumprod
// ---------------------------------------------------------------------------------------------

interface ScanLoop {
  (
    x: NumericArray,
    out: NumericArray,
    outer: number,
    n: number,
    inner: number,
    exclusive: boolean,
    reverse: boolean,
    id: number | bigint,
  ): void;
}

// One row of the scanned axis at a time, so that the inner loop is contiguous: each output row
// is f(previous output row, input row) — the previous input row when exclusive — and the
// first is f(identity, input) (or the identity). Stores into the typed output round (float32)
// or wrap (integers) every partial result as TensorFlow's element-type accumulator does.
const SCAN_SOURCE = `return function (x, out, outer, n, inner, exclusive, reverse, id) {
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let s = 0; s < n; s++) {
      const row = base + (reverse ? n - 1 - s : s) * inner;
      if (s === 0) {
        if (exclusive) for (let j = 0; j < inner; j++) out[row + j] = id;
        else for (let j = 0; j < inner; j++) out[row + j] = f(id, x[row + j]);
      } else {
        const prev = reverse ? row + inner : row - inner;
        const src = exclusive ? prev : row;
        for (let j = 0; j < inner; j++) out[row + j] = f(out[prev + j], x[src + j]);
      }
    }
  }
};`;

const scanLoops = new Map<string, ScanLoop>();

/** The scan loop of one (op, element kind), compiled once; see {@link specialize}. */
function scanLoop(prod: boolean, dtype: DataType): ScanLoop {
  const key = `${prod ? "prod" : "sum"}:${dtype}`;
  let loop = scanLoops.get(key);
  if (loop !== undefined) return loop;
  let f: unknown;
  if (dtype === T.DT_HALF || dtype === T.DT_BFLOAT16) {
    // Values are decoded to float32; every partial result is rounded to the 16-bit type.
    const round = dtype === T.DT_HALF
      ? (v: number) => halfBitsToNumber(numberToHalfBits(v))
      : (v: number) => bfloat16BitsToNumber(numberToBfloat16Bits(v));
    f = prod ? (a: number, b: number) => round(a * b) : (a: number, b: number) => round(a + b);
  } else if (elementKind(dtype) === "int64") {
    f = prod ? (a: bigint, b: bigint) => a * b : (a: bigint, b: bigint) => a + b;
  } else if (elementKind(dtype) === "int") {
    f = prod ? Math.imul : (a: number, b: number) => a + b;
  } else {
    f = prod ? (a: number, b: number) => a * b : (a: number, b: number) => a + b;
  }
  loop = specialize<ScanLoop>(["f"], SCAN_SOURCE, f);
  scanLoops.set(key, loop);
  return loop;
}

/** Cumsum / Cumprod: attrs exclusive, reverse; input 1 is the scalar axis. */
function scanKernel(op: "Cumsum" | "Cumprod"): Kernel {
  const prod = op === "Cumprod";
  return {
    op,
    compile(ctx) {
      const node = ctx.name;
      if (ctx.attr.has("T")) checkAllowed(op, node, REALS, ctx.attr.type("T"));
      const exclusive = ctx.attr.bool("exclusive", false);
      const reverse = ctx.attr.bool("reverse", false);
      return (inputs) => {
        const [x, axisT] = inputs;
        if (!REALS.includes(x.dtype)) throw unsupportedDtype(op, node, x.dtype);
        if (axisT.rank !== 0) {
          throw invalidArgument(`ScanOp: axis must be a scalar, not ${shapeString(axisT.shape)}`);
        }
        const rank = x.rank;
        const arg = toIntArray(axisT, "axis")[0];
        const axis = arg < 0 ? rank + arg : arg;
        if (!(axis >= 0 && axis < rank)) {
          // TF prints the canonicalised axis here.
          throw invalidArgument(
            `ScanOp: Expected scan axis in the range [${-rank}, ${rank}), but got ${axis}`,
          );
        }
        const n = x.shape[axis];
        let outer = 1;
        for (let d = 0; d < axis; d++) outer *= x.shape[d];
        let inner = 1;
        for (let d = axis + 1; d < rank; d++) inner *= x.shape[d];
        const half = isFloat16(x.dtype);
        const src = half ? decodeFloat16(x.data as Uint16Array, x.dtype) : x.numbers;
        const out = half ? new Float32Array(x.size) : allocate(x.dtype, x.size);
        const id = prod ? oneOf(x.dtype) : zeroOf(x.dtype);
        if (x.size > 0) scanLoop(prod, x.dtype)(src, out, outer, n, inner, exclusive, reverse, id);
        const data = half ? encodeFloat16(out as Float32Array, x.dtype) : out;
        return [new Tensor(x.dtype, x.shape, data)];
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Einsum
// ---------------------------------------------------------------------------------------------

/** The label of an ellipsis in a parsed subscript. */
const ELLIPSIS = -1;

/** A parsed einsum equation: subscripts as label ids (in order of first appearance). */
interface EinsumEquation {
  readonly equation: string;
  readonly inputs: readonly (readonly number[])[];
  readonly output: readonly number[];
  /** The character of each named label. */
  readonly chars: readonly string[];
}

/**
 * Parses an equation as TensorFlow's ParseEinsumEquation (same messages), then refuses what we
 * do not compute: a label repeated within one subscript (generalized diagonals, `ii->i`) fails
 * UNIMPLEMENTED, an output label absent from the inputs INVALID_ARGUMENT.
 */
function parseEinsum(equation: string, node: string): EinsumEquation {
  const io = equation.split("->");
  if (io.length !== 2) {
    throw invalidArgument(`Expecting exactly one '->' in einsum equation: ${equation}`);
  }
  const ins = io[0].split(",");
  if (ins.length !== 1 && ins.length !== 2) {
    throw invalidArgument(
      `Expecting 1 or 2 input subscripts in equation '${equation}' but got: ${ins.length}`,
    );
  }
  const ids = new Map<string, number>();
  const chars: string[] = [];
  const labels = (sub: string): number[] => {
    const out: number[] = [];
    for (let i = 0; i < sub.length; i++) {
      const c = sub[i];
      if (c === ".") {
        out.push(ELLIPSIS);
        i += 2; // "..." is one ellipsis
        continue;
      }
      let id = ids.get(c);
      if (id === undefined) {
        ids.set(c, id = chars.length);
        chars.push(c);
      }
      out.push(id);
    }
    return out;
  };
  const inputs = ins.map(labels);
  const output = labels(io[1]);
  for (const sub of [...inputs, output]) {
    const named = sub.filter((l) => l !== ELLIPSIS);
    if (new Set(named).size !== named.length) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Einsum equation "${equation}" repeats a label within one subscript (generalized ` +
          `diagonals are not supported; node "${node}")`,
      );
    }
  }
  for (const l of output) {
    if (l !== ELLIPSIS && !inputs.some((sub) => sub.includes(l))) {
      throw invalidArgument(
        `Einsum equation "${equation}": output label '${chars[l]}' appears in no input ` +
          `(node "${node}")`,
      );
    }
  }
  return { equation, inputs, output, chars };
}

/** Sums the last `r` elements of each of `rows` rows (float in double, int64 as bigints). */
function sumTrailing(data: NumericArray, rows: number, r: number): NumericArray {
  if (r === 1) return data;
  const ctor = data.constructor as new (n: number) => NumericArray;
  const out = new ctor(rows);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const o = out as BigInt64Array;
    for (let i = 0, p = 0; i < rows; i++) {
      let s = 0n;
      for (let j = 0; j < r; j++, p++) s += data[p];
      o[i] = s;
    }
  } else {
    const d = data as Float64Array;
    const o = out as Float64Array;
    for (let i = 0, p = 0; i < rows; i++) {
      let s = 0;
      for (let j = 0; j < r; j++, p++) s += d[p];
      o[i] = s;
    }
  }
  return out;
}

/** Transposes `t` so its labels `from` come in the order `to` (a permutation of them). */
function permuteLabels(t: Tensor, from: readonly number[], to: readonly number[]): Tensor {
  return transposeTensor(t, to.map((l) => from.indexOf(l)));
}

/**
 * Einsum over one or two operands, as TensorFlow's EinsumOp computes it: labels of one operand
 * missing from the output are summed first; labels shared by both operands become the batch
 * (kept) or contracted dims of one batched matrix product; ellipsis dims broadcast as numpy's.
 * `x` holds the operands already in the working type (16-bit floats decoded).
 */
function einsum(eq: EinsumEquation, xs: Tensor[]): Tensor {
  if (xs.length !== eq.inputs.length) {
    throw invalidArgument(`Expected ${eq.inputs.length} inputs but got: ${xs.length}`);
  }
  const numNamed = eq.chars.length;
  const size = new Array<number>(numNamed).fill(0);
  // Expand each ellipsis into broadcast labels numNamed + p, p its right-aligned position.
  const nbs = xs.map((t, i) => {
    const labels = eq.inputs[i];
    if (!labels.includes(ELLIPSIS)) {
      if (t.rank !== labels.length) {
        throw invalidArgument(
          `Expected input ${i} to have rank ${labels.length} but got: ${t.rank}`,
        );
      }
      return 0;
    }
    if (t.rank + 1 < labels.length) {
      throw invalidArgument(
        `Expected input ${i} to have rank at least ${labels.length - 1} but got: ${t.rank}`,
      );
    }
    return t.rank - labels.length + 1;
  });
  const E = Math.max(0, ...nbs);
  const expanded = xs.map((t, i) => {
    const out: number[] = [];
    for (const l of eq.inputs[i]) {
      if (l === ELLIPSIS) { for (let q = 0; q < nbs[i]; q++) out.push(numNamed + E - nbs[i] + q); }
      else {
        const axis = out.length;
        const d = t.shape[axis];
        if (size[l] !== 0 && size[l] !== d) {
          throw invalidArgument(
            `Expected dimension ${size[l]} at axis ${axis} of the input shaped ${
              shapeString(t.shape)
            } but got dimension ${d}`,
          );
        }
        size[l] = d;
        out.push(l);
      }
    }
    return out;
  });
  const output: number[] = [];
  for (const l of eq.output) {
    if (l === ELLIPSIS) { for (let q = 0; q < E; q++) output.push(numNamed + q); }
    else output.push(l);
  }
  if (E > 0 && !eq.output.includes(ELLIPSIS)) {
    throw invalidArgument(
      `Output contains ${E} broadcasting dimension(s) but no ellipsis (...) was found in the ` +
        "output subscripts.",
    );
  }
  const inOut = (l: number) => output.includes(l);
  const dimOf = (t: Tensor, labels: readonly number[], l: number) => t.shape[labels.indexOf(l)];
  const prodOf = (t: Tensor, labels: readonly number[], ls: readonly number[]) =>
    ls.reduce((p, l) => p * dimOf(t, labels, l), 1);

  if (xs.length === 1) {
    // Keep the output labels (in output order), sum the rest.
    const [t] = xs;
    const labels = expanded[0];
    const reduce = labels.filter((l) => !inOut(l));
    const moved = permuteLabels(t, labels, [...output, ...reduce]);
    const r = prodOf(t, labels, reduce);
    const rows = prodOf(t, labels, output);
    return new Tensor(
      t.dtype,
      output.map((l) => dimOf(t, labels, l)),
      sumTrailing(moved.data as NumericArray, rows, r),
    );
  }

  const [x, y] = xs;
  const [lx, ly] = expanded;
  const named = (ls: readonly number[]) => ls.filter((l) => l < numNamed);
  const both = named(lx).filter((l) => ly.includes(l)).sort((a, b) => a - b);
  const batch = both.filter(inOut);
  const contract = both.filter((l) => !inOut(l));
  const bx = lx.filter((l) => l >= numNamed);
  const by = ly.filter((l) => l >= numNamed);
  const freeX = named(lx).filter((l) => !ly.includes(l) && inOut(l));
  const freeY = named(ly).filter((l) => !lx.includes(l) && inOut(l));
  const reduceX = named(lx).filter((l) => !ly.includes(l) && !inOut(l));
  const reduceY = named(ly).filter((l) => !lx.includes(l) && !inOut(l));

  // x → [bx, batch, freeX, contract] (reduceX summed away), y → [by, batch, contract, freeY].
  const xm = permuteLabels(x, lx, [...bx, ...batch, ...freeX, ...contract, ...reduceX]);
  const ym = permuteLabels(y, ly, [...by, ...batch, ...contract, ...freeY, ...reduceY]);
  const xBatch = [...bx, ...batch].map((l) => dimOf(x, lx, l));
  const yBatch = [...by, ...batch].map((l) => dimOf(y, ly, l));
  const M = prodOf(x, lx, freeX);
  const K = prodOf(x, lx, contract);
  const N = prodOf(y, ly, freeY);
  const a = sumTrailing(xm.data as NumericArray, sizeOf(xBatch) * M * K, prodOf(x, lx, reduceX));
  const b = sumTrailing(ym.data as NumericArray, sizeOf(yBatch) * K * N, prodOf(y, ly, reduceY));
  let shape: number[];
  try {
    shape = broadcastShapes(xBatch, yBatch);
  } catch {
    throw invalidArgument(
      `Invalid broadcasting dimensions: ${shapeString([...xBatch, M, K])} vs. ${
        shapeString([...yBatch, K, N])
      }`,
    );
  }
  const prod = batchedGemm(x.dtype, a, xBatch, b, yBatch, shape, M, K, N, false, false);
  // The product's labels: the broadcast ellipsis dims, the batch labels, then the free ones.
  const bcast = Array.from(
    { length: shape.length - batch.length },
    (_, q) => numNamed + E - (shape.length - batch.length) + q,
  );
  const labels = [...bcast, ...batch, ...freeX, ...freeY];
  const dims = [
    ...shape,
    ...freeX.map((l) => dimOf(x, lx, l)),
    ...freeY.map((l) => dimOf(y, ly, l)),
  ];
  return permuteLabels(new Tensor(x.dtype, dims, prod), labels, output);
}

/** Einsum: attr equation (one or two operands, no repeated labels within a subscript). */
const einsumKernel: Kernel = {
  op: "Einsum",
  compile(ctx) {
    const node = ctx.name;
    if (ctx.attr.has("T")) checkAllowed("Einsum", node, MATMUL_TYPES, ctx.attr.type("T"));
    const eq = parseEinsum(ctx.attr.string("equation"), node);
    return (inputs) => {
      const dtype = inputs[0].dtype;
      for (const t of inputs) {
        if (t.dtype !== dtype) {
          throw invalidArgument(
            `Einsum needs inputs of one type, got ${dtypeName(dtype)} and ` +
              `${dtypeName(t.dtype)} (node "${node}")`,
          );
        }
      }
      if (!MATMUL_TYPES.includes(dtype)) throw unsupportedDtype("Einsum", node, dtype);
      const work = isFloat16(dtype)
        ? inputs.map((t) => new Tensor(T.DT_FLOAT, t.shape, gemmInput(t)))
        : inputs;
      const out = einsum(eq, work);
      return [gemmOutput(dtype, out.shape, out.data as NumericArray)];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// The family
// ---------------------------------------------------------------------------------------------

/**
 * The math kernels: elementwise unary and binary ops, AddN, Cast, MatMul, BatchMatMul(V2, V3),
 * Sum/Mean/Max/Min/Prod/All/Any, ArgMax/ArgMin, ClipByValue, Cumsum/Cumprod and Einsum.
 */
export const mathKernels: Kernel[] = [
  ...unaryKernels,
  ...binaryKernels,
  addNKernel,
  castKernel,
  matMulKernel,
  batchMatMulKernel("BatchMatMul"),
  batchMatMulKernel("BatchMatMulV2"),
  batchMatMulKernel("BatchMatMulV3"),
  ...REDUCERS.map(reductionKernel),
  argKernel("ArgMax"),
  argKernel("ArgMin"),
  clipKernel,
  scanKernel("Cumsum"),
  scanKernel("Cumprod"),
  einsumKernel,
];
