/**
 * The immutable sorted string table TensorFlow uses for checkpoint indexes
 * (`tensorflow/core/lib/io/table*.cc`, a LevelDB table without filters).
 *
 * Layout of a file:
 *
 * ```
 * [data block][trailer] … [metaindex block][trailer] [index block][trailer] [footer]
 * trailer = 1 byte compression type (0 none, 1 snappy) + fixed32 masked CRC32C of (block, type)
 * footer  = metaindex handle, index handle (each varint64 offset + varint64 size),
 *           zero padding to 40 bytes, fixed64 magic 0xdb4775248b80fb57 (48 bytes in all)
 * block   = entries, fixed32 restart offsets, fixed32 restart count
 * entry   = varint32 shared key bytes, varint32 non-shared key bytes, varint32 value length,
 *           the non-shared key bytes, the value
 * ```
 *
 * The index block maps a separator key (≥ every key of a data block, < every key of the next)
 * to that block's handle. The metaindex block is written empty and ignored on read, as in
 * TensorFlow.
 *
 * Keys are byte strings ordered bytewise. {@link readTable} returns them raw; {@link readTableMap}
 * decodes them as UTF-8, which is how TensorFlow names tensors (`tf.Variable` names are
 * Python/C++ UTF-8 strings). UTF-8 preserves bytewise order, so sorted keys stay sorted.
 *
 * @module
 */
import { uncompress } from "./snappy.ts";
import { Code, ServingError } from "../errors.ts";
import { crc32c, maskCrc, unmaskCrc } from "./crc32c.ts";

/** The table magic number (`kTableMagicNumber` in format.h). */
const MAGIC_LO = 0x8b80fb57;
const MAGIC_HI = 0xdb477524;
/** Bytes in the footer: two padded block handles and the magic number. */
export const FOOTER_LENGTH = 48;
/** Bytes after every block: type byte and masked CRC. */
const TRAILER_LENGTH = 5;
/** Block type: stored as is. */
const NO_COMPRESSION = 0;
/** Block type: snappy-compressed. */
const SNAPPY_COMPRESSION = 1;
/** The type byte of an uncompressed block, for the trailer CRC. */
const TYPE_NONE = new Uint8Array([NO_COMPRESSION]);
/** Largest uncompressed block accepted, so a corrupt length cannot ask for gigabytes. */
const MAX_UNCOMPRESSED_BLOCK = 1 << 30;

/** One key/value pair of a table. Both are views into the file bytes or a decompressed block. */
export interface TableEntry {
  /** The key bytes. */
  readonly key: Uint8Array;
  /** The value bytes. */
  readonly value: Uint8Array;
}

/** Options of {@link writeTable}. */
export interface TableWriterOptions {
  /**
   * Uncompressed bytes per data block before a new one is started. TensorFlow's default
   * (table_options.h) is 256 KiB; tests use small values to produce many blocks.
   */
  readonly blockSize?: number;
  /** Keys between restart points in data blocks (TensorFlow's default: 16). */
  readonly restartInterval?: number;
}

// ---------------------------------------------------------------------------------------------
// Coding helpers (tensorflow/core/lib/core/coding.cc), shared with the tensor bundle.

/** A decoded varint and the offset just past it. */
export interface Varint {
  /** The value (exact up to 2^53). */
  value: number;
  /** Offset of the first byte after the varint. */
  next: number;
}

/**
 * Reads a little-endian base-128 varint of at most `maxBytes` bytes (5 for varint32, 10 for
 * varint64) at `pos`, stopping at `limit`. Returns undefined if it is truncated or too long.
 * Values above 2^53 lose precision; callers bound them anyway.
 */
export function readVarint(
  bytes: Uint8Array,
  pos: number,
  limit: number,
  maxBytes = 10,
): Varint | undefined {
  let value = 0;
  let scale = 1;
  const end = Math.min(limit, pos + maxBytes);
  for (let p = pos; p < end; p++) {
    const b = bytes[p];
    value += (b & 0x7f) * scale;
    if (b < 0x80) return { value, next: p + 1 };
    scale *= 128;
  }
  return undefined;
}

/** Reads a little-endian uint32 at `pos`. */
export function readFixed32(bytes: Uint8Array, pos: number): number {
  return (bytes[pos] | (bytes[pos + 1] << 8) | (bytes[pos + 2] << 16) | (bytes[pos + 3] << 24)) >>>
    0;
}

/** A growable byte buffer for writers. */
export class ByteWriter {
  #buf: Uint8Array;
  #len = 0;

  /** @param capacity initial capacity in bytes */
  constructor(capacity = 256) {
    this.#buf = new Uint8Array(Math.max(16, capacity));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    const need = this.#len + n;
    if (need <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /** Appends one byte. */
  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  /** Appends bytes. */
  bytes(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /** Appends a little-endian uint32. */
  fixed32(v: number): void {
    this.#reserve(4);
    const p = this.#len;
    this.#buf[p] = v & 0xff;
    this.#buf[p + 1] = (v >>> 8) & 0xff;
    this.#buf[p + 2] = (v >>> 16) & 0xff;
    this.#buf[p + 3] = (v >>> 24) & 0xff;
    this.#len += 4;
  }

  /** Appends a varint (any non-negative safe integer). */
  varint(v: number): void {
    this.#reserve(10);
    while (v >= 0x80) {
      this.#buf[this.#len++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.#buf[this.#len++] = v;
  }

  /** Appends `n` zero bytes. */
  zeros(n: number): void {
    this.#reserve(n);
    this.#buf.fill(0, this.#len, this.#len + n);
    this.#len += n;
  }

  /** The bytes written, as a view. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Forgets the contents, keeping the memory. */
  reset(): void {
    this.#len = 0;
  }
}

/** Bytewise comparison of two keys, as the table orders them. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------
// Reader.

function corrupt(fileName: string, detail: string, offset: number): ServingError {
  return new ServingError(
    Code.DATA_LOSS,
    `Cannot read table ${fileName}: ${detail} at offset ${offset}`,
  );
}

interface BlockHandle {
  offset: number;
  size: number;
}

/** Decodes a block handle from `bytes[pos, limit)`; `at` is the file offset, for messages. */
function decodeHandle(
  bytes: Uint8Array,
  pos: number,
  limit: number,
  fileName: string,
  at: number,
): { handle: BlockHandle; next: number } {
  const off = readVarint(bytes, pos, limit);
  const size = off && readVarint(bytes, off.next, limit);
  if (!off || !size) throw corrupt(fileName, "bad block handle", at);
  return { handle: { offset: off.value, size: size.value }, next: size.next };
}

/**
 * Reads one block and its trailer: checks bounds and the CRC, decompresses snappy blocks
 * (format.cc ReadBlock). Uncompressed blocks are returned as views into `file`.
 */
function readBlock(file: Uint8Array, h: BlockHandle, fileName: string): Uint8Array {
  // The footer follows the last block, so every block ends before it.
  if (h.offset + h.size + TRAILER_LENGTH > file.length - FOOTER_LENGTH) {
    throw corrupt(
      fileName,
      `truncated block read (block of ${h.size} bytes past the end of the ${file.length}-byte file)`,
      h.offset,
    );
  }
  const contents = file.subarray(h.offset, h.offset + h.size + 1); // block + type byte
  const stored = unmaskCrc(readFixed32(file, h.offset + h.size + 1));
  const actual = crc32c(contents);
  if (stored !== actual) {
    throw corrupt(
      fileName,
      `block checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)})`,
      h.offset,
    );
  }
  const data = contents.subarray(0, h.size);
  const type = file[h.offset + h.size];
  if (type === NO_COMPRESSION) return data;
  if (type === SNAPPY_COMPRESSION) {
    try {
      return uncompress(data, MAX_UNCOMPRESSED_BLOCK) as Uint8Array;
    } catch (e) {
      throw corrupt(
        fileName,
        `corrupted compressed block contents (${e instanceof Error ? e.message : e})`,
        h.offset,
      );
    }
  }
  throw corrupt(fileName, `bad block type ${type}`, h.offset);
}

/**
 * Calls `visit` for every entry of a block, in order (block.cc Block::Iter from SeekToFirst).
 * `at` is the block's file offset, for messages. Keys are fresh arrays (prefix compression means
 * each key is rebuilt from the previous one); values are views into `block`.
 */
function forEachInBlock(
  block: Uint8Array,
  fileName: string,
  at: number,
  visit: (key: Uint8Array, value: Uint8Array) => void,
): void {
  const size = block.length;
  if (size < 4) throw corrupt(fileName, "bad block contents (shorter than 4 bytes)", at);
  const numRestarts = readFixed32(block, size - 4);
  if (numRestarts > (size - 4) / 4) {
    throw corrupt(fileName, `bad block contents (${numRestarts} restart points)`, at);
  }
  const limit = size - 4 * (1 + numRestarts); // where the restart array starts
  if (numRestarts === 0) return; // an empty block (never written by TensorFlow, but valid)
  let prev: Uint8Array = new Uint8Array(0);
  let p = 0;
  while (p < limit) {
    const entryAt = p;
    let shared: number, nonShared: number, valueLength: number;
    if (limit - p >= 3 && (block[p] | block[p + 1] | block[p + 2]) < 0x80) {
      // Fast path: all three lengths fit in one byte each.
      shared = block[p];
      nonShared = block[p + 1];
      valueLength = block[p + 2];
      p += 3;
    } else {
      const a = readVarint(block, p, limit, 5);
      const b = a && readVarint(block, a.next, limit, 5);
      const c = b && readVarint(block, b.next, limit, 5);
      if (!a || !b || !c) throw corrupt(fileName, "bad entry in block", at + entryAt);
      shared = a.value;
      nonShared = b.value;
      valueLength = c.value;
      p = c.next;
    }
    if (limit - p < nonShared + valueLength || shared > prev.length) {
      throw corrupt(fileName, "bad entry in block", at + entryAt);
    }
    const key = new Uint8Array(shared + nonShared);
    if (shared > 0) key.set(prev.subarray(0, shared));
    key.set(block.subarray(p, p + nonShared), shared);
    p += nonShared;
    visit(key, block.subarray(p, p + valueLength));
    p += valueLength;
    prev = key;
  }
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, "0")}`;
}

/**
 * Reads every entry of a table, in key order, verifying the footer magic, every block's CRC and
 * the key order. Fails with DATA_LOSS naming `fileName` and the byte offset of the problem.
 *
 * @param bytes the whole file
 * @param fileName the file's path, for messages
 */
export function readTable(bytes: Uint8Array, fileName: string): TableEntry[] {
  if (bytes.length < FOOTER_LENGTH) {
    throw corrupt(
      fileName,
      `file is too short to be an sstable (${bytes.length} bytes, need at least ${FOOTER_LENGTH})`,
      0,
    );
  }
  const footerAt = bytes.length - FOOTER_LENGTH;
  const magicAt = bytes.length - 8;
  if (readFixed32(bytes, magicAt) !== MAGIC_LO || readFixed32(bytes, magicAt + 4) !== MAGIC_HI) {
    throw corrupt(fileName, "not an sstable (bad magic number)", magicAt);
  }
  // The metaindex handle comes first; TensorFlow writes it empty and never reads it.
  const meta = decodeHandle(bytes, footerAt, magicAt, fileName, footerAt);
  const { handle: indexHandle } = decodeHandle(bytes, meta.next, magicAt, fileName, footerAt);
  const index = readBlock(bytes, indexHandle, fileName);

  const handles: BlockHandle[] = [];
  forEachInBlock(index, fileName, indexHandle.offset, (_key, value) => {
    handles.push(decodeHandle(value, 0, value.length, fileName, indexHandle.offset).handle);
  });

  const out: TableEntry[] = [];
  let last: Uint8Array | undefined;
  for (const h of handles) {
    const block = readBlock(bytes, h, fileName);
    forEachInBlock(block, fileName, h.offset, (key, value) => {
      // Keys are strictly increasing in a well-formed table; anything else is corruption that
      // would make lookups silently wrong.
      if (last !== undefined && compareBytes(last, key) >= 0) {
        throw corrupt(fileName, "keys out of order in block", h.offset);
      }
      last = key;
      out.push({ key, value });
    });
  }
  return out;
}

const utf8 = new TextDecoder();

/**
 * Reads a table into a map from UTF-8 decoded key to value, in key order (see
 * {@link readTable} for the checks). Keys that are not valid UTF-8 decode with U+FFFD
 * replacement characters.
 */
export function readTableMap(bytes: Uint8Array, fileName: string): Map<string, Uint8Array> {
  const map = new Map<string, Uint8Array>();
  for (const { key, value } of readTable(bytes, fileName)) map.set(utf8.decode(key), value);
  return map;
}

// ---------------------------------------------------------------------------------------------
// Writer (table_builder.cc, block_builder.cc), without compression as TensorFlow's checkpoint
// writer uses it.

/** Builds one block with prefix-compressed keys and restart points (block_builder.cc). */
class BlockBuilder {
  readonly #out = new ByteWriter(4096);
  #restarts: number[] = [0];
  #counter = 0;
  #last: Uint8Array = new Uint8Array(0);
  #empty = true;

  constructor(readonly restartInterval: number) {}

  get empty(): boolean {
    return this.#empty;
  }

  /** The block's size if finished now. */
  sizeEstimate(): number {
    return this.#out.length + this.#restarts.length * 4 + 4;
  }

  add(key: Uint8Array, value: Uint8Array): void {
    let shared = 0;
    if (this.#counter < this.restartInterval) {
      const n = Math.min(this.#last.length, key.length);
      while (shared < n && this.#last[shared] === key[shared]) shared++;
    } else {
      // A restart point: the key is stored whole so a reader can start decoding here.
      this.#restarts.push(this.#out.length);
      this.#counter = 0;
    }
    const out = this.#out;
    out.varint(shared);
    out.varint(key.length - shared);
    out.varint(value.length);
    out.bytes(key.subarray(shared));
    out.bytes(value);
    this.#last = key;
    this.#counter++;
    this.#empty = false;
  }

  /** Appends the restart array and returns the block (a view, valid until reset). */
  finish(): Uint8Array {
    for (const r of this.#restarts) this.#out.fixed32(r);
    this.#out.fixed32(this.#restarts.length);
    return this.#out.view();
  }

  reset(): void {
    this.#out.reset();
    this.#restarts = [0];
    this.#counter = 0;
    this.#last = new Uint8Array(0);
    this.#empty = true;
  }
}

/** Shortens `start` to a key in [start, limit) where possible (FindShortestSeparator). */
function shortestSeparator(start: Uint8Array, limit: Uint8Array): Uint8Array {
  const n = Math.min(start.length, limit.length);
  let i = 0;
  while (i < n && start[i] === limit[i]) i++;
  if (i >= n) return start; // one is a prefix of the other
  const b = start[i];
  if (b < 0xff && b + 1 < limit[i]) {
    const out = start.slice(0, i + 1);
    out[i]++;
    return out;
  }
  return start;
}

/** The shortest key ≥ `key` (FindShortSuccessor). */
function shortSuccessor(key: Uint8Array): Uint8Array {
  for (let i = 0; i < key.length; i++) {
    if (key[i] !== 0xff) {
      const out = key.slice(0, i + 1);
      out[i]++;
      return out;
    }
  }
  return key;
}

const utf8Encoder = new TextEncoder();

/**
 * Writes a table in TensorFlow's layout (uncompressed blocks, CRCs, empty metaindex block,
 * index block with restart interval 1, footer). String keys are UTF-8 encoded. Keys must be
 * strictly increasing bytewise, else INVALID_ARGUMENT.
 *
 * @param entries key/value pairs in key order
 * @param options block size and restart interval
 * @returns the file bytes
 */
export function writeTable(
  entries: Iterable<readonly [Uint8Array | string, Uint8Array]>,
  options: TableWriterOptions = {},
): Uint8Array {
  const blockSize = options.blockSize ?? 262144;
  const restartInterval = options.restartInterval ?? 16;
  if (!(restartInterval >= 1) || !(blockSize >= 1)) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot write table: bad options (blockSize ${blockSize}, restartInterval ${restartInterval})`,
    );
  }
  const file = new ByteWriter(4096);
  const data = new BlockBuilder(restartInterval);
  const index = new BlockBuilder(1);
  let last: Uint8Array | undefined;
  let pending: BlockHandle | undefined; // handle of a flushed block awaiting its index entry

  const writeBlock = (block: BlockBuilder): BlockHandle => {
    const contents = block.finish();
    const handle = { offset: file.length, size: contents.length };
    file.bytes(contents);
    // The CRC covers the contents and the type byte.
    const crc = crc32c(TYPE_NONE, crc32c(contents));
    file.byte(NO_COMPRESSION);
    file.fixed32(maskCrc(crc));
    block.reset();
    return handle;
  };
  const flush = () => {
    if (data.empty) return;
    pending = writeBlock(data);
  };
  const handleBytes = (h: BlockHandle): Uint8Array => {
    const w = new ByteWriter(20);
    w.varint(h.offset);
    w.varint(h.size);
    return w.view();
  };

  for (const [k, value] of entries) {
    const key = typeof k === "string" ? utf8Encoder.encode(k) : k;
    if (last !== undefined) {
      if (compareBytes(last, key) >= 0) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Cannot write table: keys are not strictly increasing at key "${utf8.decode(key)}"`,
        );
      }
      // An entry twice the block size or more gets a block of its own.
      if (key.length + value.length >= 2 * blockSize) flush();
    }
    if (pending) {
      index.add(shortestSeparator(last!, key), handleBytes(pending));
      pending = undefined;
    }
    last = key;
    data.add(key, value);
    if (data.sizeEstimate() >= blockSize) flush();
  }
  flush();
  const metaHandle = writeBlock(new BlockBuilder(restartInterval));
  if (pending) {
    index.add(shortSuccessor(last!), handleBytes(pending));
    pending = undefined;
  }
  const indexHandle = writeBlock(index);

  const footerAt = file.length;
  file.varint(metaHandle.offset);
  file.varint(metaHandle.size);
  file.varint(indexHandle.offset);
  file.varint(indexHandle.size);
  file.zeros(footerAt + FOOTER_LENGTH - 8 - file.length);
  file.fixed32(MAGIC_LO);
  file.fixed32(MAGIC_HI);
  return file.view().slice();
}
