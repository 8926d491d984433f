/**
 * JSON ⇄ tensors for the REST API, as TF Serving's `tensorflow_serving/util/json_tensor.cc`:
 * the same request formats, the same checks in the same order, the same error texts and the
 * same output bytes.
 *
 * Requests:
 * - Predict: `{"signature_name"?, "instances": [...]}` (row format: one item per batch entry,
 *   a bare value/list for one input or an object per item naming every input) or
 *   `{"signature_name"?, "inputs": value | {name: value}}` (columnar: each input whole). Values
 *   are checked against the signature input's dtype (`1.0` is not an int32, a string is not a
 *   float); `{"b64": "..."}` is a binary string; `NaN`/`Infinity`/`-Infinity` are numbers.
 * - Classify / Regress: `{"signature_name"?, "context"?: {...}, "examples": [{...}, ...]}`, each
 *   example a `{feature: value | [values]}` object: strings (or b64) → bytes_list, integers and
 *   booleans → int64_list, decimals → float_list.
 *
 * Responses: `{"predictions": ...}` for a row request (items as objects when there are several
 * outputs, the bare value otherwise), `{"outputs": ...}` for a columnar one, `{"results": ...}`
 * for Classify (`[[label, score], ...]` per example) and Regress, `{"error": "..."}` on failure;
 * printed by RapidJSON's PrettyWriter (see json_writer.ts). A DT_STRING output whose name ends
 * in `_bytes` is written as `{"b64": ...}`.
 *
 * Where upstream iterates a protobuf map (unspecified order), names are taken in sorted order.
 * Parsed tensors are returned with their values in `tensor_content` (upstream fills the typed
 * `*_val` fields; the tensor is the same).
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  type TensorProto,
  TensorProtoSchema,
} from "../../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { type Example, ExampleSchema } from "../../proto/gen/tensorflow/core/example/example_pb.ts";
import { type Feature, FeatureSchema } from "../../proto/gen/tensorflow/core/example/feature_pb.ts";
import { InputSchema } from "../../proto/gen/tensorflow_serving/apis/input_pb.ts";
import type {
  ClassificationRequest,
  ClassificationResult,
} from "../../proto/gen/tensorflow_serving/apis/classification_pb.ts";
import type { PredictRequest } from "../../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import type {
  RegressionRequest,
  RegressionResult,
} from "../../proto/gen/tensorflow_serving/apis/regression_pb.ts";
import {
  type ModelSpec,
  ModelSpecSchema,
} from "../../proto/gen/tensorflow_serving/apis/model_pb.ts";
import { Code, ServingError } from "../../errors.ts";
import { allocate, DataType, type NumericArray, toBytes } from "../../tensor/dtype.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { shapeToProto, tensorFromProto } from "../../tensor/tensor_proto.ts";
import {
  type JsonDoc,
  JsonParser,
  JsonSyntaxError,
  JsonType,
  jsonTypeString,
  NumberFlag,
} from "./json_parse.ts";
import { PrettyWriter, writeDecimal } from "./json_writer.ts";

/** Which request format a Predict body used (it decides the response format). */
export type JsonPredictRequestFormat = "row" | "columnar";

/** A signature's inputs: name → dtype (upstream's `TensorInfo` map, dtype only). */
export type TensorInfoMap = ReadonlyMap<string, DataType>;

/** Looks up the inputs of a signature (`""`: the default one), as the handler's `GetInfoMap`. */
export type GetTensorInfoMap = (signatureName: string) => TensorInfoMap;

const SIGNATURE_KEY = "signature_name";
const INSTANCES_KEY = "instances";
const INPUTS_KEY = "inputs";
const CONTEXT_KEY = "context";
const EXAMPLES_KEY = "examples";
const BASE64_KEY = "b64";
const BYTES_SUFFIX = "_bytes";
/** json_tensor.cc's `kMaxJsonDebugStringBytes`. */
const MAX_DEBUG_BYTES = 256;

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/** `Status::ToString()`: `CODE_NAME: message`. */
export function statusToString(e: ServingError): string {
  return `${Code[e.code] ?? "UNKNOWN"}: ${e.message}`;
}

/** TensorFlow's `DataTypeString`: `float`, `int32`, `string`, `float_ref`, … */
export function dataTypeString(dtype: DataType): string {
  if (dtype > 100) return `${dataTypeString((dtype - 100) as DataType)}_ref`;
  if (dtype === DataType.DT_INVALID) return "INVALID";
  const name = DataType[dtype];
  return name ? name.slice(3).toLowerCase() : `unknown dtype enum (${dtype})`;
}

// ---------------------------------------------------------------------------------------------
// Debug strings and error texts

/** `JsonValueToDebugString`: the value as PrettyWriter prints it, cut after ~256 bytes. */
export function jsonDebugString(doc: JsonDoc, node: number): string {
  const w = new PrettyWriter(MAX_DEBUG_BYTES);
  w.singleLineArray = true;
  accept(doc, node, w);
  return w.text();
}

/** RapidJSON's `GenericValue::Accept`. */
function accept(doc: JsonDoc, i: number, w: PrettyWriter): boolean {
  switch (doc.kind[i]) {
    case JsonType.Null:
      return w.null();
    case JsonType.False:
      return w.bool(false);
    case JsonType.True:
      return w.bool(true);
    case JsonType.Object: {
      if (!w.startObject()) return false;
      let c = i + 1;
      for (let k = doc.size(i); k > 0; k--) {
        if (!w.bytes(doc.stringBytes(c))) return false;
        if (!accept(doc, c + 1, w)) return false;
        c = doc.next(c + 1);
      }
      return w.endObject();
    }
    case JsonType.Array: {
      if (!w.startArray()) return false;
      let c = i + 1;
      for (let k = doc.size(i); k > 0; k--) {
        if (!accept(doc, c, w)) return false;
        c = doc.next(c);
      }
      return w.endArray();
    }
    case JsonType.String:
      return w.bytes(doc.stringBytes(i));
    default:
      return doc.is(i, NumberFlag.Double) ? w.double(doc.num[i]) : w.integer(doc.integer(i));
  }
}

function typeError(doc: JsonDoc, i: number, dtype: DataType): ServingError {
  return invalid(
    `JSON Value: ${jsonDebugString(doc, i)} Type: ${jsonTypeString(doc, i)}` +
      ` is not of expected type: ${dataTypeString(dtype)}`,
  );
}

function formatError(doc: JsonDoc, i: number, ...args: string[]): ServingError {
  return invalid(`JSON Value: ${jsonDebugString(doc, i)} ${args.join("")}`);
}

// ---------------------------------------------------------------------------------------------
// Base64 (absl::Base64Unescape / Base64Escape)

const UNBASE64 = (() => {
  const t = new Int8Array(256).fill(-1);
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (let i = 0; i < 64; i++) t[chars.charCodeAt(i)] = i;
  return t;
})();
const BASE64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/**
 * `absl::Base64Unescape`: whitespace is skipped, `=` or `.` pads (all or none of the expected
 * padding), anything else fails.
 *
 * @returns the decoded bytes, or undefined for invalid input
 */
export function base64Unescape(src: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(Math.floor((src.length * 3) / 4) + 3);
  let n = 0;
  let temp = 0;
  let state = 0;
  let i = 0;
  for (; i < src.length; i++) {
    const c = src[i];
    const d = UNBASE64[c];
    if (d < 0) {
      if (isAsciiSpace(c)) continue;
      if (c === 0x3d || c === 0x2e) break;
      return undefined;
    }
    temp = (temp << 6) | d;
    if (++state === 4) {
      out[n++] = (temp >> 16) & 0xff;
      out[n++] = (temp >> 8) & 0xff;
      out[n++] = temp & 0xff;
      state = 0;
      temp = 0;
    }
  }
  let expectedEquals = 0;
  switch (state) {
    case 1:
      return undefined;
    case 2:
      out[n++] = (temp >> 4) & 0xff;
      expectedEquals = 2;
      break;
    case 3:
      out[n++] = (temp >> 10) & 0xff;
      out[n++] = (temp >> 2) & 0xff;
      expectedEquals = 1;
      break;
  }
  let equals = 0;
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === 0x3d || c === 0x2e) equals++;
    else if (!isAsciiSpace(c)) return undefined;
  }
  if (equals !== 0 && equals !== expectedEquals) return undefined;
  return out.slice(0, n);
}

/** `absl::Base64Escape`: standard alphabet, padded. */
export function base64Escape(b: Uint8Array): string {
  let s = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const v = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    s += BASE64_CHARS[v >> 18] + BASE64_CHARS[(v >> 12) & 63] + BASE64_CHARS[(v >> 6) & 63] +
      BASE64_CHARS[v & 63];
  }
  if (i < b.length) {
    const v = (b[i] << 16) | ((i + 1 < b.length ? b[i + 1] : 0) << 8);
    s += BASE64_CHARS[v >> 18] + BASE64_CHARS[(v >> 12) & 63];
    s += i + 1 < b.length ? BASE64_CHARS[(v >> 6) & 63] + "=" : "==";
  }
  return s;
}

/** `IsValBase64Object`: an object with exactly one member, `"b64"`, holding a string. */
function isBase64Object(doc: JsonDoc, i: number): boolean {
  if (!doc.isObject(i) || doc.size(i) !== 1) return false;
  const v = doc.findMember(i, BASE64_KEY);
  return v >= 0 && doc.isString(v);
}

/** `JsonDecodeBase64Object`. */
function decodeBase64Object(doc: JsonDoc, i: number): Uint8Array {
  if (!isBase64Object(doc, i)) {
    throw invalid(`JSON Value: ${jsonDebugString(doc, i)} not formatted correctly for base64 data`);
  }
  const decoded = base64Unescape(doc.stringBytes(doc.findMember(i, BASE64_KEY)));
  if (!decoded) throw invalid("Unable to base64 decode");
  return decoded;
}

// ---------------------------------------------------------------------------------------------
// Parsing a request body

let sharedParser: JsonParser | undefined;

/**
 * `ParseJson`: parses a request body that must be a JSON object.
 *
 * @param parser reused across calls (the default is one shared parser; the document is valid
 *   until that parser's next parse)
 * @throws ServingError INVALID_ARGUMENT `JSON Parse error: … at offset: N`, or `… Is not object`
 */
export function parseJsonObject(body: Uint8Array, parser?: JsonParser): JsonDoc {
  if (body.length === 0) throw invalid("JSON Parse error: The document is empty");
  let doc: JsonDoc;
  try {
    doc = (parser ?? (sharedParser ??= new JsonParser())).parse(body);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      throw invalid(`JSON Parse error: ${e.reason} at offset: ${e.offset}`);
    }
    throw e;
  }
  if (!doc.isObject(0)) throw formatError(doc, 0, "Is not object");
  return doc;
}

/** `FillSignature`: the optional `signature_name` string. */
function fillSignature(doc: JsonDoc, spec: ModelSpec | undefined): string {
  const name = signatureOf(doc);
  if (name === undefined) return spec?.signatureName ?? "";
  if (spec) spec.signatureName = name;
  return name;
}

/** The body's `signature_name`, undefined when absent. */
function signatureOf(doc: JsonDoc): string | undefined {
  const v = doc.findMember(0, SIGNATURE_KEY);
  if (v < 0) return undefined;
  if (!doc.isString(v)) {
    throw invalid(
      `JSON Value: ${
        jsonDebugString(doc, 0)
      } not formatted correctly. 'signature_name' key must be a string value.`,
    );
  }
  return doc.string(v);
}

/** Sets a map entry on a protobuf-es map object (safe for any key). */
function setEntry<V>(map: { [k: string]: V }, key: string, value: V): void {
  Object.defineProperty(map, key, { value, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------------------------
// Values into tensors

/** A growing list of one tensor's values. */
class ValueSink {
  data: NumericArray | undefined;
  strings: Uint8Array[] | undefined;
  n = 0;

  constructor(readonly dtype: DataType) {
    if (dtype === DataType.DT_STRING) this.strings = [];
  }

  /** Makes room for `k` more values. */
  reserve(k: number): void {
    if (this.strings) return;
    const need = this.n + k;
    const cap = this.data?.length ?? 0;
    if (need <= cap) return;
    // Exact at first (the count is usually known: no copy when the tensor is made), doubling
    // after.
    const grown = allocate(this.dtype, cap === 0 ? need : Math.max(need, cap * 2));
    if (this.data) grown.set(this.data.subarray(0, this.n) as never);
    this.data = grown;
  }

  /** The values as a Tensor of `shape` (whose element count is the number of values). */
  toTensor(shape: readonly number[]): Tensor {
    if (this.strings) return new Tensor(this.dtype, shape, this.strings);
    const data = this.data;
    if (data === undefined) return new Tensor(this.dtype, shape, allocate(this.dtype, 0));
    return new Tensor(
      this.dtype,
      shape,
      data.length === this.n ? data : data.slice(0, this.n) as NumericArray,
    );
  }
}

/**
 * The TensorProto a parsed tensor is sent as: numbers in `tensor_content` (none when empty),
 * strings in `string_val`.
 */
export function jsonTensorToProto(t: Tensor): TensorProto {
  const p = create(TensorProtoSchema, { dtype: t.dtype, tensorShape: shapeToProto(t.shape) });
  if (t.dtype === DataType.DT_STRING) p.stringVal = t.data as Uint8Array[];
  else if ((t.data as NumericArray).length > 0) p.tensorContent = toBytes(t.data as NumericArray);
  return p;
}

/** `AddValueToTensor` for a non-object, non-array node. */
function addValue(doc: JsonDoc, i: number, sink: ValueSink): void {
  const dtype = sink.dtype;
  let ok: boolean;
  switch (dtype) {
    case DataType.DT_FLOAT:
    case DataType.DT_DOUBLE:
      ok = doc.isNumber(i);
      if (ok) {
        sink.reserve(1);
        sink.data![sink.n++] = doc.num[i];
      }
      break;
    case DataType.DT_INT32:
    case DataType.DT_INT16:
    case DataType.DT_INT8:
    case DataType.DT_UINT8:
      // int_val holds the int32; the narrower types wrap on conversion, as static_cast does.
      ok = doc.is(i, NumberFlag.Int);
      if (ok) {
        sink.reserve(1);
        sink.data![sink.n++] = doc.num[i];
      }
      break;
    case DataType.DT_UINT32:
      ok = doc.is(i, NumberFlag.Uint);
      if (ok) {
        sink.reserve(1);
        sink.data![sink.n++] = doc.num[i];
      }
      break;
    case DataType.DT_INT64:
      ok = doc.is(i, NumberFlag.Int64);
      if (ok) {
        sink.reserve(1);
        (sink.data as BigInt64Array)[sink.n++] = doc.bigint(i);
      }
      break;
    case DataType.DT_UINT64:
      ok = doc.is(i, NumberFlag.Uint64);
      if (ok) {
        sink.reserve(1);
        (sink.data as BigUint64Array)[sink.n++] = doc.bigint(i);
      }
      break;
    case DataType.DT_BOOL:
      ok = doc.isBool(i);
      if (ok) {
        sink.reserve(1);
        sink.data![sink.n++] = doc.kind[i] === JsonType.True ? 1 : 0;
      }
      break;
    case DataType.DT_STRING:
      ok = doc.isString(i);
      // A copy: the body may be a view of the connection's buffer, reused once answered, and a
      // tensor can outlive the answer (a call answered 504 at its deadline still runs).
      if (ok) sink.strings!.push(doc.stringBytes(i).slice());
      break;
    default:
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Conversion of JSON Value: ${jsonDebugString(doc, i)} to type: ${dataTypeString(dtype)}`,
      );
  }
  if (!ok) throw typeError(doc, i, dtype);
}

/** `GetDenseTensorShape`: the sizes along the first elements. */
function denseShape(doc: JsonDoc, i: number): number[] {
  const dims: number[] = [];
  while (doc.isArray(i)) {
    const size = doc.size(i);
    dims.push(size);
    if (size === 0) break;
    i = i + 1;
  }
  return dims;
}

function product(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * `FillTensorProto`: appends the values under `root` to `sink`, checking that every list has the
 * size `dims` says for its level and every value sits at level `dims.length`. Walks the tape in
 * document order (the order upstream's recursion visits), without recursion.
 *
 * @returns the number of values added
 */
function fillTensor(doc: JsonDoc, root: number, dims: readonly number[], sink: ValueSink): number {
  const rank = dims.length;
  const end = doc.next(root);
  // Never reserve more than the document can hold (dims come from first elements only).
  sink.reserve(Math.min(product(dims), doc.count));
  const numeric = sink.dtype === DataType.DT_FLOAT || sink.dtype === DataType.DT_DOUBLE;
  const ends: number[] = [];
  let count = 0;
  let i = root;
  while (i < end) {
    while (ends.length > 0 && i >= ends[ends.length - 1]) ends.pop();
    const level = ends.length;
    const kind = doc.kind[i];
    if (kind === JsonType.Array) {
      if (level >= rank) {
        throw invalid(`Encountered list at unexpected level: ${level} expected < ${rank}`);
      }
      const size = doc.size(i);
      if (size !== dims[level]) {
        throw invalid(
          `Encountered list at unexpected size: ${size} at level: ${level}` +
            ` expected size: ${dims[level]}`,
        );
      }
      // Fast path: the innermost list of a float/double tensor, all numbers.
      if (numeric && level === rank - 1 && doc.next(i) === i + 1 + size) {
        let k = 0;
        const first = i + 1;
        while (k < size && doc.kind[first + k] === JsonType.Number) k++;
        if (k === size) {
          sink.reserve(size);
          const data = sink.data!;
          let n = sink.n;
          const num = doc.num;
          for (let c = first; c < first + size; c++) data[n++] = num[c];
          sink.n = n;
          count += size;
          i = first + size;
          continue;
        }
      }
      ends.push(doc.next(i));
      i++;
      continue;
    }
    if (level !== rank) {
      throw invalid(
        `JSON Value: ${jsonDebugString(doc, i)} found at incorrect level: ${level + 1}` +
          ` in the JSON DOM. Expected at level: ${rank}`,
      );
    }
    if (kind === JsonType.Object) {
      if (sink.dtype !== DataType.DT_STRING) throw typeError(doc, i, sink.dtype);
      sink.strings!.push(decodeBase64Object(doc, i));
      i = doc.next(i);
    } else {
      addValue(doc, i, sink);
      i++;
    }
    count++;
  }
  return count;
}

/** One input being assembled from a row-format request. */
interface RowTensor {
  sink: ValueSink;
  /** `size_map`: values per item (from the first item). */
  size: number;
  /** `shape_map`: the item shape (from the first item). */
  shape: number[];
}

function shapeString(dims: readonly number[]): string {
  return `[${dims.join(",")}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, k) => d === b[k]);
}

/** `AddInstanceItem`. */
function addInstanceItem(
  doc: JsonDoc,
  item: number,
  name: string,
  infos: TensorInfoMap,
  tensors: Map<string, RowTensor>,
  items: number,
): void {
  const dtype = infos.get(name);
  if (dtype === undefined) throw invalid(`JSON object: does not have named input: ${name}`);
  let t = tensors.get(name);
  const shape = denseShape(doc, item);
  const fresh = !t;
  if (!t) {
    t = { sink: new ValueSink(dtype), size: 0, shape };
    tensors.set(name, t);
  }
  const size = fillTensor(doc, item, shape, t.sink);
  if (fresh) {
    t.size = size;
    t.shape = shape;
    // Room for the other items (bounded by what the document can hold).
    t.sink.reserve(Math.min(size * (items - 1), doc.count));
  } else if (t.size !== size) {
    throw invalid(`Expecting tensor size: ${t.size} but got: ${size}`);
  } else if (!sameShape(t.shape, shape)) {
    throw invalid(`Expecting shape ${shapeString(t.shape)} but got: ${shapeString(shape)}`);
  }
}

/** `FillTensorMapFromInstancesList`. */
function fillFromInstances(
  doc: JsonDoc,
  list: number,
  infos: TensorInfoMap,
  names: readonly string[],
): Map<string, Tensor> {
  if (!doc.isObject(list + 1) && infos.size > 1) {
    throw invalid(
      "instances is a plain list, but expecting list of objects as multiple input tensors " +
        "required as per tensorinfo_map",
    );
  }
  const count = doc.size(list);
  if (doc.next(list) === list + 1 + count) {
    // A flat list of scalars (no item has children): each item is one value of the one input.
    // The same checks and messages as the general path, without its per-item work.
    const dtype = infos.get(names[0])!;
    const sink = new ValueSink(dtype);
    sink.reserve(count);
    for (let n = 0; n < count; n++) {
      try {
        addValue(doc, list + 1 + n, sink);
      } catch (e) {
        throw invalid(
          `Failed to process element: ${n} of 'instances' list. Error: ${
            statusToString(ServingError.from(e))
          }`,
        );
      }
    }
    return new Map([[names[0], sink.toTensor([count])]]);
  }
  const items = doc.elements(list);
  const isElementObject = (i: number) => doc.isObject(i) && !isBase64Object(doc, i);
  const elementsAreObjects = isElementObject(items[0]);
  const tensors = new Map<string, RowTensor>();
  for (let n = 0; n < items.length; n++) {
    const elem = items[n];
    if (elementsAreObjects) {
      if (!isElementObject(elem)) {
        throw invalid(`Expecting object but got list at item ${n} of input list`);
      }
      const keys = new Set<string>();
      for (const [k, v] of doc.members(elem)) {
        const name = doc.string(k);
        keys.add(name);
        try {
          addInstanceItem(doc, v, name, infos, tensors, items.length);
        } catch (e) {
          throw invalid(
            `Failed to process element: ${n} key: ${name} of 'instances' list. Error: ${
              statusToString(ServingError.from(e))
            }`,
          );
        }
      }
      if (keys.size !== names.length || names.some((x) => !keys.has(x))) {
        throw invalid(
          `Failed to process element: ${n} of 'instances' list. JSON object: ${
            jsonDebugString(doc, elem)
          } keys must be equal to: ${names.join(",")}`,
        );
      }
    } else {
      if (isElementObject(elem)) {
        throw invalid(`Expecting value/list but got object at item ${n} of input list`);
      }
      try {
        addInstanceItem(doc, elem, names[0], infos, tensors, items.length);
      } catch (e) {
        throw invalid(
          `Failed to process element: ${n} of 'instances' list. Error: ${
            statusToString(ServingError.from(e))
          }`,
        );
      }
    }
  }
  const out = new Map<string, Tensor>();
  for (const [name, t] of tensors) out.set(name, t.sink.toTensor([items.length, ...t.shape]));
  return out;
}

/** `FillTensorMapFromInputsMap`. */
function fillFromInputs(
  doc: JsonDoc,
  val: number,
  infos: TensorInfoMap,
  names: readonly string[],
): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const one = (name: string, node: number) => {
    const sink = new ValueSink(infos.get(name)!);
    const shape = denseShape(doc, node);
    fillTensor(doc, node, shape, sink);
    out.set(name, sink.toTensor(shape));
  };
  if (!doc.isObject(val) || isBase64Object(doc, val)) {
    if (infos.size > 1) {
      throw invalid(
        "inputs is a plain value/list, but expecting an object as multiple input tensors " +
          "required as per tensorinfo_map",
      );
    }
    one(names[0], val);
  } else {
    for (const name of names) {
      const item = doc.findMember(val, name);
      if (item < 0) throw invalid(`Missing named input: ${name} in 'inputs' object.`);
      one(name, item);
    }
  }
  return out;
}

/** A Predict body decoded into tensors. */
export interface JsonPredictTensors {
  /** `signature_name` when the body gives one. */
  readonly signatureName: string | undefined;
  /** The inputs by name, in the order they were filled. */
  readonly inputs: Map<string, Tensor>;
  /** The request format, which decides the response format. */
  readonly format: JsonPredictRequestFormat;
}

/**
 * `FillPredictRequestFromJson`, into tensors: the signature name, the inputs and the format of
 * a Predict body, with upstream's checks and messages.
 *
 * @param body the request body (UTF-8 JSON)
 * @param getInfoMap the signature's inputs, called once the signature name is known (`""` when
 *   the body gives none: the caller's default)
 * @param defaultSignature the signature name when the body gives none
 * @param parser a parser to reuse (optional)
 * @throws ServingError INVALID_ARGUMENT (UNIMPLEMENTED for an input type JSON cannot express),
 *   with upstream's messages; errors from `getInfoMap` as they are
 */
export function predictTensorsFromJson(
  body: Uint8Array,
  getInfoMap: GetTensorInfoMap,
  defaultSignature: string,
  parser?: JsonParser,
): JsonPredictTensors {
  const doc = parseJsonObject(body, parser);
  const given = signatureOf(doc);
  const signame = given ?? defaultSignature;
  const infos = getInfoMap(signame);
  if (infos.size === 0) {
    throw invalid(`Failed to get input map for signature: ${signame || "DEFAULT"}`);
  }
  const names = [...infos.keys()].sort();
  const instances = doc.findMember(0, INSTANCES_KEY);
  const inputs = doc.findMember(0, INPUTS_KEY);
  if (instances >= 0) {
    if (inputs >= 0) {
      throw formatError(
        doc,
        0,
        "Not formatted correctly expecting only",
        " one of '",
        INPUTS_KEY,
        "' or '",
        INSTANCES_KEY,
        "' keys to exist ",
      );
    }
    if (!doc.isArray(instances)) {
      throw formatError(doc, 0, "Expecting '", INSTANCES_KEY, "' to be an list/array");
    }
    if (doc.size(instances) === 0) {
      throw formatError(doc, 0, "No values in '", INSTANCES_KEY, "' array");
    }
    return {
      signatureName: given,
      inputs: fillFromInstances(doc, instances, infos, names),
      format: "row",
    };
  }
  if (inputs >= 0) {
    return {
      signatureName: given,
      inputs: fillFromInputs(doc, inputs, infos, names),
      format: "columnar",
    };
  }
  throw invalid("Missing 'inputs' or 'instances' key");
}

/**
 * `FillPredictRequestFromJson`: sets `request.inputs` and `request.modelSpec.signatureName`
 * from a Predict body.
 *
 * @param body the request body (UTF-8 JSON)
 * @param getInfoMap the signature's inputs, called once the signature name is known
 * @param request the request to fill (its model spec already set)
 * @param parser a parser to reuse (optional)
 * @returns the request format, which decides the response format
 * @throws ServingError INVALID_ARGUMENT (UNIMPLEMENTED for an input type JSON cannot express),
 *   with upstream's messages; errors from `getInfoMap` as they are
 *
 * @example
 * ```ts
 * const req = create(PredictRequestSchema, { modelSpec: { name: "half_plus_two" } });
 * const format = fillPredictRequestFromJson(
 *   new TextEncoder().encode('{"instances": [1.0, 2.0]}'),
 *   () => new Map([["x", DataType.DT_FLOAT]]),
 *   req,
 * ); // "row"; req.inputs.x has shape [2]
 * ```
 */
export function fillPredictRequestFromJson(
  body: Uint8Array,
  getInfoMap: GetTensorInfoMap,
  request: PredictRequest,
  parser?: JsonParser,
): JsonPredictRequestFormat {
  const decoded = predictTensorsFromJson(
    body,
    getInfoMap,
    request.modelSpec?.signatureName ?? "",
    parser,
  );
  if (decoded.signatureName !== undefined && request.modelSpec) {
    request.modelSpec.signatureName = decoded.signatureName;
  }
  const out: Record<string, TensorProto> = {};
  for (const [name, t] of decoded.inputs) setEntry(out, name, jsonTensorToProto(t));
  request.inputs = out;
  return decoded.format;
}

// ---------------------------------------------------------------------------------------------
// Classify / Regress requests

type FeatureKind = "bytesList" | "floatList" | "int64List";

/** A feature being built: the kind its first value fixed, and the values. */
interface FeatureBuilder {
  kind: FeatureKind | undefined;
  bytes: Uint8Array[];
  floats: number[];
  ints: bigint[];
}

function incompatibleKind(name: string, f: FeatureBuilder): ServingError {
  const kind = f.kind === "bytesList"
    ? "bytes"
    : f.kind === "floatList"
    ? "float"
    : f.kind === "int64List"
    ? "int64"
    : "UNKNOWN";
  return invalid(`Unexpected element type in feature: ${name} expecting type: ${kind}`);
}

function requireKind(name: string, f: FeatureBuilder, kind: FeatureKind): void {
  if (f.kind !== undefined && f.kind !== kind) throw incompatibleKind(name, f);
  f.kind = kind;
}

/** `AddValueToFeature`. */
function addValueToFeature(doc: JsonDoc, i: number, name: string, f: FeatureBuilder): void {
  const unexpected = () =>
    invalid(
      `Feature: ${name} has element with unexpected JSON type: ${jsonTypeString(doc, i)}`,
    );
  switch (doc.kind[i]) {
    case JsonType.Null:
    case JsonType.Array:
      throw unexpected();
    case JsonType.False:
    case JsonType.True:
      requireKind(name, f, "int64List");
      f.ints.push(doc.kind[i] === JsonType.True ? 1n : 0n);
      return;
    case JsonType.Object:
      if (!isBase64Object(doc, i)) throw unexpected();
      requireKind(name, f, "bytesList");
      f.bytes.push(decodeBase64Object(doc, i));
      return;
    case JsonType.String:
      requireKind(name, f, "bytesList");
      f.bytes.push(doc.stringBytes(i).slice());
      return;
    default:
      if (doc.is(i, NumberFlag.Double)) {
        requireKind(name, f, "floatList");
        f.floats.push(Math.fround(doc.num[i]));
      } else {
        requireKind(name, f, "int64List");
        if (!doc.is(i, NumberFlag.Int64) && doc.is(i, NumberFlag.Uint64)) {
          throw invalid(`Feature: ${name} has uint64_t element. Only int64_t is supported.`);
        }
        f.ints.push(doc.bigint(i));
      }
  }
}

function buildFeature(f: FeatureBuilder): Feature {
  switch (f.kind) {
    case "bytesList":
      return create(FeatureSchema, { kind: { case: "bytesList", value: { value: f.bytes } } });
    case "floatList":
      return create(FeatureSchema, { kind: { case: "floatList", value: { value: f.floats } } });
    case "int64List":
      return create(FeatureSchema, { kind: { case: "int64List", value: { value: f.ints } } });
    default:
      return create(FeatureSchema);
  }
}

/** `MakeExampleFromJsonObject`. */
function exampleFromJson(doc: JsonDoc, i: number): Example {
  if (!doc.isObject(i)) {
    throw invalid(`Example must be JSON object but got JSON ${jsonTypeString(doc, i)}`);
  }
  const example = create(ExampleSchema, { features: {} });
  const map = example.features!.feature;
  for (const [k, content] of doc.members(i)) {
    const name = doc.string(k);
    const f: FeatureBuilder = { kind: undefined, bytes: [], floats: [], ints: [] };
    if (doc.isArray(content)) {
      for (const v of doc.elements(content)) addValueToFeature(doc, v, name, f);
    } else {
      addValueToFeature(doc, content, name, f);
    }
    setEntry(map, name, buildFeature(f));
  }
  return example;
}

/** `FillClassifyRegressRequestFromJson`. */
function fillClassifyRegress(
  body: Uint8Array,
  request: ClassificationRequest | RegressionRequest,
  parser?: JsonParser,
): void {
  const doc = parseJsonObject(body, parser);
  request.modelSpec ??= create(ModelSpecSchema);
  fillSignature(doc, request.modelSpec);
  let context: Example | undefined;
  const ctx = doc.findMember(0, CONTEXT_KEY);
  if (ctx >= 0) context = exampleFromJson(doc, ctx);
  const list = doc.findMember(0, EXAMPLES_KEY);
  if (list < 0) {
    throw formatError(
      doc,
      0,
      "When method is classify, key '",
      EXAMPLES_KEY,
      "' is expected and was not found",
    );
  }
  if (!doc.isArray(list)) {
    throw formatError(doc, 0, "Expecting '", EXAMPLES_KEY, "' value to be an list/array");
  }
  if (doc.size(list) === 0) {
    throw formatError(doc, 0, "'", EXAMPLES_KEY, "' value is an empty array");
  }
  const examples = doc.elements(list).map((v) => exampleFromJson(doc, v));
  request.input = create(
    InputSchema,
    context
      ? { kind: { case: "exampleListWithContext", value: { context, examples } } }
      : { kind: { case: "exampleList", value: { examples } } },
  );
}

/**
 * `FillClassificationRequestFromJson`: sets the signature name and `input` of a Classify request.
 *
 * @throws ServingError INVALID_ARGUMENT with upstream's messages
 */
export function fillClassificationRequestFromJson(
  body: Uint8Array,
  request: ClassificationRequest,
  parser?: JsonParser,
): void {
  fillClassifyRegress(body, request, parser);
}

/**
 * `FillRegressionRequestFromJson`: sets the signature name and `input` of a Regress request.
 *
 * @throws ServingError INVALID_ARGUMENT with upstream's messages
 */
export function fillRegressionRequestFromJson(
  body: Uint8Array,
  request: RegressionRequest,
  parser?: JsonParser,
): void {
  fillClassifyRegress(body, request, parser);
}

// ---------------------------------------------------------------------------------------------
// Responses

/** The JSON text of a response: a string, or bytes when a string value was not UTF-8. */
export type JsonText = string | Uint8Array;

/** `AddSingleValueAndAdvance`: one element of a tensor. */
function writeValue(w: PrettyWriter, t: Tensor, asBytes: boolean, k: number): void {
  switch (t.dtype) {
    case DataType.DT_FLOAT:
      w.raw(writeDecimal((t.data as Float32Array)[k], true));
      return;
    case DataType.DT_DOUBLE:
      w.raw(writeDecimal((t.data as Float64Array)[k], false));
      return;
    case DataType.DT_INT32:
    case DataType.DT_INT16:
    case DataType.DT_INT8:
    case DataType.DT_UINT8:
    case DataType.DT_UINT32:
    case DataType.DT_INT64:
    case DataType.DT_UINT64:
      w.integer((t.data as NumericArray)[k]);
      return;
    case DataType.DT_BOOL:
      w.bool((t.data as Uint8Array)[k] !== 0);
      return;
    case DataType.DT_STRING: {
      const s = (t.data as Uint8Array[])[k];
      if (asBytes) {
        w.startObject();
        w.key(BASE64_KEY);
        w.string(base64Escape(s));
        w.endObject();
      } else {
        w.bytes(s);
      }
      return;
    }
    default:
      throw invalid(`Failed to write JSON value for tensor type: ${dataTypeString(t.dtype)}`);
  }
}

/** `AddTensorValues`: the elements of `t` from dimension `dim` on, from element `offset`. */
function writeTensorValues(
  w: PrettyWriter,
  t: Tensor,
  asBytes: boolean,
  dim: number,
  offset: { k: number },
): void {
  const rank = t.shape.length;
  if (dim > rank - 1) {
    writeValue(w, t, asBytes, offset.k++);
    return;
  }
  w.startArray();
  const n = t.shape[dim];
  if (dim === rank - 1) {
    if (t.dtype === DataType.DT_FLOAT && w.singleLineArray && n > 0) {
      // The common case, batched: format the run, write it at once.
      const data = t.data as Float32Array;
      const run: string[] = new Array(n);
      for (let i = 0; i < n; i++) run[i] = writeDecimal(data[offset.k++], true);
      w.rawRun(run);
    } else {
      for (let i = 0; i < n; i++) writeValue(w, t, asBytes, offset.k++);
    }
  } else {
    for (let i = 0; i < n; i++) writeTensorValues(w, t, asBytes, dim + 1, offset);
  }
  w.endArray();
}

/** `IsNamedTensorBytes`. */
function isNamedTensorBytes(name: string, t: Tensor): boolean {
  return t.dtype === DataType.DT_STRING && name.endsWith(BYTES_SUFFIX);
}

/**
 * `MakeJsonFromTensors`: a Predict response's outputs as `{"predictions": ...}` (row) or
 * `{"outputs": ...}` (columnar). With one output its name is left out.
 *
 * @param outputs output name → tensor (TensorProtos are converted, in either value encoding)
 * @throws ServingError INVALID_ARGUMENT for no outputs, an output without a batch dimension
 *   or with a different batch size (row format), or a type JSON cannot express
 */
export function makeJsonFromTensors(
  outputs: Readonly<Record<string, TensorProto | Tensor>>,
  format: JsonPredictRequestFormat,
): JsonText {
  const names = Object.keys(outputs).sort();
  const tensors = names.map((n) => {
    const t = outputs[n];
    return "$typeName" in t ? tensorFromProto(t, `output "${n}"`) : t;
  });
  return makeJsonFromTensorList(names, tensors, format);
}

/**
 * {@link makeJsonFromTensors} for outputs given as lists.
 *
 * @param names the output names, sorted as `Array.prototype.sort` sorts them
 * @param tensors one tensor per name
 * @param format the request's format
 */
export function makeJsonFromTensorList(
  names: readonly string[],
  tensors: readonly Tensor[],
  format: JsonPredictRequestFormat,
): JsonText {
  if (names.length === 0) throw invalid("Cannot convert empty tensor map to JSON");
  const w = new PrettyWriter();
  const multi = names.length > 1;
  if (format === "row") {
    let batch = -1;
    for (let k = 0; k < names.length; k++) {
      const shape = tensors[k].shape;
      if (shape.length === 0) {
        throw invalid(`Tensor name: ${names[k]} has no shape information `);
      }
      if (batch >= 0 && batch !== shape[0]) {
        throw invalid(
          `Tensor name: ${names[k]} has inconsistent batch size: ${shape[0]} expecting: ${batch}`,
        );
      }
      batch = shape[0];
    }
    const offsets = names.map(() => ({ k: 0 }));
    const bytes = names.map((n, k) => isNamedTensorBytes(n, tensors[k]));
    w.startObject();
    w.key("predictions");
    w.startArray();
    for (let item = 0; item < batch; item++) {
      if (multi) w.startObject();
      w.singleLineArray = true;
      for (let k = 0; k < names.length; k++) {
        if (multi) w.key(names[k]);
        writeTensorValues(w, tensors[k], bytes[k], 1, offsets[k]);
      }
      w.singleLineArray = false;
      if (multi) w.endObject();
    }
    w.endArray();
    w.endObject();
  } else {
    w.startObject();
    w.key("outputs");
    if (multi) w.startObject();
    for (let k = 0; k < names.length; k++) {
      if (multi) w.key(names[k]);
      writeTensorValues(w, tensors[k], isNamedTensorBytes(names[k], tensors[k]), 0, { k: 0 });
    }
    if (multi) w.endObject();
    w.endObject();
  }
  return w.result();
}

/**
 * `MakeJsonFromClassificationResult`: `{"results": [[[label, score], ...], ...]}`.
 *
 * @throws ServingError INVALID_ARGUMENT for an empty result
 */
export function makeJsonFromClassificationResult(result: ClassificationResult | undefined): string {
  const all = result?.classifications ?? [];
  if (all.length === 0) throw invalid("Cannot convert empty ClassificationResults to JSON");
  const w = new PrettyWriter();
  w.startObject();
  w.key("results");
  w.startArray();
  for (const c of all) {
    w.singleLineArray = true;
    w.startArray();
    for (const cls of c.classes) {
      w.startArray();
      w.string(cls.label);
      w.raw(writeDecimal(Math.fround(cls.score), true));
      w.endArray();
    }
    w.endArray();
    w.singleLineArray = false;
  }
  w.endArray();
  w.endObject();
  return w.text();
}

/**
 * `MakeJsonFromRegressionResult`: `{"results": [value, ...]}`.
 *
 * @throws ServingError INVALID_ARGUMENT for an empty result
 */
export function makeJsonFromRegressionResult(result: RegressionResult | undefined): string {
  const all = result?.regressions ?? [];
  if (all.length === 0) throw invalid("Cannot convert empty RegressionResults to JSON");
  const w = new PrettyWriter();
  w.startObject();
  w.key("results");
  w.singleLineArray = true;
  w.startArray();
  for (const r of all) w.raw(writeDecimal(Math.fround(r.value), true));
  w.endArray();
  w.endObject();
  return w.text();
}

/** `MakeJsonFromStatus`: `{"error": message}`. */
export function makeJsonFromStatus(message: string): string {
  const w = new PrettyWriter();
  w.startObject();
  w.key("error");
  w.string(message);
  w.endObject();
  return w.text();
}
