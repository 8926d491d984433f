/**
 * Tests of the neural-network kernels: hand-computed small cases per op, and naive references
 * on random data for the convolutions and the fused kernels.
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
import { windowedOutputSize } from "../../src/kernels/window.ts";
import { Code, ServingError } from "../../src/errors.ts";
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

type Attrs = Record<string, AttrValue>;

function run(op: string, inputs: Tensor[], attrs: Attrs = {}): Tensor[] {
  return runOp(nnKernels, op, inputs, attrs);
}

function run1(op: string, inputs: Tensor[], attrs: Attrs = {}): Tensor {
  return run(op, inputs, attrs)[0];
}

function f32(values: number[], shape: number[]): Tensor {
  return Tensor.float32(values, shape);
}

function f64(values: number[], shape: number[]): Tensor {
  return new Tensor(DataType.DT_DOUBLE, shape, Float64Array.from(values));
}

function throwsCode(fn: () => unknown, code: Code, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ServingError, `expected ServingError, got ${e}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `"${e.message}" lacks "${p}"`);
    return true;
  });
}

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

function randomTensor(shape: number[], r: () => number, scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return f32(Array.from({ length: n }, () => r() * scale), shape);
}

const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);

// ---------------------------------------------------------------------------------------------

Deno.test("activations", async (t) => {
  const xs = [-3, -0.5, 0, 0.5, 3, 7];
  const x = f32(xs, [2, 3]);
  const cases: [string, (v: number) => number, Attrs?][] = [
    ["Relu", (v) => Math.max(v, 0)],
    ["Relu6", (v) => Math.min(Math.max(v, 0), 6)],
    ["Elu", (v) => v < 0 ? Math.exp(v) - 1 : v],
    [
      "Selu",
      (v) =>
        v < 0
          ? 1.0507009873554805 * 1.6732632423543772 * (Math.exp(v) - 1)
          : 1.0507009873554805 * v,
    ],
    ["LeakyRelu", (v) => v > 0 ? v : 0.2 * v],
    ["LeakyRelu", (v) => v > 0 ? v : 0.01 * v, { alpha: attr.float(0.01) }],
    ["Sigmoid", (v) => 1 / (1 + Math.exp(-v))],
    ["Tanh", Math.tanh],
    ["Softplus", (v) => Math.log(1 + Math.exp(v))],
    ["Softsign", (v) => v / (1 + Math.abs(v))],
  ];
  for (const [op, fn, attrs] of cases) {
    await t.step(`${op} ${attrs ? JSON.stringify(Object.keys(attrs)) : ""}`, () => {
      const y = run1(op, [x], attrs);
      assert.deepEqual(y.shape, [2, 3]);
      assert.equal(y.dtype, DataType.DT_FLOAT);
      assertClose(y.data as Float32Array, xs.map(fn), 1e-6);
    });
  }
  await t.step("float64", () => {
    const y = run1("Sigmoid", [f64(xs, [6])]);
    assert.ok(y.data instanceof Float64Array);
    assertClose(y.data, xs.map((v) => 1 / (1 + Math.exp(-v))), 1e-14);
  });
  await t.step("NaN propagates", () => {
    for (const op of ["Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Sigmoid", "Tanh"]) {
      const y = run1(op, [f32([NaN], [1])]);
      assert.ok(Number.isNaN((y.data as Float32Array)[0]), op);
    }
  });
  await t.step("extremes stay finite", () => {
    const big = [-1000, -90, 90, 1000];
    const s = run1("Sigmoid", [f32(big, [4])]).data as Float32Array;
    assert.deepEqual(Array.from(s), [0, Math.fround(1 / (1 + Math.exp(90))), 1, 1]);
    const sp = run1("Softplus", [f32(big, [4])]).data as Float32Array;
    assertClose(sp, [0, Math.exp(-90), 90, 1000]);
  });
  await t.step("input not mutated", () => {
    const before = Array.from(x.data as Float32Array);
    run1("Relu", [x]);
    assert.deepEqual(Array.from(x.data as Float32Array), before);
  });
  await t.step("other dtypes are UNIMPLEMENTED naming node and dtype", () => {
    throwsCode(
      () => run1("Relu", [Tensor.int32([1, -1])]),
      Code.UNIMPLEMENTED,
      "test_Relu",
      "DT_INT32",
    );
    throwsCode(
      () => run1("Tanh", [Tensor.int32([1])], { T: attr.type(DataType.DT_INT32) }),
      Code.UNIMPLEMENTED,
      "DT_INT32",
    );
  });
});

Deno.test("Softmax / LogSoftmax", async (t) => {
  const xs = [1, 2, 3, -1, 0, 5, 0.5, 0.5, 0.5];
  const expected = (row: number[]) => {
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  await t.step("rows sum to 1 and equal exp(x-max)/sum", () => {
    const y = run1("Softmax", [f32(xs, [3, 3])]).data as Float32Array;
    for (let r = 0; r < 3; r++) {
      const row = Array.from(y.subarray(r * 3, r * 3 + 3));
      assertClose(row, expected(xs.slice(r * 3, r * 3 + 3)), 1e-6);
      assertClose([row.reduce((a, b) => a + b, 0)], [1], 1e-6);
    }
  });
  await t.step("large values do not overflow", () => {
    const y = run1("Softmax", [f32([1000, 1001, 1002, -1e30, 0, 1e30], [2, 3])]);
    const d = y.data as Float32Array;
    assertClose(d.subarray(0, 3), expected([0, 1, 2]), 1e-6);
    assert.deepEqual(Array.from(d.subarray(3)), [0, 0, 1]);
    const l = run1("LogSoftmax", [f32([1000, 1001, 1002], [3])]).data as Float32Array;
    assertClose(l, expected([0, 1, 2]).map(Math.log), 1e-6);
  });
  await t.step("LogSoftmax equals log(softmax)", () => {
    const y = run1("LogSoftmax", [f32(xs, [3, 3])]).data as Float32Array;
    const e = [0, 1, 2].flatMap((r) => expected(xs.slice(r * 3, r * 3 + 3)).map(Math.log));
    assertClose(y, e, 1e-6);
  });
  await t.step("rank 1, rank 3, float64, empty", () => {
    assertClose(run1("Softmax", [f32([0, 0], [2])]).data as Float32Array, [0.5, 0.5]);
    const y3 = run1("Softmax", [f32(xs.slice(0, 6), [1, 2, 3])]);
    assert.deepEqual(y3.shape, [1, 2, 3]);
    const y64 = run1("Softmax", [f64([1, 2, 3], [3])]);
    assert.ok(y64.data instanceof Float64Array);
    assertClose(y64.data, expected([1, 2, 3]), 1e-14);
    assert.deepEqual(run1("Softmax", [f32([], [0, 4])]).shape, [0, 4]);
  });
  await t.step("scalar is INVALID_ARGUMENT", () => {
    throwsCode(
      () => run1("Softmax", [f32([1], [])]),
      Code.INVALID_ARGUMENT,
      "logits must have >= 1 dimension, got []",
    );
  });
});

Deno.test("BiasAdd", async (t) => {
  await t.step("NHWC (default)", () => {
    const y = run1("BiasAdd", [f32(range(6), [2, 3]), f32([10, 20, 30], [3])]);
    assert.deepEqual(Array.from(y.data as Float32Array), [11, 22, 33, 14, 25, 36]);
    const y4 = run1("BiasAdd", [f32(range(8), [1, 2, 2, 2]), f32([100, 200], [2])]);
    assert.deepEqual(
      Array.from(y4.data as Float32Array),
      [101, 202, 103, 204, 105, 206, 107, 208],
    );
  });
  await t.step("NCHW", () => {
    const y = run1("BiasAdd", [f32(range(8), [1, 2, 2, 2]), f32([100, 200], [2])], {
      data_format: attr.string("NCHW"),
    });
    assert.deepEqual(
      Array.from(y.data as Float32Array),
      [101, 102, 103, 104, 205, 206, 207, 208],
    );
  });
  await t.step("BiasAddV1, int32, int64 and float64", () => {
    const v1 = run1("BiasAddV1", [f32([1, 2], [1, 2]), f32([1, 1], [2])]);
    assert.deepEqual(Array.from(v1.data as Float32Array), [2, 3]);
    const i = run1("BiasAdd", [Tensor.int32([1, 2147483647], [1, 2]), Tensor.int32([1, 1])]);
    assert.deepEqual(Array.from(i.data as Int32Array), [2, -2147483648]);
    const l = run1("BiasAdd", [Tensor.int64([1, 2], [1, 2]), Tensor.int64([5, 6])]);
    assert.deepEqual(Array.from(l.data as BigInt64Array), [6n, 8n]);
    const d = run1("BiasAdd", [f64([1, 2], [1, 2]), f64([0.5, 0.25], [2])]);
    assert.deepEqual(Array.from(d.data as Float64Array), [1.5, 2.25]);
  });
  await t.step("errors as TensorFlow words them", () => {
    throwsCode(
      () => run1("BiasAdd", [f32([1, 2], [2]), f32([1, 2], [2])]),
      Code.INVALID_ARGUMENT,
      "Input tensor must be at least 2D: [2]",
    );
    throwsCode(
      () => run1("BiasAdd", [f32([1, 2], [1, 2]), f32([1, 2], [1, 2])]),
      Code.INVALID_ARGUMENT,
      "Biases must be 1D: [1,2]",
    );
    throwsCode(
      () => run1("BiasAdd", [f32([1, 2, 3], [1, 3]), f32([1, 2], [2])]),
      Code.INVALID_ARGUMENT,
      "Must provide as many biases as the last dimension of the input tensor: [2] vs. [1,3]",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Convolution

interface ConvSpec {
  strides: [number, number];
  dilations?: [number, number];
  padding: "SAME" | "VALID" | "EXPLICIT";
  explicit?: [number, number, number, number];
}

/** Naive reference: NHWC x, HWIO filter (grouped when I < C), direct formula. */
function refConv(x: Tensor, f: Tensor, s: ConvSpec, depthwise = false): Tensor {
  const [n, h, w, c] = x.shape;
  const [fh, fw, fi, fo] = f.shape;
  const [sh, sw] = s.strides;
  const [dh, dw] = s.dilations ?? [1, 1];
  const dim = (inp: number, k: number, st: number, d: number, b: number, a: number) => {
    const eff = (k - 1) * d + 1;
    if (s.padding === "VALID") return [Math.floor((inp - eff) / st) + 1, 0];
    if (s.padding === "EXPLICIT") return [Math.floor((inp + b + a - eff) / st) + 1, b];
    const out = Math.ceil(inp / st);
    const total = Math.max(0, (out - 1) * st + eff - inp);
    return [out, Math.floor(total / 2)];
  };
  const e = s.explicit ?? [0, 0, 0, 0];
  const [oh, pt] = dim(h, fh, sh, dh, e[0], e[1]);
  const [ow, pl] = dim(w, fw, sw, dw, e[2], e[3]);
  const oc = depthwise ? c * fo : fo;
  const xd = x.data as Float32Array, fd = f.data as Float32Array;
  const out = new Float64Array(n * oh * ow * oc);
  const groups = depthwise ? 1 : c / fi;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let o = 0; o < oc; o++) {
          let sum = 0;
          for (let u = 0; u < fh; u++) {
            for (let v = 0; v < fw; v++) {
              const iy = i * sh - pt + u * dh, ix = j * sw - pl + v * dw;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              if (depthwise) {
                const ci = Math.floor(o / fo), q = o % fo;
                sum += xd[((b * h + iy) * w + ix) * c + ci] * fd[((u * fw + v) * c + ci) * fo + q];
              } else {
                const g = Math.floor(o / (fo / groups));
                for (let k = 0; k < fi; k++) {
                  const ci = g * fi + k;
                  sum += xd[((b * h + iy) * w + ix) * c + ci] *
                    fd[((u * fw + v) * fi + k) * fo + o];
                }
              }
            }
          }
          out[((b * oh + i) * ow + j) * oc + o] = sum;
        }
      }
    }
  }
  return new Tensor(DataType.DT_FLOAT, [n, oh, ow, oc], Float32Array.from(out));
}

function convAttrs(s: ConvSpec, format = "NHWC"): Attrs {
  const nchw = format === "NCHW";
  const four = (p: [number, number]) => nchw ? [1, 1, p[0], p[1]] : [1, p[0], p[1], 1];
  const a: Attrs = {
    T: attr.type(DataType.DT_FLOAT),
    strides: attr.ints(four(s.strides)),
    padding: attr.string(s.padding),
    data_format: attr.string(format),
  };
  if (s.dilations) a.dilations = attr.ints(four(s.dilations));
  if (s.explicit) {
    const [t, b, l, r] = s.explicit;
    a.explicit_paddings = attr.ints(
      nchw ? [0, 0, 0, 0, t, b, l, r] : [0, 0, t, b, l, r, 0, 0],
    );
  }
  return a;
}

function nhwcToNchw(t: Tensor): Tensor {
  const [n, h, w, c] = t.shape;
  const d = t.data as Float32Array;
  const o = new Float32Array(d.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) {
          o[((b * c + ch) * h + y) * w + x] = d[((b * h + y) * w + x) * c + ch];
        }
      }
    }
  }
  return f32(Array.from(o), [n, c, h, w]);
}

Deno.test("windowed output size and padding (kernel_shape_util.cc)", () => {
  // SAME: out = ceil(in / stride), pad_before = floor(total / 2).
  assert.deepEqual(windowedOutputSize(5, 3, 1, 2, "SAME", 0, 0), [3, 1]);
  assert.deepEqual(windowedOutputSize(4, 3, 1, 2, "SAME", 0, 0), [2, 0]);
  assert.deepEqual(windowedOutputSize(10, 4, 1, 3, "SAME", 0, 0), [4, 1]);
  assert.deepEqual(windowedOutputSize(3, 3, 2, 1, "SAME", 0, 0), [3, 2]);
  assert.deepEqual(windowedOutputSize(1, 5, 1, 1, "SAME", 0, 0), [1, 2]);
  // VALID: (in - eff + stride) / stride, truncated.
  assert.deepEqual(windowedOutputSize(5, 3, 1, 2, "VALID", 0, 0), [2, 0]);
  assert.deepEqual(windowedOutputSize(7, 3, 2, 1, "VALID", 0, 0), [3, 0]);
  assert.deepEqual(windowedOutputSize(1, 4, 1, 2, "VALID", 0, 0), [0, 0]);
  assert.deepEqual(windowedOutputSize(5, 2, 1, 2, "EXPLICIT", 1, 2), [4, 1]);
  throwsCode(
    () => windowedOutputSize(2, 5, 1, 1, "VALID", 0, 0),
    Code.INVALID_ARGUMENT,
    "Computed output size would be negative: -2 [input_size: 2, effective_filter_size: 5, stride: 1]",
  );
});

Deno.test("Conv2D", async (t) => {
  const img3 = f32(range(9), [1, 3, 3, 1]);
  const ones3 = f32(Array(9).fill(1), [3, 3, 1, 1]);
  await t.step("1x1 mixes channels", () => {
    const x = f32(range(8), [1, 2, 2, 2]);
    const f = f32([1, 0, 2, 0, 1, -1], [1, 1, 2, 3]);
    const y = run1("Conv2D", [x, f], convAttrs({ strides: [1, 1], padding: "VALID" }));
    assert.deepEqual(y.shape, [1, 2, 2, 3]);
    assert.deepEqual(Array.from(y.data as Float32Array), [1, 2, 0, 3, 4, 2, 5, 6, 4, 7, 8, 6]);
  });
  await t.step("3x3 SAME stride 1", () => {
    const y = run1("Conv2D", [img3, ones3], convAttrs({ strides: [1, 1], padding: "SAME" }));
    assert.deepEqual(y.shape, [1, 3, 3, 1]);
    assert.deepEqual(Array.from(y.data as Float32Array), [12, 21, 16, 27, 45, 33, 24, 39, 28]);
  });
  await t.step("3x3 VALID", () => {
    const y = run1("Conv2D", [img3, ones3], convAttrs({ strides: [1, 1], padding: "VALID" }));
    assert.deepEqual(y.shape, [1, 1, 1, 1]);
    assert.deepEqual(Array.from(y.data as Float32Array), [45]);
  });
  await t.step("3x3 SAME stride 2 (odd input: padding 1 before)", () => {
    const y = run1("Conv2D", [img3, ones3], convAttrs({ strides: [2, 2], padding: "SAME" }));
    assert.deepEqual(y.shape, [1, 2, 2, 1]);
    assert.deepEqual(Array.from(y.data as Float32Array), [12, 16, 24, 28]);
  });
  await t.step("3x3 SAME stride 2 (even input: padding only after)", () => {
    const x = f32(range(16), [1, 4, 4, 1]);
    const y = run1("Conv2D", [x, ones3], convAttrs({ strides: [2, 2], padding: "SAME" }));
    assert.deepEqual(y.shape, [1, 2, 2, 1]);
    assert.deepEqual(Array.from(y.data as Float32Array), [54, 45, 72, 54]);
  });
  await t.step("3x3 VALID stride 2", () => {
    const x = f32(range(25), [1, 5, 5, 1]);
    const y = run1("Conv2D", [x, ones3], convAttrs({ strides: [2, 2], padding: "VALID" }));
    assert.deepEqual(y.shape, [1, 2, 2, 1]);
    // Windows at rows/cols 0-2 and 2-4.
    assert.deepEqual(Array.from(y.data as Float32Array), [63, 81, 153, 171]);
  });
  await t.step("cross-correlation orientation (no flip)", () => {
    const f = f32([1, 0, 0, 0, 0, 0, 0, 0, 0], [3, 3, 1, 1]);
    const y = run1("Conv2D", [img3, f], convAttrs({ strides: [1, 1], padding: "SAME" }));
    assert.deepEqual(Array.from(y.data as Float32Array), [0, 0, 0, 0, 1, 2, 0, 4, 5]);
  });
  await t.step("random multi-channel cases match the naive reference", () => {
    const r = rng(7);
    const specs: [number[], number[], ConvSpec][] = [
      [[2, 7, 6, 3], [3, 3, 3, 4], { strides: [1, 1], padding: "SAME" }],
      [[2, 7, 6, 3], [3, 3, 3, 4], { strides: [2, 2], padding: "SAME" }],
      [[1, 8, 9, 2], [3, 2, 2, 5], { strides: [2, 3], padding: "VALID" }],
      [[1, 9, 9, 2], [3, 3, 2, 3], { strides: [1, 1], dilations: [2, 2], padding: "SAME" }],
      [[1, 9, 8, 2], [2, 3, 2, 3], { strides: [2, 1], dilations: [2, 3], padding: "VALID" }],
      [[1, 5, 6, 3], [3, 3, 3, 2], {
        strides: [1, 2],
        padding: "EXPLICIT",
        explicit: [1, 2, 0, 3],
      }],
      // Grouped: 4 input channels, filter depth 2 → 2 groups of 3 outputs.
      [[1, 5, 5, 4], [3, 3, 2, 6], { strides: [1, 1], padding: "SAME" }],
      [[3, 4, 4, 5], [1, 1, 5, 7], { strides: [1, 1], padding: "VALID" }],
    ];
    for (const [xs, fs, spec] of specs) {
      const x = randomTensor(xs, r), f = randomTensor(fs, r);
      const want = refConv(x, f, spec);
      const got = run1("Conv2D", [x, f], convAttrs(spec));
      assert.deepEqual(got.shape, want.shape, JSON.stringify(spec));
      assertClose(got.data as Float32Array, want.data as Float32Array, 1e-5);
      // NCHW: transposed in, transposed out.
      const gotT = run1("Conv2D", [nhwcToNchw(x), f], convAttrs(spec, "NCHW"));
      const wantT = nhwcToNchw(want);
      assert.deepEqual(gotT.shape, wantT.shape);
      assertClose(gotT.data as Float32Array, wantT.data as Float32Array, 1e-5);
    }
  });
  await t.step("float64", () => {
    const x = f64(range(9), [1, 3, 3, 1]);
    const f = f64(Array(9).fill(1), [3, 3, 1, 1]);
    const y = run1("Conv2D", [x, f], convAttrs({ strides: [1, 1], padding: "SAME" }));
    assert.ok(y.data instanceof Float64Array);
    assert.deepEqual(Array.from(y.data), [12, 21, 16, 27, 45, 33, 24, 39, 28]);
  });
  await t.step("errors", () => {
    const a = convAttrs({ strides: [1, 1], padding: "VALID" });
    throwsCode(
      () => run1("Conv2D", [f32(range(9), [3, 3, 1]), ones3], a),
      Code.INVALID_ARGUMENT,
      "input must be 4-dimensional",
    );
    throwsCode(
      () => run1("Conv2D", [f32(range(18), [1, 3, 3, 2]), f32(range(27), [3, 3, 3, 1])], a),
      Code.INVALID_ARGUMENT,
      "input depth must be evenly divisible by filter depth: 2 vs 3",
    );
    throwsCode(
      () => run1("Conv2D", [f32([1], [1, 1, 1, 1]), ones3], a),
      Code.INVALID_ARGUMENT,
      "Computed output size would be negative: -1",
    );
    // A window just too large gives an empty output, not an error (as upstream).
    const empty = run1("Conv2D", [f32(range(4), [1, 2, 2, 1]), ones3], a);
    assert.deepEqual(empty.shape, [1, 0, 0, 1]);
    throwsCode(
      () => run1("Conv2D", [img3, ones3], { ...a, strides: attr.ints([2, 1, 1, 1]) }),
      Code.INVALID_ARGUMENT,
      "strides in the batch and depth dimensions",
    );
    throwsCode(
      () => run1("Conv2D", [img3, ones3], { ...a, padding: attr.string("EXPLICIT") }),
      Code.INVALID_ARGUMENT,
      "explicit_paddings attribute must contain 8 values, but got: 0",
    );
    throwsCode(
      () =>
        run1("Conv2D", [Tensor.int32(range(9), [1, 3, 3, 1]), ones3], {
          ...a,
          T: attr.type(DataType.DT_INT32),
        }),
      Code.UNIMPLEMENTED,
      "DT_INT32",
    );
  });
});

Deno.test("DepthwiseConv2dNative", async (t) => {
  await t.step("1x1 with multiplier 2", () => {
    const x = f32([1, 2, 3, 4], [1, 1, 2, 2]);
    const f = f32([1, 10, 100, 1000], [1, 1, 2, 2]);
    const y = run1(
      "DepthwiseConv2dNative",
      [x, f],
      convAttrs({ strides: [1, 1], padding: "VALID" }),
    );
    assert.deepEqual(y.shape, [1, 1, 2, 4]);
    assert.deepEqual(Array.from(y.data as Float32Array), [1, 10, 200, 2000, 3, 30, 400, 4000]);
  });
  await t.step("2x2 VALID with multiplier 2", () => {
    // Channel 0 = [1,2,3,4], channel 1 = [5,6,7,8] over the 2x2 image.
    const x = f32([1, 5, 2, 6, 3, 7, 4, 8], [1, 2, 2, 2]);
    // filter[u][v][c][q]: (c0,q0) all ones, (c0,q1) only tap (0,0), (c1,q0) only tap (1,1),
    // (c1,q1) all twos.
    const f = f32([1, 1, 0, 2, 1, 0, 0, 2, 1, 0, 0, 2, 1, 0, 1, 2], [2, 2, 2, 2]);
    const y = run1(
      "DepthwiseConv2dNative",
      [x, f],
      convAttrs({ strides: [1, 1], padding: "VALID" }),
    );
    assert.deepEqual(y.shape, [1, 1, 1, 4]);
    assert.deepEqual(Array.from(y.data as Float32Array), [10, 1, 8, 52]);
  });
  await t.step("random cases match the naive reference (also NCHW)", () => {
    const r = rng(11);
    const specs: [number[], number[], ConvSpec][] = [
      [[2, 6, 7, 3], [3, 3, 3, 2], { strides: [1, 1], padding: "SAME" }],
      [[1, 7, 7, 4], [3, 3, 4, 1], { strides: [2, 2], padding: "SAME" }],
      [[1, 8, 6, 2], [2, 3, 2, 3], { strides: [2, 1], padding: "VALID" }],
      [[1, 8, 8, 2], [3, 3, 2, 2], { strides: [1, 1], dilations: [2, 2], padding: "SAME" }],
    ];
    for (const [xs, fs, spec] of specs) {
      const x = randomTensor(xs, r), f = randomTensor(fs, r);
      const want = refConv(x, f, spec, true);
      const got = run1("DepthwiseConv2dNative", [x, f], convAttrs(spec));
      assert.deepEqual(got.shape, want.shape);
      assertClose(got.data as Float32Array, want.data as Float32Array, 1e-5);
      const gotT = run1("DepthwiseConv2dNative", [nhwcToNchw(x), f], convAttrs(spec, "NCHW"));
      assertClose(gotT.data as Float32Array, nhwcToNchw(want).data as Float32Array, 1e-5);
    }
  });
  await t.step("depth mismatch", () => {
    throwsCode(
      () =>
        run1(
          "DepthwiseConv2dNative",
          [f32(range(8), [1, 2, 2, 2]), f32(range(3), [1, 1, 3, 1])],
          convAttrs({ strides: [1, 1], padding: "VALID" }),
        ),
      Code.INVALID_ARGUMENT,
      "input and filter must have the same depth: 2 vs 3",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Pooling

function poolAttrs(k: number, s: number, padding: string, extra: Attrs = {}): Attrs {
  return {
    ksize: attr.ints([1, k, k, 1]),
    strides: attr.ints([1, s, s, 1]),
    padding: attr.string(padding),
    ...extra,
  };
}

Deno.test("MaxPool / AvgPool", async (t) => {
  const img3 = f32(range(9), [1, 3, 3, 1]);
  await t.step("2x2 stride 2 SAME: edge windows are clipped", () => {
    const m = run1("MaxPool", [img3], poolAttrs(2, 2, "SAME"));
    assert.deepEqual(m.shape, [1, 2, 2, 1]);
    assert.deepEqual(Array.from(m.data as Float32Array), [5, 6, 8, 9]);
    const a = run1("AvgPool", [img3], poolAttrs(2, 2, "SAME"));
    // AvgPool divides by the number of valid elements, not the window size.
    assert.deepEqual(Array.from(a.data as Float32Array), [3, 4.5, 7.5, 9]);
  });
  await t.step("3x3 stride 1 SAME", () => {
    const a = run1("AvgPool", [img3], poolAttrs(3, 1, "SAME"));
    assertClose(a.data as Float32Array, [3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7]);
    // Padding never wins a max, even when every value is negative.
    const neg = f32(range(9).map((v) => -v), [1, 3, 3, 1]);
    const m = run1("MaxPool", [neg], poolAttrs(3, 1, "SAME"));
    assert.deepEqual(Array.from(m.data as Float32Array), [-1, -1, -2, -1, -1, -2, -4, -4, -5]);
  });
  await t.step("VALID, multi-channel, batch", () => {
    // 2 images, 4x4, 2 channels (channel 1 = -channel 0).
    const vals: number[] = [];
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < 16; i++) vals.push(i + 16 * b, 0 - (i + 16 * b));
    }
    const x = f32(vals, [2, 4, 4, 2]);
    const m = run1("MaxPool", [x], poolAttrs(2, 2, "VALID"));
    assert.deepEqual(m.shape, [2, 2, 2, 2]);
    assert.deepEqual(
      Array.from(m.data as Float32Array),
      [5, 0, 7, -2, 13, -8, 15, -10, 21, -16, 23, -18, 29, -24, 31, -26],
    );
    const a = run1("AvgPool", [x], poolAttrs(2, 2, "VALID"));
    assert.deepEqual(
      Array.from(a.data as Float32Array).slice(0, 4),
      [2.5, -2.5, 4.5, -4.5],
    );
  });
  await t.step("NCHW equals NHWC transposed", () => {
    const r = rng(3);
    const x = randomTensor([2, 5, 6, 3], r);
    for (const op of ["MaxPool", "AvgPool"]) {
      const want = run1(op, [x], poolAttrs(3, 2, "SAME"));
      const got = run1(op, [nhwcToNchw(x)], {
        ksize: attr.ints([1, 1, 3, 3]),
        strides: attr.ints([1, 1, 2, 2]),
        padding: attr.string("SAME"),
        data_format: attr.string("NCHW"),
      });
      assertClose(got.data as Float32Array, nhwcToNchw(want).data as Float32Array, 1e-6);
    }
  });
  await t.step("MaxPool EXPLICIT and MaxPoolV2", () => {
    const m = run1("MaxPool", [img3], {
      ...poolAttrs(2, 2, "EXPLICIT"),
      explicit_paddings: attr.ints([0, 0, 1, 0, 1, 0, 0, 0]),
    });
    assert.deepEqual(m.shape, [1, 2, 2, 1]);
    assert.deepEqual(Array.from(m.data as Float32Array), [1, 3, 7, 9]);
    const v2 = run1("MaxPoolV2", [img3, Tensor.int32([1, 2, 2, 1]), Tensor.int32([1, 2, 2, 1])], {
      padding: attr.string("SAME"),
    });
    assert.deepEqual(Array.from(v2.data as Float32Array), [5, 6, 8, 9]);
  });
  await t.step("errors", () => {
    throwsCode(
      () =>
        run1("MaxPool", [img3], { ...poolAttrs(2, 2, "VALID"), ksize: attr.ints([2, 2, 2, 1]) }),
      Code.INVALID_ARGUMENT,
      "Pooling is not yet supported on the batch dimension.",
    );
    throwsCode(
      () => run1("AvgPool", [img3], { ...poolAttrs(2, 2, "VALID"), ksize: attr.ints([1, 2]) }),
      Code.INVALID_ARGUMENT,
      "ksize field must specify 4 dimensions",
    );
    throwsCode(
      () => run1("AvgPool", [img3], poolAttrs(2, 2, "EXPLICIT")),
      Code.INVALID_ARGUMENT,
      "padding",
    );
    throwsCode(
      () =>
        run1("MaxPool", [img3], { ...poolAttrs(1, 1, "VALID"), ksize: attr.ints([1, 1, 1, 2]) }),
      Code.UNIMPLEMENTED,
      "depth",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Batch norm

Deno.test("FusedBatchNorm", async (t) => {
  const x = f32([1, 2, 3, 4, -1, 0.5, 10, -3], [1, 2, 2, 2]);
  const scale = f32([1, 2], [2]);
  const offset = f32([0.5, -1], [2]);
  const mean = f32([2, 3], [2]);
  const variance = f32([4, 1], [2]);
  const eps = Math.fround(0.001);
  const inferAttrs = { is_training: attr.bool(false), epsilon: attr.float(0.001) };
  const formula = (v: number, c: number) =>
    (v - [2, 3][c]) / Math.sqrt([4, 1][c] + eps) * [1, 2][c] + [0.5, -1][c];
  const expected = Array.from(x.data as Float32Array, (v, i) => formula(v, i % 2));
  await t.step("V3 inference: formula and six outputs", () => {
    const outs = run("FusedBatchNormV3", [x, scale, offset, mean, variance], inferAttrs);
    assert.equal(outs.length, 6);
    assertClose(outs[0].data as Float32Array, expected, 1e-6);
    assert.deepEqual(outs[0].shape, [1, 2, 2, 2]);
    assert.deepEqual(Array.from(outs[1].data as Float32Array), [2, 3]);
    assert.deepEqual(Array.from(outs[2].data as Float32Array), [4, 1]);
    assert.deepEqual(Array.from(outs[3].data as Float32Array), [2, 3]);
    assert.deepEqual(Array.from(outs[4].data as Float32Array), [4, 1]);
    assert.deepEqual(outs[5].shape, []);
  });
  await t.step("V1 / V2 have five outputs; epsilon default 0.0001", () => {
    for (const op of ["FusedBatchNorm", "FusedBatchNormV2"]) {
      const outs = run(op, [x, scale, offset, mean, variance], { is_training: attr.bool(false) });
      assert.equal(outs.length, 5);
      const e2 = Array.from(
        x.data as Float32Array,
        (v, i) =>
          (v - [2, 3][i % 2]) / Math.sqrt([4, 1][i % 2] + Math.fround(0.0001)) * [1, 2][i % 2] +
          [0.5, -1][i % 2],
      );
      assertClose(outs[0].data as Float32Array, e2, 1e-6);
    }
  });
  await t.step("NCHW equals NHWC transposed", () => {
    const outs = run("FusedBatchNormV3", [nhwcToNchw(x), scale, offset, mean, variance], {
      ...inferAttrs,
      data_format: attr.string("NCHW"),
    });
    const want = nhwcToNchw(f32(expected, [1, 2, 2, 2]));
    assertClose(outs[0].data as Float32Array, want.data as Float32Array, 1e-6);
  });
  await t.step("training computes batch statistics", () => {
    const empty = f32([], [0]);
    const outs = run("FusedBatchNormV3", [x, scale, offset, empty, empty], {
      is_training: attr.bool(true),
      epsilon: attr.float(0.001),
    });
    const c0 = [1, 3, -1, 10], c1 = [2, 4, 0.5, -3];
    const m = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    const v = (a: number[]) => a.reduce((s, x) => s + (x - m(a)) ** 2, 0) / a.length;
    const ms = [m(c0), m(c1)], vs = [v(c0), v(c1)];
    const y = Array.from(
      x.data as Float32Array,
      (val, i) => (val - ms[i % 2]) / Math.sqrt(vs[i % 2] + eps) * [1, 2][i % 2] + [0.5, -1][i % 2],
    );
    assertClose(outs[0].data as Float32Array, y, 1e-5);
    assertClose(outs[1].data as Float32Array, ms, 1e-6);
    assertClose(outs[2].data as Float32Array, vs.map((s) => s * 4 / 3), 1e-6);
    assertClose(outs[3].data as Float32Array, ms, 1e-6);
    assertClose(outs[4].data as Float32Array, vs, 1e-6);
  });
  await t.step("errors", () => {
    throwsCode(
      () =>
        run("FusedBatchNormV3", [f32([1, 2], [1, 2]), scale, offset, mean, variance], inferAttrs),
      Code.INVALID_ARGUMENT,
      "input must be 4 or 5-dimensional",
    );
    throwsCode(
      () => run("FusedBatchNormV3", [x, f32([1, 2, 3], [3]), offset, mean, variance], inferAttrs),
      Code.INVALID_ARGUMENT,
      "scale must have the same number of elements as the channels of x, got 3 and 2",
    );
    throwsCode(
      () => run("FusedBatchNormV3", [x, scale, offset, f32([1], [1]), variance], inferAttrs),
      Code.INVALID_ARGUMENT,
      "mean must have the same number of elements as the channels of x, got 1 and 2",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Fused kernels

/** The three-op chain MatMul → Add → Softmax, naively in float64. */
function naiveDenseSoftmax(
  x: Tensor,
  w: Tensor,
  b: Tensor,
  transA: boolean,
  transB: boolean,
): number[] {
  const xd = x.data as Float32Array, wd = w.data as Float32Array, bd = b.data as Float32Array;
  const n = transA ? x.shape[1] : x.shape[0];
  const k = transA ? x.shape[0] : x.shape[1];
  const m = transB ? w.shape[0] : w.shape[1];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const logits: number[] = [];
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) {
        s += (transA ? xd[q * n + i] : xd[i * k + q]) * (transB ? wd[j * k + q] : wd[q * m + j]);
      }
      logits.push(s + bd[j]);
    }
    const max = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - max));
    const sum = e.reduce((a, c) => a + c, 0);
    out.push(...e.map((v) => v / sum));
  }
  return out;
}

Deno.test("_FusedDenseSoftmax", async (t) => {
  const r = rng(42);
  await t.step("equals the naive MatMul → Add → Softmax chain on random data", () => {
    for (const [n, k, m] of [[7, 13, 5], [1, 1, 1], [4, 64, 10], [3, 5, 1]]) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const x = randomTensor(transA ? [k, n] : [n, k], r, 3);
          const w = randomTensor(transB ? [m, k] : [k, m], r, 2);
          const b = randomTensor([m], r);
          const y = run1("_FusedDenseSoftmax", [x, w, b], {
            transpose_a: attr.bool(transA),
            transpose_b: attr.bool(transB),
          });
          assert.deepEqual(y.shape, [n, m]);
          assertClose(y.data as Float32Array, naiveDenseSoftmax(x, w, b, transA, transB), 1e-6);
        }
      }
    }
  });
  await t.step("equals _FusedMatMul(BiasAdd) followed by Softmax", () => {
    const x = randomTensor([5, 8], r), w = randomTensor([8, 6], r), b = randomTensor([6], r);
    const fused = run1("_FusedMatMul", [x, w, b], { fused_ops: attr.strings(["BiasAdd"]) });
    const chained = run1("Softmax", [fused]);
    const direct = run1("_FusedDenseSoftmax", [x, w, b]);
    assertClose(direct.data as Float32Array, chained.data as Float32Array, 1e-6);
  });
  await t.step("large logits do not overflow", () => {
    const x = f32([1000, 2000], [1, 2]);
    const w = f32([1, 0, 0, 1], [2, 2]);
    const y = run1("_FusedDenseSoftmax", [x, w, f32([0, 0], [2])]);
    assert.deepEqual(Array.from(y.data as Float32Array), [0, 1]);
  });
  await t.step("float64", () => {
    const x = f64([1, 2], [1, 2]), w = f64([1, 0, 0, 1], [2, 2]), b = f64([0, 0], [2]);
    const y = run1("_FusedDenseSoftmax", [x, w, b]);
    assert.ok(y.data instanceof Float64Array);
    assertClose(y.data, [1 / (1 + Math.E), Math.E / (1 + Math.E)], 1e-14);
  });
  await t.step("bias [1, m] is accepted, errors otherwise", () => {
    const x = f32([1, 2], [1, 2]), w = f32([1, 0, 0, 1], [2, 2]);
    run1("_FusedDenseSoftmax", [x, w, f32([0, 0], [1, 2])]);
    throwsCode(
      () => run1("_FusedDenseSoftmax", [x, w, f32([0, 0, 0], [3])]),
      Code.INVALID_ARGUMENT,
      "Must provide as many biases",
    );
    throwsCode(
      () => run1("_FusedDenseSoftmax", [x, f32([1, 2, 3], [3, 1]), f32([0], [1])]),
      Code.INVALID_ARGUMENT,
      "Matrix size-incompatible: In[0]: [1,2], In[1]: [3,1]",
    );
    throwsCode(
      () => run1("_FusedDenseSoftmax", [f32([1, 2], [2]), w, f32([0, 0], [2])]),
      Code.INVALID_ARGUMENT,
      "In[0] is not a matrix. Instead it has shape [2]",
    );
  });
});

Deno.test("_FusedMatMul", async (t) => {
  const x = f32([1, -2, 3, 4], [2, 2]);
  const w = f32([1, 2, 3, -1, 0, 5], [2, 3]);
  const b = f32([0.5, -10, 1], [3]);
  // x·w = [[3, 2, -7], [-1, 6, 29]]; + b = [[3.5, -8, -6], [-0.5, -4, 30]].
  const biased = [3.5, -8, -6, -0.5, -4, 30];
  const ops = (...o: string[]) => ({ fused_ops: attr.strings(o), num_args: attr.int(1) });
  await t.step("BiasAdd", () => {
    const y = run1("_FusedMatMul", [x, w, b], ops("BiasAdd"));
    assert.deepEqual(Array.from(y.data as Float32Array), biased);
  });
  await t.step("BiasAdd + activations", () => {
    const cases: [string, (v: number) => number][] = [
      ["Relu", (v) => Math.max(v, 0)],
      ["Relu6", (v) => Math.min(Math.max(v, 0), 6)],
      ["Elu", (v) => v < 0 ? Math.expm1(v) : v],
      ["Tanh", Math.tanh],
      ["Sigmoid", (v) => 1 / (1 + Math.exp(-v))],
      ["LeakyRelu", (v) => v > 0 ? v : 0.2 * v],
      [
        "GeluApproximate",
        (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
      ],
    ];
    for (const [act, fn] of cases) {
      const y = run1("_FusedMatMul", [x, w, b], ops("BiasAdd", act));
      assertClose(y.data as Float32Array, biased.map(fn), 1e-6);
    }
    const g = run1("_FusedMatMul", [x, w, b], ops("BiasAdd", "GeluExact"));
    // erf(-0.5 / sqrt 2) etc.: GELU(3.5) ≈ 3.499186, GELU(-0.5) ≈ -0.154269.
    assertClose(
      [(g.data as Float32Array)[0], (g.data as Float32Array)[3]],
      [3.4991859, -0.1542687],
      1e-5,
    );
  });
  await t.step("transpose_b", () => {
    const wt = f32([1, -1, 2, 0, 3, 5], [3, 2]);
    const y = run1("_FusedMatMul", [x, wt, b], { ...ops("BiasAdd"), transpose_b: attr.bool(true) });
    assert.deepEqual(Array.from(y.data as Float32Array), biased);
  });
  await t.step("unsupported fusions are UNIMPLEMENTED listing the ops", () => {
    throwsCode(
      () => run1("_FusedMatMul", [x, w, b], ops("BiasAdd", "Sqrt")),
      Code.UNIMPLEMENTED,
      "Fusion is not implemented: [BiasAdd,Sqrt]",
    );
    throwsCode(
      () => run1("_FusedMatMul", [x, w, b], ops("Relu")),
      Code.UNIMPLEMENTED,
      "[Relu]",
    );
  });
});

Deno.test("_FusedConv2D and _FusedDepthwiseConv2dNative", async (t) => {
  const r = rng(5);
  const spec: ConvSpec = { strides: [2, 2], padding: "SAME" };
  const x = randomTensor([2, 7, 6, 3], r), f = randomTensor([3, 3, 3, 4], r);
  const bias = randomTensor([4], r);
  const conv = run1("Conv2D", [x, f], convAttrs(spec));
  await t.step("BiasAdd + Relu / Relu6 equal the chain", () => {
    for (const act of ["Relu", "Relu6"]) {
      const chain = run1(act, [run1("BiasAdd", [conv, bias])]);
      const y = run1("_FusedConv2D", [x, f, bias], {
        ...convAttrs(spec),
        fused_ops: attr.strings(["BiasAdd", act]),
        num_args: attr.int(1),
      });
      assertClose(y.data as Float32Array, chain.data as Float32Array, 1e-6);
    }
  });
  await t.step("FusedBatchNorm + Relu equals the chain", () => {
    const scale = randomTensor([4], r), offset = randomTensor([4], r), mean = randomTensor([4], r);
    const variance = f32([0.5, 1, 2, 3], [4]);
    const bn = run("FusedBatchNormV3", [conv, scale, offset, mean, variance], {
      is_training: attr.bool(false),
      epsilon: attr.float(0.001),
    })[0];
    const chain = run1("Relu", [bn]);
    const y = run1("_FusedConv2D", [x, f, scale, offset, mean, variance], {
      ...convAttrs(spec),
      fused_ops: attr.strings(["FusedBatchNorm", "Relu"]),
      num_args: attr.int(4),
      epsilon: attr.float(0.001),
    });
    assertClose(y.data as Float32Array, chain.data as Float32Array, 1e-5);
  });
  await t.step("NCHW with BiasAdd", () => {
    const y = run1("_FusedConv2D", [nhwcToNchw(x), f, bias], {
      ...convAttrs(spec, "NCHW"),
      fused_ops: attr.strings(["BiasAdd"]),
      num_args: attr.int(1),
    });
    const want = nhwcToNchw(run1("BiasAdd", [conv, bias]));
    assertClose(y.data as Float32Array, want.data as Float32Array, 1e-6);
  });
  await t.step("depthwise BiasAdd + Relu6", () => {
    const fd = randomTensor([3, 3, 3, 2], r), bd = randomTensor([6], r);
    const dw = run1("DepthwiseConv2dNative", [x, fd], convAttrs(spec));
    const chain = run1("Relu6", [run1("BiasAdd", [dw, bd])]);
    const y = run1("_FusedDepthwiseConv2dNative", [x, fd, bd], {
      ...convAttrs(spec),
      fused_ops: attr.strings(["BiasAdd", "Relu6"]),
      num_args: attr.int(1),
    });
    assertClose(y.data as Float32Array, chain.data as Float32Array, 1e-6);
  });
  await t.step("bad fusions and argument counts", () => {
    throwsCode(
      () =>
        run1("_FusedConv2D", [x, f, bias], {
          ...convAttrs(spec),
          fused_ops: attr.strings(["BiasAdd", "Softmax"]),
        }),
      Code.UNIMPLEMENTED,
      "Fusion is not implemented: [BiasAdd,Softmax]",
    );
    throwsCode(
      () =>
        run1("_FusedConv2D", [x, f, bias], {
          ...convAttrs(spec),
          fused_ops: attr.strings(["FusedBatchNorm"]),
          num_args: attr.int(1),
        }),
      Code.INVALID_ARGUMENT,
      "num_args",
    );
    throwsCode(
      () =>
        run1("_FusedConv2D", [x, f, f32([1, 2], [2])], {
          ...convAttrs(spec),
          fused_ops: attr.strings(["BiasAdd"]),
        }),
      Code.INVALID_ARGUMENT,
      "bias must have 4 elements",
    );
  });
});

Deno.test("every op is registered once", () => {
  const ops = nnKernels.map((k) => k.op);
  assert.equal(new Set(ops).size, ops.length);
  for (
    const op of [
      "Relu",
      "Relu6",
      "Elu",
      "Selu",
      "LeakyRelu",
      "Sigmoid",
      "Tanh",
      "Softplus",
      "Softsign",
      "Softmax",
      "LogSoftmax",
      "BiasAdd",
      "_FusedDenseSoftmax",
      "_FusedMatMul",
      "Conv2D",
      "DepthwiseConv2dNative",
      "MaxPool",
      "AvgPool",
      "FusedBatchNorm",
      "FusedBatchNormV2",
      "FusedBatchNormV3",
      "_FusedConv2D",
    ]
  ) assert.ok(ops.includes(op), op);
});

Deno.test("Conv2DBackpropInput (transposed convolution)", async (t) => {
  const convT = (sizes: number[], filter: Tensor, dy: Tensor, attrs: Attrs) =>
    run1("Conv2DBackpropInput", [Tensor.int32(sizes), filter, dy], {
      T: attr.type(filter.dtype),
      ...attrs,
    });
  const stride = (s: number) => attr.ints([1, s, s, 1]);

  await t.step("hand-computed: each gradient pixel spreads a scaled filter window", () => {
    const f = f32([1, 2, 3, 4], [2, 2, 1, 1]);
    const one = convT([1, 2, 2, 1], f, f32([5], [1, 1, 1, 1]), {
      strides: stride(2),
      padding: attr.string("VALID"),
    });
    assert.deepEqual([...one.shape], [1, 2, 2, 1]);
    assert.deepEqual(Array.from(one.data as Float32Array), [5, 10, 15, 20]);
    const four = convT([1, 4, 4, 1], f, f32([1, 2, 3, 4], [1, 2, 2, 1]), {
      strides: stride(2),
      padding: attr.string("VALID"),
    });
    assert.deepEqual(Array.from(four.data as Float32Array), [
      1,
      2,
      2,
      4,
      3,
      4,
      6,
      8,
      3,
      6,
      4,
      8,
      9,
      12,
      12,
      16,
    ]);
    // Two input channels, one output channel: dx[c] = f[c] · dy.
    const ch = convT([1, 1, 1, 2], f32([2, 3], [1, 1, 2, 1]), f32([4], [1, 1, 1, 1]), {
      strides: stride(1),
      padding: attr.string("SAME"),
    });
    assert.deepEqual(Array.from(ch.data as Float32Array), [8, 12]);
    // input_sizes may give only H and W; batch and depth come from out_backprop and the filter.
    const hw = convT([2, 2], f, f32([5], [1, 1, 1, 1]), {
      strides: stride(2),
      padding: attr.string("VALID"),
    });
    assert.deepEqual([...hw.shape], [1, 2, 2, 1]);
    assert.deepEqual(Array.from(hw.data as Float32Array), [5, 10, 15, 20]);
  });

  await t.step("is the adjoint of Conv2D: <conv(x), dy> = <x, convT(dy)>", () => {
    const r = rng(11);
    const configs: { x: number[]; f: number[]; attrs: Attrs }[] = [
      { x: [2, 5, 5, 3], f: [3, 3, 3, 4], attrs: { padding: attr.string("SAME") } },
      { x: [1, 7, 6, 2], f: [3, 2, 2, 3], attrs: { padding: attr.string("VALID") } },
      { x: [2, 6, 6, 2], f: [3, 3, 2, 2], attrs: { padding: attr.string("SAME") } },
      { x: [1, 8, 7, 1], f: [4, 3, 1, 2], attrs: { padding: attr.string("SAME") } },
      {
        x: [1, 5, 6, 2],
        f: [2, 3, 2, 3],
        attrs: {
          padding: attr.string("EXPLICIT"),
          explicit_paddings: attr.ints([0, 0, 1, 2, 0, 1, 0, 0]),
        },
      },
    ];
    for (const s of [1, 2, 3]) {
      for (const d of [1, 2]) {
        for (const c of configs) {
          if (s > 1 && d > 1) continue; // Conv2D's own constraint does not apply, keep it simple
          const attrs: Attrs = {
            strides: stride(s),
            dilations: attr.ints([1, d, d, 1]),
            ...c.attrs,
          };
          const x = randomTensor(c.x, r);
          const f = randomTensor(c.f, r);
          const y = run1("Conv2D", [x, f], { T: attr.type(DataType.DT_FLOAT), ...attrs });
          if (y.size === 0) continue;
          const dy = randomTensor([...y.shape], r);
          const dx = convT(c.x, f, dy, attrs);
          assert.deepEqual([...dx.shape], c.x);
          let lhs = 0, rhs = 0;
          const yv = y.data as Float32Array, dyv = dy.data as Float32Array;
          for (let i = 0; i < yv.length; i++) lhs += yv[i] * dyv[i];
          const xv = x.data as Float32Array, dxv = dx.data as Float32Array;
          for (let i = 0; i < xv.length; i++) rhs += xv[i] * dxv[i];
          assertClose([rhs], [lhs], 1e-4);
        }
      }
    }
  });

  await t.step("NCHW and float64 agree with NHWC", () => {
    const r = rng(5);
    const x = [1, 4, 5, 2];
    const f = randomTensor([3, 3, 2, 3], r);
    const attrs = { strides: stride(2), padding: attr.string("SAME") };
    const dy = randomTensor([1, 2, 3, 3], r);
    const nhwc = convT(x, f, dy, attrs);
    // NHWC → NCHW of dy, and back for the result.
    const toNCHW = (t: Tensor) => {
      const [n, h, w, c] = t.shape;
      const v = t.data as Float32Array;
      const out = new Float32Array(v.length);
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < h * w; i++) {
          for (let ch = 0; ch < c; ch++) {
            out[((b * c + ch) * h * w) + i] = v[(b * h * w + i) * c + ch];
          }
        }
      }
      return f32(Array.from(out), [n, c, h, w]);
    };
    const nchw = convT([1, 2, 4, 5], f, toNCHW(dy), {
      strides: attr.ints([1, 1, 2, 2]),
      padding: attr.string("SAME"),
      data_format: attr.string("NCHW"),
    });
    assert.deepEqual([...nchw.shape], [1, 2, 4, 5]);
    assertClose(
      Array.from(nchw.data as Float32Array),
      Array.from(toNCHW(nhwc).data as Float32Array),
    );
    const d64 = convT(
      x,
      f64(Array.from(f.data as Float32Array), [...f.shape]),
      f64(Array.from(dy.data as Float32Array), [...dy.shape]),
      attrs,
    );
    assert.equal(d64.dtype, DataType.DT_DOUBLE);
    assertClose(Array.from(d64.data as Float64Array), Array.from(nhwc.data as Float32Array), 1e-5);
  });

  await t.step("shape errors as TensorFlow's CPU kernel words them", () => {
    const f = f32([1, 2, 3, 4], [2, 2, 1, 1]);
    const valid2 = { strides: stride(2), padding: attr.string("VALID") };
    throwsCode(
      () => convT([1, 4, 4, 1], f, f32(range(9), [1, 3, 3, 1]), valid2),
      Code.INVALID_ARGUMENT,
      "Conv2DCustomBackpropInput: Size of out_backprop doesn't match computed: actual = 3, " +
        "computed = 2 spatial_dim: 1 input: 4 filter: 2 output: 3 stride: 2 dilation: 1",
    );
    throwsCode(
      () => convT([1, 2, 2, 2], f32(range(8), [2, 2, 2, 1]), f32([1, 2], [2, 1, 1, 1]), valid2),
      Code.INVALID_ARGUMENT,
      "Conv2DCustomBackpropInput: input and out_backprop must have the same batch size. " +
        "Input batch: 1, outbackprop batch: 2, batch_dim: 0",
    );
    throwsCode(
      () => convT([1, 2, 2, 4], f32(range(8), [2, 2, 2, 1]), f32([1], [1, 1, 1, 1]), valid2),
      Code.INVALID_ARGUMENT,
      "Gradients for grouped convolutions are not supported on CPU. Please file a feature " +
        "request if you run into this issue. Computed input depth 4 doesn't match filter input " +
        "depth 2",
    );
    throwsCode(
      () => convT([1, 2, 2, 3], f32(range(8), [2, 2, 2, 1]), f32([1], [1, 1, 1, 1]), valid2),
      Code.INVALID_ARGUMENT,
      "Conv2DCustomBackpropInput: input depth must be evenly divisible by filter depth",
    );
    throwsCode(
      () => convT([1, 2, 2, 1], f, f32([1, 2], [1, 1, 1, 2]), valid2),
      Code.INVALID_ARGUMENT,
      "Conv2DCustomBackpropInput: filter and out_backprop must have the same out_depth",
    );
    throwsCode(
      () => convT([1, 2, 2], f, f32([1], [1, 1, 1, 1]), valid2),
      Code.INVALID_ARGUMENT,
      "Conv2DBackpropInput requires input_sizes to contain 4 values or 2 values, but got: 3",
    );
    throwsCode(
      () => convT([2, 2], f, f32([1], [1, 1, 1]), valid2),
      Code.INVALID_ARGUMENT,
      "input_sizes must be 4-dimensional, got: 3",
    );
    throwsCode(
      () => convT([-2, 2], f, f32([1], [1, 1, 1, 1]), valid2),
      Code.INVALID_ARGUMENT,
      "Conv2DBackpropInput: elements of input_sizes must be >= 0, not -2x2",
    );
    throwsCode(
      () =>
        run1(
          "Conv2DBackpropInput",
          [Tensor.int32([2, 2], [1, 2]), f, f32([1], [1, 1, 1, 1])],
          valid2,
        ),
      Code.INVALID_ARGUMENT,
      "Conv2DBackpropInput: input_sizes input must be 1-dim, not 2",
    );
    throwsCode(
      () =>
        convT([1, 2, 2, 1], f, f32([1], [1, 1, 1, 1]), {
          strides: attr.ints([2, 1, 1, 1]),
          padding: attr.string("VALID"),
        }),
      Code.INVALID_ARGUMENT,
      "strides in the batch and depth dimensions",
    );
    throwsCode(
      () =>
        convT(
          [1, 2, 2, 1],
          new Tensor(DataType.DT_INT32, [2, 2, 1, 1], Int32Array.from([1, 2, 3, 4])),
          f32([1], [1, 1, 1, 1]),
          valid2,
        ),
      Code.UNIMPLEMENTED,
      "DT_INT32",
    );
  });
});

Deno.test("AvgPool's JavaScript loop (float64, and float32 windows over 64 taps) equals a reference", () => {
  let seed = 17;
  const rand = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % k;
  };
  for (let t = 0; t < 40; t++) {
    const n = 1 + rand(2), h = 1 + rand(12), w = 1 + rand(12), c = 1 + rand(11);
    const big = t % 2 === 0; // float32 with a window of more than 64 taps: the JavaScript loop
    const k = big ? 9 + rand(4) : 1 + rand(4), s = 1 + rand(3);
    const padding = ["SAME", "VALID"][rand(2)];
    if (padding === "VALID" && (k > h || k > w)) continue;
    const values = Array.from({ length: n * h * w * c }, () => (rand(20001) - 10000) / 313);
    const x = big ? Tensor.float32(values, [n, h, w, c]) : f64(values, [n, h, w, c]);
    const xd = x.data as Float32Array | Float64Array;
    const got = run1("AvgPool", [x], poolAttrs(k, s, padding));
    const [, oh, ow] = got.shape;
    // Reference: the window's valid taps, summed in float64 in (row, column) order.
    const padT = padding === "SAME" ? Math.max(0, ((oh - 1) * s + k - h) >> 1) : 0;
    const padL = padding === "SAME" ? Math.max(0, ((ow - 1) * s + k - w) >> 1) : 0;
    const want: number[] = [];
    for (let b = 0; b < n; b++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          for (let ch = 0; ch < c; ch++) {
            let sum = 0, count = 0;
            for (let iy = oy * s - padT; iy < oy * s - padT + k; iy++) {
              for (let ix = ox * s - padL; ix < ox * s - padL + k; ix++) {
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                sum += xd[((b * h + iy) * w + ix) * c + ch];
                count++;
              }
            }
            want.push(big ? Math.fround(sum * (1 / count)) : sum * (1 / count));
          }
        }
      }
    }
    assert.deepEqual(Array.from(got.data as Float32Array), want, `${[n, h, w, c]} k ${k} s ${s}`);
  }
});
