/**
 * Segment reductions: SegmentSum/Mean/Prod/Min/Max (sorted ids, output rows = last id + 1) and
 * UnsortedSegmentSum/Prod/Min/Max (any order, `num_segments` rows, negative ids dropped), as
 * TensorFlow's CPU kernels (core/kernels/segment_reduction_ops_impl.h).
 *
 * Arithmetic is the element type's, step by step in input order as Eigen's reducers do:
 * float32 rounds at every addition, half and bfloat16 round through float32 to 16 bits,
 * integers wrap. Max/Min keep TF's `std::max(x, acc)` / `std::min(x, acc)` form. Empty sorted
 * segments are 0 (1 for Prod); empty unsorted segments are the type's lowest (Max), highest
 * (Min), 0 (Sum) or 1 (Prod). Complex types are refused (UNIMPLEMENTED).
 *
 * Every output size is checked before it is allocated: a sorted output has as many rows as the
 * last id says, an unsorted one as many as `num_segments`, both chosen by the request.
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { allocate, DataType, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, shapeString, Tensor } from "../tensor/tensor.ts";
import { REALS } from "./dtypes.ts";
import {
  bfloat16BitsToNumber,
  decodeFloat16,
  encodeFloat16,
  halfBitsToNumber,
  isFloat16,
  numberToBfloat16Bits,
  numberToHalfBits,
  unsupportedDtype,
} from "./elementwise.ts";
import { indexValues, sliceDebugString } from "./gather.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

const T = DataType;

type Reduction = "sum" | "mean" | "prod" | "max" | "min";
type Value = number | bigint;

/**
 * The arithmetic of one element type over a work array: floats and integers in storage of the
 * dtype itself (so every store rounds or wraps as C++ does), half and bfloat16 in float32
 * storage rounded to 16 bits after every step.
 */
interface Arith {
  /** Work storage of `n` elements. */
  alloc(n: number): NumericArray;
  /** The input's values in work form. */
  read(t: Tensor): ArrayLike<Value>;
  /** Rounds a float32-computed value to the element type (identity except for 16-bit floats). */
  round(v: number): number;
  /** The output storage from the work array. */
  finish(work: NumericArray): NumericArray;
  /** The smallest and largest values of the type (floats: finite). */
  lowest: Value;
  highest: Value;
  /** The bottom value of Eigen's max reducer: -inf for floats, else the lowest. */
  maxInit: Value;
  minInit: Value;
  big: boolean;
}

function float16Arith(dtype: DataType): Arith {
  const half = dtype === T.DT_HALF;
  const toBits = half ? numberToHalfBits : numberToBfloat16Bits;
  const fromBits = half ? halfBitsToNumber : bfloat16BitsToNumber;
  // Half's largest finite value is 65504; bfloat16's is float32's, rounded to 8 bits: 0x7f7f.
  const max = half ? 65504 : bfloat16BitsToNumber(0x7f7f);
  return {
    alloc: (n) => new Float32Array(n),
    read: (t) => decodeFloat16(t.data as Uint16Array, dtype),
    round: (v) => fromBits(toBits(Math.fround(v))),
    finish: (w) => encodeFloat16(w as Float32Array, dtype),
    lowest: -max,
    highest: max,
    maxInit: -Infinity,
    minInit: Infinity,
    big: false,
  };
}

const INT_RANGES: Partial<Record<DataType, [Value, Value]>> = {
  [T.DT_INT8]: [-128, 127],
  [T.DT_INT16]: [-32768, 32767],
  [T.DT_INT32]: [-(2 ** 31), 2 ** 31 - 1],
  [T.DT_UINT8]: [0, 255],
  [T.DT_UINT16]: [0, 65535],
  [T.DT_UINT32]: [0, 2 ** 32 - 1],
  [T.DT_INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
  [T.DT_UINT64]: [0n, 2n ** 64n - 1n],
};

/** The arithmetic of `dtype`, or undefined for types these kernels lack. */
function arithOf(dtype: DataType): Arith | undefined {
  if (!REALS.includes(dtype)) return undefined;
  if (isFloat16(dtype)) return float16Arith(dtype);
  const id = (v: number) => v;
  if (dtype === T.DT_FLOAT || dtype === T.DT_DOUBLE) {
    const max = dtype === T.DT_FLOAT ? 3.4028234663852886e38 : Number.MAX_VALUE;
    return {
      alloc: (n) => allocate(dtype, n),
      read: (t) => t.data as NumericArray,
      round: id,
      finish: (w) => w,
      lowest: -max,
      highest: max,
      maxInit: -Infinity,
      minInit: Infinity,
      big: false,
    };
  }
  const [lo, hi] = INT_RANGES[dtype]!;
  return {
    alloc: (n) => allocate(dtype, n),
    read: (t) => t.data as NumericArray,
    round: id,
    finish: (w) => w,
    lowest: lo,
    highest: hi,
    maxInit: lo,
    minInit: hi,
    big: typeof lo === "bigint",
  };
}

/**
 * Folds row `src[sOff…sOff+inner)` into `work[wOff…)` with `op`, in the element type. Integer
 * products use Math.imul so they wrap as C++'s do instead of losing bits in a double.
 */
function fold(
  op: Reduction,
  a: Arith,
  work: NumericArray,
  wOff: number,
  src: ArrayLike<Value>,
  sOff: number,
  inner: number,
): void {
  const w = work as unknown as Value[];
  if (a.big) {
    const s = src as ArrayLike<bigint>;
    const wb = work as unknown as bigint[];
    for (let k = 0; k < inner; k++) {
      const x = s[sOff + k];
      const acc = wb[wOff + k];
      if (op === "sum" || op === "mean") wb[wOff + k] = acc + x;
      else if (op === "prod") wb[wOff + k] = acc * x;
      else if (op === "max") wb[wOff + k] = x < acc ? acc : x;
      else wb[wOff + k] = acc < x ? acc : x;
    }
    return;
  }
  const s = src as ArrayLike<number>;
  const wn = work as unknown as number[];
  const intProd = op === "prod" && !(work instanceof Float32Array || work instanceof Float64Array);
  for (let k = 0; k < inner; k++) {
    const x = s[sOff + k];
    const acc = wn[wOff + k];
    let v: number;
    if (op === "sum" || op === "mean") v = a.round(acc + x);
    else if (op === "prod") v = intProd ? Math.imul(acc, x) : a.round(acc * x);
    else if (op === "max") v = x < acc ? acc : x;
    else v = acc < x ? acc : x;
    w[wOff + k] = v;
  }
}

/** Reads and checks the element type of a segment op's data. */
function arithFor(op: string, node: string, dtype: DataType): Arith {
  const a = arithOf(dtype);
  if (a === undefined) throw unsupportedDtype(op, node, dtype);
  return a;
}

/** SegmentSum/Mean/Prod/Min/Max: data rows reduced into the rows their sorted ids name. */
function sortedSegmentKernel(op: string, reduction: Reduction): Kernel {
  return {
    op,
    compile(ctx: KernelContext) {
      if (ctx.attr.has("T")) arithFor(op, ctx.name, ctx.attr.type("T"));
      return (inputs) => {
        const [data, idsT] = inputs;
        const a = arithFor(op, ctx.name, data.dtype);
        if (idsT.rank !== 1) throw invalidArgument("segment_ids should be a vector.");
        if (data.rank < 1) throw invalidArgument("Shape must be at least rank 1");
        const n = idsT.size;
        if (n !== data.shape[0]) {
          throw invalidArgument("segment_ids should be the same size as dimension 0 of input.");
        }
        const ids = indexValues(idsT, "segment_ids");
        const rows = n > 0 ? ids[n - 1] + 1 : 0;
        if (rows < 0) throw invalidArgument("segment ids must be >= 0");
        const shape = [rows, ...data.shape.slice(1)];
        const size = checkedElements(shape, `${op} output`);
        const inner = n > 0 ? data.size / n : 0;
        const work = a.alloc(size);
        if (n === 0) return [new Tensor(data.dtype, shape, a.finish(work))];
        if (rows <= 0) throw invalidArgument("segment ids must be >= 0");
        const src = a.read(data);
        const fill = (from: number, to: number) => {
          // Empty segments hold 0, or 1 for Prod (TF's default_value).
          const v = reduction === "prod" ? 1 : 0;
          (work as unknown as Value[]).fill(a.big ? BigInt(v) : v, from * inner, to * inner);
        };
        let start = 0;
        let uninitialized = 0;
        let out = ids[0];
        for (let end = 1; end <= n; end++) {
          let next = 0;
          if (end < n) {
            next = ids[end];
            if (next === out) continue;
            if (!(out < next)) throw invalidArgument("segment ids are not increasing");
          }
          if (!(out >= 0 && out < rows)) {
            throw invalidArgument(
              `Segment id ${out} out of range [0, ${rows}), possibly because 'segment_ids' ` +
                "input is not sorted.",
            );
          }
          if (out > uninitialized) fill(uninitialized, out);
          reduceSegment(reduction, a, work, out * inner, src, start, end, inner);
          start = end;
          uninitialized = out + 1;
          out = next;
        }
        return [new Tensor(data.dtype, shape, a.finish(work))];
      };
    },
  };
}

/** One sorted segment, rows `[start, end)`: a single row is copied, more are reduced. */
function reduceSegment(
  reduction: Reduction,
  a: Arith,
  work: NumericArray,
  wOff: number,
  src: ArrayLike<Value>,
  start: number,
  end: number,
  inner: number,
): void {
  const w = work as unknown as Value[];
  if (end - start === 1) {
    for (let k = 0; k < inner; k++) w[wOff + k] = src[start * inner + k];
    return;
  }
  // Eigen's reducers start from their identity and fold the rows in order.
  const init: Value = reduction === "max"
    ? a.maxInit
    : reduction === "min"
    ? a.minInit
    : a.big
    ? BigInt(reduction === "prod" ? 1 : 0)
    : reduction === "prod"
    ? 1
    : 0;
  w.fill(init, wOff, wOff + inner);
  for (let r = start; r < end; r++) fold(reduction, a, work, wOff, src, r * inner, inner);
  if (reduction === "mean") {
    const count = end - start;
    for (let k = 0; k < inner; k++) {
      const v = w[wOff + k];
      w[wOff + k] = typeof v === "bigint"
        ? v / BigInt(count)
        : work instanceof Float32Array || work instanceof Float64Array
        ? a.round(v / count)
        : Math.trunc(v / count);
    }
  }
}

/** Whether `shape` starts with `prefix` (TensorShapeUtils::StartsWith). */
function startsWith(shape: Shape, prefix: Shape): boolean {
  if (prefix.length > shape.length) return false;
  for (let i = 0; i < prefix.length; i++) if (shape[i] !== prefix[i]) return false;
  return true;
}

/** UnsortedSegmentSum/Prod/Min/Max: rows folded into `num_segments` rows by id, in any order. */
function unsortedSegmentKernel(op: string, reduction: Exclude<Reduction, "mean">): Kernel {
  return {
    op,
    compile(ctx: KernelContext) {
      if (ctx.attr.has("T")) arithFor(op, ctx.name, ctx.attr.type("T"));
      return (inputs) => {
        const [data, idsT, numT] = inputs;
        const a = arithFor(op, ctx.name, data.dtype);
        if (numT.rank !== 0) {
          throw invalidArgument(
            `num_segments should be a scalar, not shape ${shapeString(numT.shape)}`,
          );
        }
        if (!startsWith(data.shape, idsT.shape)) {
          throw invalidArgument(
            `data.shape = ${shapeString(data.shape)} does not start with segment_ids.shape = ${
              shapeString(idsT.shape)
            }`,
          );
        }
        const rows = indexValues(numT, "num_segments")[0];
        if (rows < 0) {
          throw invalidArgument(`Input num_segments == ${rows} must not be negative.`);
        }
        const shape = [rows, ...data.shape.slice(idsT.rank)];
        const size = checkedElements(shape, `${op} output`);
        const init: Value = reduction === "sum"
          ? 0
          : reduction === "prod"
          ? 1
          : reduction === "max"
          ? a.lowest
          : a.highest;
        const work = a.alloc(size);
        (work as unknown as Value[]).fill(a.big ? BigInt(init) : init);
        if (data.size === 0) return [new Tensor(data.dtype, shape, a.finish(work))];
        const n = idsT.size;
        const inner = data.size / n;
        const ids = indexValues(idsT, "segment_ids");
        // TF checks every id before it reduces anything.
        for (let i = 0; i < n; i++) {
          const j = ids[i];
          if (j >= 0 && j >= rows) {
            throw invalidArgument(
              `segment_ids${sliceDebugString(idsT.shape, i)} = ${j} is out of range [0, ${rows})`,
            );
          }
        }
        const src = a.read(data);
        for (let i = 0; i < n; i++) {
          const j = ids[i];
          if (j < 0) continue;
          fold(reduction, a, work, j * inner, src, i * inner, inner);
        }
        return [new Tensor(data.dtype, shape, a.finish(work))];
      };
    },
  };
}

/** The segment kernels: Segment{Sum,Mean,Prod,Min,Max}, UnsortedSegment{Sum,Prod,Min,Max}. */
export const segmentKernels: Kernel[] = [
  sortedSegmentKernel("SegmentSum", "sum"),
  sortedSegmentKernel("SegmentMean", "mean"),
  sortedSegmentKernel("SegmentProd", "prod"),
  sortedSegmentKernel("SegmentMin", "min"),
  sortedSegmentKernel("SegmentMax", "max"),
  unsortedSegmentKernel("UnsortedSegmentSum", "sum"),
  unsortedSegmentKernel("UnsortedSegmentProd", "prod"),
  unsortedSegmentKernel("UnsortedSegmentMin", "min"),
  unsortedSegmentKernel("UnsortedSegmentMax", "max"),
];
