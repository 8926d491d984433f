/**
 * Joining and splitting: ConcatV2, Concat, Pack, Unpack, Split and SplitV.
 *
 * Messages follow TensorFlow's kernels (concat_op.cc, pack_op.cc, unpack_op.cc, split_op.cc,
 * split_v_op.cc).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { shapeString, sizeOf, Tensor, type TensorData, toIntArray } from "../tensor/tensor.ts";
import { uninitialized } from "../tensor/arena.ts";
import { allocLike, copyRun, passThrough, reshaped, unitOf, viewRange } from "./array_common.ts";
import type { Kernel } from "./kernel.ts";
import { copyRowsF32 } from "./wasm/elementwise.ts";
import { isKernelView } from "./wasm/float_store.ts";

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
  if (outer > 0 && values.every((v) => v.data instanceof Float32Array)) {
    return joinRowsF32(values.map((v) => v.data as Float32Array), outer, outElems * unit);
  }
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

/**
 * joinRows for float32 inputs (the common case: channel concatenations of feature maps), in a
 * loop that only ever sees Float32Arrays (the shared one sees every type and runs several times
 * slower on short runs), into storage every element of which it writes. `outSlots` counts
 * array slots (two per complex64 element).
 */
function joinRowsF32(data: Float32Array[], outer: number, outSlots: number): Float32Array {
  const out = uninitialized(Float32Array, outSlots);
  const stride = outSlots / outer;
  if (isKernelView(out) && data.every(isKernelView)) {
    // A plan's intermediates in the kernels' shared memory: 16 bytes a move in WebAssembly (the
    // rows of a channel concatenation are short, a few dozen floats).
    for (let i = 0, o = 0; i < data.length; i++) {
      const src = data[i], len = src.length / outer;
      if (!copyRowsF32(src, out, o, outer, len, stride)) copyRows(src, out, o, outer, len, stride);
      o += len;
    }
    return out;
  }
  if (pairsAligned(data, out, outer, stride)) {
    // Two float32 slots per float64 move: half the iterations. A float64 load and store keeps
    // the bits (V8 does not quiet NaNs in typed-array copies; only a float32 NaN could make a
    // float64 NaN pattern, so no other value could be touched even if it did).
    joinRowsF64(
      data.map((d) => new Float64Array(d.buffer, d.byteOffset, d.length / 2)),
      new Float64Array(out.buffer, out.byteOffset, out.length / 2),
      outer,
      stride / 2,
    );
    return out;
  }
  // Input by input: each one's rows are read in order and land `stride` apart.
  for (let i = 0, o = 0; i < data.length; i++) {
    const len = data[i].length / outer;
    copyRows(data[i], out, o, outer, len, stride);
    o += len;
  }
  return out;
}

/** out[o + r·stride + k] = src[r·len + k] for r < outer, k < len. */
function copyRows(
  src: Float32Array,
  out: Float32Array,
  o: number,
  outer: number,
  len: number,
  stride: number,
): void {
  if (len >= 64) {
    for (let r = 0; r < outer; r++) out.set(src.subarray(r * len, (r + 1) * len), o + r * stride);
  } else {
    for (let r = 0, s = 0, d = o; r < outer; r++, d += stride) {
      for (let k = 0; k < len; k++) out[d + k] = src[s++];
    }
  }
}

/** True when every run and offset of joinRowsF32 is a whole number of float32 pairs. */
function pairsAligned(data: Float32Array[], out: Float32Array, outer: number, stride: number) {
  if (stride % 2 !== 0 || out.byteOffset % 8 !== 0) return false;
  for (const d of data) if (d.byteOffset % 8 !== 0 || (d.length / outer) % 2 !== 0) return false;
  return true;
}

/** joinRowsF32's loop on float64 views (see there); `stride` in float64 slots. */
function joinRowsF64(data: Float64Array[], out: Float64Array, outer: number, stride: number) {
  for (let i = 0, o = 0; i < data.length; i++) {
    const src = data[i], len = src.length / outer;
    if (len >= 32) {
      for (let r = 0; r < outer; r++) out.set(src.subarray(r * len, (r + 1) * len), o + r * stride);
    } else {
      for (let r = 0, s = 0, d = o; r < outer; r++, d += stride) {
        for (let k = 0; k < len; k++) out[d + k] = src[s++];
      }
    }
    o += len;
  }
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

/** The join and split kernels: ConcatV2, Concat, Pack, Unpack, Split, SplitV. */
export const concatSplitKernels: Kernel[] = [...joinKernels, ...splitKernels];
