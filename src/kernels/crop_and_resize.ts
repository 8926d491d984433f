/**
 * CropAndResize: boxes cut out of a batch of NHWC images and resampled to one crop size, as
 * TensorFlow's CPU kernel (core/kernels/image/crop_and_resize_op.cc) computes them: float32
 * arithmetic step by step (each operation rounded with Math.fround), bilinear or nearest
 * sampling, `extrapolation_value` where a sample falls outside the image. Object-detection
 * exports (Faster R-CNN, Mask R-CNN second stages) use it to pool box features.
 *
 * The output size comes from the request (`crop_size`, the number of boxes) and is checked
 * before it is allocated.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import { decodeFloat16, unsupportedDtype } from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

const T = DataType;
const f = Math.fround;

/** The image types TF registers CropAndResize for on CPU (its OpDef's allowed values). */
const IMAGE_TYPES: readonly DataType[] = [
  T.DT_UINT8,
  T.DT_UINT16,
  T.DT_INT8,
  T.DT_INT16,
  T.DT_INT32,
  T.DT_INT64,
  T.DT_HALF,
  T.DT_FLOAT,
  T.DT_DOUBLE,
];

/** The image's values as float32, as the kernel's `static_cast<float>` reads them. */
function imageFloats(t: Tensor): Float32Array {
  if (t.dtype === T.DT_HALF) return decodeFloat16(t.data as Uint16Array, t.dtype);
  if (t.data instanceof Float32Array) return t.data;
  if (t.data instanceof BigInt64Array) return Float32Array.from(t.data, Number);
  return Float32Array.from(t.data as NumericArray as ArrayLike<number>);
}

/** ParseAndCheckBoxSizes: the number of boxes, with TF's messages. */
function numBoxes(boxes: Tensor, boxIndex: Tensor): number {
  if (boxes.size === 0 && boxIndex.size === 0) return 0;
  if (boxes.rank !== 2) throw invalidArgument(`boxes must be 2-D${shapeString(boxes.shape)}`);
  const n = boxes.shape[0];
  if (boxes.shape[1] !== 4) throw invalidArgument("boxes must have 4 columns");
  if (boxIndex.rank !== 1) {
    throw invalidArgument(`box_index must be 1-D${shapeString(boxIndex.shape)}`);
  }
  if (boxIndex.shape[0] !== n) throw invalidArgument("box_index has incompatible shape");
  return n;
}

/** The sample position along one axis (TF's in_y / in_x), in float32 as the kernel computes. */
function samplePosition(
  lo: number,
  hi: number,
  size: number,
  crop: number,
  scale: number,
  i: number,
): number {
  if (crop > 1) return f(f(lo * (size - 1)) + f(i * scale));
  // `0.5 * (y1 + y2) * (image_height - 1)` is a double expression, rounded once to float.
  return f(0.5 * f(lo + hi) * (size - 1));
}

/** The crops of every box (boxes and indices already checked), into `out`. */
function cropAndResize(
  image: Float32Array,
  [batch, height, width, depth]: readonly number[],
  boxes: Float32Array,
  boxIndex: Int32Array,
  [cropH, cropW]: readonly number[],
  nearest: boolean,
  extrapolation: number,
  out: Float32Array,
): void {
  const n = boxIndex.length;
  const rowStride = width * depth;
  const imageStride = height * rowStride;
  for (let b = 0; b < n; b++) {
    const y1 = boxes[4 * b];
    const x1 = boxes[4 * b + 1];
    const y2 = boxes[4 * b + 2];
    const x2 = boxes[4 * b + 3];
    const bIn = boxIndex[b];
    if (!(bIn >= 0 && bIn < batch)) continue;
    const base = bIn * imageStride;
    const hScale = cropH > 1 ? f(f(f(y2 - y1) * (height - 1)) / (cropH - 1)) : 0;
    const wScale = cropW > 1 ? f(f(f(x2 - x1) * (width - 1)) / (cropW - 1)) : 0;
    for (let y = 0; y < cropH; y++) {
      const o = ((b * cropH + y) * cropW) * depth;
      const inY = samplePosition(y1, y2, height, cropH, hScale, y);
      if (inY < 0 || inY > height - 1) {
        out.fill(extrapolation, o, o + cropW * depth);
        continue;
      }
      const top = Math.floor(inY);
      const bottom = Math.ceil(inY);
      const yLerp = f(inY - top);
      const nearY = Math.floor(inY + 0.5); // roundf of a non-negative value
      for (let x = 0; x < cropW; x++) {
        const ox = o + x * depth;
        const inX = samplePosition(x1, x2, width, cropW, wScale, x);
        if (inX < 0 || inX > width - 1) {
          out.fill(extrapolation, ox, ox + depth);
          continue;
        }
        if (nearest) {
          const p = base + nearY * rowStride + Math.floor(inX + 0.5) * depth;
          for (let d = 0; d < depth; d++) out[ox + d] = image[p + d];
          continue;
        }
        const left = Math.floor(inX);
        const right = Math.ceil(inX);
        const xLerp = f(inX - left);
        const tl = base + top * rowStride + left * depth;
        const tr = base + top * rowStride + right * depth;
        const bl = base + bottom * rowStride + left * depth;
        const br = base + bottom * rowStride + right * depth;
        for (let d = 0; d < depth; d++) {
          const topLeft = image[tl + d];
          const bottomLeft = image[bl + d];
          const t = f(topLeft + f(f(image[tr + d] - topLeft) * xLerp));
          const bo = f(bottomLeft + f(f(image[br + d] - bottomLeft) * xLerp));
          out[ox + d] = f(t + f(f(bo - t) * yLerp));
        }
      }
    }
  }
}

/**
 * CropAndResize(image, boxes, box_ind, crop_size) → crops `[num_boxes, crop_height, crop_width,
 * depth]` float32; attrs `method` (bilinear, nearest) and `extrapolation_value`.
 */
const cropAndResizeKernel: Kernel = {
  op: "CropAndResize",
  compile(ctx) {
    const method = ctx.attr.string("method", "bilinear");
    if (method !== "bilinear" && method !== "nearest") {
      // TF's kernel constructor refuses it with these words.
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `method must be 'bilinear' or 'nearest'${method} (node "${ctx.name}")`,
      );
    }
    const extrapolation = f(ctx.attr.float("extrapolation_value", 0));
    if (ctx.attr.has("T")) {
      const t = ctx.attr.type("T");
      if (!IMAGE_TYPES.includes(t)) throw unsupportedDtype("CropAndResize", ctx.name, t);
    }
    return (inputs) => {
      const [image, boxes, boxIndex, cropSize] = inputs;
      if (!IMAGE_TYPES.includes(image.dtype)) {
        throw unsupportedDtype("CropAndResize", ctx.name, image.dtype);
      }
      if (image.rank !== 4) {
        throw invalidArgument(`input image must be 4-D${shapeString(image.shape)}`);
      }
      const [batch, height, width, depth] = image.shape;
      if (!(height > 0 && width > 0)) throw invalidArgument("image dimensions must be positive");
      if (boxes.dtype !== T.DT_FLOAT || boxIndex.dtype !== T.DT_INT32) {
        throw invalidArgument(
          `CropAndResize needs float boxes and int32 box_ind (node "${ctx.name}")`,
        );
      }
      const n = numBoxes(boxes, boxIndex);
      if (cropSize.rank !== 1) {
        throw invalidArgument(`crop_size must be 1-D${shapeString(cropSize.shape)}`);
      }
      if (cropSize.shape[0] !== 2) {
        throw invalidArgument(`crop_size must have two elements${shapeString(cropSize.shape)}`);
      }
      if (cropSize.dtype !== T.DT_INT32) {
        throw invalidArgument(`CropAndResize needs an int32 crop_size (node "${ctx.name}")`);
      }
      const [cropH, cropW] = cropSize.data as Int32Array;
      if (!(cropH > 0 && cropW > 0)) throw invalidArgument("crop dimensions must be positive");
      const shape = [n, cropH, cropW, depth];
      const out = new Float32Array(checkedElements(shape, "CropAndResize output"));
      const indices = boxIndex.data as Int32Array;
      for (let b = 0; b < n; b++) {
        if (!(indices[b] >= 0 && indices[b] < batch)) {
          throw new ServingError(
            Code.OUT_OF_RANGE,
            "box_index has values outside [0, batch_size)",
          );
        }
      }
      const bx = boxes.data as Float32Array;
      for (let i = 0; i < bx.length; i++) {
        if (!Number.isFinite(bx[i])) {
          throw invalidArgument("Boxes contains at least one element that is not finite");
        }
      }
      cropAndResize(
        imageFloats(image),
        image.shape,
        bx,
        indices,
        [cropH, cropW],
        method === "nearest",
        extrapolation,
        out,
      );
      return [new Tensor(T.DT_FLOAT, shape, out)];
    };
  },
};

/** The crop kernels: CropAndResize. */
export const cropAndResizeKernels: Kernel[] = [cropAndResizeKernel];
