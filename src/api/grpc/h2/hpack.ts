/**
 * HPACK (RFC 7541), the header compression of HTTP/2: a decoder with its dynamic table for the
 * header blocks a client sends, and a stateless encoder for the server's own header blocks.
 *
 * Header names and values are latin1 strings, one char per octet, exactly as on the wire; the
 * dynamic table keeps them as strings, so a field sent again by index costs an array lookup.
 *
 * Hostile input: every integer is bounded (below 2^31, and a length by what is left of the
 * block), every index by the tables, every string by the block before anything is allocated;
 * the Huffman decoder's output is at most 8/5 of its input. What a block decodes to is measured
 * against the header-list limit ({@link DecodedHeaderBlock.oversize}), and a field referenced
 * many times by index shares its table strings, so nothing allocated grows faster than the
 * block. Malformed input throws {@link HpackError}, and only that.
 *
 * @module
 */
import {
  huffmanDecode,
  huffmanDecodedCapacity,
  huffmanEncodedLength,
  huffmanEncodeInto,
} from "./huffman.ts";

/** A malformed header block: the connection must end with GOAWAY COMPRESSION_ERROR (RFC 9113 §4.3). */
export class HpackError extends Error {
  /**
   * An error naming what was malformed.
   *
   * @param message what was wrong, for the GOAWAY debug data and the log
   */
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

/** What one header block decodes to. */
export interface DecodedHeaderBlock {
  /** Names and values alternating: [name0, value0, name1, value1, …], octets as latin1 strings (one char per octet), in block order, exactly as sent (the caller checks lower case, pseudo-header order, etc.). */
  readonly fields: string[];
  /** The block's field sizes (name + value + 32 each, as RFC 9113 §6.5.2 counts) exceeded maxHeaderListSize: `fields` then holds only the fields before the one that crossed it, but the dynamic table was still updated from the whole block (so the connection can refuse this one stream and go on). */
  readonly oversize: boolean;
}

/**
 * The static table (RFC 7541 Appendix A): `[name, value]` at index 1–61; index 0 is unused.
 */
export const HPACK_STATIC_TABLE: readonly (readonly [string, string])[] = [
  ["", ""],
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** The number of static entries; dynamic indices start after it. */
const STATIC_COUNT = HPACK_STATIC_TABLE.length - 1;
const STATIC_NAMES: readonly string[] = HPACK_STATIC_TABLE.map((e) => e[0]);
const STATIC_VALUES: readonly string[] = HPACK_STATIC_TABLE.map((e) => e[1]);

/** The size an entry counts for in the dynamic table and in a header list (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

/** Integers are limited to this: no index, length or table size in HTTP/2 comes near it. */
const MAX_INT = 0x7fffffff;

/**
 * The longest unindexed literal (length prefix included) a decoder remembers, two per static
 * name: at most 61 × 2 × 128 octets per connection, and only for names a client sends so.
 */
const UNINDEXED_CACHE_OCTETS = 128;

/** An unindexed literal as sent (`octets[0..length)`, prefix included) and the string it decoded to. */
interface RememberedLiteral {
  readonly octets: Uint8Array;
  length: number;
  value: string;
}

/** Where the last readInt/readString call stopped; decoding is synchronous, so one cursor serves. */
let cursor = 0;

/**
 * Reads an integer with a prefix of `mask` (2^N - 1) bits starting in `block[pos]` (§5.1).
 * Sets {@link cursor} after it.
 */
function readInt(block: Uint8Array, pos: number, end: number, mask: number): number {
  let value = block[pos++] & mask;
  if (value < mask) {
    cursor = pos;
    return value;
  }
  let scale = 1;
  for (;;) {
    if (pos >= end) throw new HpackError("an integer runs past the end of the header block");
    const b = block[pos++];
    value += (b & 0x7f) * scale;
    if (value > MAX_INT) throw new HpackError("an integer exceeds 2^31 - 1");
    if ((b & 0x80) === 0) break;
    scale *= 128;
    // Five continuation octets reach 2^35; more can only be redundant zeros (or overflow).
    if (scale > 2 ** 28) throw new HpackError("an integer has too many octets");
  }
  cursor = pos;
  return value;
}

/** Huffman output, shared by all decoders (decoding is synchronous); grown up to SCRATCH_MAX. */
let scratch = new Uint8Array(1024);
const SCRATCH_MAX = 16 * 1024;

/**
 * Plain arrays of each length up to 256 (made as lengths occur), for String.fromCharCode.apply: V8 builds a string from
 * an array of exactly the right length about twice as fast as from a typed-array view, and 4×
 * as fast as by concatenating chars (measured at 16–100 chars on Deno 2.9).
 */
const CHAR_ARRAY_MAX = 256;
const charArrays: (number[] | undefined)[] = new Array(CHAR_ARRAY_MAX + 1);

/** Octets `bytes[start..end)` as a latin1 string. */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= CHAR_ARRAY_MAX) {
    let chars = charArrays[n];
    if (chars === undefined) chars = charArrays[n] = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) chars[i] = bytes[start + i];
    return String.fromCharCode.apply(null, chars);
  }
  let s = "";
  for (let i = start; i < end; i += 8192) {
    const chunk = bytes.subarray(i, Math.min(end, i + 8192));
    s += String.fromCharCode.apply(null, chunk as unknown as number[]);
  }
  return s;
}

/** Reads a string literal (§5.2) starting at `block[pos]`; sets {@link cursor} after it. */
function readString(block: Uint8Array, pos: number, end: number): string {
  if (pos >= end) throw new HpackError("a header block ends where a string literal should be");
  const huffman = block[pos] & 0x80;
  const length = readInt(block, pos, end, 0x7f);
  pos = cursor;
  if (length > end - pos) {
    throw new HpackError(
      `a string of ${length} octets runs past the end of the header block (${end - pos} left)`,
    );
  }
  cursor = pos + length;
  if (huffman === 0) return latin1(block, pos, pos + length);
  const capacity = huffmanDecodedCapacity(length);
  let out = scratch;
  if (out.length < capacity) {
    // A rare large string gets a buffer of its own rather than one kept for good.
    out = new Uint8Array(capacity);
    if (capacity <= SCRATCH_MAX) scratch = out;
  }
  const n = huffmanDecode(block, pos, pos + length, out);
  if (n < 0) {
    throw new HpackError("invalid Huffman-coded string (EOS inside, or bad padding)");
  }
  return latin1(out, 0, n);
}

/**
 * The dynamic table (§2.3.2, §4): a ring of names and values, newest at `head`. Entry sizes are
 * name + value + 32 (one char per octet); adding evicts the oldest entries until the new one
 * fits, and an entry larger than the whole table empties it and is not added.
 */
class DynamicTable {
  names: string[] = new Array(16).fill("");
  values: string[] = new Array(16).fill("");
  /** Ring capacity - 1 (the capacity is a power of two). */
  mask = 15;
  /** Slot of the newest entry. */
  head = 15;
  count = 0;
  /** The sum of the entries' sizes. */
  size = 0;

  constructor(public maxSize: number) {}

  /** Name of dynamic entry `i` (0 = newest); the caller checked `i < count`. */
  name(i: number): string {
    return this.names[(this.head - i) & this.mask];
  }

  /** Value of dynamic entry `i` (0 = newest). */
  value(i: number): string {
    return this.values[(this.head - i) & this.mask];
  }

  /** Adds an entry as the newest (§4.4), evicting as needed. */
  add(name: string, value: string): void {
    const entrySize = name.length + value.length + ENTRY_OVERHEAD;
    this.#evictUntil(this.maxSize - entrySize);
    if (entrySize > this.maxSize) return; // the table is now empty (§4.4)
    if (this.count > this.mask) this.#grow();
    this.head = (this.head + 1) & this.mask;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.size += entrySize;
  }

  /** Applies a dynamic table size update (§4.3); the caller checked it against the advertised limit. */
  setMaxSize(maxSize: number): void {
    this.maxSize = maxSize;
    this.#evictUntil(maxSize);
  }

  /** Evicts the oldest entries until the size is at most `limit` (§4.3). */
  #evictUntil(limit: number): void {
    while (this.size > limit && this.count > 0) {
      const slot = (this.head - this.count + 1) & this.mask;
      this.size -= this.names[slot].length + this.values[slot].length + ENTRY_OVERHEAD;
      this.names[slot] = "";
      this.values[slot] = "";
      this.count--;
    }
  }

  /** Doubles the ring, oldest entry first at slot 0. Every entry is ≥ 32 octets, so the table holds at most maxSize / 32 entries and the ring at most twice as many slots. */
  #grow(): void {
    const capacity = 2 * (this.mask + 1);
    const names: string[] = new Array(capacity).fill("");
    const values: string[] = new Array(capacity).fill("");
    for (let i = 0; i < this.count; i++) {
      names[i] = this.name(this.count - 1 - i);
      values[i] = this.value(this.count - 1 - i);
    }
    this.names = names;
    this.values = values;
    this.mask = capacity - 1;
    this.head = this.count - 1;
  }
}

/**
 * Decodes the header blocks of one HTTP/2 connection's peer (one decoder per connection: its
 * dynamic table carries over from block to block).
 */
export class HpackDecoder {
  readonly #maxTableSize: number;
  readonly #maxHeaderListSize: number;
  readonly #table: DynamicTable;
  /** Per static name `i`, at 2i (newest) and 2i + 1, the last two unindexed literal values. */
  #unindexed: (RememberedLiteral | undefined)[] | undefined;

  /**
   * A decoder with an empty dynamic table.
   *
   * @param maxTableSize the SETTINGS_HEADER_TABLE_SIZE we advertise (default 4096); a dynamic table size update above it is an HpackError, as is one that is not at the start of a block
   * @param maxHeaderListSize what `oversize` is measured against (default 16384)
   *
   * The table's limit is `maxTableSize` from the first block on. A value below 4096 (the
   * protocol's initial size) is only exact once the peer has acknowledged our SETTINGS and
   * started its next block with a size update (RFC 7541 §4.2): before that it may index up to
   * 4096 octets, which this decoder would evict earlier than the peer does. So keep 4096 unless
   * the connection handles that window.
   */
  constructor(maxTableSize = 4096, maxHeaderListSize = 16384) {
    if (!(Number.isInteger(maxTableSize) && maxTableSize >= 0 && maxTableSize <= MAX_INT)) {
      throw new RangeError(`maxTableSize ${maxTableSize} is not an integer in [0, 2^31)`);
    }
    this.#maxTableSize = maxTableSize;
    this.#maxHeaderListSize = maxHeaderListSize;
    this.#table = new DynamicTable(maxTableSize);
  }

  /** The dynamic table's current size in octets (entries' name + value + 32), for tests and diagnostics. */
  get dynamicTableSize(): number {
    return this.#table.size;
  }

  /** The dynamic table's entries as `[name, value]`, newest first (index 62 first), for tests and diagnostics. */
  dynamicTableEntries(): [string, string][] {
    const t = this.#table;
    return Array.from({ length: t.count }, (_, i) => [t.name(i), t.value(i)]);
  }

  /** Decodes one complete header block (HEADERS payload without padding/priority plus every CONTINUATION payload, joined). Throws HpackError on anything malformed. */
  decode(block: Uint8Array): DecodedHeaderBlock {
    const table = this.#table;
    const limit = this.#maxHeaderListSize;
    const fields: string[] = [];
    const end = block.length;
    let pos = 0;
    let listSize = 0;
    let oversize = false;
    let fieldSeen = false;
    while (pos < end) {
      const b = block[pos];
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed header field (§6.1).
        const index = readInt(block, pos, end, 0x7f);
        pos = cursor;
        if (index <= STATIC_COUNT) {
          if (index === 0) throw new HpackError("index 0 in an indexed header field");
          name = STATIC_NAMES[index];
          value = STATIC_VALUES[index];
        } else {
          const i = index - STATIC_COUNT - 1;
          if (i >= table.count) throw this.#badIndex(index);
          name = table.name(i);
          value = table.value(i);
        }
      } else if (b & 0x40) {
        // Literal header field with incremental indexing (§6.2.1).
        name = this.#literalName(block, pos, end, 0x3f);
        value = readString(block, cursor, end);
        pos = cursor;
        table.add(name, value);
      } else if (b & 0x20) {
        // Dynamic table size update (§6.3): only before the block's first field (§4.2).
        if (fieldSeen) {
          throw new HpackError("a dynamic table size update after a header field");
        }
        const size = readInt(block, pos, end, 0x1f);
        pos = cursor;
        if (size > this.#maxTableSize) {
          throw new HpackError(
            `dynamic table size update to ${size} exceeds the advertised ${this.#maxTableSize}`,
          );
        }
        table.setMaxSize(size);
        continue;
      } else {
        // Literal header field without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3).
        const nameIndex = readInt(block, pos, end, 0x0f);
        if (nameIndex === 0) {
          name = readString(block, cursor, end);
          value = readString(block, cursor, end);
        } else if (nameIndex <= STATIC_COUNT) {
          name = STATIC_NAMES[nameIndex];
          value = this.#unindexedValue(nameIndex, block, cursor, end);
        } else {
          name = this.#indexedName(nameIndex);
          value = readString(block, cursor, end);
        }
        pos = cursor;
      }
      fieldSeen = true;
      if (!oversize) {
        listSize += name.length + value.length + ENTRY_OVERHEAD;
        if (listSize > limit) oversize = true;
        else fields.push(name, value);
      }
    }
    return { fields, oversize };
  }

  /** The name of a literal field: by index (static or dynamic) or, for index 0, a string literal. Sets the cursor after it. */
  #literalName(block: Uint8Array, pos: number, end: number, mask: number): string {
    const index = readInt(block, pos, end, mask);
    if (index === 0) return readString(block, cursor, end);
    return this.#indexedName(index);
  }

  #indexedName(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_NAMES[index];
    const i = index - STATIC_COUNT - 1;
    if (i >= this.#table.count) throw this.#badIndex(index);
    return this.#table.name(i);
  }

  /**
   * The value of an unindexed literal field with static name `nameIndex`, starting at
   * `block[pos]`: the string the same octets gave one of the last two times for that name, else
   * decoded (and remembered when at most {@link UNINDEXED_CACHE_OCTETS} long). Clients send some
   * fields unindexed on every request (grpc-js its :path, Huffman-coded), so this skips decoding
   * them; two per name keep a client alternating two methods from missing every time.
   */
  #unindexedValue(nameIndex: number, block: Uint8Array, pos: number, end: number): string {
    if (pos >= end) return readString(block, pos, end); // throws
    const length = readInt(block, pos, end, 0x7f);
    const stop = cursor + length;
    if (stop > end) return readString(block, pos, end); // throws
    const span = stop - pos;
    const cache = this.#unindexed ??= [];
    const newest = 2 * nameIndex;
    for (let way = newest; way <= newest + 1; way++) {
      const r = cache[way];
      if (r === undefined || r.length !== span) continue;
      const octets = r.octets;
      let i = 0;
      while (i < span && octets[i] === block[pos + i]) i++;
      if (i < span) continue;
      if (way !== newest) {
        cache[way] = cache[newest];
        cache[newest] = r;
      }
      cursor = stop;
      return r.value;
    }
    const value = readString(block, pos, end);
    if (span <= UNINDEXED_CACHE_OCTETS) {
      // The older one makes way; its buffer is reused when large enough.
      let r = cache[newest + 1];
      if (r === undefined || r.octets.length < span) {
        r = { octets: new Uint8Array(UNINDEXED_CACHE_OCTETS), length: 0, value: "" };
      }
      for (let i = 0; i < span; i++) r.octets[i] = block[pos + i];
      r.length = span;
      r.value = value;
      cache[newest + 1] = cache[newest];
      cache[newest] = r;
    }
    return value;
  }

  #badIndex(index: number): HpackError {
    return new HpackError(
      `index ${index} is beyond the static (${STATIC_COUNT}) and dynamic (${this.#table.count}) entries`,
    );
  }
}

/** Static index of the entry with this name and value ("name\0value" → index). */
const STATIC_FIELD_INDEX = new Map<string, number>();
/** Lowest static index of each name. */
const STATIC_NAME_INDEX = new Map<string, number>();
for (let i = STATIC_COUNT; i >= 1; i--) {
  STATIC_NAME_INDEX.set(STATIC_NAMES[i], i);
  STATIC_FIELD_INDEX.set(`${STATIC_NAMES[i]}\0${STATIC_VALUES[i]}`, i);
}

/**
 * Encodes header lists without a dynamic table (the server's responses): one encoder may serve
 * every connection, and a list's encoding can be cached.
 */
export class HpackEncoder {
  #buf = new Uint8Array(256);
  #pos = 0;

  /** Encodes fields (alternating name, value; names already lower case) without ever using or changing a dynamic table: an indexed static entry when name and value match one, otherwise a literal without indexing (static name index when the name is in the static table, else a literal name), strings as raw octets or Huffman whichever is shorter. So a list's encoding never depends on what came before and the caller may cache it. */
  encode(fields: readonly string[]): Uint8Array {
    if (fields.length % 2 !== 0) {
      throw new RangeError(`fields has odd length ${fields.length}: names and values alternate`);
    }
    this.#pos = 0;
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i];
      const value = fields[i + 1];
      // Worst case: two 5-octet length prefixes, a 1-octet representation, raw strings.
      this.#reserve(11 + name.length + value.length);
      const full = STATIC_FIELD_INDEX.get(`${name}\0${value}`);
      if (full !== undefined) {
        this.#writeInt(0x80, 0x7f, full);
        continue;
      }
      const nameIndex = STATIC_NAME_INDEX.get(name);
      if (nameIndex !== undefined) {
        this.#writeInt(0x00, 0x0f, nameIndex);
      } else {
        this.#buf[this.#pos++] = 0x00;
        this.#writeString(name);
      }
      this.#writeString(value);
    }
    return this.#buf.slice(0, this.#pos);
  }

  #reserve(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const bigger = new Uint8Array(Math.max(2 * this.#buf.length, this.#pos + n));
    bigger.set(this.#buf.subarray(0, this.#pos));
    this.#buf = bigger;
  }

  /** An integer with the prefix `mask` (2^N - 1) under the representation bits `first` (§5.1). */
  #writeInt(first: number, mask: number, value: number): void {
    const buf = this.#buf;
    if (value < mask) {
      buf[this.#pos++] = first | value;
      return;
    }
    buf[this.#pos++] = first | mask;
    value -= mask;
    while (value >= 0x80) {
      buf[this.#pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[this.#pos++] = value;
  }

  /** A string literal (§5.2), Huffman-coded when that is shorter. */
  #writeString(s: string): void {
    const huffmanLength = huffmanEncodedLength(s); // also rejects chars above 0xff
    if (huffmanLength < s.length) {
      this.#writeInt(0x80, 0x7f, huffmanLength);
      this.#pos = huffmanEncodeInto(s, this.#buf, this.#pos);
      return;
    }
    this.#writeInt(0x00, 0x7f, s.length);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    this.#pos = pos;
  }
}
