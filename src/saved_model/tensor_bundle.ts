/**
 * The TensorBundle (V2 checkpoint) format of a SavedModel's `variables/` directory
 * (`tensorflow/core/util/tensor_bundle/tensor_bundle.cc`).
 *
 * - `<prefix>.index` is a table (see table.ts): under the empty key a `BundleHeaderProto`
 *   (num_shards, endianness, version), under each tensor name a `BundleEntryProto` (dtype, shape,
 *   shard_id, offset, size, masked crc32c, slices).
 * - `<prefix>.data-%05d-of-%05d` hold the tensor bytes at `[offset, offset + size)`.
 * - Numeric and bool tensors are their raw little-endian bytes; the entry's CRC32C covers them.
 * - A DT_STRING tensor is: the varint64 length of every element, a fixed32 masked CRC32C of the
 *   lengths, then the element bytes. The lengths CRC is taken over each length as a
 *   little-endian uint32 (uint64 for lengths above 2^32-1), not over the varints; the entry's
 *   CRC32C continues that same CRC over the 4 stored checksum bytes and then the element bytes.
 *
 * Partitioned (sliced) variables and DT_VARIANT tensors are not supported (UNIMPLEMENTED).
 *
 * @module
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { decodeBinary } from "../proto/binary.ts";
import {
  type BundleEntryProto,
  BundleEntryProtoSchema,
  type BundleHeaderProto,
  BundleHeaderProto_Endianness,
  BundleHeaderProtoSchema,
} from "../proto/gen/tensorflow/core/protobuf/tensor_bundle_pb.ts";
import { Code, ServingError } from "../errors.ts";
import {
  baseType,
  DataType,
  dtypeName,
  elementBytes,
  fromBytes,
  isNumeric,
  type NumericArray,
  toBytes,
} from "../tensor/dtype.ts";
import { shapeString, sizeOf, Tensor } from "../tensor/tensor.ts";
import { shapeToProto } from "../tensor/tensor_proto.ts";
import { crc32c, maskCrc, unmaskCrc } from "./crc32c.ts";
import {
  ByteWriter,
  compareBytes,
  readFixed32,
  readTableMap,
  readVarint,
  writeTable,
} from "./table.ts";

/** The format version this reader and writer implement (`kTensorBundleVersion`). */
export const TENSOR_BUNDLE_VERSION = 1;
/** The oldest producer version accepted (`kTensorBundleMinProducer`). */
const MIN_PRODUCER = 0;
/** The key of the header entry (`kHeaderEntryKey`). */
const HEADER_KEY = "";

/** The index file of a bundle: `<prefix>.index` (naming.cc MetaFilename). */
export function indexFileName(prefix: string): string {
  return `${prefix}.index`;
}

/** The data file of one shard: `<prefix>.data-00000-of-00001` (naming.cc DataFilename). */
export function dataFileName(prefix: string, shard: number, numShards: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `${prefix}.data-${pad(shard)}-of-${pad(numShards)}`;
}

/** Maps a Deno file-system error to a ServingError naming the file. */
function fileError(e: unknown, path: string, what: string): ServingError {
  if (e instanceof ServingError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  if (e instanceof Deno.errors.NotFound) {
    return new ServingError(Code.NOT_FOUND, `${what} ${path} not found`, { cause: e });
  }
  if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    return new ServingError(Code.PERMISSION_DENIED, `Cannot read ${path}: ${detail}`, {
      cause: e,
    });
  }
  return new ServingError(Code.UNKNOWN, `Cannot read ${path}: ${detail}`, { cause: e });
}

/** Where one tensor's bytes live and how to decode them, checked before any data is read. */
interface ReadPlan {
  readonly name: string;
  readonly entry: BundleEntryProto;
  readonly dtype: DataType;
  readonly shape: number[];
  readonly file: string;
  readonly shard: number;
  readonly offset: number;
  readonly size: number;
}

/**
 * A read-only view of a TensorBundle: the parsed index, and lazily opened shard files.
 *
 * Open it with {@link TensorBundle.open} (async) or {@link TensorBundle.openSync} (for the
 * synchronous RestoreV2 kernel), read tensors with {@link TensorBundle.read} /
 * {@link TensorBundle.readSync}, and {@link TensorBundle.close} it to release the shard file
 * handles (also via `using`). Concurrent async reads are safe (they are queued per shard); do
 * not interleave `readSync` with async reads still in flight on the same bundle, as both seek the
 * same file handle (a mix-up would surface as a checksum error).
 *
 * @example
 * ```ts
 * using bundle = await TensorBundle.open(`${exportDir}/variables/variables`);
 * const a = await bundle.read("a"); // Tensor DT_FLOAT []
 * ```
 */
export class TensorBundle {
  /** The path of the index file. */
  readonly indexFile: string;
  /** The parsed header. */
  readonly header: BundleHeaderProto;
  /** Raw entry protos by tensor name, header excluded, in key order. */
  readonly #raw: Map<string, Uint8Array>;
  /** Parsed entries, filled on first use. */
  readonly #entries = new Map<string, BundleEntryProto>();
  /** Open shard files by shard id. */
  readonly #shards = new Map<number, Deno.FsFile>();
  /** Serialises async reads per shard: each read seeks the shared handle. */
  readonly #queues = new Map<number, Promise<unknown>>();
  #closed = false;

  private constructor(readonly prefix: string, index: Uint8Array) {
    this.indexFile = indexFileName(prefix);
    const raw = readTableMap(index, this.indexFile);
    const headerBytes = raw.get(HEADER_KEY);
    if (headerBytes === undefined) {
      throw this.#corrupt("failed to seek to header entry");
    }
    raw.delete(HEADER_KEY);
    this.#raw = raw;
    try {
      this.header = decodeBinary(BundleHeaderProtoSchema, headerBytes);
    } catch (e) {
      throw this.#corrupt("unable to parse header", e);
    }
    if (this.header.endianness !== BundleHeaderProto_Endianness.LITTLE) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Cannot read checkpoint ${this.indexFile}: it is big-endian; only little-endian ` +
          `tensor bundles are supported`,
      );
    }
    if (!(this.header.numShards >= 1)) {
      throw this.#corrupt(`bad number of shards ${this.header.numShards}`);
    }
    this.#checkVersion();
  }

  /** Opens the bundle at `prefix` (such as `<export_dir>/variables/variables`). */
  static async open(prefix: string): Promise<TensorBundle> {
    const path = indexFileName(prefix);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw fileError(e, path, "Checkpoint index file");
    }
    return new TensorBundle(prefix, bytes);
  }

  /** Like {@link TensorBundle.open}, with synchronous file reads. */
  static openSync(prefix: string): TensorBundle {
    const path = indexFileName(prefix);
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(path);
    } catch (e) {
      throw fileError(e, path, "Checkpoint index file");
    }
    return new TensorBundle(prefix, bytes);
  }

  /** Builds a bundle view from index bytes already in memory (data files are still read). */
  static fromIndex(prefix: string, index: Uint8Array): TensorBundle {
    return new TensorBundle(prefix, index);
  }

  /** Number of data files. */
  get numShards(): number {
    return this.header.numShards;
  }

  /** Tensor names, in key (bytewise UTF-8) order; the header entry is not listed. */
  keys(): string[] {
    return [...this.#raw.keys()];
  }

  /** True if the bundle has a tensor called `name`. */
  has(name: string): boolean {
    return this.#raw.has(name);
  }

  /**
   * The entry of tensor `name`. Fails with NOT_FOUND (`Key <name> not found in checkpoint`) for
   * an unknown name and DATA_LOSS for an unparseable entry. The shape is not validated here
   * (see {@link TensorBundle.dtypeAndShape}).
   */
  entry(name: string): BundleEntryProto {
    const cached = this.#entries.get(name);
    if (cached) return cached;
    const raw = this.#raw.get(name);
    if (raw === undefined) {
      throw new ServingError(Code.NOT_FOUND, `Key ${name} not found in checkpoint`);
    }
    let entry: BundleEntryProto;
    try {
      entry = decodeBinary(BundleEntryProtoSchema, raw);
    } catch (e) {
      throw new ServingError(
        Code.DATA_LOSS,
        `Entry for key ${name} not parseable in ${this.indexFile}`,
        { cause: e },
      );
    }
    this.#entries.set(name, entry);
    return entry;
  }

  /** The stored dtype and shape of tensor `name`, without reading its data. */
  dtypeAndShape(name: string): { dtype: DataType; shape: number[] } {
    const entry = this.entry(name);
    return { dtype: entry.dtype, shape: this.#shape(name, entry) };
  }

  /** Reads tensor `name`, verifying its CRC32C. */
  async read(name: string): Promise<Tensor> {
    const plan = this.#plan(name);
    if (plan.size === 0) return this.#decode(plan, new Uint8Array(0));
    const prev = this.#queues.get(plan.shard) ?? Promise.resolve();
    const job = prev.catch(() => {}).then(async () => {
      const file = await this.#shardFile(plan);
      return await readRange(file, plan);
    });
    this.#queues.set(plan.shard, job);
    return this.#decode(plan, await job);
  }

  /** Like {@link TensorBundle.read}, with synchronous file reads. */
  readSync(name: string): Tensor {
    const plan = this.#plan(name);
    if (plan.size === 0) return this.#decode(plan, new Uint8Array(0));
    return this.#decode(plan, readRangeSync(this.#shardFileSync(plan), plan));
  }

  /** Closes the shard files opened so far. Reading after closing fails. */
  close(): void {
    this.#closed = true;
    for (const f of this.#shards.values()) {
      try {
        f.close();
      } catch {
        // Already closed: nothing to release.
      }
    }
    this.#shards.clear();
  }

  /** Same as {@link TensorBundle.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #corrupt(detail: string, cause?: unknown): ServingError {
    const why = cause instanceof Error ? `: ${cause.message}` : "";
    return new ServingError(
      Code.DATA_LOSS,
      `Unable to read file (${this.indexFile}). Perhaps the file is corrupt or was produced by ` +
        `a newer version of TensorFlow with format changes (${detail})${why}`,
      { cause },
    );
  }

  /** versions.cc CheckVersions(version, kTensorBundleVersion, kTensorBundleMinProducer). */
  #checkVersion(): void {
    const v = this.header.version;
    const producer = v?.producer ?? 0;
    const minConsumer = v?.minConsumer ?? 0;
    const fail = (detail: string) =>
      new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot read checkpoint ${this.indexFile}: ${detail}`,
      );
    if (producer < MIN_PRODUCER) {
      throw fail(
        `Checkpoint producer version ${producer} below min producer ${MIN_PRODUCER}. ` +
          `Please regenerate your checkpoint.`,
      );
    }
    if (minConsumer > TENSOR_BUNDLE_VERSION) {
      throw fail(
        `Checkpoint min consumer version ${minConsumer} above current version ` +
          `${TENSOR_BUNDLE_VERSION}. Please upgrade.`,
      );
    }
    if (v?.badConsumers.includes(TENSOR_BUNDLE_VERSION)) {
      throw fail(`Checkpoint disallows consumer version ${TENSOR_BUNDLE_VERSION}.`);
    }
  }

  #shape(name: string, entry: BundleEntryProto): number[] {
    const s = entry.shape;
    const bad = () =>
      new ServingError(
        Code.DATA_LOSS,
        `Invalid tensor shape: ${name} in ${this.indexFile}: ` +
          (s?.unknownRank ? "unknown rank" : `[${s?.dim.map((d) => d.size).join(",")}]`),
      );
    if (!s) return [];
    if (s.unknownRank) throw bad();
    const shape = s.dim.map((d) => Number(d.size));
    for (const d of shape) if (!Number.isSafeInteger(d) || d < 0) throw bad();
    if (!Number.isSafeInteger(sizeOf(shape))) throw bad();
    return shape;
  }

  /** Validates everything about tensor `name` that can be checked before reading data. */
  #plan(name: string): ReadPlan {
    if (this.#closed) {
      throw new ServingError(
        Code.FAILED_PRECONDITION,
        `Cannot restore ${name}: the bundle ${this.prefix} is closed`,
      );
    }
    const entry = this.entry(name);
    if (entry.slices.length > 0) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Cannot restore ${name}: partitioned (sliced) variables are not supported`,
      );
    }
    const dtype = entry.dtype;
    if (dtype !== DataType.DT_STRING && (!isNumeric(dtype) || baseType(dtype) !== dtype)) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Cannot restore ${name}: ${dtypeName(dtype)} tensors are not supported`,
      );
    }
    const shape = this.#shape(name, entry);
    const n = sizeOf(shape);
    const offset = Number(entry.offset);
    const size = Number(entry.size);
    const shard = entry.shardId;
    if (
      !Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(size) || size < 0 ||
      !Number.isSafeInteger(offset + size)
    ) {
      throw new ServingError(
        Code.DATA_LOSS,
        `Invalid offset or size in bundle entry: key ${name}; offset ${entry.offset}; size ` +
          `${entry.size} (in ${this.indexFile})`,
      );
    }
    if (dtype !== DataType.DT_STRING) {
      const expected = n * elementBytes(dtype);
      if (size !== expected) {
        throw new ServingError(
          Code.DATA_LOSS,
          `Invalid size in bundle entry: key ${name}; stored size ${size}; expected size ` +
            `${expected} (in ${this.indexFile})`,
        );
      }
    } else if (size !== 0 && size < n + 4) {
      // At least one varint byte per element and the 4-byte lengths checksum.
      throw new ServingError(
        Code.DATA_LOSS,
        `Invalid size in bundle entry: key ${name}; stored size ${size}; expected size is at ` +
          `least ${n + 4} (in ${this.indexFile})`,
      );
    }
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.numShards) {
      throw new ServingError(
        Code.DATA_LOSS,
        `Invalid shard ${shard} in bundle entry: key ${name} (the bundle has ${this.numShards} ` +
          `shards; in ${this.indexFile})`,
      );
    }
    const file = dataFileName(this.prefix, shard, this.numShards);
    return { name, entry, dtype, shape, file, shard, offset, size };
  }

  async #shardFile(plan: ReadPlan): Promise<Deno.FsFile> {
    const open = this.#shards.get(plan.shard);
    if (open) return open;
    let f: Deno.FsFile;
    try {
      f = await Deno.open(plan.file, { read: true });
    } catch (e) {
      throw fileError(e, plan.file, `Cannot restore ${plan.name}: checkpoint data file`);
    }
    // Another read may have opened it meanwhile; keep one handle.
    const raced = this.#shards.get(plan.shard);
    if (raced) {
      f.close();
      return raced;
    }
    this.#shards.set(plan.shard, f);
    return f;
  }

  #shardFileSync(plan: ReadPlan): Deno.FsFile {
    const open = this.#shards.get(plan.shard);
    if (open) return open;
    let f: Deno.FsFile;
    try {
      f = Deno.openSync(plan.file, { read: true });
    } catch (e) {
      throw fileError(e, plan.file, `Cannot restore ${plan.name}: checkpoint data file`);
    }
    this.#shards.set(plan.shard, f);
    return f;
  }

  /** Checks the CRC and builds the tensor from its stored bytes (owned by the caller). */
  #decode(plan: ReadPlan, bytes: Uint8Array): Tensor {
    const { name, dtype, shape, entry } = plan;
    const n = sizeOf(shape);
    let actual: number;
    let tensor: Tensor;
    if (dtype === DataType.DT_STRING) {
      const r = decodeStrings(bytes, n, plan);
      actual = r.crc;
      tensor = new Tensor(dtype, shape, r.strings);
    } else {
      actual = crc32c(bytes);
      // The bytes are a fresh buffer starting at offset 0, so this is an aligned view.
      tensor = new Tensor(dtype, shape, fromBytes(dtype, bytes, n));
    }
    const stored = unmaskCrc(entry.crc32c);
    if (stored !== actual) {
      throw new ServingError(
        Code.DATA_LOSS,
        `Cannot restore ${name} from ${plan.file} (${plan.size} bytes at offset ${plan.offset}): ` +
          `checksum does not match: stored ${hex(stored)} vs. calculated on the restored bytes ` +
          `${hex(actual)}`,
      );
    }
    return tensor;
  }
}

function hex(v: number): string {
  return `0x${v.toString(16).padStart(8, "0")}`;
}

function truncated(plan: ReadPlan, got: number): ServingError {
  return new ServingError(
    Code.DATA_LOSS,
    `Cannot restore ${plan.name} from ${plan.file}: the file ends at byte ${plan.offset + got}, ` +
      `before the end of the tensor's ${plan.size} bytes at offset ${plan.offset}`,
  );
}

/**
 * Fails before allocating when the entry's range runs past the end of the file: a corrupt
 * index could otherwise ask for a buffer of any size.
 */
function checkRange(plan: ReadPlan, fileSize: number): void {
  if (plan.offset + plan.size > fileSize) {
    throw truncated(plan, Math.max(0, fileSize - plan.offset));
  }
}

async function readRange(file: Deno.FsFile, plan: ReadPlan): Promise<Uint8Array> {
  checkRange(plan, (await file.stat()).size);
  const buf = new Uint8Array(plan.size);
  try {
    await file.seek(plan.offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < buf.length) {
      const n = await file.read(buf.subarray(got));
      if (n === null) throw truncated(plan, got);
      got += n;
    }
  } catch (e) {
    throw fileError(e, plan.file, "Checkpoint data file");
  }
  return buf;
}

function readRangeSync(file: Deno.FsFile, plan: ReadPlan): Uint8Array {
  checkRange(plan, file.statSync().size);
  const buf = new Uint8Array(plan.size);
  try {
    file.seekSync(plan.offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < buf.length) {
      const n = file.readSync(buf.subarray(got));
      if (n === null) throw truncated(plan, got);
      got += n;
    }
  } catch (e) {
    throw fileError(e, plan.file, "Checkpoint data file");
  }
  return buf;
}

/** Scratch for CRC-ing lengths as fixed-width integers without allocating per element. */
const lengthScratch = new Uint8Array(8);
const lengthView = new DataView(lengthScratch.buffer);

/** Extends `crc` by a string length as TensorFlow does: uint32 LE, or uint64 LE above 2^32-1. */
function crcLength(crc: number, length: number): number {
  if (length <= 0xffffffff) {
    lengthView.setUint32(0, length, true);
    return crc32c(lengthScratch.subarray(0, 4), crc);
  }
  lengthView.setBigUint64(0, BigInt(length), true);
  return crc32c(lengthScratch, crc);
}

/**
 * Decodes a DT_STRING tensor's stored bytes (tensor_bundle.cc ReadStringTensor) and returns the
 * CRC to compare with the entry's. Elements are views into `bytes`.
 */
function decodeStrings(
  bytes: Uint8Array,
  n: number,
  plan: ReadPlan,
): { strings: Uint8Array[]; crc: number } {
  const strings: Uint8Array[] = new Array(n);
  // TensorFlow writes at least the lengths checksum; an empty record means empty strings.
  if (bytes.length === 0) {
    for (let i = 0; i < n; i++) strings[i] = new Uint8Array(0);
    return { strings, crc: 0 };
  }
  const bad = (detail: string) =>
    new ServingError(Code.DATA_LOSS, `Cannot restore ${plan.name} from ${plan.file}: ${detail}`);
  const lengths = new Array<number>(n);
  let crc = 0;
  let p = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const v = readVarint(bytes, p, bytes.length);
    if (!v) throw bad(`string lengths longer than the stored ${bytes.length} bytes`);
    lengths[i] = v.value;
    total += v.value;
    crc = crcLength(crc, v.value);
    p = v.next;
  }
  if (p + 4 > bytes.length) throw bad("string lengths longer than expected");
  const stored = unmaskCrc(readFixed32(bytes, p));
  if (stored !== crc) {
    throw bad(
      `the length checksum does not match: expected ${hex(stored)} but actual is ${hex(crc)}`,
    );
  }
  crc = crc32c(bytes.subarray(p, p + 4), crc);
  p += 4;
  if (p + total !== bytes.length) {
    throw bad(
      `the string bytes (${total}) do not fill the stored ${bytes.length - p} bytes after the ` +
        `lengths`,
    );
  }
  // The element bytes are contiguous, so one CRC pass covers them all.
  crc = crc32c(bytes.subarray(p), crc);
  for (let i = 0; i < n; i++) {
    strings[i] = bytes.subarray(p, p + lengths[i]);
    p += lengths[i];
  }
  return { strings, crc };
}

// ---------------------------------------------------------------------------------------------
// Writer.

/** The two files of a single-shard bundle. */
export interface EncodedBundle {
  /** Contents of `<prefix>.index`. */
  readonly index: Uint8Array;
  /** Contents of `<prefix>.data-00000-of-00001`. */
  readonly data: Uint8Array;
}

const utf8 = new TextEncoder();

/** Appends a DT_STRING tensor in the bundle layout; returns its (unmasked) CRC32C. */
function encodeStrings(out: ByteWriter, strings: readonly Uint8Array[]): number {
  let crc = 0;
  for (const s of strings) {
    out.varint(s.length);
    crc = crcLength(crc, s.length);
  }
  const lengthCrc = maskCrc(crc);
  const start = out.length;
  out.fixed32(lengthCrc);
  crc = crc32c(out.view().subarray(start, start + 4), crc);
  for (const s of strings) {
    out.bytes(s);
    crc = crc32c(s, crc);
  }
  return crc;
}

/**
 * Encodes tensors as a single-shard bundle, as TensorFlow's BundleWriter does: data in the
 * order given, with no padding; index entries in key order after a header with num_shards 1,
 * little-endian, version 1. Numeric, bool and DT_STRING tensors are supported; an empty or
 * duplicate name, or another dtype, is INVALID_ARGUMENT.
 */
export function encodeBundle(tensors: Iterable<readonly [string, Tensor]>): EncodedBundle {
  const data = new ByteWriter(4096);
  const rows: [Uint8Array, Uint8Array][] = [];
  const seen = new Set<string>();
  for (const [name, t] of tensors) {
    const fail = (detail: string) =>
      new ServingError(Code.INVALID_ARGUMENT, `Cannot save ${JSON.stringify(name)}: ${detail}`);
    if (name === HEADER_KEY) throw fail("the empty name is reserved for the header");
    if (seen.has(name)) throw fail("duplicate name");
    seen.add(name);
    const offset = data.length;
    let crc: number;
    const n = sizeOf(t.shape);
    if (t.dtype === DataType.DT_STRING) {
      const s = t.strings;
      if (s.length !== n) throw fail(`${s.length} strings for shape ${shapeString(t.shape)}`);
      crc = encodeStrings(data, s);
    } else if (isNumeric(t.dtype) && baseType(t.dtype) === t.dtype) {
      const bytes = toBytes(t.data as NumericArray);
      if (bytes.length !== n * elementBytes(t.dtype)) {
        throw fail(`${bytes.length} bytes of storage for shape ${shapeString(t.shape)}`);
      }
      data.bytes(bytes);
      crc = crc32c(bytes);
    } else {
      throw fail(`${dtypeName(t.dtype)} tensors are not supported`);
    }
    const entry = create(BundleEntryProtoSchema, {
      dtype: t.dtype,
      shape: shapeToProto(t.shape),
      shardId: 0,
      offset: BigInt(offset),
      size: BigInt(data.length - offset),
      crc32c: maskCrc(crc),
    });
    rows.push([utf8.encode(name), toBinary(BundleEntryProtoSchema, entry)]);
  }
  // The table wants keys in bytewise order (UTF-8 order, which is not JS string order).
  rows.sort((a, b) => compareBytes(a[0], b[0]));
  const header = create(BundleHeaderProtoSchema, {
    numShards: 1,
    endianness: BundleHeaderProto_Endianness.LITTLE,
    version: { producer: TENSOR_BUNDLE_VERSION, minConsumer: 0 },
  });
  rows.unshift([new Uint8Array(0), toBinary(BundleHeaderProtoSchema, header)]);
  return { index: writeTable(rows), data: data.view().slice() };
}

function parentDir(path: string): string | undefined {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : undefined;
}

/**
 * Writes tensors as a single-shard bundle at `prefix`: `<prefix>.data-00000-of-00001`, then
 * `<prefix>.index` (so a present index means complete data), creating the directory.
 */
export async function writeBundle(
  prefix: string,
  tensors: Iterable<readonly [string, Tensor]>,
): Promise<void> {
  const { index, data } = encodeBundle(tensors);
  const dir = parentDir(prefix);
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(dataFileName(prefix, 0, 1), data);
  await Deno.writeFile(indexFileName(prefix), index);
}

/** Like {@link writeBundle}, with synchronous file writes. */
export function writeBundleSync(
  prefix: string,
  tensors: Iterable<readonly [string, Tensor]>,
): void {
  const { index, data } = encodeBundle(tensors);
  const dir = parentDir(prefix);
  if (dir) Deno.mkdirSync(dir, { recursive: true });
  Deno.writeFileSync(dataFileName(prefix, 0, 1), data);
  Deno.writeFileSync(indexFileName(prefix), index);
}
