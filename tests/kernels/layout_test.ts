import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { layoutKernels } from "../../src/kernels/layout.ts";
import { convKernels } from "../../src/kernels/conv.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { assertClose, attr, compileOp, runOp } from "./harness.ts";

const run1 = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = {}) =>
  runOp(layoutKernels, op, inputs, attrs)[0];
const f32 = (v: ArrayLike<number>, shape?: number[]) => Tensor.float32(v, shape);
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);
const iota = (n: number, from = 0) => Array.from({ length: n }, (_, i) => i + from);

function check(t: Tensor, shape: number[], values: number[]): void {
  assert.deepEqual([...t.shape], shape);
  assert.deepEqual(Array.from(t.data as Float32Array), values);
}

function throwsCode(f: () => unknown, code: Code, text: RegExp): void {
  assert.throws(f, (e) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, text);
    return true;
  });
}

// The examples of TensorFlow's op documentation (array_ops.cc).
Deno.test("DepthToSpace matches TensorFlow's documented examples", () => {
  const bs = { block_size: attr.int(2) };
  check(run1("DepthToSpace", [f32([1, 2, 3, 4], [1, 1, 1, 4])], bs), [1, 2, 2, 1], [1, 2, 3, 4]);
  check(run1("DepthToSpace", [f32(iota(12, 1), [1, 1, 1, 12])], bs), [1, 2, 2, 3], iota(12, 1));
  check(
    run1("DepthToSpace", [f32(iota(16, 1), [1, 2, 2, 4])], bs),
    [1, 4, 4, 1],
    [1, 2, 5, 6, 3, 4, 7, 8, 9, 10, 13, 14, 11, 12, 15, 16],
  );
});

Deno.test("SpaceToDepth inverts DepthToSpace", () => {
  const bs = { block_size: attr.int(2) };
  check(run1("SpaceToDepth", [f32([1, 2, 3, 4], [1, 2, 2, 1])], bs), [1, 1, 1, 4], [1, 2, 3, 4]);
  const x = f32(iota(2 * 4 * 6 * 3), [2, 4, 6, 3]);
  const y = run1("SpaceToDepth", [x], bs);
  assert.deepEqual([...y.shape], [2, 2, 3, 12]);
  check(run1("DepthToSpace", [y], bs), [2, 4, 6, 3], iota(2 * 4 * 6 * 3));
  // Strings move too.
  const s = run1("DepthToSpace", [Tensor.strings(["a", "b", "c", "d"], [1, 1, 1, 4])], bs);
  assert.deepEqual(s.strings.map((b) => new TextDecoder().decode(b)), ["a", "b", "c", "d"]);
});

Deno.test("DepthToSpace/SpaceToDepth check shapes and refuse non-NHWC at load", () => {
  const bs = { block_size: attr.int(2) };
  throwsCode(
    () => run1("DepthToSpace", [f32(iota(6), [1, 1, 1, 6])], bs),
    Code.INVALID_ARGUMENT,
    /Input depth dimension 6 should be divisible by: 4/,
  );
  throwsCode(
    () => run1("SpaceToDepth", [f32(iota(6), [1, 3, 2, 1])], bs),
    Code.INVALID_ARGUMENT,
    /Image width 2 and height 3 should be divisible by block_size: 2/,
  );
  throwsCode(
    () => compileOp(layoutKernels, "DepthToSpace", { block_size: attr.int(1) }),
    Code.INVALID_ARGUMENT,
    /Block size should be > 1, but was: 1/,
  );
  throwsCode(
    () =>
      compileOp(layoutKernels, "SpaceToDepth", {
        block_size: attr.int(2),
        data_format: attr.string("NCHW"),
      }),
    Code.UNIMPLEMENTED,
    /node "test_SpaceToDepth".*data_format=NCHW/,
  );
});

Deno.test("SpaceToBatchND matches TensorFlow's documented examples", () => {
  const block = i32([2, 2]);
  const noPad = i32([0, 0, 0, 0], [2, 2]);
  check(
    run1("SpaceToBatchND", [f32([1, 2, 3, 4], [1, 2, 2, 1]), block, noPad]),
    [4, 1, 1, 1],
    [1, 2, 3, 4],
  );
  check(
    run1("SpaceToBatchND", [f32(iota(16, 1), [1, 4, 4, 1]), block, noPad]),
    [4, 2, 2, 1],
    [1, 3, 9, 11, 2, 4, 10, 12, 5, 7, 13, 15, 6, 8, 14, 16],
  );
  check(
    run1("SpaceToBatchND", [f32(iota(16, 1), [2, 2, 4, 1]), block, i32([0, 0, 2, 0], [2, 2])]),
    [8, 1, 3, 1],
    [0, 1, 3, 0, 9, 11, 0, 2, 4, 0, 10, 12, 0, 5, 7, 0, 13, 15, 0, 6, 8, 0, 14, 16],
  );
  // BatchToSpaceND undoes each (crops = the paddings).
  check(
    run1("BatchToSpaceND", [
      run1("SpaceToBatchND", [f32(iota(16, 1), [2, 2, 4, 1]), block, i32([0, 0, 2, 0], [2, 2])]),
      block,
      i32([0, 0, 2, 0], [2, 2]),
    ]),
    [2, 2, 4, 1],
    iota(16, 1),
  );
  check(
    run1("BatchToSpace", [f32(iota(16, 1), [4, 2, 2, 1]), i32([0, 0, 0, 0], [2, 2])], {
      block_size: attr.int(2),
    }),
    [1, 4, 4, 1],
    [1, 5, 2, 6, 9, 13, 10, 14, 3, 7, 4, 8, 11, 15, 12, 16],
  );
});

Deno.test("SpaceToBatchND/BatchToSpaceND validate their arguments", () => {
  const x = f32(iota(8), [1, 2, 4, 1]);
  throwsCode(
    () => run1("SpaceToBatchND", [x, i32([3, 2]), i32([0, 0, 0, 0], [2, 2])]),
    Code.INVALID_ARGUMENT,
    /padded_shape\[0\]=2 is not divisible by block_shape\[0\]=3/,
  );
  throwsCode(
    () => run1("SpaceToBatchND", [x, i32([2, 2]), i32([0, 0], [1, 2])]),
    Code.INVALID_ARGUMENT,
    /paddings should have shape \[2, 2\] instead of \[1,2\]/,
  );
  throwsCode(
    () => run1("BatchToSpaceND", [x, i32([2, 2]), i32([0, 0, 0, 0], [2, 2])]),
    Code.INVALID_ARGUMENT,
    /Input batch dimension \(1\) is not divisible by product of block sizes \(4\)/,
  );
  // Paddings from a request cannot make a huge output.
  throwsCode(
    () => run1("SpaceToBatchND", [x, i32([1, 1]), i32([0, 2 ** 30, 0, 2 ** 30], [2, 2])]),
    Code.RESOURCE_EXHAUSTED,
    /limit/,
  );
  throwsCode(
    () => compileOp(layoutKernels, "SpaceToBatchND", { T: attr.type(DataType.DT_STRING) }, 3),
    Code.UNIMPLEMENTED,
    /attr T=DT_STRING/,
  );
});

Deno.test("SpaceToBatchND + Conv2D + BatchToSpaceND equals a dilated Conv2D (TF1 atrous)", () => {
  const x = f32(iota(1 * 7 * 6 * 2).map((v) => Math.sin(v)), [1, 7, 6, 2]);
  const w = f32(iota(3 * 3 * 2 * 3).map((v) => Math.cos(v)), [3, 3, 2, 3]);
  const conv = (dil: number) =>
    compileOp(convKernels, "Conv2D", {
      T: attr.type(DataType.DT_FLOAT),
      strides: attr.ints([1, 1, 1, 1]),
      padding: attr.string("VALID"),
      dilations: attr.ints([1, dil, dil, 1]),
    }, 2);
  const direct = conv(2)([x, w])[0];
  // tf.nn.atrous_conv2d, VALID: pad the spatial dims up to a multiple of the rate, then crop.
  const s2b = run1("SpaceToBatchND", [x, i32([2, 2]), i32([0, 1, 0, 0], [2, 2])]);
  const y = conv(1)([s2b, w])[0];
  const out = run1("BatchToSpaceND", [y, i32([2, 2]), i32([0, 1, 0, 0], [2, 2])]);
  assert.deepEqual([...out.shape], [...direct.shape]);
  assertClose(out.data as Float32Array, direct.data as Float32Array, 1e-5);
});

Deno.test("DepthToSpace equals its index formula on randomized shapes and block sizes", () => {
  let seed = 7;
  const int = (lo: number, hi: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return lo + Math.floor((seed / 2147483648) * (hi - lo + 1));
  };
  for (let c = 0; c < 40; c++) {
    const bs = int(2, 3), od = int(1, 5);
    const [batch, h, w, depth] = [int(1, 3), int(1, 5), int(1, 5), od * bs * bs];
    const n = batch * h * w * depth;
    for (
      const t of [f32(iota(n, 1), [batch, h, w, depth]), i32(iota(n, 1), [batch, h, w, depth])]
    ) {
      const y = run1("DepthToSpace", [t], { block_size: attr.int(bs) });
      const shape = [batch, h * bs, w * bs, od];
      const want: number[] = [];
      for (let b = 0; b < batch; b++) {
        for (let oy = 0; oy < h * bs; oy++) {
          for (let ox = 0; ox < w * bs; ox++) {
            for (let ch = 0; ch < od; ch++) {
              const ci = ((oy % bs) * bs + (ox % bs)) * od + ch;
              want.push(
                (t.data as ArrayLike<number>)[
                  ((b * h + Math.floor(oy / bs)) * w + Math.floor(ox / bs)) * depth + ci
                ],
              );
            }
          }
        }
      }
      assert.deepEqual([...y.shape], shape);
      assert.deepEqual(Array.from(y.data as ArrayLike<number>), want);
    }
  }
});
