/**
 * Plans recycling intermediate storage across runs (`tensor/arena.ts` through `graph/plan.ts`):
 * the answers are those of a plan that recycles nothing, and tensors returned to the caller are
 * never overwritten by a later run.
 *
 * @module
 */
import assert from "node:assert/strict";
import { attrValue, GraphBuilder } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry, KernelRegistry } from "../../src/kernels/mod.ts";
import { Session } from "../../src/runtime/session.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randomFloats } from "../random.ts";
import {
  isKernelView,
  setFloatStoreEnabled,
  storedFloatBytes,
} from "../../src/kernels/wasm/float_store.ts";

const F = { T: attrValue.type(DataType.DT_FLOAT) };
const SHAPE = [2, 40, 40, 3]; // 9600 floats: big enough to be recycled

/** Chains of pure ops, views (Reshape), a fetched intermediate and a non-listed op (Round). */
function session(registry = defaultRegistry()): Session {
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT, SHAPE);
  const sq = g.op("sq", "Mul", [x, x], F);
  const shape = g.constant("shape", new Tensor(DataType.DT_INT32, [2], Int32Array.from([80, 120])));
  const flat = g.op("flat", "Reshape", [sq, shape], {
    ...F,
    Tshape: attrValue.type(DataType.DT_INT32),
  });
  const back = g.constant("back", new Tensor(DataType.DT_INT32, [4], Int32Array.from(SHAPE)));
  const unflat = g.op("unflat", "Reshape", [flat, back], {
    ...F,
    Tshape: attrValue.type(DataType.DT_INT32),
  });
  // A new tensor of sq's size made while the view `unflat` of sq is still to be read: it must not
  // get sq's storage.
  const other = g.op("other", "Neg", [x, "^unflat"], F);
  const sum0 = g.op("sum0", "AddV2", [unflat, other], F);
  const sum = g.op("sum", "AddV2", [sum0, x], F);
  const sig = g.op("sig", "Sigmoid", [sum], F);
  const rounded = g.op("round", "Round", [sig], F);
  const neg = g.op("neg", "Neg", [sig], F);
  g.op("out", "Mul", [neg, rounded], F);
  g.op("sigflat", "Reshape", [sig, shape], { ...F, Tshape: attrValue.type(DataType.DT_INT32) });
  return new Session(g.graph(), [], registry);
}

const FETCHES = ["sum", "out", "round", "sigflat"];

Deno.test("a recycling plan answers as a plain one, run after run, and never reuses an output", () => {
  const s = session();
  const spec = {
    feeds: [parseTensorName("x:0")],
    fetches: FETCHES.map((n) => parseTensorName(`${n}:0`)),
  };
  const recycling = s.compile(spec, "recycling");
  const plain = s.compile({ ...spec, arena: false }, "plain");
  const stored = storedFloatBytes();
  const returned: { tensor: Tensor; copy: Float32Array }[] = [];
  for (let run = 0; run < 6; run++) {
    const x = randomFloats(SHAPE, run + 1);
    const a = recycling.run([x]), b = plain.run([x]);
    for (let i = 0; i < a.length; i++) {
      assert.deepEqual(a[i].shape, b[i].shape);
      assert.deepEqual(a[i].data, b[i].data, `${FETCHES[i]} in run ${run}`);
      returned.push({ tensor: a[i], copy: (a[i].data as Float32Array).slice() });
      // Intermediates may live in the kernels' memory; what is returned never does.
      assert.ok(!isKernelView(a[i].data as Float32Array), `${FETCHES[i]} is in kernel memory`);
    }
    // Earlier runs' outputs still hold their values, and no two share storage.
    for (const r of returned) assert.deepEqual(r.tensor.data, r.copy);
    const buffers = new Set(returned.map((r) => (r.tensor.data as Float32Array).buffer));
    assert.equal(buffers.size, returned.length);
    // The feed is the caller's: untouched.
    assert.deepEqual(x.data, randomFloats(SHAPE, run + 1).data);
  }
  assert.ok(storedFloatBytes() > stored, "intermediates were stored in kernel memory");
});

Deno.test("a fetched intermediate reaches the steps after it in kernel memory, the caller a copy", () => {
  // Sigmoid reads `sum`, which is fetched: it sees it where it was made (kernel memory, where
  // kernels work in place and split across the team), and the caller gets ordinary storage.
  const base = defaultRegistry();
  const registry = new KernelRegistry();
  const seen: boolean[] = [];
  for (const op of base.ops()) {
    const k = base.get(op)!;
    if (op !== "Sigmoid") registry.register(k);
    else {
      registry.register({
        ...k,
        compile(ctx) {
          const run = k.compile(ctx);
          return (inputs) => {
            seen.push(isKernelView(inputs[0].data as Float32Array));
            return run(inputs);
          };
        },
      });
    }
  }
  const s = session(registry);
  const plan = s.compile({
    feeds: [parseTensorName("x:0")],
    fetches: FETCHES.map((n) => parseTensorName(`${n}:0`)),
  }, "fetched");
  const plain = session().compile({
    feeds: [parseTensorName("x:0")],
    fetches: FETCHES.map((n) => parseTensorName(`${n}:0`)),
    arena: false,
  }, "plain");
  for (let run = 0; run < 3; run++) {
    const x = randomFloats(SHAPE, run + 20);
    const a = plan.run([x]), b = plain.run([x]);
    for (let i = 0; i < a.length; i++) {
      assert.deepEqual(a[i].data, b[i].data, FETCHES[i]);
      assert.ok(!isKernelView(a[i].data as Float32Array), `${FETCHES[i]} is in kernel memory`);
    }
  }
  assert.deepEqual(seen, [true, true, true]);
});

Deno.test("a plan gives the same answers with intermediates in kernel memory or not", () => {
  const s = session();
  const spec = {
    feeds: [parseTensorName("x:0")],
    fetches: FETCHES.map((n) => parseTensorName(`${n}:0`)),
  };
  const inKernel = s.compile(spec, "stored");
  const ordinary = s.compile(spec, "ordinary");
  for (let run = 0; run < 4; run++) {
    const x = randomFloats(SHAPE, run + 10);
    const a = inKernel.run([x]);
    const was = setFloatStoreEnabled(false);
    let b: Tensor[];
    try {
      b = ordinary.run([x]);
    } finally {
      setFloatStoreEnabled(was);
    }
    for (let i = 0; i < a.length; i++) assert.deepEqual(a[i].data, b[i].data, FETCHES[i]);
  }
});

Deno.test("a fetched tensor made in kernel memory is copied into the caller's fetch storage", () => {
  const spec = {
    feeds: [parseTensorName("x:0")],
    fetches: FETCHES.map((n) => parseTensorName(`${n}:0`)),
  };
  const plan = session().compile(spec, "fetch storage");
  const plain = session().compile({ ...spec, arena: false }, "plain");
  for (let run = 0; run < 3; run++) {
    const x = randomFloats(SHAPE, run + 30);
    const given: Float32Array[] = [];
    const a = plan.run([x], (n) => {
      // One array declined: that fetch gets the plan's own copy.
      if (given.length === 1) {
        given.push(new Float32Array(0));
        return undefined;
      }
      const f = new Float32Array(new SharedArrayBuffer(n * 4));
      f.fill(NaN);
      given.push(f);
      return f;
    });
    const b = plain.run([x]);
    assert.ok(given.length >= 2, "the plan asked for storage for its stored fetches");
    const used = a.filter((t) => given.includes(t.data as Float32Array));
    assert.equal(used.length, given.length - 1, "every array given holds a fetch");
    for (let i = 0; i < a.length; i++) {
      assert.deepEqual(a[i].data.slice(), (b[i].data as Float32Array).slice(), FETCHES[i]);
      assert.ok(!isKernelView(a[i].data as Float32Array), `${FETCHES[i]} is in kernel memory`);
    }
  }
});
