/**
 * Start-up (issue 10): what the server imports only when a model or a call needs it, checked on
 * the static module graph of `server_main.ts` (`deno info --json`, following static imports
 * only; a module reached through a dynamic `import()` loads when that code runs). The launcher's
 * and the transports' checks are in startup_imports_test.ts.
 */
import assert from "node:assert/strict";
import { has, staticClosure } from "./import_graph.ts";

Deno.test("the server imports kernel families only for the ops a model uses", async () => {
  // kernels/lazy.ts imports them at load; a family on the static graph would load for every
  // model (with its WebAssembly builds, and re2js for the regex ops).
  const closure = await staticClosure("server_main.ts");
  for (const eager of ["src/kernels/mod.ts", "src/kernels/conv.ts", "src/kernels/regex.ts"]) {
    assert.ok(!has(closure, eager), eager);
  }
  assert.ok(!has(closure, "re2js"));
  assert.ok(has(closure, "src/kernels/lazy.ts"));
});

Deno.test("Classify, Regress, MultiInference and warmup load on first use", async () => {
  // The first Predict needs none of them, nor the tf.Example input reader they share.
  const closure = await staticClosure("server_main.ts");
  for (const lazy of ["classify.ts", "regress.ts", "multi_inference.ts", "warmup.ts", "input.ts"]) {
    assert.ok(!has(closure, `src/servables/${lazy}`), lazy);
  }
  assert.ok(has(closure, "src/servables/predict.ts"));
});

Deno.test("the gRPC server imports only Predict's messages up front", async () => {
  // The other methods' schemas (and the service descriptors, which import every TF Serving
  // API file) are imported on a method's first call.
  const closure = await staticClosure("src/api/grpc/server.ts");
  for (
    const lazy of [
      "grpc/health/v1/health_pb.ts",
      "apis/prediction_service_pb.ts",
      "apis/model_service_pb.ts",
      "apis/classification_pb.ts",
      "apis/regression_pb.ts",
      "apis/inference_pb.ts",
      "apis/input_pb.ts",
      "example/example_pb.ts",
      "example/feature_pb.ts",
      "apis/get_model_metadata_pb.ts",
      "apis/get_model_status_pb.ts",
      "apis/model_management_pb.ts",
      "apis/status_pb.ts",
      "protobuf/error_codes_pb.ts",
      "config/model_server_config_pb.ts",
    ]
  ) {
    assert.ok(!has(closure, `src/proto/gen/${lazy}`), lazy);
  }
  assert.ok(has(closure, "src/proto/gen/tensorflow_serving/apis/predict_pb.ts"));
});

Deno.test("the server loads no generated file the flags' model and Predict do not need", async () => {
  // ModelServerConfig (and the logging configs it brings) loads for --model_config_file or a
  // reload, MonitoringConfig for --monitoring_config_file, the other methods' messages on
  // their first call (see the gRPC server's test above).
  const closure = await staticClosure("server_main.ts");
  for (
    const lazy of [
      "config/model_server_config_pb.ts",
      "config/logging_config_pb.ts",
      "config/log_collector_config_pb.ts",
      "config/file_system_storage_path_source_pb.ts",
      "config/monitoring_config_pb.ts",
      "apis/model_management_pb.ts",
      "apis/prediction_service_pb.ts",
      "apis/model_service_pb.ts",
      "apis/classification_pb.ts",
      "apis/regression_pb.ts",
      "apis/inference_pb.ts",
      "apis/input_pb.ts",
      "example/example_pb.ts",
      "grpc/health/v1/health_pb.ts",
    ]
  ) {
    assert.ok(!has(closure, `/${lazy}`), lazy);
  }
  assert.ok(!has(closure, "src/config/model_config.ts"));
  assert.ok(!has(closure, "src/config/monitoring_config.ts"));
  assert.ok(has(closure, "src/proto/gen/tensorflow/core/protobuf/saved_model_pb.ts"));
});
