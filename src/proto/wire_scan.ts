/**
 * A minimal protobuf wire reader and writer for the request hot path (src/tensor/tensor_wire.ts,
 * src/api/grpc/predict_codec.ts): it reads only the plain form of a message — expected wire
 * types, every value inside its message, varints of at most 10 bytes — and gives up on anything
 * else by throwing {@link NOT_SIMPLE}. Its callers then decode the same bytes with the general,
 * C++-compatible decoder (src/proto/binary.ts), so every error and every unusual form keeps that
 * decoder's answer; this reader only has to be right about the bytes it accepts.
 *
 * @module
 */

/** Why a {@link WireScanner} gave up: the bytes are not in the plain form it reads. */
export class NotSimpleError extends Error {
  constructor() {
    super("not a plain message");
    this.name = "NotSimpleError";
  }
}

/** The one instance thrown (no stack is captured per throw). */
export const NOT_SIMPLE: NotSimpleError = new NotSimpleError();

/** Wire types. */
export const WT_VARINT = 0;
/** 64-bit fixed. */
export const WT_I64 = 1;
/** Length-delimited. */
export const WT_LEN = 2;
/** 32-bit fixed. */
export const WT_I32 = 5;

const FATAL_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Reads a message's fields from a byte range. Every read is bounded by `end` (the message's end,
 * or a nested length's end passed by the caller); going past it throws {@link NOT_SIMPLE}.
 */
export class WireScanner {
  /** The read position. */
  pos: number;

  /**
   * @param buf the bytes
   * @param pos where to start
   */
  constructor(readonly buf: Uint8Array, pos = 0) {
    this.pos = pos;
  }

  /** A varint's low 32 bits as an unsigned number (as protobuf's `uint32` reads one). */
  varint32(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= end) throw NOT_SIMPLE;
    let b = buf[pos++];
    if (b < 0x80) {
      this.pos = pos;
      return b;
    }
    let result = b & 0x7f;
    let shift = 7;
    for (; shift < 35; shift += 7) {
      if (pos >= end) throw NOT_SIMPLE;
      b = buf[pos++];
      // Bits past 32 fall off (the 5th byte carries bits 28–34).
      result |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return result >>> 0;
      }
    }
    // Bytes 6–10 carry only high bits.
    for (let n = 5; n < 10; n++) {
      if (pos >= end) throw NOT_SIMPLE;
      b = buf[pos++];
      if (b < 0x80) {
        this.pos = pos;
        return result >>> 0;
      }
    }
    throw NOT_SIMPLE;
  }

  /** A varint as a signed 64-bit integer (protobuf's `int64`). */
  int64(end: number): bigint {
    const start = this.pos;
    const lo = this.varint32(end);
    if (this.pos - start <= 4) return BigInt(lo);
    return BigInt.asIntN(64, this.#full(start));
  }

  /** A varint as an unsigned 64-bit integer (protobuf's `uint64`). */
  uint64(end: number): bigint {
    const start = this.pos;
    const lo = this.varint32(end);
    if (this.pos - start <= 4) return BigInt(lo);
    return this.#full(start);
  }

  /** The low 64 bits of the varint between `start` and the read position. */
  #full(start: number): bigint {
    const buf = this.buf;
    let v = 0n;
    for (let p = start, shift = 0n; p < this.pos; p++, shift += 7n) {
      v |= BigInt(buf[p] & 0x7f) << shift;
    }
    return BigInt.asUintN(64, v);
  }

  /** Skips one varint. */
  skipVarint(end: number): void {
    this.varint32(end);
  }

  /** A tag: `fieldNumber << 3 | wireType`. */
  tag(end: number): number {
    return this.varint32(end);
  }

  /** A length prefix; the value it announces must end by `end`. */
  length(end: number): number {
    const len = this.varint32(end);
    if (len > end - this.pos) throw NOT_SIMPLE;
    return len;
  }

  /**
   * A length-delimited UTF-8 string (invalid UTF-8 gives up, as C++ fails the parse).
   *
   * @param cached look it up in the short-string cache (a name a request repeats)
   */
  string(end: number, cached = false): string {
    const len = this.length(end);
    const start = this.pos;
    const stop = start + len;
    this.pos = stop;
    return cached ? cachedUtf8(this.buf, start, stop) : utf8(this.buf, start, stop);
  }
}

/**
 * Short strings requests repeat (model names, aliases, signature names), with their bytes: a
 * string read again is found by comparing bytes, so it costs no allocation. Bounded; replaced
 * round-robin.
 */
const SHORT_STRINGS: { bytes: Uint8Array; text: string }[] = [];
const SHORT_STRINGS_MAX = 16;
const SHORT_STRING_BYTES = 64;
let shortNext = 0;

/** The cached string whose bytes are `buf[start, end)`, if any. */
function cachedString(buf: Uint8Array, start: number, end: number): string | undefined {
  const len = end - start;
  search: for (let k = 0; k < SHORT_STRINGS.length; k++) {
    const e = SHORT_STRINGS[k];
    if (e.bytes.length !== len) continue;
    for (let i = 0; i < len; i++) if (e.bytes[i] !== buf[start + i]) continue search;
    return e.text;
  }
  return undefined;
}

/**
 * Decodes UTF-8 strictly (invalid UTF-8 gives up), short strings from a small cache: for the few
 * names a request repeats (model, signature, input aliases), not for strings a request may hold
 * many of.
 */
export function cachedUtf8(buf: Uint8Array, start: number, end: number): string {
  const len = end - start;
  if (len === 0) return "";
  if (len > SHORT_STRING_BYTES) return decodeStrict(buf, start, end);
  const hit = cachedString(buf, start, end);
  if (hit !== undefined) return hit;
  const text = decodeStrict(buf, start, end);
  const entry = { bytes: buf.slice(start, end), text };
  if (SHORT_STRINGS.length < SHORT_STRINGS_MAX) SHORT_STRINGS.push(entry);
  else {
    SHORT_STRINGS[shortNext] = entry;
    shortNext = (shortNext + 1) % SHORT_STRINGS_MAX;
  }
  return text;
}

/** Decodes UTF-8 strictly (invalid UTF-8 gives up). */
export function utf8(buf: Uint8Array, start: number, end: number): string {
  return end === start ? "" : decodeStrict(buf, start, end);
}

function decodeStrict(buf: Uint8Array, start: number, end: number): string {
  try {
    return FATAL_UTF8.decode(buf.subarray(start, end));
  } catch {
    throw NOT_SIMPLE;
  }
}

/** Bytes of a varint holding `v` (an unsigned 32-bit number). */
export function varint32Size(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** Bytes protobuf writes for an `int32` (a negative one is sign-extended to 10 bytes). */
export function int32Size(v: number): number {
  return v < 0 ? 10 : varint32Size(v);
}

/** Bytes of a varint holding a 64-bit value (two's complement for negatives). */
export function varint64Size(v: bigint): number {
  let u = BigInt.asUintN(64, v);
  if (u < 0x80n) return 1;
  let n = 0;
  while (u > 0n) {
    n++;
    u >>= 7n;
  }
  return n;
}

/** Writes an unsigned 32-bit varint at `pos`; returns the new position. */
export function writeVarint32(out: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    out[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[pos++] = v;
  return pos;
}

/** Writes an `int32` as protobuf does (negatives as 10-byte two's complement varints). */
export function writeInt32(out: Uint8Array, pos: number, v: number): number {
  if (v >= 0) return writeVarint32(out, pos, v);
  return writeVarint64(out, pos, BigInt(v));
}

/** Writes a 64-bit varint (two's complement for negatives). */
export function writeVarint64(out: Uint8Array, pos: number, v: bigint): number {
  let u = BigInt.asUintN(64, v);
  if (u < 0x100000000n) {
    const small = Number(u);
    return writeVarint32(out, pos, small);
  }
  while (u >= 0x80n) {
    out[pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  out[pos++] = Number(u);
  return pos;
}
