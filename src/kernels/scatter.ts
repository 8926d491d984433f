/**
 * Scattering: ScatterNd (updates summed into a zero tensor of a given shape).
 *
 * Messages follow TensorFlow's kernel (scatter_nd_op.cc).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import { shapeString, sizeOf, Tensor, type TensorData, toIntArray } from "../tensor/tensor.ts";
import { allocLike, unitOf } from "./array_common.ts";
import {
  bfloat16BitsToNumber,
  halfBitsToNumber,
  numberToBfloat16Bits,
  numberToHalfBits,
} from "./elementwise.ts";
import { indexRow, indexValues, leadingStrides, sliceDebugString } from "./gather.ts";
import type { Kernel } from "./kernel.ts";

/** Whether ScatterNd's three inputs may describe an empty output (ValidEmptyOutputShape). */
function validEmptyOutput(numInputs: number, numIndices: number, numUpdates: number): boolean {
  if (numIndices === 0 && numUpdates === 0) return true;
  return numInputs !== 0 && numIndices !== 0 && numUpdates !== 0;
}

/** out[o…o+n) += upd[u…u+n), with the addition of the dtype (wrapping, rounding, OR, concat). */
function accumulate(
  dtype: DataType,
  out: TensorData,
  o: number,
  upd: TensorData,
  u: number,
  n: number,
): void {
  if (dtype === DataType.DT_HALF || dtype === DataType.DT_BFLOAT16) {
    // Each addition rounds to the 16-bit type, as Eigen adds halves.
    const half = dtype === DataType.DT_HALF;
    const d = out as Uint16Array;
    const s = upd as Uint16Array;
    for (let j = 0; j < n; j++) {
      const a = half ? halfBitsToNumber(d[o + j]) : bfloat16BitsToNumber(d[o + j]);
      const b = half ? halfBitsToNumber(s[u + j]) : bfloat16BitsToNumber(s[u + j]);
      d[o + j] = half ? numberToHalfBits(a + b) : numberToBfloat16Bits(a + b);
    }
  } else if (dtype === DataType.DT_BOOL) {
    const d = out as Uint8Array;
    const s = upd as Uint8Array;
    for (let j = 0; j < n; j++) d[o + j] |= s[u + j];
  } else if (dtype === DataType.DT_STRING) {
    const d = out as Uint8Array[];
    const s = upd as Uint8Array[];
    for (let j = 0; j < n; j++) {
      const a = d[o + j];
      const b = s[u + j];
      const c = new Uint8Array(a.length + b.length);
      c.set(a);
      c.set(b, a.length);
      d[o + j] = c;
    }
  } else if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    // Stores wrap to 64 bits.
    const s = upd as BigInt64Array;
    for (let j = 0; j < n; j++) out[o + j] += s[u + j];
  } else {
    // Stores wrap (integers) or round (float32) to the element type, as C++ arithmetic does.
    const d = out as Float64Array;
    const s = upd as Float64Array;
    for (let j = 0; j < n; j++) d[o + j] += s[u + j];
  }
}

/** ScatterNd: the checks of TF's ScatterNdOp::Compute and DoScatterNd, then summed updates. */
function scatterNd(indices: Tensor, updates: Tensor, shapeT: Tensor): Tensor {
  const is = shapeString(indices.shape);
  const us = shapeString(updates.shape);
  if (indices.rank < 1) {
    throw invalidArgument(`Indices shape must have rank at least one. Found:${is}`);
  }
  if (updates.rank < 1) {
    throw invalidArgument(`Updates shape must have rank at least one. Found:${us}`);
  }
  const shape = toIntArray(shapeT, "shape");
  for (const d of shape) if (d < 0) throw invalidArgument(`Dimension ${d} must be >= 0`);
  const ss = shapeString(shape);
  if (!validEmptyOutput(shapeT.size, indices.size, updates.size)) {
    throw invalidArgument("Indices and updates specified for empty output shape");
  }
  const outerDims = indices.rank - 1;
  for (let i = 0; i < outerDims; i++) {
    if (indices.shape[i] !== updates.shape[i]) {
      throw invalidArgument(
        `Dimensions [0,${outerDims}) of indices[shape=${is}] must match dimensions [0,${outerDims}) of updates[shape=${us}]`,
      );
    }
  }
  const ix = indices.shape[outerDims];
  const inner = () =>
    invalidArgument(
      `Dimensions [${ix},${shape.length}) of input[shape=${ss}] must match dimensions [${outerDims},${updates.rank}) of updates[shape=${us}]`,
    );
  if (updates.rank - outerDims !== shape.length - ix) throw inner();
  for (let i = 0; i + outerDims < updates.rank; i++) {
    if (updates.shape[i + outerDims] !== shape[ix + i]) throw inner();
  }
  if (shapeT.rank !== 1) throw invalidArgument("Shape must be a vector");
  // DoScatterNd's own validation.
  if (shape.length < 1) throw invalidArgument(`Output must be at least 1-D, got shape: ${ss}`);
  const total = sizeOf(shape);
  if (!validEmptyOutput(total, indices.size, updates.size)) {
    throw invalidArgument(`Indices and updates specified for empty output.  indices shape: ${is}`);
  }
  if (updates.shape[0] !== indices.shape[0]) {
    throw invalidArgument(
      `Dimensions [0,1) of indices[shape=${is}] = ${
        indices.shape[0]
      } must match dimensions [0,1) of updates[shape=${us}] = ${updates.shape[0]}`,
    );
  }
  const sliceDim = indices.rank > 1 ? ix : 1;
  const batchDim = indices.rank > 1 ? indices.rank - 1 : 1;
  const prefixErr = () =>
    invalidArgument(
      `Dimensions [0,${batchDim}) of indices[shape=${is}] must match dimensions [0,${batchDim}) of updates[shape=${us}]`,
    );
  const suffixErr = () =>
    invalidArgument(
      `Dimensions [${sliceDim},${shape.length}) of input[shape=${ss}] must match dimensions [${sliceDim},${updates.rank}) of updates[shape=${us}]`,
    );
  if (updates.rank < batchDim) throw prefixErr();
  if (shape.length < sliceDim + (updates.rank - batchDim)) throw suffixErr();
  if (updates.rank !== batchDim + shape.length - sliceDim) throw suffixErr();
  for (let d = 0; d < batchDim; d++) if (updates.shape[d] !== indices.shape[d]) throw prefixErr();
  for (let d = 0; d < updates.rank - batchDim; d++) {
    if (updates.shape[d + batchDim] !== shape[d + sliceDim]) throw suffixErr();
  }
  let slice = 1;
  for (let d = sliceDim; d < shape.length; d++) slice *= shape[d];
  const numUpdates = indices.size / Math.max(sliceDim, 1);
  const unit = unitOf(updates.dtype);
  const out = allocLike(updates.data, total * unit);
  if (updates.dtype === DataType.DT_STRING) (out as Uint8Array[]).fill(new Uint8Array(0));
  if (total === 0) return new Tensor(updates.dtype, shape, out);
  if (sliceDim < 1 || sliceDim > 7) {
    throw invalidArgument(
      `Only indices.shape[-1] values between 1 and 5 are currently supported.  Requested rank: ${sliceDim}`,
    );
  }
  const idx = indexValues(indices, "indices");
  const strides = leadingStrides(shape, sliceDim);
  const run = slice * unit;
  for (let i = 0; i < numUpdates; i++) {
    let off = 0;
    let bad = false;
    for (let d = 0; d < sliceDim; d++) {
      const v = idx[i * sliceDim + d];
      if (!(v >= 0 && v < shape[d])) bad = true;
      off += v * strides[d];
    }
    if (bad) {
      throw invalidArgument(
        `indices${sliceDebugString(indices.shape.slice(0, -1), i)} = [${
          indexRow(idx, i, sliceDim)
        }] does not index into shape ${ss}`,
      );
    }
    accumulate(updates.dtype, out, off * unit, updates.data, i * run, run);
  }
  return new Tensor(updates.dtype, shape, out);
}

/** The scatter kernels: ScatterNd. */
export const scatterKernels: Kernel[] = [
  {
    op: "ScatterNd",
    compile: () => (inputs) => [scatterNd(inputs[0], inputs[1], inputs[2])],
  },
];
