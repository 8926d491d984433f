/**
 * The JavaScript side of the WebAssembly SIMD image kernels (`image.wat`): ResizeBilinear on
 * float32 NHWC images, four channels at a time, with the same float32 operations in the same
 * order as TensorFlow (and as the JavaScript loop in `kernels/image.ts`), so results are equal
 * bit for bit.
 *
 * An image already in the shared kernel memory (a plan's intermediate) is resized where it is,
 * into an output there, by an instance over that memory (`shared_scratch.ts`). Otherwise one
 * module instance per isolate with its own linear memory, laid out per call as
 * `ytab | xtab | two interpolated rows | one input image | one output image`; images go one at a time, so the memory
 * holds one image pair at most, and grows (never beyond `MAX_BYTES`) to the largest seen.
 *
 * Every function returns null when WebAssembly SIMD is missing or the memory would exceed its
 * bound; callers then run their JavaScript loops.
 *
 * @module
 */
import { IMAGE_WASM } from "./image_wasm.ts";
import { IMAGE_SHARED_WASM } from "./image_shared_wasm.ts";
import { align16, ensureBytes, instantiateOwn } from "./heap.ts";
import { uninitialized } from "../../tensor/arena.ts";
import { isKernelView } from "./float_store.ts";
import { kernelMemory } from "./shared_memory.ts";
import { instantiateShared, sharedScratch } from "./shared_scratch.ts";
import { canSplit, registerPartRunner, runSplit, teamMembers } from "./team.ts";

interface ImageExports {
  readonly memory: WebAssembly.Memory;
  resizeBilinear(
    x: number,
    y: number,
    c: number,
    outH: number,
    outW: number,
    ytab: number,
    xtab: number,
  ): void;
  resizeRows(
    x: number,
    y: number,
    c: number,
    outH: number,
    outW: number,
    ytab: number,
    xtab: number,
    rows: number,
    rowStride: number,
  ): void;
}

const kernel = instantiateOwn<ImageExports>(IMAGE_WASM);
/** The instance over the shared kernel memory (`shared_scratch.ts`), made on first use. */
let shared: ImageExports | null | undefined;
let enabled = true;

/** True when the engine runs the image kernels. */
export const imageWasmSupported: boolean = kernel !== null;

/**
 * Switches the image kernels on or off (tests compare them with the JavaScript loops).
 *
 * @returns the previous setting
 */
export function setImageWasmEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** The team's op code for rows of a resize (see `team.ts`). */
const OP_RESIZE = 17;

/**
 * Output floats from which a resize of one image is split across the kernel team: below it
 * the hand-offs cost what a second core saves.
 */
const SPLIT_MIN_FLOATS = 1 << 16;

// Arguments of a part: x, y (byte offsets), c, outH, outW, ytab, xtab (byte offsets), output
// rows per part.
const A_PER_PART = 7;

/**
 * Output rows [part·per, (part+1)·per) of a resize by the instance over the kernel memory, with
 * `rows` (two interpolated rows of `rowStride` bytes) in this isolate's scratch: rows are
 * independent, and each is computed from the same values by the same float32 operations whatever
 * rows precede it in a call, so a part gives the floats the whole call does.
 */
function resizePart(ex: ImageExports, a: ArrayLike<number>, part: number, rows: number): void {
  const c = a[2], outH = a[3], outW = a[4], per = a[A_PER_PART];
  const r0 = part * per, r1 = Math.min(outH, r0 + per);
  if (r0 >= r1) return;
  const rowStride = align16(outW * c * 4);
  ex.resizeRows(
    a[0],
    a[1] + r0 * outW * c * 4,
    c,
    r1 - r0,
    outW,
    a[5] + r0 * 12,
    a[6],
    rows,
    rowStride,
  );
}

registerPartRunner(OP_RESIZE, (args, part) => {
  // A helper: its own two rows, in its own scratch block (the tables are the caller's).
  shared ??= instantiateShared<ImageExports>(IMAGE_SHARED_WASM);
  const rows = shared === null ? -1 : sharedScratch(2 * align16(args[4] * args[2] * 4));
  if (shared === null || rows < 0) throw new Error("No image kernel for a part");
  resizePart(shared, args, part, rows);
});

/** Source positions and weights along one axis (see `interpolationWeights` in kernels/image.ts). */
export interface AxisWeights {
  /** Per output index: the lower source index times the axis stride (in floats). */
  readonly lower: Int32Array;
  /** Per output index: the upper source index times the axis stride (in floats). */
  readonly upper: Int32Array;
  /** Per output index: the float32 weight of the upper source. */
  readonly lerp: Float32Array;
}

/** Writes one axis' table (12 bytes per entry: lower and upper byte offsets, weight) at `at`. */
function writeTable(memory: WebAssembly.Memory, at: number, w: AxisWeights): void {
  const i32 = new Int32Array(memory.buffer, at, w.lower.length * 3);
  const f32 = new Float32Array(memory.buffer, at, w.lower.length * 3);
  for (let i = 0, o = 0; i < w.lower.length; i++, o += 3) {
    i32[o] = w.lower[i] * 4;
    i32[o + 1] = w.upper[i] * 4;
    f32[o + 2] = w.lerp[i];
  }
}

/**
 * Bilinear resize of a float32 NHWC batch in WebAssembly.
 *
 * @param x the input, batch × inH × inW × c floats
 * @param ys the row weights (strides in floats of one input row, inW·c)
 * @param xs the column weights (strides in floats of one pixel, c)
 * @returns batch × outH × outW × c floats (storage from the running plan's arena where it can
 *   be), or null when the kernel is unavailable or the memory would be too large
 */
export function resizeBilinearF32(
  x: Float32Array,
  batch: number,
  inH: number,
  inW: number,
  c: number,
  ys: AxisWeights,
  xs: AxisWeights,
): Float32Array | null {
  const ex = kernel;
  if (ex === null || !enabled) return null;
  const outH = ys.lower.length, outW = xs.lower.length;
  const inFloats = inH * inW * c, outFloats = outH * outW * c;
  const y = uninitialized(Float32Array, batch * outFloats);
  if (isKernelView(x) && isKernelView(y)) {
    // Input and output in the shared kernel memory (a plan's intermediates): resized where they
    // are, the tables in this isolate's scratch block there.
    shared ??= instantiateShared<ImageExports>(IMAGE_SHARED_WASM);
    // Tables, then (where the scratch block allows) two rows interpolated along x.
    const tables = align16(outH * 12) + align16(outW * 12), rowStride = align16(outW * c * 4);
    let ytab = shared === null ? -1 : sharedScratch(tables + 2 * rowStride);
    const rows = ytab >= 0 ? ytab + tables : -1;
    if (shared !== null && ytab < 0) ytab = sharedScratch(tables);
    if (shared !== null && ytab >= 0) {
      const memory = kernelMemory(), xtab = ytab + align16(outH * 12);
      writeTable(memory, ytab, ys);
      writeTable(memory, xtab, xs);
      const ex = shared;
      for (let b = 0; b < batch; b++) {
        const xo = x.byteOffset + b * inFloats * 4, yo = y.byteOffset + b * outFloats * 4;
        if (rows >= 0) {
          // Large images: output rows split across the kernel team (one part per member).
          const parts = outFloats >= SPLIT_MIN_FLOATS && outH >= 2 && canSplit()
            ? Math.min(teamMembers(), outH)
            : 1;
          if (parts > 1) {
            const args = [xo, yo, c, outH, outW, ytab, xtab, Math.ceil(outH / parts)];
            const whole = () => ex.resizeRows(xo, yo, c, outH, outW, ytab, xtab, rows, rowStride);
            const local = (part: number) => resizePart(ex, args, part, rows);
            if (runSplit(OP_RESIZE, args, parts, local, outFloats, whole)) continue;
          }
          ex.resizeRows(xo, yo, c, outH, outW, ytab, xtab, rows, rowStride);
        } else ex.resizeBilinear(xo, yo, c, outH, outW, ytab, xtab);
      }
      return y;
    }
  }
  const ytab = 16;
  const xtab = ytab + align16(outH * 12);
  const rows = xtab + align16(outW * 12), rowStride = align16(outW * c * 4);
  const xo = rows + 2 * rowStride;
  const yo = xo + align16(inFloats * 4);
  if (!ensureBytes(ex.memory, yo + outFloats * 4)) return null;
  writeTable(ex.memory, ytab, ys);
  writeTable(ex.memory, xtab, xs);
  const f32 = new Float32Array(ex.memory.buffer);
  for (let b = 0; b < batch; b++) {
    f32.set(x.subarray(b * inFloats, (b + 1) * inFloats), xo >>> 2);
    ex.resizeRows(xo, yo, c, outH, outW, ytab, xtab, rows, rowStride);
    y.set(f32.subarray(yo >>> 2, (yo >>> 2) + outFloats), b * outFloats);
  }
  return y;
}
