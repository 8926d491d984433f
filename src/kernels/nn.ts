/**
 * Neural-network kernels: activations, softmax, bias add, 2-D convolution (plain, grouped and
 * depthwise) and its input gradient (the transposed convolution), pooling, batch
 * normalisation, and the fused dense / convolution kernels.
 *
 * Everything computes on Float32Array (the hot path) or Float64Array storage, with float64
 * accumulators so that sums do not lose precision. The loops are self-contained: no helper
 * closures per element, one scratch buffer per compiled node, reused across runs (kernels are
 * synchronous, so a node never runs twice at once).
 *
 * Semantics follow the TensorFlow CPU kernels (`tensorflow/core/kernels/relu_op_functor.h`,
 * `softmax_op.cc`, `bias_op.cc`, `conv_ops.cc`, `depthwise_conv_op.cc`, `pooling_ops_common.cc`,
 * `avgpooling_op.cc`, `fused_batch_norm_op.cc`, `matmul_op_fused.cc`, `conv_ops_fused_impl.h`,
 * `conv_grad_input_ops.h`, `conv_grad_shape_utils.cc`), including window sizes and padding from
 * `framework/kernel_shape_util.cc`.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import { forEachBlock, sameShape, stridedPlan } from "./broadcast.ts";
import { denseF32, isWeightSource } from "./wasm/dense.ts";
import {
  conv2dF32,
  depthwiseF32,
  type HardSwish,
  matmulF32,
  poolF32,
  WasmAct,
} from "./wasm/conv.ts";

/** Storage of the float types these kernels compute on. */
type FloatArray = Float32Array | Float64Array;

const FLOAT_TYPES: readonly DataType[] = [DataType.DT_FLOAT, DataType.DT_DOUBLE];

// ---------------------------------------------------------------------------------------------
// Common helpers
// ---------------------------------------------------------------------------------------------

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

function unimplemented(message: string): ServingError {
  return new ServingError(Code.UNIMPLEMENTED, message);
}

function dtypeError(
  ctx: KernelContext,
  dtype: DataType,
  allowed: readonly DataType[],
): ServingError {
  return unimplemented(
    `${ctx.op} node "${ctx.name}" has no kernel for ${dtypeName(dtype)} ` +
      `(supported: ${allowed.map(dtypeName).join(", ")})`,
  );
}

/** Fails at load time when the node's type attr names a type we have no loop for. */
function checkTypeAttr(
  ctx: KernelContext,
  allowed: readonly DataType[] = FLOAT_TYPES,
  name = "T",
): void {
  if (!ctx.attr.has(name)) return;
  const t = ctx.attr.type(name);
  if (!allowed.includes(t)) throw dtypeError(ctx, t, allowed);
}

/** The float storage of `t`, or UNIMPLEMENTED naming the node and the type. */
function floatData(ctx: KernelContext, t: Tensor): FloatArray {
  if (t.dtype === DataType.DT_FLOAT || t.dtype === DataType.DT_DOUBLE) {
    return t.data as FloatArray;
  }
  throw dtypeError(ctx, t.dtype, FLOAT_TYPES);
}

/** The storage of a further input that must have the same float type as the first one. */
function sameFloat(ctx: KernelContext, t: Tensor, like: Tensor, what: string): FloatArray {
  if (t.dtype !== like.dtype) {
    throw invalid(
      `${ctx.op} node "${ctx.name}": ${what} is ${dtypeName(t.dtype)} but the input is ` +
        dtypeName(like.dtype),
    );
  }
  return t.data as FloatArray;
}

function allocLike(like: FloatArray, n: number): FloatArray {
  return like instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
}

function checkArity(ctx: KernelContext, inputs: Tensor[], n: number): void {
  if (inputs.length < n) {
    throw invalid(`${ctx.op} node "${ctx.name}" expects ${n} inputs, got ${inputs.length}`);
  }
}

/** A growable float64 scratch buffer owned by one compiled node. */
class Scratch {
  #buf = new Float64Array(0);
  /** A buffer of at least `n` elements (contents unspecified). */
  get(n: number): Float64Array {
    if (this.#buf.length < n) this.#buf = new Float64Array(Math.max(n, this.#buf.length * 2));
    return this.#buf;
  }
}

// ---------------------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------------------

/** The element-wise activations, shared by the standalone ops and the fused epilogues. */
enum Act {
  None,
  Relu,
  Relu6,
  Elu,
  Selu,
  LeakyRelu,
  Sigmoid,
  Tanh,
  Softplus,
  Softsign,
  GeluApproximate,
  GeluExact,
}

const SELU_SCALE = 1.0507009873554804934193349852946;
const SELU_SCALE_ALPHA = 1.7580993408473768599402175208123;
// Softplus switches to x / exp(x) where log1p(exp(x)) equals them to the type's precision:
// threshold = log(epsilon) + 2, as in softplus_op.h.
const SOFTPLUS_THRESHOLD_F32 = Math.log(2 ** -23) + 2;
const SOFTPLUS_THRESHOLD_F64 = Math.log(2 ** -52) + 2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const SQRT_HALF = Math.SQRT1_2;

/**
 * erf(x) by the Chebyshev fit of Numerical Recipes' erfcc (fractional error below 1.2e-7 in
 * erfc), enough for GELU on float32 where 1 + erf(x) is what matters.
 */
function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(
    -z * z - 1.26551223 +
      t * (1.00002368 +
          t * (0.37409196 +
              t * (0.09678418 +
                  t * (-0.18628806 +
                      t * (0.27886807 +
                          t *
                            (-1.13520398 +
                              t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return x >= 0 ? 1 - r : r - 1;
}

/**
 * dst[dstOff + i] = act(src[srcOff + i]) for i < n. The switch is outside the loops so each
 * activation is one tight loop. `dst` may be `src` (in place). NaN propagates as in TensorFlow.
 */
function activate(
  src: FloatArray,
  srcOff: number,
  dst: FloatArray,
  dstOff: number,
  n: number,
  act: Act,
  alpha: number,
): void {
  switch (act) {
    case Act.None:
      if (src !== dst || srcOff !== dstOff) {
        for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i];
      }
      return;
    case Act.Relu:
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = v < 0 ? 0 : v;
      }
      return;
    case Act.Relu6:
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = v < 0 ? 0 : v > 6 ? 6 : v;
      }
      return;
    case Act.Elu:
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = v < 0 ? Math.expm1(v) : v;
      }
      return;
    case Act.Selu:
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = v < 0 ? SELU_SCALE_ALPHA * Math.expm1(v) : SELU_SCALE * v;
      }
      return;
    case Act.LeakyRelu:
      // alpha may be > 1 or < 0, so this is a select, not a max (as upstream).
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = v > 0 ? v : v * alpha;
      }
      return;
    case Act.Sigmoid:
      // Two branches so exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below.
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        if (v >= 0) {
          dst[dstOff + i] = 1 / (1 + Math.exp(-v));
        } else {
          const e = Math.exp(v);
          dst[dstOff + i] = e / (1 + e);
        }
      }
      return;
    case Act.Tanh:
      for (let i = 0; i < n; i++) dst[dstOff + i] = Math.tanh(src[srcOff + i]);
      return;
    case Act.Softplus: {
      const th = dst instanceof Float32Array ? SOFTPLUS_THRESHOLD_F32 : SOFTPLUS_THRESHOLD_F64;
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = v > -th ? v : v < th ? Math.exp(v) : Math.log1p(Math.exp(v));
      }
      return;
    }
    case Act.Softsign:
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = v / (1 + Math.abs(v));
      }
      return;
    case Act.GeluApproximate:
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
      }
      return;
    case Act.GeluExact:
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = 0.5 * v * (1 + erf(v * SQRT_HALF));
      }
      return;
  }
}

/** A standalone activation op: same shape out, float types only. */
function activationKernel(op: string, act: Act): Kernel {
  return {
    op,
    compile(ctx: KernelContext): KernelRun {
      checkTypeAttr(ctx);
      // LeakyRelu's alpha defaults to 0.2 (nn_ops.cc); the others ignore it.
      const alpha = act === Act.LeakyRelu ? ctx.attr.float("alpha", 0.2) : 0;
      return (inputs) => {
        checkArity(ctx, inputs, 1);
        const x = inputs[0];
        const src = floatData(ctx, x);
        const n = src.length;
        const dst = allocLike(src, n);
        activate(src, 0, dst, 0, n, act, alpha);
        return [new Tensor(x.dtype, x.shape, dst)];
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Softmax
// ---------------------------------------------------------------------------------------------

/**
 * Softmax (or log-softmax) of each row of `cols` values, numerically stable: the row max is
 * subtracted before exp, so large logits do not overflow. Mirrors Eigen's SoftmaxEigenImpl:
 * exp stored, then multiplied by 1/sum.
 */
function softmaxRows(
  x: FloatArray,
  y: FloatArray,
  rows: number,
  cols: number,
  log: boolean,
): void {
  for (let r = 0, o = 0; r < rows; r++, o += cols) {
    let max = -Infinity;
    for (let j = 0; j < cols; j++) {
      const v = x[o + j];
      if (v > max) max = v;
    }
    // A row of NaN or all -Infinity keeps max = -Infinity; x - max is then NaN, as upstream.
    let sum = 0;
    if (log) {
      for (let j = 0; j < cols; j++) sum += Math.exp(x[o + j] - max);
      const logSum = Math.log(sum);
      for (let j = 0; j < cols; j++) y[o + j] = x[o + j] - max - logSum;
    } else {
      for (let j = 0; j < cols; j++) {
        const e = Math.exp(x[o + j] - max);
        y[o + j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let j = 0; j < cols; j++) y[o + j] *= inv;
    }
  }
}

function softmaxKernel(op: string, log: boolean): Kernel {
  return {
    op,
    compile(ctx: KernelContext): KernelRun {
      checkTypeAttr(ctx);
      return (inputs) => {
        checkArity(ctx, inputs, 1);
        const logits = inputs[0];
        const x = floatData(ctx, logits);
        if (logits.rank < 1) {
          throw invalid(`logits must have >= 1 dimension, got ${shapeString(logits.shape)}`);
        }
        const cols = logits.shape[logits.rank - 1];
        const y = allocLike(x, x.length);
        if (x.length > 0) softmaxRows(x, y, x.length / cols, cols, log);
        return [new Tensor(logits.dtype, logits.shape, y)];
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// BiasAdd
// ---------------------------------------------------------------------------------------------

/** Types BiasAdd adds in plain numbers (storage conversion wraps integers as C++ does). */
const BIAS_NUMBER_TYPES: readonly DataType[] = [
  DataType.DT_FLOAT,
  DataType.DT_DOUBLE,
  DataType.DT_INT32,
  DataType.DT_INT16,
  DataType.DT_INT8,
  DataType.DT_UINT8,
  DataType.DT_UINT16,
  DataType.DT_UINT32,
];
const BIAS_TYPES: readonly DataType[] = [
  ...BIAS_NUMBER_TYPES,
  DataType.DT_INT64,
  DataType.DT_UINT64,
];

/** y = x + bias over layout [outer, channels, inner]. */
function biasAddLoop(
  x: NumericArray,
  b: NumericArray,
  y: NumericArray,
  outer: number,
  channels: number,
  inner: number,
): void {
  if (x instanceof BigInt64Array || x instanceof BigUint64Array) {
    const xb = x as BigInt64Array, bb = b as BigInt64Array, yb = y as BigInt64Array;
    // Storing into a 64-bit array wraps modulo 2^64, matching C++ overflow.
    for (let o = 0, i = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const bc = bb[c];
        for (let k = 0; k < inner; k++, i++) yb[i] = xb[i] + bc;
      }
    }
    return;
  }
  const xn = x as Float32Array, bn = b as Float32Array, yn = y as Float32Array;
  if (inner === 1) {
    for (let o = 0, i = 0; o < outer; o++, i += channels) {
      for (let c = 0; c < channels; c++) yn[i + c] = xn[i + c] + bn[c];
    }
    return;
  }
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const bc = bn[c];
      for (let k = 0; k < inner; k++, i++) yn[i] = xn[i] + bc;
    }
  }
}

function biasAddKernel(op: string, hasFormat: boolean): Kernel {
  return {
    op,
    compile(ctx: KernelContext): KernelRun {
      checkTypeAttr(ctx, BIAS_TYPES);
      const format = hasFormat ? ctx.attr.string("data_format", "NHWC") : "NHWC";
      if (format !== "NHWC" && format !== "NCHW") {
        throw invalid(`Invalid data format "${format}" for ${op} node "${ctx.name}"`);
      }
      const nchw = format === "NCHW";
      return (inputs) => {
        checkArity(ctx, inputs, 2);
        const [input, bias] = inputs;
        if (!BIAS_TYPES.includes(input.dtype)) throw dtypeError(ctx, input.dtype, BIAS_TYPES);
        if (bias.dtype !== input.dtype) {
          throw invalid(
            `${op} node "${ctx.name}": bias is ${dtypeName(bias.dtype)} but the input is ` +
              dtypeName(input.dtype),
          );
        }
        const shape = input.shape;
        if (shape.length < 2) {
          throw invalid(`Input tensor must be at least 2D: ${shapeString(shape)}`);
        }
        if (bias.rank !== 1) throw invalid(`Biases must be 1D: ${shapeString(bias.shape)}`);
        // NCHW keeps channels in dimension 1 whatever the rank; NHWC in the last one.
        const cdim = nchw ? 1 : shape.length - 1;
        const channels = shape[cdim];
        if (bias.shape[0] !== channels) {
          throw invalid(
            "Must provide as many biases as the last dimension of the input tensor: " +
              `${shapeString(bias.shape)} vs. ${shapeString(shape)}`,
          );
        }
        const x = input.data as NumericArray;
        const y = new (x.constructor as new (n: number) => NumericArray)(x.length);
        let outer = 1, inner = 1;
        for (let i = 0; i < cdim; i++) outer *= shape[i];
        for (let i = cdim + 1; i < shape.length; i++) inner *= shape[i];
        biasAddLoop(x, bias.data as NumericArray, y, outer, channels, inner);
        return [new Tensor(input.dtype, shape, y)];
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Dense (MatMul) with fused epilogues
// ---------------------------------------------------------------------------------------------

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

/** What a fused kernel does after its convolution or product, per output row / pixel. */
interface Epilogue {
  /** Bias per output channel (BiasAdd), or null. */
  bias: FloatArray | null;
  /** Batch-norm per channel: y = (v - mean) * scaling + offset; null when absent. */
  bn: { mean: Float64Array; scaling: Float64Array; offset: Float64Array } | null;
  /** A tensor of the output's layout added before the activation (fused Add), or null. */
  side: FloatArray | null;
  act: Act;
  alpha: number;
}

/** Applies `ep` to acc[0..c) and writes the result to y[yo..yo+c). */
function finish(acc: Float64Array, y: FloatArray, yo: number, c: number, ep: Epilogue): void {
  const bias = ep.bias;
  if (bias !== null) {
    for (let j = 0; j < c; j++) acc[j] += bias[j];
  } else if (ep.bn !== null) {
    const { mean, scaling: sc, offset: off } = ep.bn;
    for (let j = 0; j < c; j++) acc[j] = (acc[j] - mean[j]) * sc[j] + off[j];
  }
  const side = ep.side;
  if (side !== null) { for (let j = 0; j < c; j++) acc[j] += side[yo + j]; }
  activate(acc, 0, y, yo, c, ep.act, ep.alpha);
}

const NO_EPILOGUE: Epilogue = {
  bias: null,
  bn: null,
  side: null,
  act: Act.None,
  alpha: 0,
};

const FUSED_ACTIVATIONS: Readonly<Record<string, Act>> = {
  Relu: Act.Relu,
  Relu6: Act.Relu6,
  Elu: Act.Elu,
  LeakyRelu: Act.LeakyRelu,
  Tanh: Act.Tanh,
  Sigmoid: Act.Sigmoid,
  GeluApproximate: Act.GeluApproximate,
  GeluExact: Act.GeluExact,
};

/** A parsed `fused_ops` list: BiasAdd or FusedBatchNorm, an optional Add, an optional activation. */
interface FusionPlan {
  batchNorm: boolean;
  add: boolean;
  act: Act;
  /** Extra inputs after the two operands. */
  numArgs: number;
}

function fusionPlan(ctx: KernelContext, allowBatchNorm: boolean): FusionPlan {
  const ops = ctx.attr.strings("fused_ops", []);
  const fail = () =>
    unimplemented(
      `Fusion is not implemented: [${ops.join(",")}] (${ctx.op} node "${ctx.name}")`,
    );
  if (ops.length === 0) throw invalid(`Fused ${ctx.op} must have at least one fused op.`);
  let i = 0;
  let batchNorm = false;
  if (ops[0] === "BiasAdd") i = 1;
  else if (ops[0] === "FusedBatchNorm" && allowBatchNorm) {
    batchNorm = true;
    i = 1;
  } else throw fail();
  let add = false;
  if (ops[i] === "Add" && !batchNorm) {
    add = true;
    i++;
  }
  let act = Act.None;
  if (i < ops.length) {
    const a = FUSED_ACTIVATIONS[ops[i]];
    if (a === undefined) throw fail();
    act = a;
    i++;
  }
  if (i !== ops.length) throw fail();
  const numArgs = batchNorm ? 4 : add ? 2 : 1;
  if (ctx.attr.has("num_args") && ctx.attr.int("num_args") !== numArgs) {
    throw invalid(
      `Fused ${ctx.op} with [${ops.join(",")}] must have ${numArgs} extra argument(s), ` +
        `num_args is ${ctx.attr.int("num_args")}`,
    );
  }
  return { batchNorm, add, act, numArgs };
}

/** Reads a per-channel 1-D float argument of a fused op as float64. */
function channelVector(
  ctx: KernelContext,
  t: Tensor,
  like: Tensor,
  channels: number,
  what: string,
): FloatArray {
  const d = sameFloat(ctx, t, like, what);
  if (t.rank !== 1) throw invalid(`${what} must be 1-dimensional: ${shapeString(t.shape)}`);
  if (t.shape[0] !== channels) {
    throw invalid(
      `${what} must have ${channels} elements (the output channels), got ${shapeString(t.shape)}`,
    );
  }
  return d;
}

/** Builds the epilogue of a fused op from its extra inputs `args`. */
function buildEpilogue(
  ctx: KernelContext,
  plan: FusionPlan,
  args: Tensor[],
  like: Tensor,
  channels: number,
  outShape: Shape,
  epsilon: number,
  alpha: number,
): Epilogue {
  const ep: Epilogue = { ...NO_EPILOGUE, act: plan.act, alpha };
  if (plan.batchNorm) {
    const scale = channelVector(ctx, args[0], like, channels, "scale");
    const offset = channelVector(ctx, args[1], like, channels, "offset");
    const mean = channelVector(ctx, args[2], like, channels, "mean");
    const variance = channelVector(ctx, args[3], like, channels, "variance");
    const sc = new Float64Array(channels);
    for (let c = 0; c < channels; c++) sc[c] = scale[c] / Math.sqrt(variance[c] + epsilon);
    ep.bn = { mean: Float64Array.from(mean), scaling: sc, offset: Float64Array.from(offset) };
  } else {
    ep.bias = channelVector(ctx, args[0], like, channels, "bias");
    if (plan.add) {
      const side = args[1];
      const d = sameFloat(ctx, side, like, "the fused Add operand");
      if (side.rank !== outShape.length || side.shape.some((s, i) => s !== outShape[i])) {
        throw invalid(
          `Fused Add operand must have the output shape: ${shapeString(side.shape)} vs. ` +
            shapeString(outShape),
        );
      }
      ep.side = d;
    }
  }
  return ep;
}

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

// ---------------------------------------------------------------------------------------------
// Windows: strides, dilations, padding
// ---------------------------------------------------------------------------------------------

type Padding = "SAME" | "VALID" | "EXPLICIT";

/** Window attrs of a 2-D op, resolved to the H and W dimensions. */
interface WindowAttrs {
  nchw: boolean;
  padding: Padding;
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  /** Explicit paddings [top, bottom, left, right] (zeros unless EXPLICIT). */
  pads: [number, number, number, number];
}

function readFormat(ctx: KernelContext): boolean {
  const format = ctx.attr.string("data_format", "NHWC");
  if (format === "NHWC") return false;
  if (format === "NCHW") return true;
  throw unimplemented(
    `${ctx.op} node "${ctx.name}": data_format ${format} is not supported (NHWC, NCHW)`,
  );
}

function readPadding(ctx: KernelContext, allowExplicit: boolean): Padding {
  const p = ctx.attr.string("padding");
  if (p === "SAME" || p === "VALID" || (p === "EXPLICIT" && allowExplicit)) return p;
  throw invalid(`${ctx.op} node "${ctx.name}": invalid padding "${p}"`);
}

/** Validates explicit_paddings as CheckValidPadding does and returns [top, bottom, left, right]. */
function readExplicit(
  ctx: KernelContext,
  padding: Padding,
  nchw: boolean,
): [number, number, number, number] {
  const ep = ctx.attr.ints("explicit_paddings", []);
  if (padding !== "EXPLICIT") {
    if (ep.length !== 0) {
      throw invalid(
        "explicit_paddings attribute must be empty if the padding attribute is not EXPLICIT",
      );
    }
    return [0, 0, 0, 0];
  }
  if (ep.length !== 8) {
    throw invalid(`explicit_paddings attribute must contain 8 values, but got: ${ep.length}`);
  }
  if (ep.some((v) => v < 0)) throw invalid("All elements of explicit_paddings must be nonnegative");
  const [h, w, c] = nchw ? [2, 3, 1] : [1, 2, 3];
  if (ep[0] !== 0 || ep[1] !== 0 || ep[2 * c] !== 0 || ep[2 * c + 1] !== 0) {
    throw invalid("Nonzero explicit padding in the batch or depth dimensions is not supported");
  }
  return [ep[2 * h], ep[2 * h + 1], ep[2 * w], ep[2 * w + 1]];
}

/** strides/dilations attrs of Conv2D-like ops, with upstream's checks. */
function convWindowAttrs(ctx: KernelContext): WindowAttrs {
  const nchw = readFormat(ctx);
  const strides = ctx.attr.ints("strides");
  const dilations = ctx.attr.ints("dilations", [1, 1, 1, 1]);
  if (dilations.length !== 4) {
    throw invalid("Sliding window dilations field must specify 4 dimensions");
  }
  if (strides.length !== 4) throw invalid("Sliding window strides field must specify 4 dimensions");
  const [h, w, c] = nchw ? [2, 3, 1] : [1, 2, 3];
  if (strides[0] !== 1 || strides[c] !== 1) {
    throw invalid(
      "Current implementation does not yet support strides in the batch and depth dimensions.",
    );
  }
  if (!(strides[h] > 0 && strides[w] > 0)) {
    throw invalid("Row and column strides should be larger than 0.");
  }
  if (dilations[0] !== 1 || dilations[c] !== 1) {
    throw invalid(
      "Current implementation does not yet support dilations in the batch and depth dimensions.",
    );
  }
  if (!(dilations[h] > 0 && dilations[w] > 0)) {
    throw invalid("Dilated rates should be larger than 0.");
  }
  const padding = readPadding(ctx, true);
  return {
    nchw,
    padding,
    strideH: strides[h],
    strideW: strides[w],
    dilationH: dilations[h],
    dilationW: dilations[w],
    pads: readExplicit(ctx, padding, nchw),
  };
}

/**
 * Output size and leading padding of one windowed dimension, exactly as
 * GetWindowedOutputSizeVerbose: VALID (in - eff + stride) / stride; SAME ceil(in / stride) with
 * pad_before = floor(pad_needed / 2); EXPLICIT with the given paddings. Division truncates as
 * in C++.
 */
function windowed(
  inSize: number,
  filter: number,
  dilation: number,
  stride: number,
  padding: Padding,
  before: number,
  after: number,
): [number, number] {
  const eff = (filter - 1) * dilation + 1;
  let out: number;
  let padBefore = 0;
  if (padding === "VALID") {
    out = Math.trunc((inSize - eff + stride) / stride);
  } else if (padding === "EXPLICIT") {
    out = Math.trunc((inSize + before + after - eff + stride) / stride);
    padBefore = before;
  } else {
    out = Math.trunc((inSize + stride - 1) / stride);
    const needed = Math.max(0, (out - 1) * stride + eff - inSize);
    padBefore = Math.floor(needed / 2);
  }
  out += 0; // Math.trunc(-0.5) is -0; sizes should print as 0.
  if (out < 0) {
    throw invalid(
      `Computed output size would be negative: ${out} [input_size: ${inSize}, ` +
        `effective_filter_size: ${eff}, stride: ${stride}]`,
    );
  }
  return [out, padBefore];
}

/** Geometry of one NHWC windowed op, resolved for a given input. */
interface Geometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  fh: number;
  fw: number;
  outH: number;
  outW: number;
  outC: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padTop: number;
  padLeft: number;
}

function geometry(
  w: WindowAttrs,
  inShape: Shape,
  fh: number,
  fw: number,
  outC: number,
): Geometry {
  const [batch, inH, inW, inC] = w.nchw
    ? [inShape[0], inShape[2], inShape[3], inShape[1]]
    : [inShape[0], inShape[1], inShape[2], inShape[3]];
  const [outH, padTop] = windowed(
    inH,
    fh,
    w.dilationH,
    w.strideH,
    w.padding,
    w.pads[0],
    w.pads[1],
  );
  const [outW, padLeft] = windowed(
    inW,
    fw,
    w.dilationW,
    w.strideW,
    w.padding,
    w.pads[2],
    w.pads[3],
  );
  return {
    batch,
    inH,
    inW,
    inC,
    fh,
    fw,
    outH,
    outW,
    outC,
    sh: w.strideH,
    sw: w.strideW,
    dh: w.dilationH,
    dw: w.dilationW,
    padTop,
    padLeft,
  };
}

/** NCHW → NHWC copy. */
function toNHWC(x: FloatArray, n: number, c: number, h: number, w: number): FloatArray {
  const y = allocLike(x, x.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const xb = b * c * hw;
    for (let ch = 0; ch < c; ch++) {
      const xc = xb + ch * hw;
      for (let p = 0, yo = xb + ch; p < hw; p++, yo += c) y[yo] = x[xc + p];
    }
  }
  return y;
}

/** NHWC → NCHW copy. */
function toNCHW(x: FloatArray, n: number, h: number, w: number, c: number): FloatArray {
  const y = allocLike(x, x.length);
  const hw = h * w;
  for (let b = 0; b < n; b++) {
    const xb = b * c * hw;
    for (let ch = 0; ch < c; ch++) {
      const yc = xb + ch * hw;
      for (let p = 0, xo = xb + ch; p < hw; p++, xo += c) y[yc + p] = x[xo];
    }
  }
  return y;
}

function outShape(g: Geometry, nchw: boolean): number[] {
  return nchw ? [g.batch, g.outC, g.outH, g.outW] : [g.batch, g.outH, g.outW, g.outC];
}

// ---------------------------------------------------------------------------------------------
// Convolution
// ---------------------------------------------------------------------------------------------

/**
 * NHWC convolution with a [fh, fw, patchDepth, outC] filter; groups = inC / patchDepth. For each
 * output pixel, every valid tap adds x[.., ci] times the filter row [fy, fx, ci, :] (contiguous
 * output channels) into a float64 accumulator; `ep` finishes the pixel.
 */
function conv2dCore(
  x: FloatArray,
  f: FloatArray,
  y: FloatArray,
  g: Geometry,
  patchDepth: number,
  ep: Epilogue,
  acc: Float64Array,
): void {
  const { inH, inW, inC, fh, fw, outH, outW, outC, sh, sw, dh, dw } = g;
  const groups = patchDepth === 0 ? 1 : inC / patchDepth;
  const outPerGroup = outC / groups;
  const tap = patchDepth * outC;
  let yo = 0;
  for (let b = 0; b < g.batch; b++) {
    const xb = b * inH * inW * inC;
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * sh - g.padTop;
      for (let ox = 0; ox < outW; ox++, yo += outC) {
        const ix0 = ox * sw - g.padLeft;
        for (let j = 0; j < outC; j++) acc[j] = 0;
        for (let fy = 0; fy < fh; fy++) {
          const iy = iy0 + fy * dh;
          if (iy < 0 || iy >= inH) continue;
          for (let fx = 0; fx < fw; fx++) {
            const ix = ix0 + fx * dw;
            if (ix < 0 || ix >= inW) continue;
            const xo = xb + (iy * inW + ix) * inC;
            const fo = (fy * fw + fx) * tap;
            if (groups === 1) {
              // Four input channels per sweep over the accumulator (as in denseRow).
              let ci = 0;
              for (; ci + 4 <= inC; ci += 4) {
                const v0 = x[xo + ci], v1 = x[xo + ci + 1], v2 = x[xo + ci + 2];
                const v3 = x[xo + ci + 3];
                const f0 = fo + ci * outC, f1 = f0 + outC, f2 = f1 + outC, f3 = f2 + outC;
                for (let co = 0; co < outC; co++) {
                  acc[co] += v0 * f[f0 + co] + v1 * f[f1 + co] + v2 * f[f2 + co] +
                    v3 * f[f3 + co];
                }
              }
              for (; ci < inC; ci++) {
                const v = x[xo + ci];
                const fr = fo + ci * outC;
                for (let co = 0; co < outC; co++) acc[co] += v * f[fr + co];
              }
            } else {
              for (let gi = 0; gi < groups; gi++) {
                const c0 = gi * outPerGroup, c1 = c0 + outPerGroup;
                for (let ci = 0; ci < patchDepth; ci++) {
                  const v = x[xo + gi * patchDepth + ci];
                  const fr = fo + ci * outC;
                  for (let co = c0; co < c1; co++) acc[co] += v * f[fr + co];
                }
              }
            }
          }
        }
        finish(acc, y, yo, outC, ep);
      }
    }
  }
}

/**
 * NHWC depthwise convolution with a [fh, fw, inC, multiplier] filter: output channel
 * ci * multiplier + q sees only input channel ci.
 */
function depthwiseCore(
  x: FloatArray,
  f: FloatArray,
  y: FloatArray,
  g: Geometry,
  mult: number,
  ep: Epilogue,
  acc: Float64Array,
): void {
  const { inH, inW, inC, fh, fw, outH, outW, outC, sh, sw, dh, dw } = g;
  let yo = 0;
  for (let b = 0; b < g.batch; b++) {
    const xb = b * inH * inW * inC;
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * sh - g.padTop;
      for (let ox = 0; ox < outW; ox++, yo += outC) {
        const ix0 = ox * sw - g.padLeft;
        for (let j = 0; j < outC; j++) acc[j] = 0;
        for (let fy = 0; fy < fh; fy++) {
          const iy = iy0 + fy * dh;
          if (iy < 0 || iy >= inH) continue;
          for (let fx = 0; fx < fw; fx++) {
            const ix = ix0 + fx * dw;
            if (ix < 0 || ix >= inW) continue;
            const xo = xb + (iy * inW + ix) * inC;
            const fo = (fy * fw + fx) * outC;
            if (mult === 1) {
              for (let c = 0; c < inC; c++) acc[c] += x[xo + c] * f[fo + c];
            } else {
              for (let c = 0, ao = 0; c < inC; c++, ao += mult) {
                const v = x[xo + c];
                for (let q = 0; q < mult; q++) acc[ao + q] += v * f[fo + ao + q];
              }
            }
          }
        }
        finish(acc, y, yo, outC, ep);
      }
    }
  }
}

/** What a convolution kernel node needs to run, read once at compile time. */
interface ConvConfig {
  depthwise: boolean;
  /** The filter is a weight (see isWeightSource): float32 runs go to WebAssembly. */
  wasm: boolean;
  window: WindowAttrs;
  plan: FusionPlan | null;
  epsilon: number;
  alpha: number;
  /**
   * A hard-swish after the bias, (v·scale)·Relu6(v + offset): the private attr
   * `_hard_swish` [scale, offset] that plan-time fusion (src/graph/fuse.ts) sets when it folds
   * the Mul / AddV2 / Relu6 / Mul pattern of MobileNetV3-style graphs into the convolution.
   */
  hardSwish: HardSwish | null;
  /**
   * The private attr `_broadcast_add` that plan-time fusion sets when it folds an Add/AddV2 into
   * the convolution: a residual of another shape then broadcasts as the Add did, instead of
   * failing as TensorFlow's fused kernel does.
   */
  broadcastAdd: boolean;
  /**
   * The private attr `_add_after_activation` that plan-time fusion sets when it folds an
   * Add/AddV2 of the activated output into the convolution: one more input, added (with
   * broadcasting) after the activation.
   */
  addAfter: boolean;
}

/**
 * act(y + r) with broadcasting, for a folded Add whose operand `r` does not have the
 * convolution's output shape (see ConvConfig.broadcastAdd).
 */
function addBroadcast(
  ctx: KernelContext,
  y: FloatArray,
  yShape: Shape,
  r: Tensor,
  like: Tensor,
  act: Act,
  alpha: number,
): Tensor {
  const rd = sameFloat(ctx, r, like, "the fused Add operand");
  const plan = stridedPlan([yShape, r.shape]);
  const out = allocLike(y, plan.size);
  const d = plan.dims.length;
  const rows = plan.dims[d - 2], cols = plan.dims[d - 1];
  const [ys0, ys1] = [plan.strides[0][d - 2], plan.strides[0][d - 1]];
  const [rs0, rs1] = [plan.strides[1][d - 2], plan.strides[1][d - 1]];
  forEachBlock(plan, (offs, o) => {
    for (let i = 0; i < rows; i++) {
      let yi = offs[0] + i * ys0, ri = offs[1] + i * rs0;
      for (let j = 0; j < cols; j++, yi += ys1, ri += rs1) out[o++] = y[yi] + rd[ri];
    }
  });
  activate(out, 0, out, 0, out.length, act, alpha);
  return new Tensor(like.dtype, plan.shape, out);
}

/** In place: y = (y·scale)·Relu6(y + offset), each step rounded to float32 as the graph's ops. */
function hardSwishLoop(y: FloatArray, hs: HardSwish): void {
  const f = y instanceof Float32Array ? Math.fround : (v: number) => v;
  const scale = f(hs.scale), offset = f(hs.offset);
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    const r = f(v + offset);
    y[i] = f(v * scale) * (r < 0 ? 0 : r > 6 ? 6 : r);
  }
}

function runConv(
  ctx: KernelContext,
  cfg: ConvConfig,
  inputs: Tensor[],
  scratch: Scratch,
): Tensor[] {
  const numArgs = cfg.plan?.numArgs ?? 0;
  checkArity(ctx, inputs, 2 + numArgs + (cfg.addAfter ? 1 : 0));
  const after = cfg.addAfter ? inputs[2 + numArgs] : null;
  const [input, filter] = inputs;
  let x = floatData(ctx, input);
  const f = sameFloat(ctx, filter, input, "the filter");
  if (input.rank !== 4) {
    throw invalid(`input must be 4-dimensional: ${shapeString(input.shape)}`);
  }
  if (filter.rank !== 4) {
    throw invalid(`filter must be 4-dimensional: ${shapeString(filter.shape)}`);
  }
  const w = cfg.window;
  const inC = w.nchw ? input.shape[1] : input.shape[3];
  const [fh, fw, fin, fout] = filter.shape;
  let outC: number;
  if (cfg.depthwise) {
    if (fin !== inC) {
      throw invalid(`input and filter must have the same depth: ${inC} vs ${fin}`);
    }
    outC = inC * fout;
  } else {
    if (fin <= 0) throw invalid(`filter depth must be stricly positive, got ${fin}`);
    if (inC % fin !== 0) {
      throw invalid(`input depth must be evenly divisible by filter depth: ${inC} vs ${fin}`);
    }
    const groups = inC / fin;
    if (fout % groups !== 0 || fout < groups) {
      throw invalid(
        `output depth must be evenly divisible by number of groups: ${fout} vs ${groups}`,
      );
    }
    outC = fout;
  }
  const g = geometry(w, input.shape, fh, fw, outC);
  const shape = outShape(g, w.nchw);
  let ep = NO_EPILOGUE;
  // A folded Add whose operand needs broadcasting: the convolution and bias first, the sum and
  // the activation after.
  let residual: Tensor | null = null;
  if (cfg.plan !== null) {
    let plan = cfg.plan, args = inputs.slice(2, 2 + numArgs);
    if (plan.add && cfg.broadcastAdd && !w.nchw && !sameShape(args[1].shape, shape)) {
      residual = args[1];
      plan = { ...plan, add: false, act: Act.None, numArgs: 1 };
      args = args.slice(0, 1);
    }
    ep = buildEpilogue(ctx, plan, args, input, outC, shape, cfg.epsilon, cfg.alpha);
    if (w.nchw && ep.side !== null) ep.side = toNHWC(ep.side, g.batch, outC, g.outH, g.outW);
  }
  if (w.nchw) x = toNHWC(x, g.batch, g.inC, g.inH, g.inW);
  // The add after the activation goes into the depthwise kernel when it has the output's shape.
  const afterData = after !== null && cfg.depthwise && !w.nchw && sameShape(after.shape, shape) &&
      after.data instanceof Float32Array
    ? after.data
    : null;
  const fast = cfg.wasm ? convWasm(cfg, x, f, g, fin, fout, ep, afterData) : null;
  const hs = fast === null ? cfg.hardSwish : null;
  let y = fast ?? allocLike(x, g.batch * g.outH * g.outW * outC);
  if (fast === null && y.length > 0) {
    const acc = scratch.get(outC);
    if (cfg.depthwise) depthwiseCore(x, f, y, g, fout, ep, acc);
    else conv2dCore(x, f, y, g, fin, ep, acc);
  }
  if (hs !== null) hardSwishLoop(y, hs);
  if (residual !== null) {
    return [addBroadcast(ctx, y, shape, residual, input, cfg.plan!.act, cfg.alpha)];
  }
  if (after !== null && (fast === null || afterData === null)) {
    return [addBroadcast(ctx, y, shape, after, input, Act.None, 0)];
  }
  if (w.nchw) y = toNCHW(y, g.batch, g.outH, g.outW, outC);
  return [new Tensor(input.dtype, shape, y)];
}

/** The activations the WebAssembly kernels apply themselves. */
const WASM_ACTS: Partial<Record<Act, WasmAct>> = {
  [Act.None]: WasmAct.None,
  [Act.Relu]: WasmAct.Relu,
  [Act.Relu6]: WasmAct.Relu6,
};

/**
 * The convolution in WebAssembly SIMD (float32 accumulation, as TensorFlow's CPU kernels), or
 * null when it does not apply (float64, grouped, depthwise multiplier > 1, batch-norm epilogue,
 * no SIMD): the float64 loops then run. Other activations run after it, in place.
 */
function convWasm(
  cfg: ConvConfig,
  x: FloatArray,
  f: FloatArray,
  g: Geometry,
  fin: number,
  fout: number,
  ep: Epilogue,
  after: Float32Array | null,
): Float32Array | null {
  if (!(x instanceof Float32Array) || !(f instanceof Float32Array) || ep.bn !== null) return null;
  const bias = ep.bias, side = ep.side;
  if (bias !== null && !(bias instanceof Float32Array)) return null;
  if (side !== null && !(side instanceof Float32Array)) return null;
  const hs = cfg.hardSwish;
  // A hard-swish comes alone (fusion puts it only after a bare bias).
  const act = hs !== null && ep.act === Act.None ? WasmAct.HardSwish : WASM_ACTS[ep.act];
  if (hs !== null && act !== WasmAct.HardSwish) return null;
  let y: Float32Array | null;
  if (cfg.depthwise) {
    if (fout !== 1 || side !== null || (after !== null && act === undefined)) return null;
    y = depthwiseF32(x, f, bias, g, act ?? WasmAct.None, hs, after);
  } else {
    if (fin !== g.inC) return null;
    y = conv2dF32(x, f, bias, side, g, act ?? WasmAct.None, hs);
  }
  if (y !== null && act === undefined) activate(y, 0, y, 0, y.length, ep.act, ep.alpha);
  return y;
}

function convKernel(op: string, depthwise: boolean, fused: boolean): Kernel {
  return {
    op,
    compile(ctx: KernelContext): KernelRun {
      checkTypeAttr(ctx);
      const cfg: ConvConfig = {
        depthwise,
        wasm: isWeightSource(ctx.inputOps[1] ?? ""),
        window: convWindowAttrs(ctx),
        plan: fused ? fusionPlan(ctx, true) : null,
        epsilon: fused ? ctx.attr.float("epsilon", 0.0001) : 0,
        alpha: fused ? ctx.attr.float("leakyrelu_alpha", 0.2) : 0,
        hardSwish: null,
        broadcastAdd: fused && ctx.attr.bool("_broadcast_add", false),
        addAfter: fused && ctx.attr.bool("_add_after_activation", false),
      };
      if (cfg.addAfter && (cfg.plan?.add || cfg.plan?.batchNorm || ctx.attr.has("_hard_swish"))) {
        throw invalid(
          `${op} node "${ctx.name}": _add_after_activation goes with [BiasAdd(, activation)] only`,
        );
      }
      if (fused && ctx.attr.has("_hard_swish")) {
        const c = ctx.attr.floats("_hard_swish");
        if (c.length !== 2 || cfg.plan?.act !== Act.None || cfg.plan.batchNorm) {
          throw invalid(
            `${op} node "${ctx.name}": _hard_swish must be [scale, offset] after a bare bias`,
          );
        }
        cfg.hardSwish = { scale: c[0], offset: c[1] };
      }
      const scratch = new Scratch();
      return (inputs) => runConv(ctx, cfg, inputs, scratch);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Transposed convolution (Conv2DBackpropInput)
// ---------------------------------------------------------------------------------------------

/** The label TensorFlow's CPU kernel (Conv2DCustomBackpropInputOp) puts on its shape errors. */
const BACKPROP_LABEL = "Conv2DCustomBackpropInput";

/** Conv2DBackpropComputeInputShape: the input shape from 4 sizes, or from (H, W). */
function backpropInputShape(
  sizesT: Tensor,
  filter: Tensor,
  dy: Tensor,
  nchw: boolean,
): number[] {
  if (sizesT.rank !== 1) {
    throw invalid(`Conv2DBackpropInput: input_sizes input must be 1-dim, not ${sizesT.rank}`);
  }
  const sizes = toIntArray(sizesT, "input_sizes");
  if (sizes.length === 4) {
    for (const d of sizes) if (d < 0) throw invalid(`Dimension ${d} must be >= 0`);
    return sizes;
  }
  if (sizes.length === 2) {
    const [h, w] = sizes;
    const depth = filter.shape[2] ?? 0;
    if (h < 0 || w < 0) {
      throw invalid(`Conv2DBackpropInput: elements of input_sizes must be >= 0, not ${h}x${w}`);
    }
    return nchw ? [dy.shape[0], depth, h, w] : [dy.shape[0], h, w, depth];
  }
  throw invalid(
    "Conv2DBackpropInput requires input_sizes to contain 4 values or 2 values, but got: " +
      sizes.length,
  );
}

/**
 * NHWC input gradient of a convolution, i.e. the transposed convolution: every output pixel's
 * gradient row dy[b, oy, ox, :] is spread over the input pixels its window read, each receiving
 * filter[fy, fx, ci, :] · dy row in channel ci. Accumulates in float64 (`acc`, input-sized).
 */
function conv2dBackpropInputCore(
  dy: FloatArray,
  f: FloatArray,
  acc: Float64Array,
  g: Geometry,
): void {
  const { inH, inW, inC, fh, fw, outH, outW, outC, sh, sw, dh, dw } = g;
  const tap = inC * outC;
  let dyo = 0;
  for (let b = 0; b < g.batch; b++) {
    const xb = b * inH * inW * inC;
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * sh - g.padTop;
      for (let ox = 0; ox < outW; ox++, dyo += outC) {
        const ix0 = ox * sw - g.padLeft;
        for (let fy = 0; fy < fh; fy++) {
          const iy = iy0 + fy * dh;
          if (iy < 0 || iy >= inH) continue;
          for (let fx = 0; fx < fw; fx++) {
            const ix = ix0 + fx * dw;
            if (ix < 0 || ix >= inW) continue;
            const xo = xb + (iy * inW + ix) * inC;
            let fo = (fy * fw + fx) * tap;
            for (let ci = 0; ci < inC; ci++, fo += outC) {
              let s = 0;
              for (let co = 0; co < outC; co++) s += f[fo + co] * dy[dyo + co];
              acc[xo + ci] += s;
            }
          }
        }
      }
    }
  }
}

/**
 * The same sums with the per-tap products from WebAssembly: `cols` holds, for each out_backprop
 * pixel, its product with the filter seen as [fh·fw·inC, outC] (a GEMM over the outC channels,
 * float32), and each of its fh·fw·inC values is added into the input pixel its tap lands on.
 */
function col2imAdd(cols: Float32Array, acc: Float64Array, g: Geometry): void {
  const { inH, inW, inC, fh, fw, outH, outW, sh, sw, dh, dw } = g;
  const row = fh * fw * inC;
  let co = 0;
  for (let b = 0; b < g.batch; b++) {
    const xb = b * inH * inW * inC;
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * sh - g.padTop;
      for (let ox = 0; ox < outW; ox++, co += row) {
        const ix0 = ox * sw - g.padLeft;
        for (let fy = 0; fy < fh; fy++) {
          const iy = iy0 + fy * dh;
          if (iy < 0 || iy >= inH) continue;
          for (let fx = 0; fx < fw; fx++) {
            const ix = ix0 + fx * dw;
            if (ix < 0 || ix >= inW) continue;
            const xo = xb + (iy * inW + ix) * inC;
            const c = co + (fy * fw + fx) * inC;
            for (let ci = 0; ci < inC; ci++) acc[xo + ci] += cols[c + ci];
          }
        }
      }
    }
  }
}

/**
 * Conv2DBackpropInput — what Keras' Conv2DTranspose exports: inputs input_sizes (4 sizes, or H
 * and W), filter [fh, fw, in, out] and out_backprop; attrs strides, padding (SAME, VALID,
 * EXPLICIT with explicit_paddings), dilations, data_format. Shapes are checked as TensorFlow's
 * CPU kernel does, with its messages. TensorFlow's CPU kernel refuses NCHW and dilations > 1;
 * both are computed here (NCHW through transposes), as its GPU kernel would.
 */
const conv2dBackpropInput: Kernel = {
  op: "Conv2DBackpropInput",
  compile(ctx: KernelContext): KernelRun {
    checkTypeAttr(ctx);
    const w = convWindowAttrs(ctx);
    // A weight filter (see isWeightSource) is packed once for the WebAssembly product.
    const wasm = isWeightSource(ctx.inputOps[1] ?? "");
    return (inputs) => {
      checkArity(ctx, inputs, 3);
      const [sizesT, filter, dyT] = inputs;
      const f = floatData(ctx, filter);
      let dy = sameFloat(ctx, dyT, filter, "out_backprop");
      if (dyT.rank !== 4) {
        throw invalid(`input_sizes must be 4-dimensional, got: ${dyT.rank}`);
      }
      const inShape = backpropInputShape(sizesT, filter, dyT, w.nchw);
      if (filter.rank !== 4) throw invalid(`${BACKPROP_LABEL}: filter must be 4-dimensional`);
      const [hDim, wDim, cDim] = w.nchw ? [2, 3, 1] : [1, 2, 3];
      if (inShape[0] !== dyT.shape[0]) {
        throw invalid(
          `${BACKPROP_LABEL}: input and out_backprop must have the same batch size. Input ` +
            `batch: ${inShape[0]}, outbackprop batch: ${dyT.shape[0]}, batch_dim: 0`,
        );
      }
      const [fh, fw, fin, fout] = filter.shape;
      const inC = inShape[cDim];
      if (fin <= 0) {
        throw invalid(`${BACKPROP_LABEL}: filter depth must be strictly greated than zero`);
      }
      if (inC % fin !== 0) {
        throw invalid(`${BACKPROP_LABEL}: input depth must be evenly divisible by filter depth`);
      }
      if (fout !== dyT.shape[cDim]) {
        throw invalid(`${BACKPROP_LABEL}: filter and out_backprop must have the same out_depth`);
      }
      const g = geometry(w, inShape, fh, fw, fout);
      const dims: [number, number, number, number, number, number][] = [
        [hDim, inShape[hDim], fh, g.outH, w.strideH, w.dilationH],
        [wDim, inShape[wDim], fw, g.outW, w.strideW, w.dilationW],
      ];
      for (const [dim, input, fsize, computed, stride, dilation] of dims) {
        const actual = dyT.shape[dim];
        if (actual !== computed) {
          throw invalid(
            `${BACKPROP_LABEL}: Size of out_backprop doesn't match computed: actual = ${actual}, ` +
              `computed = ${computed} spatial_dim: ${dim} input: ${input} filter: ${fsize} ` +
              `output: ${actual} stride: ${stride} dilation: ${dilation}`,
          );
        }
      }
      if (inC !== fin) {
        throw invalid(
          "Gradients for grouped convolutions are not supported on CPU. Please file a feature " +
            `request if you run into this issue. Computed input depth ${inC} doesn't match ` +
            `filter input depth ${fin}`,
        );
      }
      const n = inShape[0] * inShape[1] * inShape[2] * inShape[3];
      const acc = new Float64Array(n);
      if (n > 0 && dyT.size > 0) {
        if (w.nchw) dy = toNHWC(dy, g.batch, fout, g.outH, g.outW);
        // (Measured, best of 40: 2×2 taps of 1 or 2 channels from 16, the segmentation heads'
        // last upsampling, take 0.2–0.35 ms in the WebAssembly product against 1.9 ms for the
        // whole loop below.)
        const cols = wasm && dy instanceof Float32Array && f instanceof Float32Array
          ? matmulF32(dy, f, null, g.batch * g.outH * g.outW, fout, fh * fw * fin, true, 0)
          : null;
        if (cols !== null) col2imAdd(cols, acc, g);
        else conv2dBackpropInputCore(dy, f, acc, g);
      }
      let y = allocLike(f, n);
      y.set(acc);
      if (w.nchw) y = toNCHW(y, g.batch, g.inH, g.inW, g.inC);
      return [new Tensor(filter.dtype, inShape, y)];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Pooling
// ---------------------------------------------------------------------------------------------

/** The lowest finite value, MaxPool's initial value upstream (NumTraits<T>::lowest()). */
const LOWEST_F32 = -3.4028234663852886e38;

/** NHWC max pooling; windows are clipped to the input (padding never wins). */
function maxPoolCore(x: FloatArray, y: FloatArray, g: Geometry): void {
  const { inH, inW, inC: c, fh, fw, outH, outW, sh, sw } = g;
  const lowest = y instanceof Float32Array ? LOWEST_F32 : -Number.MAX_VALUE;
  let yo = 0;
  for (let b = 0; b < g.batch; b++) {
    const xb = b * inH * inW * c;
    for (let oy = 0; oy < outH; oy++) {
      const y0 = oy * sh - g.padTop;
      const ya = Math.max(y0, 0), yb = Math.min(y0 + fh, inH);
      for (let ox = 0; ox < outW; ox++, yo += c) {
        const x0 = ox * sw - g.padLeft;
        const xa = Math.max(x0, 0), xz = Math.min(x0 + fw, inW);
        for (let j = 0; j < c; j++) y[yo + j] = lowest;
        for (let iy = ya; iy < yb; iy++) {
          for (let ix = xa; ix < xz; ix++) {
            const xo = xb + (iy * inW + ix) * c;
            // `>` keeps the running max on NaN, as std::max(accum, v) does upstream.
            for (let j = 0; j < c; j++) {
              const v = x[xo + j];
              if (v > y[yo + j]) y[yo + j] = v;
            }
          }
        }
      }
    }
  }
}

/** NHWC average pooling dividing by the number of valid (non-padded) elements, as upstream. */
function avgPoolCore(x: FloatArray, y: FloatArray, g: Geometry, acc: Float64Array): void {
  const { inH, inW, inC: c, fh, fw, outH, outW, sh, sw } = g;
  let yo = 0;
  for (let b = 0; b < g.batch; b++) {
    const xb = b * inH * inW * c;
    for (let oy = 0; oy < outH; oy++) {
      const y0 = oy * sh - g.padTop;
      const ya = Math.max(y0, 0), yb = Math.min(y0 + fh, inH);
      for (let ox = 0; ox < outW; ox++, yo += c) {
        const x0 = ox * sw - g.padLeft;
        const xa = Math.max(x0, 0), xz = Math.min(x0 + fw, inW);
        for (let j = 0; j < c; j++) acc[j] = 0;
        for (let iy = ya; iy < yb; iy++) {
          for (let ix = xa; ix < xz; ix++) {
            const xo = xb + (iy * inW + ix) * c;
            for (let j = 0; j < c; j++) acc[j] += x[xo + j];
          }
        }
        const count = Math.max(yb - ya, 0) * Math.max(xz - xa, 0);
        const inv = 1 / count;
        for (let j = 0; j < c; j++) y[yo + j] = acc[j] * inv;
      }
    }
  }
}

/** Pooling window attrs: ksize and strides (4 values each, in data_format order). */
function poolWindow(
  ctx: KernelContext,
  ksize: number[],
  strides: number[],
  nchw: boolean,
  padding: Padding,
  pads: [number, number, number, number],
): { w: WindowAttrs; kh: number; kw: number } {
  if (ksize.length !== 4) throw invalid("Sliding window ksize field must specify 4 dimensions");
  if (strides.length !== 4) throw invalid("Sliding window stride field must specify 4 dimensions");
  for (let i = 0; i < 4; i++) {
    if (ksize[i] <= 0) throw invalid(`Sliding window ksize for dimension ${i} was zero.`);
    if (strides[i] <= 0) throw invalid(`Sliding window stride for dimension ${i} was zero.`);
  }
  if (ksize[0] !== 1 || strides[0] !== 1) {
    throw invalid("Pooling is not yet supported on the batch dimension.");
  }
  const [h, w, c] = nchw ? [2, 3, 1] : [1, 2, 3];
  if (ksize[c] !== 1 || strides[c] !== 1) {
    throw unimplemented(
      `${ctx.op} node "${ctx.name}": pooling across the depth dimension is not supported`,
    );
  }
  return {
    w: {
      nchw,
      padding,
      strideH: strides[h],
      strideW: strides[w],
      dilationH: 1,
      dilationW: 1,
      pads,
    },
    kh: ksize[h],
    kw: ksize[w],
  };
}

function runPool(
  ctx: KernelContext,
  input: Tensor,
  w: WindowAttrs,
  kh: number,
  kw: number,
  max: boolean,
  scratch: Scratch,
): Tensor[] {
  let x = floatData(ctx, input);
  if (input.rank !== 4) throw invalid(`input must be 4-dimensional: ${shapeString(input.shape)}`);
  const c = w.nchw ? input.shape[1] : input.shape[3];
  const g = geometry(w, input.shape, kh, kw, c);
  if (w.nchw) x = toNHWC(x, g.batch, c, g.inH, g.inW);
  // WebAssembly for float32: max, and averages of small windows (float32 sums, as TensorFlow's
  // kernel). A large window (a global average, say) keeps the float64 loop: a float32 running
  // sum of thousands of values drifts by more than the tolerances that matter here, and one
  // output pixel costs little.
  const wasm = x instanceof Float32Array && g.outH * g.outW > 0 && (max || kh * kw <= 64);
  const fast = wasm ? poolF32(x as Float32Array, g, max) : null;
  let y = fast ?? allocLike(x, g.batch * g.outH * g.outW * c);
  if (fast === null && y.length > 0) {
    if (max) maxPoolCore(x, y, g);
    else avgPoolCore(x, y, g, scratch.get(c));
  }
  if (w.nchw) y = toNCHW(y, g.batch, g.outH, g.outW, c);
  return [new Tensor(input.dtype, outShape(g, w.nchw), y)];
}

function poolKernel(op: string, max: boolean): Kernel {
  return {
    op,
    compile(ctx: KernelContext): KernelRun {
      checkTypeAttr(ctx);
      const nchw = readFormat(ctx);
      // Only MaxPool has EXPLICIT padding upstream.
      const padding = readPadding(ctx, max);
      const pads = readExplicit(ctx, padding, nchw);
      const { w, kh, kw } = poolWindow(
        ctx,
        ctx.attr.ints("ksize"),
        ctx.attr.ints("strides"),
        nchw,
        padding,
        pads,
      );
      const scratch = new Scratch();
      return (inputs) => {
        checkArity(ctx, inputs, 1);
        return runPool(ctx, inputs[0], w, kh, kw, max, scratch);
      };
    },
  };
}

/** MaxPoolV2: ksize and strides come as int32 inputs. */
const maxPoolV2: Kernel = {
  op: "MaxPoolV2",
  compile(ctx: KernelContext): KernelRun {
    checkTypeAttr(ctx);
    const nchw = readFormat(ctx);
    const padding = readPadding(ctx, false);
    const scratch = new Scratch();
    return (inputs) => {
      checkArity(ctx, inputs, 3);
      const ints = (t: Tensor, what: string): number[] => {
        if (t.dtype !== DataType.DT_INT32 && t.dtype !== DataType.DT_INT64) {
          throw invalid(`${what} must be an int32 vector, got ${dtypeName(t.dtype)}`);
        }
        return Array.from(t.data as Int32Array, Number);
      };
      const { w, kh, kw } = poolWindow(
        ctx,
        ints(inputs[1], "ksize"),
        ints(inputs[2], "strides"),
        nchw,
        padding,
        [0, 0, 0, 0],
      );
      return runPool(ctx, inputs[0], w, kh, kw, true, scratch);
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Batch normalisation
// ---------------------------------------------------------------------------------------------

/**
 * FusedBatchNorm / V2 / V3. Inference (is_training=false) normalises with the given mean and
 * variance and returns them as batch_mean / batch_variance (and as the reserve spaces);
 * training computes the batch statistics as the CPU kernel does (biased variance for
 * normalising, Bessel-corrected or exponentially averaged variance as output).
 */
function batchNormKernel(op: string, v3: boolean): Kernel {
  return {
    op,
    compile(ctx: KernelContext): KernelRun {
      checkTypeAttr(ctx);
      checkTypeAttr(ctx, FLOAT_TYPES, "U");
      const epsilon = ctx.attr.float("epsilon", 0.0001);
      const factor = ctx.attr.float("exponential_avg_factor", 1);
      // is_training defaults to true in the op definition.
      const training = ctx.attr.bool("is_training", true);
      const format = ctx.attr.string("data_format", "NHWC");
      if (!["NHWC", "NCHW", "NDHWC", "NCDHW"].includes(format)) {
        throw invalid(`Invalid data format "${format}" for ${op} node "${ctx.name}"`);
      }
      const channelsLast = format.endsWith("C");
      return (inputs) => {
        checkArity(ctx, inputs, 5);
        const [xt, scaleT, offsetT, meanT, varT] = inputs;
        const x = floatData(ctx, xt);
        const rank = xt.rank;
        if (rank !== 4 && rank !== 5) {
          throw invalid(`input must be 4 or 5-dimensional: ${shapeString(xt.shape)}`);
        }
        const named: [Tensor, string][] = [
          [scaleT, "scale"],
          [offsetT, "offset"],
          [meanT, "estimated_mean"],
          [varT, "estimated_variance"],
        ];
        for (const [t, what] of named) {
          floatData(ctx, t);
          if (t.rank !== 1) throw invalid(`${what} must be 1-dimensional: ${shapeString(t.shape)}`);
        }
        // Layout [outer, channels, inner]: channels last (outer = N·H·W, inner = 1) or in
        // dimension 1 (outer = N, inner = H·W).
        const cdim = channelsLast ? rank - 1 : 1;
        const channels = xt.shape[cdim];
        let outer = 1, inner = 1;
        for (let i = 0; i < cdim; i++) outer *= xt.shape[i];
        for (let i = cdim + 1; i < rank; i++) inner *= xt.shape[i];
        const checkSize = (t: Tensor, what: string, prefix = "") => {
          if (t.size !== channels) {
            throw invalid(
              `${prefix}${what} must have the same number of elements as the channels of x, ` +
                `got ${t.size} and ${channels}`,
            );
          }
        };
        checkSize(scaleT, "scale");
        checkSize(offsetT, "offset");
        if (!training || factor !== 1) {
          const prefix = training ? "When exponential_avg_factor != 1, " : "";
          checkSize(meanT, "mean", prefix);
          checkSize(varT, "variance", prefix);
        }
        const scale = scaleT.data as FloatArray;
        const offset = offsetT.data as FloatArray;
        const count = outer * inner;
        const vec = (d: ArrayLike<number>) => {
          const a = allocLike(scale, channels);
          for (let c = 0; c < channels; c++) a[c] = d[c];
          return new Tensor(scaleT.dtype, [channels], a);
        };
        const y = allocLike(x, x.length);
        let stats: Tensor[];
        let mean: ArrayLike<number>;
        let variance: ArrayLike<number>;
        if (!training) {
          mean = meanT.data as FloatArray;
          variance = varT.data as FloatArray;
          if (x.length === 0) {
            // Upstream returns NaN batch statistics for an empty input.
            const nan = vec(new Float64Array(channels).fill(NaN));
            stats = [nan, nan, meanT, varT];
          } else stats = [meanT, varT, meanT, varT];
        } else {
          const m = new Float64Array(channels);
          const v = new Float64Array(channels);
          channelSums(x, m, null, outer, channels, inner);
          for (let c = 0; c < channels; c++) m[c] /= count;
          channelSums(x, v, m, outer, channels, inner);
          for (let c = 0; c < channels; c++) v[c] /= count;
          mean = m;
          variance = v;
          // Bessel's correction for the reported variance, as upstream.
          const adjust = count / (count > 1 ? count - 1 : 1);
          const newMean = new Float64Array(channels);
          const newVar = new Float64Array(channels);
          const oldMean = meanT.data as FloatArray, oldVar = varT.data as FloatArray;
          for (let c = 0; c < channels; c++) {
            if (factor === 1) {
              newMean[c] = m[c];
              newVar[c] = v[c] * adjust;
            } else {
              newMean[c] = (1 - factor) * oldMean[c] + factor * m[c];
              newVar[c] = (1 - factor) * oldVar[c] + factor * adjust * v[c];
            }
          }
          // The CPU kernel saves the biased batch variance (not its inverse) as reserve space.
          stats = [vec(newMean), vec(newVar), vec(m), vec(v)];
        }
        if (x.length > 0) {
          const sc = new Float64Array(channels);
          for (let c = 0; c < channels; c++) sc[c] = scale[c] / Math.sqrt(variance[c] + epsilon);
          normalize(x, y, mean, sc, offset, outer, channels, inner);
        }
        const result = [new Tensor(xt.dtype, xt.shape, y), ...stats];
        // V3's reserve_space_3 is a dummy scalar on CPU.
        if (v3) result.push(new Tensor(scaleT.dtype, [], allocLike(scale, 1)));
        return result;
      };
    },
  };
}

/** acc[c] += Σ x (center null) or Σ (x - center[c])² over layout [outer, channels, inner]. */
function channelSums(
  x: FloatArray,
  acc: Float64Array,
  center: Float64Array | null,
  outer: number,
  channels: number,
  inner: number,
): void {
  if (inner === 1) {
    for (let r = 0, o = 0; r < outer; r++, o += channels) {
      if (center === null) { for (let c = 0; c < channels; c++) acc[c] += x[o + c]; }
      else {
        for (let c = 0; c < channels; c++) {
          const d = x[o + c] - center[c];
          acc[c] += d * d;
        }
      }
    }
    return;
  }
  for (let b = 0, i = 0; b < outer; b++) {
    for (let c = 0; c < channels; c++) {
      let s = 0;
      if (center === null) { for (let k = 0; k < inner; k++, i++) s += x[i]; }
      else {
        const m = center[c];
        for (let k = 0; k < inner; k++, i++) {
          const d = x[i] - m;
          s += d * d;
        }
      }
      acc[c] += s;
    }
  }
}

/** y = (x - mean[c]) * scaling[c] + offset[c] over layout [outer, channels, inner]. */
function normalize(
  x: FloatArray,
  y: FloatArray,
  mean: ArrayLike<number>,
  scaling: Float64Array,
  offset: ArrayLike<number>,
  outer: number,
  channels: number,
  inner: number,
): void {
  if (inner === 1) {
    for (let r = 0, o = 0; r < outer; r++, o += channels) {
      for (let c = 0; c < channels; c++) {
        y[o + c] = (x[o + c] - mean[c]) * scaling[c] + offset[c];
      }
    }
    return;
  }
  for (let b = 0, i = 0; b < outer; b++) {
    for (let c = 0; c < channels; c++) {
      const m = mean[c], s = scaling[c], off = offset[c];
      for (let k = 0; k < inner; k++, i++) y[i] = (x[i] - m) * s + off;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

/** The neural-network kernels. */
export const nnKernels: Kernel[] = [
  activationKernel("Relu", Act.Relu),
  activationKernel("Relu6", Act.Relu6),
  activationKernel("Elu", Act.Elu),
  activationKernel("Selu", Act.Selu),
  activationKernel("LeakyRelu", Act.LeakyRelu),
  activationKernel("Sigmoid", Act.Sigmoid),
  activationKernel("Tanh", Act.Tanh),
  activationKernel("Softplus", Act.Softplus),
  activationKernel("Softsign", Act.Softsign),
  softmaxKernel("Softmax", false),
  softmaxKernel("LogSoftmax", true),
  biasAddKernel("BiasAdd", true),
  biasAddKernel("BiasAddV1", false),
  fusedDenseSoftmax,
  fusedMatMul,
  convKernel("Conv2D", false, false),
  convKernel("DepthwiseConv2dNative", true, false),
  convKernel("_FusedConv2D", false, true),
  convKernel("_FusedDepthwiseConv2dNative", true, true),
  conv2dBackpropInput,
  poolKernel("MaxPool", true),
  maxPoolV2,
  poolKernel("AvgPool", false),
  batchNormKernel("FusedBatchNorm", false),
  batchNormKernel("FusedBatchNormV2", false),
  batchNormKernel("FusedBatchNormV3", true),
];

/**
 * Output size and leading padding of one windowed dimension (GetWindowedOutputSizeVerbose);
 * exported for tests and for shape inference elsewhere.
 */
export const windowedOutputSize: (
  inSize: number,
  filter: number,
  dilation: number,
  stride: number,
  padding: "SAME" | "VALID" | "EXPLICIT",
  before: number,
  after: number,
) => [number, number] = windowed;
