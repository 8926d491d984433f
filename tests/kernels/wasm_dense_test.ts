/**
 * Tests of the WebAssembly SIMD dense kernel (`src/kernels/wasm/dense.ts`), directly and through
 * `_FusedDenseSoftmax` / `_FusedMatMul`: agreement with a float64 reference on random data, the
 * weight cache (never stale), bias shapes, extreme logits, and the JavaScript fallback.
 *
 * @module
 */
import assert from "node:assert/strict";
import { activationKernels } from "../../src/kernels/activation.ts";
import { batchNormKernels } from "../../src/kernels/batch_norm.ts";
import { biasAddKernels } from "../../src/kernels/bias_add.ts";
import { convKernels } from "../../src/kernels/conv.ts";
import { convBackpropKernels } from "../../src/kernels/conv_backprop.ts";
import { fusedMatMulKernels } from "../../src/kernels/fused_matmul.ts";
import { poolingKernels } from "../../src/kernels/pooling.ts";
import { denseF32, denseWasmSupported, setDenseWasmEnabled } from "../../src/kernels/wasm/dense.ts";
import { DENSE_WASM } from "../../src/kernels/wasm/dense_wasm.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, attr, runOp } from "./harness.ts";
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";

/** Every neural-network family, as one list. */
const nnKernels = [
  ...activationKernels,
  ...biasAddKernels,
  ...fusedMatMulKernels,
  ...convKernels,
  ...convBackpropKernels,
  ...poolingKernels,
  ...batchNormKernels,
];

/** Deterministic PRNG (mulberry32) in [-1, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function randomF32(n: number, r: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() * scale;
  return out;
}

/** x·op(W) + b in float64, then softmax per row when asked (max subtracted, exp, / sum). */
function reference(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array | null,
  n: number,
  k: number,
  m: number,
  transB: boolean,
  softmax: boolean,
): Float64Array {
  const y = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let kk = 0; kk < k; kk++) s += x[i * k + kk] * (transB ? w[j * k + kk] : w[kk * m + j]);
      y[i * m + j] = s + (b === null ? 0 : b[j]);
    }
    if (!softmax) continue;
    let max = -Infinity;
    for (let j = 0; j < m; j++) max = Math.max(max, y[i * m + j]);
    let sum = 0;
    for (let j = 0; j < m; j++) sum += y[i * m + j] = Math.exp(y[i * m + j] - max);
    for (let j = 0; j < m; j++) y[i * m + j] /= sum;
  }
  return y;
}

/** Asserts |a - e| <= rel·|e| element-wise (a relative bound only; zeros must match exactly). */
function assertRelative(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (!(Math.abs(a - e) <= rel * Math.abs(e))) {
      throw new Error(`at ${i}: ${a} vs ${e} (relative error ${Math.abs(a - e) / Math.abs(e)})`);
    }
  }
}

function tensor(data: Float32Array, shape: number[]): Tensor {
  return new Tensor(DataType.DT_FLOAT, shape, data);
}

function run1(op: string, inputs: Tensor[], attrs: Record<string, AttrValue> = {}): Float32Array {
  return runOp(nnKernels, op, inputs, attrs)[0].data as Float32Array;
}

/** Runs `fn` with the WebAssembly kernel switched off, restoring the setting after. */
function withoutWasm<T>(fn: () => T): T {
  const was = setDenseWasmEnabled(false);
  try {
    return fn();
  } finally {
    setDenseWasmEnabled(was);
  }
}

const NS = [1, 3, 64];
const KS = [1, 5, 16, 17, 784];
const MS = [1, 3, 10, 33];

Deno.test("the SIMD kernel is available and the generated module is valid", () => {
  // Deno's V8 has WebAssembly SIMD; if this fails, every other test here ran the fallback.
  assert.ok(WebAssembly.validate(DENSE_WASM));
  assert.ok(denseWasmSupported);
});

Deno.test("denseF32 agrees with a float64 reference", async (t) => {
  const r = rng(7);
  for (const transB of [false, true]) {
    for (const softmax of [false, true]) {
      await t.step(`transB=${transB} softmax=${softmax}`, () => {
        for (const n of NS) {
          for (const k of KS) {
            for (const m of MS) {
              // Inputs of unit size and weights scaled by 1/√k (as trained layers are), so the
              // logits are of order 1 whatever k is.
              const x = randomF32(n * k, r);
              const w = randomF32(k * m, r, 1 / Math.sqrt(k));
              const b = randomF32(m, r, 0.5);
              const y = denseF32(x, w, b, n, k, m, transB, softmax);
              assert.ok(y !== null, "the kernel ran");
              const want = reference(x, w, b, n, k, m, transB, softmax);
              // Logits can cancel to near zero, so they get an absolute bound scaled by the
              // sum of |terms|; softmax outputs are held to 1e-5 relative.
              if (softmax) assertRelative(y, want, 1e-5);
              else assertClose(y, want, 1e-5);
            }
          }
        }
      });
    }
  }
});

Deno.test("_FusedDenseSoftmax through the kernel, with the fallback agreeing", async (t) => {
  const r = rng(11);
  for (const n of NS) {
    for (const k of KS) {
      for (const m of MS) {
        await t.step(`[${n},${k}]·[${k},${m}]`, () => {
          const x = tensor(randomF32(n * k, r), [n, k]);
          const w = tensor(randomF32(k * m, r, 1 / Math.sqrt(k)), [k, m]);
          const b = tensor(randomF32(m, r, 0.5), [m]);
          const fast = run1("_FusedDenseSoftmax", [x, w, b]);
          const slow = withoutWasm(() => run1("_FusedDenseSoftmax", [x, w, b]));
          const want = reference(
            x.data as Float32Array,
            w.data as Float32Array,
            b.data as Float32Array,
            n,
            k,
            m,
            false,
            true,
          );
          assertRelative(fast, want, 1e-5);
          assertRelative(slow, want, 1e-6);
          assertRelative(fast, slow, 1e-5);
        });
      }
    }
  }
});

Deno.test("a row's result does not depend on its batch", () => {
  // Rows go through the kernel in pairs and an odd last row alone; both sum in one order.
  const r = rng(3);
  const k = 37, m = 11;
  const x = randomF32(5 * k, r), w = randomF32(k * m, r), b = randomF32(m, r);
  const all = denseF32(x, w, b, 5, k, m, false, true)!;
  for (let i = 0; i < 5; i++) {
    const one = denseF32(x.subarray(i * k, i * k + k), w, b, 1, k, m, false, true)!;
    assert.deepEqual(Array.from(one), Array.from(all.subarray(i * m, i * m + m)));
  }
});

Deno.test("weights: a new array, or the same array under another shape, is never stale", () => {
  const r = rng(5);
  const n = 3, k = 17, m = 10;
  const x = randomF32(n * k, r), b = randomF32(m, r);
  const w1 = randomF32(k * m, r), w2 = randomF32(k * m, r);
  for (const w of [w1, w2, w1, w2]) {
    const y = denseF32(x, w, b, n, k, m, false, true)!;
    assertRelative(y, reference(x, w, b, n, k, m, false, true), 1e-5);
  }
  // Through the kernel: a variable assigned between calls hands in a new tensor.
  const xt = tensor(x, [n, k]), bt = tensor(b, [m]);
  for (const w of [w1, w2, w1]) {
    const y = run1("_FusedDenseSoftmax", [xt, tensor(w, [k, m]), bt]);
    assertRelative(y, reference(x, w, b, n, k, m, false, true), 1e-5);
  }
  // One storage seen as [k, m], as [m, k] transposed, and as another [k', m'] (a Reshape
  // shares its input's storage).
  const shapes: [number, number, boolean][] = [[k, m, false], [k, m, true], [34, 5, false]];
  for (const [kk, mm, transB] of [...shapes, ...shapes]) {
    const xs = randomF32(n * kk, r), bs = randomF32(mm, r);
    const y = denseF32(xs, w1, bs, n, kk, mm, transB, false)!;
    assertClose(y, reference(xs, w1, bs, n, kk, mm, transB, false), 1e-5);
  }
  // A view into a larger buffer is its own array.
  const big = randomF32(2 * k * m, r);
  for (const w of [big.subarray(0, k * m), big.subarray(k * m)]) {
    const y = denseF32(x, w, b, n, k, m, false, false)!;
    assertClose(y, reference(x, w, b, n, k, m, false, false), 1e-5);
  }
});

Deno.test("many weight matrices and large batches (memory growth, chunks of rows)", () => {
  const r = rng(9);
  // 40 weight matrices of 784×33 (~4 MiB packed) force the memory to grow while the cache
  // holds earlier ones; each must still give its own result.
  const k = 784, m = 33, n = 2;
  const ws = Array.from({ length: 40 }, () => randomF32(k * m, r, 1 / 28));
  const x = randomF32(n * k, r), b = randomF32(m, r);
  for (let pass = 0; pass < 2; pass++) {
    for (const w of ws) {
      assertRelative(
        denseF32(x, w, b, n, k, m, false, true)!,
        reference(x, w, b, n, k, m, false, true),
        1e-5,
      );
    }
  }
  // 301 rows of 784: more than one chunk of x, and an odd last row.
  const rows = 301;
  const xs = randomF32(rows * k, r);
  assertRelative(
    denseF32(xs, ws[0], b, rows, k, m, false, true)!,
    reference(xs, ws[0], b, rows, k, m, false, true),
    1e-5,
  );
});

Deno.test("bias as [m] and as [1, m]", () => {
  const r = rng(13);
  const n = 3, k = 16, m = 10;
  const x = tensor(randomF32(n * k, r), [n, k]);
  const w = tensor(randomF32(k * m, r, 0.25), [k, m]);
  const bData = randomF32(m, r);
  // A weight goes to WebAssembly from its second use on: warm it so both calls take one path.
  run1("_FusedDenseSoftmax", [x, w, tensor(bData, [m])]);
  const a = run1("_FusedDenseSoftmax", [x, w, tensor(bData, [m])]);
  const c = run1("_FusedDenseSoftmax", [x, w, tensor(bData, [1, m])]);
  assert.deepEqual(Array.from(a), Array.from(c));
  const want = reference(
    x.data as Float32Array,
    w.data as Float32Array,
    bData,
    n,
    k,
    m,
    false,
    true,
  );
  assertRelative(a, want, 1e-5);
});

Deno.test("very large logits neither overflow nor give NaN", () => {
  const k = 4, m = 6;
  // Logits of order ±1e4 and ±1e30 (far past exp's range): the max is subtracted first.
  // Powers of two times small integers, so the logits are exact in float32 as in float64.
  for (const scale of [2 ** 13, 2 ** 100]) {
    const x = Float32Array.from([1, -2, 3, 0.5, -1, 2, 0.25, 4].map((v) => v * scale));
    const w = Float32Array.from({ length: k * m }, (_, i) => ((i * 7) % 5) - 2);
    const b = new Float32Array(m);
    const y = denseF32(x, w, b, 2, k, m, false, true)!;
    const want = reference(x, w, b, 2, k, m, false, true);
    for (let i = 0; i < 2; i++) {
      const row = Array.from(y.subarray(i * m, i * m + m));
      assert.ok(row.every(Number.isFinite), `row ${i}: ${row}`);
      assertClose(row, Array.from(want.subarray(i * m, i * m + m)), 1e-6);
    }
  }
  // exp underflows to exactly 0 far below the max; the max itself gets exactly 1.
  const y = denseF32(
    Float32Array.from([1000]),
    Float32Array.from([1, 0]),
    null,
    1,
    1,
    2,
    false,
    true,
  )!;
  assert.deepEqual(Array.from(y), [1, 0]);
});

Deno.test("NaN and infinities propagate as in the JavaScript loop", () => {
  const k = 3, m = 5;
  const w = tensor(Float32Array.from({ length: k * m }, (_, i) => (i % 4) - 1.5), [k, m]);
  const cases: [number[], number[]][] = [
    [[1, NaN, 2], [0, 0, 0, 0, 0]], // a NaN input: the whole row is NaN
    [[1, 2, 3], [0, -Infinity, 0, 0, 0]], // a -inf logit: that output is 0
    [[1, 2, 3], [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity]], // all -inf: NaN
    [[1, 2, 3], [0, Infinity, 0, 0, 0]], // +inf: inf - inf is NaN, as upstream
    [[1, 2, 3], [0, 0, NaN, 0, 0]], // a NaN bias
  ];
  for (const [xs, bs] of cases) {
    const x = tensor(Float32Array.from(xs), [1, k]);
    const b = tensor(Float32Array.from(bs), [m]);
    const fast = run1("_FusedDenseSoftmax", [x, w, b]);
    const slow = withoutWasm(() => run1("_FusedDenseSoftmax", [x, w, b]));
    assertClose(fast, slow, 1e-6);
  }
});

Deno.test("_FusedMatMul uses the kernel and agrees with the fallback", async (t) => {
  const r = rng(17);
  const fusions: [string[], number][] = [
    [["BiasAdd"], 1],
    [["BiasAdd", "Relu"], 1],
    [["BiasAdd", "Add", "Tanh"], 2],
    [["BiasAdd", "LeakyRelu"], 1],
  ];
  for (const [ops, numArgs] of fusions) {
    for (const transB of [false, true]) {
      await t.step(`${ops.join("+")} transB=${transB}`, () => {
        for (const [n, k, m] of [[1, 784, 10], [3, 17, 33], [64, 5, 3]]) {
          const x = tensor(randomF32(n * k, r), [n, k]);
          const w = tensor(randomF32(k * m, r, 1 / Math.sqrt(k)), transB ? [m, k] : [k, m]);
          const args = [tensor(randomF32(m, r), [m]), tensor(randomF32(n * m, r), [n, m])];
          const inputs = [x, w, ...args.slice(0, numArgs)];
          const attrs = {
            fused_ops: attr.strings(ops),
            num_args: attr.int(numArgs),
            transpose_b: attr.bool(transB),
          };
          const fast = run1("_FusedMatMul", inputs, attrs);
          const slow = withoutWasm(() => run1("_FusedMatMul", inputs, attrs));
          assertClose(fast, slow, 1e-5);
        }
      });
    }
  }
});

Deno.test("setDenseWasmEnabled(false) makes denseF32 decline", () => {
  const was = setDenseWasmEnabled(false);
  try {
    const one = Float32Array.from([1]);
    assert.equal(denseF32(one, one, one, 1, 1, 1, false, false), null);
  } finally {
    setDenseWasmEnabled(was);
  }
  // Empty products are left to the caller.
  assert.equal(
    denseF32(new Float32Array(0), new Float32Array(0), null, 0, 3, 0, false, true),
    null,
  );
});
