/**
 * Creating tensors: Fill, ZerosLike, OnesLike, Range and LinSpace.
 *
 * Messages follow TensorFlow's kernels (constant_op.cc, sequence_ops.cc).
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName, isNumeric, lanes, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor, type TensorData } from "../tensor/tensor.ts";
import { allocLike, fillWith, shapeInput, unitOf } from "./array_common.ts";
import {
  bfloat16BitsToNumber,
  halfBitsToNumber,
  numberToBfloat16Bits,
  numberToHalfBits,
} from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

// ---------------------------------------------------------------------------------------------
// Creation.

/** The bits of 1.0 in a 16-bit float type, else undefined. */
export function oneBits(dtype: DataType): number | undefined {
  if (dtype === DataType.DT_HALF) return 0x3c00;
  if (dtype === DataType.DT_BFLOAT16) return 0x3f80;
  return undefined;
}

/** Fills numeric storage with one (complex: 1 + 0i, half: its bits). */
function onesData(dtype: DataType, n: number): TensorData {
  const zeros = Tensor.zeros(dtype, [n]);
  const data = zeros.data as NumericArray;
  const bits = oneBits(dtype);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) data.fill(1n);
  else if (bits !== undefined) data.fill(bits);
  else if (lanes(dtype) === 2) { for (let i = 0; i < data.length; i += 2) data[i] = 1; }
  else data.fill(1);
  return data;
}

/**
 * LinSpace(start, stop, num): `num` values from start to stop, as TF's LinSpaceOp computes them in
 * T (`start + step * i` with `step = (stop - start) / (num - 1)`, the last value exactly stop).
 */
const linSpaceKernel: Kernel = {
  op: "LinSpace",
  compile: () => (inputs) => {
    const [startT, stopT, numT] = inputs;
    for (const [t, what] of [[startT, "start"], [stopT, "stop"], [numT, "num"]] as const) {
      if (t.rank !== 0) {
        throw invalidArgument(`${what} must be a scalar, not shape ${shapeString(t.shape)}`);
      }
    }
    const dtype = startT.dtype;
    const bits = oneBits(dtype) !== undefined;
    if (!(bits || dtype === DataType.DT_FLOAT || dtype === DataType.DT_DOUBLE)) {
      throw new ServingError(Code.UNIMPLEMENTED, `Cannot run LinSpace on ${dtypeName(dtype)}`);
    }
    const num = Number((numT.data as Int32Array | BigInt64Array)[0]);
    if (!(num > 0)) throw invalidArgument(`Requires num > 0: ${num}`);
    const n = checkedElements([num], "LinSpace output");
    // Arithmetic in T: float32 rounds each step; half and bfloat16 go through their 16 bits.
    const read = (t: Tensor) =>
      dtype === DataType.DT_HALF
        ? halfBitsToNumber((t.data as Uint16Array)[0])
        : dtype === DataType.DT_BFLOAT16
        ? bfloat16BitsToNumber((t.data as Uint16Array)[0])
        : (t.data as Float32Array | Float64Array)[0];
    const round = dtype === DataType.DT_DOUBLE
      ? (v: number) => v
      : dtype === DataType.DT_FLOAT
      ? Math.fround
      : dtype === DataType.DT_HALF
      ? (v: number) => halfBitsToNumber(numberToHalfBits(Math.fround(v)))
      : (v: number) => bfloat16BitsToNumber(numberToBfloat16Bits(Math.fround(v)));
    const start = read(startT);
    const stop = read(stopT);
    const values = new Float64Array(n);
    values[0] = start;
    if (n > 1) {
      const step = round(round(stop - start) / (n - 1));
      for (let i = 1; i < n - 1; i++) values[i] = round(start + round(step * i));
      values[n - 1] = stop;
    }
    const data = dtype === DataType.DT_HALF
      ? Uint16Array.from(values, (v) => numberToHalfBits(v))
      : dtype === DataType.DT_BFLOAT16
      ? Uint16Array.from(values, (v) => numberToBfloat16Bits(v))
      : dtype === DataType.DT_FLOAT
      ? Float32Array.from(values)
      : values;
    return [new Tensor(dtype, [n], data)];
  },
};

/** The kernels that create tensors: Fill, ZerosLike, OnesLike, Range, LinSpace. */
export const createKernels: Kernel[] = [
  linSpaceKernel,
  {
    op: "Fill",
    compile: () => (inputs) => {
      const [dimsT, value] = inputs;
      if (dimsT.rank > 1) {
        throw invalidArgument(
          `dims must represent a vector, got shape ${shapeString(dimsT.shape)}`,
        );
      }
      if (!(value.rank === 0 || (value.rank === 1 && value.shape[0] === 1))) {
        throw invalidArgument(
          `value must represent a scalar, got shape ${shapeString(value.shape)}`,
        );
      }
      const shape = shapeInput(dimsT, "dims");
      const unit = unitOf(value.dtype);
      const out = allocLike(value.data, checkedElements(shape, "Fill output") * unit);
      fillWith(out, value.data, 0, unit);
      return [new Tensor(value.dtype, shape, out)];
    },
  },
  {
    op: "ZerosLike",
    compile: () => (inputs) => [Tensor.zeros(inputs[0].dtype, inputs[0].shape)],
  },
  {
    op: "OnesLike",
    compile: () => (inputs) => {
      const t = inputs[0];
      if (!isNumeric(t.dtype)) {
        throw new ServingError(Code.UNIMPLEMENTED, `Cannot run OnesLike on ${dtypeName(t.dtype)}`);
      }
      return [new Tensor(t.dtype, t.shape, onesData(t.dtype, t.size))];
    },
  },
  {
    op: "Range",
    compile(ctx) {
      const tidx = ctx.attr.has("Tidx") ? ctx.attr.type("Tidx") : undefined;
      return (inputs) => {
        const [startT, limitT, deltaT] = inputs;
        for (
          const [name, v] of [["start", startT], ["limit", limitT], ["delta", deltaT]] as const
        ) {
          if (v.size !== 1 || v.rank > 1) {
            throw invalidArgument(`${name} must be a scalar, not shape ${shapeString(v.shape)}`);
          }
        }
        const dtype = tidx ?? startT.dtype;
        return [range(dtype, startT, limitT, deltaT)];
      };
    },
  },
];

/** Range as TF's RangeOp: integer sizes by exact ceil-division, float values accumulated. */
function range(dtype: DataType, startT: Tensor, limitT: Tensor, deltaT: Tensor): Tensor {
  const sd = startT.numbers;
  if (sd instanceof BigInt64Array || sd instanceof BigUint64Array) {
    const start = BigInt(sd[0]);
    const limit = BigInt((limitT.numbers as BigInt64Array)[0]);
    const delta = BigInt((deltaT.numbers as BigInt64Array)[0]);
    checkRange(start, limit, delta);
    const abs = (x: bigint) => (x < 0n ? -x : x);
    const span = abs(limit - start);
    const step = abs(delta);
    const size = checkedElements([Number((span + step - 1n) / step)], "Range output");
    const out = new BigInt64Array(size);
    let v = start;
    for (let i = 0; i < size; i++, v += delta) out[i] = v;
    return new Tensor(
      dtype,
      [size],
      dtype === DataType.DT_UINT64 ? new BigUint64Array(out.buffer) : out,
    );
  }
  if (oneBits(dtype) !== undefined || lanes(dtype) !== 1 || !isNumeric(dtype)) {
    throw new ServingError(Code.UNIMPLEMENTED, `Cannot run Range on ${dtypeName(dtype)}`);
  }
  const start = Number(sd[0]);
  const limit = Number(limitT.numbers[0]);
  const delta = Number(deltaT.numbers[0]);
  checkRange(start, limit, delta);
  const isFloat = dtype === DataType.DT_FLOAT || dtype === DataType.DT_DOUBLE;
  let size: number;
  if (!isFloat) size = Math.ceil(Math.abs(limit - start) / Math.abs(delta));
  else if (dtype === DataType.DT_FLOAT) {
    // Eigen computes (limit - start) / delta in float32.
    size = Math.ceil(Math.abs(Math.fround(Math.fround(limit - start) / delta)));
  } else size = Math.ceil(Math.abs((limit - start) / delta));
  checkedElements([size], "Range output");
  const out = Tensor.zeros(dtype, [size]).data as Float64Array;
  // The value is accumulated in T, as TF does (`val += delta`), so float32 rounding matches.
  let v = start;
  if (dtype === DataType.DT_FLOAT) {
    for (let i = 0; i < size; i++, v = Math.fround(v + delta)) out[i] = v;
  } else for (let i = 0; i < size; i++, v += delta) out[i] = v;
  return new Tensor(dtype, [size], out as NumericArray);
}

function checkRange<T extends number | bigint>(start: T, limit: T, delta: T): void {
  const sign = Math.sign(Number(delta));
  if (sign === 0) throw invalidArgument(`Requires delta != 0: ${delta}`);
  if (sign > 0 && start > limit) {
    throw invalidArgument(`Requires start <= limit when delta > 0: ${start}/${limit}`);
  }
  if (sign < 0 && start < limit) {
    throw invalidArgument(`Requires start >= limit when delta < 0: ${start}/${limit}`);
  }
}
