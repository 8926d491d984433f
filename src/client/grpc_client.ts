/**
 * Typed, promise-based gRPC clients for TF Serving's PredictionService and ModelService and
 * for grpc.health.v1.Health, built from the same protobuf-es descriptors the server uses.
 * Methods take a protobuf-es message (or its init object) and an optional deadline, and resolve
 * to the response message; a failed call rejects with a {@link ServingError} carrying the
 * status code and details.
 *
 * @example
 * ```ts
 * using client = new PredictionServiceClient("127.0.0.1:8500");
 * const res = await client.predict({ modelSpec: { name: "mnist" }, inputs: { ... } }, {
 *   deadlineMs: 5000,
 * });
 * ```
 *
 * @module
 */
import {
  create,
  type DescMessage,
  type DescMethod,
  fromBinary,
  isMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import type { Buffer } from "node:buffer";
import { Code, ServingError } from "../errors.ts";
import { encodeMessage, methodPath } from "../proto/rpc.ts";
import {
  Health,
  type HealthCheckRequestSchema,
  type HealthCheckResponse,
  type HealthListRequestSchema,
  type HealthListResponse,
} from "../proto/gen/grpc/health/v1/health_pb.ts";
import { ModelService } from "../proto/gen/tensorflow_serving/apis/model_service_pb.ts";
import { PredictionService } from "../proto/gen/tensorflow_serving/apis/prediction_service_pb.ts";
import type {
  ClassificationRequestSchema,
  ClassificationResponse,
} from "../proto/gen/tensorflow_serving/apis/classification_pb.ts";
import type {
  GetModelMetadataRequestSchema,
  GetModelMetadataResponse,
} from "../proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts";
import type {
  GetModelStatusRequestSchema,
  GetModelStatusResponse,
} from "../proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import type {
  MultiInferenceRequestSchema,
  MultiInferenceResponse,
} from "../proto/gen/tensorflow_serving/apis/inference_pb.ts";
import type {
  ReloadConfigRequestSchema,
  ReloadConfigResponse,
} from "../proto/gen/tensorflow_serving/apis/model_management_pb.ts";
import type {
  PredictRequestSchema,
  PredictResponse,
} from "../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import type {
  RegressionRequestSchema,
  RegressionResponse,
} from "../proto/gen/tensorflow_serving/apis/regression_pb.ts";

/** Per-call options. */
export interface CallOptions {
  /** Fail with DEADLINE_EXCEEDED when no answer came within this many milliseconds. */
  readonly deadlineMs?: number;
  /** Cancels the call (it rejects with CANCELLED). */
  readonly signal?: AbortSignal;
}

/** Options of a client. */
export interface GrpcClientOptions {
  /**
   * grpc-js channel arguments, merged over the defaults (no message size limits, as the
   * server has none). Pass `"grpc.use_local_subchannel_pool": 1` to get a connection of its own
   * rather than one shared with other clients of the same target.
   */
  readonly channelOptions?: grpc.ChannelOptions;
}

/** A request given as a message or as its init object. */
export type RequestInit<D extends DescMessage> = MessageShape<D> | MessageInitShape<D>;

const DEFAULT_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // TF Serving accepts up to INT_MAX and sends without limit; a client capped at grpc-js's 4 MB
  // default would fail on large responses the server happily sends.
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
};

/** Turns a grpc-js error into a ServingError with the status code and details. */
function toServingError(e: unknown): ServingError {
  const err = e as Partial<grpc.ServiceError>;
  if (typeof err?.code === "number") {
    return new ServingError(err.code as number as Code, err.details ?? "", { cause: e });
  }
  return ServingError.from(e, Code.UNKNOWN);
}

/**
 * A client for one protobuf-es service: typed unary and server-streaming calls by method
 * descriptor. The service-specific clients below add one method per RPC.
 */
export class GrpcServiceClient<S extends GenServiceMethods> implements Disposable {
  readonly #client: grpc.Client;

  /**
   * @param service the generated service descriptor
   * @param target `host:port`
   * @param options channel options
   */
  constructor(
    readonly service: GenService<S>,
    target: string,
    options: GrpcClientOptions = {},
  ) {
    this.#client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      ...DEFAULT_CHANNEL_OPTIONS,
      // grpc-js honours http_proxy / grpc_proxy from the environment; a loopback server is
      // never behind one (and tests must not depend on the CI's proxy settings).
      ...(isLoopback(target) ? { "grpc.enable_http_proxy": 0 } : {}),
      ...options.channelOptions,
    });
  }

  /** The grpc-js client underneath (raw calls, connectivity state). */
  get raw(): grpc.Client {
    return this.#client;
  }

  /**
   * Makes a unary call.
   *
   * @param method the method descriptor, e.g. `PredictionService.method.predict`
   * @param request the request message or init object
   * @param options deadline and cancellation
   * @returns the response message
   * @throws ServingError with the call's status code and details
   */
  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    request: RequestInit<I>,
    options: CallOptions = {},
  ): Promise<MessageShape<O>> {
    const req = toMessage(method.input, request);
    return new Promise((resolve, reject) => {
      if (options.signal?.aborted) {
        reject(new ServingError(Code.CANCELLED, "Cancelled before the call started"));
        return;
      }
      const call = this.#client.makeUnaryRequest<MessageShape<I>, MessageShape<O>>(
        methodPath(method),
        (m) => encodeMessage(method.input, m),
        (b: Buffer) => fromBinary(method.output, b),
        req,
        new grpc.Metadata(),
        callOptions(options),
        (err, res) => {
          options.signal?.removeEventListener("abort", abort);
          if (err) reject(toServingError(err));
          else resolve(res!);
        },
      );
      const abort = () => call.cancel();
      options.signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /**
   * Makes a server-streaming call; breaking out of the loop cancels it.
   *
   * @param method the method descriptor, e.g. `Health.method.watch`
   * @param request the request message or init object
   * @param options deadline and cancellation
   * @returns the responses as they arrive
   * @throws ServingError with the call's status code and details
   */
  async *serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethod & { input: I; output: O },
    request: RequestInit<I>,
    options: CallOptions = {},
  ): AsyncGenerator<MessageShape<O>, void, undefined> {
    const call = this.#client.makeServerStreamRequest<MessageShape<I>, MessageShape<O>>(
      methodPath(method),
      (m) => encodeMessage(method.input, m),
      (b: Buffer) => fromBinary(method.output, b),
      toMessage(method.input, request),
      new grpc.Metadata(),
      callOptions(options),
    );
    const abort = () => call.cancel();
    options.signal?.addEventListener("abort", abort, { once: true });
    try {
      for await (const message of call) yield message as MessageShape<O>;
    } catch (e) {
      throw toServingError(e);
    } finally {
      options.signal?.removeEventListener("abort", abort);
      call.cancel();
    }
  }

  /** Closes the channel; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    this.#client.close();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Whether a `host:port` target names this machine. */
export function isLoopback(target: string): boolean {
  const host = target.replace(/^(dns|ipv4|ipv6):(\/\/\/)?/, "").replace(/:\d+$/, "")
    .replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

function toMessage<D extends DescMessage>(schema: D, request: RequestInit<D>): MessageShape<D> {
  return isMessage(request, schema) ? request : create(schema, request as MessageInitShape<D>);
}

function callOptions(options: CallOptions): grpc.CallOptions {
  return options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
}

/** tensorflow.serving.PredictionService. */
export class PredictionServiceClient extends GrpcServiceClient<typeof PredictionService.method> {
  /**
   * @param target `host:port`
   * @param options channel options
   */
  constructor(target: string, options?: GrpcClientOptions) {
    super(PredictionService as GenService<typeof PredictionService.method>, target, options);
  }

  /** PredictionService/Predict. */
  predict(
    req: RequestInit<typeof PredictRequestSchema>,
    options?: CallOptions,
  ): Promise<PredictResponse> {
    return this.unary(PredictionService.method.predict, req, options);
  }

  /** PredictionService/Classify. */
  classify(
    req: RequestInit<typeof ClassificationRequestSchema>,
    options?: CallOptions,
  ): Promise<ClassificationResponse> {
    return this.unary(PredictionService.method.classify, req, options);
  }

  /** PredictionService/Regress. */
  regress(
    req: RequestInit<typeof RegressionRequestSchema>,
    options?: CallOptions,
  ): Promise<RegressionResponse> {
    return this.unary(PredictionService.method.regress, req, options);
  }

  /** PredictionService/MultiInference. */
  multiInference(
    req: RequestInit<typeof MultiInferenceRequestSchema>,
    options?: CallOptions,
  ): Promise<MultiInferenceResponse> {
    return this.unary(PredictionService.method.multiInference, req, options);
  }

  /** PredictionService/GetModelMetadata. */
  getModelMetadata(
    req: RequestInit<typeof GetModelMetadataRequestSchema>,
    options?: CallOptions,
  ): Promise<GetModelMetadataResponse> {
    return this.unary(PredictionService.method.getModelMetadata, req, options);
  }
}

/** tensorflow.serving.ModelService. */
export class ModelServiceClient extends GrpcServiceClient<typeof ModelService.method> {
  /**
   * @param target `host:port`
   * @param options channel options
   */
  constructor(target: string, options?: GrpcClientOptions) {
    super(ModelService as GenService<typeof ModelService.method>, target, options);
  }

  /** ModelService/GetModelStatus. */
  getModelStatus(
    req: RequestInit<typeof GetModelStatusRequestSchema>,
    options?: CallOptions,
  ): Promise<GetModelStatusResponse> {
    return this.unary(ModelService.method.getModelStatus, req, options);
  }

  /** ModelService/HandleReloadConfigRequest. */
  handleReloadConfigRequest(
    req: RequestInit<typeof ReloadConfigRequestSchema>,
    options?: CallOptions,
  ): Promise<ReloadConfigResponse> {
    return this.unary(ModelService.method.handleReloadConfigRequest, req, options);
  }
}

/** grpc.health.v1.Health. */
export class HealthClient extends GrpcServiceClient<typeof Health.method> {
  /**
   * @param target `host:port`
   * @param options channel options
   */
  constructor(target: string, options?: GrpcClientOptions) {
    super(Health as GenService<typeof Health.method>, target, options);
  }

  /** Health/Check (`service: ""` is the whole server). */
  check(
    req: RequestInit<typeof HealthCheckRequestSchema> = {},
    options?: CallOptions,
  ): Promise<HealthCheckResponse> {
    return this.unary(Health.method.check, req, options);
  }

  /** Health/List. */
  list(
    req: RequestInit<typeof HealthListRequestSchema> = {},
    options?: CallOptions,
  ): Promise<HealthListResponse> {
    return this.unary(Health.method.list, req, options);
  }

  /** Health/Watch: the current status, then each change, until the loop is left. */
  watch(
    req: RequestInit<typeof HealthCheckRequestSchema> = {},
    options?: CallOptions,
  ): AsyncGenerator<HealthCheckResponse, void, undefined> {
    return this.serverStream(Health.method.watch, req, options);
  }
}
