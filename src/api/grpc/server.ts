/**
 * The gRPC transport: serves TF Serving's PredictionService and ModelService (and, when asked,
 * grpc.health.v1.Health) over the project's own HTTP/2 connection layer (h2/connection.ts) on
 * `Deno.listen` (TCP and UNIX sockets), by decoding a request, calling one {@link ServingApi}
 * method and encoding the response or the error's status.
 *
 * Behaviour copied from the C++ server TF Serving runs on:
 * - the receive limit is INT_MAX (`builder.SetMaxMessageSize(kint32max)` in
 *   tensorflow_serving/model_servers/server.cc, an alias of SetMaxReceiveMessageSize): a message
 *   declaring more is RESOURCE_EXHAUSTED "Received message larger than max (N vs. 2147483647)",
 *   the text of grpc core's message_size_filter.cc; the send limit is unlimited;
 * - a request that does not parse is INTERNAL with an empty message (see service_definition.ts);
 * - the health service answers as grpc++'s DefaultHealthCheckService: Check of an unknown
 *   service is NOT_FOUND "service name unknown", a name over 200 bytes is INVALID_ARGUMENT
 *   "could not parse request", Watch sends SERVICE_UNKNOWN for an unknown name and stays open,
 *   and on shutdown every watcher is sent NOT_SERVING;
 * - shutdown sends GOAWAY on every connection, lets the calls in flight finish, and cancels
 *   whatever still runs after the grace period.
 *
 * The gRPC wire protocol (grpc/grpc doc/PROTOCOL-HTTP2.md): a request is HEADERS (`:method POST`,
 * `:path /<service>/<method>`, `content-type: application/grpc[+…]`, optional `grpc-timeout`)
 * and length-prefixed messages in DATA; an answer is HEADERS (`:status 200`), the message, and
 * trailers (`grpc-status`, `grpc-message` percent-encoded), or Trailers-Only for an error.
 * A content-type that is not `application/grpc…` is answered HTTP 415, as the protocol asks;
 * an unknown path is UNIMPLEMENTED with an empty message (grpc++'s UnknownMethodHandler); a
 * `grpc-timeout` sets the call's deadline (a call still unanswered at its deadline is answered
 * DEADLINE_EXCEEDED "Deadline Exceeded", grpc core's deadline_filter text, and its signal
 * aborted; a malformed value is ignored); a client's RST_STREAM (cancel, its own deadline) or a
 * closed connection aborts the call's signal, so a queued call is dropped before it runs.
 *
 * Compressed requests (flag 1) are inflated for `grpc-encoding` gzip and deflate (zlib), as
 * grpc-js and grpc core do, within the decode limit of one request; an inflate failure is
 * INTERNAL "Unexpected error decompressing data for algorithm <name>" (grpc core's
 * compression_filter.cc). Answers are never compressed (identity, which every client accepts).
 *
 * Our own choices where the protocol leaves it open (documented, not upstream's text):
 * - a compressed message with another `grpc-encoding` (or none) is UNIMPLEMENTED `Received
 *   message compressed with unsupported encoding "<name>"` (grpc-js's wording);
 * - a unary call with no request message, a truncated one, or a second one is INTERNAL "" (as
 *   a request that does not parse);
 * - request headers over SETTINGS_MAX_HEADER_LIST_SIZE are RESOURCE_EXHAUSTED;
 * - a `:method` other than POST is HTTP 405.
 *
 * Limits (besides the connection's, see h2/connection.ts): a message's raw bytes count against
 * the decode limit of one request (`--max_request_decoded_bytes`, src/tensor/limits.ts): a
 * message declaring more is refused RESOURCE_EXHAUSTED before it is read; and all request bytes
 * buffered at once over every connection stay within {@link GrpcLimits.maxBufferedRequestBytes}
 * (a call that would pass it is refused RESOURCE_EXHAUSTED). Bytes are buffered as they arrive,
 * never allocated from a declared length alone. A request that gets no bytes for
 * {@link GrpcLimits.requestTimeoutMs} is reset, and at most {@link GrpcLimits.maxConnections}
 * connections are open (the quietest idle one makes room for a new one).
 *
 * Start-up (issue 10): only Predict's messages are imported with this module. Every other
 * method's message schemas (and the service descriptors) are imported on its first call, which
 * awaits that import once ({@link lazyMethod}); the paths are known without them
 * ({@link LAZY_METHODS}).
 *
 * @module
 */
import { create, type DescMessage, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Code, ServingError } from "../../errors.ts";
import type { LogFn } from "../../log.ts";
import type * as HealthPb from "../../proto/gen/grpc/health/v1/health_pb.ts";
import type { CallContext, HealthStatus, ServingApi } from "../../model_server/serving_api.ts";
import { type DecodeLimits, DEFAULT_DECODE_LIMITS } from "../../tensor/limits.ts";
import {
  PredictRequestSchema,
  PredictResponseSchema,
} from "../../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { grpcStatus } from "../status.ts";
import {
  decodeRequest,
  RefusedRequest,
  UNDECODABLE,
  UNDECODABLE_STATUS,
} from "./service_definition.ts";
import { PredictOutputs } from "../../servables/predict.ts";
import {
  encodePredictOutputPieces,
  largeValuesOffset,
  NEED_MORE,
  readPredictRequest,
} from "./predict_codec.ts";
import {
  ALIGN_SLACK,
  POOLED_MAX_BYTES,
  POOLED_MIN_BYTES,
  type RequestBuffer,
  RequestMemory,
} from "../../tensor/request_memory.ts";
import {
  DEFAULT_H2_LIMITS,
  H2Connection,
  type H2Handler,
  type H2Limits,
  H2Stream,
} from "./h2/connection.ts";
import { HpackEncoder } from "./h2/hpack.ts";
import { ErrorCode } from "./h2/frames.ts";

/** The transport's limits beyond the connection's. */
export interface GrpcLimits extends Partial<H2Limits> {
  /** Request bytes buffered at once over all connections (default 1 GiB). */
  readonly maxBufferedRequestBytes?: number;
  /**
   * Connections open at once (default 1000): when a new one comes at the limit, the connection
   * quiet longest without an open stream is closed to make room; if every one has calls open,
   * the new one is closed.
   */
  readonly maxConnections?: number;
  /**
   * How long a call's incomplete request may go without new bytes (default 60 s; counted from
   * its headers, then from its last DATA): a call whose request stalls that long is reset (RST_STREAM CANCEL, as PROTOCOL-HTTP2.md says a server
   * cancels a call whose payload is incomplete), so a client cannot hold streams, buffer budget
   * or a connection slot by never finishing its requests.
   */
  readonly requestTimeoutMs?: number;
}

/** Options of {@link startGrpcServer}. */
export interface GrpcServerOptions {
  /** The address to bind, e.g. `0.0.0.0` or `127.0.0.1`. */
  readonly host: string;
  /** The TCP port to bind; 0 picks a free one (tests); undefined serves no TCP port. */
  readonly port?: number;
  /** A UNIX socket path to serve on as well (`--grpc_socket_path`). */
  readonly socketPath?: string;
  /** Serve grpc.health.v1.Health (`--enable_grpc_healthcheck_service`). */
  readonly enableHealthCheck: boolean;
  /** Where transport log lines go (nothing is logged per call). */
  readonly log?: LogFn;
  /**
   * How often Health/Watch re-reads `api.health()` to notice a change (default 1000 ms). The
   * API has no change events, so watchers are served by one shared poll that runs only while
   * someone watches.
   */
  readonly healthWatchIntervalMs?: number;
  /** Bounds on what decoding a request may allocate (defaults when omitted). */
  readonly decodeLimits?: DecodeLimits;
  /** Connection and buffering limits (defaults when omitted). */
  readonly limits?: GrpcLimits;
}

/** A running gRPC server. */
export interface GrpcServer extends AsyncDisposable {
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /**
   * Stops accepting calls, lets calls in flight finish, and after `graceMs` cancels whatever
   * is still running. Resolves once the server is down; calling it again returns the same
   * promise.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** A status to answer. */
type GrpcStatus = { readonly code: number; readonly details: string };

/** The grace `await using` gives calls in flight. */
const DISPOSE_GRACE_MS = 1000;

/** grpc++ DefaultHealthCheckService's MAX_SERVICE_NAME_LENGTH. */
const MAX_SERVICE_NAME_LENGTH = 200;

/** The receive limit, `kint32max` as TF Serving sets it. */
const MAX_RECEIVE_MESSAGE = 2147483647;

/** Messages of at most this many bytes are carved from a shared slab of SLAB_BYTES. */
const SMALL_MESSAGE = 2048;
const SLAB_BYTES = 32 << 10;

/** How often deadlines, preface and write timeouts and the per-second counters are checked. */
const SWEEP_MS = 250;

/**
 * grpc++'s health service parses its own requests, so its answers differ from the generic
 * INTERNAL "": Check says INVALID_ARGUMENT, Watch INTERNAL, both "could not parse request".
 * A service name longer than {@link MAX_SERVICE_NAME_LENGTH} counts as unparsable.
 */
const UNPARSABLE_CHECK: GrpcStatus = {
  code: Code.INVALID_ARGUMENT,
  details: "could not parse request",
};
const UNPARSABLE_WATCH: GrpcStatus = { code: Code.INTERNAL, details: "could not parse request" };

/** The services served here, by full name (the paths' first part). */
export const PREDICTION_SERVICE = "tensorflow.serving.PredictionService";
export const MODEL_SERVICE = "tensorflow.serving.ModelService";
export const HEALTH_SERVICE = "grpc.health.v1.Health";

/** Predict's path: the one method whose messages are imported with this module. */
export const PREDICT_PATH = `/${PREDICTION_SERVICE}/Predict`;

/** The status of anything a handler threw. */
function toStatus(e: unknown): GrpcStatus {
  // A ServingError keeps its code and message; anything else is INTERNAL with its message
  // only (never a stack trace).
  const err = ServingError.from(e);
  return { code: grpcStatus(err.code), details: err.message };
}

// ---- Header blocks ----

const hpack = new HpackEncoder();
const RESPONSE_HEADERS = hpack.encode([":status", "200", "content-type", "application/grpc"]);
const OK_TRAILERS = hpack.encode(["grpc-status", "0"]);
const UNSUPPORTED_MEDIA_TYPE = hpack.encode([":status", "415"]);
const METHOD_NOT_ALLOWED = hpack.encode([":status", "405"]);
/** Trailers-Only blocks of statuses without a message, by code. */
const bareStatusBlocks = new Map<number, Uint8Array>();

/**
 * The `grpc-message` form of a status message: UTF-8, with every byte outside space..`~` and
 * `%` itself percent-encoded (PROTOCOL-HTTP2.md, Status-Message).
 */
export function percentEncode(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    if (byte < 0x20 || byte > 0x7e || byte === 0x25) {
      out += "%" + (byte < 16 ? "0" : "") + byte.toString(16).toUpperCase();
    } else out += String.fromCharCode(byte);
  }
  return out;
}

/** The Trailers-Only block of a status. */
function statusBlock(code: number, details: string, trailersOnly: boolean): Uint8Array {
  if (details === "" && trailersOnly) {
    let block = bareStatusBlocks.get(code);
    if (block === undefined) {
      block = hpack.encode([
        ":status",
        "200",
        "content-type",
        "application/grpc",
        "grpc-status",
        String(code),
      ]);
      bareStatusBlocks.set(code, block);
    }
    return block;
  }
  const fields = trailersOnly ? [":status", "200", "content-type", "application/grpc"] : [];
  fields.push("grpc-status", String(code));
  if (details !== "") fields.push("grpc-message", percentEncode(details));
  return hpack.encode(fields);
}

/**
 * Parses `grpc-timeout` (1–8 digits and a unit H, M, S, m, u, n) into milliseconds.
 *
 * @returns the timeout, or undefined when the value is malformed (then it is ignored)
 */
export function parseGrpcTimeout(value: string): number | undefined {
  const n = value.length;
  if (n < 2 || n > 9) return undefined;
  let v = 0;
  for (let i = 0; i < n - 1; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    v = v * 10 + c;
  }
  switch (value[n - 1]) {
    case "H":
      return v * 3_600_000;
    case "M":
      return v * 60_000;
    case "S":
      return v * 1000;
    case "m":
      return v;
    case "u":
      return v / 1000;
    case "n":
      return v / 1_000_000;
    default:
      return undefined;
  }
}

// ---- Calls ----

/** One method: what runs a call once its request message is whole. */
interface Method {
  run(call: GrpcCall, request: Uint8Array): void;
  /**
   * A large request may be read into reused shared memory ({@link RequestBuffer}), lent with
   * the call as its context's `requestBuffer` (Predict: the executor shares it with a worker).
   */
  readonly pooled?: boolean;
}

/** Bytes of a message looked at for where to align its values (see #align). */
const ALIGN_LOOKAHEAD = 64 << 10;

/**
 * One call: the request being read, its deadline and (made on demand) its abort signal, and
 * the ways to answer.
 */
class GrpcCall implements CallContext {
  deadline: number | undefined = undefined;
  #controller: AbortController | undefined = undefined;
  /** Answered, reset or closed: nothing more is sent or read. */
  done = false;
  /** Response headers sent (a streaming answer). */
  headersSent = false;
  /** The request message's prefix bytes read (0–5), its flag and length. */
  prefixRead = 0;
  compressed = 0;
  length = 0;
  /** The message being read, and how much of it is in. */
  message: Uint8Array | undefined = undefined;
  filled = 0;
  /** The whole request message, once read; a count past one is an error. */
  request: Uint8Array | undefined = undefined;
  messages = 0;
  /** When its request headers or its last request bytes came (the sweep's clock). */
  readSince = 0;
  /** Request bytes charged to the transport's buffer budget. */
  charged = 0;
  /** Of those, bytes charged ahead of their arrival (see GrpcServer's #grow). */
  prepaid = 0;
  /**
   * The pooled memory the message is read into, held until the call ends (the executor holds
   * it too while a worker may read it); undefined for a message in memory of its own.
   */
  requestBuffer: RequestBuffer | undefined = undefined;
  /** The message's values are still to be placed aligned in {@link requestBuffer}. */
  alignPending = false;
  /** Bytes in when that was last looked for (it is looked for again at twice as many). */
  alignTried = 0;
  /** The request went to its method (or to inflate): its memory is no longer only ours. */
  handedOver = false;
  /** Called once when the call ends without an answer of ours (reset, closed). */
  onCancel: (() => void) | undefined = undefined;

  constructor(
    readonly transport: GrpcTransport,
    readonly stream: H2Stream,
    readonly method: Method,
    readonly encoding: string,
  ) {}

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.done) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  /** Answers a unary call with its response message (one array, or pieces in order). */
  ok(message: Uint8Array | readonly Uint8Array[]): void {
    if (this.done) return;
    // Copied into frames first: the message may view memory released with the call.
    this.stream.connection.respondMessage(this.stream, RESPONSE_HEADERS, message, OK_TRAILERS);
    this.#finish();
  }

  /** Answers with a status (Trailers-Only unless headers went out). */
  fail(status: GrpcStatus): void {
    if (this.done) return;
    this.#finish();
    const block = statusBlock(status.code, status.details, !this.headersSent);
    this.stream.connection.sendHeaders(this.stream, block, true);
  }

  /** Sends one message of a streaming answer. */
  write(message: Uint8Array): void {
    if (this.done) return;
    const conn = this.stream.connection;
    if (!this.headersSent) {
      this.headersSent = true;
      conn.sendHeaders(this.stream, RESPONSE_HEADERS, false);
    }
    conn.sendData(this.stream, withPrefix(message));
  }

  /** Ends a streaming answer with OK. */
  end(): void {
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.connection.sendHeaders(this.stream, RESPONSE_HEADERS, false);
    }
    this.fail({ code: Code.OK, details: "" });
  }

  /** The client went away: the signal aborts and nothing more is sent. */
  cancel(): void {
    if (this.done) return;
    this.#finish();
    this.#controller?.abort();
    this.onCancel?.();
  }

  /** The deadline passed unanswered: DEADLINE_EXCEEDED, and the work is told to stop. */
  expire(): void {
    if (this.done) return;
    this.fail({ code: Code.DEADLINE_EXCEEDED, details: "Deadline Exceeded" });
    this.#controller?.abort();
    this.onCancel?.();
  }

  #finish(): void {
    this.done = true;
    this.transport.release(this);
  }
}

/** A message with its 5-byte gRPC prefix (uncompressed). */
function withPrefix(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  const n = message.length;
  out[1] = n >>> 24;
  out[2] = (n >>> 16) & 0xff;
  out[3] = (n >>> 8) & 0xff;
  out[4] = n & 0xff;
  out.set(message, 5);
  return out;
}

/** Answers a call with what `fn` returns (inline, or when its promise settles). */
function serve<O>(call: GrpcCall, fn: () => O | Promise<O>, encode: (o: O) => Uint8Array): void {
  let out: O | Promise<O>;
  try {
    // A call answered inline (cheap, or not an inference) costs no promise; one run on a
    // worker resolves later.
    out = fn();
  } catch (e) {
    call.fail(toStatus(e));
    return;
  }
  if (out instanceof Promise) {
    out.then((v) => answer(call, v, encode), (e) => call.fail(toStatus(e))).catch(lost(call));
  } else answer(call, out, encode);
}

/**
 * The last resort of an answer that failed to go out (a bug, never a client's doing): the
 * stream is reset INTERNAL_ERROR rather than the rejection ending the process.
 */
function lost(call: GrpcCall): () => void {
  return () => call.stream.connection.reset(call.stream, ErrorCode.INTERNAL_ERROR);
}

function answer<O>(
  call: GrpcCall,
  out: O,
  encode: (o: O) => Uint8Array | readonly Uint8Array[],
): void {
  if (call.done) return;
  let bytes: Uint8Array | readonly Uint8Array[];
  try {
    bytes = encode(out);
  } catch (e) {
    call.fail(toStatus(e));
    return;
  }
  call.ok(bytes);
}

/** A unary method served through protobuf-es messages. */
function unary<I extends DescMessage, O extends DescMessage>(
  input: I,
  output: O,
  limits: DecodeLimits,
  fn: (req: MessageShape<I>, ctx: CallContext) => MessageShape<O> | Promise<MessageShape<O>>,
  undecodable: GrpcStatus = UNDECODABLE_STATUS,
): Method {
  const encode = (m: MessageShape<O>) => toBinary(output, m);
  return {
    run(call, bytes) {
      const req = decodeRequest(input, bytes, limits);
      if (req === UNDECODABLE) return call.fail(undecodable);
      if (req instanceof RefusedRequest) return call.fail(req.status);
      serve(call, () => fn(req, call), encode);
    },
  };
}

/**
 * Predict: the plain form of a request is read straight into tensor views (predict_codec.ts)
 * and served by `api.predictView`, the answer encoded straight from the tensors; any other
 * request is decoded by the general decoder and served by `api.predict` (same statuses and
 * messages).
 */
function predictMethod(api: ServingApi, limits: DecodeLimits): Method {
  const viaMessage = unary(
    PredictRequestSchema,
    PredictResponseSchema,
    limits,
    (req, ctx) => api.predict(req, "grpc", ctx),
  );
  const encode = (out: unknown) =>
    out instanceof PredictOutputs
      // Copied into the frames (or a queued copy) at once: the pieces may share one buffer,
      // and view the outputs' memory, which is reused only once the call is answered.
      ? encodePredictOutputPieces(out)
      : toBinary(PredictResponseSchema, out as MessageShape<typeof PredictResponseSchema>);
  return {
    // Its memory is lent to the executor with the call (CallContext.requestBuffer).
    pooled: true,
    run(call, bytes) {
      const predictView = api.predictView;
      const view = predictView === undefined ? undefined : readPredictRequest(bytes, limits);
      if (view === undefined) return viaMessage.run(call, bytes);
      // As serve(), without a closure per call.
      let out;
      try {
        out = predictView!.call(api, view, "grpc", call);
      } catch (e) {
        return call.fail(toStatus(e));
      }
      if (out instanceof Promise) {
        out.then((v) => answer(call, v, encode), (e) => call.fail(toStatus(e))).catch(lost(call));
      } else answer(call, out, encode);
    },
  };
}

// ---- Health ----

/** Whether a service name is longer (in UTF-8 bytes) than grpc++'s health service takes. */
function tooLong(name: string): boolean {
  // A UTF-16 unit is at most 3 UTF-8 bytes, so a short name needs no encoding.
  if (name.length * 3 <= MAX_SERVICE_NAME_LENGTH) return false;
  return new TextEncoder().encode(name).length > MAX_SERVICE_NAME_LENGTH;
}

/** A HealthCheckResponse's bytes, with the health messages imported on first use. */
function healthMessage(h: typeof HealthPb, status: HealthStatus): Uint8Array {
  const schema = h.HealthCheckResponseSchema;
  return toBinary(schema, create(schema, { status: h.HealthCheckResponse_ServingStatus[status] }));
}

/** Health/Watch subscribers, served by one poll of `api.health()`. */
class HealthWatchers {
  readonly #watchers = new Map<GrpcCall, { service: string; last: HealthStatus }>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** The health messages, set by the first health call (before any watcher is added). */
  messages: typeof HealthPb | undefined;

  constructor(
    private readonly api: ServingApi,
    private readonly intervalMs: number,
    private readonly log: LogFn,
  ) {}

  /** Starts a watch: sends the current status now, then every change. */
  add(call: GrpcCall, service: string): void {
    if (this.#closed) {
      call.fail({ code: Code.UNAVAILABLE, details: "Server is shutting down" });
      return;
    }
    let status: HealthStatus;
    try {
      status = this.api.health(service);
    } catch (e) {
      call.fail(toStatus(e));
      return;
    }
    this.#watchers.set(call, { service, last: status });
    call.onCancel = () => this.#remove(call);
    call.write(healthMessage(this.messages!, status));
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#poll(), this.intervalMs);
      // A watch alone must not keep the process alive.
      Deno.unrefTimer(this.#timer);
    }
  }

  #remove(call: GrpcCall) {
    this.#watchers.delete(call);
    if (this.#watchers.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #poll(): void {
    for (const [call, w] of this.#watchers) {
      let status: HealthStatus;
      try {
        status = this.api.health(w.service);
      } catch (e) {
        this.log(
          "warning",
          `Health check of "${w.service}" failed: ${ServingError.from(e).message}`,
        );
        continue;
      }
      if (status === w.last) continue;
      w.last = status;
      call.write(healthMessage(this.messages!, status));
    }
  }

  /**
   * Shutdown, as grpc++'s DefaultHealthCheckService::Shutdown: every watcher is told
   * NOT_SERVING. The streams are then ended (status OK) so they do not hold the graceful
   * shutdown open until the grace period runs out.
   */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const calls = [...this.#watchers.keys()];
    this.#watchers.clear();
    for (const call of calls) {
      call.write(healthMessage(this.messages!, "NOT_SERVING"));
      call.end();
    }
  }
}

/** The names List reports on: the whole server and every service served here. */
function healthServiceNames(): string[] {
  return ["", PREDICTION_SERVICE, MODEL_SERVICE, HEALTH_SERVICE];
}

function healthMethods(
  h: typeof HealthPb,
  api: ServingApi,
  watchers: HealthWatchers,
  limits: DecodeLimits,
): Record<string, Method> {
  const { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus } =
    h;
  watchers.messages = h;
  const check = unary(
    HealthCheckRequestSchema,
    HealthCheckResponseSchema,
    limits,
    (req) => {
      if (tooLong(req.service)) {
        throw new ServingError(Code.INVALID_ARGUMENT, UNPARSABLE_CHECK.details);
      }
      const status = api.health(req.service);
      if (status === "SERVICE_UNKNOWN") {
        throw new ServingError(Code.NOT_FOUND, "service name unknown");
      }
      return create(HealthCheckResponseSchema, {
        status: HealthCheckResponse_ServingStatus[status],
      });
    },
    UNPARSABLE_CHECK,
  );
  const list = unary(h.HealthListRequestSchema, h.HealthListResponseSchema, limits, () => {
    const statuses: HealthPb.HealthListResponse["statuses"] = {};
    for (const name of healthServiceNames()) {
      const status = api.health(name);
      if (status === "SERVICE_UNKNOWN") continue;
      statuses[name] = create(HealthCheckResponseSchema, {
        status: HealthCheckResponse_ServingStatus[status],
      });
    }
    return create(h.HealthListResponseSchema, { statuses });
  });
  const watch: Method = {
    run(call, bytes) {
      const req = decodeRequest(HealthCheckRequestSchema, bytes, limits);
      if (req === UNDECODABLE || req instanceof RefusedRequest || tooLong(req.service)) {
        return call.fail(UNPARSABLE_WATCH);
      }
      watchers.add(call, req.service);
    },
  };
  const base = `/${HEALTH_SERVICE}/`;
  return { [`${base}Check`]: check, [`${base}List`]: list, [`${base}Watch`]: watch };
}

// ---- Methods loaded on first use ----

/**
 * A method built on its first call, from modules imported then: that call (and any that come
 * while the import runs) awaits the import once; later calls run at once. A call that ended
 * meanwhile (cancelled, past its deadline, already answered) is not run.
 */
function lazyMethod(build: () => Promise<Method>): Method {
  let method: Method | undefined;
  let loading: Promise<Method> | undefined;
  return {
    run(call, bytes) {
      if (method !== undefined) return method.run(call, bytes);
      loading ??= build().then((m) => method = m, (e) => {
        // A failed import is tried again by the next call.
        loading = undefined;
        throw e;
      });
      loading.then((m) => {
        if (!call.done) m.run(call, bytes);
      }, (e) => call.fail(toStatus(e))).catch(lost(call));
    },
  };
}

/**
 * The methods served besides Predict: path → what builds the method (importing its message
 * schemas then).
 */
const LAZY_METHODS: Readonly<
  Record<
    string,
    (api: ServingApi, limits: DecodeLimits) => Promise<Method>
  >
> = {
  [`/${PREDICTION_SERVICE}/Classify`]: async (api, limits) => {
    const m = await import("../../proto/gen/tensorflow_serving/apis/classification_pb.ts");
    return unary(
      m.ClassificationRequestSchema,
      m.ClassificationResponseSchema,
      limits,
      (r, c) => api.classify(r, "grpc", c),
    );
  },
  [`/${PREDICTION_SERVICE}/Regress`]: async (api, limits) => {
    const m = await import("../../proto/gen/tensorflow_serving/apis/regression_pb.ts");
    return unary(
      m.RegressionRequestSchema,
      m.RegressionResponseSchema,
      limits,
      (r, c) => api.regress(r, "grpc", c),
    );
  },
  [`/${PREDICTION_SERVICE}/MultiInference`]: async (api, limits) => {
    const m = await import("../../proto/gen/tensorflow_serving/apis/inference_pb.ts");
    return unary(
      m.MultiInferenceRequestSchema,
      m.MultiInferenceResponseSchema,
      limits,
      (r, c) => api.multiInference(r, "grpc", c),
    );
  },
  [`/${PREDICTION_SERVICE}/GetModelMetadata`]: async (api, limits) => {
    const m = await import("../../proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts");
    return unary(
      m.GetModelMetadataRequestSchema,
      m.GetModelMetadataResponseSchema,
      limits,
      (r) => api.getModelMetadata(r, "grpc"),
    );
  },
  [`/${MODEL_SERVICE}/GetModelStatus`]: async (api, limits) => {
    const m = await import("../../proto/gen/tensorflow_serving/apis/get_model_status_pb.ts");
    return unary(
      m.GetModelStatusRequestSchema,
      m.GetModelStatusResponseSchema,
      limits,
      (r) => api.getModelStatus(r, "grpc"),
    );
  },
  [`/${MODEL_SERVICE}/HandleReloadConfigRequest`]: async (api, limits) => {
    const m = await import("../../proto/gen/tensorflow_serving/apis/model_management_pb.ts");
    return unary(
      m.ReloadConfigRequestSchema,
      m.ReloadConfigResponseSchema,
      limits,
      (r) => api.handleReloadConfigRequest(r, "grpc"),
    );
  },
};

/** The paths of the methods {@link LAZY_METHODS} builds on first use. */
export const LAZY_METHOD_PATHS: readonly string[] = Object.keys(LAZY_METHODS);

/** The health service's paths (served with `--enable_grpc_healthcheck_service`). */
export const HEALTH_PATHS: readonly string[] = ["Check", "List", "Watch"].map((m) =>
  `/${HEALTH_SERVICE}/${m}`
);

// ---- The transport ----

/** gRPC over the HTTP/2 connections: reads requests, runs methods, tracks deadlines. */
class GrpcTransport implements H2Handler {
  readonly #methods: Map<string, Method>;
  readonly #limits: DecodeLimits;
  readonly #maxBuffered: number;
  #buffered = 0;
  /** Large requests' reused memory (request_memory.ts). */
  readonly #memory = new RequestMemory();
  #slab = new Uint8Array(SLAB_BYTES);
  #slabAt = 0;
  /** Calls with a deadline, checked by the sweep. */
  readonly #timed = new Set<GrpcCall>();
  /** Calls whose request has not ended, checked by the sweep against the request timeout. */
  readonly #reading = new Set<GrpcCall>();
  readonly #requestTimeoutMs: number;
  /** The sweep's clock (`performance.now()`), coarse but free to read. */
  #clock = performance.now();

  constructor(
    methods: Map<string, Method>,
    limits: DecodeLimits,
    maxBuffered: number,
    requestTimeoutMs: number,
  ) {
    this.#methods = methods;
    this.#limits = limits;
    this.#maxBuffered = maxBuffered;
    this.#requestTimeoutMs = requestTimeoutMs;
  }

  headers(stream: H2Stream, fields: string[], oversize: boolean, endStream: boolean): void {
    const conn = stream.connection;
    let method = "";
    let path = "";
    let contentType = "";
    let timeout = "";
    let encoding = "";
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i];
      if (name.charCodeAt(0) === 58 /* : */) {
        if (name === ":method") method = fields[i + 1];
        else if (name === ":path") path = fields[i + 1];
      } else if (name === "content-type") contentType = fields[i + 1];
      else if (name === "grpc-timeout") timeout = fields[i + 1];
      else if (name === "grpc-encoding") encoding = fields[i + 1];
    }
    if (method !== "POST") return conn.sendHeaders(stream, METHOD_NOT_ALLOWED, true);
    if (!contentType.startsWith("application/grpc")) {
      return conn.sendHeaders(stream, UNSUPPORTED_MEDIA_TYPE, true);
    }
    if (oversize) {
      const details = "Cannot accept the request headers: they are over the limit of " +
        "SETTINGS_MAX_HEADER_LIST_SIZE bytes";
      return conn.sendHeaders(stream, statusBlock(Code.RESOURCE_EXHAUSTED, details, true), true);
    }
    const m = this.#methods.get(path);
    if (m === undefined) {
      return conn.sendHeaders(stream, statusBlock(Code.UNIMPLEMENTED, "", true), true);
    }
    const call = new GrpcCall(this, stream, m, encoding);
    stream.call = call;
    if (timeout !== "") {
      const ms = parseGrpcTimeout(timeout);
      if (ms !== undefined) {
        call.deadline = Date.now() + ms;
        this.#timed.add(call);
      }
    }
    if (endStream) return this.#complete(call);
    call.readSince = this.#clock;
    this.#reading.add(call);
  }

  data(stream: H2Stream, chunk: Uint8Array, endStream: boolean): void {
    const call = stream.call as GrpcCall | undefined;
    if (call === undefined || call.done) return;
    // The request timeout counts from the last bytes in (as a web server's body read timeout),
    // so a large request on a slow link is not cut while it keeps arriving.
    if (chunk.length > 0) call.readSince = this.#clock;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (call.message === undefined) {
        // The 5-byte prefix: flag, then the length (big endian).
        if (call.prefixRead === 0) {
          if (call.messages > 0) return call.fail(UNDECODABLE_STATUS); // A second message.
          call.compressed = chunk[i++];
          call.length = 0;
          call.prefixRead = 1;
          continue;
        }
        call.length = call.length * 256 + chunk[i++];
        if (++call.prefixRead < 5) continue;
        if (!this.#startMessage(call, n - i)) return;
        if (call.length === 0) {
          this.#endMessage(call);
          continue;
        }
      }
      const msg = call.message!;
      const take = Math.min(n - i, call.length - call.filled);
      if (call.filled + take > msg.length) {
        if (!this.#grow(call, call.filled + take)) return;
      }
      if (!this.#charge(call, take)) return;
      call.message!.set(chunk.subarray(i, i + take), call.filled);
      call.filled += take;
      i += take;
      if (call.alignPending && call.filled >= 2 * call.alignTried) this.#align(call);
      if (call.filled === call.length) this.#endMessage(call);
    }
    if (endStream) this.#complete(call);
  }

  /** Checks a message's declared length and makes room for its first bytes. */
  #startMessage(call: GrpcCall, available: number): boolean {
    const length = call.length;
    if (length > MAX_RECEIVE_MESSAGE) {
      call.fail({
        code: Code.RESOURCE_EXHAUSTED,
        details: `Received message larger than max (${length} vs. ${MAX_RECEIVE_MESSAGE})`,
      });
      return false;
    }
    const max = this.#limits.maxRequestBytes;
    if (length > max) {
      call.fail({
        code: Code.RESOURCE_EXHAUSTED,
        details: `Cannot receive a message of ${length} bytes: over --max_request_decoded_bytes=` +
          `${max}`,
      });
      return false;
    }
    call.filled = 0;
    // An idle pooled buffer costs nothing to take: the whole length is charged at once.
    if (
      call.method.pooled && length >= POOLED_MIN_BYTES && length <= POOLED_MAX_BYTES &&
      this.#buffered + length <= this.#maxBuffered
    ) {
      const lease = this.#memory.take(length + ALIGN_SLACK);
      if (lease !== undefined) {
        this.#charge(call, length);
        call.prepaid = length;
        call.requestBuffer = lease;
        call.message = new Uint8Array(lease.buffer, 0, length);
        call.alignPending = true;
        call.alignTried = 0;
        return true;
      }
    }
    // Room for what has arrived, not for what is declared: a length alone allocates little.
    call.message = length <= SMALL_MESSAGE
      ? this.#carve(length)
      : new Uint8Array(Math.min(length, Math.max(available, 64 << 10)));
    return true;
  }

  /**
   * A small message's room, carved from a shared slab: a fresh typed array costs a backing
   * store of its own (about half a microsecond and garbage to collect), a view of a slab a
   * fraction of that. The slab lives as long as any message carved from it; nothing transfers
   * request bytes to another isolate (the executor's workers get copies).
   */
  #carve(length: number): Uint8Array {
    if (this.#slabAt + length > SLAB_BYTES) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabAt = 0;
    }
    const out = this.#slab.subarray(this.#slabAt, this.#slabAt + length);
    // 8-byte steps keep tensor data viewed in place aligned as it was in the message.
    this.#slabAt += (length + 7) & ~7;
    return out;
  }

  #grow(call: GrpcCall, need: number): boolean {
    const old = call.message!;
    let size = old.length * 2;
    while (size < need) size *= 2;
    // Within twice the declared length, take all of it: one more doubling and copy would cost
    // more (a 768 KiB message took four copies and 1.7 MB of fresh memory) and allocate no less.
    // The bytes still to come are charged now, so that all rooms stay within the buffer budget
    // twice over, as with doubling alone (a call that cannot be charged is refused as if they
    // had come).
    if (size * 2 >= call.length && size < call.length) {
      const ahead = call.length - call.filled;
      if (!this.#charge(call, ahead)) return false;
      call.prepaid = ahead;
      size = call.length;
    }
    const room = Math.min(size, call.length);
    if (
      room === call.length && call.method.pooled && room >= POOLED_MIN_BYTES &&
      room <= POOLED_MAX_BYTES
    ) {
      // The whole message's room: made reusable for the next calls (request_memory.ts).
      const lease = this.#memory.create(room + ALIGN_SLACK);
      call.requestBuffer = lease;
      call.message = new Uint8Array(lease.buffer, 0, room);
      call.message.set(old.subarray(0, call.filled));
      call.alignPending = true;
      call.alignTried = 0;
      this.#align(call);
      return true;
    }
    const next = new Uint8Array(room);
    next.set(old.subarray(0, call.filled));
    call.message = next;
    return true;
  }

  /**
   * Moves a message being read into pooled memory so that its first large run of values will
   * start 16-byte aligned (then tensors view it in place instead of copying it, and the worker
   * reads it as it is): decided as soon as the bytes in tell where the run starts, which is
   * usually within the first DATA frame, so at most that much is moved.
   */
  #align(call: GrpcCall): void {
    const msg = call.message!;
    const at = largeValuesOffset(msg, call.filled);
    // Looked for again only once twice as many bytes are in: DATA frames of one byte each cost
    // a few scans of at most ALIGN_LOOKAHEAD bytes, not one per frame.
    call.alignTried = Math.max(call.filled, 256);
    if (at === NEED_MORE && call.filled < call.length && call.filled < ALIGN_LOOKAHEAD) return;
    call.alignPending = false;
    if (at < 0) return;
    const shift = (16 - (at & 15)) & 15;
    if (shift === msg.byteOffset) return;
    const buffer = call.requestBuffer!.buffer;
    new Uint8Array(buffer).copyWithin(shift, msg.byteOffset, msg.byteOffset + call.filled);
    call.message = new Uint8Array(buffer, shift, call.length);
  }

  #charge(call: GrpcCall, n: number): boolean {
    const paid = Math.min(call.prepaid, n);
    call.prepaid -= paid;
    n -= paid;
    if (n === 0) return true;
    if (this.#buffered + n > this.#maxBuffered) {
      call.fail({
        code: Code.RESOURCE_EXHAUSTED,
        details: `Cannot buffer the request: the server holds ${this.#buffered} request bytes ` +
          `already, at most ${this.#maxBuffered}`,
      });
      return false;
    }
    this.#buffered += n;
    call.charged += n;
    return true;
  }

  #endMessage(call: GrpcCall): void {
    call.request = call.message;
    call.message = undefined;
    call.prefixRead = 0;
    call.messages++;
  }

  /** The request has ended: run the method, or answer what is wrong. */
  #complete(call: GrpcCall): void {
    this.#reading.delete(call);
    if (call.done) return;
    call.handedOver = true;
    const request = call.request;
    if (request === undefined || call.message !== undefined || call.prefixRead !== 0) {
      return call.fail(UNDECODABLE_STATUS);
    }
    if (call.compressed === 0) return call.method.run(call, request);
    const encoding = call.encoding;
    if (encoding !== "gzip" && encoding !== "deflate") {
      return call.fail({
        code: Code.UNIMPLEMENTED,
        details: `Received message compressed with unsupported encoding "${
          encoding || "identity"
        }"`,
      });
    }
    this.#inflate(call, request, encoding).catch((e) => call.fail(toStatus(e)));
  }

  /**
   * Inflates a compressed message (gzip, or deflate: zlib format, as grpc's), never past the
   * decode limit of one request nor the buffer budget, then runs the method.
   */
  async #inflate(call: GrpcCall, bytes: Uint8Array, format: "gzip" | "deflate"): Promise<void> {
    const max = this.#limits.maxRequestBytes;
    const stream = new DecompressionStream(format);
    const writer = stream.writable.getWriter();
    writer.write(bytes as Uint8Array<ArrayBuffer>).catch(() => {});
    writer.close().catch(() => {});
    const reader = stream.readable.getReader();
    const parts: Uint8Array[] = [];
    let total = 0;
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        if (call.done) return void reader.cancel().catch(() => {});
        total += value.length;
        if (total > max) {
          reader.cancel().catch(() => {});
          return call.fail({
            code: Code.RESOURCE_EXHAUSTED,
            details: `Cannot receive a message of more than ${max} bytes once decompressed: ` +
              `over --max_request_decoded_bytes=${max}`,
          });
        }
        if (!this.#charge(call, value.length)) return void reader.cancel().catch(() => {});
        parts.push(value);
      }
    } catch {
      // grpc core's message decompression failure (compression_filter.cc).
      return call.fail({
        code: Code.INTERNAL,
        details: `Unexpected error decompressing data for algorithm ${format}`,
      });
    }
    if (call.done) return;
    let message: Uint8Array;
    if (parts.length === 1) message = parts[0];
    else {
      message = new Uint8Array(total);
      let o = 0;
      for (const p of parts) {
        message.set(p, o);
        o += p.length;
      }
    }
    call.method.run(call, message);
  }

  reset(stream: H2Stream): void {
    const call = stream.call as GrpcCall | undefined;
    if (call !== undefined) call.cancel();
  }

  /** Gives back a finished call's buffered bytes and stops watching its deadline. */
  release(call: GrpcCall): void {
    const lease = call.requestBuffer;
    if (lease !== undefined) {
      call.requestBuffer = undefined;
      // Memory nothing but this transport ever saw is reusable at once.
      if (!call.handedOver) lease.allowReuse();
      lease.release();
    }
    this.#buffered -= call.charged;
    call.charged = 0;
    call.prepaid = 0;
    call.message = undefined;
    if (call.deadline !== undefined) this.#timed.delete(call);
    this.#reading.delete(call);
  }

  /**
   * Answers the calls past their deadline and resets those whose request is late.
   *
   * @param nowEpoch `Date.now()`
   * @param now `performance.now()`
   */
  sweep(nowEpoch: number, now: number): void {
    this.#clock = now;
    for (const call of this.#timed) {
      if (call.deadline! <= nowEpoch) call.expire();
    }
    if (this.#requestTimeoutMs <= 0) return;
    for (const call of this.#reading) {
      if (now - call.readSince > this.#requestTimeoutMs) {
        call.cancel();
        call.stream.connection.reset(call.stream, ErrorCode.CANCEL);
      }
    }
  }
}

/**
 * Starts the gRPC server and resolves once its port is bound.
 *
 * @example
 * ```ts
 * await using server = await startGrpcServer(api, {
 *   host: "127.0.0.1",
 *   port: 0,
 *   enableHealthCheck: true,
 * });
 * console.log(server.port);
 * ```
 * @param api the serving operations
 * @param options where to listen and what to serve
 * @returns the running server
 * @throws Error when the address cannot be bound
 */
export function startGrpcServer(
  api: ServingApi,
  options: GrpcServerOptions,
): Promise<GrpcServer> {
  try {
    return Promise.resolve(listen(api, options));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** {@link startGrpcServer}'s work: binding is synchronous with `Deno.listen`. */
function listen(api: ServingApi, options: GrpcServerOptions): GrpcServer {
  const log = options.log ?? (() => {});
  const limits = options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
  const h2Limits: H2Limits = { ...DEFAULT_H2_LIMITS, ...definedOnly(options.limits ?? {}) };

  const methods = new Map<string, Method>([[PREDICT_PATH, predictMethod(api, limits)]]);
  for (const [path, build] of Object.entries(LAZY_METHODS)) {
    methods.set(path, lazyMethod(() => build(api, limits)));
  }
  const watchers = new HealthWatchers(api, options.healthWatchIntervalMs ?? 1000, log);
  if (options.enableHealthCheck) {
    // The three share one import of the health messages.
    let health: Promise<Record<string, Method>> | undefined;
    const healthMethod = (path: string) =>
      lazyMethod(async () => {
        health ??= import("../../proto/gen/grpc/health/v1/health_pb.ts").then(
          (h) => healthMethods(h, api, watchers, limits),
          (e) => {
            health = undefined;
            throw e;
          },
        );
        return (await health)[path];
      });
    for (const path of HEALTH_PATHS) methods.set(path, healthMethod(path));
  }
  const transport = new GrpcTransport(
    methods,
    limits,
    options.limits?.maxBufferedRequestBytes ?? 1 << 30,
    options.limits?.requestTimeoutMs ?? 60_000,
  );

  const listeners: Deno.Listener[] = [];
  const connections = new Set<H2Connection>();
  let port = 0;
  try {
    if (options.port !== undefined) {
      const l = Deno.listen({ hostname: options.host, port: options.port, transport: "tcp" });
      listeners.push(l);
      port = (l.addr as Deno.NetAddr).port;
    }
    if (options.socketPath) {
      // As grpc's UnlinkIfUnixDomainSocket: a socket file left by an earlier run is removed.
      try {
        if (Deno.lstatSync(options.socketPath).isSocket) Deno.removeSync(options.socketPath);
      } catch { /* nothing there */ }
      listeners.push(Deno.listen({ transport: "unix", path: options.socketPath }));
    }
  } catch (e) {
    for (const l of listeners) l.close();
    throw e;
  }

  let accepting = true;
  const maxConnections = options.limits?.maxConnections ?? 1000;
  /** Makes room for one more connection; false when every connection is busy. */
  const makeRoom = (): boolean => {
    let quietest: H2Connection | undefined;
    for (const c of connections) {
      if (c.idleness >= 0 && (quietest === undefined || c.idleness > quietest.idleness)) {
        quietest = c;
      }
    }
    if (quietest === undefined) return false;
    // GOAWAY NO_ERROR, and closed once written: the client reconnects when it needs to.
    quietest.goaway();
    connections.delete(quietest);
    return true;
  };
  const serveConn = (conn: Deno.Conn) => {
    if (connections.size >= maxConnections && !makeRoom()) {
      conn.close();
      return;
    }
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    const c = new H2Connection(conn, transport, h2Limits, performance.now());
    connections.add(c);
    c.closed.then(() => connections.delete(c));
    c.run();
  };
  const acceptLoop = async (l: Deno.Listener) => {
    try {
      for await (const conn of l) {
        if (!accepting) {
          conn.close();
          continue;
        }
        serveConn(conn);
      }
    } catch { /* listener closed */ }
  };
  const loops = listeners.map(acceptLoop);

  const sweep = setInterval(() => {
    const now = performance.now();
    for (const c of connections) c.sweep(now);
    transport.sweep(Date.now(), now);
  }, SWEEP_MS);
  Deno.unrefTimer(sweep);

  let closing: Promise<void> | undefined;
  const shutdown = (graceMs: number): Promise<void> =>
    closing ??= (async () => {
      accepting = false;
      for (const l of listeners) {
        try {
          l.close();
        } catch { /* closed */ }
      }
      await Promise.allSettled(loops);
      if (options.socketPath) {
        try {
          Deno.removeSync(options.socketPath);
        } catch { /* gone */ }
      }
      watchers.close();
      for (const c of connections) c.goaway();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const forced = new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), Math.max(0, graceMs));
      });
      const drained = Promise.all([...connections].map((c) => c.closed)).then(() => false);
      const wasForced = await Promise.race([drained, forced]);
      clearTimeout(timer);
      if (wasForced) {
        // Grace is over: cancel the calls still running and close every connection.
        for (const c of [...connections]) c.close();
      }
      clearInterval(sweep);
      log(
        "info",
        `gRPC server on port ${port} ${
          wasForced ? "forced down after the grace period" : "shut down"
        }`,
      );
    })();

  return {
    port,
    shutdown,
    [Symbol.asyncDispose]: () => shutdown(DISPOSE_GRACE_MS),
  };
}

/** An object without its undefined properties (so defaults are not overwritten by them). */
function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
