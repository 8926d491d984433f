/**
 * Array, shape and basic graph ops: constants and identities, shape queries and checks
 * (EnsureShape), reshaping, slicing, joining and splitting, reversing, padding, gathering
 * (Gather, GatherNd) and scattering (ScatterNd), tiling, selection and top-k.
 *
 * Data movement works on every dtype: numeric tensors are copied by index in their typed arrays
 * (complex types move as pairs of lanes), DT_STRING tensors (`Uint8Array[]`) and DT_RESOURCE
 * tensors move their element objects. Ops that only change the shape (Identity, Reshape,
 * ExpandDims, Squeeze, identity slices) return the input's storage without copying; tensors are
 * immutable, so sharing is safe.
 *
 * Messages follow TensorFlow's kernels (array_ops.cc, strided_slice_op.cc, gather_op.cc,
 * split_op.cc, split_v_op.cc, gather_nd_op.h, scatter_nd_op.cc, reverse_op.cc, …) so
 * clients that match on TF's wording keep working.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import {
  baseType,
  DataType,
  dtypeName,
  isNumeric,
  lanes,
  type NumericArray,
} from "../tensor/dtype.ts";
import {
  type Shape,
  shapeString,
  sizeOf,
  Tensor,
  type TensorData,
  toIntArray,
} from "../tensor/tensor.ts";
import {
  bfloat16BitsToNumber,
  halfBitsToNumber,
  numberToBfloat16Bits,
  numberToHalfBits,
} from "./elementwise.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";

// ---------------------------------------------------------------------------------------------
// Storage helpers. "Units" are array slots: one per element, two per complex element.

/** A view of any storage as plain indexable slots, for generic element copies. */
type Slots = unknown[];

/** Array slots per tensor element (2 for complex, else 1). */
function unitOf(dtype: DataType): number {
  return lanes(dtype);
}

/** Fresh storage of the same kind as `like` with `len` slots. */
function allocLike(like: TensorData, len: number): TensorData {
  if (Array.isArray(like)) return new Array(len) as Uint8Array[];
  const ctor = (like as NumericArray).constructor as new (n: number) => NumericArray;
  return new ctor(len);
}

/** Below this many slots a plain loop beats `set(subarray())`, which allocates a view. */
const RUN_MIN = 24;

/** Copies `len` slots from `src[sOff…]` to `dst[dOff…]`. */
function copyRun(dst: TensorData, dOff: number, src: TensorData, sOff: number, len: number): void {
  if (len >= RUN_MIN && !Array.isArray(dst)) {
    (dst as Float64Array).set((src as Float64Array).subarray(sOff, sOff + len), dOff);
    return;
  }
  const d = dst as unknown as Slots;
  const s = src as unknown as Slots;
  for (let i = 0; i < len; i++) d[dOff + i] = s[sOff + i];
}

/** Slots `[start, end)` of `src`: a view (no copy) for typed arrays, a shallow copy for arrays. */
function viewRange(src: TensorData, start: number, end: number): TensorData {
  if (Array.isArray(src)) return src.slice(start, end) as Uint8Array[];
  return (src as Float64Array).subarray(start, end) as NumericArray;
}

/** Fills every element of `dst` with the element at `src[sOff…sOff+unit)`. */
function fillWith(dst: TensorData, src: TensorData, sOff: number, unit: number): void {
  const n = dst.length;
  if (unit === 1) {
    (dst as unknown as Slots).fill((src as unknown as Slots)[sOff]);
    return;
  }
  for (let o = 0; o < n; o += unit) copyRun(dst, o, src, sOff, unit);
}

/** A tensor with the same storage and dtype as `t` but another shape (drops any ref). */
function reshaped(t: Tensor, shape: Shape): Tensor {
  return new Tensor(t.dtype, shape, t.data);
}

/** Row-major strides of `shape` in slots. */
function stridesOf(shape: Shape, unit: number): number[] {
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
function gatherOffsets(src: TensorData, offsets: Int32Array[], unit: number): TensorData {
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
function productOffsets(shape: Shape, maps: ArrayLike<number>[], unit: number): Int32Array[] {
  const strides = stridesOf(shape, unit);
  return maps.map((m, d) => {
    const o = new Int32Array(m.length);
    for (let i = 0; i < m.length; i++) o[i] = m[i] * strides[d];
    return o;
  });
}

/** Positions `begin, begin + stride, …` (`count` of them). */
function arithmetic(begin: number, stride: number, count: number): Int32Array {
  const m = new Int32Array(count);
  for (let i = 0; i < count; i++) m[i] = begin + i * stride;
  return m;
}

// ---------------------------------------------------------------------------------------------
// Reading inputs.

/** TensorFlow's DataTypeString: `float`, `int32`, `string`, … */
function dataTypeString(dtype: DataType): string {
  const name = dtypeName(dtype);
  return name.startsWith("DT_") ? name.slice(3).toLowerCase() : name;
}

/** Reads a scalar (or one-element) integer input. */
function scalarInt(t: Tensor, what: string, message?: string): number {
  if (t.size !== 1) {
    throw invalidArgument(message ?? `${what} must be a scalar, got shape ${shapeString(t.shape)}`);
  }
  return toIntArray(t, what)[0];
}

/** Reads a shape input (vector or scalar) whose dims must be non-negative. */
function shapeInput(t: Tensor, what: string): number[] {
  if (t.rank > 1) {
    throw invalidArgument(`${what} must represent a vector, got shape ${shapeString(t.shape)}`);
  }
  const dims = toIntArray(t, what);
  for (const d of dims) if (d < 0) throw invalidArgument(`Dimension ${d} must be >= 0`);
  return dims;
}

/** An int32 or int64 tensor of `values`. */
function intTensor(dtype: DataType, values: readonly number[], shape: Shape): Tensor {
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
function indexType(ctx: KernelContext, name: string, dflt = DataType.DT_INT32): DataType {
  return ctx.attr.typeIn(name, [DataType.DT_INT32, DataType.DT_INT64], dflt);
}

/** Same value, no ref: the pass-through of Identity and friends. */
function passThrough(t: Tensor): Tensor {
  return t.ref === undefined ? t : reshaped(t, t.shape);
}

// ---------------------------------------------------------------------------------------------
// Graph basics.

const identity: KernelRun = (inputs) => [passThrough(inputs[0])];

function identityKernel(op: string): Kernel {
  return { op, compile: () => identity };
}

const graphKernels: Kernel[] = [
  {
    op: "Const",
    compile(ctx) {
      // Converted once: every run returns the same immutable tensor.
      const value = ctx.attr.tensor("value");
      if (ctx.attr.has("dtype")) {
        const dtype = baseType(ctx.attr.type("dtype"));
        if (dtype !== value.dtype) {
          throw invalidArgument(
            `Type mismatch between value (${dataTypeString(value.dtype)}) and dtype (${
              dataTypeString(dtype)
            })`,
          );
        }
      }
      const out = [value];
      return () => out;
    },
  },
  identityKernel("Identity"),
  identityKernel("StopGradient"),
  identityKernel("PreventGradient"),
  identityKernel("Snapshot"),
  identityKernel("PlaceholderWithDefault"),
  { op: "IdentityN", compile: () => (inputs) => inputs.map(passThrough) },
  { op: "NoOp", compile: () => () => [] },
  {
    op: "Placeholder",
    compile(ctx) {
      const dtype = ctx.attr.type("dtype");
      const shape = ctx.attr.has("shape") ? ctx.attr.shape("shape") : undefined;
      // As TF's PlaceholderOp: the shape is named only when its rank is known and non-zero.
      let message = `You must feed a value for placeholder tensor '${ctx.name}' with dtype ${
        dataTypeString(dtype)
      }`;
      if (shape !== undefined && shape.length > 0) {
        message += ` and shape [${shape.map((d) => (d < 0 ? "?" : String(d))).join(",")}]`;
      }
      return () => {
        throw invalidArgument(message);
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Shape queries.

const shapeKernels: Kernel[] = [
  {
    op: "Shape",
    compile(ctx) {
      const outType = indexType(ctx, "out_type");
      return (inputs) => [intTensor(outType, inputs[0].shape, [inputs[0].rank])];
    },
  },
  {
    op: "ShapeN",
    compile(ctx) {
      const outType = indexType(ctx, "out_type");
      return (inputs) => inputs.map((t) => intTensor(outType, t.shape, [t.rank]));
    },
  },
  {
    op: "Size",
    compile(ctx) {
      const outType = indexType(ctx, "out_type");
      return (inputs) => [intTensor(outType, [inputs[0].size], [])];
    },
  },
  {
    // Rank has no out_type: it is always int32.
    op: "Rank",
    compile: () => (inputs) => [intTensor(DataType.DT_INT32, [inputs[0].rank], [])],
  },
];

// ---------------------------------------------------------------------------------------------
// Reshaping.

/** Reshape's size check and -1 inference, as TF's ReshapeOp. */
function reshapeShape(input: Tensor, sizesT: Tensor): number[] {
  if (sizesT.rank > 1) {
    throw invalidArgument(`sizes input must be 1-D, not ${shapeString(sizesT.shape)}`);
  }
  const sizes = toIntArray(sizesT, "shape");
  const shape = new Array<number>(sizes.length);
  let product = 1;
  let unknown = -1;
  let sizesHaveZero = false;
  for (let d = 0; d < sizes.length; d++) {
    const s = sizes[d];
    if (s === -1) {
      if (unknown !== -1) {
        throw invalidArgument(`Only one input size may be -1, not both ${unknown} and ${d}`);
      }
      unknown = d;
      shape[d] = 1;
    } else if (s < 0) {
      throw invalidArgument(`Size ${d} must be non-negative, not ${s}`);
    } else {
      // Zero dims stay out of the product so the other dims can still be inferred.
      if (s === 0) sizesHaveZero = true;
      else product *= s;
      shape[d] = s;
    }
  }
  if (unknown !== -1) {
    let inputElements = 1;
    let inputHasZero = false;
    for (const d of input.shape) {
      if (d > 0 || !sizesHaveZero) inputElements *= d;
      else inputHasZero = true;
    }
    const missing = Math.floor(inputElements / product);
    if (!inputHasZero && product * missing !== inputElements) {
      throw invalidArgument(
        `Input to reshape is a tensor with ${inputElements} values, but the requested shape ` +
          `requires a multiple of ${product}`,
      );
    }
    shape[unknown] = missing;
  }
  const n = sizeOf(shape);
  if (n !== input.size) {
    throw invalidArgument(
      `Input to reshape is a tensor with ${input.size} values, but the requested shape has ${n}`,
    );
  }
  return shape;
}

const reshapeKernels: Kernel[] = [
  {
    op: "Reshape",
    compile: () => (inputs) => [reshaped(inputs[0], reshapeShape(inputs[0], inputs[1]))],
  },
  {
    op: "ExpandDims",
    compile: () => (inputs) => {
      const t = inputs[0];
      const rank = t.rank;
      let dim = scalarInt(inputs[1], "dim", "'dim' must be a tensor with a single value");
      if (dim < -1 - rank || dim > rank) {
        throw invalidArgument(
          `Tried to expand dim index ${dim} for tensor with ${rank} dimensions.`,
        );
      }
      if (dim < 0) dim = Math.min(dim + rank + 1, rank);
      const shape = t.shape.slice();
      shape.splice(dim, 0, 1);
      return [reshaped(t, shape)];
    },
  },
  {
    op: "Squeeze",
    compile(ctx) {
      // The op def calls it squeeze_dims; accept `axis` too, as some exporters write it.
      const dims = ctx.attr.has("squeeze_dims")
        ? ctx.attr.ints("squeeze_dims", [])
        : ctx.attr.ints("axis", []);
      return (inputs) => {
        const t = inputs[0];
        const rank = t.rank;
        const squeeze = new Array<boolean>(rank).fill(false);
        for (const d of dims) {
          if (d < -rank || d >= rank) {
            throw invalidArgument(
              `Tried to squeeze dim index ${d} for tensor with ${rank} dimensions.`,
            );
          }
          squeeze[d < 0 ? d + rank : d] = true;
        }
        const shape: number[] = [];
        for (let i = 0; i < rank; i++) {
          const n = t.shape[i];
          if (dims.length === 0) {
            if (n !== 1) shape.push(n);
          } else if (squeeze[i]) {
            if (n !== 1) {
              throw invalidArgument(
                `Can not squeeze dim[${i}], expected a dimension of 1, got ${n}`,
              );
            }
          } else shape.push(n);
        }
        return [reshaped(t, shape)];
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Joining and splitting.

/** ConcatV2 / Concat: validation as TF's ConcatBaseOp, then one run per input per outer row. */
function concat(values: Tensor[], axisT: Tensor, axisName: string): Tensor {
  if (axisT.rank !== 0) {
    throw invalidArgument(
      `${axisName} tensor should be a scalar integer, but got shape ${shapeString(axisT.shape)}`,
    );
  }
  const concatDim = toIntArray(axisT, axisName)[0];
  const first = values[0];
  let shape0 = first.shape;
  let rank = shape0.length;
  // Legacy scalars: concatenating scalars on axis 0 makes a vector.
  const legacyScalars = rank === 0 && concatDim === 0;
  if (legacyScalars) {
    shape0 = [1];
    rank = 1;
  }
  const axis = concatDim < 0 ? concatDim + rank : concatDim;
  if (!(axis >= 0 && axis < rank)) {
    throw invalidArgument(
      `ConcatOp : Expected concatenating dimensions in the range [${-rank}, ${rank}), but got ${concatDim}`,
    );
  }
  if (values.length === 1) return passThrough(first);
  let axisTotal = 0;
  for (let i = 0; i < values.length; i++) {
    const s = legacyScalars && values[i].rank === 0 ? [1] : values[i].shape;
    if (s.length !== rank) {
      throw invalidArgument(
        `ConcatOp : Ranks of all input tensors should match: shape[0] = ${
          shapeString(first.shape)
        } vs. shape[${i}] = ${shapeString(values[i].shape)}`,
      );
    }
    for (let j = 0; j < rank; j++) {
      if (j !== axis && s[j] !== shape0[j]) {
        throw invalidArgument(
          `ConcatOp : Dimension ${j} in both shapes must be equal: shape[0] = ${
            shapeString(first.shape)
          } vs. shape[${i}] = ${shapeString(values[i].shape)}`,
        );
      }
    }
    axisTotal += s[axis];
  }
  const outShape = shape0.slice();
  outShape[axis] = axisTotal;
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= shape0[d];
  return new Tensor(first.dtype, outShape, joinRows(values, outer, sizeOf(outShape)));
}

/**
 * Interleaves the inputs row by row: for each of `outer` rows, each input contributes its next
 * `size / outer` slots. Shared by Concat and Pack.
 */
function joinRows(values: Tensor[], outer: number, outElems: number): TensorData {
  const unit = unitOf(values[0].dtype);
  const out = allocLike(values[0].data, outElems * unit);
  if (outer === 0) return out;
  const runs = values.map((v) => (v.size * unit) / outer);
  let o = 0;
  for (let r = 0; r < outer; r++) {
    for (let i = 0; i < values.length; i++) {
      const len = runs[i];
      if (len === 0) continue;
      copyRun(out, o, values[i].data, r * len, len);
      o += len;
    }
  }
  return out;
}

const joinKernels: Kernel[] = [
  {
    op: "ConcatV2",
    compile: () => (inputs) => [concat(inputs.slice(0, -1), inputs[inputs.length - 1], "axis")],
  },
  {
    op: "Concat",
    compile: () => (inputs) => [concat(inputs.slice(1), inputs[0], "concat_dim")],
  },
  {
    op: "Pack",
    compile(ctx) {
      const axisAttr = ctx.attr.int("axis", 0);
      return (inputs) => {
        const first = inputs[0];
        const expanded = first.rank + 1;
        if (!(axisAttr >= -expanded && axisAttr < expanded)) {
          throw invalidArgument(`axis = ${axisAttr} not in [${-expanded}, ${expanded})`);
        }
        const axis = axisAttr < 0 ? axisAttr + expanded : axisAttr;
        for (let i = 1; i < inputs.length; i++) {
          const s = inputs[i].shape;
          if (s.length !== first.rank || s.some((d, j) => d !== first.shape[j])) {
            throw invalidArgument(
              `Shapes of all inputs must match: values[0].shape = ${
                shapeString(first.shape)
              } != values[${i}].shape = ${shapeString(s)}`,
            );
          }
        }
        const outShape = first.shape.slice();
        outShape.splice(axis, 0, inputs.length);
        if (inputs.length === 1) return [reshaped(first, outShape)];
        let outer = 1;
        for (let d = 0; d < axis; d++) outer *= first.shape[d];
        return [
          new Tensor(first.dtype, outShape, joinRows(inputs, outer, sizeOf(outShape))),
        ];
      };
    },
  },
  {
    op: "Unpack",
    compile(ctx) {
      const num = ctx.attr.int("num");
      const axisAttr = ctx.attr.int("axis", 0);
      return (inputs) => {
        const t = inputs[0];
        const rank = t.rank;
        const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
        if (!(axis >= 0 && axis < rank)) {
          throw invalidArgument(`axis = ${axisAttr} not in [${-rank}, ${rank})`);
        }
        if (t.shape[axis] !== num) {
          throw invalidArgument(
            `Input shape axis ${axis} must equal ${num}, got shape ${shapeString(t.shape)}`,
          );
        }
        const outShape = t.shape.slice();
        outShape.splice(axis, 1);
        const unit = unitOf(t.dtype);
        let outer = 1;
        for (let d = 0; d < axis; d++) outer *= t.shape[d];
        const inner = sizeOf(outShape) / (outer || 1) * unit;
        const out: Tensor[] = new Array(num);
        for (let i = 0; i < num; i++) {
          let data: TensorData;
          if (outer === 1) {
            // Each output is one contiguous block: a view, no copy.
            data = viewRange(t.data, i * inner, (i + 1) * inner);
          } else {
            data = allocLike(t.data, outer * inner);
            for (let r = 0; r < outer; r++) {
              copyRun(data, r * inner, t.data, (r * num + i) * inner, inner);
            }
          }
          out[i] = new Tensor(t.dtype, outShape, data);
        }
        return out;
      };
    },
  },
];

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
  const maps = sizes.map((n, d) => arithmetic(begin[d], strides === null ? 1 : strides[d], n));
  const data = gatherOffsets(t.data, productOffsets(t.shape, maps, unit), unit);
  return new Tensor(t.dtype, outShape, data);
}

const sliceKernels: Kernel[] = [
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
        const plan = planStridedSlice(
          t.shape,
          toIntArray(beginT, "begin"),
          toIntArray(endT, "end"),
          toIntArray(stridesT, "strides"),
          masks,
        );
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

// ---------------------------------------------------------------------------------------------
// Transpose, reverse, tile, broadcast.

/** Transposes `t` by `perm` (validated). Identity permutations (ignoring 1-dims) share storage. */
function transpose(t: Tensor, perm: readonly number[]): Tensor {
  const rank = t.rank;
  const outShape = perm.map((p) => t.shape[p]);
  // Dims of size 1 do not move data: if the others keep their order it is a reshape.
  let prev = -1;
  let inOrder = true;
  for (const p of perm) {
    if (t.shape[p] === 1) continue;
    if (p < prev) {
      inOrder = false;
      break;
    }
    prev = p;
  }
  if (inOrder || rank <= 1) return reshaped(t, outShape);
  const unit = unitOf(t.dtype);
  const strides = stridesOf(t.shape, unit);
  const offsets = perm.map((p) => arithmetic(0, strides[p], t.shape[p]));
  return new Tensor(t.dtype, outShape, gatherOffsets(t.data, offsets, unit));
}

/**
 * Transposes `t` by a valid permutation `perm` (output dim i is input dim perm[i]), for kernels
 * of other families (Einsum); identity permutations share the input's storage.
 */
export function transposeTensor(t: Tensor, perm: readonly number[]): Tensor {
  return transpose(t, perm);
}

/** Reads and checks a permutation as TF's TransposeOp. */
function permInput(t: Tensor, permT: Tensor): number[] {
  if (permT.rank !== 1) {
    throw invalidArgument(`perm must be rank 1, got shape ${shapeString(permT.shape)}`);
  }
  const perm = toIntArray(permT, "perm");
  const dims = t.rank;
  if (perm.length !== dims) {
    throw invalidArgument(
      `transpose expects a vector of size ${dims}. But input(1) is a vector of size ${perm.length}`,
    );
  }
  const seen = new Array<boolean>(dims).fill(false);
  for (const d of perm) {
    if (!(d >= 0 && d < dims)) throw invalidArgument(`${d} is out of range [0 .. ${dims})`);
    seen[d] = true;
  }
  for (let i = 0; i < dims; i++) {
    if (!seen[i]) throw invalidArgument(`${i} is missing from {${perm.join(",")}}.`);
  }
  return perm;
}

/** Broadcasts `t` to `outShape` (already known compatible) by repeating along 1-dims. */
function broadcastData(t: Tensor, outShape: Shape): TensorData {
  const unit = unitOf(t.dtype);
  const lead = outShape.length - t.rank;
  const strides = stridesOf(t.shape, unit);
  const offsets = outShape.map((n, d) => {
    const k = d - lead;
    if (k < 0 || t.shape[k] === 1) return new Int32Array(n);
    return arithmetic(0, strides[k], n);
  });
  return gatherOffsets(t.data, offsets, unit);
}

/** NumPy broadcasting of shapes; undefined when incompatible. */
function broadcastShapes(...shapes: Shape[]): number[] | undefined {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const lead = rank - s.length;
    for (let i = 0; i < s.length; i++) {
      const a = out[lead + i];
      const b = s[i];
      if (a === b || b === 1) continue;
      if (a === 1) out[lead + i] = b;
      else return undefined;
    }
  }
  return out;
}

function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `t` with the dims flagged in `rev` reversed (the input itself when none is). */
function reverseDims(t: Tensor, rev: readonly boolean[]): Tensor {
  if (!rev.some((r) => r)) return passThrough(t);
  const maps = t.shape.map((n, d) => (rev[d] ? arithmetic(n - 1, -1, n) : arithmetic(0, 1, n)));
  const unit = unitOf(t.dtype);
  return new Tensor(
    t.dtype,
    t.shape,
    gatherOffsets(t.data, productOffsets(t.shape, maps, unit), unit),
  );
}

const moveKernels: Kernel[] = [
  {
    op: "Transpose",
    compile: () => (inputs) => [transpose(inputs[0], permInput(inputs[0], inputs[1]))],
  },
  {
    op: "ReverseV2",
    compile: () => (inputs) => {
      const [t, axisT] = inputs;
      if (t.rank === 0) return [passThrough(t)];
      if (axisT.rank !== 1) throw invalidArgument(`'dims' must be 1-dimension, not ${axisT.rank}`);
      const rank = t.rank;
      const rev = new Array<boolean>(rank).fill(false);
      const axes = toIntArray(axisT, "axis");
      for (let i = 0; i < axes.length; i++) {
        const a = axes[i];
        const c = a < 0 ? rank + a : a;
        if (!(c >= 0 && c < rank)) {
          throw invalidArgument(`'axis'[${i}] = ${a} is out of valid range [0, ${rank - 1}`);
        }
        if (rev[c]) throw invalidArgument(`axis ${c} specified more than once.`);
        rev[c] = true;
      }
      return [reverseDims(t, rev)];
    },
  },
  {
    // Reverse (v1): a bool per dim instead of a list of axes.
    op: "Reverse",
    compile: () => (inputs) => {
      const [t, dimsT] = inputs;
      if (t.rank === 0) return [passThrough(t)];
      if (dimsT.rank !== 1) throw invalidArgument(`'dims' must be 1-dimension, not ${dimsT.rank}`);
      if (dimsT.shape[0] !== t.rank) {
        throw invalidArgument(
          `'dims' must have the same number of values as 'input' has dimensions. 'input' has ${t.rank}'dims' has ${
            dimsT.shape[0]
          } values`,
        );
      }
      if (t.rank > 8) {
        throw new ServingError(
          Code.UNIMPLEMENTED,
          "reverse is not implemented for tensors of rank > 8.",
        );
      }
      const flags = dimsT.numbers;
      return [reverseDims(t, Array.from({ length: t.rank }, (_, d) => flags[d] !== 0))];
    },
  },
  {
    op: "Tile",
    compile: () => (inputs) => {
      const [t, multT] = inputs;
      const rank = t.rank;
      if (multT.rank !== 1 || multT.size !== rank) {
        throw invalidArgument(
          `Expected multiples argument to be a vector of length ${rank} but got length ${
            multT.shape[0] ?? 0
          }`,
        );
      }
      const mult = toIntArray(multT, "multiples");
      for (let i = 0; i < rank; i++) {
        if (mult[i] < 0) {
          throw invalidArgument(`Expected multiples[${i}] >= 0, but got ${mult[i]}`);
        }
      }
      const outShape = t.shape.map((n, d) => n * mult[d]);
      if (mult.every((m) => m === 1)) return [passThrough(t)];
      const maps = outShape.map((n, d) => {
        const m = new Int32Array(n);
        const k = t.shape[d];
        for (let i = 0; i < n; i++) m[i] = i % k;
        return m;
      });
      const unit = unitOf(t.dtype);
      return [
        new Tensor(
          t.dtype,
          outShape,
          gatherOffsets(t.data, productOffsets(t.shape, maps, unit), unit),
        ),
      ];
    },
  },
  {
    op: "BroadcastTo",
    compile: () => (inputs) => {
      const [t, shapeT] = inputs;
      const outShape = shapeInput(shapeT, "shape");
      if (sameShape(t.shape, outShape)) return [passThrough(t)];
      const b = broadcastShapes(t.shape, outShape);
      if (b === undefined) {
        throw invalidArgument(
          `Incompatible shapes: ${shapeString(t.shape)} vs. ${shapeString(outShape)}`,
        );
      }
      if (!sameShape(b, outShape)) {
        throw invalidArgument(
          `Unable to broadcast tensor of shape ${shapeString(t.shape)} to tensor of shape ${
            shapeString(outShape)
          }`,
        );
      }
      return [new Tensor(t.dtype, outShape, broadcastData(t, outShape))];
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Padding.

/** Reads Pad's `[rank, 2]` paddings and checks them. */
function paddingsInput(t: Tensor, paddingsT: Tensor): number[] {
  if (paddingsT.rank !== 2 || paddingsT.shape[1] !== 2) {
    throw invalidArgument(
      `paddings must be a matrix with 2 columns: ${shapeString(paddingsT.shape)}`,
    );
  }
  if (paddingsT.shape[0] !== t.rank) {
    throw invalidArgument(
      `The first dimension of paddings must be the rank of inputs${shapeString(paddingsT.shape)}, ${
        shapeString(t.shape)
      }`,
    );
  }
  return toIntArray(paddingsT, "paddings");
}

/** Pads with the element `fill[fOff…]` as TF's PadOp. */
function padConstant(t: Tensor, pads: number[], fill: TensorData, fOff: number): Tensor {
  const rank = t.rank;
  for (let d = 0; d < rank; d++) {
    const before = pads[2 * d];
    const after = pads[2 * d + 1];
    if (before < 0 || after < 0) {
      throw invalidArgument(`Paddings must be non-negative: ${before} ${after}`);
    }
  }
  if (pads.every((p) => p === 0)) return passThrough(t);
  const outShape = t.shape.map((n, d) => n + pads[2 * d] + pads[2 * d + 1]);
  const unit = unitOf(t.dtype);
  const out = allocLike(t.data, sizeOf(outShape) * unit);
  fillWith(out, fill, fOff, unit);
  if (t.size === 0) return new Tensor(t.dtype, outShape, out);
  const outStrides = stridesOf(outShape, unit);
  // Copy input rows (the last dim) into place; an odometer walks the outer dims.
  const last = rank - 1;
  const rowLen = t.shape[last] * unit;
  const rows = t.size / t.shape[last];
  const idx = new Int32Array(last);
  let base = 0;
  for (let d = 0; d < rank; d++) base += pads[2 * d] * outStrides[d];
  for (let r = 0; r < rows; r++) {
    copyRun(out, base, t.data, r * rowLen, rowLen);
    for (let k = last - 1; k >= 0; k--) {
      if (++idx[k] < t.shape[k]) {
        base += outStrides[k];
        break;
      }
      base -= (idx[k] - 1) * outStrides[k];
      idx[k] = 0;
    }
  }
  return new Tensor(t.dtype, outShape, out);
}

const padKernels: Kernel[] = [
  {
    op: "Pad",
    compile: () => (inputs) => {
      const t = inputs[0];
      const pads = paddingsInput(t, inputs[1]);
      // Pad fills with zero (the empty string for strings).
      const zero = Tensor.zeros(t.dtype, []);
      return [padConstant(t, pads, zero.data, 0)];
    },
  },
  {
    op: "PadV2",
    compile: () => (inputs) => {
      const [t, paddingsT, c] = inputs;
      const pads = paddingsInput(t, paddingsT);
      if (c.rank !== 0) {
        throw invalidArgument(`constant_values must be a scalar. Got: ${shapeString(c.shape)}`);
      }
      return [padConstant(t, pads, c.data, 0)];
    },
  },
  {
    op: "MirrorPad",
    compile(ctx) {
      const mode = ctx.attr.string("mode");
      if (mode !== "REFLECT" && mode !== "SYMMETRIC") {
        throw invalidArgument(`mode must be either REFLECT or SYMMETRIC, not ${mode}`);
      }
      const reflect = mode === "REFLECT";
      return (inputs) => {
        const t = inputs[0];
        const pads = paddingsInput(t, inputs[1]);
        const maps: Int32Array[] = [];
        for (let d = 0; d < t.rank; d++) {
          const before = pads[2 * d];
          const after = pads[2 * d + 1];
          const n = t.shape[d];
          if (before < 0 || after < 0) {
            throw invalidArgument(`paddings must be non-negative: ${before} ${after}`);
          }
          if (reflect && (before >= n || after >= n)) {
            throw invalidArgument(
              `paddings must be less than the dimension size: ${before}, ${after} not less than ${n}`,
            );
          }
          if (!reflect && (before > n || after > n)) {
            throw invalidArgument(
              `paddings must be no greater than the dimension size: ${before}, ${after} greater than ${n}`,
            );
          }
          const m = new Int32Array(before + n + after);
          for (let i = 0; i < m.length; i++) {
            const s = i - before;
            m[i] = s < 0
              ? (reflect ? -s : -s - 1)
              : s >= n
              ? (reflect ? 2 * n - 2 - s : 2 * n - 1 - s)
              : s;
          }
          maps.push(m);
        }
        const unit = unitOf(t.dtype);
        const outShape = maps.map((m) => m.length);
        return [
          new Tensor(
            t.dtype,
            outShape,
            gatherOffsets(t.data, productOffsets(t.shape, maps, unit), unit),
          ),
        ];
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Creation.

/** The bits of 1.0 in a 16-bit float type, else undefined. */
function oneBits(dtype: DataType): number | undefined {
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

const createKernels: Kernel[] = [
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
      const out = allocLike(value.data, sizeOf(shape) * unit);
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
    const size = Number((span + step - 1n) / step);
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

// ---------------------------------------------------------------------------------------------
// Selection.

/** Elementwise choice between same-shape storages; `cond` is indexed per element. */
function selectSame(cond: NumericArray, t: Tensor, e: Tensor, shape: Shape): Tensor {
  const unit = unitOf(t.dtype);
  const n = cond.length;
  const out = allocLike(t.data, n * unit);
  const d = out as unknown as Slots;
  const ts = t.data as unknown as Slots;
  const es = e.data as unknown as Slots;
  if (unit === 1) {
    for (let i = 0; i < n; i++) d[i] = cond[i] ? ts[i] : es[i];
  } else {
    for (let i = 0; i < n; i++) copyRun(out, i * unit, cond[i] ? t.data : e.data, i * unit, unit);
  }
  return new Tensor(t.dtype, shape, out);
}

function sameSizeError(t: Tensor, e: Tensor): ServingError {
  return invalidArgument(
    `'then' and 'else' must have the same size.  but received: ${shapeString(t.shape)} vs. ${
      shapeString(e.shape)
    }`,
  );
}

const selectKernels: Kernel[] = [
  {
    op: "Select",
    compile: (ctx) => (inputs) => {
      const [c, t, e] = inputs;
      const cond = c.numbers;
      if (c.rank === 0) {
        if (!sameShape(t.shape, e.shape)) throw sameSizeError(t, e);
        return [passThrough(cond[0] ? t : e)];
      }
      if (c.rank === 1 && t.rank !== 1) {
        // A vector condition picks whole rows of `then` / `else`.
        if (t.rank < 1) {
          throw invalidArgument(
            `'then' must be at least a vector, but saw shape: ${shapeString(t.shape)}`,
          );
        }
        if (t.shape[0] !== c.size) {
          throw invalidArgument(
            `Number of batches of 'then' must match size of 'cond', but saw: ${
              t.shape[0]
            } vs. ${c.size}`,
          );
        }
        if (!sameShape(t.shape, e.shape)) throw sameSizeError(t, e);
        const row = (t.size / (t.shape[0] || 1)) * unitOf(t.dtype);
        const out = allocLike(t.data, t.size * unitOf(t.dtype));
        for (let i = 0; i < c.size; i++) {
          copyRun(out, i * row, cond[i] ? t.data : e.data, i * row, row);
        }
        return [new Tensor(t.dtype, t.shape, out)];
      }
      for (const [i, x] of [[1, t], [2, e]] as const) {
        if (!sameShape(c.shape, x.shape)) {
          throw invalidArgument(
            `Inputs to operation ${ctx.name} of type Select must have the same size and shape.  ` +
              `Input 0: ${shapeString(c.shape)} != input ${i}: ${shapeString(x.shape)}`,
          );
        }
      }
      return [selectSame(cond, t, e, c.shape)];
    },
  },
  {
    op: "SelectV2",
    compile: () => (inputs) => {
      const [c, t, e] = inputs;
      const outShape = broadcastShapes(c.shape, t.shape, e.shape);
      if (outShape === undefined) {
        throw invalidArgument(
          `condition ${shapeString(c.shape)}, then ${shapeString(t.shape)}, and else ${
            shapeString(e.shape)
          } must be broadcastable`,
        );
      }
      if (c.size === 1 && sameShape(t.shape, outShape) && sameShape(e.shape, outShape)) {
        return [passThrough(c.numbers[0] ? t : e)];
      }
      // Materialise broadcast operands only where shapes differ; the common case copies nothing.
      const expand = (x: Tensor): Tensor =>
        sameShape(x.shape, outShape)
          ? x
          : new Tensor(x.dtype, outShape, broadcastData(x, outShape));
      return [selectSame(expand(c).numbers, expand(t), expand(e), outShape)];
    },
  },
  {
    op: "Where",
    compile: () => (inputs) => {
      const t = inputs[0];
      if (!isNumeric(t.dtype)) {
        throw new ServingError(Code.UNIMPLEMENTED, `Cannot run Where on ${dtypeName(t.dtype)}`);
      }
      const data = t.numbers;
      const unit = unitOf(t.dtype);
      const n = t.size;
      const half = oneBits(t.dtype) !== undefined;
      const big = data instanceof BigInt64Array || data instanceof BigUint64Array;
      const hit = new Uint8Array(n);
      let count = 0;
      for (let i = 0; i < n; i++) {
        let nz: boolean;
        if (half) nz = ((data[i] as number) & 0x7fff) !== 0;
        else if (unit === 2) nz = data[2 * i] !== 0 || data[2 * i + 1] !== 0;
        else nz = big ? data[i] !== 0n : data[i] !== 0;
        if (nz) {
          hit[i] = 1;
          count++;
        }
      }
      const rank = t.rank;
      const out = new BigInt64Array(count * rank);
      const idx = new Array<number>(rank).fill(0);
      let o = 0;
      for (let i = 0; i < n; i++) {
        if (hit[i]) { for (let d = 0; d < rank; d++) out[o++] = BigInt(idx[d]); }
        for (let d = rank - 1; d >= 0; d--) {
          if (++idx[d] < t.shape[d]) break;
          idx[d] = 0;
        }
      }
      return [new Tensor(DataType.DT_INT64, [count, rank], out)];
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Gather, one-hot, unique.

/** Formats a flat index of `shape` as TF's SliceDebugString: `""`, `[3]`, `[1,2]`. */
function sliceDebugString(shape: Shape, flat: number): string {
  if (shape.length === 0) return "";
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return `[${idx.join(",")}]`;
}

/** GatherV2 as TF's GatherOp, with batch_dims. */
function gather(
  params: Tensor,
  indicesT: Tensor,
  axisIn: number | undefined,
  batchAttr: number,
): Tensor {
  let axis = axisIn ?? 0;
  const minDims = axis < 0 ? -axis : axis + 1;
  if (params.rank < minDims) {
    throw invalidArgument(`Shape must be at least rank ${minDims} but is rank ${params.rank}`);
  }
  if (axis < 0) axis += params.rank;
  let batchDims = batchAttr;
  if (batchDims !== 0) {
    const ir = indicesT.rank;
    if (batchDims < -ir || batchDims > ir) {
      throw invalidArgument(
        `Expected batch_dims in the range [${-ir}, ${ir}], but got ${batchDims}`,
      );
    }
    if (batchDims < 0) batchDims += ir;
    if (axisIn === undefined) axis = batchDims;
    if (batchDims >= params.rank) {
      throw invalidArgument(
        `batch_dims (${batchDims}) must be less than rank(params) (${params.rank}).`,
      );
    }
    if (axis < batchDims) {
      throw invalidArgument(
        `batch_dims (${batchDims}) must be less than or equal to axis (${axis}).`,
      );
    }
    for (let i = 0; i < batchDims; i++) {
      if (params.shape[i] !== indicesT.shape[i]) {
        throw invalidArgument(
          `params.shape[${i}]: ${params.shape[i]} should be equal to indices.shape[${i}]: ${
            indicesT.shape[i]
          }`,
        );
      }
    }
  }
  const limit = params.shape[axis];
  const outShape: number[] = [];
  let batch = 1;
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < batchDims; i++) {
    outShape.push(params.shape[i]);
    batch *= params.shape[i];
  }
  for (let i = batchDims; i < axis; i++) {
    outShape.push(params.shape[i]);
    outer *= params.shape[i];
  }
  for (let i = batchDims; i < indicesT.rank; i++) outShape.push(indicesT.shape[i]);
  for (let i = axis + 1; i < params.rank; i++) {
    outShape.push(params.shape[i]);
    inner *= params.shape[i];
  }
  // Read and check every index once, before copying.
  const raw = indicesT.numbers;
  const n = raw.length;
  const indices = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(raw[i]);
    if (!(v >= 0 && v < limit)) {
      throw invalidArgument(
        `indices${sliceDebugString(indicesT.shape, i)} = ${raw[i]} is not in [0, ${limit})`,
      );
    }
    indices[i] = v;
  }
  const unit = unitOf(params.dtype);
  const out = allocLike(params.data, sizeOf(outShape) * unit);
  if (n === 0 || inner === 0) return new Tensor(params.dtype, outShape, out);
  const run = inner * unit;
  const perBatch = n / batch;
  const src = params.data;
  const d = out as unknown as Slots;
  const s = src as unknown as Slots;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const ib = b * perBatch;
    for (let r = 0; r < outer; r++) {
      const base = ((b * outer + r) * limit) * run;
      if (run === 1) {
        for (let j = 0; j < perBatch; j++) d[o++] = s[base + indices[ib + j]];
      } else {
        for (let j = 0; j < perBatch; j++) {
          copyRun(out, o, src, base + indices[ib + j] * run, run);
          o += run;
        }
      }
    }
  }
  return new Tensor(params.dtype, outShape, out);
}

/** A byte string as a Map key. */
function bytesKey(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

const gatherKernels: Kernel[] = [
  {
    op: "GatherV2",
    compile(ctx) {
      const batchDims = ctx.attr.int("batch_dims", 0);
      return (inputs) => {
        const [params, indices, axisT] = inputs;
        if (axisT.rank !== 0) throw invalidArgument("axis must be scalar");
        return [gather(params, indices, toIntArray(axisT, "axis")[0], batchDims)];
      };
    },
  },
  {
    op: "Gather",
    compile: () => (inputs) => [gather(inputs[0], inputs[1], undefined, 0)],
  },
  {
    op: "OneHot",
    compile(ctx) {
      const axisAttr = ctx.attr.int("axis", -1);
      return (inputs) => {
        const [indicesT, depthT, on, off] = inputs;
        const outDims = indicesT.rank + 1;
        if (!(axisAttr === -1 || (axisAttr >= 0 && axisAttr < outDims))) {
          throw invalidArgument(
            `Expected axis to be -1 or between [0, ${outDims}).  But received: ${axisAttr}`,
          );
        }
        if (depthT.rank !== 0) {
          throw invalidArgument(`depth must be a scalar, but got: ${shapeString(depthT.shape)}`);
        }
        if (on.rank !== 0) {
          throw invalidArgument(`on_value must be a scalar, but got: ${shapeString(on.shape)}`);
        }
        if (off.rank !== 0) {
          throw invalidArgument(`off_value must be a scalar, but got: ${shapeString(off.shape)}`);
        }
        const depth = toIntArray(depthT, "depth")[0];
        if (depth < 0) throw invalidArgument(`depth must be non-negative, got: ${depth}`);
        const axis = axisAttr === -1 ? indicesT.rank : axisAttr;
        const outShape = indicesT.shape.slice();
        outShape.splice(axis, 0, depth);
        let prefix = 1;
        for (let d = 0; d < axis; d++) prefix *= indicesT.shape[d];
        const suffix = indicesT.size / (prefix || 1);
        const unit = unitOf(on.dtype);
        const out = allocLike(on.data, sizeOf(outShape) * unit);
        fillWith(out, off.data, 0, unit);
        const idx = toIntArray(indicesT, "indices");
        for (let p = 0; p < prefix; p++) {
          for (let s = 0; s < suffix; s++) {
            const v = idx[p * suffix + s];
            if (v >= 0 && v < depth) {
              copyRun(out, ((p * depth + v) * suffix + s) * unit, on.data, 0, unit);
            }
          }
        }
        return [new Tensor(on.dtype, outShape, out)];
      };
    },
  },
  {
    op: "Unique",
    compile(ctx) {
      const outIdx = indexType(ctx, "out_idx");
      return (inputs) => {
        const t = inputs[0];
        if (t.rank !== 1) throw invalidArgument("unique expects a 1D vector.");
        const n = t.size;
        const unit = unitOf(t.dtype);
        const idx = new Array<number>(n);
        const firsts: number[] = [];
        const seen = new Map<unknown, number>();
        const isString = Array.isArray(t.data);
        const s = t.data as unknown as Slots;
        for (let i = 0; i < n; i++) {
          let key: unknown;
          if (isString) key = bytesKey(s[i] as Uint8Array);
          else if (unit === 2) key = `${s[2 * i]},${s[2 * i + 1]}`;
          else key = s[i];
          // NaN never equals itself in TF's hash map: each NaN is its own value.
          let k = Number.isNaN(key) ? undefined : seen.get(key);
          if (k === undefined) {
            k = firsts.length;
            firsts.push(i);
            if (!Number.isNaN(key)) seen.set(key, k);
          }
          idx[i] = k;
        }
        const y = allocLike(t.data, firsts.length * unit);
        for (let j = 0; j < firsts.length; j++) {
          copyRun(y, j * unit, t.data, firsts[j] * unit, unit);
        }
        return [new Tensor(t.dtype, [firsts.length], y), intTensor(outIdx, idx, [n])];
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// TopK.

/** Float values of 16-bit float storage, for comparisons. */
function halfKeys(dtype: DataType, bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  if (dtype === DataType.DT_BFLOAT16) {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
    return out;
  }
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    out[i] = exp === 0
      ? sign * man * 2 ** -24
      : exp === 31
      ? (man ? NaN : sign * Infinity)
      : sign * (1 + man / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** `a` ranks before `b`: larger first, NaN largest (TF leaves NaN order unspecified). */
function greater(a: number | bigint, b: number | bigint): boolean {
  // deno-lint-ignore no-self-compare
  return a > b || (a !== a && b === b);
}

/**
 * Writes the indices (within the row at `off`, length `n`) of the `k` largest keys, sorted
 * descending, ties by lower index, into `outIdx[oOff…]`.
 */
function topKRow(
  keys: ArrayLike<number | bigint>,
  off: number,
  n: number,
  k: number,
  outIdx: Int32Array,
  oOff: number,
): void {
  if (k === 0) return;
  if (k === 1) {
    let best = 0;
    for (let j = 1; j < n; j++) if (greater(keys[off + j], keys[off + best])) best = j;
    outIdx[oOff] = best;
    return;
  }
  if (k <= 64) {
    // Insertion into a sorted buffer: a later equal key never displaces an earlier one.
    let count = 0;
    for (let j = 0; j < n; j++) {
      const v = keys[off + j];
      if (count === k && !greater(v, keys[off + outIdx[oOff + k - 1]])) continue;
      let p = count < k ? count++ : k - 1;
      while (p > 0 && greater(v, keys[off + outIdx[oOff + p - 1]])) {
        outIdx[oOff + p] = outIdx[oOff + p - 1];
        p--;
      }
      outIdx[oOff + p] = j;
    }
    return;
  }
  const order = new Int32Array(n);
  for (let j = 0; j < n; j++) order[j] = j;
  order.sort((a, b) => {
    const x = keys[off + a];
    const y = keys[off + b];
    if (greater(x, y)) return -1;
    if (greater(y, x)) return 1;
    return a - b;
  });
  outIdx.set(order.subarray(0, k), oOff);
}

const topKKernels: Kernel[] = [
  {
    op: "TopKV2",
    compile(ctx) {
      // `sorted = false` allows any order; sorted output is one of them.
      ctx.attr.bool("sorted", true);
      const idxType = ctx.attr.typeIn(
        "index_type",
        [DataType.DT_INT32, DataType.DT_INT64, DataType.DT_INT16],
        DataType.DT_INT32,
      );
      return (inputs) => {
        const [t, kT] = inputs;
        if (kT.rank !== 0) {
          throw invalidArgument(`k must be scalar, got shape ${shapeString(kT.shape)}`);
        }
        const k = toIntArray(kT, "k")[0];
        if (k < 0) throw invalidArgument(`Need k >= 0, got ${k}`);
        if (t.rank < 1) {
          throw invalidArgument(`input must be >= 1-D, got shape ${shapeString(t.shape)}`);
        }
        const n = t.shape[t.rank - 1];
        if (n < k) {
          throw invalidArgument(`input must have at least k columns. Had ${n}, needed ${k}`);
        }
        if (!isNumeric(t.dtype) || lanes(t.dtype) !== 1) {
          throw new ServingError(Code.UNIMPLEMENTED, `Cannot run TopKV2 on ${dtypeName(t.dtype)}`);
        }
        const data = t.numbers;
        const keys = oneBits(t.dtype) !== undefined ? halfKeys(t.dtype, data as Uint16Array) : data;
        const rows = n === 0 ? 0 : t.size / n;
        const outShape = t.shape.slice(0, -1).concat(k);
        const indices = new Int32Array(rows * k);
        const values = allocLike(data, rows * k) as NumericArray;
        for (let r = 0; r < rows; r++) {
          topKRow(keys, r * n, n, k, indices, r * k);
          for (let j = 0; j < k; j++) values[r * k + j] = data[r * n + indices[r * k + j]];
        }
        let idxOut: Tensor;
        if (idxType === DataType.DT_INT32) idxOut = new Tensor(idxType, outShape, indices);
        else if (idxType === DataType.DT_INT16) {
          idxOut = new Tensor(idxType, outShape, Int16Array.from(indices));
        } else idxOut = intTensor(idxType, Array.from(indices), outShape);
        return [new Tensor(t.dtype, outShape, values), idxOut];
      };
    },
  },
];

// ---------------------------------------------------------------------------------------------
// Split, SplitV, GatherNd, ScatterNd, EnsureShape.

/** Cuts `t` along `axis` into consecutive pieces of `sizes` (which sum to that dim). */
function splitAlong(t: Tensor, axis: number, sizes: readonly number[]): Tensor[] {
  const unit = unitOf(t.dtype);
  let outer = 1;
  for (let d = 0; d < axis; d++) outer *= t.shape[d];
  let inner = unit;
  for (let d = axis + 1; d < t.rank; d++) inner *= t.shape[d];
  const row = t.shape[axis] * inner;
  const out: Tensor[] = new Array(sizes.length);
  let start = 0;
  for (let i = 0; i < sizes.length; i++) {
    const shape = t.shape.slice();
    shape[axis] = sizes[i];
    const len = sizes[i] * inner;
    let data: TensorData;
    if (outer === 1) {
      // One contiguous block: a view, no copy.
      data = viewRange(t.data, start, start + len);
    } else {
      data = allocLike(t.data, outer * len);
      for (let r = 0; r < outer; r++) copyRun(data, r * len, t.data, r * row + start, len);
    }
    out[i] = new Tensor(t.dtype, shape, data);
    start += len;
  }
  return out;
}

/** Canonicalises a split dim as SplitOpBase does, with its message. */
function splitAxis(orig: number, rank: number): number {
  const axis = orig < 0 ? orig + rank : orig;
  if (!(axis >= 0 && axis < rank)) {
    throw invalidArgument(
      `-input rank(-${rank}) <= split_dim < input rank (${rank}), but got ${orig}`,
    );
  }
  return axis;
}

/** Whether ScatterNd's three inputs may describe an empty output (ValidEmptyOutputShape). */
function validEmptyOutput(numInputs: number, numIndices: number, numUpdates: number): boolean {
  if (numIndices === 0 && numUpdates === 0) return true;
  return numInputs !== 0 && numIndices !== 0 && numUpdates !== 0;
}

/** Reads the index rows of GatherNd/ScatterNd as plain numbers. */
function indexValues(t: Tensor, what: string): ArrayLike<number> {
  const d = t.data;
  if (d instanceof Int32Array) return d;
  if (d instanceof BigInt64Array) return Float64Array.from(d, Number);
  return toIntArray(t, what);
}

/** Per-slice strides of the first `nd` dims of `shape`, in elements. */
function leadingStrides(shape: Shape, nd: number): number[] {
  const strides = new Array<number>(nd);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (d < nd) strides[d] = acc;
    acc *= shape[d];
  }
  return strides;
}

/** The index row `i` of `nd` values, formatted as TensorFlow joins it: `1, 5`. */
function indexRow(idx: ArrayLike<number>, i: number, nd: number): string {
  return Array.from({ length: nd }, (_, d) => idx[i * nd + d]).join(", ");
}

/** GatherNd as TF's DoGatherNd; `ignoreBad` zero-fills out-of-range rows instead of failing. */
function gatherNd(node: string, params: Tensor, indicesT: Tensor, ignoreBad: boolean): Tensor {
  if (params.rank < 1) throw invalidArgument("params must be at least a vector");
  if (indicesT.rank < 1) throw invalidArgument("indices must be at least a vector");
  const nd = indicesT.shape[indicesT.rank - 1];
  if (nd > params.rank) {
    throw invalidArgument(
      `index innermost dimension length must be <= params rank; saw: ${nd} vs. ${params.rank}`,
    );
  }
  const outer = indicesT.shape.slice(0, -1);
  const n = sizeOf(outer);
  const outShape = [...outer, ...params.shape.slice(nd)];
  let slice = 1;
  for (let d = nd; d < params.rank; d++) slice *= params.shape[d];
  const unit = unitOf(params.dtype);
  const run = slice * unit;
  const out = allocLike(params.data, n * run);
  if (params.dtype === DataType.DT_STRING) (out as Uint8Array[]).fill(new Uint8Array(0));
  if (n === 0) return new Tensor(params.dtype, outShape, out);
  if (params.size === 0) {
    throw invalidArgument(
      `Requested more than 0 entries, but params is empty.  Params shape: ${
        shapeString(params.shape)
      }`,
    );
  }
  if (nd > 7) {
    throw invalidArgument(
      `Only indices.shape[-1] values between 1 and 7 are currently supported.  Requested rank: ${nd}`,
    );
  }
  const idx = indexValues(indicesT, "indices");
  const strides = leadingStrides(params.shape, nd);
  const src = params.data;
  for (let i = 0, o = 0; i < n; i++, o += run) {
    let off = 0;
    let bad = false;
    for (let d = 0; d < nd; d++) {
      const v = idx[i * nd + d];
      if (!(v >= 0 && v < params.shape[d])) bad = true;
      off += v * strides[d];
    }
    if (!bad) copyRun(out, o, src, off * unit, run);
    else if (!ignoreBad) {
      throw invalidArgument(
        `indices${sliceDebugString(outer, i)} = [${indexRow(idx, i, nd)}] ` +
          `does not index into param shape ${shapeString(params.shape)}, node name: ${node}`,
      );
    }
  }
  return new Tensor(params.dtype, outShape, out);
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

/** A partial shape as PartialTensorShape::DebugString prints it: `[?,3]`, `<unknown>`. */
function partialShapeString(shape: readonly number[] | undefined): string {
  if (shape === undefined) return "<unknown>";
  return `[${shape.map((d) => (d < 0 ? "?" : String(d))).join(",")}]`;
}

const splitKernels: Kernel[] = [
  {
    op: "Split",
    compile(ctx) {
      const num = ctx.attr.int("num_split");
      return (inputs) => {
        const [dimT, t] = inputs;
        if (dimT.rank !== 0) {
          throw invalidArgument(`split_dim must be a scalar but has rank ${dimT.rank}`);
        }
        const axis = splitAxis(toIntArray(dimT, "split_dim")[0], t.rank);
        if (!(num > 0)) {
          throw invalidArgument(`Number of ways to split should be > 0, but got ${num}`);
        }
        const n = t.shape[axis];
        if (n % num !== 0) {
          throw invalidArgument(
            `Number of ways to split should evenly divide the split dimension, but got split_dim ${axis} (size = ${n}) and num_split ${num}`,
          );
        }
        if (num === 1) return [passThrough(t)];
        return splitAlong(t, axis, new Array<number>(num).fill(n / num));
      };
    },
  },
  {
    op: "SplitV",
    compile(ctx) {
      const num = ctx.attr.int("num_split");
      return (inputs) => {
        const [t, sizesT, dimT] = inputs;
        if (dimT.size !== 1) {
          throw invalidArgument("split_dim_tensor must have exactly one element.");
        }
        const orig = toIntArray(dimT, "split_dim")[0];
        if (sizesT.rank !== 1 || sizesT.size !== num) {
          throw invalidArgument(
            `size of the split_tensor must be 1-D and have the same elements as outputs got ${sizesT.rank} -D and ${sizesT.size} elements`,
          );
        }
        const sizes = toIntArray(sizesT, "size_splits");
        if (!(num > 0)) {
          throw invalidArgument(`Number of ways to split should be > 0, but got ${num}`);
        }
        const axis = splitAxis(orig, t.rank);
        const n = t.shape[axis];
        if (num === 1) {
          if (sizes[0] !== n) {
            throw invalidArgument(
              `If there is only one output, it must have the same size as the input. Input size: ${n} output size: ${
                sizes[0]
              }`,
            );
          }
          return [passThrough(t)];
        }
        let negOne = -1;
        let determined = 0;
        for (let d = 0; d < sizes.length; d++) {
          if (sizes[d] === -1) {
            if (negOne !== -1) throw invalidArgument("There can only be one -1 in the input.");
            negOne = d;
          } else determined += sizes[d];
        }
        if (!((negOne === -1 && determined === n) || (negOne >= 0 && determined <= n))) {
          throw invalidArgument(
            "Determined shape must either match input shape along split_dim exactly if fully " +
              "specified, or be less than the size of the input along split_dim if not fully " +
              `specified.  Got: ${determined}`,
          );
        }
        if (negOne >= 0) sizes[negOne] = n - determined;
        for (let i = 0; i < sizes.length; i++) {
          if (sizes[i] < 0) {
            throw invalidArgument(`Split size at index ${i} must be >= 0. Got: ${sizes[i]}`);
          }
        }
        return splitAlong(t, axis, sizes);
      };
    },
  },
];

const ndKernels: Kernel[] = [
  {
    op: "GatherNd",
    compile(ctx) {
      const policy = ctx.attr.string("bad_indices_policy", "");
      if (!["", "DEFAULT", "ERROR", "IGNORE"].includes(policy)) {
        throw invalidArgument(
          `GatherNd node "${ctx.name}": bad_indices_policy "${policy}" is not supported ` +
            "(DEFAULT, ERROR, IGNORE)",
        );
      }
      const ignore = policy === "IGNORE";
      return (inputs) => [gatherNd(ctx.name, inputs[0], inputs[1], ignore)];
    },
  },
  {
    op: "ScatterNd",
    compile: () => (inputs) => [scatterNd(inputs[0], inputs[1], inputs[2])],
  },
  {
    op: "EnsureShape",
    compile(ctx) {
      const want = ctx.attr.shape("shape");
      // TF names the checked tensor by the node's input as the NodeDef writes it.
      const tensorName = ctx.inputNames[0] ?? ctx.name;
      return (inputs) => {
        const t = inputs[0];
        if (
          want !== undefined &&
          (want.length !== t.rank || want.some((d, i) => d >= 0 && d !== t.shape[i]))
        ) {
          throw invalidArgument(
            `Shape of tensor ${tensorName} ${shapeString(t.shape)} is not compatible with ` +
              `expected shape ${partialShapeString(want)}.`,
          );
        }
        return [passThrough(t)];
      };
    },
  },
];

/** The kernels of array, shape and basic graph ops. */
export const arrayKernels: Kernel[] = [
  ...graphKernels,
  ...shapeKernels,
  ...reshapeKernels,
  ...joinKernels,
  ...sliceKernels,
  ...moveKernels,
  ...padKernels,
  ...createKernels,
  ...selectKernels,
  ...gatherKernels,
  ...topKKernels,
  ...splitKernels,
  ...ndKernels,
];
