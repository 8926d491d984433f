/**
 * The epilogues of the fused dense and convolution kernels (`matmul_op_fused.cc`,
 * `conv_ops_fused_impl.h`): the `fused_ops` list parsed once at compile time (BiasAdd or
 * FusedBatchNorm, an optional Add, an optional activation) and applied per output row / pixel.
 *
 * @module
 */
import { type Shape, shapeString, Tensor } from "../tensor/tensor.ts";
import type { KernelContext } from "./kernel.ts";
import { type FloatArray, invalid, sameFloat, unimplemented } from "./nn_common.ts";
import { Act, activate } from "./activation.ts";

/** What a fused kernel does after its convolution or product, per output row / pixel. */
export interface Epilogue {
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
export function finish(
  acc: Float64Array,
  y: FloatArray,
  yo: number,
  c: number,
  ep: Epilogue,
): void {
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

export const NO_EPILOGUE: Epilogue = {
  bias: null,
  bn: null,
  side: null,
  act: Act.None,
  alpha: 0,
};

export const FUSED_ACTIVATIONS: Readonly<Record<string, Act>> = {
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
export interface FusionPlan {
  batchNorm: boolean;
  add: boolean;
  act: Act;
  /** Extra inputs after the two operands. */
  numArgs: number;
}

export function fusionPlan(ctx: KernelContext, allowBatchNorm: boolean): FusionPlan {
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
export function channelVector(
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
export function buildEpilogue(
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
