/**
 * Element-wise activations (Relu, Relu6, Elu, Selu, LeakyRelu, Sigmoid, Tanh, Softplus, Softsign,
 * GELU for the fused epilogues), Softmax and LogSoftmax, as the TensorFlow CPU kernels
 * (`relu_op_functor.h`, `softplus_op.h`, `softmax_op.cc`). Float64 arithmetic, stored in the
 * input's float type; float32 Relu, Relu6, Sigmoid and Tanh run in WebAssembly SIMD where the
 * engine has it (`wasm/elementwise.ts`, `wasm/activation.ts`).
 *
 * @module
 */
import { shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import { sigmoidF32 } from "./wasm/activation.ts";
import { unaryF32, WasmAct } from "./wasm/elementwise.ts";
import { binaryFunction } from "./elementwise.ts";
import { FLOATS } from "./dtypes.ts";
import {
  allocLike,
  checkArity,
  checkTypeAttr,
  type FloatArray,
  floatData,
  invalid,
  uninitializedLike,
} from "./nn_common.ts";

/** The element-wise activations, shared by the standalone ops and the fused epilogues. */
export enum Act {
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
export function activate(
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
      // Float32 runs in WebAssembly where it can: the JavaScript loop's sign test is a branch,
      // and on real feature maps it mispredicts (~5 ns an element).
      if (
        src instanceof Float32Array && dst instanceof Float32Array &&
        unaryF32(WasmAct.Relu, src, srcOff, dst, dstOff, n)
      ) return;
      for (let i = 0; i < n; i++) {
        const v = src[srcOff + i];
        dst[dstOff + i] = v < 0 ? 0 : v;
      }
      return;
    case Act.Relu6:
      if (
        src instanceof Float32Array && dst instanceof Float32Array &&
        unaryF32(WasmAct.Relu6, src, srcOff, dst, dstOff, n)
      ) return;
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
      // Float32 runs in WebAssembly where it can (a float32 exp, within a few ulps).
      if (
        src instanceof Float32Array && dst instanceof Float32Array &&
        sigmoidF32(src, srcOff, dst, dstOff, n)
      ) return;
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
      // Float32 in WebAssembly where it can (within a few float32 ulps; Math.tanh costs
      // 10-15 ns an element).
      if (
        src instanceof Float32Array && dst instanceof Float32Array &&
        unaryF32(WasmAct.Tanh, src, srcOff, dst, dstOff, n)
      ) return;
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

/**
 * PReLU as the graph computes it, Relu(x) + s·Relu(-x), broadcasting x against the slope s:
 * exactly the unfused ops' values (one of the two terms is zero, so the sum rounds nothing).
 * Float32 runs in WebAssembly where the broadcast allows (`wasm/elementwise.ts`).
 */
const prelu = binaryFunction(
  "Prelu",
  { float: (x, s) => (x < 0 ? 0 : x) + s * (-x < 0 ? 0 : -x) },
  FLOATS,
);

/**
 * The Relu node that plan-time fusion makes of a PReLU subgraph (`fusePrelu` in graph/fuse.ts):
 * the private attr `_prelu`, inputs x and the slope.
 */
function preluRun(ctx: KernelContext): KernelRun {
  if (ctx.numInputs !== 2) throw invalid(`Relu node "${ctx.name}" with _prelu takes 2 inputs`);
  return (inputs) => {
    checkArity(ctx, inputs, 2);
    return [prelu(inputs[0], inputs[1], ctx.name)];
  };
}

/** A standalone activation op: same shape out, float types only. */
function activationKernel(op: string, act: Act): Kernel {
  return {
    op,
    compile(ctx: KernelContext): KernelRun {
      checkTypeAttr(ctx);
      if (act === Act.Relu && ctx.attr.bool("_prelu", false)) return preluRun(ctx);
      // LeakyRelu's alpha defaults to 0.2 (nn_ops.cc); the others ignore it.
      const alpha = act === Act.LeakyRelu ? ctx.attr.float("alpha", 0.2) : 0;
      return (inputs) => {
        checkArity(ctx, inputs, 1);
        const x = inputs[0];
        const src = floatData(ctx, x);
        const n = src.length;
        const dst = uninitializedLike(src, n);
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
export function softmaxRows(
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

/** The activation and softmax kernels. */
export const activationKernels: Kernel[] = [
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
];
