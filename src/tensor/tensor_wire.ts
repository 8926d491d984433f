/**
 * TensorProto wire bytes ⇄ Tensor without protobuf message objects, for the request hot path
 * (ARCHITECTURE.md practice 15).
 *
 * Reading: {@link readTensorProto} turns the plain form of a TensorProto (each packed field at
 * most once, the shape at most once, no unknown field, no unpacked numbers) into a
 * {@link TensorProtoValues} whose repeated numbers are typed arrays over the wire bytes where they
 * are aligned (else one copy), and {@link tensorFromProto} then applies TensorFlow's rules, the
 * shape and size checks and the decode budget exactly as it does for a decoded message. Anything
 * else throws {@link NOT_SIMPLE}: the caller then decodes the bytes with the general decoder
 * (src/proto/binary.ts), so its errors and merge semantics stay the only ones. The memory cost
 * that decoder would estimate for the same bytes is charged as the bytes are read
 * ({@link CostMeter}), so a request it would refuse is never accepted here.
 *
 * Writing: {@link tensorProtoSize} and {@link writeTensorProto} produce the bytes `toBinary` gives
 * for `tensorToProto(t, useContent)` — same fields, same order, packed — straight from the typed
 * storage, for the types {@link directlyEncodable} accepts. One difference, in NaNs only: float
 * values are copied bit for bit here, as TensorFlow's own AsProtoField copies them, where the
 * message path's JS doubles quiet a signalling NaN and make a NaN in first position canonical.
 *
 * @module
 */
import { COST_BIGINT, COST_BYTES, COST_SLOT, COST_STRING, messageCost } from "../proto/binary.ts";
import { TensorProtoSchema } from "../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import {
  TensorShapeProto_DimSchema,
  TensorShapeProtoSchema,
} from "../proto/gen/tensorflow/core/framework/tensor_shape_pb.ts";
import {
  int32Size,
  NOT_SIMPLE,
  utf8,
  varint32Size,
  varint64Size,
  WireScanner,
  writeInt32,
  writeVarint32,
  writeVarint64,
} from "../proto/wire_scan.ts";
import { DataType } from "./dtype.ts";
import type { Tensor } from "./tensor.ts";
import type { TensorProtoValues } from "./tensor_proto.ts";

/**
 * The memory estimate of src/proto/binary.ts for what is being read, against its allowance:
 * over it, reading gives up ({@link NOT_SIMPLE}) so the general decoder refuses the request with
 * its own words.
 */
export class CostMeter {
  /** Charged so far. */
  cost = 0;

  /** @param maxCost the allowance (`messageDecodeAllowance` of the request) */
  constructor(readonly maxCost: number) {}

  /** Adds `n`, giving up over the allowance. */
  charge(n: number): void {
    this.cost += n;
    if (this.cost > this.maxCost) throw NOT_SIMPLE;
  }
}

const TENSOR_COST = messageCost(TensorProtoSchema);
const SHAPE_COST = messageCost(TensorShapeProtoSchema);
const DIM_COST = messageCost(TensorShapeProto_DimSchema);

const EMPTY_BYTES = new Uint8Array(0);
const EMPTY_NUMBERS = new Float32Array(0);
const EMPTY_BIGINTS = new BigInt64Array(0);
const EMPTY_STRINGS: readonly Uint8Array[] = Object.freeze([]);

/** A TensorProto read from the wire (mutable while it is read). */
interface WireTensor {
  dtype: DataType;
  tensorShape: { dim: { readonly size: bigint }[]; unknownRank: boolean } | undefined;
  tensorContent: Uint8Array;
  halfVal: ArrayLike<number>;
  floatVal: ArrayLike<number>;
  doubleVal: ArrayLike<number>;
  intVal: ArrayLike<number>;
  stringVal: Uint8Array[] | readonly Uint8Array[];
  scomplexVal: ArrayLike<number>;
  int64Val: ArrayLike<bigint>;
  boolVal: ArrayLike<number>;
  dcomplexVal: ArrayLike<number>;
  uint32Val: ArrayLike<number>;
  uint64Val: ArrayLike<bigint>;
}

/** Tags (`field << 3 | wire type`) of the TensorProto fields read here. */
const TAG_DTYPE = (1 << 3) | 0;
const TAG_SHAPE = (2 << 3) | 2;
const TAG_VERSION = (3 << 3) | 0;
const TAG_CONTENT = (4 << 3) | 2;
const TAG_FLOAT = (5 << 3) | 2;
const TAG_DOUBLE = (6 << 3) | 2;
const TAG_INT = (7 << 3) | 2;
const TAG_STRING = (8 << 3) | 2;
const TAG_SCOMPLEX = (9 << 3) | 2;
const TAG_INT64 = (10 << 3) | 2;
const TAG_BOOL = (11 << 3) | 2;
const TAG_DCOMPLEX = (12 << 3) | 2;
const TAG_HALF = (13 << 3) | 2;
const TAG_UINT32 = (16 << 3) | 2;
const TAG_UINT64 = (17 << 3) | 2;

/**
 * Reads the plain form of a TensorProto occupying `[s.pos, end)`.
 *
 * @param s the scanner, at the message's first byte; left at `end`
 * @param end the message's end
 * @param meter charged as src/proto/binary.ts would charge (including the message itself)
 * @returns a view for {@link tensorFromProto}; typed arrays may view `s.buf`
 * @throws NotSimpleError for anything but the plain form (the caller decodes generally)
 */
export function readTensorProto(s: WireScanner, end: number, meter: CostMeter): TensorProtoValues {
  meter.charge(TENSOR_COST);
  const t: WireTensor = {
    dtype: DataType.DT_INVALID,
    tensorShape: undefined,
    tensorContent: EMPTY_BYTES,
    halfVal: EMPTY_NUMBERS,
    floatVal: EMPTY_NUMBERS,
    doubleVal: EMPTY_NUMBERS,
    intVal: EMPTY_NUMBERS,
    stringVal: EMPTY_STRINGS,
    scomplexVal: EMPTY_NUMBERS,
    int64Val: EMPTY_BIGINTS,
    boolVal: EMPTY_NUMBERS,
    dcomplexVal: EMPTY_NUMBERS,
    uint32Val: EMPTY_NUMBERS,
    uint64Val: EMPTY_BIGINTS,
  };
  const buf = s.buf;
  while (s.pos < end) {
    const tag = s.tag(end);
    switch (tag) {
      case TAG_DTYPE:
        // An enum is read as an int32: a number that is no DataType is refused later, in words.
        t.dtype = s.varint32(end) | 0;
        break;
      case TAG_VERSION:
        s.skipVarint(end);
        break;
      case TAG_SHAPE: {
        if (t.tensorShape !== undefined) throw NOT_SIMPLE; // A second one merges: rare.
        const len = s.length(end);
        t.tensorShape = readShape(s, s.pos + len, meter);
        break;
      }
      case TAG_CONTENT: {
        const len = s.length(end);
        meter.charge(COST_BYTES);
        t.tensorContent = buf.subarray(s.pos, s.pos + len);
        s.pos += len;
        break;
      }
      case TAG_STRING: {
        const len = s.length(end);
        meter.charge(COST_SLOT + COST_BYTES);
        if (t.stringVal === EMPTY_STRINGS) t.stringVal = [];
        (t.stringVal as Uint8Array[]).push(buf.subarray(s.pos, s.pos + len));
        s.pos += len;
        break;
      }
      case TAG_FLOAT:
        if (t.floatVal !== EMPTY_NUMBERS) throw NOT_SIMPLE;
        t.floatVal = fixedRun(s, end, 4, meter);
        break;
      case TAG_SCOMPLEX:
        if (t.scomplexVal !== EMPTY_NUMBERS) throw NOT_SIMPLE;
        t.scomplexVal = fixedRun(s, end, 4, meter);
        break;
      case TAG_DOUBLE:
        if (t.doubleVal !== EMPTY_NUMBERS) throw NOT_SIMPLE;
        t.doubleVal = fixedRun(s, end, 8, meter);
        break;
      case TAG_DCOMPLEX:
        if (t.dcomplexVal !== EMPTY_NUMBERS) throw NOT_SIMPLE;
        t.dcomplexVal = fixedRun(s, end, 8, meter);
        break;
      case TAG_INT:
        if (t.intVal !== EMPTY_NUMBERS) throw NOT_SIMPLE;
        t.intVal = varintRun(s, end, meter, COST_SLOT, readInt32s);
        break;
      case TAG_HALF:
        if (t.halfVal !== EMPTY_NUMBERS) throw NOT_SIMPLE;
        t.halfVal = varintRun(s, end, meter, COST_SLOT, readInt32s);
        break;
      case TAG_UINT32:
        if (t.uint32Val !== EMPTY_NUMBERS) throw NOT_SIMPLE;
        t.uint32Val = varintRun(s, end, meter, COST_SLOT, readUint32s);
        break;
      case TAG_BOOL:
        if (t.boolVal !== EMPTY_NUMBERS) throw NOT_SIMPLE;
        t.boolVal = varintRun(s, end, meter, COST_SLOT, readBools);
        break;
      case TAG_INT64:
        if (t.int64Val !== EMPTY_BIGINTS) throw NOT_SIMPLE;
        t.int64Val = varintRun(s, end, meter, COST_SLOT + COST_BIGINT, readInt64s);
        break;
      case TAG_UINT64:
        if (t.uint64Val !== EMPTY_BIGINTS) throw NOT_SIMPLE;
        t.uint64Val = varintRun(s, end, meter, COST_SLOT + COST_BIGINT, readUint64s);
        break;
      default:
        // Unknown fields, unpacked numbers, resource/variant/float8 values: the general decoder.
        throw NOT_SIMPLE;
    }
  }
  if (s.pos !== end) throw NOT_SIMPLE;
  return t;
}

/** Dims of the sizes most requests use, shared (a shape is only read). */
const SMALL_DIM: readonly { readonly size: bigint }[] = Array.from(
  { length: 1025 },
  (_, i) => Object.freeze({ size: BigInt(i) }),
);

/** A TensorShapeProto in `[s.pos, end)`. */
function readShape(
  s: WireScanner,
  end: number,
  meter: CostMeter,
): { dim: { readonly size: bigint }[]; unknownRank: boolean } {
  meter.charge(SHAPE_COST);
  const dim: { readonly size: bigint }[] = [];
  let unknownRank = false;
  while (s.pos < end) {
    const tag = s.tag(end);
    if (tag === ((2 << 3) | 2)) {
      const dimLen = s.length(end);
      const dimEnd = s.pos + dimLen;
      meter.charge(DIM_COST);
      let size = SMALL_DIM[0];
      while (s.pos < dimEnd) {
        const t = s.tag(dimEnd);
        if (t === ((1 << 3) | 0)) {
          const start = s.pos;
          const small = s.varint32(dimEnd);
          if (s.pos - start <= 2 && small < SMALL_DIM.length) size = SMALL_DIM[small];
          else {
            s.pos = start;
            size = { size: s.int64(dimEnd) };
          }
        } else if (t === ((2 << 3) | 2)) {
          // The name is not used, but C++ fails the parse on invalid UTF-8 in it.
          const len = s.length(dimEnd);
          meter.charge(COST_STRING);
          utf8(s.buf, s.pos, s.pos + len);
          s.pos += len;
        } else throw NOT_SIMPLE;
      }
      if (s.pos !== dimEnd) throw NOT_SIMPLE;
      dim.push(size);
    } else if (tag === ((3 << 3) | 0)) {
      // bool: any non-zero varint is true.
      const start = s.pos;
      s.skipVarint(end);
      unknownRank = false;
      for (let p = start; p < s.pos; p++) if ((s.buf[p] & 0x7f) !== 0) unknownRank = true;
    } else throw NOT_SIMPLE;
  }
  if (s.pos !== end) throw NOT_SIMPLE;
  return { dim, unknownRank };
}

/** A packed run of fixed-width little-endian values, viewed in place where aligned. */
function fixedRun(s: WireScanner, end: number, width: 4 | 8, meter: CostMeter): ArrayLike<number> {
  const len = s.length(end);
  if (len % width !== 0) throw NOT_SIMPLE;
  const count = len / width;
  meter.charge(count * COST_SLOT);
  const buf = s.buf;
  const at = buf.byteOffset + s.pos;
  s.pos += len;
  if (at % width === 0) {
    return width === 4
      ? new Float32Array(buf.buffer, at, count)
      : new Float64Array(buf.buffer, at, count);
  }
  // Not aligned: one copy (`buf` may be a Node Buffer, whose slice() is a view).
  const copy = new Uint8Array(len);
  copy.set(buf.subarray(s.pos - len, s.pos));
  return width === 4 ? new Float32Array(copy.buffer) : new Float64Array(copy.buffer);
}

/** Reads `count` varints from `s` into a new array. */
type VarintReader<A> = (s: WireScanner, end: number, count: number) => A;

/** A packed run of varints: counted (and charged as the general decoder does) before reading. */
function varintRun<A>(
  s: WireScanner,
  end: number,
  meter: CostMeter,
  perValue: number,
  read: VarintReader<A>,
): A {
  const len = s.length(end);
  const stop = s.pos + len;
  // The general decoder charges one value per byte before reading the run.
  meter.charge(len * perValue);
  const buf = s.buf;
  let count = 0;
  for (let p = s.pos; p < stop; p++) if (buf[p] < 0x80) count++;
  if (len > 0 && buf[stop - 1] >= 0x80) throw NOT_SIMPLE; // The last varint runs past the run.
  const out = read(s, stop, count);
  if (s.pos !== stop) throw NOT_SIMPLE;
  return out;
}

function readInt32s(s: WireScanner, end: number, count: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = s.varint32(end) | 0;
  return out;
}

function readUint32s(s: WireScanner, end: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = s.varint32(end);
  return out;
}

function readBools(s: WireScanner, end: number, count: number): Uint8Array {
  const out = new Uint8Array(count);
  const buf = s.buf;
  for (let i = 0; i < count; i++) {
    const start = s.pos;
    s.skipVarint(end);
    let v = 0;
    for (let p = start; p < s.pos; p++) v |= buf[p] & 0x7f;
    out[i] = v !== 0 ? 1 : 0;
  }
  return out;
}

function readInt64s(s: WireScanner, end: number, count: number): BigInt64Array {
  const out = new BigInt64Array(count);
  for (let i = 0; i < count; i++) out[i] = s.int64(end);
  return out;
}

function readUint64s(s: WireScanner, end: number, count: number): BigUint64Array {
  const out = new BigUint64Array(count);
  for (let i = 0; i < count; i++) out[i] = s.uint64(end);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** How each type's values are written by `tensorToProto` (AsProtoField). */
const enum Kind {
  F32 = 1,
  F64,
  I32,
  U32,
  I64,
  U64,
  BOOL,
  HALF,
  STRING,
}

interface Layout {
  readonly kind: Kind;
  /** The typed field's number. */
  readonly field: number;
  /** The storage the values must be in. */
  readonly ctor: unknown;
}

const LAYOUT = new Map<DataType, Layout>([
  [DataType.DT_FLOAT, { kind: Kind.F32, field: 5, ctor: Float32Array }],
  [DataType.DT_DOUBLE, { kind: Kind.F64, field: 6, ctor: Float64Array }],
  [DataType.DT_COMPLEX64, { kind: Kind.F32, field: 9, ctor: Float32Array }],
  [DataType.DT_COMPLEX128, { kind: Kind.F64, field: 12, ctor: Float64Array }],
  [DataType.DT_INT64, { kind: Kind.I64, field: 10, ctor: BigInt64Array }],
  [DataType.DT_UINT64, { kind: Kind.U64, field: 17, ctor: BigUint64Array }],
  [DataType.DT_UINT32, { kind: Kind.U32, field: 16, ctor: Uint32Array }],
  [DataType.DT_BOOL, { kind: Kind.BOOL, field: 11, ctor: Uint8Array }],
  [DataType.DT_HALF, { kind: Kind.HALF, field: 13, ctor: Uint16Array }],
  [DataType.DT_BFLOAT16, { kind: Kind.HALF, field: 13, ctor: Uint16Array }],
  [DataType.DT_INT32, { kind: Kind.I32, field: 7, ctor: Int32Array }],
  [DataType.DT_INT16, { kind: Kind.I32, field: 7, ctor: Int16Array }],
  [DataType.DT_INT8, { kind: Kind.I32, field: 7, ctor: Int8Array }],
  [DataType.DT_UINT8, { kind: Kind.I32, field: 7, ctor: Uint8Array }],
  [DataType.DT_UINT16, { kind: Kind.I32, field: 7, ctor: Uint16Array }],
  [DataType.DT_QINT8, { kind: Kind.I32, field: 7, ctor: Int8Array }],
  [DataType.DT_QUINT8, { kind: Kind.I32, field: 7, ctor: Uint8Array }],
  [DataType.DT_QINT16, { kind: Kind.I32, field: 7, ctor: Int16Array }],
  [DataType.DT_QUINT16, { kind: Kind.I32, field: 7, ctor: Uint16Array }],
  [DataType.DT_QINT32, { kind: Kind.I32, field: 7, ctor: Int32Array }],
  [DataType.DT_STRING, { kind: Kind.STRING, field: 8, ctor: Array }],
]);

/**
 * Whether {@link writeTensorProto} writes this tensor: a type `tensorToProto` turns into a typed
 * field, held in its usual storage. Others (resources, variants) keep the message path.
 */
export function directlyEncodable(t: Tensor): boolean {
  const layout = LAYOUT.get(t.dtype);
  if (layout === undefined || t.data.constructor !== layout.ctor) return false;
  if (layout.kind !== Kind.STRING) return true;
  const data = t.data as unknown[];
  for (let i = 0; i < data.length; i++) if (!(data[i] instanceof Uint8Array)) return false;
  return true;
}

/** A tensor's storage bytes, copied to `out` at `pos` or given to `defer` (large ones). */
function ownBytes(
  d: ArrayBufferView,
  out: Uint8Array,
  pos: number,
  defer: ((values: Uint8Array, at: number) => void) | undefined,
): number {
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (defer !== undefined && bytes.length >= DEFER_VALUE_BYTES) {
    defer(bytes, pos);
    return pos;
  }
  out.set(bytes, pos);
  return pos + bytes.length;
}

/** Bytes of a length-delimited field with a body of `len` bytes (tag < 128). */
function lenField(len: number): number {
  return 1 + varint32Size(len) + len;
}

/** Bytes of a varint holding a dimension size (a non-negative integer). */
function dimSize(d: number): number {
  return d < 0x100000000 ? varint32Size(d) : varint64Size(BigInt(d));
}

/** Body bytes of the TensorShapeProto of `shape`. */
function shapeBodySize(shape: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    n += lenField(d === 0 ? 0 : 1 + dimSize(d));
  }
  return n;
}

/** Body bytes of the packed values (or tensor_content), 0 when the field is not written. */
function valuesBodySize(t: Tensor, layout: Layout, useContent: boolean): number {
  if (layout.kind === Kind.STRING) return 0;
  const d = t.data as ArrayLike<number | bigint> & { byteLength: number };
  if (useContent) return d.byteLength;
  switch (layout.kind) {
    case Kind.F32:
    case Kind.F64:
      return d.byteLength;
    case Kind.BOOL:
      return d.length;
    case Kind.U32:
    case Kind.HALF: {
      let n = 0;
      const a = d as ArrayLike<number>;
      for (let i = 0; i < a.length; i++) n += varint32Size(a[i]);
      return n;
    }
    case Kind.I32: {
      let n = 0;
      const a = d as ArrayLike<number>;
      for (let i = 0; i < a.length; i++) n += int32Size(a[i]);
      return n;
    }
    default: {
      let n = 0;
      const a = d as ArrayLike<bigint>;
      for (let i = 0; i < a.length; i++) n += varint64Size(a[i]);
      return n;
    }
  }
}

/** Body bytes of the TensorProto `tensorToProto(t, useContent)` makes (no tag or length). */
export function tensorProtoSize(t: Tensor, useContent: boolean): number {
  const layout = LAYOUT.get(t.dtype)!;
  let n = t.dtype === 0 ? 0 : 1 + varint32Size(t.dtype);
  n += lenField(shapeBodySize(t.shape));
  if (layout.kind === Kind.STRING) {
    const strings = t.data as Uint8Array[];
    for (let i = 0; i < strings.length; i++) n += lenField(strings[i].byteLength);
    return n;
  }
  const body = valuesBodySize(t, layout, useContent);
  // Fields 16 and 17 take a two-byte tag.
  if (body > 0) n += lenField(body) + (!useContent && layout.field >= 16 ? 1 : 0);
  return n;
}

/**
 * Values of at least this many bytes that are the tensor's own bytes (tensor_content, packed
 * float or double) may be left to the caller (see {@link writeTensorProto}'s `defer`).
 */
export const DEFER_VALUE_BYTES = 4096;

/**
 * Writes the TensorProto body of {@link tensorProtoSize} at `pos` (the caller made room).
 *
 * @param defer when given, values written as the tensor's own bytes (tensor_content, packed
 *   float or double) of at least {@link DEFER_VALUE_BYTES} are not copied: `defer` gets a view
 *   of them and the position in `out` they belong at, which is also the returned one (they
 *   are the TensorProto's last bytes; the caller sends them from where they are)
 * @returns the position after it (before the deferred bytes, if any)
 */
export function writeTensorProto(
  t: Tensor,
  useContent: boolean,
  out: Uint8Array,
  pos: number,
  defer?: (values: Uint8Array, at: number) => void,
): number {
  const layout = LAYOUT.get(t.dtype)!;
  if (t.dtype !== 0) {
    out[pos++] = TAG_DTYPE;
    pos = writeVarint32(out, pos, t.dtype);
  }
  out[pos++] = TAG_SHAPE;
  const shape = t.shape;
  pos = writeVarint32(out, pos, shapeBodySize(shape));
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    out[pos++] = (2 << 3) | 2;
    if (d === 0) {
      out[pos++] = 0;
      continue;
    }
    pos = writeVarint32(out, pos, 1 + dimSize(d));
    out[pos++] = (1 << 3) | 0;
    pos = d < 0x100000000 ? writeVarint32(out, pos, d) : writeVarint64(out, pos, BigInt(d));
  }
  if (layout.kind === Kind.STRING) {
    const strings = t.data as Uint8Array[];
    for (let i = 0; i < strings.length; i++) {
      const s = strings[i];
      out[pos++] = TAG_STRING;
      pos = writeVarint32(out, pos, s.byteLength);
      out.set(s, pos);
      pos += s.byteLength;
    }
    return pos;
  }
  const body = valuesBodySize(t, layout, useContent);
  if (body === 0) return pos;
  const d = t.data as ArrayLike<number | bigint> & ArrayBufferView;
  if (useContent) {
    out[pos++] = TAG_CONTENT;
    pos = writeVarint32(out, pos, body);
    return ownBytes(d, out, pos, defer);
  }
  out[pos++] = (layout.field << 3) | 2;
  if (layout.field >= 16) out[pos++] = 1; // A two-byte tag (fields 16 and 17).
  pos = writeVarint32(out, pos, body);
  switch (layout.kind) {
    case Kind.F32:
    case Kind.F64:
      // The floats' bytes as they are, as TensorFlow's AsProtoField copies them (a signalling
      // NaN stays signalling, a payload is kept). A scan to quiet signalling NaNs, as the
      // message path's JS doubles do, took 0.19 ms of the main thread per selfie response
      // (128 Ki floats), 13% of its share of a served call.
      return ownBytes(d, out, pos, defer);
    case Kind.BOOL: {
      const a = d as Uint8Array;
      for (let i = 0; i < a.length; i++) out[pos++] = a[i] !== 0 ? 1 : 0;
      return pos;
    }
    case Kind.U32:
    case Kind.HALF: {
      const a = d as ArrayLike<number>;
      for (let i = 0; i < a.length; i++) pos = writeVarint32(out, pos, a[i]);
      return pos;
    }
    case Kind.I32: {
      const a = d as ArrayLike<number>;
      for (let i = 0; i < a.length; i++) pos = writeInt32(out, pos, a[i]);
      return pos;
    }
    default: {
      const a = d as ArrayLike<bigint>;
      for (let i = 0; i < a.length; i++) pos = writeVarint64(out, pos, a[i]);
      return pos;
    }
  }
}
