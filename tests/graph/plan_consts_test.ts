/**
 * Constants in a sequential plan (`graph/plan.ts`): evaluated once, at compile time, and never
 * run as steps; with storage recycling on, their values stay intact run after run, a fetched
 * constant stays correct, no kernel output is given a constant's storage, and a fed Const
 * output is replaced by its feed. A pure op of constants is folded the same way, unless it fails.
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { Code, ServingError } from "../../src/errors.ts";
import { randomFloats } from "../random.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };
const SHAPE = [2, 40, 40, 3]; // 9600 floats: big enough for the arena to recycle
const RESHAPE = { ...F, Tshape: attrValue.type(DataType.DT_INT32) };

/** x·c + reshape(reshape(c)), a Const read by a kept op (Round), a NoOp target. */
function session(): Session {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT, SHAPE);
  const c = g.constant("c", randomFloats(SHAPE, 99));
  const flatShape = g.constant(
    "flat_shape",
    new Tensor(DataType.DT_INT32, [2], Int32Array.from([80, 120])),
  );
  const back = g.constant("back", new Tensor(DataType.DT_INT32, [4], Int32Array.from(SHAPE)));
  const prod = g.op("prod", "Mul", [x, c], F);
  const cflat = g.op("cflat", "Reshape", [c, flatShape], RESHAPE);
  const cback = g.op("cback", "Reshape", [cflat, back], RESHAPE);
  const sum = g.op("sum", "AddV2", [prod, cback], F);
  g.op("neg", "Neg", [sum], F);
  g.op("round", "Round", [c], F);
  g.op("sq", "Mul", [sum, sum], F);
  g.op("done", "NoOp", ["^sq"], {});
  return new Session(g.graph(), [], defaultRegistry());
}

const refs = (names: string[]) => names.map((n) => parseTensorName(n));

Deno.test("constants are no steps; recycling never touches their storage; a fetched one stays correct", () => {
  const s = session();
  const fetchNames = ["c:0", "neg:0", "round:0", "cflat:0", "sq:0"];
  const spec = { feeds: refs(["x:0"]), fetches: refs(fetchNames), targets: ["done"] };
  const recycling = s.compile(spec, "recycling");
  const plain = s.compile({ ...spec, arena: false }, "plain");
  assert.ok(!recycling.ops.includes("Const"), recycling.ops.join(","));
  assert.ok(!recycling.ops.includes("NoOp"), recycling.ops.join(","));
  assert.equal(recycling.size, recycling.ops.length);
  const cValue = randomFloats(SHAPE, 99).data as Float32Array;
  const fetchedC: Tensor[] = [];
  for (let run = 0; run < 6; run++) {
    const x = randomFloats(SHAPE, run + 1);
    const a = recycling.run([x]), b = plain.run([x]);
    for (let i = 0; i < a.length; i++) {
      assert.deepEqual(a[i].shape, b[i].shape);
      assert.deepEqual(a[i].data, b[i].data, `${fetchNames[i]} in run ${run}`);
    }
    // The answers are the definition's, not only the plain plan's.
    const xs = x.data as Float32Array, neg = a[1].data as Float32Array;
    for (const k of [0, 1, 4799, 9599]) {
      assert.equal(neg[k], -Math.fround(Math.fround(xs[k] * cValue[k]) + cValue[k]));
    }
    fetchedC.push(a[0]);
    const cBuffer = (a[0].data as Float32Array).buffer;
    // Only the constant and its views share its storage.
    for (const i of [1, 2, 4]) {
      assert.notEqual((a[i].data as Float32Array).buffer, cBuffer, fetchNames[i]);
    }
    // Every constant fetched so far still holds its value.
    for (const t of fetchedC) assert.deepEqual(t.data, cValue);
  }
});

Deno.test("a fed Const output is replaced by its feed, for its readers and its fetch", () => {
  const s = session();
  const plan = s.compile(
    { feeds: refs(["x:0", "c:0"]), fetches: refs(["c:0", "neg:0", "cflat:0"]) },
    "fed constant",
  );
  for (let run = 0; run < 3; run++) {
    const x = randomFloats(SHAPE, run + 1);
    const c = randomFloats(SHAPE, run + 50);
    const [cOut, neg, cflat] = plan.run([x, c]);
    assert.equal(cOut, c);
    assert.deepEqual(cflat.shape, [80, 120]);
    assert.deepEqual(cflat.data, c.data);
    const xs = x.data as Float32Array, cs = c.data as Float32Array;
    const n = neg.data as Float32Array;
    for (let k = 0; k < xs.length; k += 97) {
      assert.equal(n[k], -Math.fround(Math.fround(xs[k] * cs[k]) + cs[k]));
    }
  }
});

Deno.test("a plan fetching only constants runs no step and answers their values", () => {
  const s = session();
  const plan = s.compile({ feeds: [], fetches: refs(["back:0", "flat_shape:0"]) }, "only consts");
  assert.equal(plan.size, 0);
  for (let run = 0; run < 2; run++) {
    const [back, flat] = plan.run([]);
    assert.deepEqual([...(back.data as Int32Array)], SHAPE);
    assert.deepEqual([...(flat.data as Int32Array)], [80, 120]);
  }
});

Deno.test("a pure op of constants is folded at compile time; one that fails still fails the run", () => {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT, [3]);
  const a = g.constant("a", new Tensor(DataType.DT_FLOAT, [3], Float32Array.from([1, 2, 3])));
  const b = g.constant("b", new Tensor(DataType.DT_FLOAT, [3], Float32Array.from([4, 5, 6])));
  const ab = g.op("ab", "Mul", [a, b], F);
  const negAb = g.op("neg_ab", "Neg", [ab], F);
  g.op("y", "AddV2", [x, negAb], F);
  const bad = g.constant("bad", new Tensor(DataType.DT_INT32, [1], Int32Array.from([7])));
  g.op("bad_reshape", "Reshape", [a, bad], RESHAPE);
  g.op("round", "Round", [a], F); // not a listed pure op: a step
  const s = new Session(g.graph(), [], defaultRegistry());
  const plan = s.compile(
    { feeds: refs(["x:0"]), fetches: refs(["y:0", "ab:0", "round:0"]) },
    "folded",
  );
  assert.deepEqual([...plan.ops].sort(), ["AddV2", "Round"]);
  for (let run = 0; run < 2; run++) {
    const [y, ab2, r] = plan.run([
      new Tensor(DataType.DT_FLOAT, [3], Float32Array.from([1, 1, 1])),
    ]);
    assert.deepEqual([...(y.data as Float32Array)], [-3, -9, -17]);
    assert.deepEqual([...(ab2.data as Float32Array)], [4, 10, 18]);
    assert.deepEqual([...(r.data as Float32Array)], [1, 2, 3]);
  }
  const failing = s.compile({ feeds: [], fetches: refs(["bad_reshape:0"]) }, "failing");
  assert.deepEqual(failing.ops, ["Reshape"]);
  assert.throws(
    () => failing.run([]),
    (e: unknown) =>
      e instanceof ServingError && e.code === Code.INVALID_ARGUMENT &&
      e.message.includes("{{node bad_reshape}}"),
  );
});
