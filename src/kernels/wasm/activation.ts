/**
 * The JavaScript side of the WebAssembly SIMD activation kernels (`activation.wat`): the
 * float32 sigmoid and exp, four lanes at a time with a float32 exp (within a few float32 ulps
 * of the exact value, as TensorFlow's own float32 kernels are; the float64 JavaScript loops are
 * exact to float32 rounding). Math.exp costs 6–25 ns an element here; the SIMD loop about 1 ns.
 *
 * Values already in the shared kernel memory (a plan's intermediates) are computed where they
 * are, by an instance over that memory (`shared_scratch.ts`). Otherwise one module instance per
 * isolate with its own linear memory: 16 bytes of tail scratch, then the values, computed in
 * place and copied out. The memory grows to the largest call seen (never
 * past `MAX_BYTES`); larger calls return null and the caller runs its JavaScript loop.
 *
 * @module
 */
import { ACTIVATION_WASM } from "./activation_wasm.ts";
import { ACTIVATION_SHARED_WASM } from "./activation_shared_wasm.ts";
import { ensureBytes, instantiateOwn } from "./heap.ts";
import { isKernelView } from "./float_store.ts";
import { instantiateShared, sharedScratch } from "./shared_scratch.ts";
import { canSplit, registerPartRunner, runSplit, teamMembers } from "./team.ts";

interface ActivationExports {
  readonly memory: WebAssembly.Memory;
  sigmoid(x: number, y: number, n: number, tmp: number): void;
  exp(x: number, y: number, n: number, tmp: number): void;
}

/** Below this many elements the copies cost more than Math.exp saves. */
const MIN_ELEMENTS = 64;

const kernel = instantiateOwn<ActivationExports>(ACTIVATION_WASM);
/** The instance over the shared kernel memory (`shared_scratch.ts`), made on first use. */
let shared: ActivationExports | null | undefined;
let enabled = true;

/** True when the engine runs the activation kernels. */
export const activationWasmSupported: boolean = kernel !== null;

/**
 * Switches the activation kernels on or off (tests compare them with the JavaScript loops).
 *
 * @returns the previous setting
 */
export function setActivationWasmEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** The team's op code for a part of an activation (see `team.ts`). */
const OP_ACTIVATION = 18;
/** Elements from which a call on the kernel memory is split across the kernel team. */
const SPLIT_MIN_ELEMENTS = 1 << 16;
const FNS = ["sigmoid", "exp"] as const;

/**
 * Elements [part·per, (part+1)·per) of a call over the kernel memory (arguments: the function's
 * index in FNS, source and destination byte offsets, n, elements per part, a multiple of 4):
 * each element's value depends on it alone, so parts give the floats a whole call does.
 */
function activationPart(ex: ActivationExports, a: ArrayLike<number>, part: number): void {
  const n = a[3], per = a[4];
  const i0 = part * per, i1 = Math.min(n, i0 + per);
  if (i0 >= i1) return;
  const tmp = sharedScratch(16);
  if (tmp < 0) throw new Error("No scratch for an activation part");
  ex[FNS[a[0]]](a[1] + i0 * 4, a[2] + i0 * 4, i1 - i0, tmp);
}

registerPartRunner(OP_ACTIVATION, (args, part) => {
  shared ??= instantiateShared<ActivationExports>(ACTIVATION_SHARED_WASM);
  if (shared === null) throw new Error("No activation kernel for a part");
  activationPart(shared, args, part);
});

/** Runs `fn` of the module over src[srcOff, srcOff + n) into dst[dstOff…]; false if it cannot. */
function apply(
  fn: "sigmoid" | "exp",
  src: Float32Array,
  srcOff: number,
  dst: Float32Array,
  dstOff: number,
  n: number,
): boolean {
  const ex = kernel;
  if (ex === null || !enabled || n < MIN_ELEMENTS) return false;
  if (isKernelView(src) && isKernelView(dst)) {
    // Both in the shared kernel memory (a plan's intermediates): computed where they are.
    shared ??= instantiateShared<ActivationExports>(ACTIVATION_SHARED_WASM);
    const tmp = shared === null ? -1 : sharedScratch(16);
    if (shared !== null && tmp >= 0) {
      const ex = shared, x = src.byteOffset + srcOff * 4, y = dst.byteOffset + dstOff * 4;
      // Large ones split across the kernel team (one part per member).
      const parts = n >= SPLIT_MIN_ELEMENTS && canSplit() ? teamMembers() : 1;
      if (parts > 1) {
        const args = [FNS.indexOf(fn), x, y, n, Math.ceil(n / parts / 4) * 4];
        const local = (part: number) => activationPart(ex, args, part);
        if (runSplit(OP_ACTIVATION, args, parts, local, n, () => ex[fn](x, y, n, tmp))) {
          return true;
        }
      }
      ex[fn](x, y, n, tmp);
      return true;
    }
  }
  const at = 16;
  if (!ensureBytes(ex.memory, at + n * 4)) return false;
  const f32 = new Float32Array(ex.memory.buffer);
  f32.set(src.subarray(srcOff, srcOff + n), at >>> 2);
  ex[fn](at, at, n, 0);
  dst.set(f32.subarray(at >>> 2, (at >>> 2) + n), dstOff);
  return true;
}

/**
 * dst[dstOff + i] = sigmoid(src[srcOff + i]) for i < n, in WebAssembly.
 *
 * @returns false (nothing written) when the kernel is unavailable, switched off, `n` is too
 *   small to gain, or the memory would be too large
 */
export function sigmoidF32(
  src: Float32Array,
  srcOff: number,
  dst: Float32Array,
  dstOff: number,
  n: number,
): boolean {
  return apply("sigmoid", src, srcOff, dst, dstOff, n);
}

/**
 * dst[dstOff + i] = e^src[srcOff + i] for i < n, in WebAssembly (+Inf past ln(FLT_MAX), 0 for
 * results below 2.5e-38).
 *
 * @returns false (nothing written) as {@link sigmoidF32} does
 */
export function expF32(
  src: Float32Array,
  srcOff: number,
  dst: Float32Array,
  dstOff: number,
  n: number,
): boolean {
  return apply("exp", src, srcOff, dst, dstOff, n);
}
