/**
 * Plan-time fusion of convolution chains (`fuseConvolutions`): which chains fuse, which keep
 * their nodes, and that a fused plan computes what the unfused one does.
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { fuseConvolutions, fuseGraph } from "../../src/graph/fuse.ts";
import { graphFromNodeDefs, parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randomFloats } from "../random.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };

function conv(depthwise = false) {
  return {
    ...F,
    strides: attrValue.ints([1, 1, 1, 1]),
    padding: attrValue.string("SAME"),
    data_format: attrValue.string("NHWC"),
    dilations: attrValue.ints([1, 1, 1, 1]),
    ...(depthwise ? {} : { explicit_paddings: attrValue.ints([]) }),
  };
}

/** x [1,5,6,3] → chains to fuse and not to fuse; returns the builder and the fetch names. */
function build(): GraphBuilder {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT, [1, 5, 6, 3]);
  const f = g.constant("f", randomFloats([3, 3, 3, 4], 1));
  const b = g.constant("b", randomFloats([4], 2));
  // 1. Conv2D → BiasAdd → Relu6: fused, named "a/relu".
  const c1 = g.op("a/conv", "Conv2D", [x, f], conv());
  const b1 = g.op("a/bias", "BiasAdd", [c1, b], F);
  g.op("a/relu", "Relu6", [b1], F);
  // 2. Conv2D → AddV2(bias const [4]) → Relu: fused.
  const b4 = g.constant("b4", randomFloats([4], 3));
  const c2 = g.op("b/conv", "Conv2D", [x, f], conv());
  const a2 = g.op("b/add", "AddV2", [b4, c2], F);
  g.op("b/relu", "Relu", [a2], F);
  // 3. Depthwise → BiasAdd, then Sigmoid (not a fused activation): the bias fuses alone.
  const fd = g.constant("fd", randomFloats([3, 3, 3, 1], 4));
  const bd = g.constant("bd", randomFloats([3], 5));
  const c3 = g.op("c/dw", "DepthwiseConv2dNative", [x, fd], conv(true));
  const b3 = g.op("c/bias", "BiasAdd", [c3, bd], F);
  g.op("c/sig", "Sigmoid", [b3], F);
  // 4. Conv2D whose output has two consumers: not fused.
  const c4 = g.op("d/conv", "Conv2D", [x, f], conv());
  g.op("d/bias", "BiasAdd", [c4, b], F);
  g.op("d/other", "Relu", [c4], F);
  // 5. Conv2D + Add of an activation (not a constant vector): not fused.
  const c5 = g.op("e/conv", "Conv2D", [x, f], conv());
  g.op("e/add", "AddV2", [c5, "a/relu:0"], F);
  // 6. Conv2D + Add of a constant that is not one per channel, or not 1-D: not fused.
  const f6 = g.constant("f6", randomFloats([1, 1, 3, 7], 7));
  const c6 = g.op("f/conv", "Conv2D", [x, f6], conv());
  g.op("f/add", "Add", [c6, g.constant("b7", randomFloats([1], 6))], F);
  const c8 = g.op("h/conv", "Conv2D", [x, f6], conv());
  g.op("h/add", "Add", [c8, g.constant("b9", randomFloats([1, 1, 1, 7], 8))], F);
  // 7. Conv2D → BiasAdd → Relu where the BiasAdd output is fetched: conv + bias fuse, not Relu.
  const c7 = g.op("g/conv", "Conv2D", [x, f], conv());
  const b8 = g.op("g/bias", "BiasAdd", [c7, b], F);
  g.op("g/relu", "Relu", [b8], F);
  return g;
}

const FETCHES = [
  "a/relu",
  "b/relu",
  "c/sig",
  "d/bias",
  "d/other",
  "e/add",
  "f/add",
  "h/add",
  "g/bias",
  "g/relu",
];

Deno.test("fuseConvolutions fuses conv → bias → activation chains and leaves the others", () => {
  const nodes = graphFromNodeDefs(build().graph().node);
  const pinned = new Set(FETCHES.map((n) => `${n}:0`));
  const count = fuseConvolutions(nodes, pinned);
  assert.equal(count, 4);
  const op = (n: string) => nodes.get(n)?.op;
  const fusedOps = (n: string) => {
    const v = nodes.get(n)?.attr["fused_ops"]?.value;
    return v?.case === "list" ? v.value.s.map((s) => new TextDecoder().decode(s)) : undefined;
  };
  assert.equal(op("a/relu"), "_FusedConv2D");
  assert.deepEqual(fusedOps("a/relu"), ["BiasAdd", "Relu6"]);
  assert.equal(nodes.has("a/conv"), false);
  assert.equal(nodes.has("a/bias"), false);
  assert.equal(op("b/relu"), "_FusedConv2D");
  assert.deepEqual(nodes.get("b/relu")!.inputs.map((r) => r.node), ["x", "f", "b4"]);
  assert.equal(op("c/bias"), "_FusedDepthwiseConv2dNative");
  assert.deepEqual(fusedOps("c/bias"), ["BiasAdd"]);
  assert.equal(op("c/sig"), "Sigmoid");
  assert.equal(op("d/conv"), "Conv2D");
  assert.equal(op("e/conv"), "Conv2D");
  assert.equal(op("f/conv"), "Conv2D");
  assert.equal(op("h/conv"), "Conv2D");
  assert.equal(op("g/bias"), "_FusedConv2D");
  assert.deepEqual(fusedOps("g/bias"), ["BiasAdd"]);
  assert.equal(op("g/relu"), "Relu");
});

Deno.test("a fused plan computes what the unfused plan does", () => {
  const s = new Session(build().graph(), [], defaultRegistry());
  const spec = {
    feeds: [parseTensorName("x:0")],
    fetches: FETCHES.map((n) => parseTensorName(`${n}:0`)),
  };
  const fused = s.compile(spec, "fused");
  const plain = s.compile({ ...spec, fuse: false }, "plain");
  assert.ok(fused.ops.includes("_FusedConv2D"));
  assert.ok(fused.ops.includes("_FusedDepthwiseConv2dNative"));
  assert.ok(!plain.ops.includes("_FusedConv2D"));
  const x = randomFloats([1, 5, 6, 3], 9);
  const a = fused.run([x]), b = plain.run([x]);
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(a[i].shape, b[i].shape);
    const u = a[i].data as Float32Array, v = b[i].data as Float32Array;
    for (let j = 0; j < u.length; j++) {
      assert.ok(Math.abs(u[j] - v[j]) <= 1e-5 + 1e-5 * Math.abs(v[j]), `${FETCHES[i]} at ${j}`);
    }
  }
});

/** Hard-swish and residual patterns: x [2,5,6,3], r [2,5,6,4], z [4] fed. */
function buildTails(): GraphBuilder {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT, [2, 5, 6, 3]);
  const r = g.placeholder("r", DataType.DT_FLOAT, [2, 5, 6, 4]);
  const z = g.placeholder("z", DataType.DT_FLOAT, [4]);
  const f = g.constant("f", randomFloats([3, 3, 3, 4], 11));
  const b = g.constant("b", randomFloats([4], 12));
  const sixth = g.constant("sixth", new Tensor(DataType.DT_FLOAT, [], Float32Array.of(1 / 6)));
  const three = g.constant("three", new Tensor(DataType.DT_FLOAT, [], Float32Array.of(3)));
  // Hard-swish of a conv + bias, as MobileNetV3 graphs have it: fused into "hs/out".
  const y = g.op("hs/bias", "Add", [g.op("hs/conv", "Conv2D", [x, f], conv()), b], F);
  const m = g.op("hs/mul", "Mul", [sixth, y], F);
  const a = g.op("hs/add", "AddV2", [y, three], F);
  g.op("hs/out", "Mul", [m, g.op("hs/relu6", "Relu6", [a], F)], F);
  // Residual: conv + bias + AddV2(r) + Relu, fused into "res/relu".
  const y2 = g.op("res/bias", "BiasAdd", [g.op("res/conv", "Conv2D", [x, f], conv()), b], F);
  g.op("res/relu", "Relu", [g.op("res/add", "AddV2", [r, y2], F)], F);
  // A residual that broadcasts (z is [4]): fused, computed as the Add would.
  const y3 = g.op("bc/bias", "BiasAdd", [g.op("bc/conv", "Conv2D", [x, f], conv()), b], F);
  g.op("bc/add", "AddV2", [y3, z], F);
  // A dense layer: MatMul (W transposed) → Add of a [5] constant → Relu6, fused into "mm/relu".
  const shape = g.constant("shape", new Tensor(DataType.DT_INT32, [2], Int32Array.of(15, 12)));
  const rows = g.op("mm/rows", "Reshape", [x, shape], {
    ...F,
    Tshape: attrValue.type(DataType.DT_INT32),
  });
  const mm = g.op("mm/mm", "MatMul", [rows, g.constant("w", randomFloats([5, 12], 17))], {
    ...F,
    transpose_b: attrValue.bool(true),
  });
  g.op("mm/relu", "Relu6", [
    g.op("mm/add", "Add", [mm, g.constant("b5", randomFloats([5], 18))], F),
  ], F);
  // x' + Relu(depthwise(x') + b), x' = res/relu: the Add folds in after the activation.
  const fd = g.constant("fd", randomFloats([3, 3, 4, 1], 19));
  const dw = g.op("dw/dw", "DepthwiseConv2dNative", ["res/relu:0", fd], conv(true));
  const dr = g.op("dw/relu", "Relu", [g.op("dw/bias", "BiasAdd", [dw, b], F)], F);
  g.op("dw/add", "AddV2", ["res/relu:0", dr], F);
  // The same with a broadcast operand (z is [4]) and no activation.
  const dw2 = g.op("dz/dw", "DepthwiseConv2dNative", ["res/relu:0", fd], conv(true));
  g.op("dz/add", "Add", [g.op("dz/bias", "BiasAdd", [dw2, b], F), z], F);
  return g;
}

Deno.test("hard-swish and residual sums fold into the convolution, with the same results", () => {
  const fetches = ["hs/out", "res/relu", "bc/add", "mm/relu", "dw/add", "dz/add"];
  const nodes = graphFromNodeDefs(buildTails().graph().node);
  assert.equal(fuseGraph(nodes, new Set(fetches.map((n) => `${n}:0`))), 6 + 1 + 4);
  const da = nodes.get("dw/add")!;
  assert.equal(da.op, "_FusedDepthwiseConv2dNative");
  assert.equal(da.attr["_add_after_activation"]?.value.value, true);
  assert.deepEqual(da.inputs.map((r) => r.node), ["res/relu", "fd", "b", "res/relu"]);
  assert.equal(nodes.get("dz/add")!.op, "_FusedDepthwiseConv2dNative");
  assert.equal(nodes.get("mm/relu")!.op, "_FusedMatMul");
  const hs = nodes.get("hs/out")!;
  assert.equal(hs.op, "_FusedConv2D");
  const c = hs.attr["_hard_swish"]?.value;
  assert.ok(c?.case === "list");
  assert.deepEqual(c.value.f, [Math.fround(1 / 6), 3]);
  for (const n of ["hs/conv", "hs/bias", "hs/mul", "hs/add", "hs/relu6"]) {
    assert.equal(nodes.has(n), false, n);
  }
  assert.equal(nodes.get("res/relu")!.op, "_FusedConv2D");
  assert.deepEqual(nodes.get("res/relu")!.inputs.map((r) => r.node), ["x", "f", "b", "r"]);
  assert.equal(nodes.get("bc/add")!.op, "_FusedConv2D");

  const s = new Session(buildTails().graph(), [], defaultRegistry());
  const spec = {
    feeds: ["x:0", "r:0", "z:0"].map(parseTensorName),
    fetches: fetches.map((n) => parseTensorName(`${n}:0`)),
  };
  const feeds = [
    randomFloats([2, 5, 6, 3], 13),
    randomFloats([2, 5, 6, 4], 14),
    randomFloats([4], 15),
  ];
  const a = s.compile(spec, "fused").run(feeds);
  const b = s.compile({ ...spec, fuse: false }, "plain").run(feeds);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(a[i].shape, b[i].shape);
    const u = a[i].data as Float32Array, v = b[i].data as Float32Array;
    for (let j = 0; j < u.length; j++) {
      assert.ok(Math.abs(u[j] - v[j]) <= 1e-5 + 1e-5 * Math.abs(v[j]), `${fetches[i]} at ${j}`);
    }
  }
});
