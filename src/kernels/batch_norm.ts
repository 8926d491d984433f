/**
 * FusedBatchNorm, FusedBatchNormV2 and FusedBatchNormV3 (`fused_batch_norm_op.cc`), inference
 * and training modes.
 *
 * @module
 */
import { shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import {
  allocLike,
  checkArity,
  checkTypeAttr,
  FLOAT_TYPES,
  type FloatArray,
  floatData,
  invalid,
} from "./nn_common.ts";

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

/** The batch normalisation kernels. */
export const batchNormKernels: Kernel[] = [
  batchNormKernel("FusedBatchNorm", false),
  batchNormKernel("FusedBatchNormV2", false),
  batchNormKernel("FusedBatchNormV3", true),
];
