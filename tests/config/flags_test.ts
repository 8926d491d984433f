import assert from "node:assert/strict";
import {
  defaultServerOptions,
  FLAGS,
  parseFlags,
  type ServerOptions,
  usage,
  UsageError,
  VERSION,
  versionText,
} from "../../src/config/flags.ts";

const BASE = "--model_base_path=/models/m";

/** Runs parseFlags and returns the UsageError it throws. */
function usageError(argv: string[]): UsageError {
  try {
    parseFlags(argv);
  } catch (e) {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${e}`);
    return e;
  }
  assert.fail(`parseFlags(${JSON.stringify(argv)}) did not throw`);
}

Deno.test("parseFlags() gives upstream's defaults", () => {
  const o = parseFlags([BASE]);
  const expected: Partial<ServerOptions> = {
    port: 8500,
    grpcSocketPath: "",
    restApiPort: 0,
    restApiTimeoutInMs: 30000,
    restApiEnableCorsSupport: false,
    enableBatching: false,
    batchingParametersFile: "",
    modelConfigFile: "",
    modelConfigFilePollWaitSeconds: 0,
    modelName: "default",
    modelBasePath: "/models/m",
    numLoadThreads: 0,
    numUnloadThreads: 0,
    maxNumLoadRetries: 5,
    loadRetryIntervalMicros: 60_000_000,
    fileSystemPollWaitSeconds: 1,
    flushFilesystemCaches: true,
    tensorflowSessionParallelism: 0,
    tensorflowIntraOpParallelism: 0,
    tensorflowInterOpParallelism: 0,
    perProcessGpuMemoryFraction: 0,
    enableModelWarmup: true,
    numRequestIterationsForWarmup: 0,
    monitoringConfigFile: "",
    allowVersionLabelsForUnavailableModels: false,
    enableGrpcHealthcheckService: false,
    enableSerializationAsTensorContent: false,
    enableSignatureMethodNameCheck: false,
    removeUnusedFieldsFromBundleMetagraph: true,
    enableProfiler: true,
    numTfliteInterpretersPerPool: 1,
    help: false,
    version: false,
  };
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(o[k as keyof ServerOptions], v, k);
  }
  assert.deepEqual(o.savedModelTags, ["serve"]);
  assert.deepEqual(o.grpcChannelArguments, []);
  assert.deepEqual(o.ignored, []);
  assert.deepEqual(o.warnings, []);
  assert.deepEqual([...o.given], ["model_base_path"]);
  assert.ok(o.grpcMaxThreads > 0 && o.restApiNumThreads > 0);
});

Deno.test("defaultServerOptions() matches a parse of no flags", () => {
  const d = defaultServerOptions();
  assert.equal(d.port, 8500);
  assert.equal(d.modelName, "default");
  assert.deepEqual(d.savedModelTags, ["serve"]);
});

Deno.test("FLAGS has every flag of upstream main.cc, once", () => {
  const upstream = [
    "port",
    "grpc_socket_path",
    "rest_api_port",
    "rest_api_num_threads",
    "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support",
    "enable_batching",
    "allow_version_labels_for_unavailable_models",
    "batching_parameters_file",
    "enable_per_model_batching_parameters",
    "model_config_file",
    "model_config_file_poll_wait_seconds",
    "model_name",
    "model_base_path",
    "num_load_threads",
    "num_unload_threads",
    "max_num_load_retries",
    "load_retry_interval_micros",
    "file_system_poll_wait_seconds",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "tensorflow_session_config_file",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "use_alts_credentials",
    "ssl_config_file",
    "platform_config_file",
    "per_process_gpu_memory_fraction",
    "saved_model_tags",
    "grpc_channel_arguments",
    "grpc_max_threads",
    "enable_model_warmup",
    "num_request_iterations_for_warmup",
    "version",
    "monitoring_config_file",
    "remove_unused_fields_from_bundle_metagraph",
    "prefer_tflite_model",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
    "enable_serialization_as_tensor_content",
  ];
  assert.deepEqual(FLAGS.filter((f) => !f.extension).map((f) => f.name), upstream);
});

Deno.test("parseFlags() reads the connection and version-directory limits", () => {
  const d = defaultServerOptions();
  assert.equal(d.restApiMaxConnections, 1000);
  assert.equal(d.restApiHeaderTimeoutMs, 10_000);
  assert.equal(d.restApiBodyTimeoutMs, 60_000);
  assert.equal(d.restApiIdleTimeoutMs, 60_000);
  assert.equal(d.restApiMaxBodyBytes, 64 * 1024 * 1024);
  assert.equal(d.restApiMaxBufferedBodyBytes, 256 * 1024 * 1024);
  assert.equal(d.versionDirReadyTimeoutSeconds, 60);
  const o = parseFlags([
    "--model_base_path=/models/m",
    "--rest_api_header_timeout_ms=500",
    "--version_dir_ready_timeout_seconds=0",
  ]);
  assert.equal(o.restApiHeaderTimeoutMs, 500);
  assert.equal(o.versionDirReadyTimeoutSeconds, 0);
  assert.match(usage(), /--rest_api_header_timeout_ms=10000/);
});

Deno.test("parseFlags() reads every type", () => {
  const o = parseFlags([
    "--port=9000",
    "--rest_api_port=8501",
    "--model_name=mnist",
    "--model_base_path=/models/mnist",
    "--load_retry_interval_micros=-1",
    "--rest_api_enable_cors_support",
    "--enable_model_warmup=false",
    "--saved_model_tags=serve,gpu",
    "--file_system_poll_wait_seconds=0",
  ]);
  assert.equal(o.port, 9000);
  assert.equal(o.restApiPort, 8501);
  assert.equal(o.modelName, "mnist");
  assert.equal(o.modelBasePath, "/models/mnist");
  assert.equal(o.loadRetryIntervalMicros, -1);
  assert.equal(o.restApiEnableCorsSupport, true);
  assert.equal(o.enableModelWarmup, false);
  assert.deepEqual(o.savedModelTags, ["serve", "gpu"]);
  assert.equal(o.fileSystemPollWaitSeconds, 0);
});

Deno.test("parseFlags() skips a literal -- and keeps the last of a repeated flag", () => {
  const o = parseFlags(["--", BASE, "--port=1", "--", "--port=2"]);
  assert.equal(o.port, 2);
});

Deno.test("parseFlags() reads bools as Flags::Parse does", () => {
  const cors = (arg: string) => parseFlags([BASE, arg]).restApiEnableCorsSupport;
  assert.equal(cors("--rest_api_enable_cors_support"), true);
  assert.equal(cors("--rest_api_enable_cors_support=true"), true);
  assert.equal(cors("--rest_api_enable_cors_support=TRUE"), true);
  assert.equal(cors("--rest_api_enable_cors_support=1"), true);
  assert.equal(cors("--rest_api_enable_cors_support=false"), false);
  assert.equal(cors("--rest_api_enable_cors_support=False"), false);
  assert.equal(cors("--rest_api_enable_cors_support=0"), false);
  for (const bad of ["yes", "", "2", "on"]) {
    const e = usageError([BASE, `--rest_api_enable_cors_support=${bad}`]);
    assert.equal(e.flag, "rest_api_enable_cors_support");
    assert.equal(e.value, bad);
    assert.match(e.message, /--rest_api_enable_cors_support/);
    assert.match(e.message, new RegExp(`"${bad}" is not a bool`));
  }
});

Deno.test("parseFlags() has no --noname form", () => {
  const e = usageError([BASE, "--noenable_model_warmup"]);
  assert.match(e.message, /--enable_model_warmup=false/);
});

Deno.test("parseFlags() reads ints as absl::SimpleAtoi does", () => {
  const port = (v: string) => parseFlags([BASE, `--port=${v}`]).port;
  assert.equal(port("9000"), 9000);
  assert.equal(port("+9000"), 9000);
  assert.equal(port(" 9000 "), 9000);
  assert.equal(port("09000"), 9000);
  for (const bad of ["", "abc", "9000abc", "0x10", "90.5", "1e3", "- 1"]) {
    const e = usageError([BASE, `--port=${bad}`]);
    assert.equal(e.flag, "port");
    assert.equal(e.value, bad);
    assert.match(e.message, /^Cannot parse flag --port: ".*" is not an int32$/);
  }
});

Deno.test("parseFlags() rejects out-of-range values", () => {
  let e = usageError([BASE, "--port=65536"]);
  assert.equal(e.message, 'Cannot parse flag --port: "65536" is out of range [0, 65535]');
  e = usageError([BASE, "--rest_api_port=-1"]);
  assert.equal(e.flag, "rest_api_port");
  e = usageError([BASE, "--rest_api_timeout_in_ms=2147483648"]);
  assert.match(e.message, /out of range \[-2147483648, 2147483647\]/);
  assert.equal(
    parseFlags([BASE, "--rest_api_timeout_in_ms=-2147483648"]).restApiTimeoutInMs,
    -(2 ** 31),
  );
  e = usageError([BASE, "--load_retry_interval_micros=9223372036854775808"]);
  assert.match(e.message, /out of range/);
  e = usageError([BASE, "--load_retry_interval_micros=9223372036854775807"]);
  assert.match(e.message, /too large for this server/);
});

Deno.test("parseFlags() reads floats", () => {
  const f = (v: string) => parseFlags([BASE, `--per_process_gpu_memory_fraction=${v}`]);
  assert.equal(f("0.5").perProcessGpuMemoryFraction, 0.5);
  assert.equal(f("1e-1").perProcessGpuMemoryFraction, Math.fround(0.1));
  assert.equal(f("inf").perProcessGpuMemoryFraction, Infinity);
  assert.ok(Number.isNaN(f("nan").perProcessGpuMemoryFraction));
  const e = usageError([BASE, "--per_process_gpu_memory_fraction=half"]);
  assert.equal(
    e.message,
    'Cannot parse flag --per_process_gpu_memory_fraction: "half" is not a float',
  );
});

Deno.test("parseFlags() takes strings as written, including empty", () => {
  const o = parseFlags([BASE, "--model_name=", "--grpc_socket_path=a=b c"]);
  assert.equal(o.modelName, "");
  assert.equal(o.grpcSocketPath, "a=b c");
});

Deno.test("parseFlags() wants --name=value, not --name value", () => {
  let e = usageError([BASE, "--port", "9000"]);
  assert.equal(e.message, "Cannot parse flag --port: it needs a value, written --port=<int32>");
  e = usageError(["--model_base_path", "/m"]);
  assert.equal(e.flag, "model_base_path");
});

Deno.test("parseFlags() rejects unknown flags and stray arguments", () => {
  let e = usageError([BASE, "--prot=9000"]);
  assert.equal(e.message, 'Unknown flag "--prot=9000" (did you mean --port?)');
  assert.equal(e.flag, "prot");
  e = usageError([BASE, "--model-name=x"]);
  assert.match(e.message, /did you mean --model_name\?/);
  e = usageError([BASE, "--completely_unrelated_thing=1"]);
  assert.equal(e.message, 'Unknown flag "--completely_unrelated_thing=1"');
  e = usageError([BASE, "serve"]);
  assert.equal(e.message, 'Unknown argument "serve"; flags are written --name=value');
  e = usageError([BASE, "-port=9000"]);
  assert.equal(e.message, 'Unknown argument "-port=9000" (flags take two dashes: --port=9000)');
  e = usageError([BASE, "-h"]);
  assert.equal(e.value, "-h");
});

Deno.test("parseFlags() reports --help and --version without validating", () => {
  const h = parseFlags(["--help"]);
  assert.equal(h.help, true);
  assert.equal(h.version, false);
  const v = parseFlags(["--version"]);
  assert.equal(v.version, true);
  assert.equal(parseFlags(["--port=0", "--version=true"]).version, true);
  // A bad value is still an error.
  usageError(["--help", "--port=x"]);
});

Deno.test("parseFlags() checks what server.cc checks, with its messages", () => {
  let e = usageError([]);
  assert.equal(
    e.message,
    "Both server_options.model_base_path and server_options.model_config_file are empty!",
  );
  e = usageError([BASE, "--port=0"]);
  assert.equal(
    e.message,
    "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set.",
  );
  assert.equal(parseFlags([BASE, "--port=0", "--grpc_socket_path=/tmp/s"]).port, 0);
  e = usageError([BASE, "--batching_parameters_file=/b.txt"]);
  assert.equal(
    e.message,
    "server_options.batching_parameters_file is set without setting " +
      "server_options.enable_batching to true.",
  );
  // With a platform config file upstream never looks at the batching flags.
  parseFlags([BASE, "--batching_parameters_file=/b.txt", "--platform_config_file=/p"]);
  e = usageError([
    BASE,
    "--tensorflow_session_parallelism=2",
    "--tensorflow_intra_op_parallelism=2",
    "--tensorflow_inter_op_parallelism=2",
  ]);
  assert.match(e.message, /You cannot configure all\.$/);
  e = usageError([BASE, "--use_alts_credentials", "--ssl_config_file=/ssl"]);
  assert.equal(
    e.message,
    "Either use_alts_credentials must be false or ssl_config_file must be empty.",
  );
  assert.equal(parseFlags(["--model_config_file=/c.txt"]).modelConfigFile, "/c.txt");
});

Deno.test("parseFlags() refuses transport security it cannot provide", () => {
  let e = usageError([BASE, "--ssl_config_file=/ssl.txt"]);
  assert.match(e.message, /^Cannot use --ssl_config_file=\/ssl\.txt: TLS is not supported/);
  e = usageError([BASE, "--use_alts_credentials"]);
  assert.equal(e.flag, "use_alts_credentials");
  // The defaults, written out, are fine.
  parseFlags([BASE, "--use_alts_credentials=false", "--ssl_config_file="]);
});

Deno.test("parseFlags() lists given flags it does not act on", () => {
  const o = parseFlags([
    BASE,
    "--grpc_max_threads=8",
    "--enable_batching",
    "--batching_parameters_file=/b.txt",
    "--tensorflow_session_parallelism=2",
    "--port=8500",
  ]);
  // Batching and the session thread flags are honoured (src/exec/).
  assert.deepEqual(o.ignored.map((i) => [i.flag, i.value]), [["grpc_max_threads", "8"]]);
  assert.match(o.ignored[0].reason, /event loop/);
  assert.equal(o.grpcMaxThreads, 8);
  assert.equal(o.enableBatching, true);
});

Deno.test("parseFlags() warns where upstream logs and carries on", () => {
  let o = parseFlags([BASE, "--port=8500", "--rest_api_port=8500"]);
  assert.equal(o.restApiPort, 0);
  assert.match(o.warnings[0], /^server_options.http_port cannot be same as grpc_port/);
  o = parseFlags(["--model_config_file=/c.txt", "--model_name=x"]);
  assert.deepEqual(o.warnings, [
    "--model_name and --model_base_path are ignored because --model_config_file is set",
  ]);
});

Deno.test("parseFlags() parses --grpc_channel_arguments", () => {
  const o = parseFlags([
    BASE,
    "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.primary_user_agent=x=y",
  ]);
  assert.deepEqual(o.grpcChannelArguments, [
    { key: "grpc.max_connection_age_ms", value: 2000 },
    { key: "grpc.primary_user_agent", value: "x=y" },
  ]);
  const e = usageError([BASE, "--grpc_channel_arguments=a=1,b"]);
  assert.equal(e.message, 'Cannot parse flag --grpc_channel_arguments: "b" is not key=value');
});

Deno.test("parseFlags() splits an empty --saved_model_tags into no tags", () => {
  assert.deepEqual(parseFlags([BASE, "--saved_model_tags="]).savedModelTags, []);
});

Deno.test("usage() lists every flag in Flags::Usage's layout", () => {
  const text = usage();
  assert.ok(text.startsWith("usage: tensorflow_model_server\nFlags:\n"));
  for (const f of FLAGS) assert.ok(text.includes(`\t--${f.name}=`), f.name);
  assert.ok(text.includes(`\t${"--port=8500".padEnd(33)}\tint32\tTCP port to listen on`));
  assert.ok(text.includes('\t--model_name="default"'));
  assert.ok(text.includes("\t--enable_model_warmup=true"));
  assert.ok(text.includes("\t--per_process_gpu_memory_fraction=0.000000\tfloat\t"));
  assert.ok(text.includes("\t--load_retry_interval_micros=60000000\tint64\t"));
  assert.ok(usage("main.ts").startsWith("usage: main.ts\n"));
});

Deno.test("versionText() prints upstream's two lines and the TF Serving API", () => {
  assert.equal(
    versionText(),
    `TensorFlow ModelServer: ${VERSION.modelServer}\nTensorFlow Library: ${VERSION.tensorflowLibrary}\n` +
      `TensorFlow Serving API: ${VERSION.servingApi}\n`,
  );
});

Deno.test("parseFlags() takes the decode limits and refuses ones that leave no room", () => {
  const o = parseFlags([
    "--model_base_path=/m",
    "--max_request_decoded_bytes=1000",
    "--max_tensor_expansion=4",
    "--tensor_expansion_floor_bytes=0",
  ]);
  assert.equal(o.maxRequestDecodedBytes, 1000);
  assert.equal(o.maxTensorExpansion, 4);
  assert.equal(o.tensorExpansionFloorBytes, 0);
  assert.equal(parseFlags(["--model_base_path=/m"]).maxRequestDecodedBytes, 1 << 30);
  assert.throws(
    () => parseFlags(["--model_base_path=/m", "--max_tensor_expansion=0"]),
    /--max_tensor_expansion=0: it must be at least 1/,
  );
});
