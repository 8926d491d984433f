/**
 * StridedSlice's element-by-element path for small slices and its reuse of the last plan,
 * against a straightforward reference on randomized shapes, begins, ends and strides (negative
 * strides, odd sizes, batch > 1).
 *
 * @module
 */
import assert from "node:assert/strict";
import { sliceKernels } from "../../src/kernels/slice.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { lcg } from "../random.ts";
import { compileOp } from "./harness.ts";

const ints = (xs: number[]) => new Tensor(DataType.DT_INT32, [xs.length], Int32Array.from(xs));

/** Positions begin, begin + stride, … before end (no masks; begin and end in range). */
function positions(b: number, e: number, s: number): number[] {
  const out: number[] = [];
  for (let i = b; s > 0 ? i < e : i > e; i += s) out.push(i);
  return out;
}

function reference(t: Tensor, begin: number[], end: number[], strides: number[]) {
  const pos = t.shape.map((_, d) => positions(begin[d], end[d], strides[d]));
  const shape = pos.map((p) => p.length);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const idx = new Array(shape.length).fill(0);
  for (let o = 0; o < n; o++) {
    let off = 0;
    for (let d = 0; d < shape.length; d++) off = off * t.shape[d] + pos[d][idx[d]];
    out[o] = (t.data as Float32Array)[off];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return { shape, data: out };
}

Deno.test("StridedSlice equals a reference on randomized small and large slices", () => {
  const rand = lcg(17);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const run = compileOp(sliceKernels, "StridedSlice", {}, 4);
  for (let c = 0; c < 300; c++) {
    const rank = int(1, 4);
    const shape = Array.from({ length: rank }, () => int(1, 9));
    const n = shape.reduce((a, b) => a * b, 1);
    const t = new Tensor(DataType.DT_FLOAT, shape, Float32Array.from({ length: n }, (_, i) => i));
    const begin: number[] = [], end: number[] = [], strides: number[] = [];
    for (const d of shape) {
      const s = rand() < 0.3 ? -int(1, 3) : int(1, 3);
      const a = int(0, d - 1), b = int(0, d - 1);
      strides.push(s);
      // Forward slices run low → high, backward ones high → low; -1 would mean "from the end".
      begin.push(s > 0 ? Math.min(a, b) : Math.max(a, b));
      end.push(s > 0 ? Math.max(a, b) + 1 : Math.min(a, b) === 0 ? -d - 1 : Math.min(a, b) - 1);
    }
    const want = reference(t, begin, end.map((e, d) => (e === -shape[d] - 1 ? -1 : e)), strides);
    const [got] = run([t, ints(begin), ints(end), ints(strides)]);
    assert.deepEqual(got.shape, want.shape, `${shape} ${begin} ${end} ${strides}`);
    assert.deepEqual(Array.from(got.data as Float32Array), Array.from(want.data));
  }
});

Deno.test("StridedSlice reuses its plan only while shape, begin, end and strides are unchanged", () => {
  const run = compileOp(sliceKernels, "StridedSlice", {}, 4);
  const t = new Tensor(DataType.DT_FLOAT, [2, 5], Float32Array.from({ length: 10 }, (_, i) => i));
  const begin = ints([0, 1]), end = ints([2, 3]), strides = ints([1, 1]);
  assert.deepEqual(Array.from(run([t, begin, end, strides])[0].data as Float32Array), [1, 2, 6, 7]);
  // The same begin tensor object with other contents (a caller reusing its feed).
  (begin.data as Int32Array)[1] = 2;
  assert.deepEqual(Array.from(run([t, begin, end, strides])[0].data as Float32Array), [2, 7]);
  // Another input shape.
  const u = new Tensor(DataType.DT_FLOAT, [1, 4], Float32Array.from([9, 8, 7, 6]));
  const [y] = run([u, ints([0, 1]), ints([1, 4]), ints([1, 2])]);
  assert.deepEqual(y.shape, [1, 2]);
  assert.deepEqual(Array.from(y.data as Float32Array), [8, 6]);
  // An int64 begin with the same values is read afresh (and accepted).
  const b64 = new Tensor(DataType.DT_INT64, [2], BigInt64Array.from([0n, 1n]));
  const e64 = new Tensor(DataType.DT_INT64, [2], BigInt64Array.from([1n, 4n]));
  const s64 = new Tensor(DataType.DT_INT64, [2], BigInt64Array.from([1n, 2n]));
  assert.deepEqual(Array.from(run([u, b64, e64, s64])[0].data as Float32Array), [8, 6]);
});
