/**
 * `startServer(options)`: the one place that wires the server together — model config →
 * ServerCore (file-system source → manager → SavedModel loader) → ModelServerService →
 * gRPC transport — and takes it down again in the reverse order.
 *
 * @module
 */
import { Code, ServingError } from "./errors.ts";
import type { ServerOptions } from "./config/flags.ts";
import { loadModelServerConfig, toModelServerConfig } from "./config/model_list.ts";
import { type LogFn, serverLog } from "./log.ts";
import { ServerCore } from "./model_server/server_core.ts";
import { ModelServerService } from "./model_server/service.ts";
import type { GrpcServer } from "./api/grpc/server.ts";
import type {
  RestServer,
  RouteHook,
  startRestServer as StartRestServer,
} from "./api/rest/server.ts";
import { defaultMonitoringConfig } from "./config/monitoring_defaults.ts";
import { createMonitoring } from "./monitoring/monitoring.ts";
import { checkConfigWithinRoots, refuseForbidden, resolveRoots } from "./config/model_roots.ts";
import { Executor, inferenceWorkers } from "./exec/executor.ts";
import { defaultBatchingParameters, readBatchingParametersFile } from "./exec/batching.ts";
import { batchingMetrics } from "./monitoring/batching_metrics.ts";

/** A running server. */
export interface Server extends AsyncDisposable {
  /** The bound gRPC port. */
  readonly grpcPort: number;
  /** The bound HTTP/REST port; 0 when REST is off (or could not be bound, as upstream logs). */
  readonly restPort: number;
  /** The models. */
  readonly core: ServerCore;
  /** The serving operations (what the transports call). */
  readonly service: ModelServerService;
  /**
   * Stops gracefully: health turns NOT_SERVING, no new calls are accepted, calls in flight
   * finish (up to `graceMs`), then every model is unloaded.
   */
  close(graceMs?: number): Promise<void>;
}

/** Options that are not tensorflow_model_server flags. */
export interface StartOptions {
  /** Where log lines go (default: timestamped console lines). */
  readonly log?: LogFn;
  /** The address the gRPC and REST ports bind (default `0.0.0.0`, as upstream). */
  readonly host?: string;
  /** Paths the REST port answers before the REST API (health, metrics, `/`). */
  readonly routes?: RouteHook;
  /** Calls that may wait per model version for a worker (default 128). */
  readonly maxQueuedPerModel?: number;
  /** Inference worker isolates, overriding the thread flags (0: run everything inline). */
  readonly inferenceWorkers?: number;
}

/**
 * Starts the model server described by parsed flags. Resolves once the initial models have
 * settled (loaded or failed; a failure is logged and reported by GetModelStatus, and the server
 * serves the others) and the gRPC port is listening.
 *
 * @throws ServingError for a bad model config file, or a port that cannot be bound
 */
export async function startServer(
  options: ServerOptions,
  start: StartOptions = {},
): Promise<Server> {
  const log = start.log ?? serverLog;
  // Start-up (issue 10): the transports are loaded on demand, starting now so that their files
  // are read while the models load: the gRPC one (the own HTTP/2 transport and the service
  // descriptors; no grpc-js, no node: module), and the REST one (HTTP server, JSON codec, page,
  // metrics routes) only when --rest_api_port is set.
  const grpcModule = import("./api/grpc/server.ts");
  grpcModule.catch(() => {}); // Awaited below; a failure is reported there.
  const restModules = options.restApiPort > 0
    ? Promise.all([import("./api/rest/server.ts"), import("./api/rest/monitoring_routes.ts")])
    : undefined;
  restModules?.catch(() => {}); // Awaited in startRest.
  for (const w of options.warnings) log("warning", w);
  for (const i of options.ignored) log("info", `Flag --${i.flag} has no effect here: ${i.reason}`);

  const servableOptions = {
    enableSignatureMethodNameCheck: options.enableSignatureMethodNameCheck,
    enableSerializationAsTensorContent: options.enableSerializationAsTensorContent,
    decodeLimits: {
      maxRequestBytes: options.maxRequestDecodedBytes,
      maxExpansion: options.maxTensorExpansion,
      expansionFloorBytes: options.tensorExpansionFloorBytes,
    },
  };
  // The file's reader (and its generated schema) loads only when the flag is set.
  const monitoringConfig = options.monitoringConfigFile
    ? await (await import("./config/monitoring_config.ts")).readMonitoringConfigFile(
      options.monitoringConfigFile,
    )
    : defaultMonitoringConfig();
  // Least privilege (src/config/model_roots.ts): a config file or base path under /proc, /sys or
  // /dev, or a base path outside --allowed_model_roots, stops the start.
  if (options.modelConfigFile) refuseForbidden(options.modelConfigFile, "model config file");
  const roots = options.allowedModelRoots.length > 0
    ? await resolveRoots(options.allowedModelRoots, Deno.cwd())
    : undefined;
  let closing: Promise<void> | undefined;
  // The core is made after monitoring, which needs its state events; `core()` is only called
  // on requests, after both exist.
  const monitoring = createMonitoring({ core: () => core });
  // As model_servers/server.cc: batching parameters from the file, else upstream's defaults.
  const batching = options.enableBatching
    ? (options.batchingParametersFile
      ? await readBatchingParametersFile(options.batchingParametersFile)
      : defaultBatchingParameters())
    : undefined;
  const executor = new Executor({
    workers: start.inferenceWorkers ?? inferenceWorkers(options),
    maxQueued: start.maxQueuedPerModel,
    // One thread per op, as TensorFlow's intra-op pool of 1: workers never split a kernel.
    intraOp: options.tensorflowIntraOpParallelism !== 1,
    batching,
    batchObserver: batching ? batchingMetrics(monitoring.metrics.registry) : undefined,
    log,
  });
  const core: ServerCore = new ServerCore({
    executor,
    ...servableOptions,
    tags: options.savedModelTags,
    enableModelWarmup: options.enableModelWarmup,
    warmupIterations: options.numRequestIterationsForWarmup,
    maxNumLoadRetries: options.maxNumLoadRetries,
    loadRetryIntervalMs: options.loadRetryIntervalMicros / 1000,
    fileSystemPollWaitSeconds: options.fileSystemPollWaitSeconds,
    versionDirReadyTimeoutSeconds: options.versionDirReadyTimeoutSeconds,
    allowVersionLabelsForUnavailableModels: options.allowVersionLabelsForUnavailableModels,
    allowedModelRoots: roots,
    onStateChange: monitoring.onStateChange,
    log,
  });
  const service = new ModelServerService(core, servableOptions, monitoring.observer, executor);

  const config = await loadModelServerConfig(options);
  await checkConfigWithinRoots(config.models, roots, Deno.cwd());
  for (const w of config.warnings) log("warning", w);
  try {
    await core.reloadConfig(config);
  } catch (e) {
    // Unlike upstream, a model that fails its first load does not stop the server: the others
    // serve, and GetModelStatus reports the failure.
    log("error", `Not every model became available: ${ServingError.from(e).message}`);
  }

  let grpc: GrpcServer;
  try {
    const { startGrpcServer } = await grpcModule;
    grpc = await startGrpcServer(service, {
      host: start.host ?? "0.0.0.0",
      // As upstream, port 0 serves no TCP port (then --grpc_socket_path must be set).
      port: options.port > 0 ? options.port : undefined,
      socketPath: options.grpcSocketPath || undefined,
      enableHealthCheck: options.enableGrpcHealthcheckService,
      decodeLimits: servableOptions.decodeLimits,
      log,
    });
  } catch (e) {
    await core.stop();
    await executor.close();
    throw new ServingError(
      Code.UNAVAILABLE,
      `Cannot serve gRPC on ${
        [
          options.port > 0 ? `port ${options.port}` : "",
          options.grpcSocketPath ? `UNIX socket ${options.grpcSocketPath}` : "",
        ].filter(Boolean).join(" and ")
      }: ${(e as Error).message}`,
    );
  }
  if (options.port > 0) {
    log("info", `Running gRPC ModelServer at ${start.host ?? "0.0.0.0"}:${grpc.port} ...`);
  }
  if (options.grpcSocketPath) {
    log("info", `Running gRPC ModelServer at UNIX socket ${options.grpcSocketPath} ...`);
  }
  const rest = await startRest(options, start, service, log, async () => {
    const [{ startRestServer }, { monitoringRoutes }] = await restModules!;
    const monitoringHook = monitoringRoutes({
      config: monitoringConfig,
      metrics: monitoring.metrics,
      core: () => core,
      serving: () => closing === undefined,
    });
    const extra = start.routes;
    // Without extra routes the monitoring hook is passed as it is, with the paths it claims.
    const routes: RouteHook = extra
      ? (req, url) => extra(req, url) ?? monitoringHook(req, url)
      : monitoringHook;
    return { startRestServer, routes };
  });

  const stopPolling = pollConfigFile(options, core, log, !config.empty);
  const close = (graceMs = 10_000) =>
    closing ??= (async () => {
      log("info", "Shutting down the model server");
      stopPolling();
      service.stopServing();
      await rest?.shutdown(graceMs);
      await grpc.shutdown(graceMs);
      await core.stop();
      await executor.close();
      log("info", "Server shut down");
    })();
  return {
    grpcPort: grpc.port,
    restPort: rest?.port ?? 0,
    core,
    service,
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}

/**
 * Starts the REST API when `--rest_api_port` is set, as upstream's server.cc: a port equal to
 * `--port`, or one that cannot be bound, is logged and skipped; the gRPC server keeps running.
 */
async function startRest(
  options: ServerOptions,
  start: StartOptions,
  service: ModelServerService,
  log: LogFn,
  load: () => Promise<{ startRestServer: typeof StartRestServer; routes: RouteHook }>,
): Promise<RestServer | undefined> {
  const port = options.restApiPort;
  if (port === 0) return undefined;
  if (port === options.port) {
    log(
      "error",
      "server_options.http_port cannot be same as grpc_port. Please use a different port for " +
        "HTTP/REST API. Skipped exporting HTTP/REST API.",
    );
    return undefined;
  }
  try {
    const { startRestServer, routes } = await load();
    const rest = await startRestServer(service, {
      host: start.host ?? "0.0.0.0",
      port,
      timeoutMs: options.restApiTimeoutInMs,
      enableCors: options.restApiEnableCorsSupport,
      maxBodyBytes: options.restApiMaxBodyBytes,
      maxConnections: options.restApiMaxConnections,
      headerTimeoutMs: options.restApiHeaderTimeoutMs,
      bodyTimeoutMs: options.restApiBodyTimeoutMs,
      idleTimeoutMs: options.restApiIdleTimeoutMs,
      maxBufferedBodyBytes: options.restApiMaxBufferedBodyBytes,
      log,
      routes,
    });
    log("info", `Exporting HTTP/REST API at:localhost:${port} ...`);
    return rest;
  } catch (e) {
    log("error", `Failed to start HTTP Server at localhost:${port}: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * Re-reads `--model_config_file` every `--model_config_file_poll_wait_seconds` (if > 0).
 * `listApplied`: the config applied at start was a model_config_list (not an empty file).
 */
function pollConfigFile(
  options: ServerOptions,
  core: ServerCore,
  log: LogFn,
  listApplied: boolean,
): () => void {
  const seconds = options.modelConfigFilePollWaitSeconds;
  if (options.modelConfigFile === "" || seconds <= 0) return () => {};
  let last: string | undefined;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    // As upstream's Server::PollFilesystemAndReloadConfig: a file that cannot be read or parsed,
    // or a config ServerCore refuses, is logged and the models served stay as they are.
    let text: string | undefined;
    try {
      text = await Deno.readTextFile(options.modelConfigFile);
      if (last !== undefined && text !== last) {
        log("info", `Model config file ${options.modelConfigFile} changed; reloading`);
        let proto;
        try {
          proto = await (await import("./config/model_config.ts")).readModelServerConfigProto(
            options.modelConfigFile,
          );
        } catch (e) {
          // Logged once: the next change of the file is read again.
          log("error", `Failed to read ModelServerConfig file: ${ServingError.from(e).message}`);
        }
        if (proto) {
          try {
            // Upstream's ServerCore::ReloadConfig refuses to change the config type.
            if (listApplied && proto.config.case === "customModelConfig") {
              throw new ServingError(
                Code.FAILED_PRECONDITION,
                "Cannot transition to requested config. It is only legal to transition from " +
                  "one ModelConfigList to another.",
              );
            }
            const config = toModelServerConfig(proto);
            await core.reloadConfig(config);
            if (!config.empty) listApplied = true;
          } catch (e) {
            log(
              "error",
              `PollFilesystemAndReloadConfig failed to ReloadConfig: ${
                ServingError.from(e).message
              }`,
            );
          }
        }
      }
      last = text;
    } catch (e) {
      log("error", `Failed to read ModelServerConfig file: ${ServingError.from(e).message}`);
    }
    if (!stopped) timer = setTimeout(tick, seconds * 1000);
  };
  // The first read records the file as applied at start.
  Deno.readTextFile(options.modelConfigFile).then((t) => (last = t), () => {}).finally(() => {
    if (!stopped) timer = setTimeout(tick, seconds * 1000);
  });
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
