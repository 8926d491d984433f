/**
 * Predict's direct codec: PredictRequest wire bytes → {@link PredictRequestView} (tensor views,
 * no message objects) and {@link PredictOutputs} → PredictResponse wire bytes.
 *
 * Reading takes the plain form of a request — each field's expected wire type, no unknown field,
 * a model spec and each input given once, every value inside its message (see
 * src/tensor/tensor_wire.ts for a TensorProto's) — and charges the memory estimate the general
 * decoder would, against the same allowance. Anything else returns undefined and the transport
 * decodes the bytes with the general, C++-compatible decoder (service_definition.ts
 * `decodeRequest`), so malformed and hostile requests keep exactly its answers.
 *
 * Writing produces, byte for byte, what `toBinary(PredictResponseSchema, …)` gives for the
 * response the message path builds: the outputs map first (field 1) in the order a JS record
 * lists the aliases, then the model spec (field 2) with name, version and signature name.
 *
 * @module
 */
import {
  COST_MESSAGE,
  COST_SLOT,
  COST_STRING,
  decodeBinary,
  messageCost,
} from "../../proto/binary.ts";
import { Int64ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type ModelSpec,
  ModelSpecSchema,
} from "../../proto/gen/tensorflow_serving/apis/model_pb.ts";
import {
  type PredictRequest,
  PredictRequestSchema,
} from "../../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import {
  NOT_SIMPLE,
  varint32Size,
  varint64Size,
  WireScanner,
  writeVarint32,
  writeVarint64,
} from "../../proto/wire_scan.ts";
import type { PredictOutputs, PredictRequestView } from "../../servables/predict.ts";
import { type DecodeLimits, messageDecodeAllowance } from "../../tensor/limits.ts";
import type { TensorProtoValues } from "../../tensor/tensor_proto.ts";
import {
  CostMeter,
  readTensorProto,
  tensorProtoSize,
  writeTensorProto,
} from "../../tensor/tensor_wire.ts";

const REQUEST_COST = messageCost(PredictRequestSchema);
const SPEC_COST = messageCost(ModelSpecSchema);
const INT64_VALUE_COST = messageCost(Int64ValueSchema);

const NO_FILTER: readonly string[] = Object.freeze([]);

/**
 * At most this many inputs or output filter entries are read directly (the checks per entry
 * grow with their count); a request with more goes to the general decoder.
 */
const MAX_PLAIN_LIST = 64;

/**
 * Reads the plain form of a PredictRequest.
 *
 * @param bytes the request's wire bytes (input tensors may view them)
 * @param limits the server's decode limits
 * @returns the request's view, or undefined when the bytes need the general decoder
 */
export function readPredictRequest(
  bytes: Uint8Array,
  limits: DecodeLimits,
): PredictRequestView | undefined {
  const maxCost = messageDecodeAllowance(bytes.length, limits);
  // A plain Uint8Array over the same memory: views of a Node Buffer are Buffers, costlier to make.
  const plain = bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return readPlain(plain, maxCost);
  } catch {
    // NOT_SIMPLE (or anything unexpected): the general decoder has the last word on these bytes.
    return undefined;
  }
}

/** Fixed-width TensorProto fields worth aligning: tensor_content and packed floats/doubles. */
const ALIGNED_FIELDS = new Set([4, 5, 6, 9, 12]);

/** Values shorter than this are not worth moving a message for. */
const ALIGN_MIN_VALUES = 1024;

/** {@link largeValuesOffset}: the bytes so far do not tell yet. */
export const NEED_MORE = -1;
/** {@link largeValuesOffset}: the message has no such run (or not in a form looked for). */
export const NO_RUN = -2;

/**
 * Where the first large run of fixed-width values (a TensorProto's `tensor_content`,
 * `float_val`, …, of at least {@link ALIGN_MIN_VALUES} bytes) of an input starts in a
 * PredictRequest of which only the first `filled` bytes have arrived, so the transport can place
 * the message where those values land aligned and are then viewed in place, not copied. Only
 * reads: anything unexpected answers {@link NO_RUN} (the message is then read as it is).
 *
 * @returns the run's offset in the message, {@link NEED_MORE} or {@link NO_RUN}
 */
export function largeValuesOffset(bytes: Uint8Array, filled: number): number {
  let pos = 0;
  // A varint at `pos` (at most 5 bytes: lengths and tags here fit in 32 bits), or -1 past `filled`.
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= filled) return -1;
      const b = bytes[pos++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return -2;
  };
  /** Skips a field of wire type `wt`: 0, or why it cannot. */
  const skip = (wt: number): number => {
    if (wt === 0) return varint() < 0 ? NEED_MORE : 0;
    if (wt === 2) {
      const len = varint();
      if (len < 0) return len === -1 ? NEED_MORE : NO_RUN;
      pos += len;
      return 0;
    }
    return NO_RUN;
  };
  while (pos < filled) {
    const tag = varint();
    if (tag < 0) return tag === -1 ? NEED_MORE : NO_RUN;
    if (tag !== ((2 << 3) | 2)) {
      const r = skip(tag & 7);
      if (r !== 0) return r;
      continue;
    }
    // An inputs map entry: look into its value (field 2), a TensorProto.
    const entryLen = varint();
    if (entryLen < 0) return entryLen === -1 ? NEED_MORE : NO_RUN;
    const entryEnd = pos + entryLen;
    while (pos < entryEnd) {
      if (pos >= filled) return NEED_MORE;
      const t = varint();
      if (t < 0) return t === -1 ? NEED_MORE : NO_RUN;
      if (t !== ((2 << 3) | 2)) {
        const r = skip(t & 7);
        if (r !== 0) return r;
        continue;
      }
      const valueLen = varint();
      if (valueLen < 0) return valueLen === -1 ? NEED_MORE : NO_RUN;
      const valueEnd = pos + valueLen;
      while (pos < valueEnd) {
        if (pos >= filled) return NEED_MORE;
        const f = varint();
        if (f < 0) return f === -1 ? NEED_MORE : NO_RUN;
        if ((f & 7) === 2 && ALIGNED_FIELDS.has(f >>> 3)) {
          const len = varint();
          if (len < 0) return len === -1 ? NEED_MORE : NO_RUN;
          if (len >= ALIGN_MIN_VALUES) return pos;
          pos += len;
          continue;
        }
        const r = skip(f & 7);
        if (r !== 0) return r;
      }
      if (pos !== valueEnd) return NO_RUN;
    }
    if (pos !== entryEnd) return NO_RUN;
  }
  // Past what has arrived: more fields may follow.
  return NEED_MORE;
}

/** A request read directly; its message is decoded only when asked for. */
class RequestView implements PredictRequestView {
  constructor(
    readonly modelSpec: ModelSpec | undefined,
    readonly inputAliases: readonly string[],
    readonly inputValues: readonly TensorProtoValues[],
    readonly outputFilter: readonly string[],
    private readonly bytes: Uint8Array,
    private readonly maxCost: number,
  ) {}

  message(): PredictRequest {
    return decodeBinary(PredictRequestSchema, this.bytes, { maxCost: this.maxCost });
  }
}

/** `version_choice` unset (shared: nothing writes to a request's spec). */
const NO_VERSION: ModelSpec["versionChoice"] = Object.freeze({ case: undefined });

function readPlain(bytes: Uint8Array, maxCost: number): PredictRequestView {
  const meter = new CostMeter(maxCost);
  meter.charge(REQUEST_COST);
  const s = new WireScanner(bytes);
  const end = bytes.length;
  let modelSpec: ModelSpec | undefined;
  const aliases: string[] = [];
  const values: TensorProtoValues[] = [];
  let outputFilter = NO_FILTER;
  while (s.pos < end) {
    const tag = s.tag(end);
    if (tag === ((2 << 3) | 2)) {
      // An inputs map entry: key 1, value 2.
      const entryLen = s.length(end);
      const entryEnd = s.pos + entryLen;
      meter.charge(COST_MESSAGE);
      let key = "";
      let value: TensorProtoValues | undefined;
      while (s.pos < entryEnd) {
        const t = s.tag(entryEnd);
        if (t === ((1 << 3) | 2)) key = s.string(entryEnd, true);
        else if (t === ((2 << 3) | 2) && value === undefined) {
          const len = s.length(entryEnd);
          value = readTensorProto(s, s.pos + len, meter);
        } else throw NOT_SIMPLE;
      }
      // A repeated key (the later entry wins) is rare: the general decoder.
      if (
        s.pos !== entryEnd || value === undefined || aliases.length >= MAX_PLAIN_LIST ||
        aliases.includes(key)
      ) throw NOT_SIMPLE;
      aliases.push(key);
      values.push(value);
    } else if (tag === ((1 << 3) | 2)) {
      if (modelSpec !== undefined) throw NOT_SIMPLE; // A second one merges: rare.
      const len = s.length(end);
      modelSpec = readModelSpec(s, s.pos + len, meter);
    } else if (tag === ((3 << 3) | 2)) {
      meter.charge(COST_SLOT + COST_STRING);
      if (outputFilter.length >= MAX_PLAIN_LIST) throw NOT_SIMPLE;
      if (outputFilter === NO_FILTER) outputFilter = [];
      (outputFilter as string[]).push(s.string(end));
    } else throw NOT_SIMPLE;
  }
  return new RequestView(modelSpec, aliases, values, outputFilter, bytes, maxCost);
}

/** A ModelSpec in `[s.pos, end)`, as a plain object of the message's shape. */
function readModelSpec(s: WireScanner, end: number, meter: CostMeter): ModelSpec {
  meter.charge(SPEC_COST);
  let name = "";
  let signatureName = "";
  let versionChoice = NO_VERSION;
  while (s.pos < end) {
    const tag = s.tag(end);
    if (tag === ((1 << 3) | 2)) {
      name = s.string(end, true);
      meter.charge(COST_STRING);
    } else if (tag === ((3 << 3) | 2)) {
      signatureName = s.string(end, true);
      meter.charge(COST_STRING);
    } else if (tag === ((2 << 3) | 2) && versionChoice.case === undefined) {
      const valueLen = s.length(end);
      const valueEnd = s.pos + valueLen;
      meter.charge(INT64_VALUE_COST);
      let value = 0n;
      while (s.pos < valueEnd) {
        if (s.tag(valueEnd) !== ((1 << 3) | 0)) throw NOT_SIMPLE;
        value = s.int64(valueEnd);
      }
      if (s.pos !== valueEnd) throw NOT_SIMPLE;
      versionChoice = {
        case: "version",
        value: { $typeName: "google.protobuf.Int64Value", value },
      };
    } else if (tag === ((4 << 3) | 2) && versionChoice.case === undefined) {
      versionChoice = { case: "versionLabel", value: s.string(end, true) };
      meter.charge(COST_STRING);
    } else throw NOT_SIMPLE;
  }
  if (s.pos !== end) throw NOT_SIMPLE;
  return { $typeName: "tensorflow.serving.ModelSpec", name, signatureName, versionChoice };
}

const UTF8 = new TextEncoder();

/**
 * UTF-8 of the few strings responses repeat (model names, signature names, output aliases),
 * bounded: a server with more distinct names than this just encodes them again.
 */
const UTF8_CACHE = new Map<string, Uint8Array>();
const UTF8_CACHE_MAX = 1024;

/** A string's UTF-8 bytes (shared: never written to). */
function utf8Bytes(s: string): Uint8Array {
  let bytes = UTF8_CACHE.get(s);
  if (bytes === undefined) {
    bytes = UTF8.encode(s);
    if (UTF8_CACHE.size >= UTF8_CACHE_MAX) UTF8_CACHE.clear();
    UTF8_CACHE.set(s, bytes);
  }
  return bytes;
}

/** Bytes of a length-delimited field (tag < 16) with a body of `len` bytes. */
function lenField(len: number): number {
  return 1 + varint32Size(len) + len;
}

/**
 * The order a JS record lists keys assigned in `aliases` order (array-index keys first,
 * ascending): the order the message path's response map is written in.
 */
function recordOrder(aliases: readonly string[]): readonly number[] {
  if (aliases.length === 1) return [0];
  const o: Record<string, number> = {};
  for (let i = 0; i < aliases.length; i++) o[aliases[i]] = i;
  return Object.keys(o).map((k) => o[k]);
}

/**
 * The buffer responses up to {@link SCRATCH_MAX} bytes are written into when the caller copies
 * them at once (the transport copies the bytes into its DATA frames, or a queued copy, before
 * anything else runs), saving an allocation per call: for a large response, fresh memory is
 * also a page fault per 4 KiB on first touch and external memory pressing V8 into full
 * collections. It grows (by powers of two from 64 KiB) to the largest response seen, and is
 * kept: at most {@link SCRATCH_MAX} per process.
 */
let scratch: Uint8Array | undefined;
const SCRATCH_MIN = 64 << 10;
const SCRATCH_MAX = 8 << 20;

/** The scratch buffer, of at least `size` bytes (at most {@link SCRATCH_MAX}). */
function scratchOf(size: number): Uint8Array {
  if (scratch === undefined || scratch.length < size) {
    let n = SCRATCH_MIN;
    while (n < size) n *= 2;
    scratch = new Uint8Array(n);
  }
  return scratch;
}

/**
 * Encodes the PredictResponse of a direct Predict.
 *
 * @param r the outputs and the model spec's parts
 * @param transient the result is copied before the next call (it may then share one buffer)
 * @returns the wire bytes, equal to `toBinary` of the message path's response
 */
export function encodePredictOutputs(r: PredictOutputs, transient = false): Uint8Array {
  return encodeOutputs(r, transient, undefined);
}

/**
 * The wire bytes of {@link encodePredictOutputs} as pieces to be sent one after the other:
 * large values (see `DEFER_VALUE_BYTES`) are views of the output tensors' own storage, not
 * copied; the rest is in a buffer reused by the next call. The transport copies them all into
 * its DATA frames at once (so the tensors need live only until then). A selfie answer's 512 KiB
 * of floats were copied twice on the main thread, into the message and then into its frames
 * (about 100 µs for the first).
 */
export function encodePredictOutputPieces(r: PredictOutputs): Uint8Array[] {
  const deferred: { values: Uint8Array; at: number }[] = [];
  const out = encodeOutputs(r, true, (values, at) => deferred.push({ values, at }));
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const d of deferred) {
    if (d.at > from) pieces.push(out.subarray(from, d.at));
    pieces.push(d.values);
    from = d.at;
  }
  if (out.length > from) pieces.push(out.subarray(from));
  return pieces;
}

/**
 * Writes the PredictResponse of `r` into a buffer (the shared scratch when `transient`), its
 * large values given to `defer` instead of written when it is set (see writeTensorProto).
 *
 * @returns the bytes written
 */
function encodeOutputs(
  r: PredictOutputs,
  transient: boolean,
  defer: ((values: Uint8Array, at: number) => void) | undefined,
): Uint8Array {
  const order = recordOrder(r.aliases);
  const keys: Uint8Array[] = new Array(order.length);
  const bodies: number[] = new Array(order.length);
  let size = 0;
  for (let j = 0; j < order.length; j++) {
    const i = order[j];
    const key = utf8Bytes(r.aliases[i]);
    const body = tensorProtoSize(r.tensors[i], r.useContent);
    keys[j] = key;
    bodies[j] = body;
    size += lenField(lenField(key.length) + lenField(body));
  }
  const name = utf8Bytes(r.modelName);
  const signature = utf8Bytes(r.signatureName);
  const version = BigInt(r.version);
  const versionBody = version === 0n ? 0 : 1 + varint64Size(version);
  const specBody = (name.length > 0 ? lenField(name.length) : 0) + lenField(versionBody) +
    (signature.length > 0 ? lenField(signature.length) : 0);
  size += lenField(specBody);

  let out: Uint8Array;
  if (transient && size <= SCRATCH_MAX) out = scratchOf(size).subarray(0, size);
  else out = new Uint8Array(size);
  let pos = 0;
  let deferredBytes = 0;
  const deferTo = defer === undefined ? undefined : (values: Uint8Array, at: number) => {
    deferredBytes += values.length;
    defer(values, at);
  };
  for (let j = 0; j < order.length; j++) {
    const key = keys[j];
    out[pos++] = (1 << 3) | 2;
    pos = writeVarint32(out, pos, lenField(key.length) + lenField(bodies[j]));
    out[pos++] = (1 << 3) | 2;
    pos = writeVarint32(out, pos, key.length);
    out.set(key, pos);
    pos += key.length;
    out[pos++] = (2 << 3) | 2;
    pos = writeVarint32(out, pos, bodies[j]);
    pos = writeTensorProto(r.tensors[order[j]], r.useContent, out, pos, deferTo);
  }
  out[pos++] = (2 << 3) | 2;
  pos = writeVarint32(out, pos, specBody);
  if (name.length > 0) {
    out[pos++] = (1 << 3) | 2;
    pos = writeVarint32(out, pos, name.length);
    out.set(name, pos);
    pos += name.length;
  }
  out[pos++] = (2 << 3) | 2;
  pos = writeVarint32(out, pos, versionBody);
  if (versionBody > 0) {
    out[pos++] = (1 << 3) | 0;
    pos = writeVarint64(out, pos, version);
  }
  if (signature.length > 0) {
    out[pos++] = (3 << 3) | 2;
    pos = writeVarint32(out, pos, signature.length);
    out.set(signature, pos);
    pos += signature.length;
  }
  if (pos + deferredBytes !== size) {
    throw new Error(`PredictResponse size ${pos + deferredBytes} is not the planned ${size}`);
  }
  return pos === size ? out : out.subarray(0, pos);
}
