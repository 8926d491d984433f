/**
 * A convolution of a product (`fuseScaleConv`, `compileScaledConv` in plan.ts, `_scale_input`
 * in kernels/conv.ts): which pairs fuse, that a per-channel scale goes into the filter (the Mul
 * never runs) and anything else takes the Mul, with the unfused plan's values either way.
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { FUSED_SCALE_CONV, fuseGraph } from "../../src/graph/fuse.ts";
import { graphFromNodeDefs, parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { setConvWasmEnabled } from "../../src/kernels/wasm/conv.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randomFloats } from "../random.ts";
import { errorText, spyRegistry } from "./fused_plans.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };
const conv = (strides = [1, 1, 1, 1], padding = "VALID", format = "NHWC") => ({
  ...F,
  strides: attrValue.ints(strides),
  padding: attrValue.string(padding),
  data_format: attrValue.string(format),
});

Deno.test("fuseScaleConv takes a convolution of a product with one use, nothing else", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT);
  const s = g.placeholder("s", DataType.DT_FLOAT);
  const w = g.constant("w", randomFloats([1, 1, 3, 2], 1));
  const b = g.constant("b", randomFloats([2], 2));
  // Conv2D → BiasAdd → Relu of Mul(x, s): fused with the bias and activation first.
  g.op("a/relu", "Relu", [g.op("a/bias", "BiasAdd", [
    g.op("a/conv", "Conv2D", [g.op("a/mul", "Mul", [x, s], F), w], conv()),
    b,
  ], F)], F);
  g.op("plain/conv", "Conv2D", [g.op("plain/mul", "Mul", [s, x], F), w], conv());
  const used = g.op("used/mul", "Mul", [x, s], F);
  g.op("used/conv", "Conv2D", [used, w], conv());
  g.op("used/other", "Neg", [used], F); // the product has a second use
  g.op("fetched/conv", "Conv2D", [g.op("fetched/mul", "Mul", [x, s], F), w], conv());
  g.op(
    "nchw/conv",
    "Conv2D",
    [g.op("nchw/mul", "Mul", [x, s], F), w],
    conv(
      [1, 1, 1, 1],
      "VALID",
      "NCHW",
    ),
  );
  const dw = g.constant("dw", randomFloats([3, 3, 3, 1], 3));
  g.op("dw/conv", "DepthwiseConv2dNative", [g.op("dw/mul", "Mul", [x, s], F), dw], conv());
  const nodes = graphFromNodeDefs(g.graph().node);
  fuseGraph(nodes, new Set(["fetched/mul:0"]));
  const a = nodes.get("a/relu")!;
  assert.equal(a.op, FUSED_SCALE_CONV);
  assert.deepEqual(a.inputs.map((i) => i.node), ["x", "w", "b", "s"]);
  assert.equal(a.attr["_scale_input"]?.value.value, true);
  assert.equal(nodes.has("a/mul"), false);
  assert.equal(nodes.get("plain/conv")!.op, FUSED_SCALE_CONV);
  assert.deepEqual(nodes.get("plain/conv")!.inputs.map((i) => i.node), ["s", "w", "x"]);
  for (const p of ["used", "fetched", "nchw", "dw"]) {
    assert.notEqual(nodes.get(`${p}/conv`)!.op, FUSED_SCALE_CONV, p);
    assert.ok(nodes.has(`${p}/mul`), p);
  }
});

/** The default kernels, counting the Mul kernel's runs. */
function countingRegistry(count: { mul: number }) {
  return spyRegistry(["Mul"], () => count.mul++);
}

Deno.test("a per-channel scale goes into the filter, anything else takes the Mul; values as unfused", () => {
  // Map shape, scale shape, filter [fh, fw, c, k], strides, padding, then relu / residual.
  const cases: [number[], number[], number[], number[], string][] = [
    [[1, 6, 7, 5], [5], [1, 1, 5, 4], [1, 1, 1, 1], "VALID"],
    [[2, 5, 5, 6], [1, 1, 1, 6], [1, 1, 6, 9], [1, 1, 1, 1], "SAME"],
    [[1, 9, 8, 3], [1, 3], [3, 3, 3, 4], [1, 2, 2, 1], "SAME"], // a 3×3 filter, stride 2
    [[1, 4, 6, 8], [1, 1, 1, 8], [2, 2, 8, 3], [1, 1, 1, 1], "VALID"],
    [[1, 6, 7, 5], [1, 6, 7, 5], [1, 1, 5, 4], [1, 1, 1, 1], "VALID"], // a full product: Mul
    [[1, 6, 7, 5], [1, 6, 1, 1], [1, 1, 5, 4], [1, 1, 1, 1], "VALID"], // per row: Mul
    [[1, 6, 7, 5], [], [1, 1, 5, 4], [1, 1, 1, 1], "VALID"], // a scalar: Mul
  ];
  for (const wasm of [true, false]) {
    const was = setConvWasmEnabled(wasm);
    try {
      for (const [xs, ss, fs, strides, padding] of cases) {
        for (const scaleFirst of [false, true]) {
          for (const tail of ["bias", "relu", "residual"]) {
            const g = new GraphBuilder();
            const x = g.placeholder("x", DataType.DT_FLOAT);
            const s = g.placeholder("s", DataType.DT_FLOAT);
            const r = g.placeholder("r", DataType.DT_FLOAT);
            const m = g.op("mul", "Mul", scaleFirst ? [s, x] : [x, s], F);
            const c = g.op(
              "conv",
              "Conv2D",
              [m, g.constant("w", randomFloats(fs, 4))],
              conv(
                strides,
                padding,
              ),
            );
            let y = g.op("bias", "BiasAdd", [c, g.constant("b", randomFloats([fs[3]], 5))], F);
            if (tail === "relu") y = g.op("relu", "Relu", [y], F);
            if (tail === "residual") y = g.op("sum", "AddV2", [y, r], F);
            const count = { mul: 0 };
            const sess = new Session(g.graph(), [], countingRegistry(count));
            const spec = {
              feeds: ["x:0", "s:0", "r:0"].map(parseTensorName),
              fetches: [parseTensorName(y)],
            };
            const fused = sess.compile(spec, "fused");
            const plain = sess.compile({ ...spec, fuse: false }, "plain");
            assert.ok(fused.ops.includes(FUSED_SCALE_CONV));
            const probe = plain.run([
              randomFloats(xs, 1),
              randomFloats(ss, 2),
              new Tensor(DataType.DT_FLOAT, [], Float32Array.of(0)),
            ])[0];
            const feeds = [
              randomFloats(xs, 1, 3),
              randomFloats(ss, 2, 2),
              randomFloats([...probe.shape], 3),
            ];
            const what = JSON.stringify({ xs, ss, fs, strides, padding, scaleFirst, tail, wasm });
            count.mul = 0;
            const [a] = fused.run(feeds);
            const perChannel = ss.length > 0 && ss[ss.length - 1] === xs[3] &&
              ss.reduce((p, d) => p * d, 1) === xs[3];
            assert.equal(count.mul, perChannel ? 0 : 1, what);
            const [want] = plain.run(feeds);
            assert.deepEqual(a.shape, want.shape, what);
            const av = a.data as Float32Array, bv = want.data as Float32Array;
            for (let i = 0; i < bv.length; i++) {
              assert.ok(Math.abs(av[i] - bv[i]) <= 1e-5 * (1 + Math.abs(bv[i])), `${what} at ${i}`);
            }
          }
        }
      }
    } finally {
      setConvWasmEnabled(was);
    }
  }
});

Deno.test("a product that does not broadcast fails as the graph's Mul does", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT);
  const s = g.placeholder("s", DataType.DT_FLOAT);
  g.op("conv", "Conv2D", [
    g.op("mul", "Mul", [x, s], F),
    g.constant("w", randomFloats([1, 1, 4, 2], 1)),
  ], conv());
  const sess = new Session(g.graph(), [], defaultRegistry());
  const spec = { feeds: ["x:0", "s:0"].map(parseTensorName), fetches: [parseTensorName("conv:0")] };
  const fused = sess.compile(spec, "fused");
  const plain = sess.compile({ ...spec, fuse: false }, "plain");
  assert.ok(fused.ops.includes(FUSED_SCALE_CONV));
  const message = (plan: typeof fused) =>
    errorText(plan, [randomFloats([1, 3, 3, 4], 1), randomFloats([3], 2)]);
  const want = message(plain);
  assert.match(want, /Incompatible shapes/);
  assert.equal(message(fused), want);
});
