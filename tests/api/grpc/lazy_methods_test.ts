/**
 * The gRPC server's method table is built without the service descriptors (start-up, issue
 * 10): its paths must be exactly the descriptors' methods.
 */
import assert from "node:assert/strict";
import { HEALTH_PATHS, LAZY_METHOD_PATHS, PREDICT_PATH } from "../../../src/api/grpc/server.ts";
import { grpcServiceDefinition } from "../../../src/api/grpc/service_definition.ts";
import { PredictionService } from "../../../src/proto/gen/tensorflow_serving/apis/prediction_service_pb.ts";
import { ModelService } from "../../../src/proto/gen/tensorflow_serving/apis/model_service_pb.ts";
import { Health } from "../../../src/proto/gen/grpc/health/v1/health_pb.ts";

const paths = (s: Parameters<typeof grpcServiceDefinition>[0]) =>
  Object.values(grpcServiceDefinition(s)).map((m) => m.path).sort();

Deno.test("Predict and the methods built on first use are the services' methods", () => {
  assert.deepEqual(
    [PREDICT_PATH, ...LAZY_METHOD_PATHS].sort(),
    [...paths(PredictionService), ...paths(ModelService)].sort(),
  );
});

Deno.test("the health paths are grpc.health.v1.Health's methods", () => {
  assert.deepEqual([...HEALTH_PATHS].sort(), paths(Health));
});
