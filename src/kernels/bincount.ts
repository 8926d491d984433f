/**
 * Bincount and DenseBincount: how often each value in `[0, size)` occurs (or the sum of its
 * weights), as TensorFlow's CPU kernels (core/kernels/bincount_op.cc) on one thread: values at or
 * above `size` are dropped, negative values fail, weights add in input order in the element type.
 *
 * The output size is the request's `size` input and is checked before it is allocated.
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { allocate, DataType, type NumericArray } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import { unsupportedDtype } from "./elementwise.ts";
import { indexValues } from "./gather.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

const T = DataType;

/** The weight types of both ops' OpDefs. */
const WEIGHT_TYPES: readonly DataType[] = [T.DT_INT32, T.DT_INT64, T.DT_FLOAT, T.DT_DOUBLE];

/** Reads the scalar `size` input, failing as TF does. */
function binCount(sizeT: Tensor): number {
  if (sizeT.rank !== 0) {
    throw invalidArgument(`Shape must be rank 0 but is rank ${sizeT.rank}`);
  }
  const size = indexValues(sizeT, "size")[0];
  if (size < 0) throw invalidArgument(`size (${size}) must be non-negative`);
  return size;
}

/**
 * Counts `values[from…from+n)` into `out[o…o+size)`: +1 each, + the weight at the same position,
 * or 1 for `binary`. Storage of the dtype makes each addition wrap or round as C++'s does.
 */
function countInto(
  values: ArrayLike<number>,
  from: number,
  n: number,
  weights: NumericArray | undefined,
  binary: boolean,
  out: NumericArray,
  o: number,
  size: number,
): void {
  const big = out instanceof BigInt64Array;
  const one = big ? 1n : 1;
  const w = out as unknown as (number | bigint)[];
  for (let i = from; i < from + n; i++) {
    const v = values[i];
    if (v >= size) continue;
    if (binary) w[o + v] = one;
    else if (weights) w[o + v] = (w[o + v] as number) + (weights[i] as number);
    else w[o + v] = (w[o + v] as number) + (one as number);
  }
}

/** Fails unless every value is non-negative (TF's "all non-negative" check). */
function checkNonNegative(values: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) {
    if (values[i] < 0) throw invalidArgument("Input arr must be non-negative!");
  }
}

function weightType(op: string, ctx: KernelContext): void {
  if (ctx.attr.has("T")) {
    const t = ctx.attr.type("T");
    if (!WEIGHT_TYPES.includes(t)) throw unsupportedDtype(op, ctx.name, t);
  }
}

/** Bincount(arr int32, size int32, weights T) → bins T[size]. */
const bincountKernel: Kernel = {
  op: "Bincount",
  compile(ctx) {
    weightType("Bincount", ctx);
    return (inputs) => {
      const [arr, sizeT, weights] = inputs;
      if (!WEIGHT_TYPES.includes(weights.dtype)) {
        throw unsupportedDtype("Bincount", ctx.name, weights.dtype);
      }
      const size = binCount(sizeT);
      const out = allocate(weights.dtype, checkedElements([size], "Bincount output"));
      const values = indexValues(arr, "arr");
      checkNonNegative(values);
      if (weights.size > 0 && weights.size !== arr.size) {
        throw invalidArgument("Input indices and weights must have the same size.");
      }
      const w = weights.size > 0 ? weights.data as NumericArray : undefined;
      countInto(values, 0, values.length, w, false, out, 0, size);
      return [new Tensor(weights.dtype, [size], out)];
    };
  },
};

/** DenseBincount(input Tidx[n] or [rows, n], size Tidx, weights T) with binary_output. */
const denseBincountKernel: Kernel = {
  op: "DenseBincount",
  compile(ctx) {
    weightType("DenseBincount", ctx);
    const binary = ctx.attr.bool("binary_output", false);
    return (inputs) => {
      const [data, sizeT, weights] = inputs;
      if (!WEIGHT_TYPES.includes(weights.dtype)) {
        throw unsupportedDtype("DenseBincount", ctx.name, weights.dtype);
      }
      if (data.rank > 2) {
        throw invalidArgument(`Shape must be at most rank 2 but is rank ${data.rank}`);
      }
      if (data.rank === 0) throw invalidArgument("Shape must be at least rank 1 but is rank 0");
      const size = binCount(sizeT);
      const rows = data.rank === 2 ? data.shape[0] : 1;
      const shape = data.rank === 2 ? [rows, size] : [size];
      const out = allocate(weights.dtype, checkedElements(shape, "DenseBincount output"));
      const values = indexValues(data, "input");
      // TF checks the 1-D case; a negative value in the 2-D case would write outside the
      // output there, so it is refused here as well.
      checkNonNegative(values);
      if (weights.size > 0 && weights.size !== data.size) {
        throw invalidArgument("Input indices and weights must have the same size.");
      }
      const w = weights.size > 0 && !binary ? weights.data as NumericArray : undefined;
      const cols = rows > 0 ? data.size / rows : 0;
      for (let r = 0; r < rows; r++) {
        countInto(values, r * cols, cols, w, binary, out, r * size, size);
      }
      return [new Tensor(weights.dtype, shape, out)];
    };
  },
};

/** The bincount kernels: Bincount, DenseBincount. */
export const bincountKernels: Kernel[] = [bincountKernel, denseBincountKernel];
