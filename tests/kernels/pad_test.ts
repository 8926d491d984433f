/**
 * Pad against a straightforward reference on randomized shapes and paddings (rank 1-5, odd
 * sizes, batch > 1, padding on any subset of dims, so the copied rows span one or more dims).
 *
 * @module
 */
import assert from "node:assert/strict";
import { padKernels } from "../../src/kernels/pad.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { lcg } from "../random.ts";
import { runOp } from "./harness.ts";

Deno.test("Pad equals a reference on randomized shapes and paddings", () => {
  const rand = lcg(23);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  for (let c = 0; c < 200; c++) {
    const rank = int(1, 5);
    const shape = Array.from({ length: rank }, () => int(1, 6));
    const pads = shape.flatMap(() => (rand() < 0.5 ? [0, 0] : [int(0, 3), int(0, 3)]));
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Tensor(
      DataType.DT_FLOAT,
      shape,
      Float32Array.from({ length: n }, (_, i) => i + 1),
    );
    const p = new Tensor(DataType.DT_INT32, [rank, 2], Int32Array.from(pads));
    const [y] = runOp(padKernels, "Pad", [x, p]);
    const outShape = shape.map((d, i) => d + pads[2 * i] + pads[2 * i + 1]);
    assert.deepEqual(y.shape, outShape);
    const want = new Float32Array(outShape.reduce((a, b) => a * b, 1));
    const idx = new Array(rank).fill(0);
    for (let i = 0; i < n; i++) {
      let o = 0;
      for (let d = 0; d < rank; d++) o = o * outShape[d] + idx[d] + pads[2 * d];
      want[o] = (x.data as Float32Array)[i];
      for (let d = rank - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    assert.deepEqual(Array.from(y.data as Float32Array), Array.from(want), `${shape} ${pads}`);
  }
});
