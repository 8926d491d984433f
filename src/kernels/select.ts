/**
 * Selection: Select, SelectV2 (with broadcasting) and Where (the coordinates of true elements).
 *
 * Messages follow TensorFlow's kernels (cwise_op_select.cc, where_op.cc).
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

/** The selection kernels: Select, SelectV2, Where. */
export const selectKernels: Kernel[] = [
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
