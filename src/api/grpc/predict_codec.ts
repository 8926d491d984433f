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
 * them at once (the transport copies the bytes into its DATA frame
 * before anything else runs), saving an allocation per call.
 */
let scratch: Uint8Array | undefined;
const SCRATCH_MAX = 64 << 10;

/**
 * Encodes the PredictResponse of a direct Predict.
 *
 * @param r the outputs and the model spec's parts
 * @param transient the result is copied before the next call (it may then share one buffer)
 * @returns the wire bytes, equal to `toBinary` of the message path's response
 */
export function encodePredictOutputs(r: PredictOutputs, transient = false): Uint8Array {
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
  if (transient && size <= SCRATCH_MAX) {
    scratch ??= new Uint8Array(SCRATCH_MAX);
    out = scratch.subarray(0, size);
  } else out = new Uint8Array(size);
  let pos = 0;
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
    pos = writeTensorProto(r.tensors[order[j]], r.useContent, out, pos);
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
  if (pos !== size) throw new Error(`PredictResponse size ${pos} is not the planned ${size}`);
  return out;
}
