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
} from "./nn_common.ts";
import {
  type Geometry,
  geometry,
  outShape,
  poolWindow,
  readExplicit,
  readFormat,
  readPadding,
  toNCHW,
  toNHWC,
  type WindowAttrs,
  WindowCursor,
} from "./window.ts";

/** The lowest finite value, MaxPool's initial value upstream (NumTraits<T>::lowest()). */
const LOWEST_F32 = -3.4028234663852886e38;

/** NHWC max pooling; windows are clipped to the input (padding never wins). */
function maxPoolCore(x: FloatArray, y: FloatArray, g: Geometry): void {
  const { inW, inC: c } = g;
  const lowest = y instanceof Float32Array ? LOWEST_F32 : -Number.MAX_VALUE;
  for (const win = new WindowCursor(g); win.next();) {
    const yo = win.pixel * c;
    for (let j = 0; j < c; j++) y[yo + j] = lowest;
    for (let iy = win.iy0 + win.fy0; iy < win.iy0 + win.fy1; iy++) {
      for (let ix = win.ix0 + win.fx0; ix < win.ix0 + win.fx1; ix++) {
        const xo = win.xb + (iy * inW + ix) * c;
        // `>` keeps the running max on NaN, as std::max(accum, v) does upstream.
        for (let j = 0; j < c; j++) {
          const v = x[xo + j];
          if (v > y[yo + j]) y[yo + j] = v;
        }
      }
    }
  }
}

/**
 * NHWC average pooling dividing by the number of valid (non-padded) elements, as upstream.
 * Channels go four at a time in local float64 sums (the global averages of squeeze-and-excitation
 * blocks are most of this loop's work); each sum adds the same values in the same order as one
 * channel at a time would.
 */
function avgPoolCore(x: FloatArray, y: FloatArray, g: Geometry, acc: Float64Array): void {
  const { inW, inC: c } = g;
  const c4 = c & ~3;
  for (const win = new WindowCursor(g); win.next();) {
    const yo = win.pixel * c;
    const y0 = win.iy0 + win.fy0, y1 = win.iy0 + win.fy1;
    const x0 = win.ix0 + win.fx0, x1 = win.ix0 + win.fx1;
    const inv = 1 / ((win.fy1 - win.fy0) * (win.fx1 - win.fx0));
    for (let j = 0; j < c4; j += 4) {
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let iy = y0; iy < y1; iy++) {
        for (let xo = win.xb + (iy * inW + x0) * c + j, e = xo + (x1 - x0) * c; xo < e; xo += c) {
          a0 += x[xo];
          a1 += x[xo + 1];
          a2 += x[xo + 2];
          a3 += x[xo + 3];
        }
      }
      y[yo + j] = a0 * inv;
      y[yo + j + 1] = a1 * inv;
      y[yo + j + 2] = a2 * inv;
      y[yo + j + 3] = a3 * inv;
    }
    if (c4 === c) continue;
    for (let j = c4; j < c; j++) acc[j] = 0;
    for (let iy = y0; iy < y1; iy++) {
      for (let ix = x0; ix < x1; ix++) {
        const xo = win.xb + (iy * inW + ix) * c;
        for (let j = c4; j < c; j++) acc[j] += x[xo + j];
      }
    }
    for (let j = c4; j < c; j++) y[yo + j] = acc[j] * inv;
  }
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
  // WebAssembly for float32: max, and averages (float32 sums of small windows, as TensorFlow's
  // kernel; float64 sums of large ones, a global average say, as the loop below).
  const wasm = x instanceof Float32Array && g.outH * g.outW > 0;
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
