/**
 * Moving elements around: Transpose, ReverseV2, Reverse, ReverseSequence, Tile and BroadcastTo;
 * InvertPermutation.
 *
 * Messages follow TensorFlow's kernels (transpose_op.cc, reverse_op.cc, reverse_sequence_op.cc,
 * tile_ops.cc, broadcast_to_op.cc).
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { type Shape, shapeString, Tensor, type TensorData, toIntArray } from "../tensor/tensor.ts";
import {
  allocLike,
  arithmetic,
  copyRun,
  gatherOffsets,
  intTensor,
  passThrough,
  productOffsets,
  reshaped,
  shapeInput,
  stridesOf,
  unitOf,
} from "./array_common.ts";
import { sameShape } from "./broadcast.ts";
import type { Kernel } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

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
export function broadcastData(t: Tensor, outShape: Shape): TensorData {
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
export function tryBroadcastShapes(...shapes: Shape[]): number[] | undefined {
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

/**
 * InvertPermutation(x): y with y[x[i]] = i, failing as TF's InvertPermutationOp on a value out of
 * range or repeated.
 */
const invertPermutationKernel: Kernel = {
  op: "InvertPermutation",
  compile: () => (inputs) => {
    const x = inputs[0];
    if (x.rank !== 1) throw invalidArgument("invert_permutation expects a 1D vector.");
    const p = toIntArray(x, "x");
    const n = p.length;
    const inv = new Array<number>(n).fill(-1);
    for (let i = 0; i < n; i++) {
      const d = p[i];
      if (!(d >= 0 && d < n)) throw invalidArgument(`${d} is not between 0 and ${n}`);
      if (inv[d] !== -1) throw invalidArgument(`${d} is duplicated in the input.`);
      inv[d] = i;
    }
    return [intTensor(x.dtype, inv, [n])];
  },
};

/**
 * ReverseSequence(input, seq_lengths): along `seq_dim`, the first `seq_lengths[b]` elements of
 * each batch entry `b` (along `batch_dim`) reversed, the rest kept, as TF's ReverseSequenceOp
 * (ranks 2 to 5, its checks and messages).
 */
const reverseSequenceKernel: Kernel = {
  op: "ReverseSequence",
  compile(ctx) {
    const batchDim = ctx.attr.int("batch_dim", 0);
    const seqDim = ctx.attr.int("seq_dim");
    if (batchDim < 0) throw invalidArgument(`Invalid batch_dim ${batchDim}`);
    if (seqDim < 0) throw invalidArgument(`Invalid seq_dim ${seqDim}`);
    return (inputs) => {
      const [t, lensT] = inputs;
      if (lensT.rank !== 1) throw invalidArgument(`seq_lengths must be 1-dim, not ${lensT.rank}`);
      const lens = toIntArray(lensT, "seq_lengths");
      if (batchDim === seqDim) throw invalidArgument(`batch_dim == seq_dim == ${seqDim}`);
      if (seqDim >= t.rank) {
        throw invalidArgument(`seq_dim must be < input rank ( ${seqDim} vs. ${t.rank})`);
      }
      if (batchDim >= t.rank) {
        throw invalidArgument(`batch_dim must be < input rank ( ${batchDim} vs. ${t.rank})`);
      }
      if (lens.length !== t.shape[batchDim]) {
        throw invalidArgument(
          `Length of seq_lengths != input.dims(${batchDim}), (${lens.length} vs. ${
            t.shape[batchDim]
          })`,
        );
      }
      for (let d = 0; d < lens.length; d++) {
        if (lens[d] < 0) throw invalidArgument(`seq_lens(${d}) < 0`);
        if (lens[d] > t.shape[seqDim]) {
          throw invalidArgument(`seq_lens(${d}) > input.dims(${seqDim})`);
        }
      }
      if (t.rank < 2 || t.rank > 5) {
        throw invalidArgument(`ReverseSequenceOp : Unhandled input dimensions: ${t.rank}`);
      }
      const unit = unitOf(t.dtype);
      const strides = stridesOf(t.shape, unit);
      const out = allocLike(t.data, t.size * unit);
      const coords = new Array<number>(t.rank).fill(0);
      for (let i = 0; i < t.size; i++) {
        let src = 0;
        for (let d = 0; d < t.rank; d++) {
          let c = coords[d];
          if (d === seqDim && c < lens[coords[batchDim]]) c = lens[coords[batchDim]] - c - 1;
          src += c * strides[d];
        }
        copyRun(out, i * unit, t.data, src, unit);
        for (let d = t.rank - 1; d >= 0; d--) {
          if (++coords[d] < t.shape[d]) break;
          coords[d] = 0;
        }
      }
      return [new Tensor(t.dtype, t.shape, out)];
    };
  },
};

/**
 * The kernels that move elements: Transpose, ReverseV2, Reverse, ReverseSequence, Tile,
 * BroadcastTo, and InvertPermutation.
 */
export const transposeKernels: Kernel[] = [
  invertPermutationKernel,
  reverseSequenceKernel,
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
      checkedElements(outShape, "Tile output");
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
      const b = tryBroadcastShapes(t.shape, outShape);
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
      checkedElements(outShape, "BroadcastTo output");
      return [new Tensor(t.dtype, outShape, broadcastData(t, outShape))];
    },
  },
];
