/**
 * tensorflow_model_server's command line: the same flag names, types, defaults and parse rules as
 * upstream `tensorflow_serving/model_servers/main.cc` (flags), `server.h` (Options defaults) and
 * `tsl/util/command_line_flags.cc` (`tensorflow::Flags::Parse`), turned into a typed
 * {@linkcode ServerOptions}. Pure: it never reads `Deno.args` and never exits; `main.ts` does.
 *
 * Parse rules (as `Flags::Parse`):
 * - every flag is `--name=value`; there is no `--name value`, no single dash, no `--noname`;
 * - a bool may also be a bare `--name`; its value is `true`/`false` (any case) or `1`/`0`;
 * - an int is decimal with an optional sign, surrounding ASCII whitespace allowed, and must fit
 *   its type (int32 or int64); a float is a decimal or `inf`/`nan` literal;
 * - a flag given twice keeps its last value.
 *
 * Deliberate differences: upstream prints "unknown argument" and keeps going; here an unknown
 * flag or a stray argument throws {@linkcode UsageError}. A literal `--` (from
 * `deno task serve -- ...`) is skipped instead of ending the flags. Ports outside [0, 65535]
 * are rejected here rather than at bind time.
 *
 * @example
 * ```ts
 * const opts = parseFlags(["--port=9000", "--model_name=mnist", "--model_base_path=/models/mnist"]);
 * opts.port; // 9000
 * ```
 *
 * @module
 */

/** Thrown for a command line that cannot be used; `main.ts` prints it with {@linkcode usage} and exits 2. */
export class UsageError extends Error {
  /** The flag at fault (without dashes), when one is. */
  readonly flag: string | undefined;
  /** The value or argument at fault, when one is. */
  readonly value: string | undefined;

  /**
   * @param message what is wrong, naming the flag and value
   * @param flag the flag at fault (without dashes)
   * @param value the offending value or argument
   */
  constructor(message: string, flag?: string, value?: string) {
    super(message);
    this.name = "UsageError";
    this.flag = flag;
    this.value = value;
  }
}

/** The value types `tensorflow::Flag` knows. */
export type FlagType = "int32" | "int64" | "bool" | "string" | "float";

/** How this server treats a flag it accepts. */
export type FlagSupport =
  /** Acted on (or passed on to the part of the server that acts on it). */
  | { kind: "supported" }
  /** Accepted for compatibility but has no effect here; `main.ts` logs the reason if it is given. */
  | { kind: "ignored"; reason: string }
  /** Accepted only at its default; any other value is refused (silently ignoring it would be unsafe). */
  | { kind: "refused"; reason: string };

/** One flag of the command line. */
export interface FlagSpec {
  /** The flag name, as written after `--`. */
  readonly name: string;
  /** Its value type, as upstream declares it. */
  readonly type: FlagType;
  /** The default, as upstream's `Server::Options` has it. */
  readonly defaultValue: number | boolean | string;
  /** Upstream's help text. */
  readonly help: string;
  /** Whether this server acts on it. */
  readonly support: FlagSupport;
  /** True for a flag of this server's own, which upstream's main.cc does not have. */
  readonly extension?: boolean;
}

/** A flag the user gave that this server does not act on, for `main.ts` to log. */
export interface IgnoredFlag {
  /** The flag name (without dashes). */
  readonly flag: string;
  /** The value given, as written. */
  readonly value: string;
  /** Why it has no effect here. */
  readonly reason: string;
}

/** One `key=value` of `--grpc_channel_arguments`; the value is a number when it parses as an int32. */
export interface GrpcChannelArgument {
  /** The gRPC channel argument name, e.g. `grpc.max_connection_age_ms`. */
  readonly key: string;
  /** Its value: an int32 when it reads as one (as upstream passes it), otherwise the string. */
  readonly value: number | string;
}

/**
 * The parsed command line: one field per upstream flag (the flag name in camelCase), plus what
 * `main.ts` acts on (`help`, `version`, `ignored`, `warnings`).
 */
export interface ServerOptions {
  /** `--port`: TCP port for gRPC; 0 disables gRPC over TCP. Default 8500. */
  port: number;
  /** `--grpc_socket_path`: if non-empty, also serve gRPC on this UNIX socket. */
  grpcSocketPath: string;
  /** `--rest_api_port`: HTTP/REST port; 0 disables REST. Default 0. */
  restApiPort: number;
  /** `--rest_api_num_threads` (ignored: one event loop). Default 4 × CPUs. */
  restApiNumThreads: number;
  /** `--rest_api_timeout_in_ms`: REST call timeout. Default 30000. */
  restApiTimeoutInMs: number;
  /** `--rest_api_enable_cors_support`: add CORS headers to REST responses. */
  restApiEnableCorsSupport: boolean;
  /** `--enable_batching`: batch concurrent calls of a signature (src/exec/batching.ts). */
  enableBatching: boolean;
  /** `--allow_version_labels_for_unavailable_models`. */
  allowVersionLabelsForUnavailableModels: boolean;
  /** `--batching_parameters_file`: BatchingParameters text proto (default: upstream's). */
  batchingParametersFile: string;
  /** `--enable_per_model_batching_parameters` (ignored). */
  enablePerModelBatchingParameters: boolean;
  /** `--model_config_file`: a text ModelServerConfig; when set, model_name/model_base_path are ignored. */
  modelConfigFile: string;
  /** `--model_config_file_poll_wait_seconds`: re-read interval; 0 reads once. Default 0. */
  modelConfigFilePollWaitSeconds: number;
  /** `--model_name`: the single model's name. Default "default". */
  modelName: string;
  /** `--model_base_path`: the single model's base path (without the version directory). */
  modelBasePath: string;
  /** `--num_load_threads`: concurrent loads; 0 loads serially. Default 0. */
  numLoadThreads: number;
  /** `--num_unload_threads`: concurrent unloads; 0 unloads serially. Default 0. */
  numUnloadThreads: number;
  /** `--max_num_load_retries`: retries after a failed load. Default 5. */
  maxNumLoadRetries: number;
  /** `--load_retry_interval_micros`: wait between load retries. Default 60000000 (1 minute). */
  loadRetryIntervalMicros: number;
  /** `--file_system_poll_wait_seconds`: version poll interval; 0 polls once, < 0 never. Default 1. */
  fileSystemPollWaitSeconds: number;
  /** `--flush_filesystem_caches` (ignored). Default true. */
  flushFilesystemCaches: boolean;
  /**
   * `--tensorflow_session_parallelism`: inference worker isolates (see `inferenceWorkers` in
   * src/exec/executor.ts); 0: as many as CPUs.
   */
  tensorflowSessionParallelism: number;
  /** `--tensorflow_session_config_file` (ignored). */
  tensorflowSessionConfigFile: string;
  /** `--tensorflow_intra_op_parallelism`: worker isolates when the other two are 0. */
  tensorflowIntraOpParallelism: number;
  /** `--tensorflow_inter_op_parallelism`: worker isolates when session parallelism is 0. */
  tensorflowInterOpParallelism: number;
  /** `--use_alts_credentials` (refused when true). */
  useAltsCredentials: boolean;
  /** `--ssl_config_file` (refused when set). */
  sslConfigFile: string;
  /** `--platform_config_file` (ignored). */
  platformConfigFile: string;
  /** `--per_process_gpu_memory_fraction` (ignored). */
  perProcessGpuMemoryFraction: number;
  /** `--saved_model_tags`, split on commas. Default ["serve"]. */
  savedModelTags: string[];
  /** `--grpc_channel_arguments`, parsed. */
  grpcChannelArguments: GrpcChannelArgument[];
  /** `--grpc_max_threads` (ignored). Default 4 × CPUs. */
  grpcMaxThreads: number;
  /** `--enable_model_warmup`: replay assets.extra/tf_serving_warmup_requests at load. Default true. */
  enableModelWarmup: boolean;
  /** `--num_request_iterations_for_warmup`: used only if > 0. */
  numRequestIterationsForWarmup: number;
  /** `--monitoring_config_file`: a text MonitoringConfig. */
  monitoringConfigFile: string;
  /** `--remove_unused_fields_from_bundle_metagraph` (ignored). Default true. */
  removeUnusedFieldsFromBundleMetagraph: boolean;
  /** `--prefer_tflite_model` (ignored). */
  preferTfliteModel: boolean;
  /** `--num_tflite_pools` (ignored). */
  numTflitePools: number;
  /** `--num_tflite_interpreters_per_pool` (ignored). */
  numTfliteInterpretersPerPool: number;
  /** `--enable_signature_method_name_check`: check method_name for Classify/Regress. */
  enableSignatureMethodNameCheck: boolean;
  /** `--xla_cpu_compilation_enabled` (ignored). */
  xlaCpuCompilationEnabled: boolean;
  /** `--xla_gpu_compilation_enabled` (ignored). */
  xlaGpuCompilationEnabled: boolean;
  /** `--enable_profiler` (ignored). Default true. */
  enableProfiler: boolean;
  /** `--thread_pool_factory_config_file` (ignored). */
  threadPoolFactoryConfigFile: string;
  /** `--mixed_precision` (ignored). */
  mixedPrecision: string;
  /** `--skip_initialize_tpu` (ignored). */
  skipInitializeTpu: boolean;
  /** `--enable_grpc_healthcheck_service`: serve grpc.health.v1.Health. */
  enableGrpcHealthcheckService: boolean;
  /** `--enable_serialization_as_tensor_content`: Predict outputs as tensor_content. */
  enableSerializationAsTensorContent: boolean;
  /**
   * `--allowed_model_roots` (this server's own): the directories models may be read from; empty
   * = not confined by the server itself (see src/config/model_roots.ts and launch.ts).
   */
  allowedModelRoots: string[];
  /** `--max_request_decoded_bytes` (this server's): all tensors of one request. Default 1 GiB. */
  maxRequestDecodedBytes: number;
  /** `--max_tensor_expansion` (this server's): decoded bytes per encoded byte. Default 16. */
  maxTensorExpansion: number;
  /** `--tensor_expansion_floor_bytes` (this server's): what any tensor may decode to. 16 MiB. */
  tensorExpansionFloorBytes: number;

  // Connection and model-directory limits of this server (not upstream flags; README "Limits").
  /** `--rest_api_max_connections`: REST connections open at once. Default 1000. */
  restApiMaxConnections: number;
  /** `--rest_api_header_timeout_ms`: a request's line and headers must arrive within. */
  restApiHeaderTimeoutMs: number;
  /** `--rest_api_body_timeout_ms`: a request's body must arrive within (after its headers). */
  restApiBodyTimeoutMs: number;
  /** `--rest_api_idle_timeout_ms`: a keep-alive connection without a request is closed after. */
  restApiIdleTimeoutMs: number;
  /** `--rest_api_max_body_bytes`: the largest REST request body (after gzip). Default 64 MiB. */
  restApiMaxBodyBytes: number;
  /** `--rest_api_max_buffered_body_bytes`: request body bytes held at once, all connections. */
  restApiMaxBufferedBodyBytes: number;
  /** `--version_dir_ready_timeout_seconds`: wait for a version dir's saved_model.pb at most. */
  versionDirReadyTimeoutSeconds: number;

  /** `--help` was given: print {@linkcode usage} and exit (nothing was validated). */
  help: boolean;
  /** `--version` was given: print {@linkcode versionText} and exit (nothing was validated). */
  version: boolean;
  /** Flags given that have no effect here, with the reason, for `main.ts` to log. */
  ignored: IgnoredFlag[];
  /** Non-fatal problems (upstream logs these and carries on), for `main.ts` to log. */
  warnings: string[];
  /** Names of the flags given on the command line. */
  given: ReadonlySet<string>;
}

/** The version `--version` reports. */
export const VERSION: {
  readonly modelServer: string;
  readonly tensorflowLibrary: string;
  readonly servingApi: string;
} = {
  modelServer: "0.1.0+deno",
  tensorflowLibrary: "none (TypeScript kernels on typed arrays)",
  // protos/ follows upstream's tensorflow_serving/apis of the 2.x series (PredictRequest with
  // client_id and request_options).
  servingApi: "tensorflow.serving 2.x (protos/tensorflow_serving/apis)",
};

/**
 * What `--version` prints: upstream's two lines, then the TF Serving API the gRPC and REST
 * surfaces follow.
 */
export function versionText(): string {
  return `TensorFlow ModelServer: ${VERSION.modelServer}\n` +
    `TensorFlow Library: ${VERSION.tensorflowLibrary}\n` +
    `TensorFlow Serving API: ${VERSION.servingApi}\n`;
}

// Upstream sizes gRPC/REST/TFLite pools from port::NumSchedulableCPUs(); the defaults are only
// displayed (those flags are ignored here), so navigator.hardwareConcurrency is close enough.
const CPUS: number = Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);

const SUPPORTED: FlagSupport = { kind: "supported" };

function ignored(reason: string): FlagSupport {
  return { kind: "ignored", reason };
}

const NO_THREAD_POOL = "requests run on the event loop; there is no thread pool to size";
const NO_BATCHING = "per-model batching parameters are not supported; " +
  "--batching_parameters_file applies to every model";
const NO_SESSION_THREADS = "kernels run on the event loop; there is no session thread pool";
const NO_TFLITE = "TensorFlow Lite models are not supported; the SavedModel is always used";

/**
 * Limits of this server that upstream has no flag for: REST connections (upstream's libevent
 * server has its own fixed ones) and how long a version directory may stay incomplete.
 */
const CONNECTION_AND_SOURCE_LIMIT_FLAGS: readonly FlagSpec[] = [
  {
    name: "rest_api_max_connections",
    type: "int32",
    defaultValue: 1000,
    help: "HTTP/REST connections open at once. At the limit, a new connection replaces the one " +
      "that has waited longest for a request (idle or still sending it); if all are being " +
      "answered, the new one is closed. 0 or less: no limit.",
    support: SUPPORTED,
    extension: true,
  },
  {
    name: "rest_api_header_timeout_ms",
    type: "int32",
    defaultValue: 10_000,
    help: "An HTTP/REST request's line and headers must arrive within this many milliseconds " +
      "of its first byte, or the connection is closed (408). 0 or less: no limit.",
    support: SUPPORTED,
    extension: true,
  },
  {
    name: "rest_api_body_timeout_ms",
    type: "int32",
    defaultValue: 60_000,
    help: "An HTTP/REST request's body must arrive within this many milliseconds of the end of " +
      "its headers, or the connection is closed (408). 0 or less: no limit.",
    support: SUPPORTED,
    extension: true,
  },
  {
    name: "rest_api_idle_timeout_ms",
    type: "int32",
    defaultValue: 60_000,
    help: "A keep-alive HTTP/REST connection with no request under way is closed after this " +
      "many milliseconds. 0 or less: no limit.",
    support: SUPPORTED,
    extension: true,
  },
  {
    name: "rest_api_max_body_bytes",
    type: "int64",
    defaultValue: 64 * 1024 * 1024,
    help: "The largest HTTP/REST request body, after gzip inflation; a larger one is refused " +
      "with 413 before it is read (by Content-Length) or as soon as it grows past the limit.",
    support: SUPPORTED,
    extension: true,
  },
  {
    name: "rest_api_max_buffered_body_bytes",
    type: "int64",
    defaultValue: 256 * 1024 * 1024,
    help: "HTTP/REST request body bytes held in memory at once over all connections; a " +
      "request that would exceed it is refused with 503 and its connection closed.",
    support: SUPPORTED,
    extension: true,
  },
  {
    name: "version_dir_ready_timeout_seconds",
    type: "int32",
    defaultValue: 60,
    help: "A new version directory is loaded once its saved_model.pb exists and is unchanged " +
      "between two polls; one that has none after this many seconds (e.g. a symlink to a " +
      "directory that is no model) is loaded anyway, so its load fails and GetModelStatus " +
      "reports why. 0: load every version directory as soon as it appears (as upstream).",
    support: SUPPORTED,
    extension: true,
  },
];

/** Every flag upstream's main.cc declares, in its order, with upstream's defaults and help. */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: "port",
    type: "int32",
    defaultValue: 8500,
    help: "TCP port to listen on for gRPC/HTTP API. Disabled if port set to zero.",
    support: SUPPORTED,
  },
  {
    name: "grpc_socket_path",
    type: "string",
    defaultValue: "",
    help: "If non-empty, listen to a UNIX socket for gRPC API on the given path. " +
      "Can be either relative or absolute path.",
    support: SUPPORTED,
  },
  {
    name: "rest_api_port",
    type: "int32",
    defaultValue: 0,
    help: "Port to listen on for HTTP/REST API. If set to zero HTTP/REST API will not be " +
      "exported. This port must be different than the one specified in --port.",
    support: SUPPORTED,
  },
  {
    name: "rest_api_num_threads",
    type: "int32",
    defaultValue: 4 * CPUS,
    help: "Number of threads for HTTP/REST API processing. If not set, will be auto set " +
      "based on number of CPUs.",
    support: ignored(NO_THREAD_POOL),
  },
  {
    name: "rest_api_timeout_in_ms",
    type: "int32",
    defaultValue: 30000,
    help: "Timeout for HTTP/REST API calls.",
    support: SUPPORTED,
  },
  {
    name: "rest_api_enable_cors_support",
    type: "bool",
    defaultValue: false,
    help: "Enable CORS headers in response",
    support: SUPPORTED,
  },
  {
    name: "enable_batching",
    type: "bool",
    defaultValue: false,
    help: "enable batching",
    support: SUPPORTED,
  },
  {
    name: "allow_version_labels_for_unavailable_models",
    type: "bool",
    defaultValue: false,
    help: "If true, allows assigning unused version labels to models that are not available " +
      "yet.",
    support: SUPPORTED,
  },
  {
    name: "batching_parameters_file",
    type: "string",
    defaultValue: "",
    help: "If non-empty, read an ascii BatchingParameters protobuf from the supplied file " +
      "name and use the contained values instead of the defaults.",
    support: SUPPORTED,
  },
  {
    name: "enable_per_model_batching_parameters",
    type: "bool",
    defaultValue: false,
    help: "Enables model specific batching params like batch sizes, timeouts, batching " +
      "feature flags to be read from `batching_params.pbtxt` file present in SavedModel dir " +
      "of the model. Associated params in the global config from --batching_parameters_file " +
      "are *ignored*. Only threadpool (name and size) related params are used from the " +
      "global config, as this threadpool is shared across all the models that want to batch " +
      "requests. This option is only applicable when --enable_batching flag is set.",
    support: ignored(NO_BATCHING),
  },
  {
    name: "model_config_file",
    type: "string",
    defaultValue: "",
    help: "If non-empty, read an ascii ModelServerConfig protobuf from the supplied file " +
      "name, and serve the models in that file. This config file can be used to specify " +
      "multiple models to serve and other advanced parameters including non-default version " +
      "policy. (If used, --model_name, --model_base_path are ignored.)",
    support: SUPPORTED,
  },
  {
    name: "model_config_file_poll_wait_seconds",
    type: "int32",
    defaultValue: 0,
    help: "Interval in seconds between each poll of the filesystem for model_config_file. If " +
      "unset or set to zero, poll will be done exactly once and not periodically. Setting " +
      "this to negative is reserved for testing purposes only.",
    support: SUPPORTED,
  },
  {
    name: "model_name",
    type: "string",
    defaultValue: "default",
    help: "name of model (ignored if --model_config_file flag is set)",
    support: SUPPORTED,
  },
  {
    name: "model_base_path",
    type: "string",
    defaultValue: "",
    help: "path to export (ignored if --model_config_file flag is set, otherwise required)",
    support: SUPPORTED,
  },
  {
    name: "num_load_threads",
    type: "int32",
    defaultValue: 0,
    help: "The number of threads in the thread-pool used to load servables. If set as 0, we " +
      "don't use a thread-pool, and servable loads are performed serially in the manager's " +
      "main work loop, may cause the Serving request to be delayed. Default: 0",
    support: SUPPORTED,
  },
  {
    name: "num_unload_threads",
    type: "int32",
    defaultValue: 0,
    help: "The number of threads in the thread-pool used to unload servables. If set as 0, " +
      "we don't use a thread-pool, and servable loads are performed serially in the " +
      "manager's main work loop, may cause the Serving request to be delayed. Default: 0",
    support: SUPPORTED,
  },
  {
    name: "max_num_load_retries",
    type: "int32",
    defaultValue: 5,
    help: "maximum number of times it retries loading a model after the first failure, " +
      "before giving up. If set to 0, a load is attempted only once. Default: 5",
    support: SUPPORTED,
  },
  {
    name: "load_retry_interval_micros",
    type: "int64",
    defaultValue: 60_000_000,
    help: "The interval, in microseconds, between each servable load retry. If set negative, " +
      "it doesn't wait. Default: 1 minute",
    support: SUPPORTED,
  },
  {
    name: "file_system_poll_wait_seconds",
    type: "int32",
    defaultValue: 1,
    help: "Interval in seconds between each poll of the filesystem for new model version. If " +
      "set to zero poll will be exactly done once and not periodically. Setting this to " +
      "negative value will disable polling entirely causing ModelServer to indefinitely wait " +
      "for a new model at startup. Negative values are reserved for testing purposes only.",
    support: SUPPORTED,
  },
  {
    name: "flush_filesystem_caches",
    type: "bool",
    defaultValue: true,
    help: "If true (the default), filesystem caches will be flushed after the initial load " +
      "of all servables, and after each subsequent individual servable reload (if the number " +
      "of load threads is 1). This reduces memory consumption of the model server, at the " +
      "potential cost of cache misses if model files are accessed after servables are " +
      "loaded.",
    support: ignored("there are no file system caches to flush"),
  },
  {
    name: "tensorflow_session_parallelism",
    type: "int64",
    defaultValue: 0,
    help: "Number of threads to use for running a Tensorflow session. Auto-configured by " +
      "default.Note that this option is ignored if --platform_config_file is non-empty.",
    support: SUPPORTED,
  },
  {
    name: "tensorflow_session_config_file",
    type: "string",
    defaultValue: "",
    help: "If non-empty, read an ascii TensorFlow Session ConfigProto protobuf from the " +
      "supplied file name. Note, parts of the session config (threads, parallelism etc.) can " +
      "be overridden if needed, via corresponding command line flags.",
    support: ignored("there is no TensorFlow session to configure"),
  },
  {
    name: "tensorflow_intra_op_parallelism",
    type: "int64",
    defaultValue: 0,
    help: "Number of threads to use to parallelize the executionof an individual op. " +
      "Auto-configured by default.Note that this option is ignored if --platform_config_file " +
      "is non-empty.",
    support: SUPPORTED,
  },
  {
    name: "tensorflow_inter_op_parallelism",
    type: "int64",
    defaultValue: 0,
    help: "Controls the number of operators that can be executed simultaneously. " +
      "Auto-configured by default.Note that this option is ignored if --platform_config_file " +
      "is non-empty.",
    support: SUPPORTED,
  },
  {
    name: "use_alts_credentials",
    type: "bool",
    defaultValue: false,
    help: "Use Google ALTS credentials",
    support: {
      kind: "refused",
      reason: "ALTS credentials are not supported; refusing to serve without the requested " +
        "transport security",
    },
  },
  {
    name: "ssl_config_file",
    type: "string",
    defaultValue: "",
    help: "If non-empty, read an ascii SSLConfig protobuf from the supplied file name and set " +
      "up a secure gRPC channel",
    support: {
      kind: "refused",
      reason: "TLS is not supported; refusing to serve without the requested transport " +
        "security",
    },
  },
  {
    name: "platform_config_file",
    type: "string",
    defaultValue: "",
    help: "If non-empty, read an ascii PlatformConfigMap protobuf from the supplied file " +
      "name, and use that platform config instead of the Tensorflow platform. (If used, " +
      "--enable_batching is ignored.)",
    support: ignored("only the built-in tensorflow platform is available"),
  },
  {
    name: "per_process_gpu_memory_fraction",
    type: "float",
    defaultValue: 0,
    help: "Fraction that each process occupies of the GPU memory space the value is between " +
      "0.0 and 1.0 (with 0.0 as the default) If 1.0, the server will allocate all the memory " +
      "when the server starts, If 0.0, Tensorflow will automatically select a value.",
    support: ignored("this server does not use a GPU"),
  },
  {
    name: "saved_model_tags",
    type: "string",
    defaultValue: "serve",
    help: "Comma-separated set of tags corresponding to the meta graph def to load from " +
      "SavedModel.",
    support: SUPPORTED,
  },
  {
    name: "grpc_channel_arguments",
    type: "string",
    defaultValue: "",
    help: "A comma separated list of arguments to be passed to the grpc server. (e.g. " +
      "grpc.max_connection_age_ms=2000)",
    support: SUPPORTED,
  },
  {
    name: "grpc_max_threads",
    type: "int32",
    defaultValue: 4 * CPUS,
    help: "Max grpc server threads to handle grpc messages.",
    support: ignored("the event loop serves gRPC; there is no thread pool to size"),
  },
  {
    name: "enable_model_warmup",
    type: "bool",
    defaultValue: true,
    help: "Enables model warmup, which triggers lazy initializations (such as TF " +
      "optimizations) at load time, to reduce first request latency.",
    support: SUPPORTED,
  },
  {
    name: "num_request_iterations_for_warmup",
    type: "int32",
    defaultValue: 0,
    help: "Number of times a request is iterated during warmup replay. This value is used " +
      "only if > 0.",
    support: SUPPORTED,
  },
  {
    name: "version",
    type: "bool",
    defaultValue: false,
    help: "Display version",
    support: SUPPORTED,
  },
  {
    name: "monitoring_config_file",
    type: "string",
    defaultValue: "",
    help: "If non-empty, read an ascii MonitoringConfig protobuf from the supplied file name",
    support: SUPPORTED,
  },
  {
    name: "remove_unused_fields_from_bundle_metagraph",
    type: "bool",
    defaultValue: true,
    help: "Removes unused fields from MetaGraphDef proto message to save memory.",
    support: ignored("the graph is compiled into a plan at load; the MetaGraphDef is not kept"),
  },
  {
    name: "prefer_tflite_model",
    type: "bool",
    defaultValue: false,
    help: "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Prefer TensorFlow Lite model from " +
      "`model.tflite` file in SavedModel directory, instead of the TensorFlow model from " +
      "`saved_model.pb` file. If no TensorFlow Lite model found, fallback to TensorFlow model.",
    support: ignored(NO_TFLITE),
  },
  {
    name: "num_tflite_pools",
    type: "int32",
    defaultValue: CPUS,
    help: "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Number of TFLite interpreters in an " +
      "interpreter pool of TfLiteSession. Typically there is one TfLiteSession for each TF " +
      "Lite model that is loaded. If not set, will be auto set based on number of CPUs.",
    support: ignored(NO_TFLITE),
  },
  {
    name: "num_tflite_interpreters_per_pool",
    type: "int32",
    defaultValue: 1,
    help: "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Number of TFLite interpreters in an " +
      "interpreter pool of TfLiteSession. Typically there is one TfLiteSession for each TF " +
      "Lite model that is loaded. If not set, will be 1.",
    support: ignored(NO_TFLITE),
  },
  {
    name: "enable_signature_method_name_check",
    type: "bool",
    defaultValue: false,
    help: "Enable method_name check for SignatureDef. Disable this if serving native TF2 " +
      "regression/classification models.",
    support: SUPPORTED,
  },
  {
    name: "xla_cpu_compilation_enabled",
    type: "bool",
    defaultValue: false,
    help: "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Enable XLA:CPU JIT (default is disabled). " +
      "With XLA:CPU JIT disabled, models utilizing this feature will return bad Status on " +
      "first compilation request.",
    support: ignored("there is no XLA compiler"),
  },
  {
    name: "xla_gpu_compilation_enabled",
    type: "bool",
    defaultValue: false,
    help: "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Enable both XLA:CPU JIT and XLA:GPU JIT " +
      "(default is disabled).",
    support: ignored("there is no XLA compiler"),
  },
  {
    name: "enable_profiler",
    type: "bool",
    defaultValue: true,
    help: "Enable profiler service.",
    support: ignored("there is no profiler service"),
  },
  {
    name: "thread_pool_factory_config_file",
    type: "string",
    defaultValue: "",
    help: "If non-empty, read an ascii ThreadPoolConfig protobuf from the supplied file name.",
    support: ignored(NO_SESSION_THREADS),
  },
  {
    name: "mixed_precision",
    type: "string",
    defaultValue: "",
    help: "specify mixed_precision mode",
    support: ignored("kernels compute in the model's own dtypes"),
  },
  {
    name: "skip_initialize_tpu",
    type: "bool",
    defaultValue: false,
    help: "Whether to skip auto initializing TPU.",
    support: ignored("this server does not use a TPU"),
  },
  {
    name: "enable_grpc_healthcheck_service",
    type: "bool",
    defaultValue: false,
    help: "Enable the standard gRPC healthcheck service.",
    support: SUPPORTED,
  },
  {
    name: "enable_serialization_as_tensor_content",
    type: "bool",
    defaultValue: false,
    help: "Enable serialization of predict response as tensor content.",
    support: SUPPORTED,
  },
  {
    name: "allowed_model_roots",
    type: "string",
    defaultValue: "",
    help: "Comma-separated directories models may be read from (this server's own flag). " +
      "`deno task serve` grants read access to these only (default: the model base paths " +
      "named at start); a base path or a symlink leading outside them is refused.",
    support: SUPPORTED,
    extension: true,
  },
  // Not upstream's: the bounds on what decoding a request may allocate (src/tensor/limits.ts).
  {
    name: "max_request_decoded_bytes",
    type: "int64",
    defaultValue: 1 << 30,
    help: "The most bytes all tensors of one request (Predict inputs, Classify/Regress " +
      "examples, warmup records) may decode to; over it is RESOURCE_EXHAUSTED.",
    support: SUPPORTED,
    extension: true,
  },
  {
    name: "max_tensor_expansion",
    type: "int32",
    defaultValue: 16,
    help: "A tensor may decode to at most this many bytes per encoded byte (or to " +
      "--tensor_expansion_floor_bytes): bounds TensorProtos whose shape asks for more values " +
      "than they hold.",
    support: SUPPORTED,
    extension: true,
  },
  {
    name: "tensor_expansion_floor_bytes",
    type: "int64",
    defaultValue: 16 << 20,
    help: "The bytes any one tensor may decode to whatever its encoded size.",
    support: SUPPORTED,
    extension: true,
  },
  ...CONNECTION_AND_SOURCE_LIMIT_FLAGS,
];

const BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((f) => [f.name, f]));

/**
 * The usage text, in upstream's `Flags::Usage` layout: one line per flag with its default, type
 * and help.
 *
 * @param command the program name shown after "usage:"
 */
export function usage(command = "tensorflow_model_server"): string {
  let text = `usage: ${command}\nFlags:\n`;
  for (const f of FLAGS) {
    const flag = `--${f.name}=${displayDefault(f)}`;
    text += `\t${flag.padEnd(33)}\t${f.type}\t${f.help}\n`;
  }
  return text;
}

function displayDefault(f: FlagSpec): string {
  switch (f.type) {
    case "string":
      return `"${f.defaultValue}"`;
    case "float":
      return (f.defaultValue as number).toFixed(6); // printf("%f")
    default:
      return String(f.defaultValue);
  }
}

/** The options a bare command line gives (upstream's `Server::Options` defaults), unvalidated. */
export function defaultServerOptions(): ServerOptions {
  return toOptions(new Map(), false, false);
}

/**
 * Parses tensorflow_model_server's command line (without the program name) into validated
 * options. With `--help` or `--version` nothing is validated (upstream exits before it would be).
 *
 * @param argv the arguments, e.g. `Deno.args`
 * @returns the options, with `ignored` flags and `warnings` for `main.ts` to log
 * @throws {UsageError} for an unknown flag, a bad value, or options upstream's server.cc rejects
 */
export function parseFlags(argv: readonly string[]): ServerOptions {
  const values = new Map<string, FlagValue>();
  const raw = new Map<string, string>();
  let help = false;
  for (const arg of argv) {
    // `deno task serve -- --port=1` passes the `--` on; upstream would stop parsing there.
    if (arg === "--") continue;
    // Upstream's Flags::Parse fails when the first unparsed argument is exactly "--help".
    if (arg === "--help") {
      help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      const hint = arg.startsWith("-") && BY_NAME.has(arg.replace(/^-+/, "").split("=")[0])
        ? ` (flags take two dashes: -${arg})`
        : "; flags are written --name=value";
      throw new UsageError(`Unknown argument "${arg}"${hint}`, undefined, arg);
    }
    const body = arg.slice(2);
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const text = eq < 0 ? undefined : body.slice(eq + 1);
    const spec = BY_NAME.get(name);
    if (spec === undefined) {
      throw new UsageError(`Unknown flag "${arg}"${suggest(name)}`, name, text);
    }
    values.set(name, parseValue(spec, text));
    raw.set(name, text ?? "true");
  }
  const version = values.get("version") === true;
  const opts = toOptions(values, help, version);
  opts.given = new Set(values.keys());
  for (const [name, text] of raw) {
    const spec = BY_NAME.get(name)!;
    if (spec.support.kind === "ignored") {
      opts.ignored.push({ flag: name, value: text, reason: spec.support.reason });
    }
  }
  if (!help && !version) validate(opts, values);
  return opts;
}

type FlagValue = number | boolean | string;

const INT_RANGE = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
} as const;

const PORT_FLAGS = new Set(["port", "rest_api_port"]);

/** Parses one flag's value with `Flags::Parse`'s rules for its type. */
function parseValue(spec: FlagSpec, text: string | undefined): FlagValue {
  const flag = `--${spec.name}`;
  if (spec.type === "bool") {
    if (text === undefined) return true;
    const lower = text.toLowerCase();
    if (lower === "true" || text === "1") return true;
    if (lower === "false" || text === "0") return false;
    throw new UsageError(
      `Cannot parse flag ${flag}: "${text}" is not a bool (use ${flag}, ${flag}=true or ` +
        `${flag}=false)`,
      spec.name,
      text,
    );
  }
  if (text === undefined) {
    throw new UsageError(
      `Cannot parse flag ${flag}: it needs a value, written ${flag}=<${spec.type}>`,
      spec.name,
    );
  }
  switch (spec.type) {
    case "string":
      return text;
    case "float": {
      const v = parseFloatLiteral(text);
      if (v === undefined) {
        throw new UsageError(
          `Cannot parse flag ${flag}: "${text}" is not a float`,
          spec.name,
          text,
        );
      }
      return v;
    }
    case "int32":
    case "int64": {
      // absl::SimpleAtoi: ASCII whitespace around, an optional sign, decimal digits, in range.
      const t = trimAsciiSpace(text);
      if (!/^[+-]?[0-9]+$/.test(t)) {
        throw new UsageError(
          `Cannot parse flag ${flag}: "${text}" is not an ${spec.type}`,
          spec.name,
          text,
        );
      }
      const big = BigInt(t);
      const [lo, hi] = PORT_FLAGS.has(spec.name) ? [0n, 65535n] : INT_RANGE[spec.type];
      if (big < lo || big > hi) {
        throw new UsageError(
          `Cannot parse flag ${flag}: "${text}" is out of range [${lo}, ${hi}]`,
          spec.name,
          text,
        );
      }
      const v = Number(big);
      if (!Number.isSafeInteger(v)) {
        throw new UsageError(
          `Cannot parse flag ${flag}: "${text}" is too large for this server ` +
            `(at most ${Number.MAX_SAFE_INTEGER})`,
          spec.name,
          text,
        );
      }
      return v;
    }
  }
}

function trimAsciiSpace(s: string): string {
  return s.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, "");
}

/** absl::SimpleAtof: a decimal float (optional exponent) or inf/infinity/nan, as a float32. */
function parseFloatLiteral(text: string): number | undefined {
  const t = trimAsciiSpace(text);
  const m = /^([+-]?)(inf|infinity|nan)$/i.exec(t);
  if (m) return m[2].toLowerCase() === "nan" ? NaN : m[1] === "-" ? -Infinity : Infinity;
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(t)) return undefined;
  return Math.fround(Number(t));
}

/** " (did you mean --x?)" for the closest flag name, when one is close. */
function suggest(name: string): string {
  const normalized = name.replaceAll("-", "_").toLowerCase();
  let best = "";
  let bestDistance = Infinity;
  for (const f of FLAGS) {
    const d = editDistance(normalized, f.name);
    if (d < bestDistance) {
      best = f.name;
      bestDistance = d;
    }
  }
  // "--noenable_batching" is a common habit from gflags; Flags::Parse has no negated form.
  if (normalized.startsWith("no") && BY_NAME.get(normalized.slice(2))?.type === "bool") {
    return ` (there is no --no form; write --${normalized.slice(2)}=false)`;
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 4))
    ? ` (did you mean --${best}?)`
    : "";
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j] + 1,
        cur[j - 1] + 1,
        prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length];
}

/** Builds the options from the parsed values, falling back to each flag's default. */
function toOptions(values: ReadonlyMap<string, FlagValue>, help: boolean, version: boolean) {
  const get = (name: string): FlagValue => {
    const v = values.get(name);
    return v !== undefined ? v : BY_NAME.get(name)!.defaultValue;
  };
  const num = (name: string) => get(name) as number;
  const int = num;
  const bool = (name: string) => get(name) as boolean;
  const str = (name: string) => get(name) as string;
  const opts: ServerOptions = {
    port: int("port"),
    grpcSocketPath: str("grpc_socket_path"),
    restApiPort: int("rest_api_port"),
    restApiNumThreads: int("rest_api_num_threads"),
    restApiTimeoutInMs: int("rest_api_timeout_in_ms"),
    restApiEnableCorsSupport: bool("rest_api_enable_cors_support"),
    enableBatching: bool("enable_batching"),
    allowVersionLabelsForUnavailableModels: bool("allow_version_labels_for_unavailable_models"),
    batchingParametersFile: str("batching_parameters_file"),
    enablePerModelBatchingParameters: bool("enable_per_model_batching_parameters"),
    modelConfigFile: str("model_config_file"),
    modelConfigFilePollWaitSeconds: int("model_config_file_poll_wait_seconds"),
    modelName: str("model_name"),
    modelBasePath: str("model_base_path"),
    numLoadThreads: int("num_load_threads"),
    numUnloadThreads: int("num_unload_threads"),
    maxNumLoadRetries: int("max_num_load_retries"),
    loadRetryIntervalMicros: int("load_retry_interval_micros"),
    fileSystemPollWaitSeconds: int("file_system_poll_wait_seconds"),
    flushFilesystemCaches: bool("flush_filesystem_caches"),
    tensorflowSessionParallelism: int("tensorflow_session_parallelism"),
    tensorflowSessionConfigFile: str("tensorflow_session_config_file"),
    tensorflowIntraOpParallelism: int("tensorflow_intra_op_parallelism"),
    tensorflowInterOpParallelism: int("tensorflow_inter_op_parallelism"),
    useAltsCredentials: bool("use_alts_credentials"),
    sslConfigFile: str("ssl_config_file"),
    platformConfigFile: str("platform_config_file"),
    perProcessGpuMemoryFraction: num("per_process_gpu_memory_fraction"),
    savedModelTags: splitNonEmpty(str("saved_model_tags"), ","),
    grpcChannelArguments: [],
    grpcMaxThreads: int("grpc_max_threads"),
    enableModelWarmup: bool("enable_model_warmup"),
    numRequestIterationsForWarmup: int("num_request_iterations_for_warmup"),
    monitoringConfigFile: str("monitoring_config_file"),
    removeUnusedFieldsFromBundleMetagraph: bool("remove_unused_fields_from_bundle_metagraph"),
    preferTfliteModel: bool("prefer_tflite_model"),
    numTflitePools: int("num_tflite_pools"),
    numTfliteInterpretersPerPool: int("num_tflite_interpreters_per_pool"),
    enableSignatureMethodNameCheck: bool("enable_signature_method_name_check"),
    xlaCpuCompilationEnabled: bool("xla_cpu_compilation_enabled"),
    xlaGpuCompilationEnabled: bool("xla_gpu_compilation_enabled"),
    enableProfiler: bool("enable_profiler"),
    threadPoolFactoryConfigFile: str("thread_pool_factory_config_file"),
    mixedPrecision: str("mixed_precision"),
    skipInitializeTpu: bool("skip_initialize_tpu"),
    enableGrpcHealthcheckService: bool("enable_grpc_healthcheck_service"),
    enableSerializationAsTensorContent: bool("enable_serialization_as_tensor_content"),
    allowedModelRoots: str("allowed_model_roots").split(",").map((r) => r.trim())
      .filter((r) => r !== ""),
    maxRequestDecodedBytes: int("max_request_decoded_bytes"),
    maxTensorExpansion: int("max_tensor_expansion"),
    tensorExpansionFloorBytes: int("tensor_expansion_floor_bytes"),
    restApiMaxConnections: int("rest_api_max_connections"),
    restApiHeaderTimeoutMs: int("rest_api_header_timeout_ms"),
    restApiBodyTimeoutMs: int("rest_api_body_timeout_ms"),
    restApiIdleTimeoutMs: int("rest_api_idle_timeout_ms"),
    restApiMaxBodyBytes: int("rest_api_max_body_bytes"),
    restApiMaxBufferedBodyBytes: int("rest_api_max_buffered_body_bytes"),
    versionDirReadyTimeoutSeconds: int("version_dir_ready_timeout_seconds"),
    help,
    version,
    ignored: [],
    warnings: [],
    given: new Set(),
  };
  return opts;
}

/** tensorflow::str_util::Split: an empty string splits into nothing, not one empty piece. */
function splitNonEmpty(text: string, sep: string): string[] {
  return text === "" ? [] : text.split(sep);
}

/**
 * Parses `--grpc_channel_arguments` ("k=v,k=v") as upstream's parseGrpcChannelArgs does, except
 * that an entry without "=" is an error (upstream reads past the end of its split).
 */
function parseGrpcChannelArguments(text: string): GrpcChannelArgument[] {
  const out: GrpcChannelArgument[] = [];
  for (const entry of splitNonEmpty(text, ",")) {
    const eq = entry.indexOf("=");
    if (eq < 0) {
      throw new UsageError(
        `Cannot parse flag --grpc_channel_arguments: "${entry}" is not key=value`,
        "grpc_channel_arguments",
        text,
      );
    }
    const key = entry.slice(0, eq);
    const value = entry.slice(eq + 1);
    // Upstream passes a value that absl::SimpleAtoi reads as an int32 as an int argument.
    const t = trimAsciiSpace(value);
    const asInt = /^[+-]?[0-9]+$/.test(t) ? Number(t) : NaN;
    out.push({
      key,
      value: Number.isInteger(asInt) && asInt >= -(2 ** 31) && asInt < 2 ** 31 ? asInt : value,
    });
  }
  return out;
}

/** The checks upstream's Server::BuildAndStart makes before it starts anything. */
function validate(opts: ServerOptions, values: ReadonlyMap<string, FlagValue>): void {
  opts.grpcChannelArguments = parseGrpcChannelArguments(str(values, "grpc_channel_arguments"));
  if (opts.port === 0 && opts.grpcSocketPath === "") {
    throw new UsageError(
      "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set.",
      "port",
      "0",
    );
  }
  if (opts.useAltsCredentials && opts.sslConfigFile !== "") {
    throw new UsageError(
      "Either use_alts_credentials must be false or ssl_config_file must be empty.",
      "use_alts_credentials",
    );
  }
  if (opts.modelBasePath === "" && opts.modelConfigFile === "") {
    throw new UsageError(
      "Both server_options.model_base_path and server_options.model_config_file are empty!",
      "model_base_path",
    );
  }
  // Upstream only looks at batching and session threads when there is no platform config.
  if (opts.platformConfigFile === "") {
    if (!opts.enableBatching && opts.batchingParametersFile !== "") {
      throw new UsageError(
        "server_options.batching_parameters_file is set without setting " +
          "server_options.enable_batching to true.",
        "batching_parameters_file",
        opts.batchingParametersFile,
      );
    }
    if (
      opts.tensorflowIntraOpParallelism > 0 && opts.tensorflowInterOpParallelism > 0 &&
      opts.tensorflowSessionParallelism > 0
    ) {
      throw new UsageError(
        "Either configure server_options.tensorflow_session_parallelism or " +
          "(server_options.tensorflow_intra_op_parallelism, " +
          "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all.",
        "tensorflow_session_parallelism",
      );
    }
  }
  for (const name of values.keys()) {
    const spec = BY_NAME.get(name)!;
    if (spec.support.kind === "refused" && values.get(name) !== spec.defaultValue) {
      throw new UsageError(
        `Cannot use --${name}=${values.get(name)}: ${spec.support.reason}`,
        name,
        String(values.get(name)),
      );
    }
  }
  // The decode limits (this server's flags) must leave room for a tensor.
  for (
    const [name, min] of [
      ["max_request_decoded_bytes", 1],
      ["max_tensor_expansion", 1],
      ["tensor_expansion_floor_bytes", 0],
    ] as const
  ) {
    const v = values.get(name);
    if (typeof v === "number" && v < min) {
      throw new UsageError(
        `Cannot use --${name}=${v}: it must be at least ${min}`,
        name,
        String(v),
      );
    }
  }
  if (opts.modelConfigFile !== "" && (values.has("model_base_path") || values.has("model_name"))) {
    opts.warnings.push(
      "--model_name and --model_base_path are ignored because --model_config_file is set",
    );
  }
  if (opts.restApiPort !== 0 && opts.restApiPort === opts.port) {
    // Upstream logs this and starts without REST rather than failing.
    opts.warnings.push(
      "server_options.http_port cannot be same as grpc_port. Please use a different port for " +
        "HTTP/REST API. Skipped exporting HTTP/REST API.",
    );
    opts.restApiPort = 0;
  }
}

function str(values: ReadonlyMap<string, FlagValue>, name: string): string {
  return (values.get(name) ?? BY_NAME.get(name)!.defaultValue) as string;
}
