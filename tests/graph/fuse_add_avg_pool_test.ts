/**
 * A global average of a sum (`fuseAddAvgPool`, `compileAddAvgPool` in plan.ts, `addMeanF32` in
 * kernels/wasm/conv.ts): which pairs fuse, that a whole-image window over two maps of one shape
 * never runs the Add, anything else runs it, with the unfused plan's values either way.
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { FUSED_ADD_AVG_POOL, fuseGraph } from "../../src/graph/fuse.ts";
import { graphFromNodeDefs, parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randomFloats } from "../random.ts";
import { errorText, spyRegistry } from "./fused_plans.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };
const pool = (kh: number, kw: number, padding = "VALID", format = "NHWC") => ({
  ...F,
  ksize: attrValue.ints([1, kh, kw, 1]),
  strides: attrValue.ints([1, kh, kw, 1]),
  padding: attrValue.string(padding),
  data_format: attrValue.string(format),
});

Deno.test("fuseAddAvgPool takes a VALID NHWC AvgPool of an Add with one use, nothing else", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT);
  const y = g.placeholder("y", DataType.DT_FLOAT);
  g.op("a/pool", "AvgPool", [g.op("a/add", "AddV2", [x, y], F)], pool(8, 8));
  g.op("same/pool", "AvgPool", [g.op("same/add", "Add", [x, y], F)], pool(8, 8, "SAME"));
  g.op("nchw/pool", "AvgPool", [g.op("nchw/add", "Add", [x, y], F)], pool(8, 8, "VALID", "NCHW"));
  const used = g.op("used/add", "Add", [x, y], F);
  g.op("used/pool", "AvgPool", [used], pool(8, 8));
  g.op("used/other", "Neg", [used], F);
  g.op("fetched/pool", "AvgPool", [g.op("fetched/add", "Add", [x, y], F)], pool(8, 8));
  g.op("max/pool", "MaxPool", [g.op("max/add", "Add", [x, y], F)], pool(8, 8));
  const nodes = graphFromNodeDefs(g.graph().node);
  fuseGraph(nodes, new Set(["fetched/add:0"]));
  const a = nodes.get("a/pool")!;
  assert.equal(a.op, FUSED_ADD_AVG_POOL);
  assert.deepEqual(a.inputs.map((i) => i.node), ["x", "y"]);
  assert.equal(nodes.has("a/add"), false);
  for (const p of ["same", "nchw", "used", "fetched", "max"]) {
    assert.notEqual(nodes.get(`${p}/pool`)!.op, FUSED_ADD_AVG_POOL, p);
    assert.ok(nodes.has(`${p}/add`), p);
  }
});

/** The default kernels, counting the Add kernels' runs. */
function countingRegistry(count: { add: number }) {
  return spyRegistry(["Add", "AddV2"], () => count.add++);
}

Deno.test("a whole-image average of a sum skips the Add; other shapes run it; values as unfused", () => {
  // a's shape, b's shape, the window; whether the one pass takes it.
  const cases: [number[], number[], [number, number], boolean][] = [
    [[1, 37, 29, 16], [1, 37, 29, 16], [37, 29], true],
    [[2, 20, 33, 24], [2, 20, 33, 24], [20, 33], true], // two images
    [[1, 9, 11, 4], [1, 9, 11, 4], [9, 11], false], // under 16 KiB: not in the kernel memory
    [[1, 12, 12, 20], [1, 12, 12, 20], [6, 6], false], // a window smaller than the image
    [[1, 9, 11, 6], [1, 9, 11, 6], [9, 11], false], // channels not a multiple of 4
    [[1, 9, 11, 8], [8], [9, 11], false], // b broadcast
  ];
  for (const [as, bs, [kh, kw], fast] of cases) {
    const g = new GraphBuilder();
    // Relu outputs: intermediates, stored in the kernel memory as a plan's are.
    const a = g.op("ra", "Relu", [g.placeholder("x", DataType.DT_FLOAT)], F);
    const b = g.op("rb", "Relu", [g.placeholder("y", DataType.DT_FLOAT)], F);
    g.op("pool", "AvgPool", [g.op("add", "AddV2", [a, b], F)], pool(kh, kw));
    const count = { add: 0 };
    const sess = new Session(g.graph(), [], countingRegistry(count));
    const spec = {
      feeds: ["x:0", "y:0"].map(parseTensorName),
      fetches: [parseTensorName("pool:0")],
    };
    const fused = sess.compile(spec, "fused");
    const plain = sess.compile({ ...spec, fuse: false }, "plain");
    assert.ok(fused.ops.includes(FUSED_ADD_AVG_POOL));
    const what = JSON.stringify({ as, bs, kh, kw });
    for (let round = 0; round < 2; round++) {
      // Values around 100 and small ones, infinities in one channel: float32 sums would drift.
      const xs = randomFloats(as, 1 + round, 3), ys = randomFloats(bs, 7 + round, 3);
      const xd = xs.data as Float32Array;
      for (let i = 0; i < xd.length; i++) xd[i] = i % 3 === 0 ? 100 + xd[i] : xd[i];
      if (round === 1) xd[2] = Infinity;
      count.add = 0;
      const [got] = fused.run([xs, ys]);
      assert.equal(count.add, fast ? 0 : 1, what);
      const [want] = plain.run([xs, ys]);
      assert.deepEqual(got.shape, want.shape, what);
      const gv = got.data as Float32Array, wv = want.data as Float32Array;
      for (let i = 0; i < wv.length; i++) {
        const ok = Object.is(gv[i], wv[i]) || Math.abs(gv[i] - wv[i]) <= 2e-7 * Math.abs(wv[i]);
        assert.ok(ok, `${what} at ${i}: ${gv[i]} vs ${wv[i]}`);
      }
    }
  }
});

Deno.test("a sum that does not broadcast fails as the graph's Add does", () => {
  const g = new GraphBuilder();
  const a = g.op("ra", "Relu", [g.placeholder("x", DataType.DT_FLOAT)], F);
  const b = g.op("rb", "Relu", [g.placeholder("y", DataType.DT_FLOAT)], F);
  g.op("pool", "AvgPool", [g.op("add", "AddV2", [a, b], F)], pool(4, 4));
  const sess = new Session(g.graph(), [], defaultRegistry());
  const spec = { feeds: ["x:0", "y:0"].map(parseTensorName), fetches: [parseTensorName("pool:0")] };
  const fused = sess.compile(spec, "fused");
  const plain = sess.compile({ ...spec, fuse: false }, "plain");
  const feeds = [randomFloats([1, 4, 4, 8], 1), randomFloats([1, 4, 4, 3], 2)];
  const message = (plan: typeof fused) => errorText(plan, feeds);
  const want = message(plain);
  assert.match(want, /Incompatible shapes/);
  assert.equal(message(fused), want);
  // A feed of another rank: the pool's error.
  const t = new Tensor(DataType.DT_FLOAT, [4, 4, 8], new Float32Array(128));
  const err = (plan: typeof fused) => errorText(plan, [t, t]);
  assert.equal(err(fused), err(plain));
});
