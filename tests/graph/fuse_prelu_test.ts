/**
 * The PReLU fusion (`fusePrelu`, the `_prelu` Relu of kernels/activation.ts): which subgraphs
 * fuse, and that the fused plan gives the unfused plan's values on randomized shapes with the
 * slope broadcast per channel, as a scalar, or of the full shape (batch > 1, odd sizes).
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { fusePrelu } from "../../src/graph/fuse.ts";
import { graphFromNodeDefs, parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { setElementwiseWasmEnabled } from "../../src/kernels/wasm/elementwise.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { lcg, randomFloats } from "../random.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };

/** Keras' PReLU graph on x with slope s; returns the Add. */
function prelu(g: GraphBuilder, p: string, x: string, s: string, reluFirst = true) {
  const relu = g.op(`${p}/relu`, "Relu", [x], F);
  const negAlpha = g.op(`${p}/negalpha`, "Neg", [s], F);
  const relu1 = g.op(`${p}/relu_1`, "Relu", [g.op(`${p}/neg`, "Neg", [x], F)], F);
  const mul = g.op(`${p}/mul`, "Mul", reluFirst ? [negAlpha, relu1] : [relu1, negAlpha], F);
  return g.op(`${p}/add`, "AddV2", reluFirst ? [relu, mul] : [mul, relu], F);
}

Deno.test("fusePrelu fuses the PReLU subgraph when every intermediate has one use", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT);
  const s = g.placeholder("s", DataType.DT_FLOAT);
  prelu(g, "a", x, s);
  prelu(g, "b", x, s, false);
  prelu(g, "c", x, s);
  g.op("c/other", "Neg", ["c/relu_1"], F); // a second use of Relu(Neg(x))
  prelu(g, "d", x, s); // its Neg(x) fetched below
  const nodes = graphFromNodeDefs(g.graph().node);
  assert.equal(fusePrelu(nodes, new Set(["d/neg:0"])), 2);
  for (const p of ["a", "b"]) {
    const n = nodes.get(`${p}/add`)!;
    assert.equal(n.op, "Relu");
    assert.deepEqual(n.inputs.map((i) => i.node), ["x", `${p}/negalpha`]);
    assert.equal(n.attr["_prelu"]?.value.value, true);
    for (const gone of ["relu", "relu_1", "neg", "mul"]) assert.ok(!nodes.has(`${p}/${gone}`));
  }
  assert.equal(nodes.get("c/add")!.op, "AddV2");
  assert.equal(nodes.get("d/add")!.op, "AddV2");
});

Deno.test("a fused PReLU gives the unfused values, in WebAssembly and in JavaScript", () => {
  const rand = lcg(41);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const cases: [number[], number[]][] = [
    [[1, 24, 24, 16], [16]],
    [[2, 7, 5, 3], [1, 1, 3]],
    [[3, 11], []],
    [[2, 9, 6], [2, 9, 6]],
    [[5, 1, 3], [4, 1]],
  ];
  for (let c = 0; c < 10; c++) {
    const shape = Array.from({ length: int(1, 4) }, () => int(1, 9));
    cases.push([shape, shape.slice(int(0, shape.length))]);
  }
  for (const [xs, ss] of cases) {
    for (const reluFirst of [true, false]) {
      const g = new GraphBuilder();
      const x = g.placeholder("x", DataType.DT_FLOAT);
      const s = g.placeholder("s", DataType.DT_FLOAT);
      prelu(g, "p", x, s, reluFirst);
      const sess = new Session(g.graph(), [], defaultRegistry());
      const spec = {
        feeds: ["x:0", "s:0"].map(parseTensorName),
        fetches: [parseTensorName("p/add:0")],
      };
      const fused = sess.compile(spec, "fused");
      const plain = sess.compile({ ...spec, fuse: false }, "plain");
      assert.equal(fused.ops.filter((o) => o !== "Neg").join(), "Relu", `${fused.ops}`);
      const feeds = [randomFloats(xs, int(1, 99), 3), randomFloats(ss, int(1, 99), 2)];
      const [want] = plain.run(feeds);
      for (const wasm of [true, false]) {
        const was = setElementwiseWasmEnabled(wasm);
        try {
          const [got] = fused.run(feeds);
          const what = `${JSON.stringify([xs, ss])} wasm ${wasm}`;
          assert.deepEqual(got.shape, want.shape, what);
          const a = got.data as Float32Array, b = want.data as Float32Array;
          for (let i = 0; i < b.length; i++) {
            assert.ok(a[i] === b[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i])), what);
          }
        } finally {
          setElementwiseWasmEnabled(was);
        }
      }
    }
  }
});
