/**
 * Elementwise arithmetic and comparisons: unary math, binary ops with broadcasting, AddN and
 * ClipByValue.
 *
 * Semantics follow TensorFlow's CPU kernels: integer arithmetic wraps as in C++, integer Div and
 * TruncateDiv truncate toward zero while FloorDiv/FloorMod floor, integer division by zero fails
 * with "Integer division by zero", Maximum/Minimum propagate NaN, Round rounds half to even.
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { allocate, DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import { sameShape } from "./broadcast.ts";
import { FLOATS, INTS, REALS, SIGNED } from "./dtypes.ts";
import {
  binaryKernel,
  checkAllowed,
  decodeFloat16,
  encodeFloat16,
  isFloat16,
  specialize,
  unaryKernel,
  unsupportedDtype,
} from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { expF32 } from "./wasm/activation.ts";
import { binaryF32, unaryF32, WasmAct, WasmBinary } from "./wasm/elementwise.ts";
import { uninitialized } from "../tensor/arena.ts";
import {
  bytesEqual,
  concatBytes,
  erfcFloat64,
  erfFloat32,
  erfFloat64,
  floorDivBig,
  floorDivInt,
  floorModBig,
  floorModInt,
  floorModNumber,
  maxNaN,
  minNaN,
  powBig,
  powFloat,
  powInt,
  roundHalfEven,
  signNumber,
  truncDivBig,
  truncDivInt,
  truncModBig,
  truncModInt,
} from "./scalar.ts";

const T = DataType;

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
  // Float32 in WebAssembly (wasm/elementwise.ts; activation.ts's exp where that one declines).
  withFloat32Fast(
    unaryKernel("Exp", floatOnly(Math.exp), FLOATS),
    (src, so, dst, dOff, n) =>
      unaryF32(WasmAct.Exp, src, so, dst, dOff, n) || expF32(src, so, dst, dOff, n),
  ),
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

/**
 * A float32 AddN in WebAssembly: left to right, each sum rounded to float32 as the loop below
 * does (the same floats); null when the kernel declines (small, or off). Selfie's sum of two
 * 32×32×24 maps took 49 µs in the loop, a same-shape Add there 9.
 */
function addNF32(inputs: readonly Tensor[]): Float32Array | null {
  const n = inputs[0].size;
  const y = uninitialized(Float32Array, n);
  const dims = [1, 1, n], step = [0, 0, 1];
  const at = (i: number) => inputs[i].data as Float32Array;
  if (!binaryF32(WasmBinary.Add, at(0), at(1), y, dims, step, step)) return null;
  for (let i = 2; i < inputs.length; i++) {
    if (!binaryF32(WasmBinary.Add, y, at(i), y, dims, step, step)) return null;
  }
  return y;
}

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
      if (dtype === T.DT_FLOAT) {
        const sum = addNF32(inputs);
        if (sum !== null) return [new Tensor(dtype, first.shape, sum)];
      }
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

/** The elementwise arithmetic kernels: unary and binary ops, AddN, ClipByValue. */
export const arithmeticKernels: Kernel[] = [
  ...unaryKernels,
  ...binaryKernels,
  addNKernel,
  clipKernel,
];

/**
 * `kernel` with float32 inputs sent to a WebAssembly loop first (`fast` returns false when it
 * cannot run: no SIMD, too small, too large), the kernel's own loops otherwise.
 */
function withFloat32Fast(
  kernel: Kernel,
  fast: (src: Float32Array, so: number, dst: Float32Array, dOff: number, n: number) => boolean,
): Kernel {
  return {
    ...kernel,
    compile(ctx) {
      const slow = kernel.compile(ctx);
      return (inputs) => {
        const x = inputs[0];
        if (x !== undefined && x.dtype === DataType.DT_FLOAT && x.data instanceof Float32Array) {
          const y = uninitialized(Float32Array, x.size);
          if (fast(x.data, 0, y, 0, x.size)) return [new Tensor(DataType.DT_FLOAT, x.shape, y)];
        }
        return slow(inputs);
      };
    },
  };
}
