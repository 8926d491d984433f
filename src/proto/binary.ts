/**
 * A protobuf binary decoder for the project's generated (protobuf-es) message types that parses
 * as upstream's C++ parser does, for bytes that may be hostile:
 *
 * - a known field whose wire type is not the one its type uses is an **unknown field**: skipped,
 *   not an error (C++'s generated `_InternalParse` sends a tag it does not expect to
 *   `UnknownFieldParse`); a repeated scalar field takes both its packed and unpacked form;
 * - unknown fields are skipped and never kept, so a message of millions of tiny unknown fields
 *   costs nothing (protobuf-es would keep an object per field);
 * - nesting (messages and groups together) is limited to depth 100, C++'s default recursion
 *   limit; nothing recurses deeper;
 * - tag 0, field number 0, wire types 6 and 7, an end-group tag outside its group, a truncated
 *   value, a varint over 10 bytes and invalid UTF-8 in a `string` field fail the parse (C++
 *   returns false for each);
 * - what the decoded message costs in memory is estimated as it is built and compared with
 *   `maxCost` before each allocation: an empty repeated message costs two bytes on the wire and
 *   a few hundred in a JS heap, which would otherwise let a 64 MB request ask for gigabytes.
 *
 * Field semantics are protobuf's: a singular field's last value wins, a repeated singular
 * message merges, a oneof keeps its last member, a map's later entry for a key wins and a
 * missing key or value is its default. The result is the same object `fromBinary` builds (with
 * `$unknown` never set).
 *
 * @module
 */
import {
  create,
  type DescField,
  type DescMessage,
  fromBinary,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** C++ protobuf's default recursion limit (`io::CodedInputStream::default_recursion_limit_`). */
export const RECURSION_LIMIT = 100;

/** Why a decode failed. */
export class WireDecodeError extends Error {
  /**
   * @param message what was wrong
   * @param overLimit true when the bytes parse but decoding them would cost more than allowed
   */
  constructor(message: string, readonly overLimit = false) {
    super(message);
    this.name = "WireDecodeError";
  }
}

/** Options of {@link decodeBinary}. */
export interface DecodeBinaryOptions {
  /**
   * The most the decoded message may cost, in estimated bytes of memory (see `COST_*`); over it
   * the decode fails with `overLimit` set. Default: unlimited.
   */
  readonly maxCost?: number;
}

// Estimated memory of what the decoder allocates (V8, 64-bit, pointer compression off): an
// object header and its slots, an array slot, a heap number or bigint, a typed-array view.
// Exported so that the hot path's plain-form reader (src/tensor/tensor_wire.ts) charges exactly
// what this decoder would for the same bytes.
/** Estimated cost of a message object's header and slots (plus {@link COST_FIELD} per field). */
export const COST_MESSAGE = 64;
/** Estimated cost of one field slot of a message object. */
export const COST_FIELD = 16;
/** Estimated cost of one array slot. */
export const COST_SLOT = 8;
/** Estimated cost of one BigInt. */
export const COST_BIGINT = 24;
/** Estimated cost of one string. */
export const COST_STRING = 32;
/** Estimated cost of one bytes view. */
export const COST_BYTES = 96;

/**
 * What this decoder charges for creating one message of a type: its header and a slot per field.
 *
 * @param desc the message type
 */
export function messageCost(desc: DescMessage): number {
  return COST_MESSAGE + COST_FIELD * desc.fields.length;
}

/** Wire type of each scalar type's single value. */
function scalarWireType(t: ScalarType): WireType {
  switch (t) {
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WireType.LengthDelimited;
    default:
      return WireType.Varint;
  }
}

function scalarCost(t: ScalarType): number {
  switch (t) {
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return COST_SLOT + COST_BIGINT;
    case ScalarType.STRING:
      return COST_SLOT + COST_STRING;
    case ScalarType.BYTES:
      return COST_SLOT + COST_BYTES;
    default:
      return COST_SLOT;
  }
}

const JSON_TYPES = new Set([
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
]);

const WRAPPERS = new Set([
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

type Msg = Record<string, unknown>;

class Decoder {
  #cost = 0;
  #depth = 0;

  readonly r: BinaryReader;

  constructor(readonly buf: Uint8Array, readonly maxCost: number) {
    this.r = new BinaryReader(buf);
  }

  charge(n: number): void {
    this.#cost += n;
    if (this.#cost > this.maxCost) {
      throw new WireDecodeError(
        `decoding needs more than ${this.maxCost} bytes of memory`,
        true,
      );
    }
  }

  /** Reads fields into `msg` until `end` (a length-delimited body). */
  message(desc: DescMessage, msg: Msg, end: number): void {
    if (++this.#depth > RECURSION_LIMIT) {
      throw new WireDecodeError(`nesting deeper than ${RECURSION_LIMIT}`);
    }
    const r = this.r;
    while (r.pos < end) {
      const [no, wt] = this.tag();
      if (wt === WireType.EndGroup) throw new WireDecodeError("end-group tag outside a group");
      const field = fieldsOf(desc).get(no);
      if (field === undefined || !this.field(field, msg, wt)) this.skip(wt, no);
    }
    if (r.pos !== end) throw new WireDecodeError("a field runs past its message");
    this.#depth--;
  }

  tag(): [number, WireType] {
    const r = this.r;
    if (r.pos < r.len && this.buf[r.pos] === 0) throw new WireDecodeError("tag 0");
    return r.tag();
  }

  /** Skips one unknown field (groups to their end, within the depth limit). */
  skip(wt: WireType, no: number): void {
    const r = this.r;
    switch (wt) {
      case WireType.Varint:
        r.bool(); // Reads a whole varint; fails past 10 bytes, as C++'s ReadVarint64.
        return;
      case WireType.Bit64:
        r.pos += 8;
        break;
      case WireType.Bit32:
        r.pos += 4;
        break;
      case WireType.LengthDelimited: {
        const len = r.uint32();
        r.pos += len;
        break;
      }
      case WireType.StartGroup: {
        if (++this.#depth > RECURSION_LIMIT) {
          throw new WireDecodeError(`nesting deeper than ${RECURSION_LIMIT}`);
        }
        for (;;) {
          if (r.pos >= r.len) throw new WireDecodeError("unterminated group");
          const [n, w] = this.tag();
          if (w === WireType.EndGroup) {
            if (n !== no) throw new WireDecodeError("end-group tag of another group");
            break;
          }
          this.skip(w, n);
        }
        this.#depth--;
        return;
      }
      default:
        throw new WireDecodeError(`wire type ${wt} where a value was expected`);
    }
    if (r.pos > r.len) throw new WireDecodeError("truncated field");
  }

  /** Length of a length-delimited value, checked against the buffer. */
  length(): number {
    const r = this.r;
    const len = r.uint32();
    if (len > r.len - r.pos) throw new WireDecodeError("truncated field");
    return len;
  }

  scalar(t: ScalarType): unknown {
    const r = this.r;
    switch (t) {
      case ScalarType.STRING: {
        const len = this.length();
        const start = r.pos;
        r.pos += len;
        try {
          return FATAL_UTF8.decode(this.buf.subarray(start, r.pos));
        } catch {
          throw new WireDecodeError("a string field holds invalid UTF-8");
        }
      }
      case ScalarType.BYTES: {
        const len = this.length();
        const start = r.pos;
        r.pos += len;
        return this.buf.subarray(start, r.pos);
      }
      case ScalarType.BOOL:
        return r.bool();
      case ScalarType.DOUBLE:
        return r.double();
      case ScalarType.FLOAT:
        return r.float();
      case ScalarType.INT32:
        return r.int32();
      case ScalarType.UINT32:
        return r.uint32();
      case ScalarType.SINT32:
        return r.sint32();
      case ScalarType.INT64:
        return r.int64();
      case ScalarType.UINT64:
        return r.uint64();
      case ScalarType.SINT64:
        return r.sint64();
      case ScalarType.FIXED64:
        return r.fixed64();
      case ScalarType.SFIXED64:
        return r.sfixed64();
      case ScalarType.FIXED32:
        return r.fixed32();
      case ScalarType.SFIXED32:
        return r.sfixed32();
    }
  }

  /** A sub-message, merged into `into` when given. */
  child(desc: DescMessage, into: Msg | undefined): Msg {
    const len = this.length();
    if (JSON_TYPES.has(desc.typeName)) {
      // Not in any request schema here; decoded by protobuf-es, its own depth limit applies.
      this.charge(COST_MESSAGE + len * COST_SLOT);
      const r = this.r;
      const m = fromBinary(desc, this.buf.subarray(r.pos, r.pos + len), {
        readUnknownFields: false,
      });
      r.pos += len;
      return m as Msg;
    }
    let msg = into;
    if (msg === undefined) {
      this.charge(COST_MESSAGE + COST_FIELD * desc.fields.length);
      msg = create(desc) as Msg;
    }
    this.message(desc, msg, this.r.pos + len);
    return msg;
  }

  /**
   * Reads one occurrence of a known field into `msg`.
   *
   * @returns false when the wire type does not fit (the caller skips it as unknown)
   */
  field(f: DescField, msg: Msg, wt: WireType): boolean {
    switch (f.fieldKind) {
      case "scalar":
      case "enum": {
        const t = f.fieldKind === "enum" ? ScalarType.INT32 : f.scalar;
        if (wt !== scalarWireType(t)) return false;
        const v = this.scalar(t);
        if (t === ScalarType.STRING) this.charge(COST_STRING);
        else if (t === ScalarType.BYTES) this.charge(COST_BYTES);
        if (f.oneof) msg[f.oneof.localName] = { case: f.localName, value: v };
        else msg[f.localName] = v;
        return true;
      }
      case "message": {
        if (wt !== WireType.LengthDelimited) return false;
        const wrapper = !f.oneof && WRAPPERS.has(f.message.typeName);
        if (f.oneof) {
          const cur = msg[f.oneof.localName] as { case?: string; value?: Msg };
          const into = cur.case === f.localName ? cur.value : undefined;
          msg[f.oneof.localName] = { case: f.localName, value: this.child(f.message, into) };
        } else if (wrapper) {
          // protobuf-es holds a singular wrapper field as its bare value.
          const prev = msg[f.localName];
          const into = prev === undefined ? undefined : create(f.message, { value: prev } as never);
          msg[f.localName] = (this.child(f.message, into as Msg | undefined)).value;
        } else {
          msg[f.localName] = this.child(f.message, msg[f.localName] as Msg | undefined);
        }
        return true;
      }
      case "list": {
        const list = msg[f.localName] as unknown[];
        if (f.listKind === "message") {
          if (wt !== WireType.LengthDelimited) return false;
          list.push(this.child(f.message, undefined));
          return true;
        }
        const t = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
        const one = scalarWireType(t);
        const cost = scalarCost(t);
        if (wt === one) {
          this.charge(cost);
          list.push(this.scalar(t));
          return true;
        }
        if (wt !== WireType.LengthDelimited || one === WireType.LengthDelimited) return false;
        // Packed: charge what the run can hold before reading it.
        const len = this.length();
        const end = this.r.pos + len;
        const perValue = one === WireType.Bit64 ? 8 : one === WireType.Bit32 ? 4 : 1;
        this.charge(Math.ceil(len / perValue) * cost);
        while (this.r.pos < end) list.push(this.scalar(t));
        if (this.r.pos !== end) throw new WireDecodeError("a packed field runs past its length");
        return true;
      }
      case "map": {
        if (wt !== WireType.LengthDelimited) return false;
        this.mapEntry(f, msg[f.localName] as Record<string, unknown>);
        return true;
      }
    }
  }

  mapEntry(f: DescField & { fieldKind: "map" }, map: Record<string, unknown>): void {
    const r = this.r;
    const len = this.length();
    const end = r.pos + len;
    if (++this.#depth > RECURSION_LIMIT) {
      throw new WireDecodeError(`nesting deeper than ${RECURSION_LIMIT}`);
    }
    this.charge(COST_MESSAGE);
    let key: unknown;
    let value: unknown;
    const keyWire = scalarWireType(f.mapKey);
    const valueScalar = f.mapKind === "message"
      ? undefined
      : f.mapKind === "enum"
      ? ScalarType.INT32
      : f.scalar;
    const valueWire = valueScalar === undefined
      ? WireType.LengthDelimited
      : scalarWireType(valueScalar);
    while (r.pos < end) {
      const [no, wt] = this.tag();
      if (wt === WireType.EndGroup) throw new WireDecodeError("end-group tag outside a group");
      if (no === 1 && wt === keyWire) key = this.scalar(f.mapKey);
      else if (no === 2 && wt === valueWire) {
        if (valueScalar !== undefined) value = this.scalar(valueScalar);
        else value = this.child(f.message!, value as Msg | undefined);
      } else this.skip(wt, no);
    }
    if (r.pos !== end) throw new WireDecodeError("a map entry runs past its length");
    this.#depth--;
    if (key === undefined) key = mapKeyZero(f.mapKey);
    if (value === undefined) {
      if (f.mapKind === "message") {
        this.charge(COST_MESSAGE + COST_FIELD * f.message!.fields.length);
        value = create(f.message!);
      } else if (f.mapKind === "enum") value = f.enum!.values[0]?.number ?? 0;
      else value = scalarZero(f.scalar!);
    }
    // defineProperty: a key may be "__proto__".
    Object.defineProperty(map, String(key), {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
}

const FIELDS = new WeakMap<DescMessage, Map<number, DescField>>();

function fieldsOf(desc: DescMessage): Map<number, DescField> {
  let m = FIELDS.get(desc);
  if (!m) {
    m = new Map(desc.fields.map((f) => [f.number, f]));
    FIELDS.set(desc, m);
  }
  return m;
}

const FATAL_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function mapKeyZero(t: ScalarType): unknown {
  if (t === ScalarType.STRING) return "";
  if (t === ScalarType.BOOL) return false;
  return 0;
}

function scalarZero(t: ScalarType): unknown {
  switch (t) {
    case ScalarType.STRING:
      return "";
    case ScalarType.BYTES:
      return new Uint8Array(0);
    case ScalarType.BOOL:
      return false;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 0n;
    default:
      return 0;
  }
}

/**
 * Decodes a message as C++ protobuf would parse it (see the module doc).
 *
 * @param schema the message type
 * @param bytes its wire bytes (string and bytes fields of the result view them)
 * @throws WireDecodeError when C++ would fail the parse, or (`overLimit`) when decoding would
 *   cost more than `maxCost`
 *
 * @example
 * ```ts
 * const req = decodeBinary(PredictRequestSchema, bytes, { maxCost: 1 << 30 });
 * ```
 */
export function decodeBinary<D extends DescMessage>(
  schema: D,
  bytes: Uint8Array,
  options: DecodeBinaryOptions = {},
): MessageShape<D> {
  const d = new Decoder(bytes, options.maxCost ?? Infinity);
  d.charge(COST_MESSAGE + COST_FIELD * schema.fields.length);
  const msg = create(schema) as Msg;
  try {
    d.message(schema, msg, bytes.length);
  } catch (e) {
    if (e instanceof WireDecodeError) throw e;
    // BinaryReader's own errors: a truncated value, an over-long varint, a bad tag.
    throw new WireDecodeError(e instanceof Error ? e.message : String(e));
  }
  return msg as MessageShape<D>;
}
