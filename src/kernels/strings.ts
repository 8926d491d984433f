/**
 * String ops: `StringJoin`, `ReduceJoin`, `ShardedFilename`, `ShardedFilespec`, `AsString` and
 * `StringToNumber`, following the kernels in `tensorflow/core/kernels/` (string_join_op.cc,
 * reduce_join_op.cc, save_op.cc, as_string_op.cc, string_to_number_op.cc). The regex ops are in
 * `regex.ts`.
 *
 * Strings are byte strings (Uint8Array).
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import { shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import { sameShape } from "./broadcast.ts";
import { dataTypeString, FLOATS, INTS } from "./dtypes.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/** TensorFlow's DataTypeString: `float`, `int64`, `string`. */
/** Concatenates byte strings with a separator between them. */
function joinBytes(parts: readonly Uint8Array[], sep: Uint8Array): Uint8Array {
  let n = parts.length > 0 ? sep.length * (parts.length - 1) : 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    if (i > 0 && sep.length > 0) {
      out.set(sep, at);
      at += sep.length;
    }
    out.set(parts[i], at);
    at += parts[i].length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Number parsing (tsl/platform/numbers.cc), shared with the lookup table text file reader.

const SPACE = "[ \\t\\n\\v\\f\\r]*";
const INT_RE = new RegExp(`^${SPACE}(-?)([0-9]+)${SPACE}$`);
const UINT_RE = new RegExp(`^${SPACE}([0-9]+)${SPACE}$`);
const FLOAT_RE = new RegExp(
  `^${SPACE}([+-]?)(?:(inf)|(nan)|0x([0-9a-f]+)|((?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:e[+-]?[0-9]+)?))${SPACE}$`,
  "i",
);

/**
 * safe_strto32 / safe_strtou32: optional surrounding whitespace, an optional "-" (signed only),
 * decimal digits, and a value in range; undefined otherwise.
 */
export function parseInt32Text(text: string, unsigned = false): number | undefined {
  const m = (unsigned ? UINT_RE : INT_RE).exec(text);
  if (m === null) return undefined;
  const digits = unsigned ? m[1] : m[2];
  if (digits.length > 12) return undefined;
  const v = unsigned ? Number(digits) : (m[1] === "-" ? -Number(digits) : Number(digits));
  const [lo, hi] = unsigned ? [0, 4294967295] : [-2147483648, 2147483647];
  return v < lo || v > hi ? undefined : v;
}

/** safe_strto64 / safe_strtou64, as `parseInt32Text` with 64-bit bounds. */
export function parseInt64Text(text: string, unsigned = false): bigint | undefined {
  const m = (unsigned ? UINT_RE : INT_RE).exec(text);
  if (m === null) return undefined;
  const digits = unsigned ? m[1] : m[2];
  if (digits.length > 25) return undefined;
  const v = unsigned ? BigInt(digits) : (m[1] === "-" ? -BigInt(digits) : BigInt(digits));
  if (unsigned) return v > 0xffffffffffffffffn ? undefined : v;
  return v < -0x8000000000000000n || v > 0x7fffffffffffffffn ? undefined : v;
}

/**
 * safe_strtod (double-conversion with leading/trailing spaces, hex integers, case-insensitive
 * "inf" / "nan"): the value as a double, or undefined. Like upstream, inputs of 32 or more
 * characters are rejected. Overflow gives ±Infinity.
 */
export function parseFloatText(text: string): number | undefined {
  if (text.length >= 32) return undefined;
  const m = FLOAT_RE.exec(text);
  if (m === null) return undefined;
  const neg = m[1] === "-";
  let v: number;
  if (m[2] !== undefined) v = Infinity;
  else if (m[3] !== undefined) v = NaN;
  else if (m[4] !== undefined) v = Number(BigInt(`0x${m[4]}`));
  else v = Number(m[5]);
  return neg ? -v : v;
}

// ---------------------------------------------------------------------------------------------
// printf-style formatting for AsString (absl::StrFormat "%<flags>*.*<conv>", which prints what
// C printf prints: exact decimal expansion, round-half-even on exact ties).

interface Spec {
  /** Flags from `fill`: any of "-", "+", " ", "0", "#". */
  readonly left: boolean;
  readonly plus: boolean;
  readonly space: boolean;
  readonly zero: boolean;
  readonly alt: boolean;
  /** Minimum width (0 = none). */
  readonly width: number;
  /** Precision, or -1 for the default. */
  readonly precision: number;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The exact decimal value of a finite positive double: `digits × 10^-scale`, with `digits`
 * free of leading zeros.
 */
function exactDecimal(x: number): { digits: string; scale: number } {
  f64[0] = x;
  const hi = u32[LE ? 1 : 0];
  const lo = u32[LE ? 0 : 1];
  const exp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e2: number;
  if (exp === 0) {
    e2 = -1074;
  } else {
    mant |= 1n << 52n;
    e2 = exp - 1075;
  }
  while (e2 < 0 && (mant & 1n) === 0n && mant !== 0n) {
    mant >>= 1n;
    e2++;
  }
  if (e2 >= 0) return { digits: (mant << BigInt(e2)).toString(), scale: 0 };
  return { digits: (mant * 5n ** BigInt(-e2)).toString(), scale: -e2 };
}

/** True if dropping `rest` after a kept digit `last` rounds up (half to even). */
function roundsUp(last: string, rest: string): boolean {
  if (rest.length === 0) return false;
  const first = rest.charCodeAt(0);
  if (first > 53) return true; // > '5'
  if (first < 53) return false;
  for (let i = 1; i < rest.length; i++) if (rest.charCodeAt(i) !== 48) return true;
  return (last.charCodeAt(0) & 1) === 1;
}

/** %.{p}f of a finite x >= 0. */
function fixed(x: number, p: number, alt: boolean): string {
  let intStr: string;
  let frac: string;
  if (x === 0) {
    intStr = "0";
    frac = "0".repeat(p);
  } else {
    const { digits, scale } = exactDecimal(x);
    let d = digits;
    if (d.length <= scale) d = "0".repeat(scale - d.length + 1) + d;
    intStr = d.slice(0, d.length - scale);
    const fracAll = d.slice(d.length - scale);
    if (fracAll.length <= p) {
      frac = fracAll.padEnd(p, "0");
    } else {
      frac = fracAll.slice(0, p);
      const last = p > 0 ? frac[p - 1] : intStr[intStr.length - 1];
      if (roundsUp(last, fracAll.slice(p))) {
        const s = (BigInt(intStr + frac) + 1n).toString().padStart(p + 1, "0");
        intStr = s.slice(0, s.length - p);
        frac = s.slice(s.length - p);
      }
    }
  }
  return p > 0 || alt ? `${intStr}.${frac}` : intStr;
}

/** Mantissa digits (p + 1 of them) and decimal exponent of a finite x >= 0, rounded. */
function scientificParts(x: number, p: number): { mant: string; exp: number } {
  if (x === 0) return { mant: "0".repeat(p + 1), exp: 0 };
  const { digits, scale } = exactDecimal(x);
  let exp = digits.length - 1 - scale;
  let mant: string;
  if (digits.length <= p + 1) {
    mant = digits.padEnd(p + 1, "0");
  } else {
    mant = digits.slice(0, p + 1);
    if (roundsUp(mant[p], digits.slice(p + 1))) {
      mant = (BigInt(mant) + 1n).toString();
      if (mant.length > p + 1) {
        exp++;
        mant = mant.slice(0, p + 1);
      }
    }
  }
  return { mant, exp };
}

function expText(exp: number): string {
  const a = Math.abs(exp);
  return `e${exp < 0 ? "-" : "+"}${a < 10 ? "0" : ""}${a}`;
}

/** %.{p}e of a finite x >= 0. */
function scientific(x: number, p: number, alt: boolean): string {
  const { mant, exp } = scientificParts(x, p);
  return `${mant[0]}${p > 0 || alt ? "." : ""}${mant.slice(1)}${expText(exp)}`;
}

/** %.{p}g of a finite x >= 0. */
function general(x: number, precision: number, alt: boolean): string {
  const P = precision < 0 ? 6 : precision === 0 ? 1 : precision;
  const { exp } = scientificParts(x, P - 1);
  let s = P > exp && exp >= -4 ? fixed(x, P - 1 - exp, alt) : scientific(x, P - 1, alt);
  if (!alt) {
    // Drop trailing zeros of the fraction, and the point if nothing is left after it.
    const e = s.indexOf("e");
    let body = e < 0 ? s : s.slice(0, e);
    const tail = e < 0 ? "" : s.slice(e);
    if (body.includes(".")) body = body.replace(/0+$/, "").replace(/\.$/, "");
    s = body + tail;
  }
  return s;
}

/** Applies sign, width and padding to the digits of a number. */
function pad(spec: Spec, negative: boolean, body: string, finite: boolean): string {
  const sign = negative ? "-" : spec.plus ? "+" : spec.space ? " " : "";
  const len = sign.length + body.length;
  if (len >= spec.width) return sign + body;
  const fill = spec.width - len;
  if (spec.left) return sign + body + " ".repeat(fill);
  if (spec.zero && finite) return sign + "0".repeat(fill) + body;
  return " ".repeat(fill) + sign + body;
}

/** Formats a float as printf's %f / %e / %g. */
function formatFloat(x: number, conv: "f" | "e" | "g", spec: Spec): string {
  if (Number.isNaN(x)) return pad(spec, false, "nan", false);
  const negative = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  if (a === Infinity) return pad(spec, negative, "inf", false);
  const p = spec.precision < 0 ? 6 : spec.precision;
  const body = conv === "f"
    ? fixed(a, p, spec.alt)
    : conv === "e"
    ? scientific(a, p, spec.alt)
    : general(a, spec.precision, spec.alt);
  return pad(spec, negative, body, true);
}

/** printf's `%.{precision}g` of `x` (glibc's output: `nan`, `-inf`, `1e+21`, exact rounding). */
export function formatG(x: number, precision: number): string {
  return formatFloat(x, "g", {
    left: false,
    plus: false,
    space: false,
    zero: false,
    alt: false,
    width: 0,
    precision,
  });
}

/** Formats an integer as printf's %d / %u. */
function formatInt(v: number | bigint, spec: Spec): string {
  const negative = v < 0;
  const body = (negative ? -v : v).toString();
  return pad(spec, negative, body, true);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * 2 ** -24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

const bf32 = new Uint32Array(1);
const bff = new Float32Array(bf32.buffer);

function bfloat16ToFloat(h: number): number {
  bf32[0] = h << 16;
  return bff[0];
}

/** The types AsString formats as floating point (complex as a pair). */
const FLOATING = [...FLOATS, DataType.DT_COMPLEX64, DataType.DT_COMPLEX128];

/** `AsString`: numbers, bools and strings to strings, as as_string_op.cc formats them. */
function compileAsString(ctx: KernelContext): KernelRun {
  const dtype = ctx.attr.type("T");
  const precision = ctx.attr.int("precision", -1);
  const scientificFlag = ctx.attr.bool("scientific", false);
  const shortest = ctx.attr.bool("shortest", false);
  let width = ctx.attr.int("width", -1);
  const fill = ctx.attr.string("fill", "");
  const floating = FLOATING.includes(dtype);
  if (dtype !== DataType.DT_STRING && !floating) {
    if (scientificFlag || shortest) {
      throw invalid(
        `scientific and shortest format not supported for datatype ${dataTypeString(dtype)}`,
      );
    }
    if (precision >= 0) {
      throw invalid(`precision not supported for datatype ${dataTypeString(dtype)}`);
    }
  }
  if (fill.length > 1) throw invalid("Fill string must be one or fewer characters");
  if (scientificFlag && shortest) {
    throw invalid("Cannot select both scientific and shortest notation");
  }
  if (fill.length === 1 && !" +-0#".includes(fill)) {
    throw invalid(`Fill argument not supported: "${fill}"`);
  }
  if (width <= -1) width = 0;
  if (
    dtype !== DataType.DT_STRING && dtype !== DataType.DT_BOOL && !floating &&
    !INTS.includes(dtype)
  ) {
    throw invalid(`Type not supported: ${dataTypeString(dtype)}`);
  }
  const spec: Spec = {
    left: fill === "-",
    plus: fill === "+",
    space: fill === " ",
    zero: fill === "0",
    alt: fill === "#",
    width,
    precision,
  };
  const conv = shortest ? "g" : scientificFlag ? "e" : "f";
  const plain = width === 0 && fill === "";
  return ([x]) => {
    if (x.dtype !== dtype) {
      throw invalid(`Cannot encode input of type ${dataTypeString(x.dtype)}`);
    }
    const n = x.size;
    const out = new Array<Uint8Array>(n);
    if (dtype === DataType.DT_STRING) {
      if (width === 0) return [x];
      const s = x.data as Uint8Array[];
      for (let i = 0; i < n; i++) {
        const fillLen = width - s[i].length;
        if (fillLen <= 0) {
          out[i] = s[i];
          continue;
        }
        const padded = new Uint8Array(width).fill(0x20);
        padded.set(s[i], spec.left ? 0 : fillLen);
        out[i] = padded;
      }
    } else if (dtype === DataType.DT_BOOL) {
      const d = x.data as Uint8Array;
      const t = encoder.encode("true");
      const f = encoder.encode("false");
      for (let i = 0; i < n; i++) out[i] = d[i] ? t : f;
    } else if (INTS.includes(dtype)) {
      const d = x.data as ArrayLike<number | bigint>;
      for (let i = 0; i < n; i++) {
        out[i] = encoder.encode(plain ? String(d[i]) : formatInt(d[i], spec));
      }
    } else if (dtype === DataType.DT_COMPLEX64 || dtype === DataType.DT_COMPLEX128) {
      const d = x.data as Float32Array;
      for (let i = 0; i < n; i++) {
        out[i] = encoder.encode(
          `(${formatFloat(d[2 * i], conv, spec)},${formatFloat(d[2 * i + 1], conv, spec)})`,
        );
      }
    } else {
      const d = x.data as ArrayLike<number>;
      const read = dtype === DataType.DT_HALF
        ? halfToFloat
        : dtype === DataType.DT_BFLOAT16
        ? bfloat16ToFloat
        : undefined;
      for (let i = 0; i < n; i++) {
        const v = read ? read(d[i]) : d[i];
        out[i] = encoder.encode(formatFloat(v, conv, spec));
      }
    }
    return [new Tensor(DataType.DT_STRING, x.shape, out)];
  };
}

/** `StringToNumber`: parses each string; out_type float (default), double, int32/64, uint32/64. */
function compileStringToNumber(ctx: KernelContext): KernelRun {
  const outType = ctx.attr.typeIn("out_type", [
    DataType.DT_FLOAT,
    DataType.DT_DOUBLE,
    DataType.DT_INT32,
    DataType.DT_INT64,
    DataType.DT_UINT32,
    DataType.DT_UINT64,
  ], DataType.DT_FLOAT);
  const fail = (s: string) => invalid(`StringToNumberOp could not correctly convert string: ${s}`);
  return ([x]) => {
    const s = x.strings;
    const n = s.length;
    switch (outType) {
      case DataType.DT_FLOAT:
      case DataType.DT_DOUBLE: {
        const out = outType === DataType.DT_FLOAT ? new Float32Array(n) : new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const text = decoder.decode(s[i]);
          const v = parseFloatText(text);
          if (v === undefined) throw fail(text);
          out[i] = v;
        }
        return [new Tensor(outType, x.shape, out)];
      }
      case DataType.DT_INT32:
      case DataType.DT_UINT32: {
        const unsigned = outType === DataType.DT_UINT32;
        const out = unsigned ? new Uint32Array(n) : new Int32Array(n);
        for (let i = 0; i < n; i++) {
          const text = decoder.decode(s[i]);
          const v = parseInt32Text(text, unsigned);
          if (v === undefined) throw fail(text);
          out[i] = v;
        }
        return [new Tensor(outType, x.shape, out)];
      }
      default: {
        const unsigned = outType === DataType.DT_UINT64;
        const out = unsigned ? new BigUint64Array(n) : new BigInt64Array(n);
        for (let i = 0; i < n; i++) {
          const text = decoder.decode(s[i]);
          const v = parseInt64Text(text, unsigned);
          if (v === undefined) throw fail(text);
          out[i] = v;
        }
        return [new Tensor(outType, x.shape, out)];
      }
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Joining and file names.

/** `StringJoin`: elementwise join of N inputs; scalars broadcast, other shapes must agree. */
function compileStringJoin(ctx: KernelContext): KernelRun {
  const sep = ctx.attr.bytes("separator", new Uint8Array(0));
  return (inputs) => {
    let shape: readonly number[] = [];
    let shaped = false;
    for (const t of inputs) {
      if (t.dtype !== DataType.DT_STRING) {
        throw invalid(`StringJoin expects string inputs, got ${dataTypeString(t.dtype)}`);
      }
      if (t.rank === 0) continue;
      if (!shaped) {
        shape = t.shape;
        shaped = true;
      } else if (!sameShape(shape, t.shape)) {
        throw invalid(
          `Input shapes do not match: ${shapeString(shape)} vs. ${shapeString(t.shape)}`,
        );
      }
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const data = inputs.map((t) => t.data as Uint8Array[]);
    const scalar = inputs.map((t) => t.rank === 0);
    const out = new Array<Uint8Array>(n);
    const parts = new Array<Uint8Array>(inputs.length);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < inputs.length; j++) parts[j] = data[j][scalar[j] ? 0 : i];
      out[i] = joinBytes(parts, sep);
    }
    return [new Tensor(DataType.DT_STRING, shape, out)];
  };
}

/** `ReduceJoin`: joins strings across the given axes (an empty axis list joins nothing). */
function compileReduceJoin(ctx: KernelContext): KernelRun {
  const keepDims = ctx.attr.bool("keep_dims", false);
  const sep = ctx.attr.bytes("separator", new Uint8Array(0));
  return ([x, axesT]) => {
    const rank = x.rank;
    const reduced = new Array<boolean>(rank).fill(false);
    for (const a of toIntArray(axesT, "reduction_indices")) {
      if (a < -rank || a >= rank) {
        throw new ServingError(
          Code.OUT_OF_RANGE,
          `Invalid reduction dimension ${a} for input with ${rank} dimension(s)`,
        );
      }
      const axis = a < 0 ? a + rank : a;
      if (reduced[axis]) throw invalid(`Duplicate reduction dimension ${a}`);
      reduced[axis] = true;
    }
    const strides = new Array<number>(rank);
    let acc = 1;
    for (let d = rank - 1; d >= 0; d--) {
      strides[d] = acc;
      acc *= x.shape[d];
    }
    const keptDims: number[] = [];
    const reducedDims: number[] = [];
    for (let d = 0; d < rank; d++) (reduced[d] ? reducedDims : keptDims).push(d);
    const outShape = keepDims
      ? x.shape.map((n, d) => (reduced[d] ? 1 : n))
      : keptDims.map((d) => x.shape[d]);
    const offsets = (dims: number[]): number[] => {
      let offs = [0];
      for (const d of dims) {
        const next: number[] = [];
        for (const o of offs) for (let i = 0; i < x.shape[d]; i++) next.push(o + i * strides[d]);
        offs = next;
      }
      return offs;
    };
    const outerOffsets = offsets(keptDims);
    const innerOffsets = offsets(reducedDims);
    const s = x.strings;
    const parts = new Array<Uint8Array>(innerOffsets.length);
    const out = outerOffsets.map((base) => {
      for (let i = 0; i < innerOffsets.length; i++) parts[i] = s[base + innerOffsets[i]];
      return joinBytes(parts, sep);
    });
    return [new Tensor(DataType.DT_STRING, outShape, out)];
  };
}

/** IsLegacyScalar: a scalar or a one-element vector. */
function legacyScalar(t: Tensor, name: string): void {
  if (!(t.rank === 0 || (t.rank === 1 && t.shape[0] === 1))) {
    throw invalid(`${name} must be a scalar, got shape ${shapeString(t.shape)}`);
  }
}

function pad5(n: number): string {
  const s = String(Math.abs(n)).padStart(n < 0 ? 4 : 5, "0");
  return n < 0 ? `-${s}` : s;
}

/** `ShardedFilename`: "%s-%05d-of-%05d". */
function compileShardedFilename(): KernelRun {
  return ([basename, shard, numShards]) => {
    legacyScalar(basename, "basename");
    legacyScalar(shard, "shard");
    legacyScalar(numShards, "num_shards");
    const base = basename.strings[0];
    const suffix = encoder.encode(
      `-${pad5(toIntArray(shard, "shard")[0])}-of-${pad5(toIntArray(numShards, "num_shards")[0])}`,
    );
    return [new Tensor(DataType.DT_STRING, [], [joinBytes([base, suffix], new Uint8Array(0))])];
  };
}

/** `ShardedFilespec`: "%s-?????-of-%05d". */
function compileShardedFilespec(): KernelRun {
  return ([basename, numShards]) => {
    legacyScalar(basename, "basename");
    legacyScalar(numShards, "num_shards");
    const suffix = encoder.encode(`-?????-of-${pad5(toIntArray(numShards, "num_shards")[0])}`);
    return [
      new Tensor(DataType.DT_STRING, [], [
        joinBytes([basename.strings[0], suffix], new Uint8Array(0)),
      ]),
    ];
  };
}

/** String kernels. */
export const stringKernels: Kernel[] = [
  { op: "StringJoin", compile: compileStringJoin },
  { op: "ReduceJoin", compile: compileReduceJoin },
  { op: "ShardedFilename", compile: compileShardedFilename },
  { op: "ShardedFilespec", compile: compileShardedFilespec },
  { op: "AsString", compile: compileAsString },
  { op: "StringToNumber", compile: compileStringToNumber },
];
