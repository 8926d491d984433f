/**
 * The WebAssembly sigmoid and exp (`kernels/wasm/activation.ts`) against float64 Math.exp, on random
 * values of every magnitude, odd lengths (the n % 4 tail), offsets, and special values.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  activationWasmSupported,
  expF32,
  setActivationWasmEnabled,
  sigmoidF32,
} from "../../src/kernels/wasm/activation.ts";
import { arithmeticKernels } from "../../src/kernels/arithmetic.ts";
import { activationKernels } from "../../src/kernels/activation.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { runOp } from "./harness.ts";

const exact = (v: number) => v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v));

/** Within 4 float32 ulps of the exact value (relative 2.4e-7 each), or 1e-37 absolute. */
function close(got: number, v: number): boolean {
  const want = exact(v);
  if (Number.isNaN(want)) return Number.isNaN(got);
  return Math.abs(got - want) <= 1e-37 + 4 * 1.2e-7 * Math.abs(want);
}

Deno.test("sigmoidF32 is within a few float32 ulps of the exact sigmoid", () => {
  assert.ok(activationWasmSupported, "Deno runs WebAssembly SIMD");
  let seed = 5;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (const n of [64, 65, 66, 67, 100, 1001, 4099]) {
    const scale = [0.01, 1, 8, 40, 120][n % 5];
    const x = Float32Array.from({ length: n + 5 }, () => (rand() * 2 - 1) * scale);
    const y = new Float32Array(n + 9).fill(-7);
    assert.ok(sigmoidF32(x, 5, y, 3, n));
    for (let i = 0; i < n; i++) {
      assert.ok(close(y[3 + i], x[5 + i]), `n ${n} at ${i}: sigmoid(${x[5 + i]}) = ${y[3 + i]}`);
    }
    // Nothing outside [dstOff, dstOff + n) is written.
    assert.deepEqual([y[0], y[1], y[2], y[n + 3], y[n + 8]], [-7, -7, -7, -7, -7]);
  }
  const special = Float32Array.from([
    0,
    -0,
    NaN,
    Infinity,
    -Infinity,
    87,
    -87,
    88.7,
    -88.7,
    -104,
    1e-30,
    -1e-30,
    ...Array(64).fill(0.5),
  ]);
  const out = new Float32Array(special.length);
  assert.ok(sigmoidF32(special, 0, out, 0, special.length));
  for (let i = 0; i < special.length; i++) {
    assert.ok(close(out[i], special[i]), `sigmoid(${special[i]}) = ${out[i]}`);
  }
  assert.equal(out[3], 1);
  assert.equal(out[4], 0);
});

Deno.test("Sigmoid on float32 agrees with and without WebAssembly", () => {
  const n = 999;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 30);
  const t = new Tensor(1, [1, 27, 37, 1], x); // DT_FLOAT
  const was = setActivationWasmEnabled(false);
  const js = runOp(activationKernels, "Sigmoid", [t])[0].data as Float32Array;
  setActivationWasmEnabled(true);
  const fast = runOp(activationKernels, "Sigmoid", [t])[0].data as Float32Array;
  setActivationWasmEnabled(was);
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(fast[i] - js[i]) <= 1e-37 + 5e-7 * Math.abs(js[i]), `at ${i}`);
  }
});

Deno.test("expF32 is within a few float32 ulps of e^x, with TensorFlow's overflow to Inf", () => {
  let seed = 11;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const within = (got: number, v: number) => {
    const want = Math.fround(Math.exp(v));
    if (Number.isNaN(want)) return Number.isNaN(got);
    if (!Number.isFinite(want)) return got === want;
    return Math.abs(got - want) <= 3e-38 + 4 * 1.2e-7 * Math.abs(want);
  };
  for (const n of [64, 67, 1001]) {
    for (const scale of [0.001, 1, 10, 90, 120]) {
      const x = Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
      const y = new Float32Array(n);
      assert.ok(expF32(x, 0, y, 0, n));
      for (let i = 0; i < n; i++) assert.ok(within(y[i], x[i]), `exp(${x[i]}) = ${y[i]}`);
    }
  }
  const special = Float32Array.from([
    0,
    -0,
    NaN,
    Infinity,
    -Infinity,
    88.72283,
    88.7229,
    89,
    -86.5,
    -86.7,
    -103,
    -200,
    1,
    -1,
    ...Array(60).fill(2),
  ]);
  const out = new Float32Array(special.length);
  assert.ok(expF32(special, 0, out, 0, special.length));
  for (let i = 0; i < special.length; i++) {
    assert.ok(within(out[i], special[i]), `exp(${special[i]}) = ${out[i]}`);
  }
  assert.equal(out[0], 1);
  assert.equal(out[3], Infinity);
  assert.equal(out[4], 0);
  assert.equal(out[7], Infinity);
});

Deno.test("Exp on float32 agrees with and without WebAssembly", () => {
  const n = 777;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 80);
  const t = new Tensor(1, [7, 111], x); // DT_FLOAT
  const was = setActivationWasmEnabled(false);
  const js = runOp(arithmeticKernels, "Exp", [t])[0].data as Float32Array;
  setActivationWasmEnabled(true);
  const fast = runOp(arithmeticKernels, "Exp", [t])[0].data as Float32Array;
  setActivationWasmEnabled(was);
  assert.deepEqual([...runOp(arithmeticKernels, "Exp", [t])[0].shape], [7, 111]);
  for (let i = 0; i < n; i++) {
    assert.ok(Math.abs(fast[i] - js[i]) <= 3e-38 + 5e-7 * Math.abs(js[i]), `at ${i}`);
  }
});
