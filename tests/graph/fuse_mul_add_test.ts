/**
 * The fused x·s + r node (`fuseMulAdd`, `kernels/mul_add.ts`): which pairs fuse, and that the
 * fused plan gives the floats of the unfused one for the fast shapes and for the others.
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { FUSED_MUL_ADD, fuseMulAdd } from "../../src/graph/fuse.ts";
import { graphFromNodeDefs, parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { mulAddF32 } from "../../src/kernels/mul_add.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randomFloats } from "../random.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };

Deno.test("fuseMulAdd fuses Add(Mul) when the product has one use, and not otherwise", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT);
  const s = g.placeholder("s", DataType.DT_FLOAT);
  const r = g.placeholder("r", DataType.DT_FLOAT);
  g.op("a/add", "AddV2", [r, g.op("a/mul", "Mul", [x, s], F)], F);
  const m2 = g.op("b/mul", "Mul", [x, s], F);
  g.op("b/add", "Add", [m2, r], F);
  g.op("b/other", "Neg", [m2], F); // the product has a second use
  g.op("c/add", "Add", [g.op("c/mul", "Mul", [x, s], F), r], F); // fetched product below
  const nodes = graphFromNodeDefs(g.graph().node);
  assert.equal(fuseMulAdd(nodes, new Set(["c/mul:0"])), 1);
  const a = nodes.get("a/add")!;
  assert.equal(a.op, FUSED_MUL_ADD);
  assert.deepEqual(a.inputs.map((i) => i.node), ["x", "s", "r"]);
  assert.equal(nodes.has("a/mul"), false);
  assert.equal(nodes.get("b/add")!.op, "Add");
  assert.equal(nodes.get("c/add")!.op, "Add");
});

Deno.test("a fused x·s + r gives the unfused floats, fast shapes and others alike", () => {
  // x, s, r shapes, and whether the one-pass kernel takes them.
  const cases: [number[], number[], number[], boolean][] = [
    [[2, 5, 7, 6], [1, 1, 1, 6], [2, 5, 7, 6], true], // per channel
    [[1, 1, 1, 6], [2, 5, 7, 6], [2, 5, 7, 6], true], // per channel, factors swapped
    [[2, 5, 7, 6], [6], [2, 5, 7, 6], true],
    [[3, 9], [3, 9], [3, 9], true], // same shapes
    [[3, 9], [], [3, 9], true], // scalar
    [[3, 9], [1], [3, 9], true],
    [[4, 3], [4, 1], [4, 3], false], // broadcast along another axis: Mul then Add
    [[4, 3], [1, 3], [3], false], // r broadcasts: Mul then Add
    [[3], [2, 1, 3], [2, 1, 3], true], // x per channel of s
    [[3], [2, 1, 1], [2, 1, 3], false], // the product is neither factor: Mul then Add
    [[1, 1, 3], [3], [3], false], // r a vector that broadcasts: Mul then Add
    [[], [5], [], true], // half_plus_two: a·x + b with scalars a and b
    [[2, 3], [], [1], true],
    [[2, 3], [3], [1, 1, 1], false], // r has more dims than the product: Mul then Add
    [[3, 1], [1, 3], [3, 3], false], // the product is neither factor: Mul then Add
  ];
  for (const [xs, ss, rs, fast] of cases) {
    const direct = mulAddF32(
      randomFloats(xs, 1, 3),
      randomFloats(ss, 2, 3),
      randomFloats(rs, 3, 3),
    );
    assert.equal(direct !== null, fast, JSON.stringify([xs, ss, rs]));
    for (const productFirst of [true, false]) {
      const g = new GraphBuilder();
      const x = g.placeholder("x", DataType.DT_FLOAT);
      const s = g.placeholder("s", DataType.DT_FLOAT);
      const r = g.placeholder("r", DataType.DT_FLOAT);
      const m = g.op("mul", "Mul", [x, s], F);
      g.op("add", "AddV2", productFirst ? [m, r] : [r, m], F);
      const sess = new Session(g.graph(), [], defaultRegistry());
      const spec = {
        feeds: ["x:0", "s:0", "r:0"].map(parseTensorName),
        fetches: [parseTensorName("add:0")],
      };
      const fused = sess.compile(spec, "fused");
      const plain = sess.compile({ ...spec, fuse: false }, "plain");
      assert.ok(fused.ops.includes(FUSED_MUL_ADD));
      const feeds = [randomFloats(xs, 1, 3), randomFloats(ss, 2, 3), randomFloats(rs, 3, 3)];
      const [a] = fused.run(feeds), [b] = plain.run(feeds);
      const what = `${JSON.stringify([xs, ss, rs])} product ${productFirst ? "first" : "second"}`;
      assert.deepEqual(a.shape, b.shape, what);
      assert.deepEqual(a.data, b.data, what);
    }
  }
  // Integers take the original kernels.
  const g = new GraphBuilder();
  const I = { T: attrValue.type(DataType.DT_INT32) };
  const x = g.placeholder("x", DataType.DT_INT32);
  g.op("add", "AddV2", [g.op("mul", "Mul", [x, x], I), x], I);
  const sess = new Session(g.graph(), [], defaultRegistry());
  const plan = sess.compile({
    feeds: [parseTensorName("x:0")],
    fetches: [parseTensorName("add:0")],
  }, "int");
  assert.ok(!plan.ops.includes(FUSED_MUL_ADD));
  assert.deepEqual(
    [...plan.run([new Tensor(DataType.DT_INT32, [3], Int32Array.of(1, 2, 3))])[0].data],
    [2, 6, 12],
  );
});
