import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { toText } from "@bufbuild/protobuf/txtpb";
import { GraphDefSchema } from "../../src/proto/gen/tensorflow/core/framework/graph_pb.ts";
import { SavedModelSchema } from "../../src/proto/gen/tensorflow/core/protobuf/saved_model_pb.ts";
import { attrValue, GraphBuilder, signatureDef, tensorInfo } from "../../src/graph/builder.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { copyModel } from "../testdata.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };

Deno.test("variable state persists across runs of one session (a TF1 counter)", () => {
  const g = new GraphBuilder();
  const v = g.op("counter", "VariableV2", [], {
    dtype: attrValue.type(DataType.DT_FLOAT),
    shape: attrValue.shape([]),
  });
  const zero = g.constant("zero", Tensor.scalar(DataType.DT_FLOAT, 0));
  const one = g.constant("one", Tensor.scalar(DataType.DT_FLOAT, 1));
  g.op("counter/Assign", "Assign", [v, zero], F);
  const inc = g.op("inc", "AssignAdd", [v, one], F);
  g.op("read", "Identity", [inc], F);
  const s = new Session(g.graph(), [], defaultRegistry());
  s.compile({ feeds: [], fetches: [], targets: ["counter/Assign"] }, "init").run([]);
  const plan = s.compile({ feeds: [], fetches: [parseTensorName("read:0")] }, "inc");
  const seen = [1, 2, 3].map(() => (plan.run([])[0].data as Float32Array)[0]);
  assert.deepEqual(seen, [1, 2, 3]);
  // A second plan over the same session sees the same variable.
  const peek = s.compile({ feeds: [], fetches: [parseTensorName("counter:0")] }, "peek");
  assert.equal((peek.run([])[0].data as Float32Array)[0], 3);
});

Deno.test("an uninitialised variable fails as TensorFlow words it", () => {
  const g = new GraphBuilder();
  const v = g.op("w", "VariableV2", [], {
    dtype: attrValue.type(DataType.DT_FLOAT),
    shape: attrValue.shape([]),
  });
  g.op("read", "Identity", [v], F);
  const s = new Session(g.graph(), [], defaultRegistry());
  const plan = s.compile({ feeds: [], fetches: [parseTensorName("read:0")] }, "read");
  assert.throws(() => plan.run([]), /Attempting to use uninitialized value w/);
});

Deno.test("TF2 resource variables: AssignAddVariableOp changes what later reads see", () => {
  const g = new GraphBuilder();
  const h = g.op("v", "VarHandleOp", [], {
    dtype: attrValue.type(DataType.DT_FLOAT),
    shape: attrValue.shape([2]),
    shared_name: attrValue.string("v"),
  });
  const init = g.constant("init", Tensor.float32([1, 2]));
  g.op("assign", "AssignVariableOp", [h, init], { dtype: attrValue.type(DataType.DT_FLOAT) });
  const delta = g.placeholder("delta", DataType.DT_FLOAT, [2]);
  g.op("add", "AssignAddVariableOp", [h, delta], { dtype: attrValue.type(DataType.DT_FLOAT) });
  g.op("read", "ReadVariableOp", [h, "^add"], { dtype: attrValue.type(DataType.DT_FLOAT) });
  const s = new Session(g.graph(), [], defaultRegistry());
  s.compile({ feeds: [], fetches: [], targets: ["assign"] }, "init").run([]);
  const plan = s.compile(
    { feeds: [parseTensorName(delta)], fetches: [parseTensorName("read:0")] },
    "step",
  );
  plan.run([Tensor.float32([10, 10])]);
  assert.deepEqual([...(plan.run([Tensor.float32([1, 1])])[0].data as Float32Array)], [12, 13]);
});

Deno.test("a plan prunes what the fetches do not need and fuses dense→bias→softmax", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT, [-1, 3]);
  const w = g.constant("w", Tensor.float32([1, 0, 0, 1, 1, 1], [3, 2]));
  const b = g.constant("b", Tensor.float32([0, 1]));
  const mm = g.op("mm", "MatMul", [x, w], F);
  const add = g.op("add", "Add", [mm, b], F);
  g.op("y", "Softmax", [add], F);
  g.op("unused", "NoSuchOp", [x]);
  const s = new Session(g.graph(), [], defaultRegistry());
  const plan = s.compile({ feeds: [parseTensorName(x)], fetches: [parseTensorName("y:0")] }, "y");
  assert.ok(plan.ops.includes("_FusedDenseSoftmax"), plan.ops.join(","));
  assert.ok(!plan.ops.includes("NoSuchOp"));
  const y = plan.run([Tensor.float32([1, 2, 3], [1, 3])])[0].data as Float32Array;
  // logits [1+3, 2+3+1] = [4, 6]
  const e = [Math.exp(4 - 6), 1];
  assert.ok(Math.abs(y[0] - e[0] / (e[0] + e[1])) < 1e-6);
  assert.ok(Math.abs(y[1] - e[1] / (e[0] + e[1])) < 1e-6);
  // Unfused, the same numbers.
  const plain = s.compile(
    { feeds: [parseTensorName(x)], fetches: [parseTensorName("y:0")], fuse: false },
    "y",
  );
  assert.ok(!plain.ops.includes("_FusedDenseSoftmax"));
  const y2 = plain.run([Tensor.float32([1, 2, 3], [1, 3])])[0].data as Float32Array;
  assert.ok(Math.abs(y2[0] - y[0]) < 1e-6 && Math.abs(y2[1] - y[1]) < 1e-6);
  // A bias that is not a vector takes the general path and still gives TF's answer.
  const s2 = new GraphBuilder();
  const x2 = s2.placeholder("x", DataType.DT_FLOAT, [-1, 3]);
  const w2 = s2.constant("w", Tensor.float32([1, 0, 0, 1, 1, 1], [3, 2]));
  const b2 = s2.constant("b", Tensor.scalar(DataType.DT_FLOAT, 1));
  s2.op("y", "Softmax", [s2.op("add", "AddV2", [s2.op("mm", "MatMul", [x2, w2], F), b2], F)], F);
  const p2 = new Session(s2.graph(), [], defaultRegistry()).compile(
    { feeds: [parseTensorName(x2)], fetches: [parseTensorName("y:0")] },
    "y",
  );
  const y3 = p2.run([Tensor.float32([1, 2, 3], [1, 3])])[0].data as Float32Array;
  const e3 = [Math.exp(5 - 6), 1];
  assert.ok(Math.abs(y3[0] - e3[0] / (e3[0] + e3[1])) < 1e-6);
});

Deno.test("a graph cycle that is not a loop back edge is refused at compile time naming a node", () => {
  const g = new GraphBuilder();
  g.op("a", "Identity", ["b:0"], F);
  g.op("b", "Identity", ["a:0"], F);
  const s = new Session(g.graph(), [], defaultRegistry());
  assert.throws(
    () => s.compile({ feeds: [], fetches: [parseTensorName("a:0")] }, "loop"),
    /cycle through node "(a|b)"/,
  );
});

Deno.test("loadModel() reads saved_model.pbtxt when there is no saved_model.pb", async () => {
  const dir = await copyModel("saved_model_half_plus_two_2_versions/00000123");
  const sm = fromBinary(SavedModelSchema, await Deno.readFile(`${dir}/saved_model.pb`));
  await Deno.writeTextFile(`${dir}/saved_model.pbtxt`, toText(SavedModelSchema, sm));
  await Deno.remove(`${dir}/saved_model.pb`);
  const m = await loadModel(dir);
  const y = m.signature("serving_default").run({ x: Tensor.float32([4], [1, 1]) })["y"];
  assert.deepEqual([...(y.data as Float32Array)], [4]);
});

Deno.test("a signature over a reference-typed tensor returns the variable's value", async () => {
  const g = new GraphBuilder();
  const v = g.op("v", "VariableV2", [], {
    dtype: attrValue.type(DataType.DT_FLOAT),
    shape: attrValue.shape([]),
  });
  const c = g.constant("c", Tensor.scalar(DataType.DT_FLOAT, 7));
  g.op("init", "Assign", [v, c], F);
  const sm = create(SavedModelSchema, {
    metaGraphs: [{
      metaInfoDef: { tags: ["serve"] },
      graphDef: g.graph(),
      collectionDef: { legacy_init_op: { kind: { case: "nodeList", value: { value: ["init"] } } } },
      signatureDef: {
        // TF1 exports can name a variable directly; its TensorInfo is DT_FLOAT_REF.
        serving_default: signatureDef({}, {
          v: tensorInfo(v, DataType.DT_FLOAT_REF, []),
        }, "tensorflow/serving/predict"),
      },
    }],
  });
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/saved_model.pb`, toBinary(SavedModelSchema, sm));
  const m = await loadModel(dir);
  const sig = m.signature("serving_default");
  assert.equal(sig.outputs[0].dtype, DataType.DT_FLOAT);
  const out = sig.run({})["v"];
  assert.equal(out.dtype, DataType.DT_FLOAT);
  assert.deepEqual([...(out.data as Float32Array)], [7]);
});

Deno.test("an Identity of a variable reads it where it runs, before a later Assign", () => {
  const g = new GraphBuilder();
  const v = g.op("v", "VariableV2", [], {
    dtype: attrValue.type(DataType.DT_FLOAT),
    shape: attrValue.shape([]),
  });
  g.op("init", "Assign", [v, g.constant("one", Tensor.scalar(DataType.DT_FLOAT, 1))], F);
  const before = g.op("before", "Identity", [v], F);
  const five = g.constant("five", Tensor.scalar(DataType.DT_FLOAT, 5));
  g.op("set", "Assign", [v, five, "^before"], F);
  const zero = g.constant("zero", Tensor.scalar(DataType.DT_FLOAT, 0));
  g.op("out", "Add", [before, zero, "^set"], F);
  const s = new Session(g.graph(), [], defaultRegistry());
  s.compile({ feeds: [], fetches: [], targets: ["init"] }, "init").run([]);
  const plan = s.compile({ feeds: [], fetches: [parseTensorName("out:0")] }, "out");
  assert.equal((plan.run([])[0].data as Float32Array)[0], 1);
  const after = s.compile({ feeds: [], fetches: [parseTensorName("v:0")] }, "v");
  assert.equal((after.run([])[0].data as Float32Array)[0], 5);
});

Deno.test("a function body's `node:out:i` inputs resolve through the OpDef registry when the model lists no OpDefs", () => {
  const g = new GraphBuilder();
  g.placeholder("x", DataType.DT_FLOAT);
  g.op("call", "PartitionedCall", ["x"], {
    Tin: attrValue.types([DataType.DT_FLOAT]),
    Tout: attrValue.types([DataType.DT_FLOAT]),
    f: attrValue.func("square"),
  });
  const graph = create(GraphDefSchema, {
    node: g.nodes,
    library: {
      function: [{
        signature: {
          name: "square",
          inputArg: [{ name: "a", type: DataType.DT_FLOAT }],
          outputArg: [{ name: "z", type: DataType.DT_FLOAT }],
        },
        nodeDef: [{ name: "m", op: "Mul", input: ["a", "a"], attr: F }],
        ret: { z: "m:z:0" },
      }],
    },
  });
  const s = new Session(graph, [], defaultRegistry());
  const plan = s.compile(
    { feeds: [parseTensorName("x:0")], fetches: [parseTensorName("call:0")] },
    "square",
  );
  const y = plan.run([new Tensor(DataType.DT_FLOAT, [2], new Float32Array([3, -2]))])[0];
  assert.deepEqual([...y.data as Float32Array], [9, 4]);
});

Deno.test("a SavedModel whose Consts hold control inputs on the fed Placeholder serves", async () => {
  // The shape of an inlined TF2 function (a MobileNetV2 classifier's export): weights with
  // `^input`. TensorFlow moves those control edges to the feed, so the Placeholder never runs.
  const g = new GraphBuilder();
  const x = g.placeholder("input", DataType.DT_FLOAT, [-1, 2]);
  const w = g.op("w", "Const", ["^input"], {
    dtype: attrValue.type(DataType.DT_FLOAT),
    value: attrValue.tensor(Tensor.float32([1, 2, 3, 4], [2, 2])),
  });
  g.op("y", "MatMul", [x, w], F);
  const sm = create(SavedModelSchema, {
    metaGraphs: [{
      metaInfoDef: { tags: ["serve"] },
      graphDef: g.graph(),
      signatureDef: {
        serving_default: signatureDef(
          { input: tensorInfo(x, DataType.DT_FLOAT, [-1, 2]) },
          { y: tensorInfo("y:0", DataType.DT_FLOAT, [-1, 2]) },
          "tensorflow/serving/predict",
        ),
      },
    }],
  });
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/saved_model.pb`, toBinary(SavedModelSchema, sm));
  const m = await loadModel(dir);
  const y = m.signature("serving_default").run({ input: Tensor.float32([1, 1], [1, 2]) })["y"];
  assert.deepEqual([...(y.data as Float32Array)], [4, 6]);
});
