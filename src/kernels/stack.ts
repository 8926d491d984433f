/**
 * Stacking and unstacking along a new leading axis, and partial element shapes: what
 * TensorArray and TensorList kernels share.
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { DataType, lanes, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, Tensor, type TensorData, toIntArray } from "../tensor/tensor.ts";
import { checkedElements } from "./sizes.ts";

/**
 * A partial shape as TensorFlow's PartialTensorShape: `undefined` for an unknown rank, `-1` for
 * an unknown dimension.
 */
export type PartialShape = readonly number[] | undefined;

/** Prints a partial shape as PartialTensorShape::DebugString: `<unknown>`, `[2,?]`. */
export function partialString(s: PartialShape): string {
  if (s === undefined) return "<unknown>";
  return `[${s.map((d) => (d < 0 ? "?" : String(d))).join(",")}]`;
}

/** True if every dimension is known. */
export function fullyDefined(s: PartialShape): s is readonly number[] {
  return s !== undefined && s.every((d) => d >= 0);
}

/** PartialTensorShape::IsCompatibleWith. */
export function compatible(a: PartialShape, b: PartialShape): boolean {
  if (a === undefined || b === undefined) return true;
  if (a.length !== b.length) return false;
  return a.every((d, i) => d < 0 || b[i] < 0 || d === b[i]);
}

/** PartialTensorShape::MergeWith, or undefined (with `ok` false) if incompatible. */
export function merge(a: PartialShape, b: PartialShape): { ok: boolean; shape: PartialShape } {
  if (a === undefined) return { ok: true, shape: b };
  if (b === undefined) return { ok: true, shape: a };
  if (!compatible(a, b)) return { ok: false, shape: undefined };
  return { ok: true, shape: a.map((d, i) => (d >= 0 ? d : b[i])) };
}

/**
 * Reads an `element_shape` input (int32/int64): a scalar -1 for an unknown rank, else a vector
 * with -1 for unknown dimensions (TensorShapeFromTensor).
 */
export function partialShapeInput(t: Tensor, what = "element_shape"): PartialShape {
  if (t.rank === 0) {
    const v = toIntArray(t, what)[0];
    if (v !== -1) {
      throw invalidArgument(
        `The only valid scalar shape tensor is the fully unknown shape specified as -1.`,
      );
    }
    return undefined;
  }
  if (t.rank !== 1) {
    throw invalidArgument(`Shape must be at most rank 1 but is rank ${t.rank}`);
  }
  const dims = toIntArray(t, what);
  for (const d of dims) {
    if (d < -1) throw invalidArgument(`Dimension ${d} must be >= -1`);
  }
  return dims;
}

/** A partial shape as an int32/int64 tensor (scalar -1 for an unknown rank). */
export function partialShapeTensor(s: PartialShape, dtype: DataType): Tensor {
  const values = s === undefined ? [-1] : [...s];
  const shape = s === undefined ? [] : [s.length];
  return dtype === DataType.DT_INT64 ? Tensor.int64(values, shape) : Tensor.int32(values, shape);
}

/** Fresh storage for `n` elements of `dtype` (empty strings for DT_STRING). */
function storage(dtype: DataType, n: number): TensorData {
  return Tensor.zeros(dtype, [n]).data;
}

/** Stacks same-shaped tensors along a new axis 0. */
export function stackTensors(dtype: DataType, elementShape: Shape, items: Tensor[]): Tensor {
  const shape = [items.length, ...elementShape];
  const total = checkedElements(shape, "stacked tensor");
  const unit = lanes(dtype);
  const per = (items.length === 0 ? 0 : total / items.length) * unit;
  const out = storage(dtype, total);
  for (let i = 0; i < items.length; i++) {
    const src = items[i].data;
    if (Array.isArray(out)) {
      const s = src as unknown[];
      for (let k = 0; k < per; k++) (out as unknown[])[i * per + k] = s[k];
    } else (out as NumericArray).set(src as never, i * per);
  }
  return new Tensor(dtype, shape, out);
}

/** The `i`-th slice along axis 0, sharing storage where it can (tensors are immutable). */
export function sliceRow(t: Tensor, i: number, rows = 1, keepDim = false): Tensor {
  const rowShape = t.shape.slice(1);
  const per = (t.shape[0] === 0 ? 0 : t.size / t.shape[0]) * lanes(t.dtype);
  const d = t.data;
  const part = Array.isArray(d)
    ? (d as unknown[]).slice(i * per, (i + rows) * per)
    : (d as NumericArray).subarray(i * per, (i + rows) * per);
  return new Tensor(t.dtype, keepDim ? [rows, ...rowShape] : rowShape, part as TensorData);
}

/** Concatenates tensors along axis 0 (shapes beyond axis 0 must agree; checked by callers). */
export function concatRows(dtype: DataType, rest: Shape, items: Tensor[]): Tensor {
  let rows = 0;
  for (const t of items) rows += t.shape[0];
  const shape = [rows, ...rest];
  const total = checkedElements(shape, "concatenated tensor");
  const out = storage(dtype, total);
  let at = 0;
  for (const t of items) {
    const n = t.size * lanes(dtype);
    if (Array.isArray(out)) {
      const s = t.data as unknown[];
      for (let k = 0; k < n; k++) (out as unknown[])[at + k] = s[k];
    } else (out as NumericArray).set(t.data as never, at);
    at += n;
  }
  return new Tensor(dtype, shape, out);
}

/** True if two shapes are equal. */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
