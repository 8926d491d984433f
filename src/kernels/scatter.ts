/**
 * Scattering: ScatterNd (updates summed into a zero tensor of a given shape) and the
 * TensorScatter ops (updates combined into a copy of a tensor: Update, Add, Sub, Max, Min).
 *
 * Messages follow TensorFlow's kernel (scatter_nd_op.cc, scatter_nd_op_cpu_impl.h); ScatterNd's
 * output size, chosen by its `shape` input, is checked before it is allocated.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import { shapeString, sizeOf, Tensor, type TensorData, toIntArray } from "../tensor/tensor.ts";
import { allocLike, copyRun, unitOf } from "./array_common.ts";
import { REALS } from "./dtypes.ts";
import {
  bfloat16BitsToNumber,
  halfBitsToNumber,
  numberToBfloat16Bits,
  numberToHalfBits,
  unsupportedDtype,
} from "./elementwise.ts";
import { indexRow, indexValues, leadingStrides, sliceDebugString } from "./gather.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

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
function scatterNd(indices: Tensor, updates: Tensor, shapeT: Tensor, ignoreBad: boolean): Tensor {
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
  const plan = planScatterNd(indices, updates, shape);
  const total = checkedElements(shape, "ScatterNd output");
  const out = allocLike(updates.data, total * unitOf(updates.dtype));
  if (updates.dtype === DataType.DT_STRING) (out as Uint8Array[]).fill(new Uint8Array(0));
  if (total === 0) return new Tensor(updates.dtype, shape, out);
  applyScatterNd(plan, indices, updates, out, "add", ignoreBad);
  return new Tensor(updates.dtype, shape, out);
}

/** What DoScatterNd derives from the shapes: index depth, slice size, number of updates. */
interface ScatterPlan {
  readonly shape: readonly number[];
  readonly sliceDim: number;
  readonly slice: number;
  readonly numUpdates: number;
}

/** DoScatterNd's shape checks (the part before the output exists), with TF's messages. */
function planScatterNd(indices: Tensor, updates: Tensor, shape: readonly number[]): ScatterPlan {
  const is = shapeString(indices.shape);
  const us = shapeString(updates.shape);
  const ss = shapeString(shape);
  const ix = indices.shape[indices.rank - 1];
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
  return { shape, sliceDim, slice, numUpdates };
}

/** How an update slice combines with the output: TF's scatter_nd_op::UpdateOp. */
type UpdateOp = "add" | "sub" | "update" | "max" | "min";

/**
 * Reads bad_indices_policy (TF 2.17+ writes it on the scatter ops): "", DEFAULT and ERROR fail on
 * an index out of range, IGNORE skips it; any other value is refused at load.
 */
function ignoresBadIndices(ctx: KernelContext): boolean {
  const policy = ctx.attr.string("bad_indices_policy", "");
  if (!["", "DEFAULT", "ERROR", "IGNORE"].includes(policy)) {
    throw new ServingError(
      Code.UNIMPLEMENTED,
      `${ctx.op} node "${ctx.name}": attr bad_indices_policy="${policy}" is not supported ` +
        "(supported: DEFAULT, ERROR, IGNORE)",
    );
  }
  return policy === "IGNORE";
}

/**
 * DoScatterNd's loop: each update slice combined into `out` (which holds the initial values and
 * is not empty) at the row its index names, in order, failing at the first index out of range
 * (or, with `ignoreBad`, skipping it as bad_indices_policy IGNORE does).
 */
function applyScatterNd(
  plan: ScatterPlan,
  indices: Tensor,
  updates: Tensor,
  out: TensorData,
  op: UpdateOp,
  ignoreBad: boolean,
): void {
  const { shape, sliceDim, slice, numUpdates } = plan;
  if (sliceDim < 1 || sliceDim > 7) {
    throw invalidArgument(
      `Only indices.shape[-1] values between 1 and 5 are currently supported.  Requested rank: ${sliceDim}`,
    );
  }
  const unit = unitOf(updates.dtype);
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
      if (ignoreBad) continue;
      throw invalidArgument(
        `indices${sliceDebugString(indices.shape.slice(0, -1), i)} = [${
          indexRow(idx, i, sliceDim)
        }] does not index into shape ${shapeString(shape)}`,
      );
    }
    if (op === "add") accumulate(updates.dtype, out, off * unit, updates.data, i * run, run);
    else if (op === "update") copyRun(out, off * unit, updates.data, i * run, run);
    else combine(op, updates.dtype, out, off * unit, updates.data, i * run, run);
  }
}

/**
 * out[o…o+n) = out - upd, max(out, upd) or min(out, upd) in the dtype's arithmetic: Eigen's
 * `p -= u`, `p.cwiseMax(u)` = `p < u ? u : p`, `p.cwiseMin(u)` = `u < p ? u : p`.
 */
function combine(
  op: "sub" | "max" | "min",
  dtype: DataType,
  out: TensorData,
  o: number,
  upd: TensorData,
  u: number,
  n: number,
): void {
  const f = op === "sub"
    ? <V extends number | bigint>(p: V, q: V) => (p as number) - (q as number)
    : op === "max"
    ? <V extends number | bigint>(p: V, q: V) => (p < q ? q : p)
    : <V extends number | bigint>(p: V, q: V) => (q < p ? q : p);
  if (dtype === DataType.DT_HALF || dtype === DataType.DT_BFLOAT16) {
    const half = dtype === DataType.DT_HALF;
    const toNumber = half ? halfBitsToNumber : bfloat16BitsToNumber;
    const d = out as Uint16Array;
    const s = upd as Uint16Array;
    for (let j = 0; j < n; j++) {
      const v = f(toNumber(d[o + j]), toNumber(s[u + j]));
      d[o + j] = half ? numberToHalfBits(v) : numberToBfloat16Bits(v);
    }
    return;
  }
  // Stores wrap (integers, bigints) or round (float32) to the element type.
  const d = out as unknown as (number | bigint)[];
  const s = upd as unknown as (number | bigint)[];
  for (let j = 0; j < n; j++) d[o + j] = f(d[o + j], s[u + j]);
}

/** TensorScatterOp::Compute's checks, with TF's messages. */
function checkTensorScatter(input: Tensor, indices: Tensor, updates: Tensor): void {
  const is = shapeString(indices.shape);
  const us = shapeString(updates.shape);
  const ss = shapeString(input.shape);
  if (indices.rank < 1) {
    throw invalidArgument(`Indices shape must have rank at least one. Found:${is}`);
  }
  if (updates.rank < 1) {
    throw invalidArgument(`Updates shape must have rank at least one. Found:${us}`);
  }
  if (!validEmptyOutput(input.size, indices.size, updates.size)) {
    throw invalidArgument("Indices and updates specified for empty output shape");
  }
  const outerDims = indices.rank - 1;
  for (let i = 0; i < outerDims; i++) {
    if (indices.shape[i] !== updates.shape[i]) {
      throw invalidArgument(
        "Outer dimensions of indices and update must match. Indices shape: " +
          `${is}, updates shape:${us}`,
      );
    }
  }
  const ix = indices.shape[outerDims];
  if (updates.rank - outerDims !== input.rank - ix) {
    throw invalidArgument(
      "Inner dimensions of output shape must match inner dimensions of updates shape. " +
        `Output: ${ss} updates: ${us}`,
    );
  }
  for (let i = 0; i + outerDims < updates.rank; i++) {
    if (updates.shape[i + outerDims] !== input.shape[ix + i]) {
      throw invalidArgument(
        `The inner ${input.rank - ix} dimensions of output.shape=${ss} must match the inner ${
          updates.rank - outerDims
        } dimensions of updates.shape=${us}`,
      );
    }
  }
}

/** The dtypes TF registers each TensorScatter op for on CPU. */
const TENSOR_SCATTER_TYPES: Record<UpdateOp, readonly DataType[] | "all"> = {
  update: "all",
  add: [...REALS, DataType.DT_COMPLEX64, DataType.DT_COMPLEX128],
  sub: [...REALS, DataType.DT_COMPLEX64, DataType.DT_COMPLEX128],
  max: REALS,
  min: REALS,
};

/**
 * TensorScatterUpdate/Add/Sub/Max/Min(tensor, indices, updates): a copy of `tensor` with the
 * update slices combined in at the rows `indices` names, in index order (a repeated index sees
 * the earlier updates: Update keeps the last).
 */
function tensorScatterKernel(op: string, update: UpdateOp): Kernel {
  return {
    op,
    compile(ctx) {
      const allowed = TENSOR_SCATTER_TYPES[update];
      const check = (t: DataType) => {
        if (allowed !== "all" && !allowed.includes(t)) throw unsupportedDtype(op, ctx.name, t);
      };
      if (ctx.attr.has("T")) check(ctx.attr.type("T"));
      const ignoreBad = ignoresBadIndices(ctx);
      return (inputs) => {
        const [input, indices, updates] = inputs;
        check(input.dtype);
        if (updates.dtype !== input.dtype) {
          throw invalidArgument(
            `${op} needs updates of the tensor's type, got ${dtypeName(updates.dtype)} and ` +
              `${dtypeName(input.dtype)} (node "${ctx.name}")`,
          );
        }
        checkTensorScatter(input, indices, updates);
        const plan = planScatterNd(indices, updates, input.shape);
        const out = allocLike(input.data, input.data.length);
        copyRun(out, 0, input.data, 0, input.data.length);
        if (input.size > 0) applyScatterNd(plan, indices, updates, out, update, ignoreBad);
        return [new Tensor(input.dtype, input.shape, out)];
      };
    },
  };
}

/**
 * The scatter kernels: ScatterNd and TensorScatterUpdate/Add/Sub/Max/Min.
 */
export const scatterKernels: Kernel[] = [
  {
    op: "ScatterNd",
    compile(ctx) {
      const ignoreBad = ignoresBadIndices(ctx);
      return (inputs) => [scatterNd(inputs[0], inputs[1], inputs[2], ignoreBad)];
    },
  },
  tensorScatterKernel("TensorScatterUpdate", "update"),
  tensorScatterKernel("TensorScatterAdd", "add"),
  tensorScatterKernel("TensorScatterSub", "sub"),
  tensorScatterKernel("TensorScatterMax", "max"),
  tensorScatterKernel("TensorScatterMin", "min"),
];
