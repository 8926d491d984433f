/**
 * Selection: Select, SelectV2 (with broadcasting), Where (the coordinates of true elements) and
 * MatrixBandPart (a band of each matrix kept, the rest zero).
 *
 * Messages follow TensorFlow's kernels (cwise_op_select.cc, where_op.cc,
 * matrix_band_part_op.cc).
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName, isNumeric, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, shapeString, Tensor } from "../tensor/tensor.ts";
import { allocLike, copyRun, passThrough, Slots, unitOf } from "./array_common.ts";
import { sameShape } from "./broadcast.ts";
import { oneBits } from "./create.ts";
import type { Kernel } from "./kernel.ts";
import { broadcastData, tryBroadcastShapes } from "./transpose.ts";

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

/**
 * MatrixBandPart(input, num_lower, num_upper): each inner matrix with the elements outside the
 * band (more than num_lower below or num_upper above the diagonal; negative = all) set to zero,
 * as TF's MatrixBandPartOp with its checks and messages.
 */
const matrixBandPartKernel: Kernel = {
  op: "MatrixBandPart",
  compile: () => (inputs) => {
    const [t, lowerT, upperT] = inputs;
    if (t.rank < 2) {
      throw invalidArgument(
        `input must be at least 2-dim, received shape: ${shapeString(t.shape)}`,
      );
    }
    const rows = t.shape[t.rank - 2];
    const cols = t.shape[t.rank - 1];
    const scalar = (x: Tensor, what: string) => {
      if (x.rank !== 0) {
        throw invalidArgument(`${what} must be scalar, got shape ${shapeString(x.shape)}`);
      }
      return Number((x.data as Int32Array | BigInt64Array)[0]);
    };
    const lower = scalar(lowerT, "num_lower");
    if (lower > rows) {
      throw invalidArgument(
        `num_lower must be negative or less or equal to number of rows (${rows}) got: ${lower}`,
      );
    }
    const upper = scalar(upperT, "num_upper");
    if (upper > cols) {
      throw invalidArgument(
        `num_upper must be negative or less or equal to number of columns (${cols}) got: ${upper}`,
      );
    }
    if (t.dtype === DataType.DT_STRING) {
      throw new ServingError(Code.UNIMPLEMENTED, "MatrixBandPart is not implemented for DT_STRING");
    }
    if (t.size === 0 || ((lower < 0 || lower === rows) && (upper < 0 || upper === cols))) {
      return [passThrough(t)];
    }
    const unit = unitOf(t.dtype);
    // Fresh typed storage is zero: only the band is copied.
    const out = allocLike(t.data, t.size * unit);
    const matrices = t.size / (rows * cols);
    for (let b = 0; b < matrices; b++) {
      for (let m = 0; m < rows; m++) {
        const from = lower < 0 ? 0 : Math.min(cols, Math.max(0, m - lower));
        const to = upper < 0 ? cols : Math.min(cols, m + upper + 1);
        if (to <= from) continue;
        const off = ((b * rows + m) * cols + from) * unit;
        copyRun(out, off, t.data, off, (to - from) * unit);
      }
    }
    return [new Tensor(t.dtype, t.shape, out)];
  },
};

/** The selection kernels: Select, SelectV2, Where, MatrixBandPart. */
export const selectKernels: Kernel[] = [
  matrixBandPartKernel,
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
      const outShape = tryBroadcastShapes(c.shape, t.shape, e.shape);
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
