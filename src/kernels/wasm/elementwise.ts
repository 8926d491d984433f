/**
 * The JavaScript side of the WebAssembly SIMD elementwise kernels (`elementwise.wat`): Relu,
 * Relu6, Tanh and Exp on float32 (the JavaScript loops branch on the sign, which mispredicts on real
 * feature maps, ~5 ns an element, and Math.tanh costs 10-15 ns; the SIMD loop well under 1 ns
 * with its copies), and broadcasting float32 add, sub, mul, div, max, min and squared
 * difference (and PReLU) over up to three collapsed dims, four lanes at a time.
 *
 * Two instances per isolate:
 * - one over the process's shared kernel memory (`elementwise_shared_wasm.ts`): when the result
 *   and the large operands already live there (a plan's intermediates do, see
 *   `float_store.ts`), it computes on them where they are, with no copy in or out; a small
 *   operand from elsewhere (a constant scale, a scalar) is copied into this isolate's scratch
 *   block of that memory (`shared_scratch.ts`, at most its `SHARED_SCRATCH_BYTES`);
 * - otherwise one with its own linear memory: 32 bytes of scratch, then the operands and the
 *   result, copied in and out. The memory grows to the largest call seen (never past
 *   `MAX_BYTES`); larger calls return false and the caller runs its JavaScript loop.
 *
 * @module
 */
import { ELEMENTWISE_WASM } from "./elementwise_wasm.ts";
import { ELEMENTWISE_SHARED_WASM } from "./elementwise_shared_wasm.ts";
import { align16, ensureBytes, instantiateOwn } from "./heap.ts";
import { isKernelView } from "./float_store.ts";
import { sharedHeap } from "./shared_memory.ts";
import { instantiateShared, sharedScratch } from "./shared_scratch.ts";
import { canSplit, MAX_PARTS, registerPartRunner, runSplit } from "./team.ts";

interface ElementwiseExports {
  /** The module's own memory (the shared variant imports the kernel memory instead). */
  readonly memory: WebAssembly.Memory;
  unary(act: number, x: number, y: number, n: number, tmp: number): void;
  binary(
    op: number,
    a: number,
    b: number,
    y: number,
    n0: number,
    n1: number,
    n2: number,
    a0: number,
    a1: number,
    a2: number,
    b0: number,
    b1: number,
    b2: number,
    tmp: number,
  ): void;
  reduce(op: number, x: number, y: number, outer: number, mid: number, inner: number): void;
  mulAdd(
    x: number,
    s: number,
    r: number,
    y: number,
    rows: number,
    n: number,
    s1: number,
    s2: number,
    r1: number,
    r2: number,
  ): void;
  copyRows(src: number, dst: number, rows: number, bytes: number, stride: number): void;
}

/** The activations of `unaryF32`, as the module numbers them. */
export const enum WasmAct {
  Relu = 0,
  Relu6 = 1,
  Tanh = 2,
  Exp = 3,
}

/** The operations of `binaryF32`, as the module numbers them. */
export const enum WasmBinary {
  Add = 0,
  Sub = 1,
  Mul = 2,
  Div = 3,
  Max = 4,
  Min = 5,
  SquaredDifference = 6,
  /** Relu(a) + b·Relu(-a): PReLU with slope b. */
  Prelu = 7,
}

/** Below this many elements a unary call costs more than it saves (Math.tanh, a mispredicted
 * sign test: the JavaScript loops are slow per element). */
export const UNARY_MIN_ELEMENTS = 256;

/**
 * Below this many output elements the copies and the call of the binary kernels cost more than
 * they save over the JavaScript loops, which cost well under a nanosecond an element (measured
 * in the runtime bench's half_plus_two at batch 1024, where the kernel made the call 2-3× slower).
 */
export const ELEMENTWISE_MIN_ELEMENTS = 4096;

const kernel = instantiateOwn<ElementwiseExports>(ELEMENTWISE_WASM);
let enabled = true;

/** The instance over the shared kernel memory: made on first use, null when it cannot be. */
let sharedKernel: ElementwiseExports | null | undefined;

function sharedExports(): ElementwiseExports | null {
  if (sharedKernel === undefined) {
    sharedKernel = kernel === null
      ? null
      : instantiateShared<ElementwiseExports>(ELEMENTWISE_SHARED_WASM);
  }
  return sharedKernel;
}

/**
 * Where each array is for the shared instance: its own byte offset when it views the kernel
 * memory, else the offset of its copy in the scratch block (after the 32 bytes of row scratch);
 * `fixed` arrays (`lengths` given) are copied with that many elements. Null when an array is
 * outside the memory and too large to copy, or the scratch cannot be had. `[scratch, ...ptrs]`.
 */
function placeShared(arrays: readonly Float32Array[], lengths: readonly number[]): number[] | null {
  let need = 32;
  for (let i = 0; i < arrays.length; i++) {
    if (!isKernelView(arrays[i])) need += align16(lengths[i] * 4);
  }
  const at = sharedScratch(need);
  if (at < 0) return null;
  const out = [at];
  let next = at + 32;
  let f32: Float32Array | undefined;
  for (let i = 0; i < arrays.length; i++) {
    const a = arrays[i];
    if (isKernelView(a)) {
      out.push(a.byteOffset);
      continue;
    }
    f32 ??= sharedHeap().f32;
    f32.set(lengths[i] === a.length ? a : a.subarray(0, lengths[i]), next >>> 2);
    out.push(next);
    next += align16(lengths[i] * 4);
  }
  return out;
}

/** Small operands (at most this many floats) may be copied into the scratch block. */
const SHARED_COPY_MAX = 4096;

/** True when the engine runs the elementwise kernels. */
export const elementwiseWasmSupported: boolean = kernel !== null;

/**
 * Switches the elementwise kernels on or off (tests compare them with the JavaScript loops).
 *
 * @returns the previous setting
 */
export function setElementwiseWasmEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/**
 * dst[dstOff + i] = act(src[srcOff + i]) for i < n, in WebAssembly.
 *
 * @returns false (nothing written) when the kernel is unavailable, switched off, `n` is too
 *   small to gain, or the memory would be too large
 */
export function unaryF32(
  act: WasmAct,
  src: Float32Array,
  srcOff: number,
  dst: Float32Array,
  dstOff: number,
  n: number,
): boolean {
  const ex = kernel;
  if (ex === null || !enabled || n < UNARY_MIN_ELEMENTS) return false;
  if (isKernelView(src) && isKernelView(dst)) {
    const sx = sharedExports(), tmp = sx === null ? -1 : sharedScratch(32);
    if (sx !== null && tmp >= 0) {
      sx.unary(act, src.byteOffset + srcOff * 4, dst.byteOffset + dstOff * 4, n, tmp);
      return true;
    }
  }
  const at = 16;
  if (!ensureBytes(ex.memory, at + n * 4)) return false;
  const f32 = new Float32Array(ex.memory.buffer);
  f32.set(src.subarray(srcOff, srcOff + n), at >>> 2);
  ex.unary(act, at, at, n, 0);
  dst.set(f32.subarray(at >>> 2, (at >>> 2) + n), dstOff);
  return true;
}

/**
 * y[i0, i1, i2] = op(a[i0·as[0] + i1·as[1] + i2·as[2]], b[i0·bs[0] + i1·bs[1] + i2·bs[2]]) over
 * the row-major output `dims` (three dims), in WebAssembly. `as[2]` and `bs[2]` must be 0 or 1;
 * every index the strides reach must lie inside `a` and `b` (the broadcast planner's strides
 * do). Each result is the correctly rounded float32 of the operation, as JavaScript's
 * arithmetic on Float32Array elements stores it.
 *
 * @returns false (nothing written) when the kernel is unavailable, switched off, the output is
 *   too small to gain, or the memory would be too large
 */
export function binaryF32(
  op: WasmBinary,
  a: Float32Array,
  b: Float32Array,
  y: Float32Array,
  dims: readonly number[],
  as: readonly number[],
  bs: readonly number[],
): boolean {
  const ex = kernel;
  const n = y.length;
  if (ex === null || !enabled || n < ELEMENTWISE_MIN_ELEMENTS) return false;
  if ((as[2] !== 0 && as[2] !== 1) || (bs[2] !== 0 && bs[2] !== 1)) return false;
  const [n0, n1, n2] = dims;
  if (isKernelView(y) && binaryShared(op, a, b, y, dims, as, bs)) return true;
  // Short rows of a contiguous operand against one row repeated (a bias or a per-channel scale
  // of a few channels): the repeated row is tiled k times in memory so that the kernel runs
  // rows of k·n2 elements, not n1 calls of a few.
  let tileA = false, tileB = false;
  if (n0 === 1 && n1 > 1 && n2 > 0 && n2 < TILE_ROW) {
    tileB = as[1] === n2 && as[2] === 1 && bs[1] === 0 && bs[2] === 1;
    tileA = !tileB && bs[1] === n2 && bs[2] === 1 && as[1] === 0 && as[2] === 1;
  }
  const k = tileA || tileB ? Math.min(n1, Math.floor(TILE_ROW / n2)) : 1;
  const aLen = tileA && k > 1 ? k * n2 : a.length;
  const bLen = tileB && k > 1 ? k * n2 : b.length;
  // 32 bytes of scratch first (see the module), then the operands.
  const pa = 32;
  const pb = pa + align16(aLen * 4);
  const py = pb + align16(bLen * 4);
  if (!ensureBytes(ex.memory, py + n * 4)) return false;
  const f32 = new Float32Array(ex.memory.buffer);
  if (k > 1) {
    const row = tileA ? a.subarray(0, n2) : b.subarray(0, n2);
    const at = (tileA ? pa : pb) >>> 2;
    for (let r = 0; r < k; r++) f32.set(row, at + r * n2);
    f32.set(tileA ? b : a, (tileA ? pb : pa) >>> 2);
    // q rows of k·n2, then the n1 % k rows left as they are.
    const q = Math.floor(n1 / k), rest = n1 - q * k, w = k * n2;
    if (tileA) ex.binary(op, pa, pb, py, 1, q, w, 0, 0, 1, 0, w, 1, 0);
    else ex.binary(op, pa, pb, py, 1, q, w, 0, w, 1, 0, 0, 1, 0);
    if (rest > 0) {
      const done = q * w * 4;
      if (tileA) ex.binary(op, pa, pb + done, py + done, 1, rest, n2, 0, 0, 1, 0, n2, 1, 0);
      else ex.binary(op, pa + done, pb, py + done, 1, rest, n2, 0, n2, 1, 0, 0, 1, 0);
    }
  } else {
    f32.set(a, pa >>> 2);
    f32.set(b, pb >>> 2);
    ex.binary(op, pa, pb, py, n0, n1, n2, as[0], as[1], as[2], bs[0], bs[1], bs[2], 0);
  }
  y.set(f32.subarray(py >>> 2, (py >>> 2) + n));
  return true;
}

/**
 * binaryF32 on the shared instance, in place: y in the kernel memory, a and b there too or
 * small enough to copy into the scratch block. False (nothing written) otherwise.
 */
function binaryShared(
  op: WasmBinary,
  a: Float32Array,
  b: Float32Array,
  y: Float32Array,
  dims: readonly number[],
  as: readonly number[],
  bs: readonly number[],
): boolean {
  const sx = sharedExports();
  if (sx === null) return false;
  if (!isKernelView(a) && a.length > SHARED_COPY_MAX) return false;
  if (!isKernelView(b) && b.length > SHARED_COPY_MAX) return false;
  const [n0, n1, n2] = dims;
  // A short row of one operand repeated against a contiguous other: the row is tiled k times
  // into the scratch, so that the kernel runs rows of k·n2 elements, not n1 calls of a few.
  let tileA = false, tileB = false;
  if (n0 === 1 && n1 > 1 && n2 > 0 && n2 < TILE_ROW) {
    tileB = as[1] === n2 && as[2] === 1 && bs[1] === 0 && bs[2] === 1;
    tileA = !tileB && bs[1] === n2 && bs[2] === 1 && as[1] === 0 && as[2] === 1;
  }
  const k = tileA || tileB ? Math.min(n1, Math.floor(TILE_ROW / n2)) : 1;
  if (k > 1) {
    const row = tileA ? a : b, other = tileA ? b : a;
    const w = k * n2;
    // The scratch: 32 bytes for the rows, a copy of `other` unless it is in the memory, the tile.
    const otherBytes = isKernelView(other) ? 0 : align16(other.length * 4);
    const tmp = sharedScratch(32 + otherBytes + w * 4);
    if (tmp < 0) return false;
    const f32 = sharedHeap().f32;
    let po = other.byteOffset;
    if (otherBytes > 0) {
      po = tmp + 32;
      f32.set(other, po >>> 2);
    }
    const tileAt = tmp + 32 + otherBytes;
    const r0 = row.subarray(0, n2);
    for (let r = 0; r < k; r++) f32.set(r0, (tileAt >>> 2) + r * n2);
    const py = y.byteOffset;
    const q = Math.floor(n1 / k), rest = n1 - q * k;
    if (tileA) sx.binary(op, tileAt, po, py, 1, q, w, 0, 0, 1, 0, w, 1, tmp);
    else sx.binary(op, po, tileAt, py, 1, q, w, 0, w, 1, 0, 0, 1, tmp);
    if (rest > 0) {
      const done = q * w * 4;
      if (tileA) sx.binary(op, tileAt, po + done, py + done, 1, rest, n2, 0, 0, 1, 0, n2, 1, tmp);
      else sx.binary(op, po + done, tileAt, py + done, 1, rest, n2, 0, n2, 1, 0, 0, 1, tmp);
    }
    return true;
  }
  const placed = placeShared([a, b], [a.length, b.length]);
  if (placed === null) return false;
  const [tmp, pa, pb] = placed;
  sx.binary(op, pa, pb, y.byteOffset, n0, n1, n2, as[0], as[1], as[2], bs[0], bs[1], bs[2], tmp);
  return true;
}

/** Rows shorter than this are tiled (see binaryF32). */
const TILE_ROW = 256;

/**
 * y[o·inner + k] = Max (or Min) over m < mid of x[(o·mid + m)·inner + k], in WebAssembly: a
 * reduction over the middle of three dims (what a Max over a non-last axis collapses to). NaN
 * propagates.
 *
 * @returns false (nothing written) when the kernel is unavailable, switched off, the input is
 *   small, `inner` is under 4 (no lanes to fill), `mid` is 0, or the memory would be too large
 */
export function reduceF32(
  op: WasmBinary.Max | WasmBinary.Min,
  x: Float32Array,
  y: Float32Array,
  outer: number,
  mid: number,
  inner: number,
): boolean {
  const ex = kernel;
  if (ex === null || !enabled || x.length < ELEMENTWISE_MIN_ELEMENTS || inner < 4 || mid < 1) {
    return false;
  }
  if (isKernelView(x) && isKernelView(y)) {
    const sx = sharedExports();
    if (sx !== null) {
      sx.reduce(op, x.byteOffset, y.byteOffset, outer, mid, inner);
      return true;
    }
  }
  const px = 16;
  const py = px + align16(x.length * 4);
  if (!ensureBytes(ex.memory, py + y.length * 4)) return false;
  const f32 = new Float32Array(ex.memory.buffer);
  f32.set(x, px >>> 2);
  ex.reduce(op, px, py, outer, mid, inner);
  y.set(f32.subarray(py >>> 2, (py >>> 2) + y.length));
  return true;
}

/**
 * y = x·s + r over float32 (the product rounded, then the sum: the Mul and Add kernels' values),
 * in WebAssembly: `s` of x's length ("same"), one value ("one"), or `c` values repeated along
 * the last axis ("channel"); `r` of x's length (`rFull`) or one value.
 *
 * @returns false (nothing written) when the kernel is unavailable, switched off, `x` is small,
 *   or the memory would be too large
 */
export function mulAddF32Wasm(
  x: Float32Array,
  s: Float32Array,
  r: Float32Array,
  y: Float32Array,
  kind: "same" | "one" | "channel",
  c: number,
  rFull: boolean,
): boolean {
  const ex = kernel;
  const n = x.length;
  if (ex === null || !enabled || n < ELEMENTWISE_MIN_ELEMENTS || c < 1) return false;
  // Per channel: s tiled k times, so that rows are k·c long (see binaryF32).
  const rows = kind === "channel" ? n / c : 1;
  const k = kind === "channel" ? Math.max(1, Math.min(rows, Math.floor(TILE_ROW / c))) : 1;
  const sLen = kind === "channel" ? k * c : kind === "same" ? n : 1;
  if (isKernelView(x) && isKernelView(y)) {
    const sx = sharedExports();
    // The scale tiled (or copied, or its one value) and the sum's value into the scratch, unless
    // they are in the memory already.
    const sIn = kind === "same" && isKernelView(s), rIn = rFull && isKernelView(r);
    const sBytes = sIn ? 0 : align16(sLen * 4), rBytes = rIn ? 0 : align16((rFull ? n : 1) * 4);
    const at = sx === null || sLen > SHARED_COPY_MAX || (!rIn && rFull && n > SHARED_COPY_MAX)
      ? -1
      : sharedScratch(sBytes + rBytes);
    if (sx !== null && at >= 0) {
      const f32 = sharedHeap().f32;
      const ps = sIn ? s.byteOffset : at, pr = rIn ? r.byteOffset : at + sBytes;
      if (kind === "channel") {
        const row = s.subarray(0, c);
        for (let t = 0; t < k; t++) f32.set(row, (ps >>> 2) + t * c);
      } else if (!sIn) f32.set(kind === "same" ? s : s.subarray(0, 1), ps >>> 2);
      if (!rIn) f32.set(rFull ? r : r.subarray(0, 1), pr >>> 2);
      if (n >= MUL_ADD_SPLIT_MIN && canSplit()) {
        // Rows of c for a per-channel scale, in whole tiles of k; elements otherwise.
        const units = kind === "channel" ? rows : n, align = kind === "channel" ? k : 4;
        const parts = Math.min(MAX_PARTS, 8, Math.ceil(n / MUL_ADD_PART));
        const per = Math.ceil(units / parts / align) * align;
        const args = [
          x.byteOffset,
          ps,
          pr,
          y.byteOffset,
          MUL_ADD_KINDS.indexOf(kind),
          c,
          k,
          units,
          rFull ? 1 : 0,
          per,
        ];
        const whole = () => mulAddRun(sx, args[0], ps, pr, args[3], kind, c, k, rows, n, rFull);
        const local = (part: number) => mulAddPart(sx, args, part);
        if (runSplit(OP_MUL_ADD, args, Math.ceil(units / per), local, n, whole)) return true;
      }
      mulAddRun(sx, x.byteOffset, ps, pr, y.byteOffset, kind, c, k, rows, n, rFull);
      return true;
    }
  }
  const px = 16;
  const ps = px + align16(n * 4);
  const pr = ps + align16(sLen * 4);
  const py = pr + align16((rFull ? n : 1) * 4);
  if (!ensureBytes(ex.memory, py + n * 4)) return false;
  const f32 = new Float32Array(ex.memory.buffer);
  f32.set(x, px >>> 2);
  if (kind === "channel") {
    const row = s.subarray(0, c);
    for (let t = 0; t < k; t++) f32.set(row, (ps >>> 2) + t * c);
  } else f32.set(kind === "same" ? s : s.subarray(0, 1), ps >>> 2);
  f32.set(rFull ? r : r.subarray(0, 1), pr >>> 2);
  mulAddRun(ex, px, ps, pr, py, kind, c, k, rows, n, rFull);
  y.set(f32.subarray(py >>> 2, (py >>> 2) + n));
  return true;
}

/** The team's op code for a part of a split x·s + r (see `team.ts`). */
const OP_MUL_ADD = 19;
/**
 * Elements from which x·s + r over the kernel memory is split across the kernel team, and per
 * part (as a split Add: selfie's 128×128×16 squeeze-and-excitation sum ran alone, 86-96 µs of
 * one core, with the other idle).
 */
const MUL_ADD_SPLIT_MIN = 1 << 16;
const MUL_ADD_PART = 1 << 15;
const MUL_ADD_KINDS = ["same", "one", "channel"] as const;

/**
 * Part `part` of a split x·s + r. Arguments: x, s (tiled k times for a per-channel scale), r and
 * y as byte offsets, the kind (index in MUL_ADD_KINDS), c, k, units (rows of c for a
 * per-channel scale, else elements), whether r is full, units per part (whole tiles of k rows,
 * or a multiple of 4 elements). Each element is computed as unsplit: the same floats.
 */
function mulAddPart(ex: ElementwiseExports, a: ArrayLike<number>, part: number): void {
  const units = a[7], per = a[9];
  const u0 = part * per, u1 = Math.min(units, u0 + per);
  if (u0 >= u1) return;
  const kind = MUL_ADD_KINDS[a[4]], c = a[5], rFull = a[8] === 1;
  const w = kind === "channel" ? c : 1, skip = u0 * w * 4;
  const n = (u1 - u0) * w;
  mulAddRun(
    ex,
    a[0] + skip,
    a[1] + (kind === "same" ? skip : 0),
    a[2] + (rFull ? skip : 0),
    a[3] + skip,
    kind,
    c,
    a[6],
    kind === "channel" ? u1 - u0 : 1,
    n,
    rFull,
  );
}

registerPartRunner(OP_MUL_ADD, (args, part) => {
  const sx = sharedExports();
  if (sx === null) throw new Error("No elementwise kernel for a part");
  mulAddPart(sx, args, part);
});

/** The mulAdd calls of mulAddF32Wasm over placed operands (byte offsets); `s` tiled k times. */
function mulAddRun(
  ex: ElementwiseExports,
  px: number,
  ps: number,
  pr: number,
  py: number,
  kind: "same" | "one" | "channel",
  c: number,
  k: number,
  rows: number,
  n: number,
  rFull: boolean,
): void {
  const r2 = rFull ? 1 : 0;
  if (kind !== "channel") {
    ex.mulAdd(px, ps, pr, py, 1, n, 0, kind === "same" ? 1 : 0, 0, r2);
    return;
  }
  const w = k * c, q = Math.floor(rows / k), rest = rows - q * k;
  ex.mulAdd(px, ps, pr, py, q, w, 0, 1, rFull ? w : 0, r2);
  if (rest > 0) {
    const done = q * w * 4;
    ex.mulAdd(px + done, ps, pr + (rFull ? done : 0), py + done, rest, c, 0, 1, rFull ? c : 0, r2);
  }
}

/**
 * dst[dstOff + r·stride + k] = src[r·len + k] for r < rows, k < len (one input's part of a
 * concatenation along an inner axis), in WebAssembly over the shared kernel memory: both arrays
 * must view it (a plan's intermediates do). Floats are moved as bits.
 *
 * @returns false (nothing written) when either array is elsewhere, the kernels are unavailable
 *   or switched off, or the part is small
 */
export function copyRowsF32(
  src: Float32Array,
  dst: Float32Array,
  dstOff: number,
  rows: number,
  len: number,
  stride: number,
): boolean {
  if (kernel === null || !enabled || rows * len < ELEMENTWISE_MIN_ELEMENTS) return false;
  if (!isKernelView(src) || !isKernelView(dst)) return false;
  if (src.length < rows * len || dstOff + (rows - 1) * stride + len > dst.length) return false;
  const sx = sharedExports();
  if (sx === null) return false;
  sx.copyRows(src.byteOffset, dst.byteOffset + dstOff * 4, rows, len * 4, stride * 4);
  return true;
}
