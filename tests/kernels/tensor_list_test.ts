import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { tensorListKernels } from "../../src/kernels/tensor_list.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { attr, runOp } from "./harness.ts";

const F = DataType.DT_FLOAT;
const E = { element_dtype: attr.type(F) };
const run = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = E) =>
  runOp(tensorListKernels, op, inputs, attrs);
const run1 = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = E) =>
  run(op, inputs, attrs)[0];
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);
const idx = (v: number) => i32([v], []);
const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const vals = (t: Tensor) => Array.from(t.data as Float32Array);
const UNKNOWN = idx(-1);

function throwsCode(f: () => unknown, code: Code, text: RegExp): void {
  assert.throws(f, (e) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, text);
    return true;
  });
}

Deno.test("TensorListReserve / SetItem / GetItem / Stack / Length", () => {
  const l0 = run1("TensorListReserve", [i32([2]), idx(3)]);
  assert.equal(l0.dtype, DataType.DT_VARIANT);
  const l1 = run1("TensorListSetItem", [l0, idx(0), f32([1, 2])]);
  const l2 = run1("TensorListSetItem", [l1, idx(2), f32([5, 6])]);
  // Lists are values: l1 still has one element set.
  assert.deepEqual(vals(run1("TensorListStack", [l1, i32([2])])), [1, 2, 0, 0, 0, 0]);
  const s = run1("TensorListStack", [l2, UNKNOWN]);
  assert.deepEqual([...s.shape], [3, 2]);
  assert.deepEqual(vals(s), [1, 2, 0, 0, 5, 6]);
  assert.deepEqual(vals(run1("TensorListGetItem", [l2, idx(2), UNKNOWN])), [5, 6]);
  assert.deepEqual(vals(run1("TensorListGetItem", [l2, idx(1), UNKNOWN])), [0, 0]);
  assert.deepEqual(Array.from(run1("TensorListLength", [l2], {}).data as Int32Array), [3]);
  throwsCode(
    () => run("TensorListSetItem", [l2, idx(3), f32([1, 2])]),
    Code.INVALID_ARGUMENT,
    /Trying to modify element 3 in a list with 3 elements/,
  );
  throwsCode(
    () => run("TensorListSetItem", [l2, idx(1), f32([1, 2, 3])]),
    Code.INVALID_ARGUMENT,
    /Tried to set a tensor with incompatible shape at a list index/,
  );
  throwsCode(
    () =>
      run("TensorListGetItem", [l2, idx(1), UNKNOWN], {
        element_dtype: attr.type(DataType.DT_INT32),
      }),
    Code.INVALID_ARGUMENT,
    /Invalid data types; op elements DT_INT32 but list elements DT_FLOAT/,
  );
  throwsCode(
    () => run("TensorListStack", [l2, UNKNOWN], { ...E, num_elements: attr.int(4) }),
    Code.INVALID_ARGUMENT,
    /Operation expected a list with 4 elements but got a list with 3 elements/,
  );
  // Unknown element shape and no element set: nothing to make zeros from.
  const empty = run1("TensorListReserve", [UNKNOWN, idx(2)]);
  throwsCode(
    () => run("TensorListStack", [empty, UNKNOWN]),
    Code.INVALID_ARGUMENT,
    /Tried to stack list which only contains uninitialized tensors/,
  );
  throwsCode(
    () => run("TensorListGetItem", [empty, idx(0), UNKNOWN]),
    Code.INVALID_ARGUMENT,
    /Trying to read an uninitialized tensor but element_shape is not fully defined/,
  );
  // resize_if_index_out_of_bounds grows the list.
  const grown = run1("TensorListSetItem", [empty, idx(4), f32([7])], {
    ...E,
    resize_if_index_out_of_bounds: attr.bool(true),
  });
  assert.deepEqual(Array.from(run1("TensorListLength", [grown], {}).data as Int32Array), [5]);
  assert.deepEqual(vals(run1("TensorListStack", [grown, UNKNOWN])), [0, 0, 0, 0, 7]);
});

Deno.test("TensorListFromTensor / Gather / PushBack / PopBack / ElementShape / Resize", () => {
  const l = run1("TensorListFromTensor", [f32([1, 2, 3, 4, 5, 6], [3, 2]), i32([2])]);
  assert.deepEqual(vals(run1("TensorListGather", [l, i32([2, 0]), UNKNOWN])), [5, 6, 1, 2]);
  const pushed = run1("TensorListPushBack", [l, f32([7, 8])]);
  assert.deepEqual(Array.from(run1("TensorListLength", [pushed], {}).data as Int32Array), [4]);
  assert.deepEqual(Array.from(run1("TensorListLength", [l], {}).data as Int32Array), [3]);
  const [rest, last] = run("TensorListPopBack", [pushed, UNKNOWN]);
  assert.deepEqual(vals(last), [7, 8]);
  assert.deepEqual(vals(run1("TensorListStack", [rest, UNKNOWN])), [1, 2, 3, 4, 5, 6]);
  const shape = run1("TensorListElementShape", [l], { shape_type: attr.type(DataType.DT_INT32) });
  assert.deepEqual(Array.from(shape.data as Int32Array), [2]);
  const unknown = run1("EmptyTensorList", [UNKNOWN, idx(-1)]);
  const us = run1("TensorListElementShape", [unknown], {
    shape_type: attr.type(DataType.DT_INT64),
  });
  assert.deepEqual([...us.shape], []);
  assert.deepEqual(Array.from(us.data as BigInt64Array), [-1n]);
  throwsCode(
    () => run("TensorListPopBack", [unknown, UNKNOWN]),
    Code.INVALID_ARGUMENT,
    /Trying to pop from an empty list/,
  );
  const resized = run1("TensorListResize", [l, idx(1)], {});
  assert.deepEqual(vals(run1("TensorListStack", [resized, UNKNOWN])), [1, 2]);
  throwsCode(
    () => run("TensorListPushBack", [l, f32([1, 2, 3])]),
    Code.INVALID_ARGUMENT,
    /Tried to append a tensor with incompatible shape to a list/,
  );
});

Deno.test("TensorListSplit / ConcatV2 / ScatterIntoExistingList", () => {
  const l = run1("TensorListSplit", [f32([1, 2, 3, 4, 5], [5]), UNKNOWN, Tensor.int64([2, 0, 3])]);
  assert.deepEqual(Array.from(run1("TensorListLength", [l], {}).data as Int32Array), [3]);
  const [c, lengths] = run("TensorListConcatV2", [l, UNKNOWN, Tensor.int64([], [0])], {
    ...E,
    shape_type: attr.type(DataType.DT_INT32),
  });
  assert.deepEqual(vals(c), [1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(lengths.data as BigInt64Array), [2n, 0n, 3n]);
  const base = run1("TensorListReserve", [i32([2]), idx(2)]);
  const sc = run1("TensorListScatterIntoExistingList", [
    base,
    f32([9, 9, 8, 8, 7, 7], [3, 2]),
    i32([3, 0, 1]),
  ]);
  assert.deepEqual(vals(run1("TensorListStack", [sc, UNKNOWN])), [8, 8, 7, 7, 0, 0, 9, 9]);
});

Deno.test("a graph: reserve → set items → stack, and the list flows through Identity", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", F, [2]);
  const shape = g.constant("shape", i32([2]));
  const n = g.constant("n", i32([3], []));
  const l0 = g.op("reserve", "TensorListReserve", [shape, n], {
    element_dtype: attrValue.type(F),
    shape_type: attrValue.type(DataType.DT_INT32),
  });
  let l = l0;
  for (let i = 0; i < 3; i++) {
    const k = g.constant(`k${i}`, f32([i + 1], []));
    const item = g.op(`item${i}`, "Mul", [x, k], { T: attrValue.type(F) });
    const index = g.constant(`i${i}`, i32([i], []));
    const set = g.op(`set${i}`, "TensorListSetItem", [l, index, item], {
      element_dtype: attrValue.type(F),
    });
    l = g.op(`id${i}`, "Identity", [set], { T: attrValue.type(DataType.DT_VARIANT) });
  }
  g.op("stack", "TensorListStack", [l, shape], {
    element_dtype: attrValue.type(F),
    num_elements: attrValue.int(3),
  });
  const s = new Session(g.graph(), [], defaultRegistry());
  const plan = s.compile(
    { feeds: [parseTensorName("x:0")], fetches: [parseTensorName("stack:0")] },
    "lists",
  );
  const out = plan.run([f32([1, 10])])[0];
  assert.deepEqual([...out.shape], [3, 2]);
  assert.deepEqual(vals(out), [1, 10, 2, 20, 3, 30]);
});

Deno.test("list lengths from a request are capped before anything is allocated", () => {
  throwsCode(
    () => run("TensorListReserve", [UNKNOWN, idx(2 ** 30)]),
    Code.RESOURCE_EXHAUSTED,
    /limit of one list/,
  );
  const l = run1("TensorListReserve", [UNKNOWN, idx(1)]);
  throwsCode(
    () =>
      run("TensorListSetItem", [l, idx(2 ** 30), f32([1])], {
        ...E,
        resize_if_index_out_of_bounds: attr.bool(true),
      }),
    Code.RESOURCE_EXHAUSTED,
    /limit of one list/,
  );
});
