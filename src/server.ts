/**
 * `startServer(options)`: the one place that wires the server together — model config →
 * ServerCore (file-system source → manager → SavedModel loader) → ModelServerService →
 * gRPC transport — and takes it down again in the reverse order.
 *
 * @module
 */
import { Code, ServingError } from "./errors.ts";
import type { ServerOptions } from "./config/flags.ts";
import { loadModelServerConfig, readModelConfigFile } from "./config/model_config.ts";
import { type LogFn, serverLog } from "./log.ts";
import { ServerCore } from "./model_server/server_core.ts";
import { ModelServerService } from "./model_server/service.ts";
import { type GrpcServer, startGrpcServer } from "./api/grpc/server.ts";

/** A running server. */
export interface Server extends AsyncDisposable {
  /** The bound gRPC port. */
  readonly grpcPort: number;
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
  /** The address the gRPC port binds (default `0.0.0.0`, as upstream). */
  readonly host?: string;
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
  for (const w of options.warnings) log("warning", w);
  for (const i of options.ignored) log("info", `Flag --${i.flag} has no effect here: ${i.reason}`);

  const servableOptions = {
    enableSignatureMethodNameCheck: options.enableSignatureMethodNameCheck,
    enableSerializationAsTensorContent: options.enableSerializationAsTensorContent,
  };
  const core = new ServerCore({
    ...servableOptions,
    tags: options.savedModelTags,
    enableModelWarmup: options.enableModelWarmup,
    warmupIterations: options.numRequestIterationsForWarmup,
    maxNumLoadRetries: options.maxNumLoadRetries,
    loadRetryIntervalMs: options.loadRetryIntervalMicros / 1000,
    fileSystemPollWaitSeconds: options.fileSystemPollWaitSeconds,
    allowVersionLabelsForUnavailableModels: options.allowVersionLabelsForUnavailableModels,
    log,
  });
  const service = new ModelServerService(core, servableOptions);

  const config = await loadModelServerConfig(options);
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
    grpc = await startGrpcServer(service, {
      host: start.host ?? "0.0.0.0",
      port: options.port,
      enableHealthCheck: options.enableGrpcHealthcheckService,
      log,
    });
  } catch (e) {
    await core.stop();
    throw new ServingError(
      Code.UNAVAILABLE,
      `Cannot serve gRPC on port ${options.port}: ${(e as Error).message}`,
    );
  }
  log("info", `Running gRPC ModelServer at ${start.host ?? "0.0.0.0"}:${grpc.port} ...`);

  const stopPolling = pollConfigFile(options, core, log);
  let closing: Promise<void> | undefined;
  const close = (graceMs = 10_000) =>
    closing ??= (async () => {
      log("info", "Shutting down the model server");
      stopPolling();
      service.stopServing();
      await grpc.shutdown(graceMs);
      await core.stop();
      log("info", "Server shut down");
    })();
  return {
    grpcPort: grpc.port,
    core,
    service,
    close,
    [Symbol.asyncDispose]: () => close(),
  };
}

/** Re-reads `--model_config_file` every `--model_config_file_poll_wait_seconds` (if > 0). */
function pollConfigFile(options: ServerOptions, core: ServerCore, log: LogFn): () => void {
  const seconds = options.modelConfigFilePollWaitSeconds;
  if (options.modelConfigFile === "" || seconds <= 0) return () => {};
  let last: string | undefined;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    try {
      const text = await Deno.readTextFile(options.modelConfigFile);
      if (last !== undefined && text !== last) {
        log("info", `Model config file ${options.modelConfigFile} changed; reloading`);
        await core.reloadConfig(await readModelConfigFile(options.modelConfigFile));
      }
      last = text;
    } catch (e) {
      log("error", `Cannot reload ${options.modelConfigFile}: ${ServingError.from(e).message}`);
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
