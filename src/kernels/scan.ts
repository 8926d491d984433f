/**
 * Scans: Cumsum and Cumprod (exclusive, reverse), accumulated in the element type (float32 partial
 * sums round at every step, as Eigen's do).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { allocate, DataType, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import { REALS } from "./dtypes.ts";
import {
  bfloat16BitsToNumber,
  checkAllowed,
  decodeFloat16,
  elementKind,
  encodeFloat16,
  halfBitsToNumber,
  isFloat16,
  numberToBfloat16Bits,
  numberToHalfBits,
  specialize,
  unsupportedDtype,
} from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { oneOf, zeroOf } from "./reduce.ts";

const T = DataType;

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

/** The scan kernels: Cumsum, Cumprod. */
export const scanKernels: Kernel[] = [scanKernel("Cumsum"), scanKernel("Cumprod")];
