/**
 * MaxPool, MaxPoolV2 and AvgPool (`pooling_ops_common.cc`, `avgpooling_op.cc`): windows clipped
 * to the input, averages over the valid elements only. Float32 runs in WebAssembly where it can.
 *
 * @module
 */
import { DataType, dtypeName } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import { poolF32 } from "./wasm/conv.ts";
import {
  allocLike,
  checkArity,
  checkTypeAttr,
  type FloatArray,
  floatData,
  invalid,
  Scratch,
  unimplemented,
} from "./nn_common.ts";
import {
  type Geometry,
  geometry,
  outShape,
  type Padding,
  readExplicit,
  readFormat,
  readPadding,
  toNCHW,
  toNHWC,
  type WindowAttrs,
} from "./window.ts";

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

/** The pooling kernels. */
export const poolingKernels: Kernel[] = [
  poolKernel("MaxPool", true),
  maxPoolV2,
  poolKernel("AvgPool", false),
];
