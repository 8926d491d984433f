/**
 * Cast: every real, bool and complex type to every other, as TensorFlow's CPU kernel (floating
 * point to integers behaves as x86 does; Truncate rounds float32 results toward zero).
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { allocate, DataType, type NumericArray } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import { dataTypeString, REALS } from "./dtypes.ts";
import { decodeFloat16, elementKind, encodeFloat16, isFloat16 } from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";

const T = DataType;

// ---------------------------------------------------------------------------------------------
// Cast
// ---------------------------------------------------------------------------------------------

const CASTABLE = new Set<DataType>([
  ...REALS,
  T.DT_BOOL,
  T.DT_COMPLEX64,
  T.DT_COMPLEX128,
]);

export const TWO_31 = 2 ** 31;
const TWO_63 = 2 ** 63;
const TWO_64 = 2 ** 64;
export const INT64_MIN = -(2n ** 63n);

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
          `Cast ${dataTypeString(src)} to ${dataTypeString(dst)} is not supported (node "${node}")`,
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

/** The cast kernels: Cast. */
export const castKernels: Kernel[] = [castKernel];
