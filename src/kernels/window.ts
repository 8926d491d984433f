/**
 * The sliding window of 2-D convolution and pooling, in one place: the data_format, padding
 * (SAME, VALID, EXPLICIT) and stride/dilation attrs with upstream's checks, output sizes and
 * leading paddings as `framework/kernel_shape_util.cc` computes them, the resolved NHWC geometry
 * the JavaScript loops and the WebAssembly kernels (`wasm/conv.ts`) take, the walk over output
 * pixels and the taps of their windows inside the input (`WindowCursor`, used by the
 * convolutions, Conv2DBackpropInput and pooling), and the NCHW ↔ NHWC copies.
 *
 * @module
 */
import type { Shape } from "../tensor/tensor.ts";
import type { KernelContext } from "./kernel.ts";
import { allocLike, type FloatArray, invalid, unimplemented } from "./nn_common.ts";

/** The padding attr of a windowed op. */
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

/** data_format: true for NCHW, false for NHWC (the default); UNIMPLEMENTED otherwise. */
export function readFormat(ctx: KernelContext): boolean {
  const format = ctx.attr.string("data_format", "NHWC");
  if (format === "NHWC") return false;
  if (format === "NCHW") return true;
  throw unimplemented(
    `${ctx.op} node "${ctx.name}": data_format ${format} is not supported (NHWC, NCHW)`,
  );
}

/** The padding attr; EXPLICIT only where the op has it (`allowExplicit`). */
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

/** Pooling window attrs: ksize and strides (4 values each, in data_format order). */
export function poolWindow(
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

/**
 * Output size and leading padding of one windowed dimension, exactly as
 * GetWindowedOutputSizeVerbose: VALID (in - eff + stride) / stride; SAME ceil(in / stride) with
 * pad_before = floor(pad_needed / 2); EXPLICIT with the given paddings. Division truncates as
 * in C++. Exported for tests and for shape inference elsewhere.
 */
export function windowedOutputSize(
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

/**
 * Geometry of one NHWC windowed op, resolved for a given input: output sizes and leading
 * paddings computed, what the JavaScript loops and the WebAssembly kernels (`wasm/conv.ts`)
 * both take.
 */
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

/** Resolves `w` for an input of `inShape` (in w's data_format) and an fh × fw window. */
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
  const [outH, padTop] = windowedOutputSize(
    inH,
    fh,
    w.dilationH,
    w.strideH,
    w.padding,
    w.pads[0],
    w.pads[1],
  );
  const [outW, padLeft] = windowedOutputSize(
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

/** The output shape of `g` in the op's data_format. */
export function outShape(g: Geometry, nchw: boolean): number[] {
  return nchw ? [g.batch, g.outC, g.outH, g.outW] : [g.batch, g.outH, g.outW, g.outC];
}

/**
 * The taps [lo, hi) of a `filter`-tap window starting at input index `start` with `dilation`
 * whose index start + t · dilation lies in [0, size). Indices grow with t, so these taps are
 * one run.
 */
function tapRange(start: number, dilation: number, filter: number, size: number): [number, number] {
  const lo = start >= 0 ? 0 : Math.min(filter, Math.ceil(-start / dilation));
  const hi = start >= size ? 0 : Math.min(filter, Math.floor((size - 1 - start) / dilation) + 1);
  return [lo, Math.max(lo, hi)];
}

/**
 * Walks the output pixels of `g` in NHWC order (batch, row, column), giving each one's window:
 * tap (fy, fx) reads input row iy0 + fy·dh and column ix0 + fx·dw, and only the taps inside
 * the input, fy in [fy0, fy1) and fx in [fx0, fx1), are to be visited (padding adds nothing to
 * a sum, is never a max and does not count in an average). The one window iteration of the
 * convolutions, the convolution input gradient and pooling; callers loop over the taps and
 * channels themselves:
 *
 * ```ts
 * for (const win = new WindowCursor(g); win.next();) { … }
 * ```
 *
 * (A cursor rather than a callback keeps each caller's loop in its own function, where the
 * engine optimises it with its locals; a per-pixel callback cost 20–30% on small channel
 * counts.)
 */
export class WindowCursor {
  /** The output pixel's index over batch × outH × outW (its NHWC offset is pixel · outC). */
  pixel = -1;
  /** The offset of the pixel's image in the NHWC input (b · inH · inW · inC). */
  xb = 0;
  /** Input row and column of tap (0, 0), padding included (negative inside the top/left pad). */
  iy0 = 0;
  ix0 = 0;
  /** The taps inside the input: fy in [fy0, fy1), fx in [fx0, fx1) (empty ranges possible). */
  fy0 = 0;
  fy1 = 0;
  fx0 = 0;
  fx1 = 0;
  readonly #g: Geometry;
  /** [lo, hi) of the column taps of each output column, computed once. */
  readonly #cols: Int32Array;
  #b = 0;
  #oy = -1;
  #ox: number;
  readonly #last: number;

  constructor(g: Geometry) {
    this.#g = g;
    this.#cols = new Int32Array(g.outW * 2);
    for (let ox = 0; ox < g.outW; ox++) {
      const [lo, hi] = tapRange(ox * g.sw - g.padLeft, g.dw, g.fw, g.inW);
      this.#cols[2 * ox] = lo;
      this.#cols[2 * ox + 1] = hi;
    }
    this.#ox = g.outW; // the first next() starts row 0
    this.#last = g.batch * g.outH * g.outW - 1;
  }

  /** Moves to the next output pixel; false when there is none left. */
  next(): boolean {
    if (this.pixel >= this.#last) return false;
    this.pixel++;
    const g = this.#g;
    if (++this.#ox >= g.outW) {
      this.#ox = 0;
      if (++this.#oy >= g.outH) {
        // Only a wrap gets here: row 0 of the first image starts from #oy = -1.
        this.#oy = 0;
        this.#b++;
        this.xb = this.#b * g.inH * g.inW * g.inC;
      }
      this.iy0 = this.#oy * g.sh - g.padTop;
      [this.fy0, this.fy1] = tapRange(this.iy0, g.dh, g.fh, g.inH);
    }
    const ox = this.#ox;
    this.ix0 = ox * g.sw - g.padLeft;
    this.fx0 = this.#cols[2 * ox];
    this.fx1 = this.#cols[2 * ox + 1];
    return true;
  }
}
