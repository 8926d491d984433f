/**
 * TensorFlow's `Tensor::SummarizeValue` (core/framework/tensor.cc): the text Assert puts in its
 * message (the legacy form) and StringFormat/tf.print write (the print_v2 form), so clients
 * matching TF's wording keep working.
 *
 * Elements print as `strings::StrCat` prints them: integers in decimal, bools as `1`/`0`,
 * float32 (and half, bfloat16, widened to float) with `%.6g` unless that does not read back as
 * the same float (then `%.9g`), float64 with `%.15g`, else `%.17g`, NaN as `nan`/`-nan`,
 * strings C-escaped (absl's Utf8SafeCEscape); other types print `?` per element. Rows are
 * bracketed per dimension and a cut-off summary ends with `...`.
 *
 * @module
 */
import { DataType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { bfloat16BitsToNumber, halfBitsToNumber } from "./elementwise.ts";
import { formatG } from "./strings.ts";

const T = DataType;

const signBits = new Float64Array(1);
const signView = new Uint8Array(signBits.buffer);

/** `nan` or `-nan` as glibc prints them (the sign bit of the NaN). */
function nanText(x: number): string {
  signBits[0] = x;
  return signView[7] & 0x80 ? "-nan" : "nan";
}

/** tsl's FloatToBuffer of a float32 value: `%.6g` if it reads back exactly, else `%.9g`. */
export function floatToBuffer(x: number): string {
  if (Number.isNaN(x)) return nanText(x);
  const s = formatG(x, 6);
  // C's strtof reads "inf" back as infinity; parseFloat does not, but %.9g prints it the same.
  return Math.fround(parseFloat(s)) === x ? s : formatG(x, 9);
}

/** Above this a %.15g text may overflow when read back, so TF goes straight to %.17g. */
const DOUBLE_CHECK_MAX = Number.MAX_VALUE / 1.000000000000001;

/** tsl's DoubleToBuffer: `%.15g` if it reads back exactly, else `%.17g`. */
export function doubleToBuffer(x: number): string {
  if (Number.isNaN(x)) return nanText(x);
  if (Math.abs(x) <= DOUBLE_CHECK_MAX) {
    const s = formatG(x, 15);
    if (parseFloat(s) === x) return s;
  }
  return formatG(x, 17);
}

/**
 * absl's Utf8SafeCEscape: `\n \r \t \" \' \\` escaped, other control bytes and DEL as three
 * octal digits, bytes of 0x80 and above kept (so UTF-8 text stays readable).
 */
export function utf8SafeCEscape(bytes: Uint8Array): string {
  const out: number[] = [];
  const push = (s: string) => {
    for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
  };
  for (const c of bytes) {
    switch (c) {
      case 0x0a:
        push("\\n");
        break;
      case 0x0d:
        push("\\r");
        break;
      case 0x09:
        push("\\t");
        break;
      case 0x22:
        push('\\"');
        break;
      case 0x27:
        push("\\'");
        break;
      case 0x5c:
        push("\\\\");
        break;
      default:
        if (c < 0x20 || c === 0x7f) push("\\" + c.toString(8).padStart(3, "0"));
        else out.push(c);
    }
  }
  return new TextDecoder().decode(Uint8Array.from(out));
}

/**
 * The printer of element `i` of `t`, or undefined for the types TF prints as `?`. The print_v2
 * form quotes strings.
 */
function elementPrinter(t: Tensor, printV2 = false): ((i: number) => string) | undefined {
  const d = t.data;
  switch (t.dtype) {
    case T.DT_FLOAT: {
      const f = d as Float32Array;
      return (i) => floatToBuffer(f[i]);
    }
    case T.DT_HALF: {
      const h = d as Uint16Array;
      return (i) => floatToBuffer(halfBitsToNumber(h[i]));
    }
    case T.DT_BFLOAT16: {
      const h = d as Uint16Array;
      return (i) => floatToBuffer(bfloat16BitsToNumber(h[i]));
    }
    case T.DT_DOUBLE: {
      const f = d as Float64Array;
      return (i) => doubleToBuffer(f[i]);
    }
    case T.DT_INT8:
    case T.DT_INT16:
    case T.DT_INT32:
    case T.DT_INT64:
    case T.DT_UINT8:
    case T.DT_UINT16:
    case T.DT_UINT32:
    case T.DT_UINT64: {
      const a = d as ArrayLike<number | bigint>;
      return (i) => String(a[i]);
    }
    case T.DT_BOOL: {
      const b = d as Uint8Array;
      return (i) => (b[i] ? "1" : "0");
    }
    case T.DT_STRING: {
      const s = d as Uint8Array[];
      return printV2 ? (i) => `"${utf8SafeCEscape(s[i])}"` : (i) => utf8SafeCEscape(s[i]);
    }
    default:
      return undefined;
  }
}

/** TF's PrintOneDim: brackets per dimension, `...` where the limit cuts a row. */
function printOneDim(
  dim: number,
  shape: readonly number[],
  limit: number,
  at: { index: number },
  print: (i: number) => string,
  out: string[],
): void {
  if (at.index >= limit) return;
  const count = shape[dim];
  if (dim === shape.length - 1) {
    for (let i = 0; i < count; i++) {
      if (at.index >= limit) {
        if (dim !== 0) out.push("...");
        return;
      }
      if (i > 0) out.push(" ");
      out.push(print(at.index++));
    }
    return;
  }
  for (let i = 0; i < count; i++) {
    const opened = at.index < limit;
    if (opened) out.push("[");
    printOneDim(dim + 1, shape, limit, at, print, out);
    if (at.index < limit || opened) out.push("]");
  }
}

/** TF's PrintDimSpacing: a space inside the last dim, else newlines and indentation. */
function dimSpacing(dim: number, rank: number): string {
  if (dim === rank - 1) return " ";
  return "\n".repeat(rank - dim - 1) + " ".repeat(dim + 1);
}

/** TF's PrintOneDimV2: numpy-like nesting, `ends` elements from each end of every dim. */
function printOneDimV2(
  dim: number,
  shape: readonly number[],
  ends: number,
  index: number,
  print: (i: number) => string,
  out: string[],
): void {
  const rank = shape.length;
  if (dim === rank) {
    out.push(print(index));
    return;
  }
  out.push("[");
  const count = shape[dim];
  const startOfEnd = Math.max(ends, count - ends);
  let per = 1;
  for (let d = dim + 1; d < rank; d++) per *= shape[d];
  for (let i = 0; i < ends && i < count; i++) {
    if (i > 0) out.push(dimSpacing(dim, rank));
    printOneDimV2(dim + 1, shape, ends, index + per * i, print, out);
  }
  if (count > 2 * ends) out.push(dimSpacing(dim, rank), "...");
  for (let i = startOfEnd; i < count; i++) {
    out.push(dimSpacing(dim, rank));
    printOneDimV2(dim + 1, shape, ends, index + per * i, print, out);
  }
  out.push("]");
}

/**
 * `t.SummarizeValue(maxEntries, printV2)` as TensorFlow prints it (a negative `maxEntries`
 * prints every element). The print_v2 form (tf.print, StringFormat) nests like numpy and keeps
 * `maxEntries` elements at each end of every dimension.
 *
 * @example
 * summarizeValue(Tensor.float32([1, 2.5, 3, 4], [2, 2]), 3); // "[1 2.5][3...]..."
 */
export function summarizeValue(t: Tensor, maxEntries: number, printV2 = false): string {
  const n = t.size;
  const max = maxEntries < 0 ? n : maxEntries;
  const limit = Math.min(max, n);
  const print = elementPrinter(t, printV2);
  if (print === undefined) {
    const parts: string[] = [];
    for (let i = 0; i < limit; i++) parts.push("?");
    const body = parts.join(" ") + (max < n ? "..." : "");
    return printV2 && t.rank > 0 ? `[${body}]` : body;
  }
  // TF's bool specialisation returns "" when nothing is printed (it has no data pointer).
  if (t.dtype === T.DT_BOOL && limit === 0) return "";
  const out: string[] = [];
  if (t.rank === 0) {
    for (let i = 0; i < limit; i++) {
      if (i > 0) out.push(" ");
      out.push(print(i));
    }
    if (n > limit) out.push("...");
  } else if (printV2) {
    // The limit becomes the number of elements kept at each end of every dim.
    printOneDimV2(0, t.shape, limit, 0, print, out);
  } else {
    printOneDim(0, t.shape, limit, { index: 0 }, print, out);
    if (n > limit) out.push("...");
  }
  return out.join("");
}
