import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { attrValue, GraphBuilder, signatureDef, tensorInfo } from "../../src/graph/builder.ts";
import { parseTensorName } from "../../src/graph/graph.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import {
  boxMullerFloat,
  Philox,
  statelessGenerator,
  uint32ToFloat,
  uint64ToDouble,
} from "../../src/kernels/philox.ts";
import { randomKernels } from "../../src/kernels/random.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { Resources } from "../../src/runtime/resources.ts";
import { Session } from "../../src/runtime/session.ts";
import { addVariable, parseOpDefs, writeSavedModel } from "../../src/saved_model/writer.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attr, compileOp } from "./harness.ts";

const hex = (a: Uint32Array) => Array.from(a, (x) => x.toString(16).padStart(8, "0"));

function throwsCode(f: () => unknown, code: Code, text: RegExp): void {
  assert.throws(f, (e) => {
    assert.ok(e instanceof ServingError, String(e));
    assert.equal(Code[e.code], Code[code], e.message);
    assert.match(e.message, text);
    return true;
  });
}

// Random123's known-answer vectors for Philox4x32-10 (its tests/kat_vectors), which TensorFlow's
// stateful_random_ops_test.py checks its Philox against too.
Deno.test("Philox4x32-10 reproduces the Random123 known-answer vectors", () => {
  const kat = (ctr: number[], key: number[]) =>
    hex(new Philox(Uint32Array.from(ctr), Uint32Array.from(key)).next());
  assert.deepEqual(kat([0, 0, 0, 0], [0, 0]), ["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"]);
  const f = 0xffffffff;
  assert.deepEqual(kat([f, f, f, f], [f, f]), ["408f276d", "41c83b0e", "a20bc7c6", "6d5451fd"]);
  assert.deepEqual(
    kat([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
    ["d16cfe09", "94fdcceb", "5001e420", "24126ea1"],
  );
});

Deno.test("Philox counter: next() and skip() carry across words as TensorFlow's", () => {
  const g = new Philox(Uint32Array.of(0xffffffff, 0xffffffff, 0xffffffff, 0), new Uint32Array(2));
  g.next();
  assert.deepEqual(Array.from(g.counter), [0, 0, 0, 1]);
  const s = new Philox(Uint32Array.of(0xfffffff0, 0xffffffff, 7, 0), new Uint32Array(2));
  s.skip(0x20);
  assert.deepEqual(Array.from(s.counter), [0x10, 0, 8, 0]);
  const t = new Philox(Uint32Array.of(1, 2, 3, 4), new Uint32Array(2));
  t.skip(3 * 4294967296 + 5);
  assert.deepEqual(Array.from(t.counter), [6, 5, 3, 4]);
  // Skipping then drawing equals drawing from the skipped counter: the KAT vector 2 counter.
  const u = new Philox(
    Uint32Array.of(0xfffffffe, 0xffffffff, 0xffffffff, 0xffffffff),
    Uint32Array.of(0xffffffff, 0xffffffff),
  );
  u.skip(1);
  assert.deepEqual(hex(u.next()), ["408f276d", "41c83b0e", "a20bc7c6", "6d5451fd"]);
});

Deno.test("distributions map samples as random_distributions.h", () => {
  // 23 mantissa bits: 0x6627e8d5 & 0x7fffff = 0x27e8d5 = 2615509.
  assert.equal(uint32ToFloat(0x6627e8d5), 2615509 / 8388608);
  assert.equal(uint32ToFloat(0xff800000), 0);
  assert.equal(uint32ToFloat(0x007fffff), 1 - 2 ** -23);
  // 20 + 32 bits.
  assert.equal(uint64ToDouble(0xfff00001, 2), (2 ** 32 + 2) / 2 ** 52);
  // Box-Muller: u1 = 0.5 (mantissa 0x400000), angle 2π·0.25: sin = 1, cos ≈ 0.
  const out = [0, 0];
  boxMullerFloat(0x400000, 0x200000, out, 0);
  const r = Math.fround(Math.sqrt(Math.fround(-2 * Math.fround(Math.log(0.5)))));
  assert.equal(out[0], r);
  assert.ok(Math.abs(out[1]) < 1e-6);
  // u1 below 1e-7 is clamped.
  boxMullerFloat(0, 0, out, 0);
  assert.equal(out[0], 0);
  assert.equal(
    out[1],
    Math.fround(Math.sqrt(Math.fround(-2 * Math.fround(Math.log(Math.fround(1e-7)))))),
  );
});

const seeds = (seed: number, seed2: number) => ({
  seed: attr.int(seed),
  seed2: attr.int(seed2),
  dtype: attr.type(DataType.DT_FLOAT),
  T: attr.type(DataType.DT_INT32),
});

Deno.test("RandomUniform: seed/seed2 set the Philox key/counter; each run skips 256 per value", () => {
  const resources = new Resources();
  const run = compileOp(randomKernels, "RandomUniform", seeds(87654321, 12345), 1, resources);
  const first = run([Tensor.int32([2, 3])])[0];
  assert.deepEqual([...first.shape], [2, 3]);
  // GuardedPhiloxRandom(seed, seed2): key = seed, counter = [0, 0, seed2 lo, seed2 hi].
  const gen = new Philox(Uint32Array.of(0, 0, 12345, 0), Uint32Array.of(87654321, 0));
  const a = gen.next(new Uint32Array(4)).slice();
  const b = gen.next(new Uint32Array(4)).slice();
  const expected = [...a, ...b].slice(0, 6).map(uint32ToFloat);
  assert.deepEqual(Array.from(first.data as Float32Array), expected);
  // The second run starts 6 · 256 draws later.
  const second = run([Tensor.int32([3])])[0];
  const later = new Philox(Uint32Array.of(6 * 256, 0, 12345, 0), Uint32Array.of(87654321, 0));
  assert.deepEqual(
    Array.from(second.data as Float32Array),
    Array.from(later.next()).slice(0, 3).map(uint32ToFloat),
  );
  // Another node with the same seeds starts from the beginning (its own generator).
  const other = compileOp(randomKernels, "RandomUniform", seeds(87654321, 12345), 1);
  assert.deepEqual(Array.from(other([Tensor.int32([2, 3])])[0].data as Float32Array), expected);
});

Deno.test("RandomUniform with seed = seed2 = 0 draws a fresh seed", () => {
  const a = compileOp(randomKernels, "RandomUniform", seeds(0, 0), 1)([Tensor.int32([8])])[0];
  const b = compileOp(randomKernels, "RandomUniform", seeds(0, 0), 1)([Tensor.int32([8])])[0];
  assert.notDeepEqual(Array.from(a.data as Float32Array), Array.from(b.data as Float32Array));
});

Deno.test("RandomUniformInt and double uniform take whole draws per group", () => {
  const run = compileOp(randomKernels, "RandomUniformInt", {
    seed: attr.int(7),
    seed2: attr.int(0),
    Tout: attr.type(DataType.DT_INT32),
    T: attr.type(DataType.DT_INT32),
  }, 3);
  const out = run([Tensor.int32([5]), Tensor.int32([-10], []), Tensor.int32([10], [])])[0];
  const gen = new Philox(new Uint32Array(4), Uint32Array.of(7, 0));
  const s = [...gen.next(new Uint32Array(4)).slice(), ...gen.next(new Uint32Array(4)).slice()];
  assert.deepEqual(Array.from(out.data as Int32Array), s.slice(0, 5).map((x) => -10 + (x % 20)));
  throwsCode(
    () => run([Tensor.int32([5]), Tensor.int32([3], []), Tensor.int32([3], [])]),
    Code.INVALID_ARGUMENT,
    /Need minval < maxval, got 3 >= 3/,
  );
  // int64: two samples per value, lo + bits mod range.
  const run64 = compileOp(randomKernels, "RandomUniformInt", {
    seed: attr.int(7),
    seed2: attr.int(0),
    Tout: attr.type(DataType.DT_INT64),
    T: attr.type(DataType.DT_INT32),
  }, 3);
  const o64 = run64([Tensor.int32([2]), Tensor.int64([-5], []), Tensor.int64([2 ** 40], [])])[0];
  const w = new Philox(new Uint32Array(4), Uint32Array.of(7, 0)).next();
  const range = BigInt(2 ** 40) + 5n;
  assert.deepEqual(Array.from(o64.data as BigInt64Array), [
    -5n + ((BigInt(w[1]) << 32n) | BigInt(w[0])) % range,
    -5n + ((BigInt(w[3]) << 32n) | BigInt(w[2])) % range,
  ]);
  const d = compileOp(randomKernels, "RandomUniform", {
    ...seeds(7, 0),
    dtype: attr.type(DataType.DT_DOUBLE),
  }, 1)([Tensor.int32([2])])[0];
  assert.deepEqual(Array.from(d.data as Float64Array), [
    uint64ToDouble(w[0], w[1]),
    uint64ToDouble(w[2], w[3]),
  ]);
});

Deno.test("RandomStandardNormal: Box-Muller on sample pairs; TruncatedNormal keeps |x| < 2", () => {
  const n =
    compileOp(randomKernels, "RandomStandardNormal", seeds(3, 4), 1)([Tensor.int32([4])])[0];
  const w = new Philox(Uint32Array.of(0, 0, 4, 0), Uint32Array.of(3, 0)).next();
  const e = [0, 0, 0, 0];
  boxMullerFloat(w[0], w[1], e, 0);
  boxMullerFloat(w[2], w[3], e, 2);
  assert.deepEqual(Array.from(n.data as Float32Array), e);

  const t = compileOp(randomKernels, "TruncatedNormal", seeds(3, 4), 1)([Tensor.int32([1000])])[0];
  const v = Array.from(t.data as Float32Array);
  assert.ok(v.every((x) => Math.abs(x) < 2));
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  assert.ok(Math.abs(mean) < 0.1, `mean ${mean}`);
  // Group g (4 values) starts 256·g draws after the node's state (sharding-independent) and
  // takes Box-Muller pairs from consecutive 32-bit samples, keeping |x| < 2.
  for (const group of [0, 1, 249]) {
    const gen = new Philox(Uint32Array.of(256 * group, 0, 4, 0), Uint32Array.of(3, 0));
    const samples: number[] = [];
    const kept: number[] = [];
    const pair = [0, 0];
    while (kept.length < 4) {
      if (samples.length < 2) samples.push(...gen.next());
      boxMullerFloat(samples.shift()!, samples.shift()!, pair, 0);
      for (const x of pair) if (Math.abs(x) < 2 && kept.length < 4) kept.push(x);
    }
    assert.deepEqual(v.slice(4 * group, 4 * group + 4), kept);
  }
});

Deno.test("stateless ops: GenerateKey scrambles the seed; same seed, same numbers", () => {
  const attrs = { dtype: attr.type(DataType.DT_FLOAT), T: attr.type(DataType.DT_INT32) };
  const run = compileOp(randomKernels, "StatelessRandomUniform", attrs, 2);
  const a = run([Tensor.int32([5]), Tensor.int64([1, 2])])[0];
  const b = run([Tensor.int32([5]), Tensor.int32([1, 2])])[0];
  assert.deepEqual(Array.from(a.data as Float32Array), Array.from(b.data as Float32Array));
  // The generator is Philox(counter [0, 0, m2, m3], key [m0, m1]) with m = Philox([s0, s1],
  // [0x3ec8f720, 0x02461e29]).
  const m = new Philox(Uint32Array.of(1, 0, 2, 0), Uint32Array.of(0x3ec8f720, 0x02461e29)).next();
  const g = statelessGenerator(1n, 2n);
  assert.deepEqual(Array.from(g.key), [m[0], m[1]]);
  assert.deepEqual(Array.from(g.counter), [0, 0, m[2], m[3]]);
  const w = [...g.next(new Uint32Array(4)).slice(), ...g.next(new Uint32Array(4)).slice()];
  assert.deepEqual(Array.from(a.data as Float32Array), w.slice(0, 5).map(uint32ToFloat));
  // A negative int32 seed widens with its sign.
  const neg = statelessGenerator(-1n, 0n);
  const ng = compileOp(randomKernels, "StatelessRandomUniform", attrs, 2)([
    Tensor.int32([1]),
    Tensor.int32([-1, 0]),
  ])[0];
  assert.deepEqual(Array.from(ng.data as Float32Array), [uint32ToFloat(neg.next()[0])]);
  // V2 with the key/counter StatelessRandomGetKeyCounter returns gives the same numbers.
  const [key, counter] = compileOp(randomKernels, "StatelessRandomGetKeyCounter", {}, 1)([
    Tensor.int64([1, 2]),
  ]);
  const v2 = compileOp(randomKernels, "StatelessRandomUniformV2", {
    dtype: attr.type(DataType.DT_FLOAT),
    Tshape: attr.type(DataType.DT_INT32),
  }, 4)([Tensor.int32([5]), key, counter, Tensor.scalar(DataType.DT_INT32, 1)])[0];
  assert.deepEqual(Array.from(v2.data as Float32Array), Array.from(a.data as Float32Array));
  throwsCode(
    () => run([Tensor.int32([5]), Tensor.int32([1, 2, 3])]),
    Code.INVALID_ARGUMENT,
    /seed must have shape \[2\], not \[3\]/,
  );
});

Deno.test("random ops refuse unsupported dtypes at load and huge shapes at run", () => {
  throwsCode(
    () =>
      compileOp(randomKernels, "RandomUniform", {
        ...seeds(1, 2),
        dtype: attr.type(DataType.DT_INT32),
      }, 1),
    Code.UNIMPLEMENTED,
    /node "test_RandomUniform": attr dtype=DT_INT32/,
  );
  throwsCode(
    () => compileOp(randomKernels, "RandomUniform", seeds(1, 2), 1)([Tensor.int32([65536, 65536])]),
    Code.RESOURCE_EXHAUSTED,
    /limit/,
  );
});

Deno.test("a graph whose init op runs seeded RandomUniform loads and runs (Keras initializer)", async () => {
  const g = new GraphBuilder();
  const shape = g.constant("w/Initializer/random_uniform/shape", Tensor.int32([2, 2]));
  const ru = g.op("w/Initializer/random_uniform/RandomUniform", "RandomUniform", [shape], {
    ...seeds(42, 7),
  });
  const w = addVariable(g, "w", ru, DataType.DT_FLOAT, [2, 2]);
  g.op("init", "NoOp", [`^${w.initializer}`]);
  const x = g.placeholder("x", DataType.DT_FLOAT, [2, 2]);
  g.op("y", "Mul", [x, w.snapshot], { T: attrValue.type(DataType.DT_FLOAT) });
  const dir = await Deno.makeTempDir({ prefix: "random_init_" });
  try {
    await writeSavedModel(`${dir}/1`, {
      nodes: g.graph().node,
      signatures: {
        serving_default: signatureDef(
          { x: tensorInfo("x:0", DataType.DT_FLOAT, [2, 2]) },
          { y: tensorInfo("y:0", DataType.DT_FLOAT, [2, 2]) },
          "tensorflow/serving/predict",
        ),
      },
      mainOp: "init",
      opDefs: parseOpDefs(`
op {
  name: "RandomUniform"
  input_arg { name: "shape" type_attr: "T" }
  output_arg { name: "output" type_attr: "dtype" }
  attr { name: "seed" type: "int" default_value { i: 0 } }
  attr { name: "seed2" type: "int" default_value { i: 0 } }
  attr { name: "dtype" type: "type" allowed_values { list { type: [DT_HALF, DT_BFLOAT16, DT_FLOAT, DT_DOUBLE] } } }
  attr { name: "T" type: "type" allowed_values { list { type: [DT_INT32, DT_INT64] } } }
  is_stateful: true
}
op {
  name: "Mul"
  input_arg { name: "x" type_attr: "T" }
  input_arg { name: "y" type_attr: "T" }
  output_arg { name: "z" type_attr: "T" }
  attr { name: "T" type: "type" }
  is_commutative: true
}
op {
  name: "VariableV2"
  output_arg { name: "ref" type_attr: "dtype" is_ref: true }
  attr { name: "shape" type: "shape" }
  attr { name: "dtype" type: "type" }
  attr { name: "container" type: "string" default_value { s: "" } }
  attr { name: "shared_name" type: "string" default_value { s: "" } }
  is_stateful: true
}`),
    });
    const model = await loadModel(`${dir}/1`);
    const out = model.signature("serving_default").run({ x: Tensor.float32([1, 1, 1, 1], [2, 2]) });
    const gen = new Philox(Uint32Array.of(0, 0, 7, 0), Uint32Array.of(42, 0)).next();
    assert.deepEqual(Array.from(out.y.data as Float32Array), Array.from(gen, uint32ToFloat));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the generator lives with the session: two plans share one node's state", () => {
  const g = new GraphBuilder();
  const shape = g.constant("shape", Tensor.int32([4]));
  g.op("r", "RandomUniform", [shape], seeds(5, 6));
  const s = new Session(g.graph(), [], defaultRegistry());
  const p1 = s.compile({ feeds: [], fetches: [parseTensorName("r:0")] }, "a");
  const p2 = s.compile({ feeds: [], fetches: [parseTensorName("r:0")] }, "b");
  const first = Array.from(p1.run([])[0].data as Float32Array);
  const second = Array.from(p2.run([])[0].data as Float32Array);
  const gen = new Philox(Uint32Array.of(0, 0, 6, 0), Uint32Array.of(5, 0));
  assert.deepEqual(first, Array.from(gen.next(), uint32ToFloat));
  gen.skip(4 * 256 - 1);
  assert.deepEqual(second, Array.from(gen.next(), uint32ToFloat));
});

// TF Serving's saved_model_half_plus_two_mkl (servables/tensorflow/testdata) initialises Keras
// conv kernels with unseeded RandomUniform in its init op. It is not in every checkout of the
// shared testdata, so the test runs where it is.
const MKL = new URL(
  "../../../shared/testdata/tf-serving/saved_model_half_plus_two_mkl/00000123",
  import.meta.url,
);
const hasMkl = (() => {
  try {
    return Deno.statSync(MKL).isDirectory;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "TF Serving's saved_model_half_plus_two_mkl loads (RandomUniform in its init op)",
  ignore: !hasMkl,
  async fn() {
    const model = await loadModel(decodeURIComponent(MKL.pathname));
    const out = model.signature("serving_default").run({ x: Tensor.float32([1, 2, 5], [3, 1]) });
    assert.deepEqual(Array.from(out.y.data as Float32Array), [2.5, 3, 4.5]);
  },
});
