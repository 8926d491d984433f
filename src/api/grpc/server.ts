/**
 * The gRPC transport: serves TF Serving's PredictionService and ModelService (and, when asked,
 * grpc.health.v1.Health) over grpc-js by decoding a request, calling one {@link ServingApi}
 * method and encoding the response or the error's status.
 *
 * Behaviour copied from the C++ server TF Serving runs on:
 * - the receive limit is INT_MAX (`builder.SetMaxMessageSize(kint32max)` in
 *   tensorflow_serving/model_servers/server.cc, an alias of SetMaxReceiveMessageSize); the send
 *   limit keeps gRPC's default, unlimited;
 * - a request that does not parse is INTERNAL with an empty message (see service_definition.ts);
 * - the health service answers as grpc++'s DefaultHealthCheckService: Check of an unknown
 *   service is NOT_FOUND "service name unknown", a name over 200 bytes is INVALID_ARGUMENT
 *   "could not parse request", Watch sends SERVICE_UNKNOWN for an unknown name and stays open,
 *   and on shutdown every watcher is sent NOT_SERVING.
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Code, ServingError } from "../../errors.ts";
import type { LogFn } from "../../log.ts";
import {
  Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
  type HealthListRequest,
  type HealthListResponse,
  HealthListResponseSchema,
} from "../../proto/gen/grpc/health/v1/health_pb.ts";
import { ModelService } from "../../proto/gen/tensorflow_serving/apis/model_service_pb.ts";
import { PredictionService } from "../../proto/gen/tensorflow_serving/apis/prediction_service_pb.ts";
import { create } from "@bufbuild/protobuf";
import type { CallContext, HealthStatus, ServingApi } from "../../model_server/serving_api.ts";
import type { DecodeLimits } from "../../tensor/limits.ts";
import type { PredictRequest } from "../../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { grpcStatus } from "../status.ts";
import {
  type Decoded,
  decodeRequest,
  grpcServiceDefinition,
  RefusedRequest,
  UNDECODABLE,
  UNDECODABLE_STATUS,
} from "./service_definition.ts";
import {
  type PredictResponse,
  PredictResponseSchema,
} from "../../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { PredictRequestSchema } from "../../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { encodeMessage } from "../../proto/rpc.ts";
import { PredictOutputs } from "../../servables/predict.ts";
import { DEFAULT_DECODE_LIMITS } from "../../tensor/limits.ts";
import { encodePredictOutputs, readPredictRequest } from "./predict_codec.ts";
import type { Buffer } from "node:buffer";

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

/** A status as grpc-js takes it from a handler. */
type GrpcStatus = { readonly code: number; readonly details: string };

/** grpc-js channel args mirroring TF Serving's server builder. */
const SERVER_OPTIONS: grpc.ServerOptions = {
  // builder.SetMaxMessageSize(tensorflow::kint32max)
  "grpc.max_receive_message_length": 2147483647,
  // gRPC's server default: unlimited.
  "grpc.max_send_message_length": -1,
};

/** The grace `await using` gives calls in flight. */
const DISPOSE_GRACE_MS = 1000;

/** grpc++ DefaultHealthCheckService's MAX_SERVICE_NAME_LENGTH. */
const MAX_SERVICE_NAME_LENGTH = 200;

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

const HEALTH_STATUS: Record<HealthStatus, HealthCheckResponse_ServingStatus> = {
  SERVING: HealthCheckResponse_ServingStatus.SERVING,
  NOT_SERVING: HealthCheckResponse_ServingStatus.NOT_SERVING,
  SERVICE_UNKNOWN: HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN,
};

/** The status object grpc-js sends for anything a handler threw. */
function toStatus(e: unknown): GrpcStatus {
  // A ServingError keeps its code and message; anything else is INTERNAL with its message
  // only (never a stack trace).
  const err = ServingError.from(e);
  return { code: grpcStatus(err.code), details: err.message };
}

type Unary<I, O> = grpc.handleUnaryCall<Decoded<I>, O>;

/**
 * Wraps one API method as a grpc-js unary handler.
 *
 * @param fn the method
 * @param undecodable the status for a request that does not parse
 */
function unary<I, O>(
  fn: (req: I, ctx: CallContext) => O | Promise<O>,
  undecodable: GrpcStatus = UNDECODABLE_STATUS,
): Unary<I, O> {
  return (call, callback) => serve(call.request, call, callback, fn, undecodable);
}

/** Answers one unary call whose request has been decoded (or refused). */
function serve<I, O>(
  req: Decoded<I>,
  call: grpc.ServerUnaryCall<unknown, unknown>,
  callback: grpc.sendUnaryData<O>,
  fn: (req: I, ctx: CallContext) => O | Promise<O>,
  undecodable: GrpcStatus = UNDECODABLE_STATUS,
): void {
  if (req === UNDECODABLE) {
    callback(undecodable);
    return;
  }
  if (req instanceof RefusedRequest) {
    callback(req.status);
    return;
  }
  let out: O | Promise<O>;
  try {
    // A call answered inline (cheap, or not an inference) costs no promise; one run on a
    // worker resolves later.
    out = fn(req, callContext(call));
  } catch (e) {
    callback(toStatus(e));
    return;
  }
  if (out instanceof Promise) {
    out.then((v) => callback(null, v), (e) => callback(toStatus(e)));
  } else {
    callback(null, out);
  }
}

/** What the Predict handler answers: a response message, or outputs to encode directly. */
type PredictAnswer = PredictResponse | PredictOutputs;

/**
 * Predict's method definition with bytes in (grpc-js does not parse the request) and either a
 * message or {@link PredictOutputs} out (encoded straight from the tensors). Serialization stays
 * grpc-js's step, so a response that cannot be encoded fails as any other method's.
 */
function predictDefinition(
  def: { readonly path: string; readonly originalName?: string },
): grpc.MethodDefinition<Buffer, PredictAnswer> {
  return {
    path: def.path,
    originalName: def.originalName,
    requestStream: false,
    responseStream: false,
    requestDeserialize: (b: Buffer) => b,
    requestSerialize: (b: Buffer) => b,
    responseSerialize: (out: PredictAnswer) =>
      // grpc-js copies the bytes into its frame at once, so they may live in a shared buffer.
      out instanceof PredictOutputs
        ? encodePredictOutputs(out, true)
        : encodeMessage(PredictResponseSchema, out),
    responseDeserialize: () => {
      throw new Error("Cannot decode a response on the server");
    },
  };
}

/**
 * The Predict handler: the plain form of a request is read straight into tensor views
 * (predict_codec.ts) and served by `api.predictView`; any other request is decoded by the
 * general decoder and served by `api.predict`, exactly as before (same statuses and messages).
 */
function predictHandler(
  api: ServingApi,
  limits: DecodeLimits,
): grpc.handleUnaryCall<Buffer, PredictAnswer> {
  const viaMessage = (req: PredictRequest, ctx: CallContext) => api.predict(req, "grpc", ctx);
  return (call, callback) => {
    const bytes = call.request;
    const predictView = api.predictView;
    const view = predictView === undefined ? undefined : readPredictRequest(bytes, limits);
    if (view === undefined) {
      serve(decodeRequest(PredictRequestSchema, bytes, limits), call, callback, viaMessage);
      return;
    }
    serve(view, call, callback, (v, ctx) => predictView!.call(api, v, "grpc", ctx));
  };
}

/**
 * The call's deadline (`grpc-timeout`) and a signal aborted when the client cancels or goes
 * away, so a queued call is dropped before it runs.
 */
function callContext(call: grpc.ServerUnaryCall<unknown, unknown>): CallContext {
  return new GrpcCallContext(call);
}

/** A {@link CallContext} whose signal is made only when asked for (a queued call). */
class GrpcCallContext implements CallContext {
  readonly deadline: number | undefined;
  #controller: AbortController | undefined;

  constructor(private readonly call: grpc.ServerUnaryCall<unknown, unknown>) {
    const d = call.getDeadline();
    this.deadline = d instanceof Date ? d.getTime() : Number.isFinite(d) ? d : undefined;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = new AbortController();
      this.#controller = controller;
      if (this.call.cancelled) controller.abort();
      else this.call.once("cancelled", () => controller.abort());
    }
    return this.#controller.signal;
  }
}

/** Whether a service name is longer (in UTF-8 bytes) than grpc++'s health service takes. */
function tooLong(name: string): boolean {
  // A UTF-16 unit is at most 3 UTF-8 bytes, so a short name needs no encoding.
  if (name.length * 3 <= MAX_SERVICE_NAME_LENGTH) return false;
  return new TextEncoder().encode(name).length > MAX_SERVICE_NAME_LENGTH;
}

/** Health/Watch subscribers, served by one poll of `api.health()`. */
class HealthWatchers {
  readonly #watchers = new Map<
    grpc.ServerWritableStream<Decoded<HealthCheckRequest>, HealthCheckResponse>,
    { service: string; last: HealthStatus }
  >();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(
    private readonly api: ServingApi,
    private readonly intervalMs: number,
    private readonly log: LogFn,
  ) {}

  /** Starts a watch: sends the current status now, then every change. */
  add(
    call: grpc.ServerWritableStream<Decoded<HealthCheckRequest>, HealthCheckResponse>,
    service: string,
  ): void {
    if (this.#closed) {
      call.emit("error", { code: Code.UNAVAILABLE, details: "Server is shutting down" });
      return;
    }
    let status: HealthStatus;
    try {
      status = this.api.health(service);
    } catch (e) {
      call.emit("error", toStatus(e));
      return;
    }
    this.#watchers.set(call, { service, last: status });
    const drop = () => this.#remove(call);
    call.on("cancelled", drop);
    call.on("close", drop);
    call.on("error", drop);
    call.write(create(HealthCheckResponseSchema, { status: HEALTH_STATUS[status] }));
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#poll(), this.intervalMs);
      // A watch alone must not keep the process alive.
      Deno.unrefTimer(this.#timer);
    }
  }

  #remove(call: grpc.ServerWritableStream<Decoded<HealthCheckRequest>, HealthCheckResponse>) {
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
      if (!call.cancelled) {
        call.write(create(HealthCheckResponseSchema, { status: HEALTH_STATUS[status] }));
      }
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
      if (call.cancelled) continue;
      call.write(
        create(HealthCheckResponseSchema, {
          status: HealthCheckResponse_ServingStatus.NOT_SERVING,
        }),
      );
      call.end();
    }
  }
}

/** The names List reports on: the whole server and every service served here. */
function healthServiceNames(withHealth: boolean): string[] {
  const names = ["", PredictionService.typeName, ModelService.typeName];
  if (withHealth) names.push(Health.typeName);
  return names;
}

function addHealthService(
  server: grpc.Server,
  api: ServingApi,
  watchers: HealthWatchers,
): void {
  const check: Unary<HealthCheckRequest, HealthCheckResponse> = unary((req) => {
    if (tooLong(req.service)) {
      throw new ServingError(Code.INVALID_ARGUMENT, UNPARSABLE_CHECK.details);
    }
    const status = api.health(req.service);
    if (status === "SERVICE_UNKNOWN") {
      throw new ServingError(Code.NOT_FOUND, "service name unknown");
    }
    return create(HealthCheckResponseSchema, { status: HEALTH_STATUS[status] });
  }, UNPARSABLE_CHECK);

  const list: Unary<HealthListRequest, HealthListResponse> = unary(() => {
    const statuses: HealthListResponse["statuses"] = {};
    for (const name of healthServiceNames(true)) {
      const status = api.health(name);
      if (status === "SERVICE_UNKNOWN") continue;
      statuses[name] = create(HealthCheckResponseSchema, { status: HEALTH_STATUS[status] });
    }
    return create(HealthListResponseSchema, { statuses });
  });

  const watch: grpc.handleServerStreamingCall<Decoded<HealthCheckRequest>, HealthCheckResponse> = (
    call,
  ) => {
    const req = call.request;
    if (req === UNDECODABLE || req instanceof RefusedRequest || tooLong(req.service)) {
      call.emit("error", UNPARSABLE_WATCH);
      return;
    }
    watchers.add(call, req.service);
  };

  server.addService(grpcServiceDefinition(Health), { check, list, watch });
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
export async function startGrpcServer(
  api: ServingApi,
  options: GrpcServerOptions,
): Promise<GrpcServer> {
  const log = options.log ?? (() => {});
  const server = new grpc.Server(SERVER_OPTIONS);

  const limits = options.decodeLimits;
  const prediction = grpcServiceDefinition(PredictionService, limits);
  server.addService({ ...prediction, predict: predictDefinition(prediction.predict) }, {
    classify: unary((req, ctx) => api.classify(req, "grpc", ctx)),
    regress: unary((req, ctx) => api.regress(req, "grpc", ctx)),
    predict: predictHandler(api, limits ?? DEFAULT_DECODE_LIMITS),
    multiInference: unary((req, ctx) => api.multiInference(req, "grpc", ctx)),
    getModelMetadata: unary((req) => api.getModelMetadata(req, "grpc")),
  });
  server.addService(grpcServiceDefinition(ModelService, limits), {
    getModelStatus: unary((req) => api.getModelStatus(req, "grpc")),
    handleReloadConfigRequest: unary((req) => api.handleReloadConfigRequest(req, "grpc")),
  });
  const watchers = new HealthWatchers(api, options.healthWatchIntervalMs ?? 1000, log);
  if (options.enableHealthCheck) addHealthService(server, api, watchers);

  const bind = (target: string) =>
    new Promise<number>((resolve, reject) => {
      server.bindAsync(
        target,
        grpc.ServerCredentials.createInsecure(),
        (err, bound) => (err ? reject(err) : resolve(bound)),
      );
    });
  let port = 0;
  if (options.port !== undefined) {
    // An IPv6 literal needs brackets in a host:port target.
    const host = options.host.includes(":") && !options.host.startsWith("[")
      ? `[${options.host}]`
      : options.host;
    port = await bind(`${host}:${options.port}`);
  }
  if (options.socketPath) {
    // As grpc's UnlinkIfUnixDomainSocket: a socket file left by an earlier run is removed.
    try {
      if (Deno.lstatSync(options.socketPath).isSocket) Deno.removeSync(options.socketPath);
    } catch { /* nothing there */ }
    await bind(`unix:${options.socketPath}`);
  }

  let closing: Promise<void> | undefined;
  const shutdown = (graceMs: number): Promise<void> =>
    closing ??= new Promise<void>((resolve) => {
      watchers.close();
      let done = false;
      const finish = (how: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        log("info", `gRPC server on port ${port} ${how}`);
        resolve();
      };
      const timer = setTimeout(() => {
        // Grace is over: cancel the calls still running and close every connection.
        server.forceShutdown();
        finish("forced down after the grace period");
      }, Math.max(0, graceMs));
      // Stops listening, sends GOAWAY on every connection and waits for their calls to end.
      server.tryShutdown(() => finish("shut down"));
    });

  return {
    port,
    shutdown,
    [Symbol.asyncDispose]: () => shutdown(DISPOSE_GRACE_MS),
  };
}
