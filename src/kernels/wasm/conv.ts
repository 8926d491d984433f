/**
 * The JavaScript side of the WebAssembly SIMD convolution kernels (`conv.wat`): Conv2D as a
 * GEMM over im2col patches (a 1×1, stride-1, unpadded convolution straight over the input),
 * DepthwiseConv2dNative with channel multiplier 1 directly, and a GEMM with packed weights for
 * MatMul (and Conv2DBackpropInput's per-tap products), each with a fused epilogue (bias,
 * residual, Relu / Relu6 / hard-swish); and max / average pooling.
 *
 * One module instance per isolate, made on first use over the process's shared kernel memory
 * (`shared_memory.ts`): the relaxed-SIMD build (`f32x4.relaxed_madd`, one rounding per
 * multiply-add where the CPU has FMA) when the engine validates it, the plain-SIMD build
 * otherwise. The memory holds
 * - filters and weight matrices packed for the kernels, cached by the identity of their
 *   Float32Array (as `dense.ts` does: a tensor's storage is never written after the tensor is
 *   made, so the same array means the same values), released when the array is collected.
 *   Callers send only weights here (constants, variable reads), which keep their array from
 *   run to run, so packing happens once, on the first run; a weight stored in a shared buffer
 *   (a model's constants and variables) is packed once for all the isolates of the process;
 * - this isolate's scratch area for the input, the output, the im2col buffer and the bias of
 *   the current call, reused across calls (kernels are synchronous, so one call at a time per
 *   isolate).
 *
 * Accumulation is in float32 (as TensorFlow's CPU kernels and XNNPACK); each output sums its
 * products in order of (fy, fx, input channel), so results differ from a float64 sum by about
 * a float32 ulp of Σ|x·w|.
 *
 * Every function returns null when WebAssembly SIMD is missing, the kernels are switched off,
 * or memory runs out; callers then run their JavaScript loops.
 *
 * @module
 */
import { CONV_WASM } from "./conv_wasm.ts";
import { CONV_RELAXED_WASM } from "./conv_relaxed_wasm.ts";
import { align16 } from "./heap.ts";
import {
  kernelMemory,
  PackKind,
  type SharedHeap,
  sharedHeap,
  WeightCache,
} from "./shared_memory.ts";
import type { Geometry } from "../window.ts";
import {
  bitsFloat,
  canSplit,
  floatBits,
  MAX_PARTS,
  registerPartRunner,
  runSplit,
  splitShare,
  teamMembers,
} from "./team.ts";
import { uninitialized } from "../../tensor/arena.ts";
import { isKernelView, kernelFloats } from "./float_store.ts";
import { binaryF32, WasmBinary } from "./elementwise.ts";

/** The module's exports (pointers are byte offsets; see `conv.wat`). */
interface ConvExports {
  gemm(
    a: number,
    lda: number,
    w: number,
    bias: number,
    y: number,
    ldy: number,
    side: number,
    m: number,
    k: number,
    n: number,
    act: number,
  ): void;
  im2col(
    x: number,
    inH: number,
    inW: number,
    c: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padT: number,
    padL: number,
    outW: number,
    p0: number,
    np: number,
    dst: number,
  ): void;
  convIndirect(
    x: number,
    inH: number,
    inW: number,
    c: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    dh: number,
    padT: number,
    padL: number,
    outW: number,
    p0: number,
    np: number,
    w: number,
    bias: number,
    y: number,
    ldy: number,
    side: number,
    n: number,
    act: number,
    col: number,
  ): void;
  depthwise(
    x: number,
    inH: number,
    inW: number,
    c4: number,
    w: number,
    bias: number,
    y: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padT: number,
    padL: number,
    outH: number,
    outW: number,
    act: number,
    side: number,
  ): void;
  pool(
    x: number,
    inH: number,
    inW: number,
    c4: number,
    y: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    padT: number,
    padL: number,
    outH: number,
    outW: number,
    max: number,
  ): void;
  addMeanRows(
    a: number,
    b: number,
    r0: number,
    r1: number,
    w: number,
    c4: number,
    out: number,
  ): void;
  placeTaps(
    cols: number,
    y: number,
    batch: number,
    inH: number,
    inW: number,
    c: number,
    fh: number,
    fw: number,
    outH: number,
    outW: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    padT: number,
    padL: number,
  ): void;
  spreadChannels(src: number, dst: number, pixels: number, c: number, c4: number): void;
  gatherChannels(src: number, dst: number, pixels: number, c4: number, c: number): void;
  peak(iters: number): number;
  setHardSwish(scale: number, offset: number): void;
}

/** The activations the kernels apply themselves (the codes of `conv.wat`). */
export enum WasmAct {
  None = 0,
  Relu = 1,
  Relu6 = 2,
  /** (v·scale)·Relu6(v + offset), the constants given with the call. */
  HardSwish = 3,
}

/** The constants of a hard-swish epilogue: (v·scale)·Relu6(v + offset). */
export interface HardSwish {
  scale: number;
  offset: number;
}

/** Floats of im2col rows per chunk: the chunk and a weight panel stay in the caches. */
const CHUNK_FLOATS = 1 << 15;

const ceil4 = (n: number) => (n + 3) & ~3;
const ceil8 = (n: number) => (n + 7) & ~7;

/** The compiled module, or null when the engine lacks its features or shared memory. */
function compile(bytes: Uint8Array<ArrayBuffer>): WebAssembly.Module | null {
  try {
    if (typeof WebAssembly !== "object" || !WebAssembly.validate(bytes)) return null;
    if (typeof SharedArrayBuffer !== "function") return null;
    return new WebAssembly.Module(bytes);
  } catch {
    return null;
  }
}

/** An instance over this isolate's kernel memory, or null if it cannot be made. */
function instantiate(module: WebAssembly.Module | null): ConvExports | null {
  if (module === null) return null;
  try {
    return new WebAssembly.Instance(module, { env: { memory: kernelMemory() } })
      .exports as unknown as ConvExports;
  } catch {
    return null;
  }
}

/** Time and work spent in the kernels, while `setConvProfiling(true)`. */
export interface ConvStats {
  /** Multiply-adds × 2 of the convolutions and products run. */
  flops: number;
  /** Milliseconds inside them (copies in and out included). */
  ms: number;
  calls: number;
}

/**
 * Packed filters and weight matrices, one cache for both builds (they read the same layouts).
 * Made with the first instance.
 */
let weightCache: WeightCache | undefined;

class ConvWasm {
  readonly #x: ConvExports;
  readonly #heap: SharedHeap;
  readonly #weightCache: WeightCache;
  #scratch = -1;
  #scratchBytes = 0;
  /** Weights packed for one call, scaled per input channel (see {@link #scaledGemmWeights}). */
  #scaled = -1;
  #scaledBytes = 0;

  /** @param relaxed whether `exports` are the relaxed-SIMD build's */
  constructor(exports: ConvExports, readonly relaxed: boolean) {
    this.#x = exports;
    this.#heap = sharedHeap();
    this.#weightCache = weightCache ??= new WeightCache(this.#heap);
  }

  /**
   * W as a [k, n] matrix (or [n, k] when `transB`) in panels of 8 columns: float
   * (p·k + kk)·8 + j is W[kk, 8p + j].
   */
  #gemmWeights(w: Float32Array, k: number, n: number, transB: boolean): number {
    const n8 = ceil8(n);
    return this.#weightCache.offset(
      w,
      PackKind.Gemm8,
      k,
      n,
      transB ? 1 : 0,
      n8 * k,
      (f32, base) => {
        if (transB) {
          for (let j = 0, wi = 0; j < n; j++) {
            const po = base + (j >> 3) * 8 * k + (j & 7);
            for (let kk = 0; kk < k; kk++, wi++) f32[po + kk * 8] = w[wi];
          }
        } else {
          for (let kk = 0, wi = 0; kk < k; kk++) {
            const ko = base + kk * 8;
            for (let j = 0; j < n; j++, wi++) f32[ko + (j >> 3) * 8 * k + (j & 7)] = w[wi];
          }
        }
      },
    );
  }

  /**
   * A convolution filter [fh, fw, inC, n] (as a [k, n] matrix) with row kk times
   * `scale[kk % inC]`, packed as {@link #gemmWeights} packs: the cached packing, its rows
   * multiplied in WebAssembly into this instance's area for one call's weights (never cached:
   * the scale is an input, new each call; packing from the filter each call took 5-20 µs for
   * selfie's 96-128 × 32 projections). Returns its offset, or -1 if out of memory.
   */
  #scaledGemmWeights(
    w: Float32Array,
    scale: Float32Array,
    k: number,
    n: number,
    inC: number,
  ): number {
    const wo = this.#gemmWeights(w, k, n, false);
    if (wo < 0) return -1;
    const n8 = ceil8(n), floats = n8 * k, bytes = floats * 4;
    if (this.#scaledBytes < bytes) {
      if (this.#scaled >= 0) this.#heap.free(this.#scaled, this.#scaledBytes);
      this.#scaledBytes = 0;
      this.#scaled = this.#heap.alloc(bytes);
      if (this.#scaled < 0) return -1;
      this.#scaledBytes = bytes;
    }
    // Panels of [k][8]: row kk of every panel times scale[kk % inC] (zero padding stays zero).
    const f32 = kernelFloats();
    const from = f32.subarray(wo >>> 2, (wo >>> 2) + floats);
    const to = f32.subarray(this.#scaled >>> 2, (this.#scaled >>> 2) + floats);
    let rows = scale;
    if (k !== inC) {
      rows = new Float32Array(k);
      for (let kk = 0; kk < k; kk++) rows[kk] = scale[kk % inC];
    }
    const dims = [n8 >> 3, k, 8];
    if (!binaryF32(WasmBinary.Mul, from, rows, to, dims, [8 * k, 8, 1], [0, 1, 0])) {
      for (let p = 0, i = 0; p < dims[0]; p++) {
        for (let kk = 0; kk < k; kk++) {
          const sc = rows[kk];
          for (let j = 0; j < 8; j++, i++) to[i] = from[i] * sc;
        }
      }
    }
    return this.#scaled;
  }

  /** A depthwise filter [fh, fw, c, 1] as [fh·fw][c4]. */
  #depthwiseWeights(w: Float32Array, taps: number, c: number): number {
    const c4 = ceil4(c);
    return this.#weightCache.offset(w, PackKind.Depthwise, taps, c, 0, taps * c4, (f32, base) => {
      for (let t = 0; t < taps; t++) f32.set(w.subarray(t * c, (t + 1) * c), base + t * c4);
    });
  }

  /** Returns the scratch area (the instance is being replaced). */
  dispose(): void {
    if (this.#scratch >= 0) this.#heap.free(this.#scratch, this.#scratchBytes);
    this.#scratch = -1;
    this.#scratchBytes = 0;
    if (this.#scaled >= 0) this.#heap.free(this.#scaled, this.#scaledBytes);
    this.#scaled = -1;
    this.#scaledBytes = 0;
  }

  /** The exports (a helper runs parts of another isolate's call with them). */
  get exports(): ConvExports {
    return this.#x;
  }

  /** A scratch area of at least `bytes` (a helper's im2col buffer), or -1 if out of memory. */
  scratchArea(bytes: number): number {
    return this.#scratchArea(bytes);
  }

  /** A scratch area of at least `bytes`, or -1 if out of memory. */
  #scratchArea(bytes: number): number {
    if (this.#scratchBytes >= bytes) return this.#scratch;
    if (this.#scratch >= 0) this.#heap.free(this.#scratch, this.#scratchBytes);
    this.#scratchBytes = 0;
    this.#scratch = this.#heap.alloc(bytes);
    if (this.#scratch >= 0) this.#scratchBytes = align16(bytes);
    return this.#scratch;
  }

  /** Writes `n` biases (or zeros) padded with zeros to `padded` floats at float index `at`. */
  #bias(at: number, b: Float32Array | null, n: number, padded: number): void {
    const f32 = this.#heap.f32;
    if (b === null) f32.fill(0, at, at + padded);
    else {
      f32.set(b.length === n ? b : b.subarray(0, n), at);
      f32.fill(0, at + n, at + padded);
    }
  }

  conv2d(
    x: Float32Array,
    f: Float32Array,
    b: Float32Array | null,
    side: Float32Array | null,
    g: Geometry,
    act: WasmAct,
    hs: HardSwish | null,
    inScale: Float32Array | null,
  ): Float32Array | null {
    const { batch, inH, inW, inC, fh, fw, outH, outW, outC } = g;
    const k = fh * fw * inC;
    const n8 = ceil8(outC);
    const wo = inScale === null
      ? this.#gemmWeights(f, k, outC, false)
      : this.#scaledGemmWeights(f, inScale, k, outC, inC);
    if (wo < 0) return null;
    const inFloats = batch * inH * inW * inC;
    const pixels = outH * outW;
    const outFloats = batch * pixels * outC;
    // A 1×1 window that visits every input pixel in order is already the GEMM's left operand.
    const direct = fh === 1 && fw === 1 && g.sh === 1 && g.sw === 1 && g.padTop === 0 &&
      g.padLeft === 0 && outH === inH && outW === inW;
    // (At least 8 rows: `convIndirect` copies up to 6 pixels' patches into the buffer.)
    const chunk = direct ? 0 : Math.max(8, Math.floor(CHUNK_FLOATS / k) & ~3);
    const colFloats = direct ? 0 : Math.min(chunk, pixels) * k;
    // Tensors already in the kernel memory (stored by the plan's arena) are used in place.
    const y = uninitialized(Float32Array, outFloats);
    const xIn = isKernelView(x), yIn = isKernelView(y);
    const sideIn = side !== null && isKernelView(side);
    // Scratch: bias | x | y | side | im2col chunk, each only where needed.
    const bBytes = n8 * 4;
    const xBytes = xIn ? 0 : align16(inFloats * 4);
    const yBytes = yIn ? 0 : align16(outFloats * 4);
    const sBytes = side === null || sideIn ? 0 : align16(outFloats * 4);
    const so = this.#scratchArea(bBytes + xBytes + yBytes + sBytes + colFloats * 4);
    if (so < 0) return null;
    const bo = so, co = so + bBytes + xBytes + yBytes + sBytes;
    const xo = xIn ? x.byteOffset : bo + bBytes;
    const yo = yIn ? y.byteOffset : bo + bBytes + xBytes;
    const sdo = sideIn ? side!.byteOffset : bo + bBytes + xBytes + yBytes;
    this.#bias(bo >>> 2, b, outC, n8);
    const f32 = this.#heap.f32;
    if (!xIn) f32.set(x.length === inFloats ? x : x.subarray(0, inFloats), xo >>> 2);
    if (side !== null && !sideIn) f32.set(side.subarray(0, outFloats), sdo >>> 2);
    const ex = this.#x;
    if (hs !== null) ex.setHardSwish(hs.scale, hs.offset);
    const args: ConvArgs = [
      this.relaxed ? 1 : 0,
      direct ? 1 : 0,
      xo,
      inH,
      inW,
      inC,
      fh,
      fw,
      g.sh,
      g.sw,
      g.dh,
      g.dw,
      g.padTop,
      g.padLeft,
      outW,
      pixels,
      k,
      outC,
      wo,
      bo,
      yo,
      side === null ? 0 : sdo,
      act,
      hs === null ? 0 : floatBits(hs.scale),
      hs === null ? 0 : floatBits(hs.offset),
      chunk,
      0,
      batch * pixels,
    ];
    const flops = 2 * batch * pixels * outC * k;
    runRows(OP_CONV2D, args, A_ROWS_PER_PART, batch * pixels, 4, flops, (part) => {
      convRows(ex, args, part, co);
    });
    return this.#out(y, yIn, yo);
  }

  /** `y`, filled from the scratch output at byte offset `yo` unless it was written in place. */
  #out(y: Float32Array, inPlace: boolean, yo: number): Float32Array {
    if (!inPlace) y.set(this.#heap.f32.subarray(yo >>> 2, (yo >>> 2) + y.length));
    return y;
  }

  depthwise(
    x: Float32Array,
    f: Float32Array,
    b: Float32Array | null,
    g: Geometry,
    act: WasmAct,
    hs: HardSwish | null,
    side: Float32Array | null,
  ): Float32Array | null {
    const { batch, inH, inW, inC: c, fh, fw, outH, outW } = g;
    const c4 = ceil4(c);
    const wo = this.#depthwiseWeights(f, fh * fw, c);
    if (wo < 0) return null;
    const inPix = inH * inW, outPix = outH * outW;
    // With c a multiple of 4, tensors in the kernel memory are used in place.
    const y = c4 === c ? uninitialized(Float32Array, batch * outPix * c) : null;
    const xIn = c4 === c && isKernelView(x), yIn = y !== null && isKernelView(y);
    const sideIn = side !== null && c4 === c && isKernelView(side);
    const bBytes = c4 * 4;
    const xBytes = xIn ? 0 : align16(batch * inPix * c4 * 4);
    const yBytes = yIn ? 0 : align16(batch * outPix * c4 * 4);
    const sBytes = side === null || sideIn ? 0 : align16(batch * outPix * c4 * 4);
    const so = this.#scratchArea(bBytes + xBytes + yBytes + sBytes);
    if (so < 0) return null;
    const bo = so;
    const xo = xIn ? x.byteOffset : bo + bBytes;
    const yo = yIn ? y!.byteOffset : bo + bBytes + xBytes;
    const sdo = sideIn ? side!.byteOffset : bo + bBytes + xBytes + yBytes;
    this.#bias(bo >>> 2, b, c, c4);
    if (!xIn) this.#padIn(x, batch * inPix, c, xo);
    if (side !== null && !sideIn) this.#padIn(side, batch * outPix, c, sdo);
    const ex = this.#x;
    if (hs !== null) ex.setHardSwish(hs.scale, hs.offset);
    const args: DepthwiseArgs = [
      this.relaxed ? 1 : 0,
      xo,
      inH,
      inW,
      c4,
      wo,
      bo,
      yo,
      fh,
      fw,
      g.sh,
      g.sw,
      g.dh,
      g.dw,
      g.padTop,
      g.padLeft,
      outH,
      outW,
      act,
      side === null ? 0 : sdo,
      hs === null ? 0 : floatBits(hs.scale),
      hs === null ? 0 : floatBits(hs.offset),
      0,
      batch * outH,
    ];
    const work = 2 * batch * outPix * c4 * fh * fw;
    runRows(OP_DEPTHWISE, args, D_ROWS_PER_PART, batch * outH, 1, work, (part) => {
      depthwiseRows(ex, args, part);
    });
    return y !== null ? this.#out(y, yIn, yo) : this.#unpadOut(yo, batch * outPix, c);
  }

  /** Copies `pixels` pixels of `c` channels to byte offset `at`, padded to ceil4(c) with zeros. */
  #padIn(x: Float32Array, pixels: number, c: number, at: number): void {
    const f32 = this.#heap.f32;
    const c4 = ceil4(c), x4 = at >>> 2;
    if (c4 === c) f32.set(x.subarray(0, pixels * c), x4);
    else if (isKernelView(x)) this.#x.spreadChannels(x.byteOffset, at, pixels, c, c4);
    else {
      // One block copy in, then spread to the padded stride in place (conv.wat).
      f32.set(x.subarray(0, pixels * c), x4);
      this.#x.spreadChannels(at, at, pixels, c, c4);
    }
  }

  /** A new array of `pixels` pixels of `c` channels from byte offset `at` (stride ceil4(c)). */
  #unpadOut(at: number, pixels: number, c: number): Float32Array {
    const f32 = this.#heap.f32;
    const c4 = ceil4(c), y4 = at >>> 2;
    const y = uninitialized(Float32Array, pixels * c);
    if (c4 === c) {
      y.set(f32.subarray(y4, y4 + pixels * c));
      return y;
    }
    if (isKernelView(y)) {
      this.#x.gatherChannels(at, y.byteOffset, pixels, c4, c);
      return y;
    }
    // Compacted in place (conv.wat), then one block copy out.
    this.#x.gatherChannels(at, at, pixels, c4, c);
    y.set(f32.subarray(y4, y4 + pixels * c));
    return y;
  }

  pool(x: Float32Array, g: Geometry, max: boolean): Float32Array | null {
    const { batch, inH, inW, inC: c, fh, fw, outH, outW } = g;
    const c4 = ceil4(c);
    const inPix = inH * inW, outPix = outH * outW;
    const y = c4 === c ? uninitialized(Float32Array, batch * outPix * c) : null;
    const xIn = c4 === c && isKernelView(x), yIn = y !== null && isKernelView(y);
    const xBytes = xIn ? 0 : align16(batch * inPix * c4 * 4);
    const so = this.#scratchArea(xBytes + (yIn ? 0 : batch * outPix * c4 * 4) + 16);
    if (so < 0) return null;
    const xo = xIn ? x.byteOffset : so, yo = yIn ? y!.byteOffset : so + xBytes;
    if (!xIn) this.#padIn(x, batch * inPix, c, xo);
    const args: PoolArgs = [
      xo,
      inH,
      inW,
      c4,
      yo,
      fh,
      fw,
      g.sh,
      g.sw,
      g.padTop,
      g.padLeft,
      outH,
      outW,
      // 1: max; 0: average in float32 sums; 2: a large window's average in float64 sums
      max ? 1 : fh * fw > WIDE_POOL_TAPS ? 2 : 0,
      0,
      batch * outH,
    ];
    const ex = this.#x;
    // A window's work: one add or max per tap and channel, counted twice as a multiply-add is
    // (pools run at about the convolutions' flop rate: a pool under SPLIT_MIN_FLOPS, some 10 µs,
    // is too short for a hand-off).
    const work = 2 * batch * outPix * c4 * fh * fw;
    runRows(OP_POOL, args, P_ROWS_PER_PART, batch * outH, 1, work, (part) => {
      poolRows(ex, args, part);
    });
    return y !== null ? this.#out(y, yIn, yo) : this.#unpadOut(yo, batch * outPix, c);
  }

  addMean(
    a: Float32Array,
    b: Float32Array,
    batch: number,
    h: number,
    w: number,
    c: number,
  ): Float32Array | null {
    const rows = batch * h, n = rows * w * c;
    if (c % 4 !== 0 || a.length !== n || b.length !== n || !isKernelView(a) || !isKernelView(b)) {
      return null;
    }
    const so = this.#scratchArea(rows * c * 8);
    if (so < 0) return null;
    const ex = this.#x;
    // Rows split across the team in halves (any cut gives the same row sums).
    const args = [a.byteOffset, b.byteOffset, rows, w, c, so, rows];
    const work = 2 * n;
    const parts = splitParts(work, rows);
    if (parts > 1) {
      const per = Math.ceil(rows / parts);
      const split = [...args.slice(0, 6), per];
      const whole = () => addMeanPart(ex, args, 0);
      if (
        !runSplit(
          OP_ADD_MEAN,
          split,
          Math.ceil(rows / per),
          (p) => addMeanPart(ex, split, p),
          work,
          whole,
        )
      ) {
        addMeanPart(ex, args, 0);
      }
    } else addMeanPart(ex, args, 0);
    // Each image's rows added in order, in float64, then divided and rounded once.
    const sums = new Float64Array(this.#heap.f32.buffer, so, rows * c);
    const y = uninitialized(Float32Array, batch * c);
    const count = h * w;
    for (let img = 0; img < batch; img++) {
      for (let j = 0; j < c; j++) {
        let s = 0;
        for (let r = img * h, at = r * c + j; r < (img + 1) * h; r++, at += c) s += sums[at];
        y[img * c + j] = s / count;
      }
    }
    return y;
  }

  matmul(
    a: Float32Array,
    w: Float32Array,
    b: Float32Array | null,
    m: number,
    k: number,
    n: number,
    transB: boolean,
    act: WasmAct,
  ): Float32Array | null {
    const n8 = ceil8(n);
    const wo = this.#gemmWeights(w, k, n, transB);
    if (wo < 0) return null;
    const y = uninitialized(Float32Array, m * n);
    const aIn = isKernelView(a), yIn = isKernelView(y);
    const bBytes = n8 * 4;
    const aBytes = aIn ? 0 : align16(m * k * 4);
    const so = this.#scratchArea(bBytes + aBytes + (yIn ? 0 : m * n * 4));
    if (so < 0) return null;
    const bo = so;
    const ao = aIn ? a.byteOffset : bo + bBytes, yo = yIn ? y.byteOffset : bo + bBytes + aBytes;
    this.#bias(bo >>> 2, b, n, n8);
    if (!aIn) this.#heap.f32.set(a.subarray(0, m * k), ao >>> 2);
    const ex = this.#x;
    const args: MatmulArgs = [this.relaxed ? 1 : 0, ao, wo, bo, yo, k, n, act, 0, m];
    runRows(OP_MATMUL, args, M_ROWS_PER_PART, m, 4, 2 * m * k * n, (part) => {
      matmulRows(ex, args, part);
    });
    return this.#out(y, yIn, yo);
  }

  /** GFLOP/s of a tight SIMD multiply-add loop (12 independent chains × 4 lanes). */
  peak(ms: number): number {
    const iters = 1 << 20;
    this.#x.peak(1000); // compiled and warm
    let runs = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < ms) {
      this.#x.peak(iters);
      runs++;
      t = performance.now();
    }
    return (runs * iters * 12 * 4 * 2) / ((t - t0) * 1e6);
  }
}

/** Op codes of the parts other isolates may compute (`team.ts`). */
const OP_CONV2D = 1;
const OP_DEPTHWISE = 2;

/**
 * A Conv2D call's arguments as a part runner reads them (byte offsets into the shared memory):
 * relaxed, direct, x, inH, inW, inC, fh, fw, sh, sw, dh, dw, padT, padL, outW, pixels (per
 * image), k, outC, w, bias, y, side (0: none), act, hard-swish scale and offset (float bits),
 * im2col chunk (rows), rows per part, rows (batch × pixels).
 */
type ConvArgs = number[];
const A_ROWS_PER_PART = 26;

/**
 * A depthwise call's arguments: relaxed, x, inH, inW, c4, w, bias, y, fh, fw, sh, sw, dh, dw,
 * padT, padL, outH, outW, act, side (0: none), hard-swish scale and offset (float bits), output
 * rows per part, output rows (batch × outH).
 */
type DepthwiseArgs = number[];
const D_ROWS_PER_PART = 22;

const OP_POOL = 3;
const OP_MATMUL = 4;
const OP_ADD_MEAN = 5;

/**
 * A global average of a sum's arguments: a, b, rows (batch × height), width, channels, the row
 * sums' offset, rows per part. Part `part` writes its rows' float64 sums (`addMeanRows`).
 */
function addMeanPart(ex: ConvExports, a: ArrayLike<number>, part: number): void {
  const rows = a[2], per = a[6];
  const r0 = part * per, r1 = Math.min(rows, r0 + per);
  if (r0 < r1) ex.addMeanRows(a[0], a[1], r0, r1, a[3], a[4], a[5]);
}

/**
 * A pooling call's arguments: x, inH, inW, c4, y, fh, fw, sh, sw, padT, padL, outH, outW, max
 * (1; 0 average, 2 average in float64 sums),
 * output rows per part, output rows (batch × outH).
 */
type PoolArgs = number[];
const P_ROWS_PER_PART = 14;

/** A product's arguments: relaxed, a, w, bias, y, k, n, act, rows per part, rows (m). */
type MatmulArgs = number[];
const M_ROWS_PER_PART = 8;

/** Output rows (across images) of part `part` of a pooling call (see `depthwiseRows`). */
function poolRows(ex: ConvExports, a: Int32Array | PoolArgs, part: number): void {
  const [x, inH, inW, c4, y, fh, fw, sh, sw, padT, padL, outH, outW, max] = a;
  const perPart = a[14], rows = a[15];
  const [r0, r1] = partRows(part, perPart, rows);
  const inImage = inH * inW * c4 * 4, outImage = outH * outW * c4 * 4, outRow = outW * c4 * 4;
  for (let r = r0; r < r1;) {
    const img = Math.floor(r / outH);
    const oy0 = r - img * outH;
    const count = Math.min(r1 - r, outH - oy0);
    const at = img * outImage + oy0 * outRow;
    ex.pool(
      x + img * inImage,
      inH,
      inW,
      c4,
      y + at,
      fh,
      fw,
      sh,
      sw,
      padT - oy0 * sh,
      padL,
      count,
      outW,
      max,
    );
    r += count;
  }
}

/** Rows of part `part` of a product (`conv.wat`: a row's sums do not depend on its block). */
function matmulRows(ex: ConvExports, a: Int32Array | MatmulArgs, part: number): void {
  const [, ao, w, bias, y, k, n, act, perPart, rows] = a;
  const [r0, r1] = partRows(part, perPart, rows);
  if (r0 >= r1) return;
  ex.gemm(ao + r0 * k * 4, k * 4, w, bias, y + r0 * n * 4, n * 4, 0, r1 - r0, k, n, act);
}

/**
 * Rows [r0, r1) of part `part` of `rows`: parts of `perPart` rows each (the last shorter), or
 * with `perPart` negative two parts cut at row −perPart (see runRows).
 */
function partRows(part: number, perPart: number, rows: number): [number, number] {
  if (perPart < 0) return part === 0 ? [0, -perPart] : part === 1 ? [-perPart, rows] : [0, 0];
  const r0 = part * perPart;
  return [r0, Math.min(rows, r0 + perPart)];
}

/** Work (flops) from which a call is split across the team, and work per part. */
const SPLIT_MIN_FLOPS = 0.3e6;
const PART_FLOPS = 0.15e6;

/**
 * Parts to cut a call of `flops` over `rows` output rows into; 1: do not split. One per member
 * of the team: a helper polling for tasks claims its part within a microsecond of the post
 * (measured through the server), so smaller parts for a late member to take fewer bought
 * little, while each part rereads the weights (a part is a range of rows) and hands off once.
 * Measured with two members, against two parts per member: the pool's run of selfie 0.15-0.2 ms
 * shorter (p10, p25 of 400 calls, in-process pairs), emotion's 0.12 ms; served (alternating
 * blocks, both servers up) selfie 6.80 against 7.34 ms median, emotion 2.13 against 2.17, meet
 * and movenet_multipose unchanged. (Two per member had beaten eight parts in all.)
 */
function splitParts(flops: number, rows: number): number {
  if (flops < SPLIT_MIN_FLOPS || rows < 8 || !canSplit()) return 1;
  return Math.min(MAX_PARTS, teamMembers(), Math.floor(flops / PART_FLOPS), rows >> 2);
}

/**
 * Runs a kernel's `rows` output rows: split over the team when the work is large enough and a
 * split is taken (`args[perPartAt]`: rows per part, a multiple of `align`), else in one part.
 * `run(part)` computes part `part` from `args`.
 */
function runRows(
  op: number,
  args: number[],
  perPartAt: number,
  rows: number,
  align: number,
  work: number,
  run: (part: number) => void,
): void {
  const parts = splitParts(work, rows);
  if (parts > 1) {
    let perPart = Math.ceil(rows / parts / align) * align;
    if (parts === 2) {
      // Two parts cut where the members are expected to finish together (team.ts splitShare):
      // part 0's rows, a multiple of `align`, leaving part 1 at least `align`.
      const cut = Math.round((rows * splitShare(op, work)) / align) * align;
      perPart = -Math.max(align, Math.min(rows - align, cut));
    }
    args[perPartAt] = perPart;
    const whole = () => {
      args[perPartAt] = rows;
      run(0);
      args[perPartAt] = perPart;
    };
    const count = perPart < 0 ? 2 : Math.ceil(rows / perPart);
    if (runSplit(op, args, count, run, work, whole)) return;
  }
  args[perPartAt] = rows;
  run(0);
}

/**
 * Output rows (pixels, across images) of part `part` of a Conv2D call: with undilated columns,
 * `convIndirect` (interior pixels read in place, the others through im2col into `col`);
 * else im2col into `col` (a buffer of chunk × k floats) chunk by chunk, then the GEMM; or the
 * GEMM straight over the input for a direct 1×1 convolution. Rows are computed the same whatever the part (`conv.wat`:
 * a row's sums do not depend on its block), so any cut gives the unsplit result.
 */
function convRows(ex: ConvExports, a: Int32Array | ConvArgs, part: number, col: number): void {
  const [, direct, x, inH, inW, inC, fh, fw, sh, sw, dh, dw, padT, padL, outW, pixels, k, outC] = a;
  const [w, bias, y, side, act, , , chunk, perPart, rows] = [
    a[18],
    a[19],
    a[20],
    a[21],
    a[22],
    a[23],
    a[24],
    a[25],
    a[26],
    a[27],
  ];
  const [r0, r1] = partRows(part, perPart, rows);
  if (r0 >= r1) return;
  const ldy = outC * 4;
  if (direct) {
    ex.gemm(
      x + r0 * inC * 4,
      inC * 4,
      w,
      bias,
      y + r0 * ldy,
      ldy,
      side === 0 ? 0 : side + r0 * ldy,
      r1 - r0,
      k,
      outC,
      act,
    );
    return;
  }
  if (dw === 1) {
    // Undilated columns: interior pixels read their patches in place (`conv.wat`), no im2col.
    for (let r = r0; r < r1;) {
      const img = Math.floor(r / pixels);
      const p0 = r - img * pixels;
      const np = Math.min(r1 - r, pixels - p0);
      const yAt = r * ldy;
      ex.convIndirect(
        x + img * inH * inW * inC * 4,
        inH,
        inW,
        inC,
        fh,
        fw,
        sh,
        sw,
        dh,
        padT,
        padL,
        outW,
        p0,
        np,
        w,
        bias,
        y + yAt,
        ldy,
        side === 0 ? 0 : side + yAt,
        outC,
        act,
        col,
      );
      r += np;
    }
    return;
  }
  for (let r = r0; r < r1;) {
    const img = Math.floor(r / pixels);
    const p0 = r - img * pixels;
    const np = Math.min(chunk, r1 - r, pixels - p0);
    ex.im2col(
      x + img * inH * inW * inC * 4,
      inH,
      inW,
      inC,
      fh,
      fw,
      sh,
      sw,
      dh,
      dw,
      padT,
      padL,
      outW,
      p0,
      np,
      col,
    );
    const yAt = r * ldy;
    ex.gemm(col, k * 4, w, bias, y + yAt, ldy, side === 0 ? 0 : side + yAt, np, k, outC, act);
    r += np;
  }
}

/** Output rows (across images) of part `part` of a depthwise call (see `convRows`). */
function depthwiseRows(ex: ConvExports, a: Int32Array | DepthwiseArgs, part: number): void {
  const [, x, inH, inW, c4, w, bias, y, fh, fw, sh, sw, dh, dw, padT, padL, outH, outW, act, side] =
    a;
  const perPart = a[22], rows = a[23];
  const [r0, r1] = partRows(part, perPart, rows);
  const inImage = inH * inW * c4 * 4, outImage = outH * outW * c4 * 4, outRow = outW * c4 * 4;
  for (let r = r0; r < r1;) {
    const img = Math.floor(r / outH);
    const oy0 = r - img * outH;
    const count = Math.min(r1 - r, outH - oy0);
    const at = img * outImage + oy0 * outRow;
    // Rows from oy0: the window's top moves down by oy0 strides (padT may become negative).
    ex.depthwise(
      x + img * inImage,
      inH,
      inW,
      c4,
      w,
      bias,
      y + at,
      fh,
      fw,
      sh,
      sw,
      dh,
      dw,
      padT - oy0 * sh,
      padL,
      count,
      outW,
      act,
      side === 0 ? 0 : side + at,
    );
    r += count;
  }
}

/** The instance of this isolate that runs a helper's parts: the build the caller used. */
function helperKernel(relaxed: boolean): ConvWasm | null {
  const k = getKernel();
  if (k === null || k.relaxed === relaxed) return k;
  if (otherBuild?.relaxed !== relaxed) {
    const other = relaxed ? relaxedExports() : plainExports();
    if (other === null) return null;
    otherBuild?.dispose();
    otherBuild = new ConvWasm(other, relaxed);
  }
  return otherBuild;
}
let otherBuild: ConvWasm | undefined;

registerPartRunner(OP_CONV2D, (args, part) => {
  const k = helperKernel(args[0] === 1);
  if (k === null) throw new Error("No convolution kernel here");
  const ex = k.exports;
  if (args[22] === WasmAct.HardSwish) ex.setHardSwish(bitsFloat(args[23]), bitsFloat(args[24]));
  let col = 0;
  if (args[1] === 0) {
    col = k.scratchArea(args[25] * args[16] * 4);
    if (col < 0) throw new Error("Out of kernel memory");
  }
  convRows(ex, args, part, col);
});

registerPartRunner(OP_DEPTHWISE, (args, part) => {
  const k = helperKernel(args[0] === 1);
  if (k === null) throw new Error("No convolution kernel here");
  const ex = k.exports;
  if (args[18] === WasmAct.HardSwish) ex.setHardSwish(bitsFloat(args[20]), bitsFloat(args[21]));
  depthwiseRows(ex, args, part);
});

registerPartRunner(OP_POOL, (args, part) => {
  // Sums and maxima only: both builds give the same floats.
  const k = getKernel();
  if (k === null) throw new Error("No convolution kernel here");
  poolRows(k.exports, args, part);
});

registerPartRunner(OP_ADD_MEAN, (args, part) => {
  // Sums only: both builds give the same floats.
  const k = getKernel();
  if (k === null) throw new Error("No convolution kernel here");
  addMeanPart(k.exports, args, part);
});

registerPartRunner(OP_MATMUL, (args, part) => {
  const k = helperKernel(args[0] === 1);
  if (k === null) throw new Error("No convolution kernel here");
  matmulRows(k.exports, args, part);
});

const relaxedModule = compile(CONV_RELAXED_WASM);
const plainModule = compile(CONV_WASM);
/** Made on first use, so that a worker isolate adopts the process's memory first. */
let kernel: ConvWasm | null | undefined = relaxedModule === null && plainModule === null
  ? null
  : undefined;
let enabled = kernel !== null;
let profiling: ConvStats | null = null;

let relaxedInstance: ConvExports | null | undefined;
let plainInstance: ConvExports | null | undefined;
/** This isolate's instance of the relaxed-SIMD build, made on first use; null without it. */
const relaxedExports = () => relaxedInstance ??= instantiate(relaxedModule);
/** This isolate's instance of the plain-SIMD build, made on first use. */
const plainExports = () => plainInstance ??= instantiate(plainModule);

function getKernel(): ConvWasm | null {
  if (kernel === undefined) {
    const relaxed = relaxedExports();
    const plain = relaxed === null ? plainExports() : null;
    kernel = relaxed !== null
      ? new ConvWasm(relaxed, true)
      : plain !== null
      ? new ConvWasm(plain, false)
      : null;
  }
  return kernel;
}

/** True when this engine runs the WebAssembly SIMD convolution kernels. */
export const convWasmSupported: boolean = kernel !== null;

/** True when the engine has relaxed SIMD, so the fused multiply-add build runs by default. */
export const convWasmRelaxed: boolean = relaxedModule !== null;

/**
 * Turns the kernels on or off (on when supported), for tests and benchmarks. Returns the old
 * setting.
 */
export function setConvWasmEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on && kernel !== null;
  return was;
}

/**
 * Switches between the relaxed-SIMD build (true; only where the engine has it) and the
 * plain-SIMD build (false), so tests can check that both give the same results within
 * tolerance. Both read the same packed weights. Returns whether the relaxed build now runs.
 */
export function useRelaxedConvWasm(on: boolean): boolean {
  const old = getKernel();
  if (old === null) return false;
  old.dispose();
  const relaxed = on ? relaxedExports() : null;
  kernel = relaxed !== null ? new ConvWasm(relaxed, true) : new ConvWasm(plainExports()!, false);
  return relaxed !== null;
}

/** Starts (true) or stops (false) counting work and time; returns the counts so far. */
export function setConvProfiling(on: boolean): ConvStats | null {
  const was = profiling;
  profiling = on ? { flops: 0, ms: 0, calls: 0 } : null;
  return was;
}

function timed<T>(flops: number, run: () => T): T {
  const p = profiling;
  if (p === null) return run();
  const t0 = performance.now();
  const out = run();
  p.ms += performance.now() - t0;
  p.flops += flops;
  p.calls++;
  return out;
}

/**
 * NHWC Conv2D (one group) with an HWIO filter [fh, fw, inC, outC], then `+ b`, `+ side`, `act`
 * (with `hs`, its constants, exactly when `act` is HardSwish).
 *
 * @param x the input, g.batch × g.inH × g.inW × g.inC floats
 * @param f the filter, a weight (packed once per array and cached)
 * @param b outC biases or null
 * @param side a tensor of the output's layout added before the activation, or null
 * @param inScale g.inC factors the input's channels are multiplied by first, or null: folded
 *   into the filter's rows (packed for this call), x itself is read as it is
 * @returns a new array of g.batch × g.outH × g.outW × g.outC floats, or null (see the module)
 */
export function conv2dF32(
  x: Float32Array,
  f: Float32Array,
  b: Float32Array | null,
  side: Float32Array | null,
  g: Geometry,
  act: WasmAct,
  hs: HardSwish | null = null,
  inScale: Float32Array | null = null,
): Float32Array | null {
  const k = enabled ? getKernel() : null;
  if (k === null || g.outC === 0 || g.inC === 0) return null;
  if ((act === WasmAct.HardSwish) !== (hs !== null)) throw new Error("hard-swish constants");
  if (inScale !== null && inScale.length !== g.inC) throw new Error("input scale length");
  const flops = 2 * g.batch * g.outH * g.outW * g.outC * g.fh * g.fw * g.inC;
  return timed(flops, () => k.conv2d(x, f, b, side, g, act, hs, inScale));
}

/**
 * NHWC DepthwiseConv2dNative with channel multiplier 1 (filter [fh, fw, inC, 1]), then `+ b`,
 * `act` and, after the activation, `+ side` (a tensor of the output's layout, or null). Same
 * contract as `conv2dF32`.
 */
export function depthwiseF32(
  x: Float32Array,
  f: Float32Array,
  b: Float32Array | null,
  g: Geometry,
  act: WasmAct,
  hs: HardSwish | null = null,
  side: Float32Array | null = null,
): Float32Array | null {
  const k = enabled ? getKernel() : null;
  if (k === null || g.inC === 0) return null;
  if ((act === WasmAct.HardSwish) !== (hs !== null)) throw new Error("hard-swish constants");
  const flops = 2 * g.batch * g.outH * g.outW * g.inC * g.fh * g.fw;
  return timed(flops, () => k.depthwise(x, f, b, g, act, hs, side));
}

/**
 * act(a·op(W) + b) for a [m, k] (row-major) and a weight W, [k, n] or [n, k] when `transB`.
 * Same contract as `conv2dF32`.
 */
export function matmulF32(
  a: Float32Array,
  w: Float32Array,
  b: Float32Array | null,
  m: number,
  k: number,
  n: number,
  transB: boolean,
  act: WasmAct,
): Float32Array | null {
  const kn = enabled ? getKernel() : null;
  if (kn === null || m === 0 || k === 0 || n === 0) return null;
  if (act === WasmAct.HardSwish) throw new Error("matmulF32 has no hard-swish epilogue");
  return timed(2 * m * k * n, () => kn.matmul(a, w, b, m, k, n, transB, act));
}

/**
 * The scatter of a transposed convolution whose windows do not overlap ((f − 1)·d < s on both
 * axes; `conv.wat`'s `$placeTaps`): each out_backprop pixel's row of g.fh·g.fw·g.inC tap
 * products in `cols` copied to the pixels of `y` (g's input, NHWC) its taps land on. Both must
 * be in the kernel memory (a plan's intermediates are); `y` holds zeros where no tap lands.
 *
 * @returns false (nothing written) when the kernel is off or an array is elsewhere
 */
export function placeTapsF32(cols: Float32Array, y: Float32Array, g: Geometry): boolean {
  const kn = enabled ? getKernel() : null;
  if (kn === null || !isKernelView(cols) || !isKernelView(y)) return false;
  if (cols.length < g.batch * g.outH * g.outW * g.fh * g.fw * g.inC) return false;
  if (y.length < g.batch * g.inH * g.inW * g.inC) return false;
  kn.exports.placeTaps(
    cols.byteOffset,
    y.byteOffset,
    g.batch,
    g.inH,
    g.inW,
    g.inC,
    g.fh,
    g.fw,
    g.outH,
    g.outW,
    g.sh,
    g.sw,
    g.dh,
    g.dw,
    g.padTop,
    g.padLeft,
  );
  return true;
}

/**
 * The global average over height and width of a + b, NHWC float32 of shape [batch, h, w, c]:
 * each a + b rounded to float32 (the Add's output), summed in float64 row by row, the rows
 * added in order, divided and rounded once; the result is [batch, c]. The sum is never made (a
 * squeeze-and-excitation block's AvgPool of its residual Add: `_FusedAddAvgPool`). Both must be
 * in the kernel memory (a plan's intermediates are) and c a multiple of 4.
 *
 * @returns the averages, or null (nothing done) when the kernel is off or the arrays are not so
 */
export function addMeanF32(
  a: Float32Array,
  b: Float32Array,
  batch: number,
  h: number,
  w: number,
  c: number,
): Float32Array | null {
  const k = enabled ? getKernel() : null;
  if (k === null || batch * h * w * c === 0) return null;
  return k.addMean(a, b, batch, h, w, c);
}

/**
 * Taps from which an average pools in float64 sums: a float32 running sum of thousands of values
 * (a global average) drifts by more than the tolerances that matter; up to this many taps it
 * sums in float32 as TensorFlow's kernel does.
 */
export const WIDE_POOL_TAPS = 64;

/**
 * NHWC max (`max`) or average pooling, windows clipped to the input (padding is never the max
 * and not counted in the average), float32 sums (float64 for windows of more than
 * {@link WIDE_POOL_TAPS} taps). Same contract as `conv2dF32`.
 */
export function poolF32(x: Float32Array, g: Geometry, max: boolean): Float32Array | null {
  const k = enabled ? getKernel() : null;
  if (k === null || g.inC === 0) return null;
  return k.pool(x, g, max);
}

/** The measured SIMD multiply-add peak in GFLOP/s (0 without the kernels), timed for `ms`. */
export function convWasmPeak(ms = 200): number {
  const k = getKernel();
  return k === null ? 0 : k.peak(ms);
}
