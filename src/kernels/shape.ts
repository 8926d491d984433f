/**
 * Shape ops: Shape, ShapeN, Size, Rank, Reshape, ExpandDims, Squeeze, EnsureShape and
 * BroadcastArgs. Reshape and friends return their input's storage under a new shape.
 *
 * Messages follow TensorFlow's kernels (shape_ops.h, reshape_op.h, EnsureShapeOp, bcast_ops.cc).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import { shapeString, sizeOf, Tensor, toIntArray } from "../tensor/tensor.ts";
import { indexType, intTensor, passThrough, reshaped, scalarInt } from "./array_common.ts";
import type { Kernel } from "./kernel.ts";

// ---------------------------------------------------------------------------------------------
// Shape queries.

const shapeQueryKernels: Kernel[] = [
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

/** A partial shape as PartialTensorShape::DebugString prints it: `[?,3]`, `<unknown>`. */
function partialShapeString(shape: readonly number[] | undefined): string {
  if (shape === undefined) return "<unknown>";
  return `[${shape.map((d) => (d < 0 ? "?" : String(d))).join(",")}]`;
}

/**
 * BroadcastArgs(s0, s1): the broadcast shape of two shape vectors, as TF's BCastArgsOp (numpy
 * rules: equal dims, or a 1 on either side).
 */
const broadcastArgsKernel: Kernel = {
  op: "BroadcastArgs",
  compile: () => (inputs) => {
    const shapes = inputs.map((t, i) => {
      if (t.rank !== 1) throw invalidArgument(`In[${i}] must be a vector.${shapeString(t.shape)}`);
      return toIntArray(t, "shape");
    });
    const [a, b] = shapes;
    const n = Math.max(a.length, b.length);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const x = a[a.length - n + i] ?? 1;
      const y = b[b.length - n + i] ?? 1;
      if (x !== y && x !== 1 && y !== 1) {
        throw invalidArgument(`Incompatible shapes: [${a.join(",")}] vs. [${b.join(",")}]`);
      }
      out[i] = x === 1 ? y : x;
    }
    return [intTensor(inputs[0].dtype, out, [n])];
  },
};

/**
 * The shape kernels: Shape, ShapeN, Size, Rank, Reshape, ExpandDims, Squeeze, EnsureShape,
 * BroadcastArgs.
 */
export const shapeKernels: Kernel[] = [
  ...shapeQueryKernels,
  ...reshapeKernels,
  broadcastArgsKernel,
];
