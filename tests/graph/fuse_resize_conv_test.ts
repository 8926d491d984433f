/**
 * A resize and the 1×1 convolution of its output (`fuseResizeConv`, `compileResizeConv` in
 * plan.ts): which pairs fuse, that the convolution runs first (at the input's resolution) only
 * when the resize enlarges, and that the fused plan gives the unfused one's values.
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { FUSED_RESIZE_CONV, fuseGraph } from "../../src/graph/fuse.ts";
import { graphFromNodeDefs, parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randomFloats } from "../random.ts";
import { errorText, spyRegistry } from "./fused_plans.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };
const CONV = {
  ...F,
  strides: attrValue.ints([1, 1, 1, 1]),
  padding: attrValue.string("VALID"),
  data_format: attrValue.string("NHWC"),
};

/** size → ResizeBilinear(x) → 1×1 Conv2D → BiasAdd (→ `after`), named by `p`. */
function chain(
  g: GraphBuilder,
  p: string,
  x: string,
  opts: { filter?: number[]; after?: string; resize?: string; conv?: object } = {},
): string {
  const size = g.constant(`${p}/size`, new Tensor(DataType.DT_INT32, [2], Int32Array.of(8, 10)));
  const r = g.op(`${p}/resize`, opts.resize ?? "ResizeBilinear", [x, size], F);
  const w = g.constant(`${p}/w`, randomFloats(opts.filter ?? [1, 1, 3, 2], 7));
  const c = g.op(`${p}/conv`, "Conv2D", [r, w], { ...CONV, ...opts.conv });
  const b = g.constant(`${p}/b`, randomFloats([(opts.filter ?? [1, 1, 3, 2])[3]], 8));
  const y = g.op(`${p}/bias`, "BiasAdd", [c, b], F);
  return opts.after ? g.op(`${p}/act`, opts.after, [y], F) : y;
}

Deno.test("fuseResizeConv takes a 1×1 convolution (and its bias) of a resize, nothing else", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT);
  chain(g, "a", x);
  chain(g, "near", x, { resize: "ResizeNearestNeighbor" });
  chain(g, "relu", x, { after: "Relu" }); // an activation does not commute with the resize
  chain(g, "k3", x, { filter: [3, 3, 3, 2] });
  chain(g, "s2", x, { conv: { strides: attrValue.ints([1, 2, 2, 1]) } });
  chain(g, "d2", x, { conv: { dilations: attrValue.ints([1, 2, 2, 1]) } });
  chain(g, "nchw", x, { conv: { data_format: attrValue.string("NCHW") } });
  chain(g, "used", x);
  g.op("used/other", "Neg", ["used/resize:0"], F); // the resize has a second use
  chain(g, "fetched", x);
  const nodes = graphFromNodeDefs(g.graph().node);
  fuseGraph(nodes, new Set(["fetched/resize:0"]));
  const fusedOp = (p: string) => nodes.get(`${p}/bias`)?.op ?? nodes.get(`${p}/act`)?.op;
  assert.equal(fusedOp("a"), FUSED_RESIZE_CONV);
  assert.deepEqual(
    nodes.get("a/bias")!.inputs.map((i) => i.node),
    ["x", "a/size", "a/w", "a/b"],
  );
  assert.equal(nodes.has("a/resize"), false);
  assert.equal(fusedOp("near"), FUSED_RESIZE_CONV);
  for (const p of ["k3", "s2", "d2", "used", "fetched"]) {
    assert.equal(fusedOp(p), "_FusedConv2D", p);
    assert.ok(nodes.has(`${p}/resize`), p);
  }
  assert.equal(fusedOp("relu"), "_FusedConv2D");
  assert.equal(nodes.get("nchw/bias")!.op, "BiasAdd");
});

/** The default kernels, with the input shape of every Conv2D / _FusedConv2D run recorded. */
function watchedRegistry(seen: number[][]) {
  return spyRegistry(["Conv2D", "_FusedConv2D"], (_, inputs) => seen.push([...inputs[0].shape]));
}

Deno.test("the convolution runs first only when the resize enlarges; values as unfused", () => {
  // Input [n, h, w, c], output size, resize op and attrs.
  const cases: [number[], [number, number], string, Record<string, boolean>][] = [
    [[1, 5, 7, 6], [10, 14], "ResizeBilinear", {}],
    [[2, 4, 3, 5], [9, 7], "ResizeBilinear", { half_pixel_centers: true }],
    [[1, 3, 5, 4], [8, 11], "ResizeBilinear", { align_corners: true }],
    [[1, 6, 6, 3], [12, 12], "ResizeNearestNeighbor", { half_pixel_centers: true }],
    [[1, 6, 6, 3], [13, 5], "ResizeBilinear", {}], // more pixels, fewer columns: graph order
    [[1, 8, 10, 4], [4, 5], "ResizeBilinear", {}], // shrinks: graph order
    [[1, 5, 5, 4], [5, 5], "ResizeBilinear", {}], // same size: graph order
  ];
  for (const [xs, [oh, ow], op, flags] of cases) {
    const [, h, w, c] = xs;
    const k = 5;
    const g = new GraphBuilder();
    const x = g.placeholder("x", DataType.DT_FLOAT);
    const size = g.constant("size", new Tensor(DataType.DT_INT32, [2], Int32Array.of(oh, ow)));
    const attrs: Record<string, ReturnType<typeof attrValue.bool>> = {};
    for (const [name, v] of Object.entries(flags)) attrs[name] = attrValue.bool(v);
    const r = g.op("resize", op, [x, size], { ...F, ...attrs });
    const conv = g.op("conv", "Conv2D", [r, g.constant("w", randomFloats([1, 1, c, k], 2))], CONV);
    g.op("bias", "BiasAdd", [conv, g.constant("b", randomFloats([k], 3))], F);
    const seen: number[][] = [];
    const sess = new Session(g.graph(), [], watchedRegistry(seen));
    const spec = { feeds: [parseTensorName("x:0")], fetches: [parseTensorName("bias:0")] };
    const fused = sess.compile(spec, "fused");
    const plain = sess.compile({ ...spec, fuse: false }, "plain");
    assert.ok(fused.ops.includes(FUSED_RESIZE_CONV));
    const feed = randomFloats(xs, 1, 2);
    seen.length = 0;
    const [a] = fused.run([feed]);
    const enlarges = oh >= h && ow >= w && oh * ow > h * w;
    const what = JSON.stringify([xs, oh, ow, op, flags]);
    assert.deepEqual(seen, [enlarges ? xs : [xs[0], oh, ow, c]], what);
    const [b] = plain.run([feed]);
    assert.deepEqual(a.shape, b.shape, what);
    const av = a.data as Float32Array, bv = b.data as Float32Array;
    for (let i = 0; i < bv.length; i++) {
      assert.ok(Math.abs(av[i] - bv[i]) <= 1e-5 * (1 + Math.abs(bv[i])), `${what} at ${i}`);
    }
  }
});

Deno.test("a fused resize and convolution fails as the graph's resize does", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT);
  chain(g, "a", x);
  const sess = new Session(g.graph(), [], defaultRegistry());
  const spec = { feeds: [parseTensorName("x:0")], fetches: [parseTensorName("a/bias:0")] };
  const fused = sess.compile(spec, "fused");
  const plain = sess.compile({ ...spec, fuse: false }, "plain");
  assert.ok(fused.ops.includes(FUSED_RESIZE_CONV));
  const message = (plan: typeof fused, t: Tensor) => errorText(plan, [t]);
  // A 3-D image, and channels the filter does not take.
  for (const t of [randomFloats([4, 5, 3], 1), randomFloats([1, 4, 5, 2], 1)]) {
    const want = message(plain, t);
    assert.notEqual(want, "no error");
    assert.equal(message(fused, t), want);
  }
});
