/**
 * A hand-written protobuf wire decoder and encoder for `tensorflow.Example`.
 *
 * The decoder follows `tensorflow/core/util/example_proto_fast_parsing.cc`: it walks the wire
 * format once, finds the feature map entries by key bytes without decoding strings, and leaves
 * each feature's value list in place until a caller asks for it; value lists are then read
 * straight into the caller's output storage (packed floats are one byte copy).
 *
 * Wire layout (example.proto, feature.proto):
 *
 * ```text
 * Example   { Features features = 1; }
 * Features  { map<string, Feature> feature = 1; }      // entry: { string key = 1; Feature value = 2; }
 * Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
 * BytesList { repeated bytes value = 1; }
 * FloatList { repeated float value = 1 [packed = true]; }
 * Int64List { repeated int64 value = 1 [packed = true]; }
 * ```
 *
 * As upstream: concatenated serialized Examples merge (a later entry for the same key wins),
 * unknown top-level fields are skipped, map entries may hold key and value in either order,
 * and both packed and unpacked encodings of float and int64 lists are accepted.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";

/** The kind of a Feature: the field number of its `kind` oneof, or None when unset. */
export enum FeatureKind {
  /** No `kind` set (an empty Feature): treated as a missing feature. */
  None = 0,
  /** `bytes_list`. */
  Bytes = 1,
  /** `float_list`. */
  Float = 2,
  /** `int64_list`. */
  Int64 = 3,
}

/** A Feature to encode; strings are UTF-8 encoded, numbers become int64 exactly. */
export type FeatureInput =
  | { readonly bytesList: readonly (Uint8Array | string)[] }
  | { readonly floatList: ArrayLike<number> }
  | { readonly int64List: ArrayLike<number | bigint> }
  | Readonly<Record<string, never>>;

/** A decoded Feature. Byte values are views into the serialized input (not copies). */
export type DecodedFeature =
  | { readonly bytesList: Uint8Array[] }
  | { readonly floatList: Float32Array }
  | { readonly int64List: BigInt64Array }
  | Readonly<Record<string, never>>;

// Tags (field number << 3 | wire type) used below.
const TAG_LEN_1 = 0x0a; // field 1, length-delimited
const TAG_LEN_2 = 0x12; // field 2, length-delimited
const TAG_LEN_3 = 0x1a; // field 3, length-delimited
const TAG_VARINT_1 = 0x08; // field 1, varint
const TAG_FIXED32_1 = 0x0d; // field 1, fixed32

/** True on little-endian hosts, where packed floats can be copied byte for byte. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// The decoder's cursor. All decoding is synchronous, so one module-level cursor is safe and
// saves returning (value, position) pairs.
let pos = 0;

/**
 * Reads a varint as an unsigned 32-bit number (longer varints are truncated to their low 32
 * bits, as CodedInputStream::ReadVarint32 does). Returns -1 past `end` or on a varint longer
 * than 10 bytes.
 */
function varint32(buf: Uint8Array, end: number): number {
  let p = pos;
  if (p >= end) return -1;
  let b = buf[p++];
  if (b < 0x80) {
    pos = p;
    return b;
  }
  let v = b & 0x7f;
  let shift = 7;
  for (let i = 1; i < 10; i++) {
    if (p >= end) return -1;
    b = buf[p++];
    if (shift < 32) v |= (b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) {
      pos = p;
      return v >>> 0;
    }
  }
  return -1;
}

/** Skips a varint of up to 10 bytes; false if it runs past `end`. */
function skipVarint(buf: Uint8Array, end: number): boolean {
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return false;
    if (buf[pos++] < 0x80) return true;
  }
  return false;
}

/**
 * Reads a varint int64 and stores it as two's complement into `out32` at element `idx` (the
 * low word at `2 * idx`: the layout of a BigInt64Array on a little-endian host, which is every
 * platform Deno runs on), with no BigInt allocated.
 */
function varint64Into(buf: Uint8Array, end: number, out32: Int32Array, idx: number): boolean {
  let p = pos;
  let lo = 0;
  let hi = 0;
  let b = 0;
  // Bytes 0..3 fill bits 0..27 of the low word.
  for (let i = 0; i < 4; i++) {
    if (p >= end) return false;
    b = buf[p++];
    lo |= (b & 0x7f) << (7 * i);
    if (b < 0x80) {
      pos = p;
      out32[2 * idx] = lo;
      out32[2 * idx + 1] = 0;
      return true;
    }
  }
  // Byte 4 holds bits 28..31 of the low word and bits 0..2 of the high word.
  if (p >= end) return false;
  b = buf[p++];
  lo |= (b & 0x0f) << 28;
  hi = (b & 0x7f) >> 4;
  if (b >= 0x80) {
    for (let i = 0; i < 5; i++) {
      if (p >= end) return false;
      b = buf[p++];
      hi |= (b & 0x7f) << (3 + 7 * i);
      if (b < 0x80) break;
      if (i === 4) return false;
    }
  }
  pos = p;
  out32[2 * idx] = lo;
  out32[2 * idx + 1] = hi;
  return true;
}

/**
 * Skips one field whose tag has just been read (SkipExtraneousTag upstream); groups are not
 * supported. Returns false on malformed input.
 */
function skipField(buf: Uint8Array, end: number, tag: number): boolean {
  switch (tag & 7) {
    case 0:
      return skipVarint(buf, end);
    case 1:
      pos += 8;
      return pos <= end;
    case 2: {
      const n = varint32(buf, end);
      if (n < 0) return false;
      // Upstream ignores the result of Skip: a length past the end just ends the stream.
      pos = Math.min(pos + n, end);
      return true;
    }
    case 5:
      pos += 4;
      return pos <= end;
    default:
      return false;
  }
}

/**
 * Finds features by key in serialized Examples without decoding key strings: keys are bucketed
 * by length and first byte, then compared byte for byte.
 */
export class KeyIndex {
  readonly #buckets = new Map<number, { key: Uint8Array; index: number }[]>();
  /** Number of keys. */
  readonly size: number;

  /**
   * @param keys the feature keys; `find` returns positions in this list. Keys must be distinct.
   */
  constructor(readonly keys: readonly Uint8Array[]) {
    this.size = keys.length;
    keys.forEach((key, index) => {
      const h = bucketOf(key, 0, key.length);
      let list = this.#buckets.get(h);
      if (!list) this.#buckets.set(h, list = []);
      for (const e of list) {
        if (bytesEqual(e.key, key, 0, key.length)) {
          throw new ServingError(
            Code.INVALID_ARGUMENT,
            `Duplicate feature key "${new TextDecoder().decode(key)}" in the parse config`,
          );
        }
      }
      list.push({ key, index });
    });
  }

  /** The position of the key held in `buf[start, end)`, or -1. */
  find(buf: Uint8Array, start: number, end: number): number {
    const list = this.#buckets.get(bucketOf(buf, start, end));
    if (list === undefined) return -1;
    for (let i = 0; i < list.length; i++) {
      if (bytesEqual(list[i].key, buf, start, end)) return list[i].index;
    }
    return -1;
  }
}

function bucketOf(buf: Uint8Array, start: number, end: number): number {
  const n = end - start;
  return n === 0 ? 0 : n * 256 + buf[start] + 1;
}

function bytesEqual(key: Uint8Array, buf: Uint8Array, start: number, end: number): boolean {
  if (key.length !== end - start) return false;
  for (let i = 0; i < key.length; i++) if (key[i] !== buf[start + i]) return false;
  return true;
}

/** Receives the feature map entries found by `scanExample`. */
export interface EntrySink {
  /**
   * One map entry: the key is `buf[keyStart, keyEnd)`, the Feature message is
   * `buf[featStart, featEnd)` (empty for a Feature with no kind).
   */
  entry(keyStart: number, keyEnd: number, featStart: number, featEnd: number): void;
}

/**
 * Parses a Features message body up to `end` (the cursor is past its length), passing each map
 * entry to `sink`. Returns false on malformed input.
 */
function scanFeatures(buf: Uint8Array, end: number, sink: EntrySink): boolean {
  while (pos < end) {
    if (buf[pos] !== TAG_LEN_1) return false;
    pos++;
    const len = varint32(buf, end);
    if (len < 0 || pos + len > end) return false;
    const entryEnd = pos + len;
    let ks = -1, ke = -1, fs = -1, fe = -1;
    // Upstream reads exactly two fields, key (1) and value (2), in either order.
    for (let n = 0; n < 2; n++) {
      if (pos >= entryEnd) return false;
      const tag = buf[pos++];
      if (tag !== TAG_LEN_1 && tag !== TAG_LEN_2) return false;
      const m = varint32(buf, entryEnd);
      if (m < 0 || pos + m > entryEnd) return false;
      if (tag === TAG_LEN_1) {
        ks = pos;
        ke = pos + m;
      } else {
        fs = pos;
        fe = pos + m;
      }
      pos += m;
    }
    if (pos !== entryEnd) return false;
    if (ks < 0) ks = ke = entryEnd; // two values and no key: the key is empty
    if (fs < 0) fs = fe = entryEnd; // two keys and no value: an empty Feature
    // The sink may run other decoders (which move the cursor), so keep ours.
    const resume = pos;
    sink.entry(ks, ke, fs, fe);
    pos = resume;
  }
  return true;
}

/**
 * Walks a serialized Example, passing every feature map entry to `sink` in wire order.
 * Returns false if the bytes are not a valid Example.
 */
export function scanExample(buf: Uint8Array, sink: EntrySink): boolean {
  pos = 0;
  const end = buf.length;
  while (pos < end) {
    if (buf[pos] === TAG_LEN_1) {
      pos++;
      const len = varint32(buf, end);
      if (len < 0 || pos + len > end) return false;
      const featuresEnd = pos + len;
      if (!scanFeatures(buf, featuresEnd, sink)) return false;
      pos = featuresEnd;
    } else {
      const tag = varint32(buf, end);
      if (tag < 0 || !skipField(buf, end, tag)) return false;
    }
  }
  return true;
}

/**
 * Locates configured features in serialized Examples. After `locate(buf)`, for key `i` of the
 * index, `[starts[i], ends[i])` is the Feature message of its last entry, or `starts[i]` is -1
 * if the Example has no such key. One locator serves a whole batch (no per-Example allocation).
 */
export class FeatureLocator implements EntrySink {
  /** Start of each key's Feature message, or -1. */
  readonly starts: Int32Array;
  /** End of each key's Feature message. */
  readonly ends: Int32Array;
  #buf: Uint8Array = new Uint8Array(0);

  /** @param index the keys to look for */
  constructor(readonly index: KeyIndex) {
    this.starts = new Int32Array(index.size);
    this.ends = new Int32Array(index.size);
  }

  /** Scans one serialized Example; false if it is malformed. */
  locate(buf: Uint8Array): boolean {
    this.#buf = buf;
    this.starts.fill(-1);
    return scanExample(buf, this);
  }

  /** @internal the EntrySink callback */
  entry(ks: number, ke: number, fs: number, fe: number): void {
    const i = this.index.find(this.#buf, ks, ke);
    if (i >= 0) {
      // A later entry for the same key replaces an earlier one, as in proto map parsing.
      this.starts[i] = fs;
      this.ends[i] = fe;
    }
  }
}

/**
 * The kind of the Feature in `buf[start, end)`: FeatureKind.None for an empty Feature, or -1
 * for a first field that is not one of the three lists ("Unsupported datatype." upstream).
 */
export function featureKind(buf: Uint8Array, start: number, end: number): number {
  if (start >= end) return FeatureKind.None;
  switch (buf[start]) {
    case TAG_LEN_1:
      return FeatureKind.Bytes;
    case TAG_LEN_2:
      return FeatureKind.Float;
    case TAG_LEN_3:
      return FeatureKind.Int64;
    default:
      return -1;
  }
}

/** Positions the cursor on the list body of a Feature; returns the list end or -1. */
function openList(buf: Uint8Array, start: number, end: number): number {
  pos = start + 1; // past the oneof tag
  const len = varint32(buf, end);
  if (len < 0 || pos + len > end) return -1;
  return pos + len;
}

/**
 * Reads the float_list of the Feature in `buf[start, end)` as raw float32 bits into `out`, an
 * Int32Array view of the destination Float32Array (so values are copied bit for bit, never
 * through a JS number): writes up to `capacity` values from element `offset` and returns how
 * many values the list holds (which may exceed `capacity`), or -1 if the list is malformed.
 */
export function readFloatList(
  buf: Uint8Array,
  start: number,
  end: number,
  out: Int32Array,
  offset: number,
  capacity: number,
): number {
  const listEnd = openList(buf, start, end);
  if (listEnd < 0) return -1;
  let count = 0;
  while (pos < listEnd) {
    const tag = buf[pos++];
    if (tag === TAG_LEN_1) {
      // Packed: one block of little-endian floats.
      const len = varint32(buf, listEnd);
      if (len < 0 || pos + len > listEnd) return -1;
      const n = len >>> 2;
      const room = Math.max(0, Math.min(n, capacity - count));
      if (room > 64 && LITTLE_ENDIAN) {
        new Uint8Array(out.buffer, out.byteOffset + (offset + count) * 4, room * 4)
          .set(buf.subarray(pos, pos + room * 4));
      } else {
        // Short lists: assembling words beats creating two views for a byte copy.
        let p = pos;
        const o = offset + count;
        for (let i = 0; i < room; i++, p += 4) {
          out[o + i] = buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24);
        }
      }
      count += n;
      pos += len;
    } else if (tag === TAG_FIXED32_1) {
      if (pos + 4 > listEnd) return -1;
      if (count < capacity) {
        out[offset + count] = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) |
          (buf[pos + 3] << 24);
      }
      count++;
      pos += 4;
    } else {
      return -1;
    }
  }
  return count;
}

/**
 * Reads the int64_list of the Feature in `buf[start, end)` into `out32`, an Int32Array view of
 * a BigInt64Array (two words per value): writes up to `capacity` values from element `offset`
 * and returns how many values the list holds, or -1 if the list is malformed.
 */
export function readInt64List(
  buf: Uint8Array,
  start: number,
  end: number,
  out32: Int32Array,
  offset: number,
  capacity: number,
): number {
  const listEnd = openList(buf, start, end);
  if (listEnd < 0) return -1;
  let count = 0;
  while (pos < listEnd) {
    const tag = buf[pos++];
    if (tag === TAG_LEN_1) {
      const len = varint32(buf, listEnd);
      if (len < 0 || pos + len > listEnd) return -1;
      const blockEnd = pos + len;
      while (pos < blockEnd) {
        if (count < capacity) {
          if (!varint64Into(buf, blockEnd, out32, offset + count)) return -1;
        } else if (!skipVarint(buf, blockEnd)) return -1;
        count++;
      }
    } else if (tag === TAG_VARINT_1) {
      if (count < capacity) {
        if (!varint64Into(buf, listEnd, out32, offset + count)) return -1;
      } else if (!skipVarint(buf, listEnd)) return -1;
      count++;
    } else {
      return -1;
    }
  }
  return count;
}

/**
 * Reads the bytes_list of the Feature in `buf[start, end)`: stores up to `capacity` values
 * (views of `buf`, not copies) into `out` from `offset` and returns how many values the list
 * holds, or -1 if the list is malformed.
 */
export function readBytesList(
  buf: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array[],
  offset: number,
  capacity: number,
): number {
  const listEnd = openList(buf, start, end);
  if (listEnd < 0) return -1;
  let count = 0;
  while (pos < listEnd) {
    if (buf[pos++] !== TAG_LEN_1) return -1;
    const len = varint32(buf, listEnd);
    if (len < 0 || pos + len > listEnd) return -1;
    if (count < capacity) out[offset + count] = buf.subarray(pos, pos + len);
    count++;
    pos += len;
  }
  return count;
}

/** Counts the values of a list without storing them; -1 if malformed. */
export function countList(buf: Uint8Array, start: number, end: number): number {
  switch (featureKind(buf, start, end)) {
    case FeatureKind.None:
      return 0;
    case FeatureKind.Bytes:
      return readBytesList(buf, start, end, [], 0, 0);
    case FeatureKind.Float:
      return readFloatList(buf, start, end, EMPTY_I32, 0, 0);
    case FeatureKind.Int64:
      return readInt64List(buf, start, end, EMPTY_I32, 0, 0);
    default:
      return -1;
  }
}

const EMPTY_I32 = new Int32Array(0);

/** The error upstream returns for bytes that are not an Example. */
export function unparsableExample(serialized: Uint8Array): ServingError {
  // Upstream quotes the whole input; a very long one is cut here so the status stays small
  // enough for a gRPC trailer.
  const MAX = 1024;
  const shown = serialized.length > MAX ? serialized.subarray(0, MAX) : serialized;
  const text = new TextDecoder().decode(shown) + (serialized.length > MAX ? "..." : "");
  return new ServingError(
    Code.INVALID_ARGUMENT,
    `Could not parse example input, value: '${text}'`,
  );
}

/**
 * Decodes a serialized Example into its features, keyed by UTF-8 decoded name. Fails with
 * INVALID_ARGUMENT on malformed bytes.
 */
export function decodeExample(serialized: Uint8Array): Map<string, DecodedFeature> {
  const entries: [number, number, number, number][] = [];
  const sink: EntrySink = { entry: (ks, ke, fs, fe) => void entries.push([ks, ke, fs, fe]) };
  if (!scanExample(serialized, sink)) {
    throw unparsableExample(serialized);
  }
  const dec = new TextDecoder();
  const result = new Map<string, DecodedFeature>();
  for (const [ks, ke, fs, fe] of entries) {
    const name = dec.decode(serialized.subarray(ks, ke));
    const kind = featureKind(serialized, fs, fe);
    const n = countList(serialized, fs, fe);
    if (kind < 0 || n < 0) throw unparsableExample(serialized);
    let feature: DecodedFeature;
    if (kind === FeatureKind.Bytes) {
      const out = new Array<Uint8Array>(n);
      readBytesList(serialized, fs, fe, out, 0, n);
      feature = { bytesList: out };
    } else if (kind === FeatureKind.Float) {
      const out = new Float32Array(n);
      readFloatList(serialized, fs, fe, new Int32Array(out.buffer), 0, n);
      feature = { floatList: out };
    } else if (kind === FeatureKind.Int64) {
      const out = new BigInt64Array(n);
      readInt64List(serialized, fs, fe, new Int32Array(out.buffer), 0, n);
      feature = { int64List: out };
    } else {
      feature = {};
    }
    // Later entries win, as in proto map parsing; re-inserting keeps the first position.
    result.set(name, feature);
  }
  return result;
}

/** A growable byte buffer for the encoder. */
class Writer {
  buf = new Uint8Array(256);
  len = 0;

  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  varint(v: number): void {
    this.ensure(5);
    while (v >= 0x80) {
      this.buf[this.len++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.len++] = v;
  }

  varint64(v: bigint): void {
    // Negative values are written as their 64-bit two's complement: 10 bytes.
    let u = BigInt.asUintN(64, v);
    this.ensure(10);
    while (u >= 0x80n) {
      this.buf[this.len++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.len++] = Number(u);
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Writes a length-delimited field whose body `write` produces. */
  nested(tag: number, write: () => void): void {
    this.byte(tag);
    // Reserve 5 bytes for the length, write the body, then move it left over the unused part.
    this.ensure(5);
    const lenPos = this.len;
    this.len += 5;
    write();
    const bodyLen = this.len - lenPos - 5;
    const tmp = new Writer();
    tmp.varint(bodyLen);
    const lenBytes = tmp.buf.subarray(0, tmp.len);
    this.buf.copyWithin(lenPos + lenBytes.length, lenPos + 5, this.len);
    this.buf.set(lenBytes, lenPos);
    this.len -= 5 - lenBytes.length;
  }
}

/** Options for `encodeExample`. */
export interface EncodeOptions {
  /** Write float and int64 lists packed (the proto3 default, true) or one field per value. */
  readonly packed?: boolean;
}

/**
 * Serializes features as a `tensorflow.Example`, in the iteration order of `features`. For
 * tests and for building Examples from JSON (REST classify / regress inputs).
 *
 * @example
 * ```ts
 * const bytes = encodeExample({ age: { floatList: [42] }, tags: { bytesList: ["a", "b"] } });
 * ```
 */
export function encodeExample(
  features:
    | Readonly<Record<string, FeatureInput>>
    | ReadonlyMap<string, FeatureInput>
    | Iterable<readonly [string, FeatureInput]>,
  options: EncodeOptions = {},
): Uint8Array {
  const packed = options.packed ?? true;
  const enc = new TextEncoder();
  const entries: Iterable<readonly [string, FeatureInput]> = features instanceof Map
    ? features.entries()
    : Symbol.iterator in features
    ? features as Iterable<readonly [string, FeatureInput]>
    : Object.entries(features as Record<string, FeatureInput>);
  const w = new Writer();
  const list = [...entries];
  if (list.length === 0) return new Uint8Array(0);
  w.nested(TAG_LEN_1, () => {
    for (const [name, feature] of list) {
      w.nested(TAG_LEN_1, () => {
        w.nested(TAG_LEN_1, () => w.bytes(enc.encode(name)));
        w.nested(TAG_LEN_2, () => writeFeature(w, feature, packed, enc));
      });
    }
  });
  return w.buf.slice(0, w.len);
}

function writeFeature(w: Writer, f: FeatureInput, packed: boolean, enc: TextEncoder): void {
  if ("bytesList" in f) {
    const values = f.bytesList as readonly (Uint8Array | string)[];
    w.nested(TAG_LEN_1, () => {
      for (const v of values) {
        w.nested(TAG_LEN_1, () => w.bytes(typeof v === "string" ? enc.encode(v) : v));
      }
    });
  } else if ("floatList" in f) {
    const values = Float32Array.from(f.floatList as ArrayLike<number>);
    const raw = new Uint8Array(values.length * 4);
    const dv = new DataView(raw.buffer);
    for (let i = 0; i < values.length; i++) dv.setFloat32(4 * i, values[i], true);
    w.nested(TAG_LEN_2, () => {
      if (packed) {
        if (values.length > 0) w.nested(TAG_LEN_1, () => w.bytes(raw));
      } else {
        for (let i = 0; i < values.length; i++) {
          w.byte(TAG_FIXED32_1);
          w.bytes(raw.subarray(4 * i, 4 * i + 4));
        }
      }
    });
  } else if ("int64List" in f) {
    const values = Array.from(f.int64List as ArrayLike<number | bigint>, (v) => BigInt(v));
    w.nested(TAG_LEN_3, () => {
      if (packed) {
        if (values.length > 0) w.nested(TAG_LEN_1, () => values.forEach((v) => w.varint64(v)));
      } else {
        for (const v of values) {
          w.byte(TAG_VARINT_1);
          w.varint64(v);
        }
      }
    });
  }
}
