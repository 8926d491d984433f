/**
 * Layout ops that move blocks of elements between the spatial, depth and batch dimensions:
 * `DepthToSpace`, `SpaceToDepth` (NHWC), `SpaceToBatchND`, `BatchToSpaceND` and their
 * fixed-block ancestors `SpaceToBatch`, `BatchToSpace` (what TF1 exports for dilated
 * convolutions). Semantics and messages follow TensorFlow's CPU kernels
 * (`core/kernels/depthtospace_op.cc`, `spacetodepth_op.cc`, `spacetobatch_op.cc`,
 * `batchtospace_op.cc`).
 *
 * Every op is pure data movement: each output element is one input element (or a zero pad),
 * so every element type moves the same way (complex types as two lanes, strings as objects).
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName, lanes, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, shapeString, Tensor, type TensorData, toIntArray } from "../tensor/tensor.ts";
import { REALS } from "./dtypes.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { checkedElements } from "./sizes.ts";

function unimplemented(ctx: KernelContext, attr: string, value: string): ServingError {
  return new ServingError(
    Code.UNIMPLEMENTED,
    `${ctx.op} node "${ctx.name}": attr ${attr}=${value} is not supported (supported: NHWC)`,
  );
}

/** Refuses a `T` attr outside `allowed` at load. */
function checkType(ctx: KernelContext, allowed: readonly DataType[] | undefined): void {
  if (allowed === undefined || !ctx.attr.has("T")) return;
  const t = ctx.attr.type("T");
  if (!allowed.includes(t)) {
    throw new ServingError(
      Code.UNIMPLEMENTED,
      `${ctx.op} node "${ctx.name}": attr T=${dtypeName(t)} is not supported (TensorFlow ` +
        `registers no CPU kernel for it)`,
    );
  }
}

/** Fresh storage of the kind of `like` with `len` slots (zeros, or empty strings). */
function allocLike(like: TensorData, len: number): TensorData {
  if (Array.isArray(like)) return Array.from({ length: len }, () => new Uint8Array(0));
  const ctor = (like as NumericArray).constructor as new (n: number) => NumericArray;
  return new ctor(len);
}

/**
 * Builds a tensor of `shape` whose element `o` is input element `src(o)`, or zero where
 * `src` returns -1. `src` is called once per output element in row-major order.
 */
function moveElements(
  t: Tensor,
  shape: Shape,
  what: string,
  src: (out: Int32Array) => number,
): Tensor {
  const n = checkedElements(shape, what);
  const unit = lanes(t.dtype);
  const out = allocLike(t.data, n * unit);
  const d = out as unknown as unknown[];
  const s = t.data as unknown as unknown[];
  const idx = new Int32Array(shape.length);
  const rank = shape.length;
  for (let o = 0; o < n; o++) {
    const i = src(idx);
    if (i >= 0) { for (let u = 0; u < unit; u++) d[o * unit + u] = s[i * unit + u]; }
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
  return new Tensor(t.dtype, shape, out);
}

// ---------------------------------------------------------------------------------------------
// DepthToSpace / SpaceToDepth

function blockSize(ctx: KernelContext): number {
  const b = ctx.attr.int("block_size");
  if (!(b > 1)) throw invalidArgument(`Block size should be > 1, but was: ${b}`);
  return b;
}

function nhwcOnly(ctx: KernelContext): void {
  const format = ctx.attr.string("data_format", "NHWC");
  if (format !== "NHWC") throw unimplemented(ctx, "data_format", format);
}

function rank4(t: Tensor): [number, number, number, number] {
  if (t.rank !== 4) throw invalidArgument(`Input rank should be: 4 instead of: ${t.rank}`);
  return t.shape as [number, number, number, number];
}

const depthToSpace: Kernel = {
  op: "DepthToSpace",
  compile(ctx) {
    const bs = blockSize(ctx);
    nhwcOnly(ctx);
    return ([t]) => {
      const depth = rank4(t)[3];
      const sq = bs * bs;
      if (depth % sq !== 0) {
        throw invalidArgument(`Input depth dimension ${depth} should be divisible by: ${sq}`);
      }
      const od = depth / sq;
      return [depthToSpaceRuns(t, bs, od)];
    };
  },
};

/**
 * DepthToSpace (NHWC) by runs: output[b, y, x, c] = input[b, y / bs, x / bs, ((y % bs) · bs +
 * x % bs) · od + c], so each output pixel is one run of od consecutive input values. Copied
 * run by run in output order (a per-element index function costs ~10 ns an element).
 */
function depthToSpaceRuns(t: Tensor, bs: number, od: number): Tensor {
  const [batch, h, w, depth] = t.shape;
  const shape = [batch, h * bs, w * bs, od];
  const n = checkedElements(shape, "DepthToSpace");
  const unit = lanes(t.dtype);
  const out = allocLike(t.data, n * unit);
  const run = od * unit;
  const copy = (src: ArrayLike<unknown>, dst: { [i: number]: unknown }) => {
    for (let b = 0, o = 0; b < batch; b++) {
      for (let y = 0; y < h * bs; y++) {
        const inRow = (b * h + ((y / bs) | 0)) * w, block = (y % bs) * bs;
        for (let x = 0; x < w * bs; x++) {
          let s = ((inRow + ((x / bs) | 0)) * depth + (block + (x % bs)) * od) * unit;
          for (let k = 0; k < run; k++) dst[o++] = src[s++];
        }
      }
    }
  };
  // A loop of its own for float32 (the common case), which then only sees Float32Arrays.
  if (t.data instanceof Float32Array) {
    copyF32(t.data, out as Float32Array, batch, h, w, depth, bs, od);
  } else copy(t.data as ArrayLike<unknown>, out as unknown as unknown[]);
  return new Tensor(t.dtype, shape, out);
}

function copyF32(
  src: Float32Array,
  dst: Float32Array,
  batch: number,
  h: number,
  w: number,
  depth: number,
  bs: number,
  od: number,
): void {
  for (let b = 0, o = 0; b < batch; b++) {
    for (let y = 0; y < h * bs; y++) {
      const inRow = (b * h + ((y / bs) | 0)) * w, block = (y % bs) * bs;
      for (let x = 0; x < w * bs; x++) {
        let s = (inRow + ((x / bs) | 0)) * depth + (block + (x % bs)) * od;
        for (let k = 0; k < od; k++) dst[o++] = src[s++];
      }
    }
  }
}

const spaceToDepth: Kernel = {
  op: "SpaceToDepth",
  compile(ctx) {
    const bs = blockSize(ctx);
    nhwcOnly(ctx);
    return ([t]) => {
      const [batch, h, w, depth] = rank4(t);
      if (h % bs !== 0 || w % bs !== 0) {
        throw invalidArgument(
          `Image width ${w} and height ${h} should be divisible by block_size: ${bs}`,
        );
      }
      const oh = h / bs, ow = w / bs;
      // output[b, y, x, ((dy * bs) + dx) * depth + c] = input[b, y * bs + dy, x * bs + dx, c]
      return [
        moveElements(t, [batch, oh, ow, depth * bs * bs], ctx.op, (i) => {
          const oc = i[3];
          const c = oc % depth;
          const off = (oc - c) / depth;
          const dy = (off / bs) | 0, dx = off % bs;
          return ((i[0] * h + i[1] * bs + dy) * w + i[2] * bs + dx) * depth + c;
        }),
      ];
    };
  },
};

// ---------------------------------------------------------------------------------------------
// SpaceToBatchND / BatchToSpaceND

/** Reads block_shape and paddings (or crops) as TensorFlow validates them. */
function blockArgs(
  t: Tensor,
  blockT: Tensor,
  padT: Tensor,
  padName: "paddings" | "crops",
): { block: number[]; pads: number[] } {
  if (blockT.rank !== 1) {
    throw invalidArgument(`block_shape rank should be 1 instead of ${blockT.rank}`);
  }
  const m = blockT.shape[0];
  if (t.rank < 1 + m) {
    throw invalidArgument(`input rank should be >= ${1 + m} instead of ${t.rank}`);
  }
  if (!(padT.rank === 2 && padT.shape[0] === m && padT.shape[1] === 2)) {
    throw invalidArgument(
      `${padName} should have shape [${m}, 2] instead of ${shapeString(padT.shape)}`,
    );
  }
  const block = toIntArray(blockT, "block_shape");
  const pads = toIntArray(padT, padName);
  return { block, pads };
}

function spaceToBatch(t: Tensor, block: number[], pads: number[], what: string): Tensor {
  const m = block.length;
  let product = 1;
  for (let i = 0; i < m; i++) {
    if (block[i] < 1) {
      throw invalidArgument(
        `All values in block_shape must be positive, got value, ${block[i]} at index ${i}.`,
      );
    }
    product *= block[i];
  }
  const batch = t.shape[0];
  const outShape = [batch * product];
  for (let i = 0; i < m; i++) {
    const before = pads[2 * i], after = pads[2 * i + 1];
    if (before < 0 || after < 0) throw invalidArgument("Paddings must be non-negative");
    const padded = t.shape[i + 1] + before + after;
    if (padded % block[i] !== 0) {
      throw invalidArgument(
        `padded_shape[${i}]=${padded} is not divisible by block_shape[${i}]=${block[i]}`,
      );
    }
    outShape.push(padded / block[i]);
  }
  for (let d = m + 1; d < t.rank; d++) outShape.push(t.shape[d]);
  if (product === 1 && pads.every((p) => p === 0)) return t;
  const inStrides = stridesOf(t.shape);
  const offs = new Int32Array(m);
  // Output batch index ob = (o_0 · B_1 ⋯ + o_{m-1}) · batch + b: the block offsets vary slowest.
  return moveElements(t, outShape, what, (i) => {
    let rest = (i[0] / batch) | 0;
    const b = i[0] - rest * batch;
    for (let k = m - 1; k >= 0; k--) {
      offs[k] = rest % block[k];
      rest = (rest - offs[k]) / block[k];
    }
    let src = b * inStrides[0];
    for (let k = 0; k < m; k++) {
      const p = i[k + 1] * block[k] + offs[k] - pads[2 * k];
      if (p < 0 || p >= t.shape[k + 1]) return -1;
      src += p * inStrides[k + 1];
    }
    for (let d = m + 1; d < t.rank; d++) src += i[d] * inStrides[d];
    return src;
  });
}

function batchToSpace(t: Tensor, block: number[], crops: number[], what: string): Tensor {
  const m = block.length;
  let product = 1;
  for (let i = 0; i < m; i++) product *= block[i];
  if (!(product > 0)) {
    throw invalidArgument(`Product of block sizes must be positive, got ${product}`);
  }
  const inBatch = t.shape[0];
  if (inBatch % product !== 0) {
    throw invalidArgument(
      `Input batch dimension (${inBatch}) is not divisible by product of block sizes (${product})`,
    );
  }
  const batch = inBatch / product;
  const outShape = [batch];
  for (let i = 0; i < m; i++) {
    const start = crops[2 * i], end = crops[2 * i + 1];
    if (start < 0 || end < 0) throw invalidArgument("Crops must be non-negative");
    const cropped = t.shape[i + 1] * block[i] - start - end;
    if (cropped < 0) {
      throw invalidArgument(`cropped_shape[${i}]=${cropped} must be non-negative`);
    }
    outShape.push(cropped);
  }
  for (let d = m + 1; d < t.rank; d++) outShape.push(t.shape[d]);
  if (product === 1 && crops.every((c) => c === 0)) return t;
  const inStrides = stridesOf(t.shape);
  return moveElements(t, outShape, what, (i) => {
    // Output spatial position p = x · B + offset + crop_start: x and offset pick the input.
    let blockIndex = 0;
    let src = 0;
    for (let k = 0; k < m; k++) {
      const p = i[k + 1] + crops[2 * k];
      const off = p % block[k];
      blockIndex = blockIndex * block[k] + off;
      src += ((p - off) / block[k]) * inStrides[k + 1];
    }
    src += (blockIndex * batch + i[0]) * inStrides[0];
    for (let d = m + 1; d < t.rank; d++) src += i[d] * inStrides[d];
    return src;
  });
}

/** Row-major element strides of `shape`. */
function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/** The `[2]` block of SpaceToBatch/BatchToSpace, from their `block_size` attr. */
function fixedBlock(ctx: KernelContext): number[] {
  const b = ctx.attr.int("block_size");
  if (!(b > 1)) throw invalidArgument(`Block size should be > 1: ${b}`);
  return [b, b];
}

const batchKernels: Kernel[] = [
  {
    op: "SpaceToBatchND",
    compile(ctx) {
      checkType(ctx, REALS);
      return ([t, blockT, padT]) => {
        const { block, pads } = blockArgs(t, blockT, padT, "paddings");
        return [spaceToBatch(t, block, pads, ctx.op)];
      };
    },
  },
  {
    op: "BatchToSpaceND",
    compile(ctx) {
      checkType(ctx, REALS);
      return ([t, blockT, cropT]) => {
        const { block, pads } = blockArgs(t, blockT, cropT, "crops");
        return [batchToSpace(t, block, pads, ctx.op)];
      };
    },
  },
  {
    op: "SpaceToBatch",
    compile(ctx) {
      checkType(ctx, REALS);
      const block = fixedBlock(ctx);
      return ([t, padT]) => {
        if (t.rank !== 4) throw invalidArgument(`Input rank should be: 4instead of: ${t.rank}`);
        const blockT = Tensor.int32(block);
        const { pads } = blockArgs(t, blockT, padT, "paddings");
        return [spaceToBatch(t, block, pads, ctx.op)];
      };
    },
  },
  {
    op: "BatchToSpace",
    compile(ctx) {
      checkType(ctx, REALS);
      const block = fixedBlock(ctx);
      return ([t, cropT]) => {
        if (t.rank !== 4) throw invalidArgument(`Input rank should be: 4instead of: ${t.rank}`);
        const blockT = Tensor.int32(block);
        const { pads } = blockArgs(t, blockT, cropT, "crops");
        return [batchToSpace(t, block, pads, ctx.op)];
      };
    },
  },
];

/** Layout kernels. */
export const layoutKernels: Kernel[] = [depthToSpace, spaceToDepth, ...batchKernels];
