/**
 * Factories for elementwise kernels — unary ops and broadcasting binary ops — from per-element
 * functions, plus the 16-bit float conversions they and Cast share.
 *
 * Speed: a loop that calls a per-element function is only fast when V8 can inline that function,
 * which it does only while the call site has seen a single target. A loop shared by every op
 * would see dozens of targets and run ~10x slower. So each (op, dtype) pair gets its own copy of
 * the loop source, compiled by {@link specialize}, whose call site only ever sees that op's
 * function; V8 inlines it and the loop runs as if hand-written.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { allocateUninitialized, DataType, dtypeName } from "../tensor/dtype.ts";
import { Tensor, type TensorData } from "../tensor/tensor.ts";
import { broadcastShapes, forEachBlock, sameShape, stridedPlan } from "./broadcast.ts";
import type { Kernel } from "./kernel.ts";
import { binaryF32, ELEMENTWISE_MIN_ELEMENTS, WasmBinary } from "./wasm/elementwise.ts";

// ---------------------------------------------------------------------------------------------
// Code specialisation
// ---------------------------------------------------------------------------------------------

let specializations = 0;

/**
 * Compiles `body` as a function of `params`, calls it with `args` and returns what it returns.
 *
 * Every call compiles a new copy: a counter in a comment makes each source unique, because V8
 * caches compiled code by source text and identical copies would share (and pollute) their
 * type feedback. `body` is always a constant template of this code base, never data.
 *
 * @example
 * ```ts
 * const loop = specialize<(x: Float32Array) => void>(["f"], "return (x) => { ... f(x[i]) ... }", fn);
 * ```
 */
export function specialize<T>(params: readonly string[], body: string, ...args: unknown[]): T {
  const source = `// specialization ${specializations++}\n"use strict";\n${body}`;
  // deno-lint-ignore ban-types
  const factory = new Function(...params, source) as Function;
  return factory(...args) as T;
}

// ---------------------------------------------------------------------------------------------
// Element kinds and errors
// ---------------------------------------------------------------------------------------------

/** How the elements of a dtype are seen by a per-element function. */
export type ElementKind = "float" | "int" | "int64" | "bool" | "string";

/**
 * The element kind of a dtype: float32/float64/half/bfloat16 are "float" (16-bit floats are
 * computed in float32), 8- to 32-bit integers "int", int64/uint64 "int64" (bigints), and so on.
 * Undefined for dtypes no elementwise kernel handles (complex, quantized, resource, variant).
 */
export function elementKind(dtype: DataType): ElementKind | undefined {
  switch (dtype) {
    case DataType.DT_FLOAT:
    case DataType.DT_DOUBLE:
    case DataType.DT_HALF:
    case DataType.DT_BFLOAT16:
      return "float";
    case DataType.DT_INT8:
    case DataType.DT_INT16:
    case DataType.DT_INT32:
    case DataType.DT_UINT8:
    case DataType.DT_UINT16:
    case DataType.DT_UINT32:
      return "int";
    case DataType.DT_INT64:
    case DataType.DT_UINT64:
      return "int64";
    case DataType.DT_BOOL:
      return "bool";
    case DataType.DT_STRING:
      return "string";
    default:
      return undefined;
  }
}

/** True for the 16-bit float types, which are stored as raw bits and computed in float32. */
export function isFloat16(dtype: DataType): boolean {
  return dtype === DataType.DT_HALF || dtype === DataType.DT_BFLOAT16;
}

/** The error for an op asked to run on a dtype it has no kernel for: UNIMPLEMENTED. */
export function unsupportedDtype(op: string, node: string, dtype: DataType): ServingError {
  return new ServingError(
    Code.UNIMPLEMENTED,
    `${op} is not implemented for ${dtypeName(dtype)} (node "${node}")`,
  );
}

/**
 * Allocates output storage: typed for numeric dtypes, a plain array for strings. The loops write
 * every element, so the contents start unspecified (recycled storage, see tensor/arena.ts).
 */
function allocateOut(dtype: DataType, n: number): TensorData {
  return dtype === DataType.DT_STRING ? new Array<Uint8Array>(n) : allocateUninitialized(dtype, n);
}

// ---------------------------------------------------------------------------------------------
// 16-bit floats
// ---------------------------------------------------------------------------------------------

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The value of IEEE half-precision bits. */
export function halfBitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Half-precision bits of float32 bits `x`, rounded to nearest even as Eigen's half() does. */
function float32BitsToHalfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const kept = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    // A carry out of the subnormal range lands on the smallest normal, which is correct.
    return sign | (rem > half || (rem === half && (kept & 1)) ? kept + 1 : kept);
  }
  const bits = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent (up to infinity), which is correct.
  return sign | (rem > 0x1000 || (rem === 0x1000 && (bits & 1)) ? bits + 1 : bits);
}

/**
 * Half-precision bits of a number, rounded to nearest even; with `truncate`, the float32 value's
 * low 13 mantissa bits are cleared first, which is what TensorFlow's Cast does for Truncate=true.
 */
export function numberToHalfBits(v: number, truncate = false): number {
  f32Scratch[0] = v;
  return float32BitsToHalfBits(truncate ? u32Scratch[0] & ~0x1fff : u32Scratch[0]);
}

/** The value of bfloat16 bits. */
export function bfloat16BitsToNumber(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0];
}

/** bfloat16 bits of float32 bits `x`: round to nearest even, NaN kept quiet (as Eigen does). */
function float32BitsToBfloat16Bits(x: number, truncate: boolean): number {
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40;
  if (truncate) return x >>> 16;
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/** bfloat16 bits of a number, rounded to nearest even (truncated with `truncate`). */
export function numberToBfloat16Bits(v: number, truncate = false): number {
  f32Scratch[0] = v;
  return float32BitsToBfloat16Bits(u32Scratch[0], truncate);
}

let halfTable: Float32Array | undefined;

/** Decodes half or bfloat16 storage to float32 values. */
export function decodeFloat16(bits: Uint16Array, dtype: DataType): Float32Array {
  const n = bits.length;
  if (dtype === DataType.DT_BFLOAT16) {
    const u = new Uint32Array(n);
    for (let i = 0; i < n; i++) u[i] = bits[i] << 16;
    return new Float32Array(u.buffer);
  }
  if (halfTable === undefined) {
    // 64K entries once, then decoding is one load per element.
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToNumber(h);
  }
  const table = halfTable;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = table[bits[i]];
  return out;
}

/** Encodes values as half or bfloat16 storage (round to nearest even, or truncate). */
export function encodeFloat16(
  values: ArrayLike<number>,
  dtype: DataType,
  truncate = false,
): Uint16Array {
  const f = values instanceof Float32Array ? values : Float32Array.from(values);
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  const n = f.length;
  const out = new Uint16Array(n);
  if (dtype === DataType.DT_BFLOAT16) {
    for (let i = 0; i < n; i++) out[i] = float32BitsToBfloat16Bits(u[i], truncate);
  } else {
    const mask = truncate ? ~0x1fff : ~0;
    for (let i = 0; i < n; i++) out[i] = float32BitsToHalfBits(u[i] & mask);
  }
  return out;
}

/** A half/bfloat16 tensor as a float32 tensor of the same shape. */
function widen(t: Tensor): Tensor {
  return new Tensor(DataType.DT_FLOAT, t.shape, decodeFloat16(t.data as Uint16Array, t.dtype));
}

/** A float32 result narrowed back to `dtype` (half/bfloat16); other results as they are. */
function narrow(t: Tensor, dtype: DataType): Tensor {
  if (t.dtype !== DataType.DT_FLOAT) return t;
  return new Tensor(dtype, t.shape, encodeFloat16(t.data as Float32Array, dtype));
}

// ---------------------------------------------------------------------------------------------
// Unary
// ---------------------------------------------------------------------------------------------

/** Per-element functions of a unary op, by element kind. */
export interface UnaryFns {
  /** float32 and float64 (half and bfloat16 run through float32). */
  readonly float?: (x: number) => number;
  /** float64 only, when it needs more precision than `float` gives (Erf). */
  readonly double?: (x: number) => number;
  /** 8- to 32-bit integers; results are stored with C++ wrap-around by the typed array. */
  readonly int?: (x: number) => number;
  /** int64 and uint64, as bigints; results are stored with wrap-around. */
  readonly int64?: (x: bigint) => bigint | number;
  /** bool, as 0 and 1. */
  readonly bool?: (x: number) => number;
}

/** Options of {@link unaryKernel}. */
export interface UnaryOptions {
  /** The output dtype when it is not the input's (DT_BOOL for IsNan). */
  readonly out?: DataType;
}

interface UnaryLoops {
  map(x: TensorData, o: TensorData, n: number): void;
}

const UNARY_SOURCE = `return {
  map(x, o, n) { for (let i = 0; i < n; i++) o[i] = f(x[i]); },
};`;

/** A compiled unary op on one dtype: tensor in, tensor out. */
type UnaryImpl = (t: Tensor) => Tensor;

/**
 * Builds the tensor-level function of a unary op from its per-element functions, for the listed
 * dtypes; results are cached per dtype. Exposed for kernels that apply a unary function inside
 * a bigger computation.
 */
export function unaryFunction(
  op: string,
  fn: ((x: number) => number) | UnaryFns,
  dtypes: readonly DataType[],
  options: UnaryOptions = {},
): (t: Tensor, node: string) => Tensor {
  const fns: UnaryFns = typeof fn === "function" ? { float: fn, int: fn, bool: fn } : fn;
  const allowed = checkFns(op, fns, dtypes);
  const cache = new Map<DataType, UnaryImpl>();
  const build = (dtype: DataType): UnaryImpl => {
    if (isFloat16(dtype)) {
      const inner = get(DataType.DT_FLOAT);
      return (t) => narrow(inner(widen(t)), dtype);
    }
    const f = dtype === DataType.DT_DOUBLE && fns.double !== undefined
      ? fns.double
      : fns[elementKind(dtype) as keyof UnaryFns];
    const loops = specialize<UnaryLoops>(["f"], UNARY_SOURCE, f);
    const outType = options.out ?? dtype;
    return (t) => {
      const n = t.size;
      const o = allocateOut(outType, n);
      loops.map(t.data, o, n);
      return new Tensor(outType, t.shape, o);
    };
  };
  const get = (dtype: DataType): UnaryImpl => {
    let impl = cache.get(dtype);
    if (impl === undefined) cache.set(dtype, impl = build(dtype));
    return impl;
  };
  return (t, node) => {
    if (!allowed.has(t.dtype)) throw unsupportedDtype(op, node, t.dtype);
    return get(t.dtype)(t);
  };
}

/**
 * A kernel for a unary elementwise op.
 *
 * @param op the TensorFlow op name
 * @param fn the per-element function: one function for every number-held dtype, or one per kind
 * @param dtypes the dtypes TensorFlow registers the op for on CPU (others fail UNIMPLEMENTED)
 *
 * @example
 * ```ts
 * unaryKernel("Exp", Math.exp, FLOATS);
 * unaryKernel("Neg", { float: (x) => -x, int: (x) => -x, int64: (x) => -x }, NUMBERS);
 * ```
 */
export function unaryKernel(
  op: string,
  fn: ((x: number) => number) | UnaryFns,
  dtypes: readonly DataType[],
  options: UnaryOptions = {},
): Kernel {
  const apply = unaryFunction(op, fn, dtypes, options);
  return {
    op,
    honours: { T: { types: dtypes } },
    compile(ctx) {
      const node = ctx.name;
      if (ctx.attr.has("T")) checkAllowed(op, node, dtypes, ctx.attr.type("T"));
      return (inputs) => [apply(inputs[0], node)];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Binary
// ---------------------------------------------------------------------------------------------

/** Per-element functions of a binary op, by element kind (see {@link UnaryFns}). */
export interface BinaryFns {
  /** float32 and float64 (half and bfloat16 run through float32). */
  readonly float?: (a: number, b: number) => number;
  /** 8- to 32-bit integers; results are stored with wrap-around. */
  readonly int?: (a: number, b: number) => number;
  /** int64 and uint64, as bigints. */
  readonly int64?: (a: bigint, b: bigint) => bigint | number;
  /** bool, as 0 and 1. */
  readonly bool?: (a: number, b: number) => number;
  /** Byte strings; the output holds numbers (bool out) or byte strings (string out). */
  readonly string?: (a: Uint8Array, b: Uint8Array) => number | Uint8Array;
}

/** Options of {@link binaryKernel}. */
export interface BinaryOptions {
  /** The output dtype when it is not the input's (DT_BOOL for comparisons). */
  readonly out?: DataType;
  /**
   * For Equal and NotEqual: when the node's `incompatible_shape_error` attr is false, inputs
   * that do not broadcast give a scalar bool of this value instead of an error.
   */
  readonly incompatibleShapeResult?: boolean;
}

interface BinaryLoops {
  vv(x: TensorData, y: TensorData, o: TensorData, n: number): void;
  vs(x: TensorData, s: unknown, o: TensorData, n: number): void;
  sv(s: unknown, y: TensorData, o: TensorData, n: number): void;
  vr(x: TensorData, y: TensorData, o: TensorData, n: number, m: number): void;
  rv(x: TensorData, y: TensorData, o: TensorData, n: number, m: number): void;
  block(
    x: TensorData,
    xo: number,
    xs0: number,
    xs1: number,
    y: TensorData,
    yo: number,
    ys0: number,
    ys1: number,
    o: TensorData,
    oo: number,
    n0: number,
    n1: number,
  ): void;
}

// vv: same shapes; vs/sv: one side a single element; vr/rv: one side a vector of m along the
// last axis (a bias, a per-channel scale), repeated; block: one 2-D block of a general
// broadcast, with the inner loop split on the common stride patterns (both contiguous, one side
// fixed along the row).
const BINARY_SOURCE = `return {
  vv(x, y, o, n) { for (let i = 0; i < n; i++) o[i] = f(x[i], y[i]); },
  vs(x, s, o, n) { for (let i = 0; i < n; i++) o[i] = f(x[i], s); },
  sv(s, y, o, n) { for (let i = 0; i < n; i++) o[i] = f(s, y[i]); },
  vr(x, y, o, n, m) {
    for (let i = 0, j = 0; i < n; i++) { o[i] = f(x[i], y[j]); if (++j === m) j = 0; }
  },
  rv(x, y, o, n, m) {
    for (let i = 0, j = 0; i < n; i++) { o[i] = f(x[j], y[i]); if (++j === m) j = 0; }
  },
  block(x, xo, xs0, xs1, y, yo, ys0, ys1, o, oo, n0, n1) {
    for (let i = 0; i < n0; i++, xo += xs0, yo += ys0, oo += n1) {
      if (xs1 === 1 && ys1 === 1) {
        for (let j = 0; j < n1; j++) o[oo + j] = f(x[xo + j], y[yo + j]);
      } else if (ys1 === 0) {
        const s = y[yo];
        for (let j = 0, xi = xo; j < n1; j++, xi += xs1) o[oo + j] = f(x[xi], s);
      } else if (xs1 === 0) {
        const s = x[xo];
        for (let j = 0, yi = yo; j < n1; j++, yi += ys1) o[oo + j] = f(s, y[yi]);
      } else {
        for (let j = 0, xi = xo, yi = yo; j < n1; j++, xi += xs1, yi += ys1) {
          o[oo + j] = f(x[xi], y[yi]);
        }
      }
    }
  },
};`;

/**
 * True when `v` broadcasts against `t` as a vector along t's last axis: no more dims than t,
 * its last dim t's last dim (> 1), every other dim 1. The output then has t's shape.
 */
function isLastAxisVector(v: Tensor, t: Tensor): boolean {
  const r = v.rank;
  if (r === 0 || r > t.rank) return false;
  const m = v.shape[r - 1];
  if (m <= 1 || m !== t.shape[t.rank - 1] || v.size !== m) return false;
  return true;
}

/** Applies binary loops to two tensors of one dtype with broadcasting. */
function applyBinary(loops: BinaryLoops, outType: DataType, a: Tensor, b: Tensor): Tensor {
  const x = a.data;
  const y = b.data;
  if (sameShape(a.shape, b.shape)) {
    const n = a.size;
    const o = allocateOut(outType, n);
    loops.vv(x, y, o, n);
    return new Tensor(outType, a.shape, o);
  }
  const na = a.size;
  const nb = b.size;
  // A single element on one side broadcasts to the other's shape when it has no more dims.
  if (nb === 1 && b.rank <= a.rank) {
    const o = allocateOut(outType, na);
    loops.vs(x, y[0], o, na);
    return new Tensor(outType, a.shape, o);
  }
  if (na === 1 && a.rank <= b.rank) {
    const o = allocateOut(outType, nb);
    loops.sv(x[0], y, o, nb);
    return new Tensor(outType, b.shape, o);
  }
  // One side a vector along the other's last axis, with ones (if anything) before it.
  if (isLastAxisVector(b, a)) {
    const o = allocateOut(outType, na);
    loops.vr(x, y, o, na, nb);
    return new Tensor(outType, a.shape, o);
  }
  if (isLastAxisVector(a, b)) {
    const o = allocateOut(outType, nb);
    loops.rv(x, y, o, nb, na);
    return new Tensor(outType, b.shape, o);
  }
  const plan = stridedPlan([a.shape, b.shape], broadcastShapes(a.shape, b.shape));
  const o = allocateOut(outType, plan.size);
  const r = plan.dims.length;
  const n0 = plan.dims[r - 2];
  const n1 = plan.dims[r - 1];
  const [sx, sy] = plan.strides;
  const xs0 = sx[r - 2], xs1 = sx[r - 1], ys0 = sy[r - 2], ys1 = sy[r - 1];
  forEachBlock(plan, (off, oo) => {
    loops.block(x, off[0], xs0, xs1, y, off[1], ys0, ys1, o, oo, n0, n1);
  });
  return new Tensor(outType, plan.shape, o);
}

/**
 * The float32 binary ops the WebAssembly kernel computes (`wasm/elementwise.ts`): one correctly
 * rounded float32 operation each, so the same values as the JavaScript loops (which round a
 * float64 result of float32 operands), but for SquaredDifference, which the kernel computes as
 * TensorFlow's float32 kernel does (the difference rounded to float32 before it is squared).
 */
const WASM_BINARY: Readonly<Record<string, WasmBinary>> = {
  Add: WasmBinary.Add,
  AddV2: WasmBinary.Add,
  Sub: WasmBinary.Sub,
  Mul: WasmBinary.Mul,
  RealDiv: WasmBinary.Div,
  Div: WasmBinary.Div,
  Maximum: WasmBinary.Max,
  Minimum: WasmBinary.Min,
  SquaredDifference: WasmBinary.SquaredDifference,
  Prelu: WasmBinary.Prelu,
};

const ROW = [0, 0, 1];
const FIXED = [0, 0, 0];

/**
 * A float32 binary op in WebAssembly, when the broadcast collapses to at most three dims whose
 * innermost each operand walks contiguously or not at all; undefined (nothing allocated) when
 * it does not, when the output is small, or when the kernel is unavailable.
 */
function applyBinaryWasm(code: WasmBinary, a: Tensor, b: Tensor): Tensor | undefined {
  const na = a.size, nb = b.size;
  let shape: readonly number[];
  let dims: readonly number[], as: readonly number[], bs: readonly number[];
  if (sameShape(a.shape, b.shape)) {
    shape = a.shape;
    dims = [1, 1, na];
    as = ROW;
    bs = ROW;
  } else if (nb === 1 && b.rank <= a.rank) {
    shape = a.shape;
    dims = [1, 1, na];
    as = ROW;
    bs = FIXED;
  } else if (na === 1 && a.rank <= b.rank) {
    shape = b.shape;
    dims = [1, 1, nb];
    as = FIXED;
    bs = ROW;
  } else if (isLastAxisVector(b, a)) {
    shape = a.shape;
    dims = [1, na / nb, nb];
    as = [0, nb, 1];
    bs = ROW;
  } else if (isLastAxisVector(a, b)) {
    shape = b.shape;
    dims = [1, nb / na, na];
    as = ROW;
    bs = [0, na, 1];
  } else {
    const plan = stridedPlan([a.shape, b.shape], broadcastShapes(a.shape, b.shape));
    const r = plan.dims.length;
    if (r > 3 || plan.size < ELEMENTWISE_MIN_ELEMENTS) return undefined;
    const pad = (xs: readonly number[]) => r === 3 ? xs : [0, ...xs];
    shape = plan.shape;
    dims = r === 3 ? plan.dims : [1, ...plan.dims];
    as = pad(plan.strides[0]);
    bs = pad(plan.strides[1]);
    if (as[2] > 1 || bs[2] > 1) return undefined;
  }
  const n = dims[0] * dims[1] * dims[2];
  if (n < ELEMENTWISE_MIN_ELEMENTS) return undefined;
  const o = allocateUninitialized(DataType.DT_FLOAT, n) as Float32Array;
  if (!binaryF32(code, a.data as Float32Array, b.data as Float32Array, o, dims, as, bs)) {
    return undefined;
  }
  return new Tensor(DataType.DT_FLOAT, shape, o);
}

/** A compiled binary op on one dtype. */
type BinaryImpl = (a: Tensor, b: Tensor) => Tensor;

/**
 * Builds the tensor-level function of a broadcasting binary op from its per-element functions,
 * for the listed dtypes; results are cached per dtype. Exposed for kernels that combine two
 * tensors inside a bigger computation (BiasAdd-like ops, fused ops).
 */
export function binaryFunction(
  op: string,
  fn: ((a: number, b: number) => number) | BinaryFns,
  dtypes: readonly DataType[],
  options: BinaryOptions = {},
): (a: Tensor, b: Tensor, node: string) => Tensor {
  const fns: BinaryFns = typeof fn === "function" ? { float: fn, int: fn, bool: fn } : fn;
  const allowed = checkFns(op, fns, dtypes);
  const cache = new Map<DataType, BinaryImpl>();
  const build = (dtype: DataType): BinaryImpl => {
    if (isFloat16(dtype)) {
      const inner = get(DataType.DT_FLOAT);
      return (a, b) => narrow(inner(widen(a), widen(b)), dtype);
    }
    const f = fns[elementKind(dtype) as keyof BinaryFns];
    const loops = specialize<BinaryLoops>(["f"], BINARY_SOURCE, f);
    const outType = options.out ?? dtype;
    const code = dtype === DataType.DT_FLOAT && options.out === undefined
      ? WASM_BINARY[op]
      : undefined;
    if (code !== undefined) {
      return (a, b) => applyBinaryWasm(code, a, b) ?? applyBinary(loops, outType, a, b);
    }
    return (a, b) => applyBinary(loops, outType, a, b);
  };
  const get = (dtype: DataType): BinaryImpl => {
    let impl = cache.get(dtype);
    if (impl === undefined) cache.set(dtype, impl = build(dtype));
    return impl;
  };
  return (a, b, node) => {
    if (a.dtype !== b.dtype) {
      throw invalidArgument(
        `${op} needs two inputs of one type, got ${dtypeName(a.dtype)} and ` +
          `${dtypeName(b.dtype)} (node "${node}")`,
      );
    }
    if (!allowed.has(a.dtype)) throw unsupportedDtype(op, node, a.dtype);
    return get(a.dtype)(a, b);
  };
}

/**
 * A kernel for a binary elementwise op with numpy-style broadcasting.
 *
 * @param op the TensorFlow op name
 * @param fn the per-element function: one for every number-held dtype, or one per kind
 * @param dtypes the dtypes TensorFlow registers the op for on CPU (others fail UNIMPLEMENTED)
 *
 * @example
 * ```ts
 * binaryKernel("Add", { float: (a, b) => a + b, int: (a, b) => a + b, int64: (a, b) => a + b }, NUMBERS);
 * binaryKernel("Less", (a, b) => (a < b ? 1 : 0), REALS, { out: DataType.DT_BOOL });
 * ```
 */
export function binaryKernel(
  op: string,
  fn: ((a: number, b: number) => number) | BinaryFns,
  dtypes: readonly DataType[],
  options: BinaryOptions = {},
): Kernel {
  const apply = binaryFunction(op, fn, dtypes, options);
  const lenient = options.incompatibleShapeResult;
  return {
    op,
    honours: { T: { types: dtypes } },
    compile(ctx) {
      const node = ctx.name;
      if (ctx.attr.has("T")) checkAllowed(op, node, dtypes, ctx.attr.type("T"));
      if (lenient !== undefined && !ctx.attr.bool("incompatible_shape_error", true)) {
        return (inputs) => {
          try {
            broadcastShapes(inputs[0].shape, inputs[1].shape);
          } catch {
            return [Tensor.scalar(DataType.DT_BOOL, lenient)];
          }
          return [apply(inputs[0], inputs[1], node)];
        };
      }
      return (inputs) => [apply(inputs[0], inputs[1], node)];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Shared checks
// ---------------------------------------------------------------------------------------------

/** Fails (a programming error) unless every listed dtype has a function; returns the dtype set. */
function checkFns(
  op: string,
  fns: UnaryFns | BinaryFns,
  dtypes: readonly DataType[],
): Set<DataType> {
  for (const t of dtypes) {
    const kind = elementKind(t);
    if (kind === undefined || (fns as Record<string, unknown>)[kind] === undefined) {
      throw new Error(`${op}: no per-element function for ${dtypeName(t)}`);
    }
  }
  return new Set(dtypes);
}

/** Fails UNIMPLEMENTED at compile time when a node's type attr is not supported. */
export function checkAllowed(
  op: string,
  node: string,
  dtypes: readonly DataType[],
  dtype: DataType,
): void {
  if (!dtypes.includes(dtype)) throw unsupportedDtype(op, node, dtype);
}
