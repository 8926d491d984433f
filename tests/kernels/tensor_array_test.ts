import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { tensorArrayKernels } from "../../src/kernels/tensor_array.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { attr, runOp } from "./harness.ts";

const F = DataType.DT_FLOAT;
const run = (op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = {}) =>
  runOp(tensorArrayKernels, op, inputs, attrs);
const i32 = (v: number[], shape?: number[]) => Tensor.int32(v, shape);
const idx = (v: number) => i32([v], []);
const f32 = (v: number[], shape?: number[]) => Tensor.float32(v, shape);
const vals = (t: Tensor) => Array.from(t.data as Float32Array);

function throwsCode(f: () => unknown, code: Code, text: RegExp): void {
  assert.throws(f, (e) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, text);
    return true;
  });
}

function newArray(size: number, attrs: Record<string, AttrValue> = {}) {
  const [h, flow] = run("TensorArrayV3", [idx(size)], { dtype: attr.type(F), ...attrs });
  assert.equal(h.dtype, DataType.DT_RESOURCE);
  assert.equal(flow.dtype, F);
  return { h, flow };
}

Deno.test("TensorArray write, read, size; each run of TensorArrayV3 is a new array", () => {
  const { h, flow } = newArray(3);
  const { h: other } = newArray(3);
  assert.notEqual((h.data as unknown[])[0], (other.data as unknown[])[0]);
  const out = run("TensorArrayWriteV3", [h, idx(1), f32([1, 2]), flow])[0];
  assert.equal(out, flow);
  assert.deepEqual(vals(run("TensorArrayReadV3", [h, idx(1), flow], { dtype: attr.type(F) })[0]), [
    1,
    2,
  ]);
  assert.deepEqual(Array.from(run("TensorArraySizeV3", [h, flow])[0].data as Int32Array), [3]);
  // clear_after_read (the default): a second read fails, and so does a write after a read.
  throwsCode(
    () => run("TensorArrayReadV3", [h, idx(1), flow], { dtype: attr.type(F) }),
    Code.INVALID_ARGUMENT,
    /Could not read index 1 twice because it was cleared after a previous read/,
  );
  throwsCode(
    () => run("TensorArrayWriteV3", [h, idx(1), f32([1, 2]), flow]),
    Code.INVALID_ARGUMENT,
    /Could not write to TensorArray index 1 because it has already been read/,
  );
  run("TensorArrayWriteV3", [h, idx(0), f32([3, 4]), flow]);
  throwsCode(
    () => run("TensorArrayWriteV3", [h, idx(0), f32([3, 4]), flow]),
    Code.INVALID_ARGUMENT,
    /index 0 because it has already been written to/,
  );
  throwsCode(
    () => run("TensorArrayWriteV3", [h, idx(3), f32([3, 4]), flow]),
    Code.INVALID_ARGUMENT,
    /Tried to write to index 3 but array is not resizeable and size is: 3/,
  );
  throwsCode(
    () => run("TensorArrayWriteV3", [h, idx(2), i32([3, 4]), flow]),
    Code.INVALID_ARGUMENT,
    /TensorArray dtype is DT_FLOAT but Op is trying to write dtype DT_INT32/,
  );
  // An unwritten element with an unknown shape cannot be read.
  throwsCode(
    () => run("TensorArrayReadV3", [h, idx(2), flow], { dtype: attr.type(F) }),
    Code.INVALID_ARGUMENT,
    /Could not read from TensorArray index 2. {2}Furthermore, the element shape is not fully defined: <unknown>/,
  );
});

Deno.test("TensorArray scatter, gather and concat/split; zeros for unwritten known shapes", () => {
  const { h, flow } = newArray(3, {
    element_shape: attr.shape([2]),
    clear_after_read: attr.bool(false),
  });
  run("TensorArrayScatterV3", [h, i32([2, 0]), f32([1, 2, 3, 4], [2, 2]), flow]);
  const g = run("TensorArrayGatherV3", [h, i32([0, 1, 2]), flow], {
    dtype: attr.type(F),
    element_shape: attr.shape([2]),
  })[0];
  assert.deepEqual([...g.shape], [3, 2]);
  assert.deepEqual(vals(g), [3, 4, 0, 0, 1, 2]);
  // Not cleared: gather again.
  assert.deepEqual(
    vals(run("TensorArrayGatherV3", [h, i32([2]), flow], { dtype: attr.type(F) })[0]),
    [1, 2],
  );
  const [c, lengths] = run("TensorArrayConcatV3", [h, flow], { dtype: attr.type(F) });
  assert.deepEqual([...c.shape], [6]);
  assert.deepEqual(vals(c), [3, 4, 0, 0, 1, 2]);
  assert.deepEqual(Array.from(lengths.data as BigInt64Array), [2n, 2n, 2n]);

  const { h: h2, flow: f2 } = newArray(2);
  run("TensorArraySplitV3", [h2, f32([1, 2, 3], [3, 1]), Tensor.int64([1, 2]), f2]);
  const r = run("TensorArrayReadV3", [h2, idx(1), f2], { dtype: attr.type(F) })[0];
  assert.deepEqual([...r.shape], [2, 1]);
  assert.deepEqual(vals(r), [2, 3]);

  // Empty gather needs a fully defined element shape.
  const { h: h3, flow: f3 } = newArray(0);
  throwsCode(
    () => run("TensorArrayGatherV3", [h3, i32([]), f3], { dtype: attr.type(F) }),
    Code.UNIMPLEMENTED,
    /TensorArray has size zero, but element shape <unknown> is not fully defined/,
  );
  const e = run("TensorArrayGatherV3", [h3, i32([]), f3], {
    dtype: attr.type(F),
    element_shape: attr.shape([4]),
  })[0];
  assert.deepEqual([...e.shape], [0, 4]);
});

Deno.test("TensorArray dynamic_size grows; identical_element_shapes fixes the shape; close", () => {
  const { h, flow } = newArray(0, {
    dynamic_size: attr.bool(true),
    identical_element_shapes: attr.bool(true),
  });
  run("TensorArrayWriteV3", [h, idx(2), f32([1, 2]), flow]);
  assert.deepEqual(Array.from(run("TensorArraySizeV3", [h, flow])[0].data as Int32Array), [3]);
  throwsCode(
    () => run("TensorArrayWriteV3", [h, idx(0), f32([1, 2, 3]), flow]),
    Code.INVALID_ARGUMENT,
    /value shape is \[3\] which is incompatible with the TensorArray's inferred element shape: \[2\]/,
  );
  // The shape is now known, so unwritten elements read as zeros.
  assert.deepEqual(
    vals(run("TensorArrayReadV3", [h, idx(0), flow], { dtype: attr.type(F) })[0]),
    [0, 0],
  );
  run("TensorArrayCloseV3", [h]);
  throwsCode(
    () => run("TensorArraySizeV3", [h, flow]),
    Code.INVALID_ARGUMENT,
    /has already been closed/,
  );
});

Deno.test("a graph: TensorArray scatter → read/write per element → gather (map_fn's shape)", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", F, [3, 2]);
  const n = g.constant("n", i32([3], []));
  const ta = g.op("in", "TensorArrayV3", [n], {
    dtype: attrValue.type(F),
    element_shape: attrValue.shape([2]),
  });
  const out = g.op("out", "TensorArrayV3", [n], { dtype: attrValue.type(F) });
  const range = g.constant("range", i32([0, 1, 2]));
  const scattered = g.op("scatter", "TensorArrayScatterV3", [ta, range, x, "in:1"], {
    T: attrValue.type(F),
  });
  let flow = "out:1";
  for (let i = 0; i < 3; i++) {
    const idxNode = g.constant(`i${i}`, i32([i], []));
    const read = g.op(`read${i}`, "TensorArrayReadV3", [ta, idxNode, scattered], {
      dtype: attrValue.type(F),
    });
    const doubled = g.op(`double${i}`, "Add", [read, read], { T: attrValue.type(F) });
    flow = g.op(`write${i}`, "TensorArrayWriteV3", [out, idxNode, doubled, flow], {
      T: attrValue.type(F),
    });
  }
  g.op("gather", "TensorArrayGatherV3", [out, range, flow], {
    dtype: attrValue.type(F),
    element_shape: attrValue.shape([2]),
  });
  const s = new Session(g.graph(), [], defaultRegistry());
  const plan = s.compile(
    { feeds: [parseTensorName("x:0")], fetches: [parseTensorName("gather:0")] },
    "map",
  );
  // Two runs: each makes fresh TensorArrays.
  for (const base of [1, 10]) {
    const input = f32([0, 1, 2, 3, 4, 5].map((v) => v + base), [3, 2]);
    const res = plan.run([input])[0];
    assert.deepEqual([...res.shape], [3, 2]);
    assert.deepEqual(vals(res), [0, 1, 2, 3, 4, 5].map((v) => 2 * (v + base)));
  }
});

Deno.test("TensorArray sizes from a request are capped before anything is allocated", () => {
  throwsCode(
    () => run("TensorArrayV3", [idx(2 ** 30)], { dtype: attr.type(F) }),
    Code.RESOURCE_EXHAUSTED,
    /limit of one list/,
  );
  const { h, flow } = newArray(1, { dynamic_size: attr.bool(true) });
  throwsCode(
    () => run("TensorArrayWriteV3", [h, idx(2 ** 30), f32([1]), flow]),
    Code.RESOURCE_EXHAUSTED,
    /limit of one list/,
  );
});
