/**
 * The JavaScript side of the WebAssembly SIMD dense kernel (`dense.wat`): y = x·W + b for float32
 * rows, optionally followed by a softmax per row.
 *
 * One module instance per isolate, made on first use over the process's shared kernel memory
 * (`shared_memory.ts`), which holds
 * - the weights, packed in panels of 4 outputs (zero padded, see `dense.wat`) and cached by
 *   the identity of W's Float32Array: a tensor's storage is never written after the tensor is
 *   made (kernels never mutate inputs; a variable assignment makes a new tensor), so
 *   the same array means the same values. The key also holds k, m and the layout, since
 *   one array can be seen under several shapes (a Reshape shares its input's storage). A
 *   weight stored in a shared buffer (a model's constants and variables) is packed once for
 *   all the isolates of the process (`WeightCache`); its bytes are returned once every isolate's
 *   array is garbage collected;
 * - this isolate's scratch area for a chunk of x rows, the bias and the output rows, reused
 *   across calls (kernels are synchronous, so one call at a time per isolate).
 *
 * Accumulation is in float32 (as TensorFlow's CPU MatMul); the JavaScript kernels accumulate in
 * float64. Measured on random data, a logit differs from the float64 sum by at most about
 * 1e-7 × Σ|x_i·w_i| (a float32 ulp or so of the terms' magnitude): 5e-7 for k = 784 with
 * weights ~1/√k, 2e-5 for k = 784 with unit weights (logits up to ±44). A softmax output's
 * relative error is about the logits' absolute error (so ~5e-7 and ~2e-5 in those two cases).
 * The softmax itself uses a polynomial exp (~1e-7 relative) and rounds e / sum once.
 *
 * When WebAssembly or its SIMD is missing, `denseF32` returns null and callers keep their
 * JavaScript loops.
 *
 * @module
 */
import { DENSE_WASM } from "./dense_wasm.ts";
import { align16 } from "./heap.ts";
import {
  kernelMemory,
  PackKind,
  type SharedHeap,
  sharedHeap,
  WeightCache,
} from "./shared_memory.ts";

/** The module's exports. */
interface DenseExports {
  dense(
    x: number,
    w: number,
    b: number,
    y: number,
    n: number,
    k: number,
    m: number,
    softmax: number,
  ): void;
}

/**
 * The smallest module using SIMD — `(func (result v128) i32.const 0 i8x16.splat)` — to ask the
 * engine whether it has SIMD before compiling the kernel.
 */
// deno-fmt-ignore
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x08, 0x01, 0x06, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0x0b, // code: i32.const 0; i8x16.splat
]);

/** Floats of x per chunk of rows, so the scratch area stays small and the chunk stays cached. */
const CHUNK_FLOATS = 1 << 16;

/** The compiled kernel, or null when the engine lacks WebAssembly SIMD or shared memory. */
function compile(): WebAssembly.Module | null {
  try {
    if (typeof WebAssembly !== "object" || !WebAssembly.validate(SIMD_PROBE)) return null;
    if (typeof SharedArrayBuffer !== "function") return null;
    return new WebAssembly.Module(DENSE_WASM);
  } catch {
    return null;
  }
}

/** An instance over this isolate's kernel memory, or null if it cannot be made. */
function instantiate(module: WebAssembly.Module): DenseExports | null {
  try {
    const instance = new WebAssembly.Instance(module, { env: { memory: kernelMemory() } });
    return instance.exports as unknown as DenseExports;
  } catch {
    return null;
  }
}

/** The instance, the weight cache and the scratch area. */
class DenseWasm {
  readonly #dense: DenseExports["dense"];
  readonly #heap: SharedHeap;
  readonly #weightCache: WeightCache;
  #scratch = -1;
  #scratchBytes = 0;

  constructor(exports: DenseExports) {
    this.#dense = exports.dense;
    this.#heap = sharedHeap();
    this.#weightCache = new WeightCache(this.#heap);
  }

  /** The byte offset of W packed for the kernel, packing it on first use; -1 if out of memory. */
  #weights(w: Float32Array, k: number, m: number, transB: boolean): number {
    const kp = (k + 3) & ~3;
    const m4 = (m + 3) & ~3;
    return this.#weightCache.offset(
      w,
      PackKind.Dense4,
      k,
      m,
      transB ? 1 : 0,
      m4 * kp,
      (f32, base) => {
        // Panels of 4 outputs, chunks of 4 inputs (see dense.wat): W[input kk, output j] goes to
        // (j >> 2)·4kp + (kk >> 2)·16 + (j & 3)·4 + (kk & 3).
        const panel = 4 * kp;
        if (transB) {
          // W is [m, k]: row j holds the weights of output j.
          for (let j = 0, wi = 0; j < m; j++) {
            const po = base + (j >> 2) * panel + (j & 3) * 4;
            for (let kk = 0; kk < k; kk++, wi++) f32[po + (kk >> 2) * 16 + (kk & 3)] = w[wi];
          }
        } else {
          // W is [k, m]: row kk holds input kk's weight for every output.
          for (let kk = 0, wi = 0; kk < k; kk++) {
            const ko = base + (kk >> 2) * 16 + (kk & 3);
            for (let j = 0; j < m; j++, wi++) f32[ko + (j >> 2) * panel + (j & 3) * 4] = w[wi];
          }
        }
      },
    );
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

  /** See `denseF32`. */
  run(
    x: Float32Array,
    w: Float32Array,
    b: Float32Array | null,
    n: number,
    k: number,
    m: number,
    transB: boolean,
    softmax: boolean,
  ): Float32Array | null {
    const wo = this.#weights(w, k, m, transB);
    if (wo < 0) return null;
    const m4 = (m + 3) & ~3;
    const rows = Math.max(1, Math.min(n, Math.floor(CHUNK_FLOATS / Math.max(k, m, 1))));
    // Scratch: bias (m4 floats) | x rows + 16 bytes read past the last | y rows + 16 bytes slack.
    const bBytes = m4 * 4;
    const xBytes = align16(rows * k * 4 + 16);
    const yBytes = align16(rows * m * 4 + 16);
    const so = this.#scratchArea(bBytes + xBytes + yBytes);
    if (so < 0) return null;
    const f32 = this.#heap.f32;
    const bo = so, xo = bo + bBytes, yo = xo + xBytes;
    const b4 = bo >>> 2, x4 = xo >>> 2, y4 = yo >>> 2;
    if (b === null) f32.fill(0, b4, b4 + m4);
    else {
      f32.set(b.subarray(0, m), b4);
      for (let j = m; j < m4; j++) f32[b4 + j] = 0;
    }
    const flag = softmax ? 1 : 0;
    if (rows === n) {
      f32.set(x.length === n * k ? x : x.subarray(0, n * k), x4);
      this.#dense(xo, wo, bo, yo, n, k, m, flag);
      return f32.slice(y4, y4 + n * m);
    }
    const y = new Float32Array(n * m);
    for (let r0 = 0; r0 < n; r0 += rows) {
      const r = Math.min(rows, n - r0);
      f32.set(x.subarray(r0 * k, (r0 + r) * k), x4);
      this.#dense(xo, wo, bo, yo, r, k, m, flag);
      y.set(f32.subarray(y4, y4 + r * m), r0 * m);
    }
    return y;
  }
}

const module = compile();
/** Made on first use, so that a worker isolate adopts the process's memory first. */
let kernel: DenseWasm | null | undefined = module === null ? null : undefined;
let enabled = module !== null;

function getKernel(): DenseWasm | null {
  if (kernel === undefined) {
    const exports = instantiate(module!);
    kernel = exports === null ? null : new DenseWasm(exports);
  }
  return kernel;
}

/** True when this engine runs the WebAssembly SIMD kernel (feature-detected at load). */
export const denseWasmSupported: boolean = module !== null;

/**
 * Turns the WebAssembly kernel on or off (it is on when supported), so tests and benchmarks can
 * compare it with the JavaScript loops. Returns the previous setting.
 */
export function setDenseWasmEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on && module !== null;
  return was;
}

/**
 * y = x·op(W) + b, then softmax of each row when `softmax` is set, with WebAssembly SIMD.
 *
 * @param x n rows of k floats (row-major, not transposed)
 * @param w W as [k, m], or as [m, k] when `transB`; packed once per array and cached
 * @param b m biases, or null for none
 * @returns a new Float32Array of n × m, or null when the kernel is unavailable, switched off, or
 *   out of memory: the caller then runs its JavaScript loop
 */
export function denseF32(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array | null,
  n: number,
  k: number,
  m: number,
  transB: boolean,
  softmax: boolean,
): Float32Array | null {
  // Empty products are left to the caller's loops (and would make zero-byte blocks here).
  if (!enabled || n === 0 || k === 0 || m === 0) return null;
  const kernel = getKernel();
  if (kernel === null) return null;
  return kernel.run(x, w, b, n, k, m, transB, softmax);
}

/** Ops whose output keeps its storage from run to run: constants and variable reads. */
const WEIGHT_SOURCES = new Set(["Const", "VariableV2", "Variable", "ReadVariableOp"]);

/**
 * True if an input produced by `op` is a weight. Packing W into WebAssembly memory pays off for
 * weights (the same array every run) but not for an activation, which is new on every run:
 * packing costs more than a small product, and a stream of fresh arrays grows the WebAssembly
 * memory (which never shrinks) before the collector frees them. Deciding by the producer, at
 * compile time, keeps a node's numbers the same on every call.
 */
export function isWeightSource(op: string): boolean {
  return WEIGHT_SOURCES.has(op);
}
