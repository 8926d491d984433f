/**
 * The operations both transports serve, as TF Serving's PredictionService, ModelService and
 * the gRPC health service define them. Transports decode a request, call one method, and
 * encode the response or the ServingError; they know nothing else of the server.
 *
 * @module
 */
import type {
  ClassificationRequest,
  ClassificationResponse,
} from "../proto/gen/tensorflow_serving/apis/classification_pb.ts";
import type {
  GetModelMetadataRequest,
  GetModelMetadataResponse,
} from "../proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts";
import type {
  GetModelStatusRequest,
  GetModelStatusResponse,
} from "../proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import type {
  MultiInferenceRequest,
  MultiInferenceResponse,
} from "../proto/gen/tensorflow_serving/apis/inference_pb.ts";
import type {
  ReloadConfigRequest,
  ReloadConfigResponse,
} from "../proto/gen/tensorflow_serving/apis/model_management_pb.ts";
import type {
  PredictRequest,
  PredictResponse,
} from "../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import type {
  RegressionRequest,
  RegressionResponse,
} from "../proto/gen/tensorflow_serving/apis/regression_pb.ts";

import type { CallContext } from "../exec/executor.ts";
import type { PredictOutputs, PredictRequestView } from "../servables/predict.ts";
import type { ModelSpec } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import type { SignatureInputTypes } from "../servables/signature_info.ts";
import type { PredictTensors, TensorPredictRequest } from "../servables/predict_tensors.ts";

export type { CallContext };

/** What `grpc.health.v1.Health/Check` answers for a service name. */
export type HealthStatus = "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/**
 * Which transport a call came through, for metrics. `internal` is a call a transport makes for
 * its own needs (the REST API reading input types from the metadata), which is not counted.
 */
export type Transport = "grpc" | "rest" | "internal";

/**
 * The serving operations. Every method throws (or rejects with) a ServingError on failure.
 * Inference methods answer synchronously when the call ran inline (a cheap signature: no
 * promise is made) and with a promise when it ran on a worker; `ctx` carries the call's
 * deadline and the signal of its client going away.
 */
export interface ServingApi {
  /** PredictionService/Predict. */
  predict(
    req: PredictRequest,
    via: Transport,
    ctx?: CallContext,
  ): PredictResponse | Promise<PredictResponse>;
  /**
   * PredictionService/Predict from a request read straight from its wire bytes (the gRPC hot
   * path): answers the outputs as tensors ({@link PredictOutputs}) for the transport to encode,
   * or a response message when the request took the message path. Optional: a transport without
   * it decodes the message and calls {@link predict}.
   */
  predictView?(
    req: PredictRequestView,
    via: Transport,
    ctx?: CallContext,
  ): PredictResponse | PredictOutputs | Promise<PredictResponse | PredictOutputs>;
  /** PredictionService/Classify. */
  classify(
    req: ClassificationRequest,
    via: Transport,
    ctx?: CallContext,
  ): ClassificationResponse | Promise<ClassificationResponse>;
  /** PredictionService/Regress. */
  regress(
    req: RegressionRequest,
    via: Transport,
    ctx?: CallContext,
  ): RegressionResponse | Promise<RegressionResponse>;
  /** PredictionService/MultiInference. */
  multiInference(
    req: MultiInferenceRequest,
    via: Transport,
    ctx?: CallContext,
  ): MultiInferenceResponse | Promise<MultiInferenceResponse>;
  /** PredictionService/GetModelMetadata. */
  getModelMetadata(req: GetModelMetadataRequest, via: Transport): GetModelMetadataResponse;
  /** ModelService/GetModelStatus. */
  getModelStatus(req: GetModelStatusRequest, via: Transport): GetModelStatusResponse;
  /** ModelService/HandleReloadConfigRequest: resolves once the new config is applied. */
  handleReloadConfigRequest(
    req: ReloadConfigRequest,
    via: Transport,
  ): Promise<ReloadConfigResponse>;
  /** grpc.health.v1.Health: the status of a service name (`""` is the whole server). */
  health(service: string): HealthStatus;
  /**
   * The input dtypes of each signature of the version `spec` resolves to, as GetModelMetadata's
   * `signature_def` lists them (REST's `GetInfoMap`), without building the metadata message.
   * Not counted by metrics. Optional: a transport without it reads the metadata.
   *
   * @throws ServingError as GetModelMetadata for a model or version that is not there
   */
  signatureInputTypes?(spec: ModelSpec): ReadonlyMap<string, SignatureInputTypes>;
  /**
   * PredictionService/Predict from tensors the transport decoded itself (the REST hot path):
   * answers the output tensors ({@link PredictTensors}) when the request ran directly, or the
   * response message when it took the message path. Optional: a transport without it builds
   * the request message and calls {@link predict}.
   */
  predictTensors?(
    req: TensorPredictRequest,
    via: Transport,
    ctx?: CallContext,
  ): PredictResponse | PredictTensors | Promise<PredictResponse | PredictTensors>;
}
