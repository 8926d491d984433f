/**
 * x·s + r in one pass over float32 data: the fast path of the plan's fused Add(Mul(x, s), r)
 * (graph/fuse.ts `fuseMulAdd`). Each element is the float32 product rounded, then the float32
 * sum rounded (a float64 product of two float32 values is exact, and a float64 sum of two
 * float32 values rounds to the correctly rounded float32 sum), so the results are the floats
 * the Mul and Add kernels give one after the other.
 *
 * @module
 */
import { DataType } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import { uninitialized } from "../tensor/arena.ts";
import { sameShape } from "./broadcast.ts";
import { mulAddF32Wasm } from "./wasm/elementwise.ts";

const fround = Math.fround;

/**
 * x·s + r where the three are float32; one factor has the product's shape and the other has
 * that shape too, or one element, or the last axis's length with ones before it (no more dims
 * than the first): a per-channel scale; and r has the product's shape or is one element (no
 * more dims).
 *
 * @returns the sum (the product's shape), or null when the operands are not of that kind (the
 *   caller then runs the Mul and the Add)
 */
export function mulAddF32(x: Tensor, s: Tensor, r: Tensor): Tensor | null {
  if (
    x.dtype !== DataType.DT_FLOAT || s.dtype !== DataType.DT_FLOAT ||
    r.dtype !== DataType.DT_FLOAT
  ) return null;
  // The factor the other broadcasts into: more elements, or as many and more dims.
  const swap = s.size > x.size || (s.size === x.size && s.rank > x.rank);
  const big = swap ? s : x, small = swap ? x : s;
  if (small.rank > big.rank || r.rank > big.rank) return null;
  const rFull = sameShape(r.shape, big.shape);
  if (!rFull && r.size !== 1) return null;
  const n = big.size;
  const X = big.data as Float32Array, S = small.data as Float32Array, R = r.data as Float32Array;
  const c = big.rank > 0 ? big.shape[big.rank - 1] : 1;
  let kind: "same" | "one" | "channel";
  if (sameShape(small.shape, big.shape)) kind = "same";
  else if (small.size === 1) kind = "one";
  else if (small.size === c && small.shape[small.rank - 1] === c) kind = "channel";
  else return null;
  const o = uninitialized(Float32Array, n);
  // WebAssembly SIMD where it can (the same two roundings, four lanes at a time).
  if (mulAddF32Wasm(X, S, R, o, kind, c, rFull)) return new Tensor(DataType.DT_FLOAT, big.shape, o);
  if (rFull) {
    if (kind === "same") { for (let i = 0; i < n; i++) o[i] = fround(X[i] * S[i]) + R[i]; }
    else if (kind === "one") {
      const v = S[0];
      for (let i = 0; i < n; i++) o[i] = fround(X[i] * v) + R[i];
    } else {
      for (let i = 0; i < n; i += c) {
        for (let j = 0; j < c; j++) o[i + j] = fround(X[i + j] * S[j]) + R[i + j];
      }
    }
  } else {
    const b = R[0];
    if (kind === "same") { for (let i = 0; i < n; i++) o[i] = fround(X[i] * S[i]) + b; }
    else if (kind === "one") {
      const v = S[0];
      for (let i = 0; i < n; i++) o[i] = fround(X[i] * v) + b;
    } else {
      for (let i = 0; i < n; i += c) {
        for (let j = 0; j < c; j++) o[i + j] = fround(X[i + j] * S[j]) + b;
      }
    }
  }
  return new Tensor(DataType.DT_FLOAT, big.shape, o);
}
