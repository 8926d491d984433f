/**
 * ConcatV2 on float32 against a straightforward reference on randomized shapes, axes and input
 * counts (odd and even run lengths, so both the float32 loop and the two-at-a-time float64 one
 * run), bit for bit, NaN payloads included.
 *
 * @module
 */
import assert from "node:assert/strict";
import { concatSplitKernels } from "../../src/kernels/concat_split.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { lcg } from "../random.ts";
import { runOp } from "./harness.ts";

Deno.test("ConcatV2 keeps every float32 bit on randomized shapes and axes", () => {
  const rand = lcg(31);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  for (let c = 0; c < 150; c++) {
    const rank = int(1, 4);
    const base = Array.from({ length: rank }, () => int(1, 8));
    const axis = int(0, rank - 1);
    const inputs = Array.from({ length: int(1, 4) }, () => {
      const shape = base.slice();
      shape[axis] = int(0, 9) * (rand() < 0.5 ? 2 : 1) || 1;
      const n = shape.reduce((a, b) => a * b, 1);
      // Random bits, but no float32 signalling NaN: a float32 load may quiet one (the float32
      // loop copies through doubles, as any JavaScript read does).
      const bits = Uint32Array.from({ length: n }, () => {
        const b = (rand() * 2 ** 32) >>> 0;
        return (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0 ? b | 0x400000 : b;
      });
      // NaNs with payloads, and float32 pairs that read as float64 signalling NaNs.
      for (let i = 1; i < n; i += 7) bits[i] = 0x7ff00001 + i;
      return new Tensor(DataType.DT_FLOAT, shape, new Float32Array(bits.buffer));
    });
    const axisT = new Tensor(DataType.DT_INT32, [], Int32Array.of(axis));
    const [y] = runOp(concatSplitKernels, "ConcatV2", [...inputs, axisT]);
    const outer = base.slice(0, axis).reduce((a, b) => a * b, 1);
    const want: number[] = [];
    for (let r = 0; r < outer; r++) {
      for (const t of inputs) {
        const len = t.size / outer;
        const f = t.data as Float32Array;
        const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
        for (let k = 0; k < len; k++) want.push(u[r * len + k]);
      }
    }
    const got = y.data as Float32Array;
    assert.deepEqual(Array.from(new Uint32Array(got.buffer, got.byteOffset, got.length)), want);
  }
});
