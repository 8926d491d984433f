/**
 * The ServingApi over a ServerCore: each call resolves the ModelSpec to a lent version, runs the
 * servable function on it and releases the version, so an unload waits for calls in flight.
 * This is what TF Serving's PredictionServiceImpl and ModelServiceImpl do.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  type GetModelStatusResponse,
  GetModelStatusResponseSchema,
  ModelVersionStatus_State,
} from "../proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import type { ReloadConfigResponse } from "../proto/gen/tensorflow_serving/apis/model_management_pb.ts";
import { type ModelSpec, ModelSpecSchema } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { HealthStatus, ServingApi, Transport } from "./serving_api.ts";
import type { PredictResponse } from "../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import type { ManagerState } from "../core/manager.ts";
import { toModelServerConfig } from "../config/model_list.ts";
import type { CallContext, Executor } from "../exec/executor.ts";
import { getModelMetadata } from "../servables/metadata.ts";
import { requireModelSpec, type ServableOptions } from "../servables/model_spec.ts";
import {
  type PredictOutputs,
  type PredictRequestView,
  preparePredict,
  preparePredictView,
} from "../servables/predict.ts";
import { preparePredictTensors, type TensorPredictRequest } from "../servables/predict_tensors.ts";
import { signatureInputTypes } from "../servables/signature_info.ts";
import { type PreparedCall, runPrepared } from "../servables/prepared.ts";
import type { ServableModel, ServerCore } from "./server_core.ts";

/**
 * A module imported on its first call (start-up, issue 10: Classify, Regress and MultiInference
 * bring their own request types and tf.Example parsing, which the first Predict does not need).
 * Once loaded, calls run synchronously as before.
 */
function onDemand<M>(load: () => Promise<M>): <R>(use: (m: M) => R) => R | Promise<Awaited<R>> {
  let mod: M | undefined;
  let loading: Promise<M> | undefined;
  return <R>(use: (m: M) => R) => {
    if (mod !== undefined) return use(mod);
    loading ??= load().then((m) => (mod = m), (e) => {
      loading = undefined; // A failed import is tried again by the next call.
      throw e;
    });
    return loading.then(use) as Promise<Awaited<R>>;
  };
}

const classifyModule = onDemand(() => import("../servables/classify.ts"));
const regressModule = onDemand(() => import("../servables/regress.ts"));
const multiInferenceModule = onDemand(() => import("../servables/multi_inference.ts"));
/**
 * ReloadConfigResponse's module, imported on the first reload: it brings the ModelServerConfig
 * messages, which serving the flags' single model never needs.
 */
const managementMessages = () =>
  import("../proto/gen/tensorflow_serving/apis/model_management_pb.ts");

const STATE: Record<ManagerState, ModelVersionStatus_State> = {
  START: ModelVersionStatus_State.START,
  LOADING: ModelVersionStatus_State.LOADING,
  AVAILABLE: ModelVersionStatus_State.AVAILABLE,
  UNLOADING: ModelVersionStatus_State.UNLOADING,
  END: ModelVersionStatus_State.END,
};

/** Services the health check reports on, besides the whole server (`""`). */
const SERVICES = new Set([
  "",
  "tensorflow.serving.PredictionService",
  "tensorflow.serving.ModelService",
]);

/** Observes every served call (metrics). */
export type CallObserver = (
  call: {
    api: string;
    model: string;
    version?: number;
    via: Exclude<Transport, "internal">;
    code: Code;
    ms: number;
  },
) => void;

/** The serving operations over one ServerCore. */
export class ModelServerService implements ServingApi {
  #serving = true;

  /**
   * @param core the models
   * @param options servable options from the flags
   * @param observe called after every inference or metadata call
   * @param executor where inference runs (default: inline, on the caller's thread)
   */
  constructor(
    private readonly core: ServerCore,
    private readonly options: ServableOptions = {},
    private readonly observe?: CallObserver,
    private readonly executor?: Executor,
  ) {}

  /** Marks the server as going down: health checks answer NOT_SERVING. */
  stopServing(): void {
    this.#serving = false;
  }

  #run<R>(
    api: string,
    spec: ModelSpec | undefined,
    via: Transport,
    fn: (m: ServableModel) => R,
  ): R {
    // Timed only when observed: an internal call (and a server without metrics) reads no clock.
    const t0 = via !== "internal" && this.observe !== undefined ? performance.now() : -1;
    let out: R;
    // The handle is held until the call is answered, so an unload waits for calls in flight
    // (on a worker too).
    let handle;
    try {
      handle = this.core.acquire(requireModelSpec(spec));
      out = fn(handle.servable);
    } catch (e) {
      handle?.release();
      const err = ServingError.from(e);
      if (t0 >= 0) this.#done(api, spec, handle?.version, via, err.code, t0);
      throw err;
    }
    if (!(out instanceof Promise)) {
      handle.release();
      if (t0 >= 0) this.#done(api, spec, handle.version, via, Code.OK, t0);
      return out;
    }
    const h = handle;
    return out.then((v: unknown) => {
      h.release();
      if (t0 >= 0) this.#done(api, spec, h.version, via, Code.OK, t0);
      return v;
    }, (e: unknown) => {
      h.release();
      const err = ServingError.from(e);
      if (t0 >= 0) this.#done(api, spec, h.version, via, err.code, t0);
      throw err;
    }) as R;
  }

  /** Reports a finished call to the observer. */
  #done(
    api: string,
    spec: ModelSpec | undefined,
    version: number | undefined,
    via: Transport,
    code: Code,
    t0: number,
  ): void {
    this.observe!({
      api,
      model: spec?.name ?? "",
      version,
      via: via as Exclude<Transport, "internal">,
      code,
      ms: performance.now() - t0,
    });
  }

  /** Runs a prepared call through the executor (or inline without one). */
  #exec<R>(m: ServableModel, call: PreparedCall<R>, ctx?: CallContext): R | Promise<R> {
    return this.executor ? this.executor.run(m.model, call, ctx) : runPrepared(m.model, call);
  }

  /** PredictionService/Predict. */
  predict(req: Parameters<ServingApi["predict"]>[0], via: Transport, ctx?: CallContext) {
    return this.#run(
      "predict",
      req.modelSpec,
      via,
      (m) => this.#exec(m, preparePredict(m.model, m.version, m.name, req, this.options), ctx),
    );
  }

  /**
   * PredictionService/Predict from a request read straight from its wire bytes: the common
   * request runs without message objects and answers {@link PredictOutputs}; any other runs as
   * {@link predict} (same checks, messages, metrics and executor either way).
   */
  predictView(
    req: PredictRequestView,
    via: Transport,
    ctx?: CallContext,
  ): PredictResponse | PredictOutputs | Promise<PredictResponse | PredictOutputs> {
    return this.#run(
      "predict",
      req.modelSpec,
      via,
      (m) => this.#exec(m, preparePredictView(m.model, m.version, m.name, req, this.options), ctx),
    );
  }

  /** PredictionService/Classify. */
  classify(req: Parameters<ServingApi["classify"]>[0], via: Transport, ctx?: CallContext) {
    return this.#run(
      "classify",
      req.modelSpec,
      via,
      (m) =>
        classifyModule(({ prepareClassify }) =>
          this.#exec(m, prepareClassify(m.model, m.version, m.name, req, this.options), ctx)
        ),
    );
  }

  /** PredictionService/Regress. */
  regress(req: Parameters<ServingApi["regress"]>[0], via: Transport, ctx?: CallContext) {
    return this.#run(
      "regress",
      req.modelSpec,
      via,
      (m) =>
        regressModule(({ prepareRegress }) =>
          this.#exec(m, prepareRegress(m.model, m.version, m.name, req, this.options), ctx)
        ),
    );
  }

  /** PredictionService/MultiInference: every task names the same model (checked downstream). */
  multiInference(
    req: Parameters<ServingApi["multiInference"]>[0],
    via: Transport,
    ctx?: CallContext,
  ) {
    // As multi_inference_helper.cc: the first task's spec, or an empty one (which then fails
    // with "ModelSpec has no name specified.").
    const spec = req.tasks[0]?.modelSpec ?? create(ModelSpecSchema);
    return this.#run(
      "multi_inference",
      spec,
      via,
      (m) =>
        multiInferenceModule(({ prepareMultiInference }) =>
          this.#exec(
            m,
            prepareMultiInference(m.model, m.version, m.name, req, this.options),
            ctx,
          )
        ),
    );
  }

  /** PredictionService/GetModelMetadata. */
  getModelMetadata(req: Parameters<ServingApi["getModelMetadata"]>[0], via: Transport) {
    return this.#run(
      "get_model_metadata",
      req.modelSpec,
      via,
      (m) => getModelMetadata(m.model, m.version, m.name, req),
    );
  }

  /** ModelService/GetModelStatus, as get_model_status_impl.cc. */
  getModelStatus(req: Parameters<ServingApi["getModelStatus"]>[0]): GetModelStatusResponse {
    if (!req.modelSpec) throw new ServingError(Code.INVALID_ARGUMENT, "Missing ModelSpec");
    const name = req.modelSpec.name;
    let versions = this.core.status(name);
    const choice = req.modelSpec.versionChoice;
    if (choice.case === "version") {
      // Compared as int64: a version beyond 2^53 must not round onto a served one.
      const v = choice.value.value;
      versions = versions.filter((s) => BigInt(s.version) === v);
      if (versions.length === 0) {
        throw new ServingError(Code.NOT_FOUND, `Could not find version ${v} of model ${name}`);
      }
    } else if (versions.length === 0) {
      throw new ServingError(Code.NOT_FOUND, `Could not find any versions of model ${name}`);
    }
    return create(GetModelStatusResponseSchema, {
      modelVersionStatus: versions.map((s) => ({
        version: BigInt(s.version),
        state: STATE[s.state],
        status: {
          errorCode: (s.error?.code ?? Code.OK) as number,
          errorMessage: s.error?.message ?? "",
        },
      })),
    });
  }

  /** ModelService/HandleReloadConfigRequest, as model_service_impl.cc. */
  async handleReloadConfigRequest(
    req: Parameters<ServingApi["handleReloadConfigRequest"]>[0],
  ): Promise<ReloadConfigResponse> {
    if (req.config?.config.case !== "modelConfigList") {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is currently supported",
      );
    }
    await this.core.reloadConfig(toModelServerConfig(req.config));
    const { ReloadConfigResponseSchema } = await managementMessages();
    return create(ReloadConfigResponseSchema, {
      status: { errorCode: 0, errorMessage: "" },
      // No counters are kept under TensorFlow's metric names, so every increase is 0.
      metric: req.metricNames.map((name) => ({ name, int64ValueIncrease: 0n })),
    });
  }

  /** The input dtypes of each signature of the version `spec` resolves to (not counted). */
  signatureInputTypes(spec: ModelSpec) {
    return this.#run("get_model_metadata", spec, "internal", (m) => signatureInputTypes(m.model));
  }

  /** PredictionService/Predict from decoded tensors (see ServingApi.predictTensors). */
  predictTensors(req: TensorPredictRequest, via: Transport, ctx?: CallContext) {
    return this.#run(
      "predict",
      req.modelSpec,
      via,
      (m) =>
        this.#exec(
          m,
          preparePredictTensors(m.model, m.version, m.name, req, this.options),
          ctx,
        ),
    );
  }

  /** grpc.health.v1.Health: SERVING while up, NOT_SERVING once shutdown began. */
  health(service: string): HealthStatus {
    if (!SERVICES.has(service)) return "SERVICE_UNKNOWN";
    return this.#serving ? "SERVING" : "NOT_SERVING";
  }
}
