/**
 * Gathering: GatherV2 (with batch_dims), Gather, GatherNd (with bad_indices_policy), OneHot,
 * Unique, UniqueWithCounts and ListDiff.
 *
 * Messages follow TensorFlow's kernels (gather_op.cc, gather_nd_op.h, one_hot_op.cc,
 * unique_op.cc, listdiff_op.cc).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { DataType, lanes } from "../tensor/dtype.ts";
import { type Shape, shapeString, sizeOf, Tensor, toIntArray } from "../tensor/tensor.ts";
import {
  allocLike,
  copyRun,
  fillWith,
  indexType,
  intTensor,
  Slots,
  unitOf,
} from "./array_common.ts";
import type { Kernel } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

// ---------------------------------------------------------------------------------------------
// Gather, one-hot, unique.

/** Formats a flat index of `shape` as TF's SliceDebugString: `""`, `[3]`, `[1,2]`. */
export function sliceDebugString(shape: Shape, flat: number): string {
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
  const out = allocLike(params.data, checkedElements(outShape, "Gather output") * unit);
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

/**
 * ListDiff(x, y) → (out, idx): the elements of x not in y, in order, and their positions in x
 * (TF's listdiff_op.cc; NaN is never in y, as in its hash set).
 */
const listDiffKernel: Kernel = {
  op: "ListDiff",
  compile(ctx) {
    const outIdx = indexType(ctx, "out_idx");
    return (inputs) => {
      const [x, y] = inputs;
      if (x.rank !== 1) throw invalidArgument("x should be a 1D vector.");
      if (y.rank !== 1) throw invalidArgument("y should be a 1D vector.");
      if (x.dtype !== y.dtype || lanes(x.dtype) !== 1) {
        throw invalidArgument(
          `ListDiff needs x and y of one real or string type (node "${ctx.name}")`,
        );
      }
      const key = Array.isArray(x.data)
        ? (t: Tensor, i: number) => bytesKey((t.data as Uint8Array[])[i])
        : (t: Tensor, i: number) => (t.data as ArrayLike<number | bigint>)[i];
      const ys = new Set<unknown>();
      for (let i = 0; i < y.size; i++) ys.add(key(y, i));
      const keep: number[] = [];
      for (let i = 0; i < x.size; i++) {
        const k = key(x, i);
        if (Number.isNaN(k) || !ys.has(k)) keep.push(i);
      }
      const out = allocLike(x.data, keep.length);
      for (let j = 0; j < keep.length; j++) copyRun(out, j, x.data, keep[j], 1);
      return [new Tensor(x.dtype, [keep.length], out), intTensor(outIdx, keep, [keep.length])];
    };
  },
};

/**
 * Unique(x) → (y, idx) and UniqueWithCounts(x) → (y, idx, count): the distinct values of a vector
 * in order of first appearance, each element's position in them, and how often each occurs.
 */
function uniqueKernel(op: "Unique" | "UniqueWithCounts"): Kernel {
  return {
    op,
    compile(ctx) {
      const outIdx = indexType(ctx, "out_idx");
      return (inputs) => {
        const t = inputs[0];
        if (t.rank !== 1) throw invalidArgument("unique expects a 1D vector.");
        const n = t.size;
        const unit = unitOf(t.dtype);
        const idx = new Array<number>(n);
        const firsts: number[] = [];
        const counts: number[] = [];
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
            counts.push(0);
            if (!Number.isNaN(key)) seen.set(key, k);
          }
          idx[i] = k;
          counts[k]++;
        }
        const y = allocLike(t.data, firsts.length * unit);
        for (let j = 0; j < firsts.length; j++) {
          copyRun(y, j * unit, t.data, firsts[j] * unit, unit);
        }
        const out = [new Tensor(t.dtype, [firsts.length], y), intTensor(outIdx, idx, [n])];
        if (op === "UniqueWithCounts") out.push(intTensor(outIdx, counts, [counts.length]));
        return out;
      };
    },
  };
}

/** The gather kernels: GatherV2, Gather, OneHot, Unique, UniqueWithCounts, ListDiff, GatherNd. */
export const gatherKernels: Kernel[] = [
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
        const out = allocLike(on.data, checkedElements(outShape, "OneHot output") * unit);
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
  uniqueKernel("Unique"),
  uniqueKernel("UniqueWithCounts"),
  listDiffKernel,
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
];

/** Reads the index rows of GatherNd/ScatterNd as plain numbers. */
export function indexValues(t: Tensor, what: string): ArrayLike<number> {
  const d = t.data;
  if (d instanceof Int32Array) return d;
  if (d instanceof BigInt64Array) return Float64Array.from(d, Number);
  return toIntArray(t, what);
}

/** Per-slice strides of the first `nd` dims of `shape`, in elements. */
export function leadingStrides(shape: Shape, nd: number): number[] {
  const strides = new Array<number>(nd);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (d < nd) strides[d] = acc;
    acc *= shape[d];
  }
  return strides;
}

/** The index row `i` of `nd` values, formatted as TensorFlow joins it: `1, 5`. */
export function indexRow(idx: ArrayLike<number>, i: number, nd: number): string {
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
  checkedElements(outShape, "GatherNd output");
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
