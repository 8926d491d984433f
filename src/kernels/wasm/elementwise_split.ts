/**
 * Large float32 Add / AddV2 / Sub / Mul split across the kernel team (`team.ts`): the plan
 * (`graph/plan.ts`) tries {@link splitBinaryF32} before the op's own kernel, which still runs
 * whenever this declines (no team, too small, another dtype or broadcast, operands outside the
 * kernel memory).
 *
 * Handled shapes: both operands of the output's shape, or one of them a trailing broadcast of
 * the other (its shape, right-aligned, equals the other's last dimensions, leading ones aside:
 * a scalar, a per-channel vector). The big operand and the output must be in the kernel memory
 * (intermediates are, see `float_store.ts`); a small broadcast operand is copied there.
 *
 * Each element is one float32 operation computed in float64 and rounded once, as the
 * JavaScript kernels do (for +, − and × that is the correctly rounded float32 result), so the
 * output is the same floats whoever computes which part.
 *
 * @module
 */
import { DataType } from "../../tensor/dtype.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { uninitialized } from "../../tensor/arena.ts";
import { isKernelView, kernelFloats } from "./float_store.ts";
import { sharedHeap } from "./shared_memory.ts";
import { binaryF32, WasmBinary } from "./elementwise.ts";
import { canSplit, MAX_PARTS, registerPartRunner, runSplit } from "./team.ts";

const OP_BINARY = 16;
const ADD = 0, SUB = 1, MUL = 2;

/** The ops handled, by TF op name. */
const KINDS: Readonly<Record<string, number>> = { Add: ADD, AddV2: ADD, Sub: SUB, Mul: MUL };

/** Elements from which an op is split, and per part. */
const SPLIT_MIN_ELEMENTS = 1 << 16;
const PART_ELEMENTS = 1 << 15;

/** Whether {@link splitBinaryF32} may take `op`. */
export function splitsBinary(op: string): boolean {
  return op in KINDS;
}

/**
 * y[i] = x[i] ∘ s[i mod sn] (or s ∘ x when `swap`) for i in [i0, i1), over float indices of
 * the kernel memory `f`; `sn` 0: s has x's shape.
 */
function binaryPart(
  f: Float32Array,
  kind: number,
  swap: boolean,
  x: number,
  s: number,
  sn: number,
  y: number,
  i0: number,
  i1: number,
): void {
  if (sn === 0) {
    // Same shape: s is read at the same index as x (`sn` 0 marks it).
    const d = s - x;
    if (kind === ADD) {
      for (let i = x + i0, o = y + i0; i < x + i1; i++, o++) f[o] = f[i] + f[i + d];
    } else if (kind === MUL) {
      for (let i = x + i0, o = y + i0; i < x + i1; i++, o++) f[o] = f[i] * f[i + d];
    } else if (swap) {
      for (let i = x + i0, o = y + i0; i < x + i1; i++, o++) f[o] = f[i + d] - f[i];
    } else for (let i = x + i0, o = y + i0; i < x + i1; i++, o++) f[o] = f[i] - f[i + d];
    return;
  }
  let j = i0 % sn;
  if (kind === ADD) {
    for (let i = i0; i < i1; i++) {
      f[y + i] = f[x + i] + f[s + j];
      if (++j === sn) j = 0;
    }
  } else if (kind === MUL) {
    for (let i = i0; i < i1; i++) {
      f[y + i] = f[x + i] * f[s + j];
      if (++j === sn) j = 0;
    }
  } else if (swap) {
    for (let i = i0; i < i1; i++) {
      f[y + i] = f[s + j] - f[x + i];
      if (++j === sn) j = 0;
    }
  } else {
    for (let i = i0; i < i1; i++) {
      f[y + i] = f[x + i] - f[s + j];
      if (++j === sn) j = 0;
    }
  }
}

const WASM_OPS = [WasmBinary.Add, WasmBinary.Sub, WasmBinary.Mul];

/**
 * Elements [i0, i1) on the WebAssembly elementwise kernel, in place in the kernel memory (a
 * broadcast operand's period `sn` divides i0); false when it declines (then `binaryPart`, the
 * same floats: one correctly rounded float32 operation each).
 */
function wasmPart(
  f: Float32Array,
  kind: number,
  swap: boolean,
  x: number,
  s: number,
  sn: number,
  y: number,
  i0: number,
  i1: number,
): boolean {
  const len = i1 - i0;
  const xv = f.subarray(x + i0, x + i1), yv = f.subarray(y + i0, y + i1);
  let sv: Float32Array, dims: number[], xs: number[], ss: number[];
  if (sn === 0) {
    sv = f.subarray(s + i0, s + i1);
    dims = [1, 1, len];
    xs = ss = [0, 0, 1];
  } else {
    sv = f.subarray(s, s + sn);
    dims = [1, len / sn, sn];
    xs = [0, sn, 1];
    ss = [0, 0, 1];
  }
  const op = WASM_OPS[kind];
  return swap ? binaryF32(op, sv, xv, yv, dims, ss, xs) : binaryF32(op, xv, sv, yv, dims, xs, ss);
}

// Arguments: kind, swap, x, s, sn, y (float indices), n, elements per part.
function runPart(f: Float32Array, a: ArrayLike<number>, part: number): void {
  const n = a[6], per = a[7];
  const i0 = part * per, i1 = Math.min(n, i0 + per);
  if (i0 >= i1) return;
  const kind = a[0], swap = a[1] === 1;
  if (!wasmPart(f, kind, swap, a[2], a[3], a[4], a[5], i0, i1)) {
    binaryPart(f, kind, swap, a[2], a[3], a[4], a[5], i0, i1);
  }
}

registerPartRunner(OP_BINARY, (args, part) => runPart(kernelFloats(), args, part));

/** This isolate's block for small broadcast operands. */
let scratch = -1;
let scratchFloats = 0;

/** True when `small`'s shape is a trailing broadcast of `big`'s. */
function trailing(big: readonly number[], small: readonly number[]): boolean {
  let i = small.length - 1, j = big.length - 1;
  for (; i >= 0 && j >= 0; i--, j--) if (small[i] !== big[j]) break;
  // What is left of small must be ones (leading broadcast dimensions).
  for (; i >= 0; i--) if (small[i] !== 1) return false;
  return small.length <= big.length;
}

/**
 * `op`(a, b) split across the team, or null when it does not apply (see the module); the
 * caller then runs the op's own kernel.
 */
export function splitBinaryF32(op: string, a: Tensor, b: Tensor): Tensor | null {
  if (a.dtype !== DataType.DT_FLOAT || b.dtype !== DataType.DT_FLOAT) return null;
  const ad = a.data, bd = b.data;
  if (!(ad instanceof Float32Array) || !(bd instanceof Float32Array)) return null;
  const n = Math.max(ad.length, bd.length);
  if (n < SPLIT_MIN_ELEMENTS || !canSplit()) return null;
  const swap = bd.length > ad.length;
  const [big, small] = swap ? [b, a] : [a, b];
  const x = big.data as Float32Array, s = small.data as Float32Array;
  if (s.length === 0 || !isKernelView(x)) return null;
  if (s.length === n) {
    if (big.shape.length !== small.shape.length || big.shape.some((d, i) => d !== small.shape[i])) {
      return null;
    }
  } else if (!trailing(big.shape, small.shape)) return null;
  const y = uninitialized(Float32Array, n);
  if (!isKernelView(y)) return null;
  const heap = sharedHeap();
  let so: number;
  if (isKernelView(s)) so = s.byteOffset >>> 2;
  else {
    if (s.length > scratchFloats) {
      if (scratch >= 0) heap.free(scratch, scratchFloats * 4);
      scratchFloats = 0;
      scratch = heap.alloc(s.length * 4);
      if (scratch < 0) return null;
      scratchFloats = s.length;
    }
    heap.f32.set(s, scratch >>> 2);
    so = scratch >>> 2;
  }
  const parts = Math.min(MAX_PARTS, 8, Math.ceil(n / PART_ELEMENTS));
  // Parts start on a period of a broadcast operand (whole rows for the kernel).
  const sn = s.length === n ? 0 : s.length;
  const per = sn === 0 ? Math.ceil(n / parts) : Math.ceil(n / parts / sn) * sn;
  const args = [
    KINDS[op],
    swap ? 1 : 0,
    x.byteOffset >>> 2,
    so,
    s.length === n ? 0 : s.length,
    y.byteOffset >>> 2,
    n,
    per,
  ];
  const f = heap.f32;
  const whole = () => {
    if (!wasmPart(f, args[0], swap, args[2], args[3], args[4], args[5], 0, n)) {
      binaryPart(f, args[0], swap, args[2], args[3], args[4], args[5], 0, n);
    }
  };
  if (!runSplit(OP_BINARY, args, Math.ceil(n / per), (part) => runPart(f, args, part), n, whole)) {
    return null;
  }
  return new Tensor(DataType.DT_FLOAT, big.shape, y);
}
