/**
 * Conv2DBackpropInput, the transposed convolution (`conv_grad_input_ops.h`,
 * `conv_grad_shape_utils.cc`), with TensorFlow's shape checks and messages.
 *
 * @module
 */
import { Tensor, toIntArray } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import { isWeightSource } from "./wasm/dense.ts";
import { checkedElements } from "./sizes.ts";
import { matmulF32, placeTapsF32 } from "./wasm/conv.ts";
import {
  allocLike,
  checkArity,
  checkTypeAttr,
  type FloatArray,
  floatData,
  invalid,
  sameFloat,
  uninitializedLike,
} from "./nn_common.ts";
import {
  convWindowAttrs,
  type Geometry,
  geometry,
  toNCHW,
  toNHWC,
  WindowCursor,
} from "./window.ts";

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
  const { inW, inC, fw, outC, dh, dw } = g;
  const tap = inC * outC;
  for (const win = new WindowCursor(g); win.next();) {
    const dyo = win.pixel * outC;
    for (let fy = win.fy0; fy < win.fy1; fy++) {
      const row = (win.iy0 + fy * dh) * inW;
      for (let fx = win.fx0; fx < win.fx1; fx++) {
        const xo = win.xb + (row + win.ix0 + fx * dw) * inC;
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

/**
 * The same sums with the per-tap products from WebAssembly: `cols` holds, for each out_backprop
 * pixel, its product with the filter seen as [fh·fw·inC, outC] (a GEMM over the outC channels,
 * float32), and each of its fh·fw·inC values is added into the input pixel its tap lands on.
 */
function col2imAdd(cols: Float32Array, acc: Float64Array, g: Geometry): void {
  const { inW, inC, fh, fw, dh, dw } = g;
  const taps = fh * fw * inC;
  for (const win = new WindowCursor(g); win.next();) {
    const co = win.pixel * taps;
    for (let fy = win.fy0; fy < win.fy1; fy++) {
      const row = (win.iy0 + fy * dh) * inW;
      for (let fx = win.fx0; fx < win.fx1; fx++) {
        const xo = win.xb + (row + win.ix0 + fx * dw) * inC;
        const c = co + (fy * fw + fx) * inC;
        for (let ci = 0; ci < inC; ci++) acc[xo + ci] += cols[c + ci];
      }
    }
  }
}

/**
 * col2imAdd where windows do not overlap ((f − 1)·d < s on both axes, as in a Conv2DTranspose
 * whose kernel size equals its stride): each input pixel takes at most one tap, so its value is
 * that tap's product, which is what the float64 sum of one float32 value rounds back to. `y`
 * starts zeroed (pixels no tap reaches stay 0).
 */
function col2imPlace(cols: Float32Array, y: Float32Array, g: Geometry): void {
  const { batch, inH, inW, inC, fh, fw, outH, outW, sh, sw, dh, dw, padTop, padLeft } = g;
  const taps = fh * fw * inC;
  // Row by row and tap by tap, with the run of output columns whose tap lands inside the image
  // found once, so the inner loop is a strided copy (per-pixel bounds checks cost 10× here).
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < outH; oy++) {
      const pix0 = (b * outH + oy) * outW;
      for (let fy = 0; fy < fh; fy++) {
        const iy = oy * sh - padTop + fy * dh;
        if (iy < 0 || iy >= inH) continue;
        const row = (b * inH + iy) * inW;
        for (let fx = 0; fx < fw; fx++) {
          const off = fx * dw - padLeft; // ix = ox·sw + off
          let ox0 = 0, ox1 = outW;
          while (ox0 < outW && ox0 * sw + off < 0) ox0++;
          while (ox1 > ox0 && (ox1 - 1) * sw + off >= inW) ox1--;
          const tap = (fy * fw + fx) * inC;
          if (inC === 1) {
            let yo = row + ox0 * sw + off, c = (pix0 + ox0) * taps + tap;
            for (let ox = ox0; ox < ox1; ox++, yo += sw, c += taps) y[yo] = cols[c];
          } else {
            for (let ox = ox0; ox < ox1; ox++) {
              const yo = (row + ox * sw + off) * inC, c = (pix0 + ox) * taps + tap;
              for (let ci = 0; ci < inC; ci++) y[yo + ci] = cols[c + ci];
            }
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
      const n = checkedElements(inShape, "Conv2DBackpropInput output");
      // Windows that tile the output exactly (a Conv2DTranspose whose kernel size is its stride,
      // unpadded): every element gets its one tap below (or the float64 sums), so the output
      // need not be zeroed first (256 KiB for selfie's last upsampling).
      const tiles = fh === g.sh && fw === g.sw && g.dh === 1 && g.dw === 1 && g.padTop === 0 &&
        g.padLeft === 0 && g.inH === g.outH * g.sh && g.inW === g.outW * g.sw;
      let y = tiles && dyT.size > 0 ? uninitializedLike(f, n) : allocLike(f, n);
      if (n > 0 && dyT.size > 0) {
        if (w.nchw) dy = toNHWC(dy, g.batch, fout, g.outH, g.outW);
        // (Measured, best of 40: 2×2 taps of 1 or 2 channels from 16, the segmentation heads'
        // last upsampling, take 0.2–0.35 ms in the WebAssembly product against 1.9 ms for the
        // whole loop below.)
        const cols = wasm && dy instanceof Float32Array && f instanceof Float32Array
          ? matmulF32(dy, f, null, g.batch * g.outH * g.outW, fout, fh * fw * fin, true, 0)
          : null;
        if (cols !== null && (fh - 1) * g.dh < g.sh && (fw - 1) * g.dw < g.sw) {
          // In WebAssembly where both are in the kernel memory (a plan's intermediates).
          if (!placeTapsF32(cols, y as Float32Array, g)) col2imPlace(cols, y as Float32Array, g);
        } else {
          const acc = new Float64Array(n);
          if (cols !== null) col2imAdd(cols, acc, g);
          else conv2dBackpropInputCore(dy, f, acc, g);
          y.set(acc);
        }
      }
      if (w.nchw) y = toNCHW(y, g.batch, g.inH, g.inW, g.inC);
      return [new Tensor(filter.dtype, inShape, y)];
    };
  },
};

/** The convolution gradient kernels. */
export const convBackpropKernels: Kernel[] = [conv2dBackpropInput];
