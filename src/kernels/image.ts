/**
 * Image kernels: `ResizeBilinear` and `ResizeNearestNeighbor` on NHWC images.
 *
 * The sampling coordinates are computed exactly as TensorFlow's CPU kernels do
 * (`tensorflow/core/util/image_resizer_state.h`, `kernels/image/resize_bilinear_op.cc`,
 * `kernels/image/resize_nearest_neighbor_op.cc`), in float32 arithmetic step by step (every
 * intermediate goes through `Math.fround`), so the chosen source pixels and the interpolation
 * weights — and therefore the outputs — match TensorFlow's bit for bit:
 * - scale = in / out, or (in - 1) / (out - 1) with `align_corners` and out > 1;
 * - bilinear: source = (x + 0.5) · scale - 0.5 with `half_pixel_centers`, else x · scale; the
 *   lower index is max(floor, 0), the upper min(ceil, in - 1), the weight source - floor;
 * - nearest: source = (x + 0.5) · scale (half pixel) or x · scale, then roundf with
 *   `align_corners` else floorf, clamped to [0, in - 1].
 *
 * ResizeBilinear always returns float32 (TensorFlow casts every input type to float, as here);
 * ResizeNearestNeighbor returns the input type.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import { decodeFloat16, isFloat16 } from "./elementwise.ts";
import { uninitialized } from "../tensor/arena.ts";
import { checkedElements } from "./sizes.ts";
import { resizeBilinearF32 } from "./wasm/image.ts";
import type { Kernel, KernelContext } from "./kernel.ts";

const T = DataType;

/** The types TensorFlow registers both resize kernels for on CPU (its real number types). */
const RESIZE_TYPES: readonly DataType[] = [
  T.DT_FLOAT,
  T.DT_DOUBLE,
  T.DT_HALF,
  T.DT_BFLOAT16,
  T.DT_INT8,
  T.DT_UINT8,
  T.DT_INT16,
  T.DT_UINT16,
  T.DT_INT32,
  T.DT_INT64,
];

const fround = Math.fround;

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

function unsupported(ctx: KernelContext, dtype: DataType): ServingError {
  return new ServingError(
    Code.UNIMPLEMENTED,
    `${ctx.op} is not implemented for ${dtypeName(dtype)} (node "${ctx.name}")`,
  );
}

/** The attrs both resize ops share. */
interface ResizeAttrs {
  readonly alignCorners: boolean;
  readonly halfPixel: boolean;
}

function readAttrs(ctx: KernelContext): ResizeAttrs {
  if (ctx.attr.has("T")) {
    const t = ctx.attr.type("T");
    if (!RESIZE_TYPES.includes(t)) throw unsupported(ctx, t);
  }
  return {
    alignCorners: ctx.attr.bool("align_corners", false),
    halfPixel: ctx.attr.bool("half_pixel_centers", false),
  };
}

/** What ImageResizerState computes from the inputs. */
interface ResizeState {
  readonly batch: number;
  readonly inH: number;
  readonly inW: number;
  readonly channels: number;
  readonly outH: number;
  readonly outW: number;
  readonly scaleH: number;
  readonly scaleW: number;
}

/** CalculateResizeScale, in float32. */
function resizeScale(inSize: number, outSize: number, alignCorners: boolean): number {
  return alignCorners && outSize > 1
    ? fround((inSize - 1) / (outSize - 1))
    : fround(inSize / outSize);
}

/** ImageResizerState::ValidateAndCalculateOutputSize, with TensorFlow's messages. */
function resizeState(a: ResizeAttrs, input: Tensor, size: Tensor): ResizeState {
  if (a.halfPixel && a.alignCorners) {
    throw invalid("If half_pixel_centers is True, align_corners must be False.");
  }
  if (input.rank !== 4) {
    throw invalid(`input must be 4-dimensional${shapeString(input.shape)}`);
  }
  const [batch, inH, inW, channels] = input.shape;
  if (!(channels > 0)) throw invalid("image must have at least one channel");
  if (!(inH > 0 && inW > 0)) throw invalid("input image must be of non-zero size");
  if (size.rank !== 1) throw invalid(`shape_t must be 1-dimensional${shapeString(size.shape)}`);
  if (size.size !== 2) throw invalid(`shape_t must have two elements${shapeString(size.shape)}`);
  const [outH, outW] = toIntArray(size, "size");
  if (!(outH > 0 && outW > 0)) throw invalid("output dimensions must be positive");
  return {
    batch,
    inH,
    inW,
    channels,
    outH,
    outW,
    scaleH: resizeScale(inH, outH, a.alignCorners),
    scaleW: resizeScale(inW, outW, a.alignCorners),
  };
}

/** The input as float32 values (static_cast<float> of each element, as TensorFlow reads it). */
function asFloat32(t: Tensor): Float32Array {
  const d = t.data as NumericArray;
  if (d instanceof Float32Array) return d;
  if (isFloat16(t.dtype)) return decodeFloat16(d as Uint16Array, t.dtype);
  const out = new Float32Array(d.length);
  if (d instanceof BigInt64Array) {
    for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  } else {
    out.set(d as ArrayLike<number>);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ResizeBilinear

/**
 * compute_interpolation_weights: for each output index, the lower and upper source indices
 * (pre-multiplied by `stride`) and the float32 weight of the upper one.
 */
export function interpolationWeights(
  outSize: number,
  inSize: number,
  scale: number,
  halfPixel: boolean,
  stride: number,
): { lower: Int32Array; upper: Int32Array; lerp: Float32Array } {
  const lower = new Int32Array(outSize);
  const upper = new Int32Array(outSize);
  const lerp = new Float32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = halfPixel ? fround(fround((i + 0.5) * scale) - 0.5) : fround(i * scale);
    const f = Math.floor(src);
    lower[i] = Math.max(f, 0) * stride;
    upper[i] = Math.min(Math.ceil(src), inSize - 1) * stride;
    lerp[i] = src - f; // exact in float32: src and its floor are floats of one binade or less
  }
  return { lower, upper, lerp };
}

/**
 * The bilinear loop over NHWC float32 data, with TensorFlow's float32 lerp order: in
 * WebAssembly SIMD where it runs (same floats), else in JavaScript.
 */
function resizeBilinear(x: Float32Array, st: ResizeState, halfPixel: boolean): Float32Array {
  const { batch, inH, inW, channels: c, outH, outW } = st;
  const ys = interpolationWeights(outH, inH, st.scaleH, halfPixel, inW * c);
  const xs = interpolationWeights(outW, inW, st.scaleW, halfPixel, c);
  const fast = resizeBilinearF32(x, batch, inH, inW, c, ys, xs);
  if (fast !== null) return fast;
  const y = uninitialized(Float32Array, batch * outH * outW * c);
  const inImage = inH * inW * c;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const base = b * inImage;
    for (let oy = 0; oy < outH; oy++) {
      const top = base + ys.lower[oy];
      const bottom = base + ys.upper[oy];
      const yl = ys.lerp[oy];
      for (let ox = 0; ox < outW; ox++) {
        const l = xs.lower[ox];
        const r = xs.upper[ox];
        const xl = xs.lerp[ox];
        for (let ch = 0; ch < c; ch++, o++) {
          const tl = x[top + l + ch];
          const tr = x[top + r + ch];
          const bl = x[bottom + l + ch];
          const br = x[bottom + r + ch];
          const t = fround(tl + fround(fround(tr - tl) * xl));
          const u = fround(bl + fround(fround(br - bl) * xl));
          y[o] = t + fround(fround(u - t) * yl);
        }
      }
    }
  }
  return y;
}

const resizeBilinearKernel: Kernel = {
  op: "ResizeBilinear",
  compile(ctx) {
    const a = readAttrs(ctx);
    return (inputs) => {
      const [input, size] = inputs;
      if (!RESIZE_TYPES.includes(input.dtype)) throw unsupported(ctx, input.dtype);
      const st = resizeState(a, input, size);
      const shape = [st.batch, st.outH, st.outW, st.channels];
      checkedElements(shape, "ResizeBilinear output");
      const x = asFloat32(input);
      if (st.batch === 0) return [new Tensor(T.DT_FLOAT, shape, new Float32Array(0))];
      // No-op resizes are a cast to float, as upstream.
      if (st.outH === st.inH && st.outW === st.inW) {
        return [new Tensor(T.DT_FLOAT, shape, x)];
      }
      return [new Tensor(T.DT_FLOAT, shape, resizeBilinear(x, st, a.halfPixel))];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// ResizeNearestNeighbor

/** The source index of every output index along one dimension (compute_indices). */
function nearestIndices(
  outSize: number,
  inSize: number,
  scale: number,
  a: ResizeAttrs,
): Int32Array {
  const idx = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = a.halfPixel ? fround((i + 0.5) * scale) : fround(i * scale);
    // roundf rounds halves away from zero; sources here are never negative.
    let s = Math.min(a.alignCorners ? Math.floor(src + 0.5) : Math.floor(src), inSize - 1);
    if (a.halfPixel) s = Math.max(0, s);
    idx[i] = s;
  }
  return idx;
}

const resizeNearestKernel: Kernel = {
  op: "ResizeNearestNeighbor",
  compile(ctx) {
    const a = readAttrs(ctx);
    return (inputs) => {
      const [input, size] = inputs;
      if (!RESIZE_TYPES.includes(input.dtype)) throw unsupported(ctx, input.dtype);
      const st = resizeState(a, input, size);
      if (st.inH >= 1 << 24 || st.inW >= 1 << 24) {
        throw invalid("nearest neighbor requires max height & width of 2^24");
      }
      const { batch, inH, inW, channels: c, outH, outW } = st;
      const shape = [batch, outH, outW, c];
      checkedElements(shape, "ResizeNearestNeighbor output");
      const x = input.data as NumericArray;
      const ctor = x.constructor as new (n: number) => NumericArray;
      const y = new ctor(batch * outH * outW * c);
      const ys = nearestIndices(outH, inH, st.scaleH, a);
      const xs = nearestIndices(outW, inW, st.scaleW, a);
      const src = x as unknown as number[];
      const dst = y as unknown as number[];
      let o = 0;
      for (let b = 0; b < batch; b++) {
        const base = b * inH * inW * c;
        for (let oy = 0; oy < outH; oy++) {
          const row = base + ys[oy] * inW * c;
          for (let ox = 0; ox < outW; ox++) {
            const p = row + xs[ox] * c;
            for (let ch = 0; ch < c; ch++) dst[o++] = src[p + ch];
          }
        }
      }
      return [new Tensor(input.dtype, shape, y)];
    };
  },
};

/** The image kernels: ResizeBilinear, ResizeNearestNeighbor. */
export const imageKernels: Kernel[] = [resizeBilinearKernel, resizeNearestKernel];
