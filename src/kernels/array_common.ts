/**
 * Helpers shared by the array-op families: storage slots and copies (numeric tensors are copied by
 * index in their typed arrays, complex types move as pairs of lanes, DT_STRING and DT_RESOURCE
 * tensors move their element objects), gathers by offset tables, and readers of scalar, shape and
 * index-type inputs. Ops that only change the shape return the input's storage without copying;
 * tensors are immutable, so sharing is safe.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName, lanes, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, shapeString, Tensor, type TensorData, toIntArray } from "../tensor/tensor.ts";
import type { KernelContext } from "./kernel.ts";
import { type ArrayCtor, zeroed } from "../tensor/arena.ts";

// ---------------------------------------------------------------------------------------------
// Storage helpers. "Units" are array slots: one per element, two per complex element.

/** A view of any storage as plain indexable slots, for generic element copies. */
export type Slots = unknown[];

/** Array slots per tensor element (2 for complex, else 1). */
export function unitOf(dtype: DataType): number {
  return lanes(dtype);
}

/** Fresh storage of the same kind as `like` with `len` slots. */
export function allocLike(like: TensorData, len: number): TensorData {
  if (Array.isArray(like)) return new Array(len) as Uint8Array[];
  return zeroed((like as NumericArray).constructor as ArrayCtor, len);
}

/** Below this many slots a plain loop beats `set(subarray())`, which allocates a view. */
const RUN_MIN = 24;

/** Copies `len` slots from `src[sOff…]` to `dst[dOff…]`. */
export function copyRun(
  dst: TensorData,
  dOff: number,
  src: TensorData,
  sOff: number,
  len: number,
): void {
  if (len >= RUN_MIN && !Array.isArray(dst)) {
    (dst as Float64Array).set((src as Float64Array).subarray(sOff, sOff + len), dOff);
    return;
  }
  const d = dst as unknown as Slots;
  const s = src as unknown as Slots;
  for (let i = 0; i < len; i++) d[dOff + i] = s[sOff + i];
}

/** Slots `[start, end)` of `src`: a view (no copy) for typed arrays, a shallow copy for arrays. */
export function viewRange(src: TensorData, start: number, end: number): TensorData {
  if (Array.isArray(src)) return src.slice(start, end) as Uint8Array[];
  return (src as Float64Array).subarray(start, end) as NumericArray;
}

/** Fills every element of `dst` with the element at `src[sOff…sOff+unit)`. */
export function fillWith(dst: TensorData, src: TensorData, sOff: number, unit: number): void {
  const n = dst.length;
  if (unit === 1) {
    (dst as unknown as Slots).fill((src as unknown as Slots)[sOff]);
    return;
  }
  for (let o = 0; o < n; o += unit) copyRun(dst, o, src, sOff, unit);
}

/** A tensor with the same storage and dtype as `t` but another shape (drops any ref). */
export function reshaped(t: Tensor, shape: Shape): Tensor {
  return new Tensor(t.dtype, shape, t.data);
}

/** Row-major strides of `shape` in slots. */
export function stridesOf(shape: Shape, unit: number): number[] {
  const s = new Array<number>(shape.length);
  let acc = unit;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * The general copy behind slicing, tiling, transposing, mirroring and broadcasting: output
 * element `(i0, …, ik)` is the element at slot `offsets[0][i0] + … + offsets[k][ik]` of `src`.
 * Trailing dims that read a contiguous block are folded into the element unit, and the innermost
 * dim is copied as contiguous runs where its offsets allow.
 *
 * @param offsets one array of slot offsets per output dim
 * @param unit slots per element
 */
export function gatherOffsets(src: TensorData, offsets: Int32Array[], unit: number): TensorData {
  let outSize = 1;
  for (const o of offsets) outSize *= o.length;
  const out = allocLike(src, outSize * unit);
  if (outSize === 0) return out;
  // Fold trailing dims that read whole consecutive elements: they become part of one run.
  let rank = offsets.length;
  while (rank > 0) {
    const o = offsets[rank - 1];
    let ok = true;
    for (let j = 0; j < o.length; j++) {
      if (o[j] !== j * unit) {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    unit *= o.length;
    rank--;
  }
  if (rank === 0) {
    copyRun(out, 0, src, 0, unit);
    return out;
  }
  const last = offsets[rank - 1];
  const len = last.length;
  // Split the innermost offsets into contiguous segments once, reused for every row.
  const segStart: number[] = [last[0]];
  const segLen: number[] = [unit];
  for (let j = 1; j < len; j++) {
    const k = segStart.length - 1;
    if (last[j] === segStart[k] + segLen[k]) segLen[k] += unit;
    else {
      segStart.push(last[j]);
      segLen.push(unit);
    }
  }
  const nSeg = segStart.length;
  const rowLen = len * unit;
  const bySegments = rowLen >= nSeg * RUN_MIN;
  const outer = rank - 1;
  const idx = new Int32Array(outer);
  let base = 0;
  for (let d = 0; d < outer; d++) base += offsets[d][0];
  let rows = 1;
  for (let k = 0; k < outer; k++) rows *= offsets[k].length;
  const d = out as unknown as Slots;
  const s = src as unknown as Slots;
  let o = 0;
  for (let r = 0; r < rows; r++) {
    if (bySegments) {
      for (let g = 0; g < nSeg; g++) {
        copyRun(out, o, src, base + segStart[g], segLen[g]);
        o += segLen[g];
      }
    } else if (unit === 1) {
      for (let j = 0; j < len; j++) d[o++] = s[base + last[j]];
    } else {
      for (let j = 0; j < len; j++) {
        const from = base + last[j];
        for (let u = 0; u < unit; u++) d[o++] = s[from + u];
      }
    }
    // Advance the odometer over the outer dims.
    for (let k = outer - 1; k >= 0; k--) {
      const ok = offsets[k];
      base -= ok[idx[k]];
      if (++idx[k] < ok.length) {
        base += ok[idx[k]];
        break;
      }
      idx[k] = 0;
      base += ok[0];
    }
  }
  return out;
}

/** Offsets that read input dim `d` at positions `map` (one output dim per input dim). */
export function productOffsets(
  shape: Shape,
  maps: ArrayLike<number>[],
  unit: number,
): Int32Array[] {
  const strides = stridesOf(shape, unit);
  return maps.map((m, d) => {
    const o = new Int32Array(m.length);
    for (let i = 0; i < m.length; i++) o[i] = m[i] * strides[d];
    return o;
  });
}

/** Positions `begin, begin + stride, …` (`count` of them). */
export function arithmetic(begin: number, stride: number, count: number): Int32Array {
  const m = new Int32Array(count);
  for (let i = 0; i < count; i++) m[i] = begin + i * stride;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Reading inputs.

/** Reads a scalar (or one-element) integer input. */
export function scalarInt(t: Tensor, what: string, message?: string): number {
  if (t.size !== 1) {
    throw invalidArgument(message ?? `${what} must be a scalar, got shape ${shapeString(t.shape)}`);
  }
  return toIntArray(t, what)[0];
}

/** Reads a shape input (vector or scalar) whose dims must be non-negative. */
export function shapeInput(t: Tensor, what: string): number[] {
  if (t.rank > 1) {
    throw invalidArgument(`${what} must represent a vector, got shape ${shapeString(t.shape)}`);
  }
  const dims = toIntArray(t, what);
  for (const d of dims) if (d < 0) throw invalidArgument(`Dimension ${d} must be >= 0`);
  return dims;
}

/** An int32 or int64 tensor of `values`. */
export function intTensor(dtype: DataType, values: readonly number[], shape: Shape): Tensor {
  if (dtype === DataType.DT_INT64) {
    const data = new BigInt64Array(values.length);
    for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
    return new Tensor(DataType.DT_INT64, shape, data);
  }
  if (dtype !== DataType.DT_INT32) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot produce an index tensor of type ${dtypeName(dtype)} (expected DT_INT32 or DT_INT64)`,
    );
  }
  return new Tensor(DataType.DT_INT32, shape, Int32Array.from(values));
}

/** Reads an int32/int64 type attr such as `out_type`. */
export function indexType(ctx: KernelContext, name: string, dflt = DataType.DT_INT32): DataType {
  return ctx.attr.typeIn(name, [DataType.DT_INT32, DataType.DT_INT64], dflt);
}

/** Same value, no ref: the pass-through of Identity and friends. */
export function passThrough(t: Tensor): Tensor {
  return t.ref === undefined ? t : reshaped(t, t.shape);
}
