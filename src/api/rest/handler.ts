/**
 * TF Serving's `HttpRestApiHandler` (model_servers/http_rest_api_handler.cc,
 * http_rest_api_util.cc) and the request part of `RestApiRequestDispatcher` (http_server.cc),
 * independent of the HTTP server: a method, a path and a body in, a status, headers and a body
 * out. Synchronous, as the ServingApi is.
 *
 * Paths (case-insensitive, matched against the path with its query string, as upstream):
 *
 * ```text
 * GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            → GetModelStatus
 * GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   → GetModelMetadata
 * POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    → Predict
 * POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify   → Classify
 * POST /v1/models/{name}[/versions/{v}|/labels/{l}]:regress    → Regress
 * OPTIONS /v1/...                                              → CORS preflight
 * ```
 *
 * Anything else under `/v1/` is `400 {"error": "Malformed request: <METHOD> <path>"}` (a wrong
 * method included: upstream never answers 405). Errors map to HTTP statuses by
 * {@link httpStatus}; the body is `{"error": message}`. Every answer has
 * `Content-Type: application/json` (the preflight has no body), plus the CORS headers when
 * enabled.
 *
 * Predict reads the signature's input types first (upstream's `GetInfoMap`), here through
 * `getModelMetadata` — the model is only reachable through the ServingApi. The decoded input
 * types are cached per SignatureDefMap (one per loaded version), so a new version is picked up
 * on its first request. As upstream, a servable that is missing is reported by that lookup, and
 * an unknown signature is `400 Serving signature name: "x" not found in signature def`.
 *
 * A big Predict body is decoded, and a big Predict response encoded, on a JSON codec worker
 * (codec.ts) with the same functions, so the event loop keeps answering others meanwhile.
 *
 * The common Predict — one numeric input sent as `{"instances": [...]}` or `{"inputs": ...}`,
 * numeric outputs — skips the general JSON tape and text writer: predict_json_fast.ts reads the
 * body straight into a typed array and writes the answer's bytes straight from the output
 * tensors, with exactly the general path's values and bytes; anything else, and every error,
 * takes the general path.
 *
 * @module
 */
import { create, fromBinary, toJson } from "@bufbuild/protobuf";
import {
  ClassificationRequestSchema,
} from "../../proto/gen/tensorflow_serving/apis/classification_pb.ts";
import {
  GetModelMetadataRequestSchema,
  type GetModelMetadataResponse,
  type SignatureDefMap,
  SignatureDefMapSchema,
} from "../../proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts";
import {
  GetModelStatusRequestSchema,
  GetModelStatusResponseSchema,
} from "../../proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import {
  type ModelSpec,
  ModelSpecSchema,
} from "../../proto/gen/tensorflow_serving/apis/model_pb.ts";
import {
  type PredictRequest,
  PredictRequestSchema,
  type PredictResponse,
} from "../../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import type { TensorProto } from "../../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { RegressionRequestSchema } from "../../proto/gen/tensorflow_serving/apis/regression_pb.ts";
import { Code, ServingError } from "../../errors.ts";
import type { DataType } from "../../tensor/dtype.ts";
import type { CallContext, ServingApi } from "../../model_server/serving_api.ts";
import { DEADLINE_MESSAGE } from "../../exec/executor.ts";
import { httpStatus } from "../status.ts";
import { JsonCodec } from "./codec.ts";
import { JsonParser } from "./json_parse.ts";
import {
  fillClassificationRequestFromJson,
  fillPredictRequestFromJson,
  fillRegressionRequestFromJson,
  type JsonPredictRequestFormat,
  type JsonText,
  makeJsonFromClassificationResult,
  makeJsonFromRegressionResult,
  makeJsonFromStatus,
  makeJsonFromTensorList,
  makeJsonFromTensors,
  predictTensorsFromJson,
  type TensorInfoMap,
} from "./json_tensor.ts";
import { PredictTensors } from "../../servables/predict_tensors.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { fastTensor, predictJsonBytes, scanPredictBody } from "./predict_json_fast.ts";
import { tensorToProto } from "../../tensor/tensor_proto.ts";

/** What the handler answers. */
export interface RestReply {
  /** The HTTP status. */
  readonly status: number;
  /** Response headers, in order. */
  readonly headers: readonly (readonly [string, string])[];
  /** The body (`null`: none). */
  readonly body: JsonText | null;
}

/** Options of {@link RestApiHandler}. */
export interface RestApiHandlerOptions {
  /**
   * `--rest_api_timeout_in_ms`: an inference call that takes longer answers 504
   * DEADLINE_EXCEEDED (0 or less: no limit). It is the call's deadline: one running on a worker
   * is answered at the deadline and its late result dropped; one run inline (cheap) is checked
   * when it returns.
   */
  readonly timeoutMs?: number;
  /** `--rest_api_enable_cors_support`: add the CORS headers to every answer. */
  readonly enableCors?: boolean;
  /**
   * A Predict body longer than this many bytes is decoded on a JSON codec worker (codec.ts),
   * not on the event loop. Default 1 MiB.
   */
  readonly workerBodyBytes?: number;
  /**
   * A Predict response with more output elements than this is encoded on a JSON codec worker.
   * Default 65536.
   */
  readonly workerOutputElements?: number;
}

/** Default {@link RestApiHandlerOptions.workerBodyBytes}: ~0.03 s of parsing inline. */
const DEFAULT_WORKER_BODY_BYTES = 1 << 20;
/** Default {@link RestApiHandlerOptions.workerOutputElements}: ~0.01 s of writing inline. */
const DEFAULT_WORKER_OUTPUT_ELEMENTS = 1 << 16;

/** The number of elements of a Predict response's outputs (from their shapes). */
function elementCount(outputs: Readonly<Record<string, TensorProto>>): number {
  let total = 0;
  for (const t of Object.values(outputs)) {
    let n = 1;
    for (const d of t.tensorShape?.dim ?? []) n *= Math.max(0, Number(d.size));
    total += n;
  }
  return total;
}

/** A call's context: the deadline, and the client's signal made only when asked for. */
class RestCallContext implements CallContext {
  constructor(
    readonly deadline: number | undefined,
    private readonly signalOf: (() => AbortSignal) | undefined,
  ) {}
  get signal(): AbortSignal | undefined {
    return this.signalOf?.();
  }
}

/** `kPredictionApiGegex` (sic) in http_rest_api_util.cc, for POST. */
const PREDICTION_API =
  /^\/v1\/models\/([^/:]+)(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?:(classify|regress|predict)$/i;
/** `kModelStatusApiRegex`, for GET. */
const MODEL_STATUS_API =
  /^\/v1\/models(?:\/([^/:]+))?(?:(?:\/versions\/(\d+))|(?:\/labels\/([^/:]+)))?(?:\/(metadata))?$/i;
/** `HttpRestApiHandler::kPathRegex`: what the dispatcher hands to this handler. */
export const REST_PATH = /^\/v1\/.*$/i;

/**
 * `REST_PATH.test(path)` without a RegExp call: `/v1/` (any case) then anything but a line
 * terminator (which a request target cannot hold: it has no space or control character and its
 * characters are bytes).
 */
export function isRestPath(path: string): boolean {
  if (
    path.length < 4 || path.charCodeAt(0) !== 0x2f || (path.charCodeAt(1) | 0x20) !== 0x76 ||
    path.charCodeAt(2) !== 0x31 || path.charCodeAt(3) !== 0x2f
  ) {
    return false;
  }
  for (let i = 4; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029) return false;
  }
  return true;
}

const JSON_HEADER = ["Content-Type", "application/json"] as const;
/** `AddCORSHeaders`. */
const CORS_HEADERS = [
  ["Access-Control-Allow-Origin", "*"],
  ["Access-Control-Allow-Methods", "POST, GET"],
  ["Access-Control-Allow-Headers", "Content-Type"],
] as const;

const JSON_HEADERS = Object.freeze([JSON_HEADER]);
const JSON_CORS_HEADERS = Object.freeze([JSON_HEADER, ...CORS_HEADERS]);

const SIGNATURE_DEF = "signature_def";
const DEFAULT_SIGNATURE = "serving_default";
const MAX_INT64 = 9223372036854775807n;

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/** `DecodeArg` (curl_easy_unescape): `%XX` → byte; anything else as it is. */
export function unescapePath(s: string): string {
  if (s.indexOf("%") < 0) return s;
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length);
  let n = 0;
  const hex = (c: number) =>
    c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : -1;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 0x25 && i + 2 < bytes.length) {
      const h = hex(bytes[i + 1]);
      const l = hex(bytes[i + 2]);
      if (h >= 0 && l >= 0) {
        out[n++] = (h << 4) | l;
        i += 2;
        continue;
      }
    }
    out[n++] = c;
  }
  return new TextDecoder().decode(out.subarray(0, n));
}

/** The model part of a path (`ParseModelInfo`). */
export interface ModelInfo {
  /** Whether the path matched the method's pattern. */
  readonly matched: boolean;
  /** The model name, percent-decoded (empty when absent). */
  readonly name: string;
  /** `/versions/{v}`. */
  readonly version?: bigint;
  /** `/labels/{l}`, percent-decoded. */
  readonly label?: string;
  /** `classify`, `regress` or `predict` as written (POST). */
  readonly method: string;
  /** `metadata` as written (GET). */
  readonly subresource: string;
}

/**
 * `ParseModelInfo`: matches a path against the POST or GET pattern.
 *
 * @throws ServingError INVALID_ARGUMENT `Failed to convert version: … to numeric.`
 */
export function parseModelInfo(method: string, path: string): ModelInfo {
  let m: RegExpExecArray | null = null;
  if (method === "POST") m = PREDICTION_API.exec(path);
  else if (method === "GET") m = MODEL_STATUS_API.exec(path);
  if (!m) return { matched: false, name: "", method: "", subresource: "" };
  const name = m[1] ? unescapePath(m[1]) : "";
  let version: bigint | undefined;
  if (m[2]) {
    const v = BigInt(m[2]);
    if (v > MAX_INT64) throw invalid(`Failed to convert version: ${m[2]} to numeric.`);
    version = v;
  }
  const label = m[3] ? unescapePath(m[3]) : undefined;
  return {
    matched: true,
    name,
    version,
    label,
    method: method === "POST" ? m[4] : "",
    subresource: method === "GET" ? (m[4] ?? "") : "",
  };
}

/** `FillModelSpecWithNameVersionAndLabel`. */
function modelSpec(info: ModelInfo): ModelSpec {
  if (info.version !== undefined && info.label !== undefined) {
    throw invalid(
      `Both model version (${info.version}) and model version label (${info.label}) cannot be supplied.`,
    );
  }
  // The message as create() makes it, written out (create() costs a request's worth of time).
  return {
    $typeName: "tensorflow.serving.ModelSpec",
    name: info.name,
    versionChoice: info.version !== undefined
      ? {
        case: "version",
        value: { $typeName: "google.protobuf.Int64Value", value: info.version },
      }
      : info.label !== undefined
      ? { case: "versionLabel", value: info.label }
      : { case: undefined },
    signatureName: "",
  };
}

/** Protobuf JSON as `MessageToJsonString` with `add_whitespace` prints it (1-space indent). */
function protoJson(value: unknown): string {
  return JSON.stringify(value, null, 1);
}

/** Paths whose {@link parseModelInfo} a handler keeps per method (then it starts over). */
const MODEL_INFO_CACHE = 256;
/** Longer paths are not kept (the cache holds at most 256 × 256 characters). */
const MODEL_INFO_PATH_CHARS = 256;

/** Nodes a parser may keep between requests before it is replaced (memory after a huge body). */
const MAX_KEPT_PARSER_NODES = 1 << 22;

/**
 * The REST API over a ServingApi.
 *
 * @example
 * ```ts
 * const handler = new RestApiHandler(api, { timeoutMs: 30_000 });
 * const reply = handler.handle("POST", "/v1/models/half_plus_two:predict",
 *   new TextEncoder().encode('{"instances": [1.0, 2.0]}'));
 * reply.status; // 200
 * ```
 */
export class RestApiHandler {
  readonly #api: ServingApi;
  readonly #timeoutMs: number;
  readonly #cors: boolean;
  readonly #workerBodyBytes: number;
  readonly #workerOutputElements: number;
  readonly #codec = new JsonCodec();
  #parser = new JsonParser();
  /** Input types per signature, per packed SignatureDefMap (one per loaded version). */
  readonly #inputs = new WeakMap<Uint8Array, Map<string, TensorInfoMap>>();
  /** The metadata JSON of a packed SignatureDefMap. */
  readonly #signatureJson = new WeakMap<Uint8Array, string>();
  #lastInfos: TensorInfoMap | undefined;
  #lastInput: { readonly name: string; readonly dtype: DataType } | undefined;
  /** {@link parseModelInfo} results by path, for POST and GET. */
  readonly #postPaths = new Map<string, ModelInfo>();
  readonly #getPaths = new Map<string, ModelInfo>();

  /**
   * @param api the serving operations
   * @param options timeout and CORS
   */
  constructor(api: ServingApi, options: RestApiHandlerOptions = {}) {
    this.#api = api;
    this.#timeoutMs = options.timeoutMs ?? 0;
    this.#cors = options.enableCors ?? false;
    this.#workerBodyBytes = options.workerBodyBytes ?? DEFAULT_WORKER_BODY_BYTES;
    this.#workerOutputElements = options.workerOutputElements ?? DEFAULT_WORKER_OUTPUT_ELEMENTS;
  }

  /**
   * Handles a request whose path is under `/v1/` (`RestApiRequestDispatcher::ProcessRequest`).
   *
   * @param method the HTTP method
   * @param path the path with its query string, as received (not decoded)
   * @param body the request body; one over `workerBodyBytes` is handed to a codec worker,
   *   its buffer transferred when the body is the whole of it (the caller's view is emptied)
   * @param origin the `Origin` header (for a preflight)
   * @param signal gives a signal aborted when the client goes away (a queued call is then
   *   dropped); asked for only when a call is queued
   * @returns the reply; a promise when the inference runs on a worker or the JSON is decoded
   *   or encoded on a codec worker
   */
  handle(
    method: string,
    path: string,
    body: Uint8Array,
    origin?: string | null,
    signal?: () => AbortSignal,
  ): RestReply | Promise<RestReply> {
    if (method === "OPTIONS") {
      // A preflight: no body on success. (Upstream also sends an empty body on failure; here
      // the error is JSON like every other.)
      if (origin && /https?:\/\//.test(origin)) {
        return { status: 200, headers: this.#cors ? [...CORS_HEADERS] : [], body: null };
      }
      return this.#error(
        new ServingError(Code.FAILED_PRECONDITION, "Origin header is missing in CORS preflight"),
      );
    }
    try {
      const output = this.#process(method, path, body, signal);
      if (output instanceof Promise) {
        return output.then(
          (o) => ({ status: 200, headers: this.#headers(), body: o }),
          (e) => this.#error(ServingError.from(e)),
        );
      }
      return { status: 200, headers: this.#headers(), body: output };
    } catch (e) {
      return this.#error(ServingError.from(e));
    } finally {
      if (this.#parser.capacity > MAX_KEPT_PARSER_NODES) this.#parser = new JsonParser();
    }
  }

  #headers(): readonly (readonly [string, string])[] {
    // One array for every answer (the HTTP server caches the head it encodes per array).
    return this.#cors ? JSON_CORS_HEADERS : JSON_HEADERS;
  }

  #error(e: ServingError): RestReply {
    return {
      status: httpStatus(e.code),
      headers: this.#headers(),
      body: makeJsonFromStatus(e.message),
    };
  }

  /**
   * {@link parseModelInfo}, remembered per method and path (clients call the same few paths;
   * the pattern is matched once per path rather than per request). At most
   * {@link MODEL_INFO_CACHE} paths of up to {@link MODEL_INFO_PATH_CHARS} characters are kept;
   * a path that throws is not kept.
   */
  #modelInfo(method: string, path: string): ModelInfo {
    const byPath = method === "POST"
      ? this.#postPaths
      : method === "GET"
      ? this.#getPaths
      : undefined;
    if (byPath === undefined || path.length > MODEL_INFO_PATH_CHARS) {
      return parseModelInfo(method, path);
    }
    let info = byPath.get(path);
    if (info === undefined) {
      info = parseModelInfo(method, path);
      if (byPath.size >= MODEL_INFO_CACHE) byPath.clear();
      byPath.set(path, info);
    }
    return info;
  }

  /** `HttpRestApiHandler::ProcessRequest`. */
  #process(
    method: string,
    path: string,
    body: Uint8Array,
    signal: (() => AbortSignal) | undefined,
  ): JsonText | Promise<JsonText> {
    const info = this.#modelInfo(method, path);
    if (info.matched && method === "POST") {
      switch (info.method) {
        case "classify":
          return this.#classify(info, body, signal);
        case "regress":
          return this.#regress(info, body, signal);
        case "predict":
          return this.#predict(info, body, signal);
      }
    } else if (info.matched && method === "GET") {
      return info.subresource === "metadata" ? this.#metadata(info) : this.#status(info);
    }
    throw invalid(`Malformed request: ${method} ${path}`);
  }

  /**
   * Runs an inference call under `--rest_api_timeout_in_ms`, then `then` on its response. A
   * call answered inline is checked against the limit when it returns (it could not be cut
   * short); one run on a worker is given the limit as its deadline.
   */
  #timed<R, O>(
    call: (ctx: CallContext) => R | Promise<R>,
    signal: (() => AbortSignal) | undefined,
    then: (r: R) => O,
  ): O | Promise<O> {
    const t0 = this.#timeoutMs > 0 ? performance.now() : 0;
    const ctx = new RestCallContext(
      this.#timeoutMs > 0 ? Date.now() + this.#timeoutMs : undefined,
      signal,
    );
    const r = call(ctx);
    if (r instanceof Promise) return r.then(then);
    if (this.#timeoutMs > 0 && performance.now() - t0 > this.#timeoutMs) {
      // What DirectSession reports when RunOptions.timeout_in_ms expires.
      throw new ServingError(Code.DEADLINE_EXCEEDED, DEADLINE_MESSAGE);
    }
    return then(r);
  }

  #classify(info: ModelInfo, body: Uint8Array, signal?: () => AbortSignal) {
    const req = create(ClassificationRequestSchema, { modelSpec: modelSpec(info) });
    fillClassificationRequestFromJson(body, req, this.#parser);
    return this.#timed(
      (ctx) => this.#api.classify(req, "rest", ctx),
      signal,
      (res) => makeJsonFromClassificationResult(res.result),
    );
  }

  #regress(info: ModelInfo, body: Uint8Array, signal?: () => AbortSignal) {
    const req = create(RegressionRequestSchema, { modelSpec: modelSpec(info) });
    fillRegressionRequestFromJson(body, req, this.#parser);
    return this.#timed(
      (ctx) => this.#api.regress(req, "rest", ctx),
      signal,
      (res) => makeJsonFromRegressionResult(res.result),
    );
  }

  #predict(info: ModelInfo, body: Uint8Array, signal?: () => AbortSignal) {
    const spec = modelSpec(info);
    const api = this.#api;
    if (
      body.length <= this.#workerBodyBytes && api.predictTensors !== undefined &&
      api.signatureInputTypes !== undefined
    ) {
      return this.#predictTensors(spec, body, signal);
    }
    const req = create(PredictRequestSchema, { modelSpec: spec });
    if (body.length > this.#workerBodyBytes) {
      // Decoded on a worker. The signatures are looked up first (upstream looks them up once
      // the body's signature_name is read); a failed lookup is thrown at that same point.
      let signatures: Map<string, TensorInfoMap> | undefined;
      let lookupError: ServingError | undefined;
      try {
        signatures = this.#signatureInputs(spec);
      } catch (e) {
        lookupError = ServingError.from(e);
      }
      const decoded = this.#codec.decodePredict(
        body,
        spec.signatureName,
        signatures,
        lookupError,
      );
      if (decoded) {
        return decoded.then((d) => {
          req.modelSpec!.signatureName = d.signatureName;
          req.inputs = d.inputs;
          return this.#infer(req, d.format, signal);
        });
      }
    }
    const format = fillPredictRequestFromJson(
      body,
      (signature) => this.#inputTypes(spec, signature),
      req,
      this.#parser,
    );
    return this.#infer(req, format, signal);
  }

  /**
   * Predict without message objects: the JSON body straight into tensors (the signature's input
   * types looked up per loaded version), the output tensors straight into JSON.
   */
  #predictTensors(spec: ModelSpec, body: Uint8Array, signal?: () => AbortSignal) {
    const api = this.#api;
    // The common body (one numeric list or number) straight into a typed array; anything else,
    // and every error, the general way.
    let inputs: Map<string, Tensor> | undefined;
    let format: JsonPredictRequestFormat = "row";
    const scan = scanPredictBody(body);
    if (scan !== undefined) {
      // As the general path: the signature is looked up once the body has been read.
      const infos = this.#signatureInputTypes(spec, spec.signatureName);
      if (infos.size === 1) {
        const only = this.#onlyInput(infos);
        const t = fastTensor(scan, only.dtype);
        if (t !== undefined) (inputs = new Map()).set(only.name, t);
      }
      format = scan.format;
    }
    if (inputs === undefined) {
      const decoded = predictTensorsFromJson(
        body,
        (signature) => this.#signatureInputTypes(spec, signature),
        spec.signatureName,
        this.#parser,
      );
      if (decoded.signatureName !== undefined) spec.signatureName = decoded.signatureName;
      inputs = decoded.inputs;
      format = decoded.format;
    }
    // #timed, written out: no closures on the hot path.
    const timeoutMs = this.#timeoutMs;
    const t0 = timeoutMs > 0 ? performance.now() : 0;
    const ctx = new RestCallContext(timeoutMs > 0 ? Date.now() + timeoutMs : undefined, signal);
    const res = api.predictTensors!({ modelSpec: spec, inputs }, "rest", ctx);
    if (res instanceof Promise) return res.then((r) => this.#predictAnswer(r, format));
    if (timeoutMs > 0 && performance.now() - t0 > timeoutMs) {
      // What DirectSession reports when RunOptions.timeout_in_ms expires.
      throw new ServingError(Code.DEADLINE_EXCEEDED, DEADLINE_MESSAGE);
    }
    return this.#predictAnswer(res, format);
  }

  /** `GetInfoMap` on the tensor path: a signature's input types (`""`: the default). */
  #signatureInputTypes(spec: ModelSpec, signature: string): TensorInfoMap {
    const name = signature === "" ? DEFAULT_SIGNATURE : signature;
    const inputs = this.#api.signatureInputTypes!(spec).get(name);
    if (!inputs) throw invalid(`Serving signature name: "${name}" not found in signature def`);
    return inputs;
  }

  /** A tensor-path Predict's answer (encoded on a worker when its outputs are many). */
  #predictAnswer(
    res: PredictResponse | PredictTensors,
    format: JsonPredictRequestFormat,
  ): JsonText | Promise<JsonText> {
    if (!(res instanceof PredictTensors)) return this.#encode(res.outputs, format);
    let elements = 0;
    for (const t of res.tensors) elements += t.size;
    if (elements > this.#workerOutputElements) {
      const protos: Record<string, TensorProto> = {};
      res.aliases.forEach((alias, i) =>
        Object.defineProperty(protos, alias, {
          value: tensorToProto(res.tensors[i], true),
          enumerable: true,
        })
      );
      return this.#encode(protos, format);
    }
    // The aliases come sorted (the fetch order), as the writer lists them.
    return predictJsonBytes(res.aliases, res.tensors, format) ??
      makeJsonFromTensorList(res.aliases, res.tensors, format);
  }

  /** The one input of a signature's input map (remembered for the last map asked about). */
  #onlyInput(infos: TensorInfoMap): { readonly name: string; readonly dtype: DataType } {
    if (this.#lastInfos !== infos) {
      const [[name, dtype]] = infos;
      this.#lastInfos = infos;
      this.#lastInput = { name, dtype };
    }
    return this.#lastInput!;
  }

  /** Encodes Predict outputs (on a worker when they are many). */
  #encode(
    outputs: Readonly<Record<string, TensorProto>>,
    format: JsonPredictRequestFormat,
  ): JsonText | Promise<JsonText> {
    if (elementCount(outputs) > this.#workerOutputElements) {
      const encoded = this.#codec.encodePredict(outputs, format);
      if (encoded) return encoded;
    }
    return makeJsonFromTensors(outputs, format);
  }

  /** Runs a decoded Predict and encodes its outputs (on a worker when they are many). */
  #infer(
    req: PredictRequest,
    format: JsonPredictRequestFormat,
    signal?: () => AbortSignal,
  ): JsonText | Promise<JsonText> {
    const out = this.#timed(
      (ctx) => this.#api.predict(req, "rest", ctx),
      signal,
      (res): JsonText | Promise<JsonText> => this.#encode(res.outputs, format),
    );
    return out as JsonText | Promise<JsonText>;
  }

  /** Stops the JSON codec workers (calls still decoding fail with UNAVAILABLE). */
  close(): void {
    this.#codec.close();
  }

  /** `GetInfoMap`: the input types of a signature of the version the spec resolves to. */
  #inputTypes(spec: ModelSpec, signatureName: string): TensorInfoMap {
    const sigs = this.#signatureInputs(spec);
    const name = signatureName === "" ? DEFAULT_SIGNATURE : signatureName;
    const inputs = sigs.get(name);
    if (!inputs) throw invalid(`Serving signature name: "${name}" not found in signature def`);
    return inputs;
  }

  /** The input types of every signature of the version the spec resolves to. */
  #signatureInputs(spec: ModelSpec): Map<string, TensorInfoMap> {
    const res = this.#api.getModelMetadata(
      create(GetModelMetadataRequestSchema, {
        modelSpec: { name: spec.name, versionChoice: spec.versionChoice },
        metadataField: [SIGNATURE_DEF],
      }),
      // Not a client's call: metrics do not count it.
      "internal",
    );
    const packed = signatureDefBytes(res);
    let sigs = this.#inputs.get(packed);
    if (!sigs) {
      sigs = new Map();
      const map = unpackSignatureDefMap(packed);
      for (const [name, def] of Object.entries(map.signatureDef)) {
        const inputs = new Map<string, DataType>();
        for (const [alias, ti] of Object.entries(def.inputs)) inputs.set(alias, ti.dtype);
        sigs.set(name, inputs);
      }
      this.#inputs.set(packed, sigs);
    }
    return sigs;
  }

  /** `ProcessModelStatusRequest`. */
  #status(info: ModelInfo): string {
    if (info.name === "") throw invalid("Missing model name in request.");
    const res = this.#api.getModelStatus(
      create(GetModelStatusRequestSchema, { modelSpec: modelSpec(info) }),
      "rest",
    );
    // The json_names of these fields are their proto names.
    return protoJson(
      toJson(GetModelStatusResponseSchema, res, {
        alwaysEmitImplicit: true,
        useProtoFieldName: true,
      }),
    );
  }

  /** `ProcessModelMetadataRequest` and its `ToJsonString`, which prints the map unpacked. */
  #metadata(info: ModelInfo): string {
    if (info.name === "") throw invalid("Missing model name in request.");
    const res = this.#api.getModelMetadata(
      create(GetModelMetadataRequestSchema, {
        modelSpec: modelSpec(info),
        metadataField: [SIGNATURE_DEF],
      }),
      "rest",
    );
    const opts = { alwaysEmitImplicit: true, useProtoFieldName: true } as const;
    const spec = protoJson(toJson(ModelSpecSchema, res.modelSpec ?? create(ModelSpecSchema), opts));
    const packed = signatureDefBytes(res);
    let sigs = this.#signatureJson.get(packed);
    if (sigs === undefined) {
      sigs = protoJson(toJson(SignatureDefMapSchema, unpackSignatureDefMap(packed), opts));
      this.#signatureJson.set(packed, sigs);
    }
    return `{\n"model_spec":${spec},\n"metadata": {"signature_def": ${sigs}}\n}\n`;
  }
}

/** The packed SignatureDefMap of a GetModelMetadata response. */
function signatureDefBytes(res: GetModelMetadataResponse): Uint8Array {
  const any = res.metadata[SIGNATURE_DEF];
  if (!any) {
    throw new ServingError(
      Code.INTERNAL,
      "Failed to find 'signature_def' key in the GetModelMetadataResponse metadata map.",
    );
  }
  if (any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1) !== SignatureDefMapSchema.typeName) {
    throw new ServingError(Code.INTERNAL, "Failed to unpack 'Any' object to 'SignatureDefMap'.");
  }
  return any.value;
}

function unpackSignatureDefMap(bytes: Uint8Array): SignatureDefMap {
  try {
    return fromBinary(SignatureDefMapSchema, bytes);
  } catch {
    throw new ServingError(Code.INTERNAL, "Failed to unpack 'Any' object to 'SignatureDefMap'.");
  }
}
