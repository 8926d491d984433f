/**
 * The JSON writer TF Serving's REST API uses, reproduced byte for byte: RapidJSON 1.1.0's
 * `PrettyWriter` (4-space indent, `kFormatSingleLineArray` toggled as `util/json_tensor.cc`
 * toggles it) and json_tensor.cc's `WriteDecimal` for floats and doubles.
 *
 * `WriteDecimal` prints a float or double with `absl::StrCat` (six significant digits, as
 * `%g`); when that does not read back as the same value it prints `%.9g` (float) or `%.17g`
 * (double) instead; a result with neither `.` nor `e` gets `.0` appended; non-finite values are
 * the bare tokens `NaN`, `Infinity`, `-Infinity`. `%g` here rounds exact ties to even, as glibc.
 *
 * @module
 */

const decoder = new TextDecoder();
const fatalDecoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** RapidJSON's `WriteString` escapes (`Writer::WriteString`'s table): control bytes, `"`, `\`. */
// deno-lint-ignore no-control-regex -- control characters are exactly what must be escaped
const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;
const ESCAPES: readonly string[] = (() => {
  const t: string[] = [];
  const hex = "0123456789ABCDEF";
  for (let c = 0; c < 0x20; c++) t[c] = `\\u00${hex[c >> 4]}${hex[c & 15]}`;
  t[0x08] = "\\b";
  t[0x09] = "\\t";
  t[0x0a] = "\\n";
  t[0x0c] = "\\f";
  t[0x0d] = "\\r";
  t[0x22] = '\\"';
  t[0x5c] = "\\\\";
  return t;
})();

/** A JS string as RapidJSON writes it (quoted; non-ASCII passes through unescaped). */
export function quote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c < 0x20 || c === 0x22 || c === 0x5c ? ESCAPES[c] : s[i];
  }
  return out + '"';
}

/** Bytes as RapidJSON writes them (quoted, escaped byte by byte, other bytes as they are). */
function quoteBytes(b: Uint8Array): Uint8Array {
  let extra = 2;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c < 0x20 || c === 0x22 || c === 0x5c) extra += ESCAPES[c].length - 1;
  }
  const out = new Uint8Array(b.length + extra);
  let k = 0;
  out[k++] = 0x22;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c < 0x20 || c === 0x22 || c === 0x5c) {
      const e = ESCAPES[c];
      for (let j = 0; j < e.length; j++) out[k++] = e.charCodeAt(j);
    } else {
      out[k++] = c;
    }
  }
  out[k] = 0x22;
  return out;
}

/** UTF-8 length of a string (for the debug writer's byte limit). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      n = encoder.encode(s).length;
      break;
    }
  }
  return n;
}

const INDENT = "    ";

/** Appends after which the writer's text is flushed to bytes (see `PrettyWriter`'s `#flush`). */
const FLUSH_ADDS = 4096;

/**
 * RapidJSON's `PrettyWriter<StringBuffer>` with its default 4-space indent. Methods return
 * false (writing nothing) once a byte limit is reached, as json_tensor.cc's
 * `JsonWriterWithLimit` does for debug strings.
 *
 * @example
 * ```ts
 * const w = new PrettyWriter();
 * w.startObject(); w.key("predictions"); w.startArray();
 * w.singleLineArray = true; w.raw("2.5"); w.singleLineArray = false;
 * w.endArray(); w.endObject();
 * w.result(); // '{\n    "predictions": [2.5\n    ]\n}'
 * ```
 */
export class PrettyWriter {
  /** `kFormatSingleLineArray`: array elements on one line, separated by `, `. */
  singleLineArray = false;
  #out = "";
  #parts: (string | Uint8Array)[] | undefined;
  #inArray: boolean[] = [];
  #count: number[] = [];
  #size = 0;
  /** Strings appended to `#out` since it was last flushed. */
  #adds = 0;
  readonly #limit: number;

  /** @param limit stop writing once this many bytes are written (checked before each call) */
  constructor(limit = Infinity) {
    this.#limit = limit;
  }

  #add(s: string): void {
    this.#out += s;
    if (this.#limit !== Infinity) this.#size += utf8Length(s);
    else if (++this.#adds >= FLUSH_ADDS) this.#flush();
  }

  /**
   * Moves the text so far into `#parts` as UTF-8 bytes. Each `+=` adds a node to a V8 rope, and
   * a rope of millions of small strings costs tens of bytes per node until it is flattened (a
   * 16M-value output held 1.5 GB that way); encoded every few thousand appends, the output
   * costs its own size.
   */
  #flush(): void {
    this.#adds = 0;
    if (this.#out === "") return;
    (this.#parts ??= []).push(encoder.encode(this.#out));
    this.#out = "";
  }

  /** `PrettyPrefix`. */
  #prefix(): void {
    const depth = this.#count.length;
    if (depth === 0) return;
    const top = depth - 1;
    const count = this.#count[top];
    if (this.#inArray[top]) {
      if (count > 0) this.#add(this.singleLineArray ? ", " : ",");
      if (!this.singleLineArray) this.#add("\n" + INDENT.repeat(depth));
    } else {
      if (count > 0) this.#add(count % 2 === 0 ? ",\n" : ": ");
      else this.#add("\n");
      if (count % 2 === 0) this.#add(INDENT.repeat(depth));
    }
    this.#count[top] = count + 1;
  }

  #inLimit(): boolean {
    return this.#size < this.#limit;
  }

  /** `Null()`. */
  null(): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    this.#add("null");
    return true;
  }

  /** `Bool(b)`. */
  bool(b: boolean): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    this.#add(b ? "true" : "false");
    return true;
  }

  /** `Int` / `Uint` / `Int64` / `Uint64`: an integer in decimal. */
  integer(v: number | bigint): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    this.#add(String(v));
    return true;
  }

  /** `Double(d)`: RapidJSON's shortest form; NaN and infinities write nothing and fail. */
  double(d: number): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    if (!Number.isFinite(d)) return false;
    this.#add(rapidjsonDtoa(d));
    return true;
  }

  /** `RawValue(json, kNumberType)`: a number already formatted. */
  raw(json: string): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    this.#add(json);
    return true;
  }

  /** `String(str)`: a JS string (written as UTF-8). */
  string(s: string): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    this.#add(quote(s));
    return true;
  }

  /**
   * `String(str, length)` for bytes: valid UTF-8 is written as text; other bytes are written
   * raw, as RapidJSON does (the result then becomes bytes).
   */
  bytes(b: Uint8Array): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    let text: string | undefined;
    try {
      text = fatalDecoder.decode(b);
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      this.#add(quote(text));
    } else if (this.#limit !== Infinity) {
      // A debug string is only ever text: show what cannot be decoded as U+FFFD, count bytes.
      const raw = quoteBytes(b);
      this.#out += decoder.decode(raw);
      this.#size += raw.length;
    } else {
      this.#parts ??= [];
      this.#parts.push(this.#out, quoteBytes(b));
      this.#out = "";
    }
    return true;
  }

  /** `Key(str)`. */
  key(s: string): boolean {
    return this.string(s);
  }

  /** `StartObject()`. */
  startObject(): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    this.#inArray.push(false);
    this.#count.push(0);
    this.#add("{");
    return true;
  }

  /** `EndObject()`. */
  endObject(): boolean {
    if (!this.#inLimit()) return false;
    this.#inArray.pop();
    const empty = this.#count.pop() === 0;
    if (!empty) this.#add("\n" + INDENT.repeat(this.#count.length));
    this.#add("}");
    return true;
  }

  /** `StartArray()`. */
  startArray(): boolean {
    if (!this.#inLimit()) return false;
    this.#prefix();
    this.#inArray.push(true);
    this.#count.push(0);
    this.#add("[");
    return true;
  }

  /** `EndArray()`. */
  endArray(): boolean {
    if (!this.#inLimit()) return false;
    this.#inArray.pop();
    const empty = this.#count.pop() === 0;
    if (!empty && !this.singleLineArray) this.#add("\n" + INDENT.repeat(this.#count.length));
    this.#add("]");
    return true;
  }

  /**
   * Writes a run of already formatted numbers as elements of the open array: the same output
   * as calling {@link raw} for each, faster.
   */
  rawRun(values: readonly string[]): void {
    const depth = this.#count.length;
    const top = depth - 1;
    if (values.length === 0) return;
    if (!this.singleLineArray || this.#limit !== Infinity || !this.#inArray[top]) {
      for (const v of values) this.raw(v);
      return;
    }
    const joined = values.join(", ");
    this.#out += this.#count[top] > 0 ? ", " + joined : joined;
    this.#count[top] += values.length;
    this.#adds += values.length;
    if (this.#adds >= FLUSH_ADDS) this.#flush();
  }

  /** Bytes written so far (counted only with a limit). */
  get size(): number {
    return this.#size;
  }

  /** The text written (bytes when a value was not valid UTF-8, or when the text is long). */
  result(): string | Uint8Array {
    if (!this.#parts) return this.#out;
    const chunks = [...this.#parts, this.#out].map((p) =>
      typeof p === "string" ? encoder.encode(p) : p
    );
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let k = 0;
    for (const c of chunks) {
      out.set(c, k);
      k += c.length;
    }
    return out;
  }

  /** The text written, as a string (bytes that are not UTF-8 become U+FFFD). */
  text(): string {
    const r = this.result();
    return typeof r === "string" ? r : decoder.decode(r);
  }
}

/**
 * RapidJSON's `internal::dtoa` (`Writer::Double`): the shortest digits, laid out by `Prettify`
 * (`1.0`, `0.001234`, `1e30`, `1.234e33`, `-0.0`). RapidJSON finds its digits with Grisu2,
 * which in rare cases is not the shortest; this uses the shortest round-trip digits.
 */
export function rapidjsonDtoa(value: number): string {
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0";
  const sign = value < 0 ? "-" : "";
  const [mant, expPart] = Math.abs(value).toExponential().split("e");
  const digits = mant.replace(".", "");
  const length = digits.length;
  const k = Number(expPart) - (length - 1); // value = digits × 10^k
  const kk = length + k; // 10^(kk-1) <= v < 10^kk
  let s: string;
  if (k >= 0 && kk <= 21) {
    s = digits + "0".repeat(kk - length) + ".0";
  } else if (kk > 0 && kk <= 21) {
    s = digits.slice(0, kk) + "." + digits.slice(kk);
  } else if (kk > -6 && kk <= 0) {
    s = "0." + "0".repeat(-kk) + digits;
  } else if (length === 1) {
    s = digits + "e" + (kk - 1);
  } else {
    s = digits[0] + "." + digits.slice(1) + "e" + (kk - 1);
  }
  return sign + s;
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/** Whether the decimal `digits`×10^`k` equals the finite positive double `x` exactly. */
function decimalEquals(digits: string, k: number, x: number): boolean {
  f64[0] = x;
  const hi = u32[1];
  const lo = u32[0];
  const biased = (hi >>> 20) & 0x7ff;
  let m = BigInt(hi & 0xfffff) * 4294967296n + BigInt(lo);
  let q: number;
  if (biased === 0) q = -1074;
  else {
    m += 1n << 52n;
    q = biased - 1075;
  }
  // digits·10^k = m·2^q, both sides scaled to integers.
  let lhs = BigInt(digits);
  let rhs = m;
  if (k >= 0) lhs *= 10n ** BigInt(k);
  else rhs *= 10n ** BigInt(-k);
  if (q >= 0) rhs <<= BigInt(q);
  else lhs <<= BigInt(-q);
  return lhs === rhs;
}

/**
 * `printf("%.{p}g", v)` as glibc prints it: `p` significant digits, correctly rounded with
 * exact ties to even; `%e` style when the exponent is below -4 or at least `p`; trailing zeros
 * (and a trailing `.`) removed; a two-digit exponent at least.
 *
 * @param v a finite number
 * @param p significant digits (1…21)
 */
export function formatG(v: number, p: number): string {
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const sign = v < 0 ? "-" : "";
  const a = Math.abs(v);
  let e = a.toExponential(p - 1); // ties round away from zero here
  // An exact tie (the value has exactly p+1 significant digits, the last a 5) goes to even.
  const longer = a.toExponential(p);
  const lm = longer.indexOf("e");
  if (longer.charCodeAt(lm - 1) === 0x35 && Number(longer) === a) {
    const digits = longer.slice(0, lm).replace(".", "");
    const k = Number(longer.slice(lm + 1)) - p;
    if (decimalEquals(digits, k, a)) {
      const kept = digits.slice(0, p);
      if ((kept.charCodeAt(p - 1) & 1) === 0) {
        e = `${kept[0]}${p > 1 ? "." + kept.slice(1) : ""}e${longer.slice(lm + 1)}`;
      }
    }
  }
  const m = e.indexOf("e");
  const x = Number(e.slice(m + 1));
  const digits = e.slice(0, m).replace(".", "");
  let out: string;
  if (x < -4 || x >= p) {
    let frac = digits.slice(1).replace(/0+$/, "");
    frac = frac ? "." + frac : "";
    const ax = Math.abs(x);
    out = `${digits[0]}${frac}e${x < 0 ? "-" : "+"}${ax < 10 ? "0" + ax : ax}`;
  } else if (x >= 0) {
    const int = digits.slice(0, x + 1);
    const frac = digits.slice(x + 1).replace(/0+$/, "");
    out = frac ? `${int}.${frac}` : int;
  } else {
    const frac = ("0".repeat(-x - 1) + digits).replace(/0+$/, "");
    out = `0.${frac}`;
  }
  return sign + out;
}

const POW10 = (() => {
  const t = new Float64Array(23);
  for (let i = 0; i < 23; i++) t[i] = Number(`1e${i}`);
  return t;
})();

/**
 * `%g` text from `p` significant digits `n` (an integer in [10^(p-1), 10^p)) and the decimal
 * exponent `x` of the first digit.
 */
function gText(sign: string, n: number, x: number, p: number): string {
  let ds = String(n);
  let end = ds.length;
  while (end > 1 && ds.charCodeAt(end - 1) === 0x30) end--;
  if (end < ds.length) ds = ds.slice(0, end);
  if (x < -4 || x >= p) {
    const ax = x < 0 ? -x : x;
    const mant = ds.length > 1 ? `${ds[0]}.${ds.slice(1)}` : ds;
    return `${sign}${mant}e${x < 0 ? "-" : "+"}${ax < 10 ? "0" : ""}${ax}`;
  }
  if (x >= 0) {
    return ds.length <= x + 1
      ? sign + ds + "0".repeat(x + 1 - ds.length)
      : `${sign}${ds.slice(0, x + 1)}.${ds.slice(x + 1)}`;
  }
  return `${sign}0.${"0".repeat(-x - 1)}${ds}`;
}

// Scratch results of `round`: the digits, their exponent, the scale, and a near-tie flag.
let rN = 0;
let rX = 0;
let rS = 0;
let rNearTie = false;

/**
 * `a`·10^(p-1-x) rounded to an integer of `p` digits (adjusting the exponent estimate `x`),
 * with exact powers of ten only. Sets rN, rX, rS, rNearTie; false when the scale is not exact.
 * The product is rounded once, so the digits are right unless the value is within 1e-6 of a
 * half unit (flagged: the caller then takes the exact path).
 */
function round(a: number, x: number, p: number): boolean {
  for (let tries = 0; tries < 3; tries++) {
    const s = p - 1 - x;
    if (s > 22 || s < -22) return false;
    const t = s >= 0 ? a * POW10[s] : a / POW10[-s];
    const n = Math.round(t);
    if (n >= POW10[p]) {
      x++;
      continue;
    }
    if (n < POW10[p - 1]) {
      x--;
      continue;
    }
    const f = t - Math.floor(t);
    rN = n;
    rX = x;
    rS = s;
    rNearTie = f > 0.5 - 1e-6 && f < 0.5 + 1e-6;
    return true;
  }
  return false;
}

/**
 * json_tensor.cc's `WriteDecimal`: the text of a float (`isFloat`) or double value.
 *
 * @example
 * ```ts
 * writeDecimal(3, true); // "3.0"
 * writeDecimal(9000000, true); // "9e+06"
 * writeDecimal(0.1, true); // "0.1"
 * writeDecimal(Math.fround(0.1) + 1e-9, true); // "%.9g" when six digits do not round-trip
 * ```
 */
export function writeDecimal(v: number, isFloat: boolean): string {
  if (v !== v) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (v === 0) return Object.is(v, -0) ? "-0.0" : "0.0";
  const sign = v < 0 ? "-" : "";
  const a = v < 0 ? -v : v;
  const x0 = Math.floor(Math.log10(a));
  let s: string | undefined;
  // Six digits (absl::StrCat), kept when they read back as the same value. A value near a
  // half unit of the sixth digit is far from both neighbours, so it never reads back.
  if (round(a, x0, 6)) {
    if (!rNearTie) {
      const c = rS >= 0 ? rN / POW10[rS] : rN * POW10[-rS];
      if ((isFloat ? Math.fround(c) : c) === a) s = gText(sign, rN, rX, 6);
    }
  } else {
    const s6 = formatG(v, 6);
    const back = isFloat ? Math.fround(Number(s6)) : Number(s6);
    if (back === v) s = s6;
  }
  if (s === undefined) {
    // "%.9g" (float) or "%.17g" (double).
    s = isFloat && round(a, x0, 9) && !rNearTie
      ? gText(sign, rN, rX, 9)
      : formatG(v, isFloat ? 9 : 17);
  }
  // ".0" for whole numbers not in scientific notation.
  if (s.indexOf(".") < 0 && s.indexOf("e") < 0) s += ".0";
  return s;
}

/** Writes the ASCII string `s` into `out` at `at`; returns the position after it. */
function asciiInto(out: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}

/** Writes the `len` digits of `n` (n < 10^len ≤ 2^31) at `at`; returns the position after. */
function digitsInto(out: Uint8Array, at: number, n: number, len: number): number {
  const end = at + len;
  for (let k = end - 1; k > at; k--) {
    const q = (n / 10) | 0;
    out[k] = 0x30 + n - q * 10;
    n = q;
  }
  out[at] = 0x30 + n;
  return end;
}

/**
 * {@link gText} and WriteDecimal's `.0` rule as bytes: `p` significant digits `n` (an integer
 * in [10^(p-1), 10^p), p ≤ 9) with the first digit's decimal exponent `x`.
 */
function gInto(out: Uint8Array, at: number, negative: boolean, n: number, x: number, p: number) {
  // Trailing zeros go: `len` digits remain.
  let len = p;
  let q = (n / 10) | 0;
  while (len > 1 && n === q * 10) {
    n = q;
    q = (n / 10) | 0;
    len--;
  }
  if (negative) out[at++] = 0x2d;
  if (x < -4 || x >= p) {
    // d[.ddd]e±XX
    const first = (n / POW10[len - 1]) | 0;
    out[at++] = 0x30 + first;
    if (len > 1) {
      out[at++] = 0x2e;
      at = digitsInto(out, at, n - first * POW10[len - 1], len - 1);
    }
    out[at++] = 0x65;
    let ax = x;
    if (x < 0) {
      out[at++] = 0x2d;
      ax = -x;
    } else {
      out[at++] = 0x2b;
    }
    if (ax >= 100) {
      out[at++] = 0x30 + ((ax / 100) | 0);
      ax %= 100;
    }
    const t = (ax * 205) >> 11; // ax / 10 for ax < 100
    out[at++] = 0x30 + t;
    out[at++] = 0x30 + ax - t * 10;
    return at;
  }
  if (x < 0) {
    // 0.000ddd
    out[at++] = 0x30;
    out[at++] = 0x2e;
    for (let k = -x - 1; k > 0; k--) out[at++] = 0x30;
    return digitsInto(out, at, n, len);
  }
  if (len <= x + 1) {
    // A whole number not in scientific notation: its digits, zeros, and ".0".
    at = digitsInto(out, at, n, len);
    for (let k = len; k <= x; k++) out[at++] = 0x30;
    out[at] = 0x2e;
    out[at + 1] = 0x30;
    return at + 2;
  }
  // ddd.ddd: the fraction's digits first (from the end), then the point, then the rest.
  const fraction = len - x - 1;
  const scale = POW10[fraction];
  const whole = (n / scale) | 0;
  at = digitsInto(out, at, whole, x + 1);
  out[at++] = 0x2e;
  return digitsInto(out, at, n - whole * scale, fraction);
}

/** 10^k for k in [-340, 340] (index k + 340), each the correctly rounded double. */
const POW10_ALL = (() => {
  const t = new Float64Array(681);
  for (let k = -340; k <= 340; k++) t[k + 340] = Number(`1e${k}`);
  return t;
})();

/**
 * `floor(log10(a))` for a finite positive normal double, or one less near a power of ten (the
 * rounding steps correct it): from the binary exponent, without `Math.log10`.
 */
function decimalExponent(a: number): number {
  f64[0] = a;
  const e2 = ((u32[1] >>> 20) & 0x7ff) - 1023;
  // a ∈ [2^e2, 2^(e2+1)): floor(log10 a) is x or x + 1.
  let x = Math.floor(e2 * 0.3010299956639812);
  if (a >= POW10_ALL[x + 341]) x++;
  return x;
}

/** The most bytes {@link writeDecimalInto} writes (`-2.2250738585072014e-308`: 24). */
export const DECIMAL_MAX_BYTES = 32;

/**
 * {@link writeDecimal} written as ASCII bytes into `out` at `at`, without making a string for
 * the common values (six or nine significant digits found with exact powers of ten); the others
 * are written from {@link writeDecimal}'s text. The bytes are always that text's.
 *
 * @param out the buffer, with at least {@link DECIMAL_MAX_BYTES} bytes of room at `at`
 * @param at where to write
 * @param v the value
 * @param isFloat a float (else a double)
 * @returns the position after the written bytes
 */
export function writeDecimalInto(out: Uint8Array, at: number, v: number, isFloat: boolean): number {
  if (v === 0) {
    if (Object.is(v, -0)) out[at++] = 0x2d;
    out[at] = 0x30;
    out[at + 1] = 0x2e;
    out[at + 2] = 0x30;
    return at + 3;
  }
  const negative = v < 0;
  const a = negative ? -v : v;
  // NaN, the infinities and subnormal doubles take the text path.
  if (a < Infinity && a >= 2.2250738585072014e-308) {
    const x0 = decimalExponent(a);
    // The steps of writeDecimal: six digits kept when they read back as the value, else nine
    // (a float); whatever needs formatG goes through writeDecimal itself.
    if (round(a, x0, 6)) {
      if (!rNearTie) {
        const c = rS >= 0 ? rN / POW10[rS] : rN * POW10[-rS];
        if ((isFloat ? Math.fround(c) : c) === a) return gInto(out, at, negative, rN, rX, 6);
      }
      if (isFloat && round(a, x0, 9) && !rNearTie) return gInto(out, at, negative, rN, rX, 9);
    }
  }
  return asciiInto(out, at, writeDecimal(v, isFloat));
}
