/**
 * TopKV2: the k largest values of each row and their indices, in TensorFlow's order.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName, isNumeric, lanes, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import { allocLike, intTensor } from "./array_common.ts";
import { oneBits } from "./create.ts";
import type { Kernel } from "./kernel.ts";

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

/** The top-k kernels: TopKV2. */
export const topKKernels: Kernel[] = [
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
