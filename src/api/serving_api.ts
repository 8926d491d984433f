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

/** What `grpc.health.v1.Health/Check` answers for a service name. */
export type HealthStatus = "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/**
 * Which transport a call came through, for metrics. `internal` is a call a transport makes for
 * its own needs (the REST API reading input types from the metadata), which is not counted.
 */
export type Transport = "grpc" | "rest" | "internal";

/**
 * The serving operations. Every method throws (or rejects with) a ServingError on failure.
 * Inference methods are synchronous: the runtime is, and a sync call costs no promise.
 */
export interface ServingApi {
  /** PredictionService/Predict. */
  predict(req: PredictRequest, via: Transport): PredictResponse;
  /** PredictionService/Classify. */
  classify(req: ClassificationRequest, via: Transport): ClassificationResponse;
  /** PredictionService/Regress. */
  regress(req: RegressionRequest, via: Transport): RegressionResponse;
  /** PredictionService/MultiInference. */
  multiInference(req: MultiInferenceRequest, via: Transport): MultiInferenceResponse;
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
}
