import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import {
  broadcastShapes,
  forEachBlock,
  sameShape,
  stridedPlan,
} from "../../src/kernels/broadcast.ts";

Deno.test("broadcastShapes follows numpy rules", () => {
  assert.deepEqual(broadcastShapes([2, 3], [3]), [2, 3]);
  assert.deepEqual(broadcastShapes([2, 1], [1, 3]), [2, 3]);
  assert.deepEqual(broadcastShapes([], [4, 5]), [4, 5]);
  assert.deepEqual(broadcastShapes([5, 1, 7], [6, 1]), [5, 6, 7]);
  assert.deepEqual(broadcastShapes([0, 3], [1, 3]), [0, 3]);
  assert.deepEqual(broadcastShapes([1], [0]), [0]);
});

Deno.test("broadcastShapes fails as TensorFlow does", () => {
  assert.throws(
    () => broadcastShapes([2, 3], [4]),
    (e) =>
      e instanceof ServingError && e.code === Code.INVALID_ARGUMENT &&
      e.message === "Incompatible shapes: [2,3] vs. [4]",
  );
  assert.throws(() => broadcastShapes([0], [2]), /Incompatible shapes: \[0\] vs. \[2\]/);
});

Deno.test("sameShape", () => {
  assert.ok(sameShape([2, 3], [2, 3]));
  assert.ok(!sameShape([2, 3], [3, 2]));
  assert.ok(!sameShape([6], [2, 3]));
  assert.ok(sameShape([], []));
});

Deno.test("stridedPlan collapses dims walked alike", () => {
  // [2,3,4] + [4]: the first two dims merge (b is broadcast along both).
  const p = stridedPlan([[2, 3, 4], [4]]);
  assert.deepEqual(p.shape, [2, 3, 4]);
  assert.equal(p.size, 24);
  assert.deepEqual(p.dims, [6, 4]);
  assert.deepEqual(p.strides, [[4, 1], [0, 1]]);

  // Same shapes collapse to one run (padded to two dims).
  const q = stridedPlan([[2, 3], [2, 3]]);
  assert.deepEqual(q.dims, [1, 6]);
  assert.deepEqual(q.strides, [[0, 1], [0, 1]]);

  // Size-1 output dims vanish; [2,1] + [1,3] keeps both dims.
  const r = stridedPlan([[2, 1], [1, 3]]);
  assert.deepEqual(r.dims, [2, 3]);
  assert.deepEqual(r.strides, [[1, 0], [0, 1]]);

  const s = stridedPlan([[1, 1, 5], [5]]);
  assert.deepEqual(s.shape, [1, 1, 5]);
  assert.deepEqual(s.dims, [1, 5]);
});

Deno.test("forEachBlock visits blocks in output order with operand offsets", () => {
  // [2,1,3] + [4,1] → [2,4,3]; collapsed dims [2,4,3], blocks over the last two.
  const plan = stridedPlan([[2, 1, 3], [4, 1]]);
  assert.deepEqual(plan.dims, [2, 4, 3]);
  const seen: number[][] = [];
  forEachBlock(plan, (off, out) => seen.push([off[0], off[1], out]));
  assert.deepEqual(seen, [[0, 0, 0], [3, 0, 12]]);

  // Rebuild the broadcast sum and check it element by element.
  const a = [1, 2, 3, 4, 5, 6];
  const b = [10, 20, 30, 40];
  const out = new Array<number>(plan.size);
  const [sa, sb] = plan.strides;
  forEachBlock(plan, (off, o) => {
    for (let i = 0; i < plan.dims[1]; i++) {
      for (let j = 0; j < plan.dims[2]; j++) {
        out[o++] = a[off[0] + i * sa[1] + j * sa[2]] + b[off[1] + i * sb[1] + j * sb[2]];
      }
    }
  });
  const expected: number[] = [];
  for (let x = 0; x < 2; x++) {
    for (let y = 0; y < 4; y++) for (let z = 0; z < 3; z++) expected.push(a[x * 3 + z] + b[y]);
  }
  assert.deepEqual(out, expected);
});

Deno.test("forEachBlock with deeper outer dims", () => {
  const plan = stridedPlan([[2, 3, 1, 5], [3, 4, 1]]);
  assert.deepEqual(plan.shape, [2, 3, 4, 5]);
  let blocks = 0;
  let last = -1;
  forEachBlock(plan, (_off, out) => {
    assert.ok(out > last);
    last = out;
    blocks++;
  });
  const r = plan.dims.length;
  assert.equal(blocks, plan.size / (plan.dims[r - 2] * plan.dims[r - 1]));
});

Deno.test("forEachBlock does nothing for empty outputs", () => {
  const plan = stridedPlan([[0, 3], [3]]);
  let called = false;
  forEachBlock(plan, () => called = true);
  assert.equal(called, false);
});
