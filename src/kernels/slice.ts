/**
 * Slicing: StridedSlice (with TF's mask processing, exposed as planStridedSlice) and Slice.
 * Identity slices return the input's storage.
 *
 * Messages follow TensorFlow's kernels (strided_slice_op.cc, util/strided_slice_op.cc, slice_op.cc).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { type Shape, shapeString, sizeOf, Tensor, toIntArray } from "../tensor/tensor.ts";
import {
  allocLike,
  arithmetic,
  gatherOffsets,
  passThrough,
  productOffsets,
  reshaped,
  type Slots,
  stridesOf,
  unitOf,
  viewRange,
} from "./array_common.ts";
import type { Kernel } from "./kernel.ts";

// ---------------------------------------------------------------------------------------------
// Slicing.

/** Masks of a StridedSlice node. */
interface SliceMasks {
  begin: number;
  end: number;
  ellipsis: number;
  newAxis: number;
  shrink: number;
}

/** The dense, canonical form of a strided slice (TF's ValidateStridedSliceOp results). */
export interface StridedSlicePlan {
  /** True when the slice takes the whole input: the output is a reshape of it. */
  identity: boolean;
  /** True when only dim 0 is restricted with stride 1: the output is a contiguous block. */
  sliceDim0: boolean;
  /** Canonical begin per input dim. */
  begin: number[];
  /** Canonical end per input dim. */
  end: number[];
  /** Stride per input dim. */
  strides: number[];
  /** Size per input dim of the sliced region. */
  processingShape: number[];
  /** The output shape, with shrunk dims removed and new axes added. */
  finalShape: number[];
}

const SHRINK_AXIS = -1;
const NEW_AXIS = -2;

/**
 * Canonicalises a strided slice spec against an input shape, following TensorFlow's
 * `ValidateStridedSliceOp` (tensorflow/core/util/strided_slice_op.cc) step by step: expand the
 * ellipsis (an implicit one at the end if none), place new axes, resolve masks and negative
 * indices, clamp, and compute the processing and final shapes.
 *
 * @example
 * ```ts
 * // x[1:, ::-1] on shape [3, 4]
 * planStridedSlice([3, 4], [1, 0], [0, 0], [1, -1], { begin: 2, end: 3, ellipsis: 0, newAxis: 0, shrink: 0 });
 * // → processingShape [2, 4], finalShape [2, 4]
 * ```
 */
export function planStridedSlice(
  inShape: Shape,
  sparseBegin: readonly number[],
  sparseEnd: readonly number[],
  sparseStrides: readonly number[],
  masks: SliceMasks,
): StridedSlicePlan {
  let ellipsis = masks.ellipsis;
  if (ellipsis !== 0 && (ellipsis & (ellipsis - 1)) !== 0) {
    throw invalidArgument("Multiple ellipses in slice spec not allowed");
  }
  // Step 1: count new axes after the ellipsis; add an ellipsis at the end if there is none.
  let sparseDims = sparseStrides.length;
  let numAddAxisAfterEllipsis = 0;
  let ellipsisSeen = false;
  for (let i = 0; i < sparseDims; i++) {
    if (ellipsisSeen && ((1 << i) & masks.newAxis) !== 0) numAddAxisAfterEllipsis++;
    if (((1 << i) & ellipsis) !== 0) ellipsisSeen = true;
  }
  if (!ellipsisSeen) {
    ellipsis |= 1 << sparseDims;
    sparseDims++;
  }
  // Step 2: the dense spec, one entry per input dim.
  const dims = inShape.length;
  const begin = new Array<number>(dims).fill(0);
  const end = new Array<number>(dims).fill(0);
  const strides = new Array<number>(dims).fill(1);
  let beginMask = 0;
  let endMask = 0;
  let shrinkMask = 0;
  const gather: number[] = [];
  let full = 0;
  for (let i = 0; i < sparseDims; i++) {
    const bit = 1 << i;
    if ((bit & ellipsis) !== 0) {
      const next = Math.min(dims - (sparseDims - i) + 1 + numAddAxisAfterEllipsis, dims);
      for (; full < next; full++) {
        begin[full] = end[full] = 0;
        strides[full] = 1;
        beginMask |= 1 << full;
        endMask |= 1 << full;
        gather.push(full);
      }
    } else if ((bit & masks.newAxis) !== 0) {
      gather.push(NEW_AXIS);
    } else {
      if (full === dims) {
        throw invalidArgument(
          `Index out of range using input dim ${full}; input has only ${dims} dims`,
        );
      }
      begin[full] = sparseBegin[i];
      end[full] = sparseEnd[i];
      strides[full] = sparseStrides[i];
      if ((masks.begin & bit) !== 0) beginMask |= 1 << full;
      if ((masks.end & bit) !== 0) endMask |= 1 << full;
      if ((masks.shrink & bit) !== 0) {
        gather.push(SHRINK_AXIS);
        shrinkMask |= 1 << full;
      } else gather.push(full);
      full++;
    }
  }
  // Step 3: make the ranges explicit and bounds-check them.
  let identity = true;
  let sliceDim0 = true;
  const processingShape = new Array<number>(dims);
  for (let i = 0; i < dims; i++) {
    const bit = 1 << i;
    const stride = strides[i];
    const n = inShape[i];
    if (stride === 0) throw invalidArgument(`strides[${i}] must be non-zero`);
    const shrink = (shrinkMask & bit) !== 0;
    if (shrink && stride <= 0) {
      throw invalidArgument("only stride 1 allowed on non-range indexing.");
    }
    const lo = stride > 0 ? 0 : -1;
    const hi = stride > 0 ? n : n - 1;
    let b = begin[i];
    let e = end[i];
    if (shrink) {
      // foo[-1] arrives as begin -1, end 0; rebuild end as begin + 1.
      b = b < 0 ? n + b : b;
      e = b + 1;
      if (b < 0 || b >= n) {
        throw invalidArgument(`slice index ${b} of dimension ${i} out of bounds.`);
      }
    } else {
      if ((beginMask & bit) !== 0) b = stride > 0 ? lo : hi;
      else {
        const f = b < 0 ? n + b : b;
        b = f < lo ? lo : f > hi ? hi : f;
      }
      if ((endMask & bit) !== 0) e = stride > 0 ? hi : lo;
      else {
        const f = e < 0 ? n + e : e;
        e = f < lo ? lo : f > hi ? hi : f;
      }
    }
    begin[i] = b;
    end[i] = e;
    const takeAll = stride === 1 && b === 0 && e === n;
    identity &&= takeAll;
    sliceDim0 &&= (i === 0 && stride === 1) || takeAll;
    const interval = e - b;
    let size: number;
    if (interval === 0 || (interval < 0) !== (stride < 0)) size = 0;
    else size = Math.trunc(interval / stride) + (interval % stride !== 0 ? 1 : 0);
    processingShape[i] = size;
  }
  // Step 4: the final shape drops shrunk dims and adds new axes.
  const finalShape: number[] = [];
  for (const g of gather) {
    if (g >= 0) finalShape.push(processingShape[g]);
    else if (g === NEW_AXIS) finalShape.push(1);
  }
  return { identity, sliceDim0, begin, end, strides, processingShape, finalShape };
}

/** Copies the region `begin + i * stride` (`sizes[d]` positions per dim) of `t`. */
function stridedCopy(
  t: Tensor,
  begin: readonly number[],
  strides: readonly number[] | null,
  sizes: readonly number[],
  outShape: Shape,
): Tensor {
  const unit = unitOf(t.dtype);
  if (sizeOf(sizes) === 0) return new Tensor(t.dtype, outShape, allocLike(t.data, 0));
  // Only dim 0 restricted with stride 1: one contiguous block, shared.
  let dim0 = strides === null || strides[0] === 1;
  for (let d = 1; d < sizes.length && dim0; d++) {
    dim0 = begin[d] === 0 && sizes[d] === t.shape[d] && (strides === null || strides[d] === 1);
  }
  if (dim0 && sizes.length > 0) {
    const row = (t.size / t.shape[0]) * unit;
    return new Tensor(
      t.dtype,
      outShape,
      viewRange(t.data, begin[0] * row, (begin[0] + sizes[0]) * row),
    );
  }
  const outSize = sizeOf(sizes);
  if (outSize <= SMALL_SLICE) {
    return new Tensor(t.dtype, outShape, smallCopy(t, begin, strides, sizes));
  }
  const maps = sizes.map((n, d) => arithmetic(begin[d], strides === null ? 1 : strides[d], n));
  const data = gatherOffsets(t.data, productOffsets(t.shape, maps, unit), unit);
  return new Tensor(t.dtype, outShape, data);
}

/**
 * Slices of at most this many elements are copied element by element: the offset tables of the
 * general path are typed arrays, and a fresh typed array costs about as much as the whole copy
 * of a few elements (the shape and index arithmetic of graphs slices many such tensors).
 */
const SMALL_SLICE = 64;

/** stridedCopy's region, element by element with an odometer (for small outputs). */
function smallCopy(
  t: Tensor,
  begin: readonly number[],
  strides: readonly number[] | null,
  sizes: readonly number[],
): Tensor["data"] {
  const unit = unitOf(t.dtype);
  const rank = sizes.length;
  const inStrides = stridesOf(t.shape, unit);
  const step = new Array<number>(rank);
  let off = 0;
  for (let d = 0; d < rank; d++) {
    off += begin[d] * inStrides[d];
    step[d] = (strides === null ? 1 : strides[d]) * inStrides[d];
  }
  const outSize = sizeOf(sizes);
  const out = allocLike(t.data, outSize * unit);
  const src = t.data as unknown as Slots, dst = out as unknown as Slots;
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < outSize; o++) {
    for (let u = 0; u < unit; u++) dst[o * unit + u] = src[off + u];
    for (let d = rank - 1; d >= 0; d--) {
      off += step[d];
      if (++idx[d] < sizes[d]) break;
      off -= step[d] * sizes[d];
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * True when `data` holds exactly the numbers of `want` (int32 / int64 index tensors: bigints
 * compare by value; anything else is never equal, so the caller reads it afresh).
 */
function sameInts(data: unknown, want: readonly number[]): boolean {
  const d = data as ArrayLike<number | bigint>;
  if (d.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (Number(d[i]) !== want[i]) return false;
  return true;
}

/** The slicing kernels: StridedSlice and Slice. */
export const sliceKernels: Kernel[] = [
  {
    op: "StridedSlice",
    compile(ctx) {
      const masks: SliceMasks = {
        begin: ctx.attr.int("begin_mask", 0),
        end: ctx.attr.int("end_mask", 0),
        ellipsis: ctx.attr.int("ellipsis_mask", 0),
        newAxis: ctx.attr.int("new_axis_mask", 0),
        shrink: ctx.attr.int("shrink_axis_mask", 0),
      };
      let cached: StridedSlicePlan | undefined;
      let cachedShape: number[] = [], cb: number[] = [], ce: number[] = [], cs: number[] = [];
      let ct = -1;
      return (inputs) => {
        const [t, beginT, endT, stridesT] = inputs;
        const n = stridesT.size;
        if (
          beginT.rank !== 1 || beginT.size !== n || n >= 32 || endT.rank !== 1 ||
          endT.size !== n || stridesT.rank !== 1
        ) {
          throw invalidArgument(
            `Expected begin, end, and strides to be 1D equal size tensors, but got shapes ${
              shapeString(beginT.shape)
            }, ${shapeString(endT.shape)}, and ${shapeString(stridesT.shape)} instead.`,
          );
        }
        // begin, end and strides are constants in almost every graph, and the input's shape
        // rarely changes between runs: reuse the last plan when all four are as they were.
        let plan = cached;
        if (
          plan === undefined || beginT.dtype !== ct || endT.dtype !== ct || stridesT.dtype !== ct ||
          !sameInts(t.shape, cachedShape) || !sameInts(beginT.data, cb) ||
          !sameInts(endT.data, ce) || !sameInts(stridesT.data, cs)
        ) {
          cb = toIntArray(beginT, "begin");
          ce = toIntArray(endT, "end");
          cs = toIntArray(stridesT, "strides");
          plan = planStridedSlice(t.shape, cb, ce, cs, masks);
          cached = plan;
          ct = beginT.dtype === endT.dtype && endT.dtype === stridesT.dtype ? beginT.dtype : -1;
          cachedShape = t.shape.slice();
        }
        if (plan.identity) return [reshaped(t, plan.finalShape)];
        return [stridedCopy(t, plan.begin, plan.strides, plan.processingShape, plan.finalShape)];
      };
    },
  },
  {
    op: "Slice",
    compile: () => (inputs) => {
      const [t, beginT, sizeT] = inputs;
      const rank = t.rank;
      if (beginT.rank !== 1 || sizeT.rank !== 1 || beginT.size !== rank || sizeT.size !== rank) {
        throw invalidArgument(
          `Expected begin and size arguments to be 1-D tensors of size ${rank}, but got shapes ${
            shapeString(beginT.shape)
          } and ${shapeString(sizeT.shape)} instead.`,
        );
      }
      const begin = toIntArray(beginT, "begin");
      const sizes = toIntArray(sizeT, "size");
      let whole = true;
      for (let i = 0; i < rank; i++) {
        const n = t.shape[i];
        const b = begin[i];
        if (sizes[i] === -1) sizes[i] = n - b;
        const s = sizes[i];
        if (n === 0) {
          if (b !== 0 || s !== 0) {
            throw invalidArgument(
              `Expected begin[${i}] == 0 (got ${b}) and size[${i}] == 0 (got ${s}) when ` +
                `input.dim_size(${i}) == 0`,
            );
          }
        } else {
          if (!(b >= 0 && b <= n)) {
            throw invalidArgument(`Expected begin[${i}] in [0, ${n}], but got ${b}`);
          }
          if (!(s >= 0 && b + s <= n)) {
            throw invalidArgument(`Expected size[${i}] in [0, ${n - b}], but got ${s}`);
          }
        }
        whole &&= b === 0 && s === n;
      }
      if (whole) return [passThrough(t)];
      return [stridedCopy(t, begin, null, sizes, sizes)];
    },
  },
];
