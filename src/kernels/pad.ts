/**
 * Padding: Pad, PadV2 and MirrorPad (REFLECT and SYMMETRIC).
 *
 * Messages follow TensorFlow's kernels (pad_op.cc, mirror_pad_op.cc).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { shapeString, Tensor, type TensorData, toIntArray } from "../tensor/tensor.ts";
import {
  allocLike,
  copyRun,
  fillWith,
  gatherOffsets,
  passThrough,
  productOffsets,
  stridesOf,
  unitOf,
} from "./array_common.ts";
import type { Kernel } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

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
  const out = allocLike(t.data, checkedElements(outShape, "Pad output") * unit);
  fillWith(out, fill, fOff, unit);
  if (t.size === 0) return new Tensor(t.dtype, outShape, out);
  // The dims after the innermost padded one are copied whole: with it they make one contiguous
  // run per row (a spatial pad of NHWC copies H·W·C rows of W·C, not W rows of C).
  let last = rank - 1;
  while (last > 0 && pads[2 * last] === 0 && pads[2 * last + 1] === 0) last--;
  let inner = 1;
  for (let d = last + 1; d < rank; d++) inner *= t.shape[d];
  const inShape = t.shape.slice(0, last + 1);
  inShape[last] *= inner;
  const rowShape = outShape.slice(0, last + 1);
  rowShape[last] *= inner;
  const outStrides = stridesOf(rowShape, unit);
  // Copy input rows (the collapsed last dim) into place; an odometer walks the outer dims.
  const rowLen = inShape[last] * unit;
  const rows = t.size / inShape[last];
  const idx = new Int32Array(last);
  let base = 0;
  for (let d = 0; d < last; d++) base += pads[2 * d] * outStrides[d];
  base += pads[2 * last] * inner * unit;
  for (let r = 0; r < rows; r++) {
    copyRun(out, base, t.data, r * rowLen, rowLen);
    for (let k = last - 1; k >= 0; k--) {
      if (++idx[k] < inShape[k]) {
        base += outStrides[k];
        break;
      }
      base -= (idx[k] - 1) * outStrides[k];
      idx[k] = 0;
    }
  }
  return new Tensor(t.dtype, outShape, out);
}

/** The padding kernels: Pad, PadV2, MirrorPad. */
export const padKernels: Kernel[] = [
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
