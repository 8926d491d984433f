/**
 * 2-D convolution: Conv2D (plain and grouped), DepthwiseConv2dNative and their fused forms
 * `_FusedConv2D` / `_FusedDepthwiseConv2dNative` (`conv_ops.cc`, `depthwise_conv_op.cc`,
 * `conv_ops_fused_impl.h`). Float32 runs in WebAssembly where it can (`wasm/conv.ts`); the
 * JavaScript loops accumulate in float64.
 *
 * @module
 */
import { type Shape, shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import { forEachBlock, sameShape, stridedPlan } from "./broadcast.ts";
import { isWeightSource } from "./wasm/dense.ts";
import { conv2dF32, depthwiseF32, type HardSwish, WasmAct } from "./wasm/conv.ts";
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
import {
  buildEpilogue,
  type Epilogue,
  finish,
  type FusionPlan,
  fusionPlan,
  NO_EPILOGUE,
} from "./epilogue.ts";
import {
  convWindowAttrs,
  type Geometry,
  geometry,
  outShape,
  toNCHW,
  toNHWC,
  type WindowAttrs,
  WindowCursor,
} from "./window.ts";
import { Act, activate } from "./activation.ts";

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
  const { inW, inC, fw, outC, dh, dw } = g;
  const groups = patchDepth === 0 ? 1 : inC / patchDepth;
  const outPerGroup = outC / groups;
  const tap = patchDepth * outC;
  for (const win = new WindowCursor(g); win.next();) {
    const yo = win.pixel * outC;
    for (let j = 0; j < outC; j++) acc[j] = 0;
    for (let fy = win.fy0; fy < win.fy1; fy++) {
      const row = (win.iy0 + fy * dh) * inW;
      for (let fx = win.fx0; fx < win.fx1; fx++) {
        const xo = win.xb + (row + win.ix0 + fx * dw) * inC;
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
  const { inW, inC, fw, outC, dh, dw } = g;
  for (const win = new WindowCursor(g); win.next();) {
    const yo = win.pixel * outC;
    for (let j = 0; j < outC; j++) acc[j] = 0;
    for (let fy = win.fy0; fy < win.fy1; fy++) {
      const row = (win.iy0 + fy * dh) * inW;
      for (let fx = win.fx0; fx < win.fx1; fx++) {
        const xo = win.xb + (row + win.ix0 + fx * dw) * inC;
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
  /**
   * The private attr `_scale_input` that plan-time fusion sets when it folds a Mul of the input
   * by a per-channel scale into the convolution (`fuseScaleConv`): one more input, last, of
   * inC floats (shape [inC] or ones then inC) the input's channels are multiplied by. In
   * WebAssembly the scale goes into the filter's rows; elsewhere the product is made first,
   * rounded to float32 as the Mul would.
   */
  scaleInput: boolean;
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

/**
 * The per-channel scale of a `_scale_input` convolution (see ConvConfig.scaleInput): its inC
 * values, checked to be what the fusion promised (the plan takes the Mul otherwise).
 */
function channelScale(ctx: KernelContext, s: Tensor, input: Tensor, inC: number): FloatArray {
  const d = sameFloat(ctx, s, input, "the input scale");
  if (s.size !== inC || s.rank > 4 || s.shape.some((n, i) => i < s.rank - 1 && n !== 1)) {
    throw invalid(
      `_scale_input needs ${inC} channel factors, got shape ${shapeString(s.shape)}`,
    );
  }
  return d;
}

/** x times its channels' factors, each product rounded to x's type (the Mul's values). */
function scaled(x: FloatArray, scale: FloatArray): FloatArray {
  const y = allocLike(x, x.length);
  const c = scale.length;
  for (let i = 0; i < x.length; i += c) {
    for (let j = 0; j < c; j++) y[i + j] = x[i + j] * scale[j];
  }
  return y;
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
  checkArity(ctx, inputs, 2 + numArgs + (cfg.addAfter ? 1 : 0) + (cfg.scaleInput ? 1 : 0));
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
  const scale = cfg.scaleInput ? channelScale(ctx, inputs[inputs.length - 1], input, inC) : null;
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
  const fast = cfg.wasm ? convWasm(cfg, x, f, g, fin, fout, ep, afterData, scale) : null;
  if (fast === null && scale !== null) x = scaled(x, scale);
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
  scale: FloatArray | null,
): Float32Array | null {
  if (!(x instanceof Float32Array) || !(f instanceof Float32Array) || ep.bn !== null) return null;
  if (scale !== null && (cfg.depthwise || !(scale instanceof Float32Array))) return null;
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
    y = conv2dF32(x, f, bias, side, g, act ?? WasmAct.None, hs, scale as Float32Array | null);
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
        scaleInput: ctx.attr.bool("_scale_input", false),
      };
      if (cfg.scaleInput && depthwise) {
        throw invalid(`${op} node "${ctx.name}": _scale_input goes with Conv2D only`);
      }
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

/** The convolution kernels. */
export const convKernels: Kernel[] = [
  convKernel("Conv2D", false, false),
  convKernel("DepthwiseConv2dNative", true, false),
  convKernel("_FusedConv2D", false, true),
  convKernel("_FusedDepthwiseConv2dNative", true, true),
];
