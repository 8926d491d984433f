/**
 * Tensors built from values placed by index: DynamicStitch and ParallelDynamicStitch (rows of
 * several inputs placed at their indices; one thread, so both behave the same) and SparseToDense
 * (a sparse tensor's values over a default), with TensorFlow's checks and messages
 * (dynamic_stitch_op.cc, sparse_to_dense_op.cc, util/sparse/sparse_tensor.cc). Output sizes come
 * from the request and are checked before they are allocated.
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import { shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import { allocLike, copyRun, fillWith, unitOf } from "./array_common.ts";
import { indexRow, indexValues, leadingStrides } from "./gather.ts";
import type { Kernel } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

/**
 * DynamicStitch(indices[N], data[N]) (and ParallelDynamicStitch, the same on one thread): rows of
 * `data` placed at their `indices` in a zero tensor of max index + 1 rows; a later input
 * overwrites an earlier one at the same index. Checks and messages as TF's
 * DynamicStitchOpImplBase.
 */
function dynamicStitchKernel(op: string): Kernel {
  return {
    op,
    compile(ctx) {
      return (inputs) => {
        if (inputs.length === 0 || inputs.length % 2 !== 0) {
          throw invalidArgument(
            `${op}Op: Must have ${
              inputs.length === 0 ? "some inputs" : "even number of arguments"
            }`,
          );
        }
        const n = inputs.length / 2;
        const indices = inputs.slice(0, n);
        const data = inputs.slice(n);
        const dtype = data[0].dtype;
        for (const t of indices) {
          if (t.dtype !== DataType.DT_INT32) {
            throw invalidArgument(`${op} needs int32 indices (node "${ctx.name}")`);
          }
        }
        for (const t of data) {
          if (t.dtype !== dtype) {
            throw invalidArgument(`${op} needs data of one type (node "${ctx.name}")`);
          }
        }
        let maxIndex = -1;
        for (const t of indices) {
          for (const v of t.data as Int32Array) if (v > maxIndex) maxIndex = v;
        }
        const rows = maxIndex + 1;
        for (const t of indices) {
          const v = t.data as Int32Array;
          for (let i = 0; i < v.length; i++) {
            if (!(v[i] >= 0 && v[i] < rows)) throw invalidArgument(`indices[${i}] is out of range`);
          }
        }
        const [data0, indices0] = [data[0], indices[0]];
        const extra0 = data0.shape.slice(indices0.rank);
        for (let k = 0; k < n; k++) {
          const [d, ix] = [data[k], indices[k]];
          if (!(d.rank >= ix.rank && ix.shape.every((s, j) => d.shape[j] === s))) {
            throw invalidArgument(
              `data[${k}].shape = ${
                shapeString(d.shape)
              } does not start with indices[${k}].shape = ${shapeString(ix.shape)}`,
            );
          }
          const extra = d.shape.slice(ix.rank);
          if (
            k > 0 && !(extra.length === extra0.length && extra.every((s, j) => s === extra0[j]))
          ) {
            throw invalidArgument(
              `Need data[0].shape[${indices0.rank}:] = data[${k}].shape[${ix.rank}:], got ` +
                `data[0].shape = ${shapeString(data0.shape)}, data[${k}].shape = ${
                  shapeString(d.shape)
                }, indices[0].shape = ${shapeString(indices0.shape)}, indices[${k}].shape = ${
                  shapeString(ix.shape)
                }`,
            );
          }
        }
        const shape = [rows, ...extra0];
        const total = checkedElements(shape, `${op} output`);
        const unit = unitOf(dtype);
        const out = allocLike(data0.data, total * unit);
        if (dtype === DataType.DT_STRING) (out as Uint8Array[]).fill(new Uint8Array(0));
        let slice = unit;
        for (const d of extra0) slice *= d;
        for (let k = 0; k < n; k++) {
          const v = indices[k].data as Int32Array;
          for (let i = 0; i < v.length; i++) {
            copyRun(out, v[i] * slice, data[k].data, i * slice, slice);
          }
        }
        return [new Tensor(dtype, shape, out)];
      };
    },
  };
}

/** SparseToDense's shape checks (CheckSparseToDenseShapes), with TF's messages. */
function checkSparseToDense(indices: Tensor, shapeT: Tensor, values: Tensor, dflt: Tensor): void {
  if (indices.rank > 2) {
    throw invalidArgument(
      `sparse_indices should be a scalar, vector, or matrix, got shape ${
        shapeString(indices.shape)
      }`,
    );
  }
  const numElems = indices.rank > 0 ? indices.shape[0] : 1;
  const numDims = indices.rank > 1 ? indices.shape[1] : 1;
  if (shapeT.rank !== 1) {
    throw invalidArgument(`output_shape must be rank 1, got shape ${shapeString(shapeT.shape)}`);
  }
  if (shapeT.size !== numDims) {
    throw invalidArgument(
      `output_shape has incorrect number of elements: ${shapeT.size} should be: ${numDims}`,
    );
  }
  if (values.rank !== 0 && (values.rank !== 1 || values.size !== numElems)) {
    throw invalidArgument(
      `sparse_values has incorrect shape ${
        shapeString(values.shape)
      }, should be [] or [${numElems}]`,
    );
  }
  if (dflt.rank !== 0) throw invalidArgument("default_value should be a scalar.");
}

/**
 * SparseTensor::IndicesValid: every index in bounds and strictly increasing in row-major order,
 * failing with TF's words at the first that is not.
 */
function checkSparseIndices(idx: ArrayLike<number>, n: number, shape: readonly number[]): void {
  const dims = shape.length;
  for (let i = 0; i < n; i++) {
    let valid = true;
    let different = i === 0;
    let increasing = true;
    for (let d = 0; d < dims; d++) {
      const v = idx[i * dims + d];
      if (v < 0 || v >= shape[d]) valid = false;
      if (i > 0) {
        const diff = v - idx[(i - 1) * dims + d];
        if (diff > 0) different = true;
        if (!different && diff < 0) increasing = false;
      }
    }
    if (valid && increasing && different) continue;
    const index = `indices[${i}] = [${indexRow(idx, i, dims).replaceAll(", ", ",")}]`;
    if (!valid) {
      throw invalidArgument(`${index} is out of bounds: need 0 <= index < [${shape.join(",")}]`);
    }
    if (!increasing) {
      throw invalidArgument(
        `${index} is out of order. Many sparse ops require sorted indices.\n` +
          "    Use `tf.sparse.reorder` to create a correctly ordered copy.\n\n",
      );
    }
    throw invalidArgument(`${index} is repeated`);
  }
}

/**
 * SparseToDense(sparse_indices, output_shape, sparse_values, default_value): a dense tensor of
 * `default_value` with the values written at their indices (a later duplicate wins when
 * validate_indices is false). Output size checked before allocating.
 */
const sparseToDenseKernel: Kernel = {
  op: "SparseToDense",
  compile(ctx) {
    const validate = ctx.attr.bool("validate_indices", true);
    return (inputs) => {
      const [indices, shapeT, values, dflt] = inputs;
      checkSparseToDense(indices, shapeT, values, dflt);
      if (values.dtype !== dflt.dtype) {
        throw invalidArgument(`SparseToDense needs values of one type (node "${ctx.name}")`);
      }
      const shape = toIntArray(shapeT, "output_shape");
      for (const d of shape) if (d < 0) throw invalidArgument(`Dimension ${d} must be >= 0`);
      const total = checkedElements(shape, "SparseToDense output");
      const numElems = indices.rank > 0 ? indices.shape[0] : 1;
      const idx = indexValues(indices, "sparse_indices");
      if (validate) checkSparseIndices(idx, numElems, shape);
      const unit = unitOf(values.dtype);
      const out = allocLike(values.data, total * unit);
      fillWith(out, dflt.data, 0, unit);
      const strides = leadingStrides(shape, shape.length);
      const scalar = values.rank === 0;
      for (let i = 0; i < numElems; i++) {
        let off = 0;
        for (let d = 0; d < shape.length; d++) {
          const v = idx[i * shape.length + d];
          if (!(v >= 0 && v < shape[d])) {
            throw invalidArgument(
              `Indices are not valid (out of bounds).  Shape: ${shapeString(shape)}`,
            );
          }
          off += v * strides[d];
        }
        copyRun(out, off * unit, values.data, scalar ? 0 : i * unit, unit);
      }
      return [new Tensor(values.dtype, shape, out)];
    };
  },
};

/** The stitch kernels: DynamicStitch, ParallelDynamicStitch, SparseToDense. */
export const stitchKernels: Kernel[] = [
  dynamicStitchKernel("DynamicStitch"),
  dynamicStitchKernel("ParallelDynamicStitch"),
  sparseToDenseKernel,
];
