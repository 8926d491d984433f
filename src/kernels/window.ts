/**
 * The sliding window of 2-D convolution and pooling, in one place: the data_format, padding
 * (SAME, VALID, EXPLICIT) and stride/dilation attrs with upstream's checks, output sizes and
 * leading paddings as `framework/kernel_shape_util.cc` computes them, the resolved NHWC geometry
 * the JavaScript loops and the WebAssembly kernels take, and the NCHW ↔ NHWC copies.
 *
 * @module
 */
import type { Shape } from "../tensor/tensor.ts";
import type { KernelContext } from "./kernel.ts";
import { allocLike, type FloatArray, invalid, unimplemented } from "./nn_common.ts";

export type Padding = "SAME" | "VALID" | "EXPLICIT";

/** Window attrs of a 2-D op, resolved to the H and W dimensions. */
export interface WindowAttrs {
  nchw: boolean;
  padding: Padding;
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  /** Explicit paddings [top, bottom, left, right] (zeros unless EXPLICIT). */
  pads: [number, number, number, number];
}

export function readFormat(ctx: KernelContext): boolean {
  const format = ctx.attr.string("data_format", "NHWC");
  if (format === "NHWC") return false;
  if (format === "NCHW") return true;
  throw unimplemented(
    `${ctx.op} node "${ctx.name}": data_format ${format} is not supported (NHWC, NCHW)`,
  );
}

export function readPadding(ctx: KernelContext, allowExplicit: boolean): Padding {
  const p = ctx.attr.string("padding");
  if (p === "SAME" || p === "VALID" || (p === "EXPLICIT" && allowExplicit)) return p;
  throw invalid(`${ctx.op} node "${ctx.name}": invalid padding "${p}"`);
}

/** Validates explicit_paddings as CheckValidPadding does and returns [top, bottom, left, right]. */
export function readExplicit(
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
export function convWindowAttrs(ctx: KernelContext): WindowAttrs {
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
export function windowed(
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
export interface Geometry {
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

export function geometry(
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
export function toNHWC(x: FloatArray, n: number, c: number, h: number, w: number): FloatArray {
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
export function toNCHW(x: FloatArray, n: number, h: number, w: number, c: number): FloatArray {
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

export function outShape(g: Geometry, nchw: boolean): number[] {
  return nchw ? [g.batch, g.outC, g.outH, g.outW] : [g.batch, g.outH, g.outW, g.outC];
}
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
