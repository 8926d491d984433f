/**
 * ArgMax and ArgMin: the first index of the largest (smallest) value along an axis.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { allocate, DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import { REALS } from "./dtypes.ts";
import {
  checkAllowed,
  decodeFloat16,
  elementKind,
  isFloat16,
  specialize,
  unsupportedDtype,
} from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { typeRange } from "./reduce.ts";

const T = DataType;

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
//
// Specialised per input array type (each loop sees one element type) and per output type; the
// running best values of the inner path are a Float64Array for number elements (every float32,
// int32 or smaller value is exact in it), an Array for bigints.
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
  const bestV = newBest(inner), bestI = new Int32Array(inner);
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
        const key = `${x.constructor.name}:${outType}`;
        let loop = loops.get(key);
        if (loop === undefined) {
          const better = max
            ? (v: number | bigint, b: number | bigint) => v > b
            : (v: number | bigint, b: number | bigint) => v < b;
          const idx = outType === T.DT_INT64 ? (i: number) => BigInt(i) : (i: number) => i;
          const newBest = kind === "int64"
            ? (n: number) => new Array(n)
            : (n: number) => new Float64Array(n);
          loop = specialize<ArgLoop>(
            ["better", "idx", "newBest"],
            ARG_SOURCE,
            better,
            idx,
            newBest,
          );
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

/** The arg kernels: ArgMax, ArgMin. */
export const argMaxKernels: Kernel[] = [argKernel("ArgMax"), argKernel("ArgMin")];
