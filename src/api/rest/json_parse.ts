/**
 * The JSON reader TF Serving's REST API uses, reproduced: RapidJSON 1.1.0's iterative parser with
 * the flags `util/json_tensor.cc` passes (`kParseIterativeFlag | kParseNanAndInfFlag |
 * kParseStopWhenDoneFlag`), reading UTF-8 bytes straight from the request body.
 *
 * What that means, and why `JSON.parse` cannot stand in for it:
 * - numbers keep their kind: `1` is an integer (with RapidJSON's `IsInt`/`IsUint`/`IsInt64`/
 *   `IsUint64` by range) and `1.0` or `1e0` is a double, so an int32 input rejects `1.0` and a
 *   tf.Example feature `1` is an int64 list while `1.0` is a float list; int64 values are exact;
 *   doubles are computed as RapidJSON's normal-precision path does (`StrtodNormalPrecision`);
 * - `NaN`, `Inf`, `Infinity` and their negatives are numbers;
 * - the document ends where the root value ends (trailing bytes are ignored);
 * - a UTF-8 byte-order mark is skipped; strings are bytes (invalid UTF-8 is kept as it is);
 * - duplicate object keys are all kept, in order (lookups find the first);
 * - errors carry RapidJSON's English message and byte offset (`GetParseError_En`).
 *
 * The result is a flat "tape" (a {@link JsonDoc}) rather than a tree of JS objects, so a large
 * request of numbers costs a few typed-array writes per value and no allocation per value. The
 * parser never recurses, so nesting depth is bounded by memory only.
 *
 * @module
 */

/** Node kinds (RapidJSON's `Type`). */
export const JsonType = {
  /** `null`. */
  Null: 0,
  /** `false`. */
  False: 1,
  /** `true`. */
  True: 2,
  /** An object. */
  Object: 3,
  /** An array. */
  Array: 4,
  /** A string. */
  String: 5,
  /** A number (see {@link NumberFlag} for its kind). */
  Number: 6,
} as const;

/** Number kinds, as RapidJSON's flags: an integer literal has every flag its value fits. */
export const NumberFlag = {
  /** Fits int32 (`IsInt`). */
  Int: 1,
  /** Fits uint32 (`IsUint`). */
  Uint: 2,
  /** Fits int64 (`IsInt64`). */
  Int64: 4,
  /** Fits uint64 (`IsUint64`). */
  Uint64: 8,
  /** A double (`IsDouble`): a literal with a fraction or exponent, NaN/Infinity, or too big. */
  Double: 16,
} as const;

/** RapidJSON's `ParseErrorCode` messages (`error/en.h`). */
const MESSAGES = {
  documentEmpty: "The document is empty.",
  valueInvalid: "Invalid value.",
  objectMissName: "Missing a name for object member.",
  objectMissColon: "Missing a colon after a name of object member.",
  objectMissCommaOrCurlyBracket: "Missing a comma or '}' after an object member.",
  arrayMissCommaOrSquareBracket: "Missing a comma or ']' after an array element.",
  stringUnicodeEscapeInvalidHex: "Incorrect hex digit after \\u escape in string.",
  stringUnicodeSurrogateInvalid: "The surrogate pair in string is invalid.",
  stringEscapeInvalid: "Invalid escape character in string.",
  stringMissQuotationMark: "Missing a closing quotation mark in string.",
  numberTooBig: "Number too big to be stored in double.",
  numberMissFraction: "Miss fraction part in number.",
  numberMissExponent: "Miss exponent in number.",
} as const;

/** A document that RapidJSON would reject: its message and the byte offset it reports. */
export class JsonSyntaxError extends Error {
  /** RapidJSON's English message, e.g. `Invalid value.`. */
  readonly reason: string;
  /** The byte offset RapidJSON reports (`GetErrorOffset`). */
  readonly offset: number;

  /**
   * @param reason RapidJSON's message
   * @param offset the byte offset
   */
  constructor(reason: string, offset: number) {
    super(`${reason} at offset: ${offset}`);
    this.name = "JsonSyntaxError";
    this.reason = reason;
    this.offset = offset;
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * A parsed document: nodes in document order (a container is followed by its contents), each
 * with a kind and two slots. Node 0 is the root.
 *
 * - container: `a` = index just past its last descendant, `b` = element / member count; an
 *   object's contents alternate key (a string node) and value;
 * - string: `a`,`b` = byte range in {@link bytes}, or `a` = `-1 - k` for decoded bytes `strs[k]`
 *   (a string with escapes);
 * - number: `num` = its double value (`GetDouble`), `flags` its kind; `bigs` holds the exact
 *   value of an integer beyond ±2^53, by node.
 *
 * A node's two slots `a`,`b` (two int32) and its number (a float64) share the same 8 bytes
 * (`ab` and `num` view one buffer): a node is one or the other. With its kind and flags a node
 * costs 10 bytes, so a body of numbers (at least 2 bytes each) costs at most 5 times its size.
 *
 * A document from {@link JsonParser.parse} shares the parser's storage: it is valid until the
 * parser's next `parse`.
 */
export class JsonDoc {
  /** @internal */
  constructor(
    /** The parsed bytes. */
    readonly bytes: Uint8Array,
    /** Node kinds ({@link JsonType}). */
    readonly kind: Uint8Array,
    /** Number kinds ({@link NumberFlag}). */
    readonly flags: Uint8Array,
    /** Number values (sharing their bytes with `ab`). */
    readonly num: Float64Array,
    /** The two slots of node `i`: `ab[2i]` and `ab[2i + 1]`. */
    readonly ab: Int32Array,
    /** Exact big integers, by node. */
    readonly bigs: ReadonlyMap<number, bigint>,
    /** Decoded strings (those with escapes). */
    readonly strs: readonly Uint8Array[],
    /** Number of nodes. */
    readonly count: number,
  ) {}

  /** The node after `i` and all its descendants (its next sibling, if any). */
  next(i: number): number {
    const k = this.kind[i];
    return k === JsonType.Object || k === JsonType.Array ? this.ab[2 * i] : i + 1;
  }

  /** Element count of an array, member count of an object. */
  size(i: number): number {
    return this.ab[2 * i + 1];
  }

  /** Whether node `i` is an object. */
  isObject(i: number): boolean {
    return this.kind[i] === JsonType.Object;
  }

  /** Whether node `i` is an array. */
  isArray(i: number): boolean {
    return this.kind[i] === JsonType.Array;
  }

  /** Whether node `i` is a string. */
  isString(i: number): boolean {
    return this.kind[i] === JsonType.String;
  }

  /** Whether node `i` is a number. */
  isNumber(i: number): boolean {
    return this.kind[i] === JsonType.Number;
  }

  /** Whether node `i` is `true` or `false`. */
  isBool(i: number): boolean {
    const k = this.kind[i];
    return k === JsonType.True || k === JsonType.False;
  }

  /** Whether number node `i` has the flag (`IsInt`, `IsDouble`, …). */
  is(i: number, flag: number): boolean {
    return this.kind[i] === JsonType.Number && (this.flags[i] & flag) !== 0;
  }

  /** The bytes of string node `i` (a view; do not modify). */
  stringBytes(i: number): Uint8Array {
    const a = this.ab[2 * i];
    return a >= 0 ? this.bytes.subarray(a, this.ab[2 * i + 1]) : this.strs[-1 - a];
  }

  /** String node `i` decoded as UTF-8 (invalid sequences become U+FFFD). */
  string(i: number): string {
    return decoder.decode(this.stringBytes(i));
  }

  /** The exact value of an integer node: a bigint beyond ±2^53, else a number. */
  integer(i: number): number | bigint {
    const v = this.num[i];
    return Number.isSafeInteger(v) ? v : this.bigs.get(i) ?? v;
  }

  /** The exact value of an integer node as a bigint. */
  bigint(i: number): bigint {
    const v = this.num[i];
    return Number.isSafeInteger(v) ? BigInt(v) : this.bigs.get(i) ?? BigInt(v);
  }

  /** The value nodes of array `i`, in order. */
  elements(i: number): number[] {
    const out: number[] = new Array(this.size(i));
    let c = i + 1;
    for (let k = 0; k < out.length; k++) {
      out[k] = c;
      c = this.next(c);
    }
    return out;
  }

  /** The `[key node, value node]` pairs of object `i`, in order (duplicates kept). */
  members(i: number): [number, number][] {
    const out: [number, number][] = new Array(this.size(i));
    let c = i + 1;
    for (let k = 0; k < out.length; k++) {
      out[k] = [c, c + 1];
      c = this.next(c + 1);
    }
    return out;
  }

  /** The value of the first member of object `i` named `name` (`FindMember`), or -1. */
  findMember(i: number, name: string): number {
    // ASCII names (all the API's keys) compare without encoding.
    const want = isAscii(name) ? undefined : encoder.encode(name);
    let c = i + 1;
    for (let k = this.size(i); k > 0; k--) {
      const key = this.stringBytes(c);
      if (want ? bytesEqual(key, want) : asciiEqual(key, name)) return c + 1;
      c = this.next(c + 1);
    }
    return -1;
  }
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function asciiEqual(x: Uint8Array, s: string): boolean {
  if (x.length !== s.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== s.charCodeAt(i)) return false;
  return true;
}

function bytesEqual(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

// Iterative parser states and tokens, numbered as in RapidJSON's reader.h.
const S_START = 0;
const S_FINISH = 1;
const S_ERROR = 2;
const S_OBJECT_INITIAL = 3;
const S_MEMBER_KEY = 4;
const S_KEY_VALUE_DELIMITER = 5;
const S_MEMBER_VALUE = 6;
const S_MEMBER_DELIMITER = 7;
const S_OBJECT_FINISH = 8;
const S_ARRAY_INITIAL = 9;
const S_ELEMENT = 10;
const S_ELEMENT_DELIMITER = 11;
const S_ARRAY_FINISH = 12;
const S_VALUE = 13;

const T_LEFT_BRACKET = 0;
const T_RIGHT_BRACKET = 1;
const T_LEFT_CURLY = 2;
const T_RIGHT_CURLY = 3;
const T_COMMA = 4;
const T_COLON = 5;
const T_STRING = 6;
const T_FALSE = 7;
const T_TRUE = 8;
const T_NULL = 9;
const T_NUMBER = 10;
const TOKENS = 11;

/** Byte → token (`Tokenize`): anything unlisted starts a number. */
const TOKEN = (() => {
  const t = new Uint8Array(256).fill(T_NUMBER);
  t[0x5b] = T_LEFT_BRACKET;
  t[0x5d] = T_RIGHT_BRACKET;
  t[0x7b] = T_LEFT_CURLY;
  t[0x7d] = T_RIGHT_CURLY;
  t[0x2c] = T_COMMA;
  t[0x3a] = T_COLON;
  t[0x22] = T_STRING;
  t[0x66] = T_FALSE;
  t[0x74] = T_TRUE;
  t[0x6e] = T_NULL;
  return t;
})();

/** State × token → next state (`Predict`'s table G). */
const G = (() => {
  const E = S_ERROR;
  const row = (...s: number[]) => s;
  const sink = row(E, E, E, E, E, E, E, E, E, E, E);
  const rows = [
    // Start
    row(S_ARRAY_INITIAL, E, S_OBJECT_INITIAL, E, E, E, S_VALUE, S_VALUE, S_VALUE, S_VALUE, S_VALUE),
    sink, // Finish
    sink, // Error
    // ObjectInitial
    row(E, E, E, S_OBJECT_FINISH, E, E, S_MEMBER_KEY, E, E, E, E),
    // MemberKey
    row(E, E, E, E, E, S_KEY_VALUE_DELIMITER, E, E, E, E, E),
    // KeyValueDelimiter
    row(
      S_ARRAY_INITIAL,
      E,
      S_OBJECT_INITIAL,
      E,
      E,
      E,
      S_MEMBER_VALUE,
      S_MEMBER_VALUE,
      S_MEMBER_VALUE,
      S_MEMBER_VALUE,
      S_MEMBER_VALUE,
    ),
    // MemberValue
    row(E, E, E, S_OBJECT_FINISH, S_MEMBER_DELIMITER, E, E, E, E, E, E),
    // MemberDelimiter
    row(E, E, E, S_OBJECT_FINISH, E, E, S_MEMBER_KEY, E, E, E, E),
    sink, // ObjectFinish
    // ArrayInitial
    row(
      S_ARRAY_INITIAL,
      S_ARRAY_FINISH,
      S_OBJECT_INITIAL,
      E,
      E,
      E,
      S_ELEMENT,
      S_ELEMENT,
      S_ELEMENT,
      S_ELEMENT,
      S_ELEMENT,
    ),
    // Element
    row(E, S_ARRAY_FINISH, E, E, S_ELEMENT_DELIMITER, E, E, E, E, E, E),
    // ElementDelimiter
    row(
      S_ARRAY_INITIAL,
      S_ARRAY_FINISH,
      S_OBJECT_INITIAL,
      E,
      E,
      E,
      S_ELEMENT,
      S_ELEMENT,
      S_ELEMENT,
      S_ELEMENT,
      S_ELEMENT,
    ),
    sink, // ArrayFinish
    sink, // Value
  ];
  return Int8Array.from(rows.flat());
})();

/** RapidJSON's `Pow10` table: 1e0 … 1e308, each the correctly rounded double. */
const POW10 = (() => {
  const t = new Float64Array(309);
  for (let i = 0; i < 309; i++) t[i] = Number(`1e${i}`);
  return t;
})();

/** `internal::FastPath`. */
function fastPath(significand: number, exp: number): number {
  if (exp < -308) return 0;
  if (exp >= 0) return significand * POW10[exp];
  return significand / POW10[-exp];
}

/** `internal::StrtodNormalPrecision`. */
function strtodNormalPrecision(d: number, p: number): number {
  if (p < -308) return fastPath(fastPath(d, -308), p + 308);
  return fastPath(d, p);
}

const TWO32 = 4294967296;
const TWO53_M1 = 9007199254740991;
/** Largest i64 for which `i64 * 10 + 9` stays below 2^53 (exact in a double). */
const SAFE_ACC = 900719925474098;

/** What {@link scanSimpleNumber} read (one record, reused: the scan is on every number). */
export const simpleNumber: { value: number; fraction: boolean } = { value: 0, fraction: false };

/**
 * The common numbers, quickly: `-?(0|[1-9]\d{0,8})(\.\d+)?` whose digits stay an exact integer
 * below 2^53 (no exponent). For these, RapidJSON's algorithm reduces to exactly this arithmetic;
 * anything else returns -1 (nothing consumed) and goes to the full number parser. Shared by the
 * parser and the `:predict` body scan (predict_json_fast.ts), so both read the same doubles.
 *
 * @param b the bytes
 * @param p where the number starts
 * @returns the position after the number, or -1; the value is in {@link simpleNumber}
 */
export function scanSimpleNumber(b: Uint8Array, p: number): number {
  const n = b.length;
  let c = b[p];
  const minus = c === 0x2d;
  if (minus) c = ++p < n ? b[p] : 0;
  let i: number;
  if (c === 0x30) {
    i = 0;
    c = ++p < n ? b[p] : 0;
  } else if (c >= 0x31 && c <= 0x39) {
    i = c - 0x30;
    c = ++p < n ? b[p] : 0;
    let digits = 1;
    while (c >= 0x30 && c <= 0x39) {
      if (++digits > 9) return -1;
      i = i * 10 + (c - 0x30);
      c = ++p < n ? b[p] : 0;
    }
  } else {
    return -1;
  }
  if (c === 0x2e) {
    c = ++p < n ? b[p] : 0;
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    let acc = i;
    let expFrac = 0;
    while (c >= 0x30 && c <= 0x39) {
      if (acc > SAFE_ACC) return -1;
      acc = acc * 10 + (c - 0x30);
      expFrac--;
      c = ++p < n ? b[p] : 0;
    }
    if (c === 0x65 || c === 0x45) return -1;
    const d = strtodNormalPrecision(acc, expFrac);
    simpleNumber.value = minus ? -d : d;
    simpleNumber.fraction = true;
    return p;
  }
  if (c === 0x65 || c === 0x45) return -1;
  simpleNumber.value = minus && i !== 0 ? -i : i;
  simpleNumber.fraction = false;
  return p;
}
const BIG_TWO53_M1 = 9007199254740991n;

/** Flags of an integer literal's value, as RapidJSON's number constructors set them. */
function intFlags(v: number | bigint): number {
  let f = 0;
  if (v >= -2147483648 && v <= 2147483647) f |= NumberFlag.Int;
  if (v >= 0 && v <= 4294967295) f |= NumberFlag.Uint;
  if (v >= -9223372036854775808n && v <= 9223372036854775807n) f |= NumberFlag.Int64;
  if (v >= 0 && v <= 18446744073709551615n) f |= NumberFlag.Uint64;
  return f;
}

const INITIAL_NODES = 64;
/** Node storage a parser keeps between documents (10 bytes a node: 10 MiB). */
const RETAIN_NODES = 1 << 20;

/**
 * An upper bound of the nodes of a document, from one pass over its bytes: every node but the
 * root comes right after a `[`, `{`, `,` or `:` outside strings (its container's opening, or a
 * delimiter), so those plus one are enough.
 */
function nodeBound(b: Uint8Array): number {
  let n = 1;
  let inString = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x2c || c === 0x3a || c === 0x5b || c === 0x7b) n++;
  }
  return n;
}

/**
 * A reusable parser. Parsing is synchronous; each {@link parse} reuses the storage of the last
 * document (grown as needed), so a server can keep one parser per event loop.
 *
 * @example
 * ```ts
 * const parser = new JsonParser();
 * const doc = parser.parse(new TextEncoder().encode('{"instances": [1, 2.5, NaN]}'));
 * doc.isObject(0); // true
 * ```
 */
export class JsonParser {
  #kind = new Uint8Array(INITIAL_NODES);
  #flags = new Uint8Array(INITIAL_NODES);
  #num = new Float64Array(INITIAL_NODES);
  #ab = new Int32Array(this.#num.buffer);
  #n = 0;
  #bigs = new Map<number, bigint>();
  #strs: Uint8Array[] = [];
  #bytes: Uint8Array = new Uint8Array(0);
  #pos = 0;
  // Open containers: the state to return to, the node, the count of delimiters seen.
  #stackRet = new Int8Array(64);
  #stackNode = new Int32Array(64);
  #stackCount = new Int32Array(64);
  #depth = 0;
  // Scratch for strings with escapes.
  #scratch = new Uint8Array(256);

  /** How many nodes the parser's storage holds now (it grows with the largest document). */
  get capacity(): number {
    return this.#kind.length;
  }

  /**
   * Parses a document.
   *
   * @param bytes UTF-8 JSON; must not be modified while the result is in use
   * @returns the document (valid until the next `parse` on this parser)
   * @throws JsonSyntaxError where RapidJSON reports a parse error
   */
  parse(bytes: Uint8Array): JsonDoc {
    this.#bytes = bytes;
    this.#n = 0;
    this.#bigs = new Map();
    this.#strs = [];
    this.#depth = 0;
    // One exact allocation instead of doubling (which peaks at three times the final size).
    this.#ensure(nodeBound(bytes));
    // EncodedInputStream<UTF8<>, MemoryStream> skips each byte of a UTF-8 BOM independently.
    let pos = 0;
    if (bytes[pos] === 0xef) pos++;
    if (bytes[pos] === 0xbb) pos++;
    if (bytes[pos] === 0xbf) pos++;
    this.#pos = pos;
    try {
      this.#run();
      return new JsonDoc(
        bytes,
        this.#kind,
        this.#flags,
        this.#num,
        this.#ab,
        this.#bigs,
        this.#strs,
        this.#n,
      );
    } finally {
      // A large document keeps its storage (it is the document's now); the parser goes back to
      // a small one, so one big request does not pin hundreds of MB for the process's life.
      if (this.#kind.length > RETAIN_NODES) this.#release();
    }
  }

  #release(): void {
    this.#kind = new Uint8Array(INITIAL_NODES);
    this.#flags = new Uint8Array(INITIAL_NODES);
    this.#num = new Float64Array(INITIAL_NODES);
    this.#ab = new Int32Array(this.#num.buffer);
    this.#stackRet = new Int8Array(64);
    this.#stackNode = new Int32Array(64);
    this.#stackCount = new Int32Array(64);
    this.#bigs = new Map();
    this.#strs = [];
    this.#bytes = new Uint8Array(0);
  }

  #ensure(n: number): void {
    if (n <= this.#kind.length) return;
    // Doubling for one more node; exactly `n` when asked for more (the first, bounded call).
    const cap = Math.max(n, this.#kind.length * 2);
    const grow = <T extends Uint8Array | Float64Array | Int32Array>(
      old: T,
      make: (n: number) => T,
    ) => {
      const x = make(cap);
      x.set(old.subarray(0, this.#n) as never);
      return x;
    };
    this.#kind = grow(this.#kind, (n) => new Uint8Array(n));
    this.#flags = grow(this.#flags, (n) => new Uint8Array(n));
    this.#num = grow(this.#num, (n) => new Float64Array(n));
    this.#ab = new Int32Array(this.#num.buffer);
  }

  #node(kind: number): number {
    const i = this.#n;
    if (i === this.#kind.length) this.#ensure(i + 1);
    this.#kind[i] = kind;
    this.#n = i + 1;
    return i;
  }

  #peek(): number {
    const p = this.#pos;
    return p < this.#bytes.length ? this.#bytes[p] : 0;
  }

  #skipWhitespace(): void {
    const b = this.#bytes;
    let p = this.#pos;
    const n = b.length;
    while (p < n) {
      const c = b[p];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    this.#pos = p;
  }

  /** `IterativeParse` with kParseStopWhenDoneFlag. */
  #run(): void {
    let state = S_START;
    this.#skipWhitespace();
    while (this.#peek() !== 0) {
      const token = TOKEN[this.#bytes[this.#pos]];
      const dst = G[state * TOKENS + token];
      if (dst === S_ERROR) this.#handleError(state);
      state = this.#transit(state, dst);
      if (state === S_FINISH) return;
      if (state === S_ELEMENT) this.#moreNumbers();
      this.#skipWhitespace();
    }
    this.#handleError(state);
  }

  #transit(src: number, dst: number): number {
    switch (dst) {
      case S_OBJECT_INITIAL:
      case S_ARRAY_INITIAL: {
        let ret = src;
        if (src === S_ARRAY_INITIAL || src === S_ELEMENT_DELIMITER) ret = S_ELEMENT;
        else if (src === S_KEY_VALUE_DELIMITER) ret = S_MEMBER_VALUE;
        const node = this.#node(dst === S_OBJECT_INITIAL ? JsonType.Object : JsonType.Array);
        this.#push(ret, node);
        this.#pos++;
        return dst;
      }
      case S_MEMBER_KEY:
        this.#parseString();
        return dst;
      case S_KEY_VALUE_DELIMITER:
        this.#pos++;
        return dst;
      case S_MEMBER_VALUE:
      case S_ELEMENT:
        this.#parseValue();
        return dst;
      case S_MEMBER_DELIMITER:
      case S_ELEMENT_DELIMITER:
        this.#pos++;
        this.#stackCount[this.#depth - 1]++;
        return dst;
      case S_OBJECT_FINISH:
      case S_ARRAY_FINISH: {
        // Trailing commas are not allowed (kParseTrailingCommasFlag is off).
        if (src === S_MEMBER_DELIMITER) {
          throw new JsonSyntaxError(MESSAGES.objectMissName, this.#pos);
        }
        if (src === S_ELEMENT_DELIMITER) {
          throw new JsonSyntaxError(MESSAGES.valueInvalid, this.#pos);
        }
        const d = --this.#depth;
        let count = this.#stackCount[d];
        if (src === S_MEMBER_VALUE || src === S_ELEMENT) count++;
        const node = this.#stackNode[d];
        this.#ab[2 * node] = this.#n;
        this.#ab[2 * node + 1] = count;
        this.#pos++;
        const ret = this.#stackRet[d];
        return ret === S_START ? S_FINISH : ret;
      }
      default:
        // S_VALUE: a scalar root.
        this.#parseValue();
        return S_FINISH;
    }
  }

  /**
   * Fast path inside an array: while the next tokens are `,` and a number, take both as the
   * generic loop would (ElementDelimiter, then Element). Stops before anything else.
   */
  #moreNumbers(): void {
    const b = this.#bytes;
    const n = b.length;
    const top = this.#depth - 1;
    // The hot loop of a large request: state in locals, written back when leaving.
    let kind = this.#kind;
    let flags = this.#flags;
    let num = this.#num;
    let node = this.#n;
    let count = 0;
    let p = this.#pos;
    for (;;) {
      let c = p < n ? b[p] : 0;
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = ++p < n ? b[p] : 0;
      if (c !== 0x2c) break;
      let q = p + 1;
      c = q < n ? b[q] : 0;
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = ++q < n ? b[q] : 0;
      if (!((c >= 0x30 && c <= 0x39) || c === 0x2d)) break;
      count++;
      if (node === kind.length) {
        this.#n = node;
        this.#ensure(node + 1);
        kind = this.#kind;
        flags = this.#flags;
        num = this.#num;
      }
      // Inline #simpleNumber (same rules).
      let r = q;
      const minus = c === 0x2d;
      if (minus) c = ++r < n ? b[r] : 0;
      let i = -1;
      let significandDigit = 0;
      if (c === 0x30) {
        i = 0;
        c = ++r < n ? b[r] : 0;
      } else if (c >= 0x31 && c <= 0x39) {
        i = c - 0x30;
        c = ++r < n ? b[r] : 0;
        while (c >= 0x30 && c <= 0x39) {
          if (++significandDigit > 8) {
            i = -1;
            break;
          }
          i = i * 10 + (c - 0x30);
          c = ++r < n ? b[r] : 0;
        }
      }
      if (i >= 0) {
        if (c === 0x2e) {
          c = ++r < n ? b[r] : 0;
          if (c >= 0x30 && c <= 0x39) {
            // #parseNumber's fraction steps, for an int part below 2^32.
            let acc = i;
            let expFrac = 0;
            while (c >= 0x30 && c <= 0x39) {
              if (acc > TWO53_M1) break;
              if (acc <= SAFE_ACC) {
                acc = acc * 10 + (c - 0x30);
              } else {
                const hi = Math.floor(acc / TWO32);
                acc = hi * 10 * TWO32 + ((acc - hi * TWO32) * 10 + (c - 0x30));
              }
              expFrac--;
              if (acc !== 0) significandDigit++;
              c = ++r < n ? b[r] : 0;
            }
            let d = acc;
            while (c >= 0x30 && c <= 0x39) {
              if (significandDigit < 17) {
                d = d * 10 + (c - 0x30);
                expFrac--;
                if (d > 0) significandDigit++;
              }
              c = ++r < n ? b[r] : 0;
            }
            if (c !== 0x65 && c !== 0x45) {
              d = expFrac >= -308 ? d / POW10[-expFrac] : strtodNormalPrecision(d, expFrac);
              kind[node] = JsonType.Number;
              flags[node] = NumberFlag.Double;
              num[node] = minus ? -d : d;
              node++;
              p = r;
              continue;
            }
          }
        } else if (c !== 0x65 && c !== 0x45) {
          kind[node] = JsonType.Number;
          if (minus && i !== 0) {
            num[node] = -i;
            flags[node] = INT32_NEG;
          } else {
            num[node] = i;
            flags[node] = ALL_INT;
          }
          node++;
          p = r;
          continue;
        }
      }
      // Not a simple number: the general parser, from the number's start.
      this.#n = node;
      this.#pos = q;
      this.#parseNumber();
      node = this.#n;
      p = this.#pos;
      kind = this.#kind;
      flags = this.#flags;
      num = this.#num;
    }
    this.#n = node;
    this.#pos = p;
    this.#stackCount[top] += count;
  }

  /**
   * The common numbers, quickly: `-?(0|[1-9]\d{0,8})(\.\d+)?` whose digits stay an exact
   * integer below 2^53 (no exponent). For these, RapidJSON's algorithm reduces to exactly this
   * arithmetic; anything else returns -1 (nothing consumed) for {@link #parseNumber}.
   *
   * @returns the position after the number, or -1
   */
  #simpleNumber(p: number): number {
    p = scanSimpleNumber(this.#bytes, p);
    if (p < 0) return -1;
    const node = this.#n;
    if (node === this.#kind.length) this.#ensure(node + 1);
    this.#n = node + 1;
    this.#kind[node] = JsonType.Number;
    const v = simpleNumber.value;
    this.#num[node] = v;
    // An integer's flags as RapidJSON sets them for -?[0-9]{1,9}: "-0" is the integer 0.
    this.#flags[node] = simpleNumber.fraction ? NumberFlag.Double : v < 0 ? INT32_NEG : ALL_INT;
    return p;
  }

  #push(ret: number, node: number): void {
    const d = this.#depth;
    if (d === this.#stackRet.length) {
      const n = d * 2;
      const r = new Int8Array(n);
      r.set(this.#stackRet);
      this.#stackRet = r;
      const s = new Int32Array(n);
      s.set(this.#stackNode);
      this.#stackNode = s;
      const c = new Int32Array(n);
      c.set(this.#stackCount);
      this.#stackCount = c;
    }
    this.#stackRet[d] = ret;
    this.#stackNode[d] = node;
    this.#stackCount[d] = 0;
    this.#depth = d + 1;
  }

  /** `HandleError`: the error for a token the state does not allow (or the end). */
  #handleError(src: number): never {
    const at = this.#pos;
    switch (src) {
      case S_START:
        throw new JsonSyntaxError(MESSAGES.documentEmpty, at);
      case S_OBJECT_INITIAL:
      case S_MEMBER_DELIMITER:
        throw new JsonSyntaxError(MESSAGES.objectMissName, at);
      case S_MEMBER_KEY:
        throw new JsonSyntaxError(MESSAGES.objectMissColon, at);
      case S_MEMBER_VALUE:
        throw new JsonSyntaxError(MESSAGES.objectMissCommaOrCurlyBracket, at);
      case S_KEY_VALUE_DELIMITER:
      case S_ARRAY_INITIAL:
      case S_ELEMENT_DELIMITER:
        throw new JsonSyntaxError(MESSAGES.valueInvalid, at);
      default:
        throw new JsonSyntaxError(MESSAGES.arrayMissCommaOrSquareBracket, at);
    }
  }

  #consume(c: number): boolean {
    if (this.#peek() === c) {
      this.#pos++;
      return true;
    }
    return false;
  }

  /** `ParseValue` for a scalar. */
  #parseValue(): void {
    switch (this.#bytes[this.#pos]) {
      case 0x6e: // n
        this.#pos++;
        if (!(this.#consume(0x75) && this.#consume(0x6c) && this.#consume(0x6c))) {
          throw new JsonSyntaxError(MESSAGES.valueInvalid, this.#pos);
        }
        this.#node(JsonType.Null);
        return;
      case 0x74: // t
        this.#pos++;
        if (!(this.#consume(0x72) && this.#consume(0x75) && this.#consume(0x65))) {
          throw new JsonSyntaxError(MESSAGES.valueInvalid, this.#pos);
        }
        this.#node(JsonType.True);
        return;
      case 0x66: // f
        this.#pos++;
        if (
          !(this.#consume(0x61) && this.#consume(0x6c) && this.#consume(0x73) &&
            this.#consume(0x65))
        ) {
          throw new JsonSyntaxError(MESSAGES.valueInvalid, this.#pos);
        }
        this.#node(JsonType.False);
        return;
      case 0x22:
        this.#parseString();
        return;
      default: {
        const end = this.#simpleNumber(this.#pos);
        if (end >= 0) this.#pos = end;
        else this.#parseNumber();
      }
    }
  }

  /** `ParseString` (non-insitu, no encoding validation): bytes pass through unchanged. */
  #parseString(): void {
    const b = this.#bytes;
    const n = b.length;
    let p = this.#pos + 1; // skip '"'
    const start = p;
    // Fast scan: most strings have no escapes.
    while (p < n) {
      const c = b[p];
      if (c === 0x22) {
        const node = this.#node(JsonType.String);
        this.#ab[2 * node] = start;
        this.#ab[2 * node + 1] = p;
        this.#pos = p + 1;
        return;
      }
      if (c === 0x5c || c < 0x20) break;
      p++;
    }
    this.#parseEscapedString(start, p);
  }

  #parseEscapedString(start: number, from: number): void {
    const b = this.#bytes;
    const n = b.length;
    let out = this.#scratch;
    let len = 0;
    const put = (x: number) => {
      if (len === out.length) {
        const bigger = new Uint8Array(out.length * 2);
        bigger.set(out);
        out = bigger;
      }
      out[len++] = x;
    };
    for (let i = start; i < from; i++) put(b[i]);
    let p = from;
    const hex4 = (escapeOffset: number): number => {
      let cp = 0;
      for (let i = 0; i < 4; i++) {
        const c = p < n ? b[p] : 0;
        let v: number;
        if (c >= 0x30 && c <= 0x39) v = c - 0x30;
        else if (c >= 0x41 && c <= 0x46) v = c - 0x41 + 10;
        else if (c >= 0x61 && c <= 0x66) v = c - 0x61 + 10;
        else throw new JsonSyntaxError(MESSAGES.stringUnicodeEscapeInvalidHex, escapeOffset);
        cp = (cp << 4) | v;
        p++;
      }
      return cp;
    };
    for (;;) {
      const c = p < n ? b[p] : 0;
      if (c === 0x5c) {
        const escapeOffset = p;
        p++;
        const e = p < n ? b[p] : 0;
        const simple = ESCAPE[e];
        if (simple !== 0) {
          p++;
          put(simple);
        } else if (e === 0x75) {
          p++;
          let cp = hex4(escapeOffset);
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (!((p < n && b[p] === 0x5c) && (p++, p < n && b[p] === 0x75))) {
              throw new JsonSyntaxError(MESSAGES.stringUnicodeSurrogateInvalid, escapeOffset);
            }
            p++;
            const cp2 = hex4(escapeOffset);
            if (cp2 < 0xdc00 || cp2 > 0xdfff) {
              throw new JsonSyntaxError(MESSAGES.stringUnicodeSurrogateInvalid, escapeOffset);
            }
            cp = (((cp - 0xd800) << 10) | (cp2 - 0xdc00)) + 0x10000;
          }
          // UTF8::Encode (a lone low surrogate is encoded as it is).
          if (cp <= 0x7f) put(cp);
          else if (cp <= 0x7ff) {
            put(0xc0 | (cp >> 6));
            put(0x80 | (cp & 0x3f));
          } else if (cp <= 0xffff) {
            put(0xe0 | (cp >> 12));
            put(0x80 | ((cp >> 6) & 0x3f));
            put(0x80 | (cp & 0x3f));
          } else {
            put(0xf0 | (cp >> 18));
            put(0x80 | ((cp >> 12) & 0x3f));
            put(0x80 | ((cp >> 6) & 0x3f));
            put(0x80 | (cp & 0x3f));
          }
        } else {
          throw new JsonSyntaxError(MESSAGES.stringEscapeInvalid, escapeOffset);
        }
      } else if (c === 0x22) {
        p++;
        break;
      } else if (c < 0x20) {
        // RapidJSON 1.1.0 reports a raw control character as an invalid escape.
        throw new JsonSyntaxError(
          c === 0 ? MESSAGES.stringMissQuotationMark : MESSAGES.stringEscapeInvalid,
          p,
        );
      } else {
        put(c);
        p++;
      }
    }
    this.#scratch = out;
    this.#pos = p;
    const node = this.#node(JsonType.String);
    this.#ab[2 * node] = -1 - this.#strs.length;
    this.#strs.push(out.slice(0, len));
  }

  /** `ParseNumber` for 64-bit targets without kParseFullPrecisionFlag, step for step. */
  #parseNumber(): void {
    const b = this.#bytes;
    const n = b.length;
    let p = this.#pos;
    const startOffset = p;
    let d = 0;
    let useNanOrInf = false;

    let c = p < n ? b[p] : 0;
    const minus = c === 0x2d;
    if (minus) c = ++p < n ? b[p] : 0;

    let i = 0; // the uint32 significand
    let i64: number | bigint = 0; // the uint64 significand (a bigint once beyond 2^53)
    let use64bit = false;
    let significandDigit = 0;
    if (c === 0x30) {
      c = ++p < n ? b[p] : 0;
    } else if (c >= 0x31 && c <= 0x39) {
      i = c - 0x30;
      c = ++p < n ? b[p] : 0;
      const limit = minus ? 214748364 : 429496729;
      const lastDigit = minus ? 0x38 : 0x35;
      while (c >= 0x30 && c <= 0x39) {
        if (i >= limit && (i !== limit || c > lastDigit)) {
          i64 = i;
          use64bit = true;
          break;
        }
        i = i * 10 + (c - 0x30);
        significandDigit++;
        c = ++p < n ? b[p] : 0;
      }
    } else if (c === 0x49 || c === 0x4e) {
      p = this.#parseNanOrInf(p);
      useNanOrInf = true;
      d = p < 0 ? NaN : minus ? -Infinity : Infinity;
      if (p < 0) p = -p;
      c = p < n ? b[p] : 0;
    } else {
      throw new JsonSyntaxError(MESSAGES.valueInvalid, p);
    }

    // 64-bit integer part, exact (a bigint once it passes 2^53).
    let useDouble = false;
    if (use64bit) {
      const limit = minus ? 922337203685477580n : 1844674407370955161n;
      const lastDigit = minus ? 0x38 : 0x35;
      while (c >= 0x30 && c <= 0x39) {
        if (typeof i64 === "number") {
          if (i64 <= SAFE_ACC) {
            i64 = i64 * 10 + (c - 0x30);
            significandDigit++;
            c = ++p < n ? b[p] : 0;
            continue;
          }
          i64 = BigInt(i64);
        }
        if (i64 >= limit && (i64 !== limit || c > lastDigit)) {
          d = Number(i64);
          useDouble = true;
          break;
        }
        i64 = i64 * 10n + BigInt(c - 0x30);
        significandDigit++;
        c = ++p < n ? b[p] : 0;
      }
    }

    // Force double for a big integer.
    if (useDouble) {
      while (c >= 0x30 && c <= 0x39) {
        if (d >= 1.7976931348623157e307) {
          throw new JsonSyntaxError(MESSAGES.numberTooBig, startOffset);
        }
        d = d * 10 + (c - 0x30);
        c = ++p < n ? b[p] : 0;
      }
    }

    // Fraction.
    let expFrac = 0;
    if (c === 0x2e) {
      c = ++p < n ? b[p] : 0;
      if (!(c >= 0x30 && c <= 0x39)) {
        throw new JsonSyntaxError(MESSAGES.numberMissFraction, p);
      }
      if (!useDouble) {
        // The significand stays an exact integer up to 2^53 - 1 (one more digit may pass it);
        // a bigint significand is past 2^53 already, so the loop stops at once.
        let acc = use64bit ? Number(i64) : i;
        while (c >= 0x30 && c <= 0x39) {
          if (acc > TWO53_M1) break;
          const digit = c - 0x30;
          if (acc <= SAFE_ACC) {
            acc = acc * 10 + digit;
          } else {
            // acc·10 + digit may pass 2^53: split it so the sum is rounded once, as the
            // uint64 → double conversion rounds the exact value.
            const hi = Math.floor(acc / TWO32);
            const lo = acc - hi * TWO32;
            acc = hi * 10 * TWO32 + (lo * 10 + digit);
          }
          --expFrac;
          if (acc !== 0) significandDigit++;
          c = ++p < n ? b[p] : 0;
        }
        d = acc;
        useDouble = true;
      }
      while (c >= 0x30 && c <= 0x39) {
        if (significandDigit < 17) {
          d = d * 10 + (c - 0x30);
          --expFrac;
          if (d > 0) significandDigit++;
        }
        c = ++p < n ? b[p] : 0;
      }
    }

    // Exponent.
    let exp = 0;
    if (c === 0x65 || c === 0x45) {
      c = ++p < n ? b[p] : 0;
      if (!useDouble) {
        d = use64bit ? Number(i64) : i;
        useDouble = true;
      }
      let expMinus = false;
      if (c === 0x2b) c = ++p < n ? b[p] : 0;
      else if (c === 0x2d) {
        expMinus = true;
        c = ++p < n ? b[p] : 0;
      }
      if (c >= 0x30 && c <= 0x39) {
        exp = c - 0x30;
        c = ++p < n ? b[p] : 0;
        if (expMinus) {
          while (c >= 0x30 && c <= 0x39) {
            exp = exp * 10 + (c - 0x30);
            c = ++p < n ? b[p] : 0;
            if (exp >= 214748364) {
              // Issue #313: consume the rest of an overlong exponent.
              while (c >= 0x30 && c <= 0x39) c = ++p < n ? b[p] : 0;
            }
          }
        } else {
          const maxExp = 308 - expFrac;
          while (c >= 0x30 && c <= 0x39) {
            exp = exp * 10 + (c - 0x30);
            c = ++p < n ? b[p] : 0;
            if (exp > maxExp) throw new JsonSyntaxError(MESSAGES.numberTooBig, startOffset);
          }
        }
      } else {
        throw new JsonSyntaxError(MESSAGES.numberMissExponent, p);
      }
      if (expMinus) exp = -exp;
    }

    this.#pos = p;
    const node = this.#n;
    if (node === this.#kind.length) this.#ensure(node + 1);
    this.#n = node + 1;
    this.#kind[node] = JsonType.Number;
    if (useDouble) {
      d = strtodNormalPrecision(d, exp + expFrac);
      this.#num[node] = minus ? -d : d;
      this.#flags[node] = NumberFlag.Double;
    } else if (useNanOrInf) {
      this.#num[node] = d;
      this.#flags[node] = NumberFlag.Double;
    } else if (!use64bit) {
      // RapidJSON's ~u + 1; `-0` is the integer 0.
      const v = minus ? (i === 0 ? 0 : -i) : i;
      this.#num[node] = v;
      this.#flags[node] = v < 0
        ? (v >= -2147483648 ? INT32_NEG : INT64_ONLY)
        : v <= 2147483647
        ? ALL_INT
        : UINT32_POS;
    } else {
      const v = minus ? -i64 : i64;
      this.#flags[node] = intFlags(v);
      if (typeof v === "bigint" && (v > BIG_TWO53_M1 || v < -BIG_TWO53_M1)) {
        this.#bigs.set(node, v);
      }
      this.#num[node] = Number(v);
    }
  }

  /**
   * `NaN`, `Inf` or `Infinity` from `p`, consumed one character at a time as RapidJSON does.
   * Returns the position after it: negated for NaN.
   */
  #parseNanOrInf(p: number): number {
    const b = this.#bytes;
    const n = b.length;
    const at = (q: number) => (q < n ? b[q] : 0);
    if (at(p) === 0x4e) {
      p++;
      if (at(p) === 0x61) {
        p++;
        if (at(p) === 0x4e) return -(p + 1);
      }
    }
    if (at(p) === 0x49) {
      p++;
      if (at(p) === 0x6e) {
        p++;
        if (at(p) === 0x66) {
          p++;
          if (at(p) === 0x69) {
            const word = [0x69, 0x6e, 0x69, 0x74, 0x79]; // "inity"
            for (const x of word) {
              if (at(p) !== x) throw new JsonSyntaxError(MESSAGES.valueInvalid, p);
              p++;
            }
          }
          return p;
        }
      }
    }
    throw new JsonSyntaxError(MESSAGES.valueInvalid, p);
  }
}

const ALL_INT = NumberFlag.Int | NumberFlag.Uint | NumberFlag.Int64 | NumberFlag.Uint64;
const INT32_NEG = NumberFlag.Int | NumberFlag.Int64;
const INT64_ONLY = NumberFlag.Int64;
const UINT32_POS = NumberFlag.Uint | NumberFlag.Int64 | NumberFlag.Uint64;

/** `ParseStringToStream`'s escape table: the byte an escape letter stands for (0: none). */
const ESCAPE = (() => {
  const t = new Uint8Array(256);
  t[0x22] = 0x22; // \"
  t[0x5c] = 0x5c; // \\
  t[0x2f] = 0x2f; // \/
  t[0x62] = 0x08; // \b
  t[0x66] = 0x0c; // \f
  t[0x6e] = 0x0a; // \n
  t[0x72] = 0x0d; // \r
  t[0x74] = 0x09; // \t
  return t;
})();

/** RapidJSON's `GetType()` name as json_tensor.cc's `JsonTypeString` prints it. */
export function jsonTypeString(doc: JsonDoc, i: number): string {
  switch (doc.kind[i]) {
    case JsonType.Null:
      return "Null";
    case JsonType.False:
      return "False";
    case JsonType.True:
      return "True";
    case JsonType.Object:
      return "Object";
    case JsonType.Array:
      return "Array";
    case JsonType.String:
      return "String";
    default:
      return "Number";
  }
}
