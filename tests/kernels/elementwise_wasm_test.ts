/**
 * The WebAssembly elementwise kernels (`kernels/wasm/elementwise.ts`): Relu, Relu6 and Tanh
 * against their definitions (odd lengths for the n % 4 tail, offsets, special values), and the
 * broadcasting binary ops on randomized shapes (odd sizes, every broadcast pattern, batch > 1)
 * against a straightforward indexed reference and against the JavaScript loops they replace.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  binaryF32,
  ELEMENTWISE_MIN_ELEMENTS,
  elementwiseWasmSupported,
  reduceF32,
  setElementwiseWasmEnabled,
  unaryF32,
  WasmAct,
  WasmBinary,
} from "../../src/kernels/wasm/elementwise.ts";
import { arithmeticKernels } from "../../src/kernels/arithmetic.ts";
import { activationKernels } from "../../src/kernels/activation.ts";
import { reductionKernels } from "../../src/kernels/reduce.ts";
import { mulAddF32 } from "../../src/kernels/mul_add.ts";
import { concatSplitKernels } from "../../src/kernels/concat_split.ts";
import { isKernelView } from "../../src/kernels/wasm/float_store.ts";
import { activateArena, Arena, type FloatStore, setFloatStore } from "../../src/tensor/arena.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { lcg } from "../random.ts";
import { attr, runOp } from "./harness.ts";
import { imageKernels } from "../../src/kernels/image.ts";

const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 1e-30, -1e-30, 0.2499, -0.25, 6, 6.0001, 100];

Deno.test("unaryF32 Relu and Relu6 equal their definitions; Tanh is within 4 float32 ulps", () => {
  assert.ok(elementwiseWasmSupported, "Deno runs WebAssembly SIMD");
  const rand = lcg(11);
  for (const n of [256, 257, 258, 259, 1001, 4099]) {
    const scale = [0.01, 1, 8, 40][n % 4];
    const x = Float32Array.from({ length: n + 5 }, () => (rand() * 2 - 1) * scale);
    x.set(SPECIAL, 5);
    for (const act of [WasmAct.Relu, WasmAct.Relu6, WasmAct.Tanh]) {
      const y = new Float32Array(n + 9).fill(-7);
      assert.ok(unaryF32(act, x, 5, y, 3, n));
      assert.deepEqual([y[0], y[1], y[2], y[n + 3]], [-7, -7, -7, -7], "writes only its range");
      for (let i = 0; i < n; i++) {
        const v = x[5 + i], got = y[3 + i];
        if (act === WasmAct.Tanh) {
          const want = Math.tanh(v);
          if (Number.isNaN(want)) assert.ok(Number.isNaN(got));
          else {
            assert.ok(
              Math.abs(got - want) <= 1e-38 + 4 * 1.2e-7 * Math.abs(want),
              `tanh(${v}) = ${got}, want ${want}`,
            );
          }
        } else {
          const want = act === WasmAct.Relu ? (v < 0 ? 0 : v) : v < 0 ? 0 : v > 6 ? 6 : v;
          // max(-0, 0) may give either zero.
          assert.ok(Object.is(got, want) || (got === 0 && want === 0), `${act}(${v}) = ${got}`);
        }
      }
    }
  }
  assert.equal(unaryF32(WasmAct.Relu, new Float32Array(8), 0, new Float32Array(8), 0, 8), false);
});

const OPS: [WasmBinary, string, (a: number, b: number) => number][] = [
  [WasmBinary.Add, "AddV2", (a, b) => a + b],
  [WasmBinary.Sub, "Sub", (a, b) => a - b],
  [WasmBinary.Mul, "Mul", (a, b) => a * b],
  [WasmBinary.Div, "RealDiv", (a, b) => a / b],
  [WasmBinary.Max, "Maximum", (a, b) => (a !== a || b !== b ? NaN : a < b ? b : a)],
  [WasmBinary.Min, "Minimum", (a, b) => (a !== a || b !== b ? NaN : b < a ? b : a)],
  [WasmBinary.SquaredDifference, "SquaredDifference", (a, b) => {
    const d = Math.fround(a - b);
    return d * d;
  }],
];

/** The broadcast of a and b by explicit multi-indexing (numpy rules), float32-rounded. */
function reference(
  f: (a: number, b: number) => number,
  a: Tensor,
  b: Tensor,
): { shape: number[]; data: Float32Array } {
  const r = Math.max(a.rank, b.rank);
  const sa = [...Array(r - a.rank).fill(1), ...a.shape];
  const sb = [...Array(r - b.rank).fill(1), ...b.shape];
  const shape = sa.map((d, i) => Math.max(d, sb[i]));
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float32Array(n);
  const idx = new Array(r).fill(0);
  for (let o = 0; o < n; o++) {
    let ia = 0, ib = 0;
    for (let d = 0; d < r; d++) {
      ia = ia * sa[d] + (sa[d] === 1 ? 0 : idx[d]);
      ib = ib * sb[d] + (sb[d] === 1 ? 0 : idx[d]);
    }
    out[o] = f((a.data as Float32Array)[ia], (b.data as Float32Array)[ib]);
    for (let d = r - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  return { shape, data: out };
}

function sameValues(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    if (!(Object.is(got[i], want[i]) || (got[i] === 0 && want[i] === 0))) {
      assert.fail(`${what}: at ${i} got ${got[i]}, want ${want[i]}`);
    }
  }
}

Deno.test("unaryF32 gives each element the same float wherever it falls: the 8-lane loop, a last vector, the n % 4 tail", () => {
  const rand = lcg(23);
  const n = 300;
  const x = Float32Array.from({ length: n + 16 }, () => (rand() * 2 - 1) * 12);
  x.set(SPECIAL, 20);
  for (const act of [WasmAct.Relu, WasmAct.Relu6, WasmAct.Tanh, WasmAct.Exp]) {
    // The same values at every shift of the start: each element passes through each path.
    const base = new Float32Array(n);
    assert.ok(unaryF32(act, x, 8, base, 0, n));
    for (let shift = 1; shift <= 8; shift++) {
      for (const len of [n - shift, n - shift - 4, n - shift - 5]) {
        const y = new Float32Array(len);
        assert.ok(unaryF32(act, x, 8 + shift, y, 0, len));
        for (let i = 0; i < len; i++) {
          assert.ok(
            Object.is(y[i], base[shift + i]) || (y[i] === 0 && base[shift + i] === 0),
            `act ${act}, shift ${shift}, length ${len}: element ${i} is ${y[i]}, ` +
              `${base[shift + i]} at the other position`,
          );
        }
      }
    }
  }
});

Deno.test("float32 binary ops in WebAssembly equal an indexed reference and the JavaScript loops on randomized broadcasts", () => {
  const rand = lcg(29);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const randomTensor = (shape: number[]) => {
    const n = shape.reduce((x, y) => x * y, 1);
    const data = Float32Array.from({ length: n }, () => (rand() * 2 - 1) * 4);
    if (n > 3) data[int(0, n - 1)] = NaN;
    return new Tensor(DataType.DT_FLOAT, shape, data);
  };
  // Fixed cases the models have (per-channel vectors, scalars, outer products, batch > 1),
  // then random ones.
  const cases: [number[], number[]][] = [
    [[1, 36, 64, 16], [1, 1, 1, 16]],
    [[1, 144, 256, 2], [2]],
    [[3, 17, 19, 5], [1]],
    [[], [2, 33, 7]],
    [[64, 64, 1, 1], [1, 1, 6, 17]],
    [[64, 1, 17], [64, 6, 17]],
    [[2, 9, 13, 6], [2, 9, 13, 1]],
    [[5, 1, 7, 3], [1, 11, 1, 3]],
    [[7, 40], [7, 40]],
    [[1001, 3], [3]],
    [[3], [1001, 3]],
  ];
  for (let c = 0; c < 40; c++) {
    const rank = int(1, 5);
    const full = Array.from({ length: rank }, () => int(1, 9));
    const a = full.map((d) => (rand() < 0.3 ? 1 : d));
    const b = full.map((d) => (rand() < 0.3 ? 1 : d)).slice(int(0, rank - 1));
    cases.push(rand() < 0.5 ? [a, b] : [b, a]);
  }
  let viaWasm = 0;
  for (const [sa, sb] of cases) {
    const a = randomTensor(sa), b = randomTensor(sb);
    for (const [code, op, f] of OPS) {
      const want = reference((x, y) => Math.fround(f(x, y)), a, b);
      const [got] = runOp(arithmeticKernels, op, [a, b]);
      assert.deepEqual(got.shape, want.shape, `${op} ${sa} ${sb}`);
      if (code === WasmBinary.SquaredDifference) {
        // Shapes the kernel declines run the JavaScript loop, which squares the exact
        // difference; the kernel, as TensorFlow's float32 kernel, the rounded one.
        const g = got.data as Float32Array;
        for (let i = 0; i < g.length; i++) {
          const w = want.data[i];
          assert.ok(Object.is(g[i], w) || Math.abs(g[i] - w) <= 2.4e-7 * Math.abs(w), op);
        }
      } else sameValues(got.data as Float32Array, want.data, `${op} [${sa}] [${sb}]`);
      const was = setElementwiseWasmEnabled(false);
      try {
        const [js] = runOp(arithmeticKernels, op, [a, b]);
        if (code === WasmBinary.SquaredDifference) {
          const g = got.data as Float32Array, j = js.data as Float32Array;
          for (let i = 0; i < g.length; i++) {
            assert.ok(Object.is(g[i], j[i]) || Math.abs(g[i] - j[i]) <= 2.4e-7 * Math.abs(j[i]));
          }
        } else sameValues(got.data as Float32Array, js.data as Float32Array, `${op} JS vs wasm`);
      } finally {
        setElementwiseWasmEnabled(was);
      }
      if (want.data.length >= ELEMENTWISE_MIN_ELEMENTS) viaWasm++;
    }
  }
  assert.ok(viaWasm > 40, `enough cases large enough for the kernel (${viaWasm})`);
});

Deno.test("unaryF32 Exp is within 4 float32 ulps of e^x, 0 below -86.6, +Inf above ln(FLT_MAX)", () => {
  const rand = lcg(61);
  for (const n of [256, 257, 259, 3001]) {
    const x = Float32Array.from({ length: n + 2 }, () => (rand() * 2 - 1) * [1, 20, 90][n % 3]);
    x.set([NaN, Infinity, -Infinity, 0, -0, 88.7, 88.8, -86.5, -87, -100, 1e-30], 2);
    const y = new Float32Array(n + 2).fill(-7);
    assert.ok(unaryF32(WasmAct.Exp, x, 2, y, 0, n));
    assert.equal(y[n], -7);
    for (let i = 0; i < n; i++) {
      const v = x[2 + i], got = y[i], want = Math.exp(v);
      if (Number.isNaN(v)) assert.ok(Number.isNaN(got));
      else if (v > 88.72283935546875) assert.equal(got, Infinity, `exp(${v})`);
      else if (v < -86.6) assert.equal(got, 0, `exp(${v})`);
      else assert.ok(Math.abs(got - want) <= 4 * 1.2e-7 * want, `exp(${v}) = ${got}, want ${want}`);
    }
  }
});

Deno.test("binaryF32 declines inner strides other than 0 and 1, and small outputs", () => {
  const a = new Float32Array(10000), b = new Float32Array(10000), y = new Float32Array(5000);
  assert.equal(binaryF32(WasmBinary.Add, a, b, y, [1, 1, 5000], [0, 0, 2], [0, 0, 1]), false);
  assert.equal(binaryF32(WasmBinary.Add, a, b, y, [1, 1, 5000], [0, 0, 1], [0, 0, 1]), true);
  assert.equal(
    binaryF32(WasmBinary.Add, a, b, new Float32Array(10), [1, 1, 10], [0, 0, 1], [0, 0, 1]),
    false,
  );
});

Deno.test("Relu, Relu6 and Tanh kernels agree with and without WebAssembly", () => {
  const rand = lcg(3);
  for (const n of [5, 300, 1027]) {
    const x = new Tensor(
      DataType.DT_FLOAT,
      [1, n],
      Float32Array.from({ length: n }, () => (rand() * 2 - 1) * 9),
    );
    for (const op of ["Relu", "Relu6", "Tanh"]) {
      const [got] = runOp(activationKernels, op, [x]);
      const was = setElementwiseWasmEnabled(false);
      let js: Tensor;
      try {
        [js] = runOp(activationKernels, op, [x]);
      } finally {
        setElementwiseWasmEnabled(was);
      }
      const g = got.data as Float32Array, j = js.data as Float32Array;
      for (let i = 0; i < n; i++) {
        assert.ok(Math.abs(g[i] - j[i]) <= 4 * 1.2e-7 * Math.abs(j[i]), `${op} at ${i}`);
      }
    }
  }
});

Deno.test("float32 Max and Min over middle axes equal a reference, with and without WebAssembly", () => {
  const rand = lcg(53);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const cases: [number[], number[]][] = [[[64, 64, 6, 17], [2]], [[3, 5, 7], [1]], [[9, 40], [0]]];
  for (let c = 0; c < 30; c++) {
    const rank = int(2, 4);
    const shape = Array.from({ length: rank }, () => int(1, 9));
    shape[rank - 1] = int(4, 13);
    const first = int(0, rank - 2), last = int(first, rank - 2);
    cases.push([shape, Array.from({ length: last - first + 1 }, (_, i) => first + i)]);
  }
  for (const [shape, axes] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Tensor(
      DataType.DT_FLOAT,
      shape,
      Float32Array.from({ length: n }, () => (rand() * 2 - 1) * 5),
    );
    if (n > 10) (x.data as Float32Array)[int(0, n - 1)] = NaN;
    const ax = new Tensor(DataType.DT_INT32, [axes.length], Int32Array.from(axes));
    for (const op of ["Max", "Min"]) {
      // Reference: fold each output element's values in index order.
      const outShape = shape.filter((_, d) => !axes.includes(d));
      const m = outShape.reduce((a, b) => a * b, 1);
      const want = new Float32Array(m).fill(op === "Max" ? -Infinity : Infinity);
      const idx = new Array(shape.length).fill(0);
      for (let i = 0; i < n; i++) {
        let o = 0;
        for (let d = 0; d < shape.length; d++) if (!axes.includes(d)) o = o * shape[d] + idx[d];
        const v = (x.data as Float32Array)[i], w = want[o];
        want[o] = Number.isNaN(w) || Number.isNaN(v)
          ? NaN
          : op === "Max"
          ? Math.max(w, v)
          : Math.min(w, v);
        for (let d = shape.length - 1; d >= 0; d--) {
          if (++idx[d] < shape[d]) break;
          idx[d] = 0;
        }
      }
      for (const wasm of [true, false]) {
        const was = setElementwiseWasmEnabled(wasm);
        try {
          const [got] = runOp(reductionKernels, op, [x, ax]);
          assert.deepEqual(got.shape, outShape);
          sameValues(got.data as Float32Array, want, `${op} [${shape}] over ${axes} wasm ${wasm}`);
        } finally {
          setElementwiseWasmEnabled(was);
        }
      }
    }
  }
});

Deno.test("mulAddF32 in WebAssembly gives the Mul-then-Add floats for every kind of scale and sum", () => {
  const rand = lcg(71);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const f32 = (shape: number[]) =>
    new Tensor(
      DataType.DT_FLOAT,
      shape,
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rand() * 2 - 1) * 3),
    );
  for (let t = 0; t < 60; t++) {
    const c = [1, 3, 16, 24, 40, int(1, 70)][t % 6];
    const shape = [int(1, 2), int(20, 60), int(5, 13), c];
    const x = f32(shape);
    const s = [f32(shape), f32([]), f32([1, 1, 1, c]), f32([c])][t % 4];
    const r = t % 3 === 0 ? f32([1]) : f32(shape);
    const [mul] = runOp(arithmeticKernels, "Mul", [x, s]);
    const [want] = runOp(arithmeticKernels, "AddV2", [mul, r]);
    for (const wasm of [true, false]) {
      const was = setElementwiseWasmEnabled(wasm);
      try {
        const got = mulAddF32(x, s, r)!;
        assert.deepEqual(got.shape, want.shape);
        sameValues(got.data as Float32Array, want.data as Float32Array, `[${shape}] ${t}`);
      } finally {
        setElementwiseWasmEnabled(was);
      }
    }
  }
});

/** The kernels' float store (kernels/wasm/float_store.ts registers it on import). */
function kernelStore(): FloatStore {
  const store = setFloatStore(undefined);
  setFloatStore(store);
  assert.ok(store, "the float store is registered");
  return store;
}

/** A copy of `t` whose storage views the shared kernel memory. */
function inKernelMemory(t: Tensor): Tensor {
  const data = kernelStore().alloc(t.size)!;
  data.set(t.data as Float32Array);
  assert.ok(isKernelView(data));
  return new Tensor(DataType.DT_FLOAT, t.shape, data);
}

/** Runs `f` with an arena active, so that large float32 outputs are carved from the store. */
function inArena<T>(f: () => T): T {
  const arena = new Arena();
  const prev = activateArena(arena);
  try {
    return f();
  } finally {
    activateArena(prev);
  }
}

Deno.test("elementwise kernels on tensors in the shared kernel memory give the floats of the copying path", () => {
  const rand = lcg(83);
  const tensor = (shape: number[], scale = 4) =>
    new Tensor(
      DataType.DT_FLOAT,
      shape,
      Float32Array.from(
        { length: shape.reduce((x, y) => x * y, 1) },
        () => (rand() * 2 - 1) * scale,
      ),
    );
  const cases: [number[], number[]][] = [
    [[1, 36, 64, 16], [1, 1, 1, 16]],
    [[1, 144, 256, 2], [2]],
    [[3, 17, 19, 5], [1]],
    [[1], [2, 33, 71]],
    [[64, 64, 1, 1], [1, 1, 6, 17]],
    [[64, 64, 6, 17], [64, 64, 6, 1]],
    [[64, 1, 17], [64, 6, 17]],
    [[7, 40, 19], [7, 40, 19]],
    [[1001, 7], [7]],
    [[3], [1001, 3]],
    [[5, 1, 70, 3], [1, 11, 1, 3]],
  ];
  let shared = 0;
  for (const [sa, sb] of cases) {
    const a = tensor(sa), b = tensor(sb);
    for (const [code, op] of OPS) {
      const [want] = runOp(arithmeticKernels, op, [a, b]);
      // Both operands in the memory, or only the larger one (a small one is copied in).
      const big = a.size >= b.size;
      for (const both of [true, false]) {
        const ka = both || big ? inKernelMemory(a) : a, kb = both || !big ? inKernelMemory(b) : b;
        const [got] = inArena(() => runOp(arithmeticKernels, op, [ka, kb]));
        if (isKernelView(got.data as Float32Array)) shared++;
        assert.deepEqual(got.shape, want.shape);
        sameValues(got.data as Float32Array, want.data as Float32Array, `${code} [${sa}] [${sb}]`);
      }
    }
  }
  assert.ok(shared > 100, `outputs in the kernel memory (${shared})`);
  // Unary, with offsets into the memory.
  for (const n of [256, 257, 1003, 4099]) {
    const x = tensor([n + 3], 9);
    x.data[3] = NaN;
    const kx = inKernelMemory(x).data as Float32Array, ky = kernelStore().alloc(n + 5)!;
    for (const act of [WasmAct.Relu, WasmAct.Relu6, WasmAct.Tanh, WasmAct.Exp]) {
      const y = new Float32Array(n + 5).fill(-7);
      assert.ok(unaryF32(act, x.data as Float32Array, 3, y, 1, n));
      ky.fill(-7);
      assert.ok(unaryF32(act, kx, 3, ky, 1, n));
      sameValues(ky, y, `act ${act} n ${n}`);
    }
  }
  // Multiply-add with every kind of scale and sum, x and the output in the memory.
  for (let t = 0; t < 24; t++) {
    const c = [1, 3, 16, 24, 40, 67][t % 6];
    const shape = [1 + (t % 2), 37, 11, c];
    const x = tensor(shape);
    const s = [tensor(shape), tensor([]), tensor([1, 1, 1, c]), tensor([c])][t % 4];
    const r = t % 3 === 0 ? tensor([1]) : tensor(shape);
    const want = mulAddF32(x, s, r)!;
    const ks = t % 2 === 0 && s.size > 1 ? inKernelMemory(s) : s;
    const got = inArena(() =>
      mulAddF32(inKernelMemory(x), ks, t % 5 === 0 ? r : inKernelMemory(r))!
    );
    sameValues(got.data as Float32Array, want.data as Float32Array, `mulAdd ${t}`);
  }
  // Max and Min over the middle of three dims.
  for (const [outer, mid, inner] of [[3, 17, 101], [1, 64, 64], [7, 5, 129]]) {
    const x = tensor([outer * mid * inner]), kx = inKernelMemory(x).data as Float32Array;
    for (const code of [WasmBinary.Max, WasmBinary.Min] as const) {
      const y = new Float32Array(outer * inner), ky = kernelStore().alloc(outer * inner)!;
      assert.ok(reduceF32(code, x.data as Float32Array, y, outer, mid, inner));
      assert.ok(reduceF32(code, kx, ky, outer, mid, inner));
      sameValues(ky, y, `reduce ${code} ${outer}×${mid}×${inner}`);
    }
  }
});

Deno.test("ConcatV2 of tensors in the shared kernel memory moves the same bits as the JavaScript copies", () => {
  const rand = lcg(97);
  const cases: [number[][], number][] = [
    [[[1, 72, 128, 16], [1, 72, 128, 16]], 3],
    [[[1, 36, 64, 16], [1, 36, 64, 7], [1, 36, 64, 1]], -1],
    [[[2, 9, 13, 5], [2, 9, 13, 130]], 3],
    [[[3, 40, 41], [3, 17, 41]], 1],
    [[[5000], [3]], 0],
    [[[2, 33, 64], [2, 33, 64]], 2],
  ];
  let viaMemory = 0;
  for (const [shapes, axis] of cases) {
    const inputs = shapes.map((shape) => {
      const data = Float32Array.from(
        { length: shape.reduce((x, y) => x * y, 1) },
        () => (rand() * 2 - 1) * 5,
      );
      data[0] = NaN;
      data[data.length - 1] = -0;
      return new Tensor(DataType.DT_FLOAT, shape, data);
    });
    const dim = new Tensor(DataType.DT_INT32, [], Int32Array.of(axis));
    const [want] = runOp(concatSplitKernels, "ConcatV2", [...inputs, dim]);
    // Every input in the memory, then one of them outside (the JavaScript copies run).
    for (const all of [true, false]) {
      const placed = inputs.map((t, i) => (all || i > 0 ? inKernelMemory(t) : t));
      const [got] = inArena(() => runOp(concatSplitKernels, "ConcatV2", [...placed, dim]));
      if (isKernelView(got.data as Float32Array)) viaMemory++;
      assert.deepEqual(got.shape, want.shape);
      const g = new Uint32Array((got.data as Float32Array).slice().buffer);
      const w = new Uint32Array((want.data as Float32Array).slice().buffer);
      assert.equal(g.length, w.length);
      const at = g.findIndex((v, i) => v !== w[i]);
      assert.equal(at, -1, `[${shapes.join("] [")}] axis ${axis}: differs at ${at}`);
    }
  }
  assert.ok(viaMemory >= 8, `outputs in the kernel memory (${viaMemory})`);
});

Deno.test("Sigmoid, Exp and ResizeBilinear on tensors in the shared kernel memory give the copying path's floats", () => {
  const rand = lcg(101);
  const same = (got: Tensor, want: Tensor, what: string) => {
    assert.deepEqual(got.shape, want.shape, what);
    const g = new Uint32Array((got.data as Float32Array).slice().buffer);
    const w = new Uint32Array((want.data as Float32Array).slice().buffer);
    const at = g.findIndex((v, i) => v !== w[i]);
    assert.equal(at, -1, `${what}: differs at ${at}`);
  };
  let inMemory = 0;
  for (const shape of [[1, 64, 64, 17], [1, 31, 31, 3], [5000]]) {
    const x = new Tensor(
      DataType.DT_FLOAT,
      shape,
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rand() * 2 - 1) * 30),
    );
    (x.data as Float32Array).set([NaN, Infinity, -Infinity, 0, -0, 88.8, -100], 0);
    for (
      const [family, op] of [[activationKernels, "Sigmoid"], [arithmeticKernels, "Exp"]] as const
    ) {
      const [want] = runOp(family, op, [x]);
      const [got] = inArena(() => runOp(family, op, [inKernelMemory(x)]));
      if (isKernelView(got.data as Float32Array)) inMemory++;
      same(got, want, `${op} [${shape}]`);
    }
  }
  for (const [shape, size] of [[[1, 36, 64, 16], [72, 128]], [[2, 9, 16, 6], [18, 31]]]) {
    const x = new Tensor(
      DataType.DT_FLOAT,
      shape,
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 10 - 5),
    );
    const sizeT = new Tensor(DataType.DT_INT32, [2], Int32Array.from(size));
    for (const halfPixel of [false, true]) {
      const attrs = { align_corners: attr.bool(false), half_pixel_centers: attr.bool(halfPixel) };
      const [want] = runOp(imageKernels, "ResizeBilinear", [x, sizeT], attrs);
      const [got] = inArena(() =>
        runOp(imageKernels, "ResizeBilinear", [inKernelMemory(x), sizeT], attrs)
      );
      if (isKernelView(got.data as Float32Array)) inMemory++;
      same(got, want, `ResizeBilinear [${shape}] → ${size}`);
    }
  }
  assert.ok(inMemory >= 8, `outputs in the kernel memory (${inMemory})`);
});
