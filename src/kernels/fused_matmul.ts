/**
 * The fused dense kernels: `_FusedMatMul` (x·W with a fused epilogue, `matmul_op_fused.cc`) and
 * `_FusedDenseSoftmax` (softmax(x·W + b) in one node). Float32 products of weights run in
 * WebAssembly (`wasm/dense.ts`, `wasm/conv.ts`); the rest accumulates in float64.
 *
 * @module
 */
import { type Shape, shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import { denseF32, isWeightSource } from "./wasm/dense.ts";
import {
  allocLike,
  checkArity,
  checkTypeAttr,
  type FloatArray,
  floatData,
  invalid,
  sameFloat,
  Scratch,
} from "./nn_common.ts";
import { buildEpilogue, finish, fusionPlan } from "./epilogue.ts";
import { activate } from "./activation.ts";

/** Shapes of a validated x·W product. */
interface DenseDims {
  n: number;
  k: number;
  m: number;
}

function denseDims(a: Tensor, b: Tensor, transA: boolean, transB: boolean): DenseDims {
  if (a.rank !== 2) {
    throw invalid(`In[0] is not a matrix. Instead it has shape ${shapeString(a.shape)}`);
  }
  if (b.rank !== 2) {
    throw invalid(`In[1] is not a matrix. Instead it has shape ${shapeString(b.shape)}`);
  }
  const n = transA ? a.shape[1] : a.shape[0];
  const k = transA ? a.shape[0] : a.shape[1];
  const kb = transB ? b.shape[1] : b.shape[0];
  const m = transB ? b.shape[0] : b.shape[1];
  if (k !== kb) {
    throw invalid(
      `Matrix size-incompatible: In[0]: ${shapeString(a.shape)}, In[1]: ${shapeString(b.shape)}`,
    );
  }
  return { n, k, m };
}

/**
 * acc[0..m) = row `i` of op(x) · op(W). Without transpose_b this is an axpy over W's rows
 * (W is [k, m] row-major, so each row is read contiguously); with it, a dot product per output.
 */
function denseRow(
  x: FloatArray,
  w: FloatArray,
  i: number,
  n: number,
  k: number,
  m: number,
  transA: boolean,
  transB: boolean,
  acc: Float64Array,
): void {
  // Row i of op(x): x[i*k + kk] normally, x[kk*n + i] when x is stored transposed ([k, n]).
  const xo = transA ? i : i * k;
  const xs = transA ? n : 1;
  if (!transB) {
    for (let j = 0; j < m; j++) acc[j] = 0;
    // Four rows of W per sweep over the accumulator: a quarter of the acc loads and stores.
    let kk = 0, xi = xo, wo = 0;
    for (; kk + 4 <= k; kk += 4, xi += 4 * xs, wo += 4 * m) {
      const v0 = x[xi], v1 = x[xi + xs], v2 = x[xi + 2 * xs], v3 = x[xi + 3 * xs];
      const w1 = wo + m, w2 = w1 + m, w3 = w2 + m;
      for (let j = 0; j < m; j++) {
        acc[j] += v0 * w[wo + j] + v1 * w[w1 + j] + v2 * w[w2 + j] + v3 * w[w3 + j];
      }
    }
    for (; kk < k; kk++, xi += xs, wo += m) {
      const v = x[xi];
      for (let j = 0; j < m; j++) acc[j] += v * w[wo + j];
    }
  } else {
    // W stored [m, k]: output j is the dot product of the x row and W row j.
    for (let j = 0, wo = 0; j < m; j++, wo += k) {
      let s = 0;
      for (let kk = 0, xi = xo; kk < k; kk++, xi += xs) s += x[xi] * w[wo + kk];
      acc[j] = s;
    }
  }
}

/** Reads a bias for `m` outputs: 1-D [m] (or [1, …, 1, m], as an Add may carry). */
function denseBias(ctx: KernelContext, b: Tensor, like: Tensor, m: number, out: Shape): FloatArray {
  const data = sameFloat(ctx, b, like, "the bias");
  let ok = b.rank >= 1 && b.shape[b.rank - 1] === m;
  for (let i = 0; ok && i < b.rank - 1; i++) ok = b.shape[i] === 1;
  if (!ok) {
    if (b.rank !== 1) throw invalid(`Biases must be 1D: ${shapeString(b.shape)}`);
    throw invalid(
      "Must provide as many biases as the last dimension of the input tensor: " +
        `${shapeString(b.shape)} vs. ${shapeString(out)}`,
    );
  }
  return data;
}

/**
 * `_FusedDenseSoftmax`: softmax(op(x) · op(W) + b) in one pass per row — dot products into a
 * float64 accumulator, bias added while finding the row max, exp and normalisation written
 * straight into the output row.
 */
function denseSoftmax(
  x: FloatArray,
  w: FloatArray,
  b: FloatArray,
  y: FloatArray,
  d: DenseDims,
  transA: boolean,
  transB: boolean,
  acc: Float64Array,
): void {
  const { n, k, m } = d;
  for (let i = 0, yo = 0; i < n; i++, yo += m) {
    denseRow(x, w, i, n, k, m, transA, transB, acc);
    let max = -Infinity;
    for (let j = 0; j < m; j++) {
      const v = acc[j] + b[j];
      acc[j] = v;
      if (v > max) max = v;
    }
    let sum = 0;
    for (let j = 0; j < m; j++) {
      const e = Math.exp(acc[j] - max);
      acc[j] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let j = 0; j < m; j++) y[yo + j] = acc[j] * inv;
  }
}

const fusedDenseSoftmax: Kernel = {
  op: "_FusedDenseSoftmax",
  compile(ctx: KernelContext): KernelRun {
    checkTypeAttr(ctx);
    const transA = ctx.attr.bool("transpose_a", false);
    const transB = ctx.attr.bool("transpose_b", false);
    // WebAssembly for weights (constants, variables), decided once so every call agrees.
    const wasm = isWeightSource(ctx.inputOps[1] ?? "");
    const scratch = new Scratch();
    return (inputs) => {
      checkArity(ctx, inputs, 3);
      const [a, wt, bt] = inputs;
      const x = floatData(ctx, a);
      const w = sameFloat(ctx, wt, a, "the weight matrix");
      const d = denseDims(a, wt, transA, transB);
      const shape = [d.n, d.m];
      const b = denseBias(ctx, bt, a, d.m, shape);
      if (!transA && wasm && x instanceof Float32Array) {
        // WebAssembly SIMD, float32 accumulation, for weights that persist across runs (null
        // when unavailable: the loop below runs).
        const y = denseF32(x, w as Float32Array, b as Float32Array, d.n, d.k, d.m, transB, true);
        if (y !== null) return [new Tensor(a.dtype, shape, y)];
      }
      const y = allocLike(x, d.n * d.m);
      denseSoftmax(x, w, b, y, d, transA, transB, scratch.get(d.m));
      return [new Tensor(a.dtype, shape, y)];
    };
  },
};

const fusedMatMul: Kernel = {
  op: "_FusedMatMul",
  compile(ctx: KernelContext): KernelRun {
    checkTypeAttr(ctx);
    const transA = ctx.attr.bool("transpose_a", false);
    const transB = ctx.attr.bool("transpose_b", false);
    const wasm = isWeightSource(ctx.inputOps[1] ?? "");
    const plan = fusionPlan(ctx, false);
    const alpha = ctx.attr.float("leakyrelu_alpha", 0.2);
    const scratch = new Scratch();
    return (inputs) => {
      checkArity(ctx, inputs, 2 + plan.numArgs);
      const [a, wt] = inputs;
      const x = floatData(ctx, a);
      const w = sameFloat(ctx, wt, a, "In[1]");
      const d = denseDims(a, wt, transA, transB);
      const shape = [d.n, d.m];
      const ep = buildEpilogue(ctx, plan, inputs.slice(2), a, d.m, shape, 0, alpha);
      if (
        !transA && x instanceof Float32Array && ep.bn === null &&
        wasm
      ) {
        // WebAssembly SIMD for x·W + bias (float32 accumulation, as TensorFlow's kernel); the
        // fused Add and the activation then run in place (null: the loop below runs).
        const y = denseF32(
          x,
          w as Float32Array,
          ep.bias as Float32Array,
          d.n,
          d.k,
          d.m,
          transB,
          false,
        );
        if (y !== null) {
          const side = ep.side;
          if (side !== null) { for (let i = 0; i < y.length; i++) y[i] += side[i]; }
          activate(y, 0, y, 0, y.length, ep.act, ep.alpha);
          return [new Tensor(a.dtype, shape, y)];
        }
      }
      const y = allocLike(x, d.n * d.m);
      const acc = scratch.get(d.m);
      for (let i = 0, yo = 0; i < d.n; i++, yo += d.m) {
        denseRow(x, w, i, d.n, d.k, d.m, transA, transB, acc);
        finish(acc, y, yo, d.m, ep);
      }
      return [new Tensor(a.dtype, shape, y)];
    };
  },
};

/** The fused dense kernels. */
export const fusedMatMulKernels: Kernel[] = [fusedDenseSoftmax, fusedMatMul];
