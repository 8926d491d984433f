/**
 * The gRPC transport against a fake ServingApi: routing, status codes and messages, unparsable
 * requests, health, graceful shutdown, deadlines, message size limits.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ServingError } from "../../src/errors.ts";
import { type GrpcServer, startGrpcServer } from "../../src/api/grpc/server.ts";
import { grpcServiceDefinition } from "../../src/api/grpc/service_definition.ts";
import { methodPath } from "../../src/proto/rpc.ts";
import {
  HealthClient,
  isLoopback,
  ModelServiceClient,
  PredictionServiceClient,
} from "../../src/client/grpc_client.ts";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../src/proto/gen/grpc/health/v1/health_pb.ts";
import { PredictionService } from "../../src/proto/gen/tensorflow_serving/apis/prediction_service_pb.ts";
import { ModelService } from "../../src/proto/gen/tensorflow_serving/apis/model_service_pb.ts";
import {
  PredictRequestSchema,
  PredictResponseSchema,
} from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { DataType } from "../../src/proto/gen/tensorflow/core/framework/types_pb.ts";
import { ModelVersionStatus_State } from "../../src/proto/gen/tensorflow_serving/apis/get_model_status_pb.ts";
import { FakeServingApi } from "./fixtures/fake_api.ts";

// Raw grpc-js clients must not go through a proxy set in the environment.
const NO_PROXY = { "grpc.enable_http_proxy": 0 };

// grpc-js keeps channel timers and sockets that outlive a single test body.
const opts = { sanitizeOps: false, sanitizeResources: false };

interface Fixture extends AsyncDisposable {
  api: FakeServingApi;
  server: GrpcServer;
  target: string;
  predict: PredictionServiceClient;
  model: ModelServiceClient;
  health: HealthClient;
}

async function fixture(
  options: { enableHealthCheck?: boolean; healthWatchIntervalMs?: number } = {},
): Promise<Fixture> {
  const api = new FakeServingApi();
  const server = await startGrpcServer(api, {
    host: "127.0.0.1",
    port: 0,
    enableHealthCheck: options.enableHealthCheck ?? true,
    healthWatchIntervalMs: options.healthWatchIntervalMs ?? 20,
  });
  const target = `127.0.0.1:${server.port}`;
  const predict = new PredictionServiceClient(target);
  const model = new ModelServiceClient(target);
  const health = new HealthClient(target);
  return {
    api,
    server,
    target,
    predict,
    model,
    health,
    async [Symbol.asyncDispose]() {
      predict.close();
      model.close();
      health.close();
      await server.shutdown(1000);
    },
  };
}

async function rejectsWith(p: Promise<unknown>, code: Code, message?: string | RegExp) {
  const err = await p.then(
    () => assert.fail("expected the call to fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ServingError, `not a ServingError: ${err}`);
  assert.equal(err.code, code, `code ${Code[err.code]} (${err.message})`);
  if (typeof message === "string") assert.equal(err.message, message);
  else if (message) assert.match(err.message, message);
  return err;
}

const tensor = (values: number[]) => ({
  dtype: DataType.DT_FLOAT,
  tensorShape: { dim: [{ size: BigInt(values.length) }] },
  floatVal: values,
});

Deno.test("grpcServiceDefinition() builds paths from the descriptors", () => {
  const def = grpcServiceDefinition(PredictionService);
  assert.equal(def.predict.path, "/tensorflow.serving.PredictionService/Predict");
  assert.equal(def.getModelMetadata.path, "/tensorflow.serving.PredictionService/GetModelMetadata");
  assert.equal(def.predict.responseStream, false);
  assert.equal(
    methodPath(ModelService.method.handleReloadConfigRequest),
    "/tensorflow.serving.ModelService/HandleReloadConfigRequest",
  );
  const health = grpcServiceDefinition(Health);
  assert.equal(health.watch.path, "/grpc.health.v1.Health/Watch");
  assert.equal(health.watch.responseStream, true);
});

Deno.test("startGrpcServer() routes every method to the API", opts, async () => {
  await using f = await fixture();
  const spec = { name: "m", signatureName: "serving_default" };

  const p = await f.predict.predict({ modelSpec: spec, inputs: { x: tensor([1, 2, 3]) } });
  assert.equal(p.modelSpec?.name, "m");
  assert.deepEqual(p.outputs.x.floatVal, [1, 2, 3]);
  assert.equal(p.outputs.x.tensorShape?.dim[0].size, 3n);

  const c = await f.predict.classify({ modelSpec: spec });
  assert.equal(c.result?.classifications[0].classes[0].label, "m");

  const r = await f.predict.regress({ modelSpec: spec });
  assert.equal(r.result?.regressions[0].value, 1.5);

  const mi = await f.predict.multiInference({
    tasks: [{ modelSpec: { name: "a" }, methodName: "tensorflow/serving/regress" }, {
      modelSpec: { name: "b" },
      methodName: "tensorflow/serving/regress",
    }],
  });
  assert.deepEqual(mi.results.map((x) => x.modelSpec?.name), ["a", "b"]);

  const md = await f.predict.getModelMetadata({
    modelSpec: spec,
    metadataField: ["signature_def"],
  });
  assert.equal(md.modelSpec?.name, "m");

  const st = await f.model.getModelStatus({ modelSpec: spec });
  assert.equal(st.modelVersionStatus[0].state, ModelVersionStatus_State.AVAILABLE);
  assert.equal(st.modelVersionStatus[0].version, 1n);

  const rc = await f.model.handleReloadConfigRequest({ metricNames: ["sleep:1"] });
  assert.equal(rc.status?.errorCode, 0);

  // A full message works as well as an init object.
  const msg = create(PredictRequestSchema, { modelSpec: { name: "full" } });
  assert.equal((await f.predict.predict(msg)).modelSpec?.name, "full");

  assert.deepEqual(f.api.calls, {
    predict: 2,
    classify: 1,
    regress: 1,
    multiInference: 1,
    getModelMetadata: 1,
    getModelStatus: 1,
    handleReloadConfigRequest: 1,
  });
  assert.deepEqual([...f.api.via], ["grpc"]);
});

Deno.test("startGrpcServer() keeps error codes and messages", opts, async () => {
  await using f = await fixture();
  await rejectsWith(
    f.predict.predict({ modelSpec: { name: "code:5:Servable not found for request: Latest(x)" } }),
    Code.NOT_FOUND,
    "Servable not found for request: Latest(x)",
  );
  for (const code of [Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, Code.UNAVAILABLE]) {
    await rejectsWith(
      f.predict.classify({ modelSpec: { name: `code:${code}:c${code}` } }),
      code,
      `c${code}`,
    );
  }
  // Characters that need escaping in the grpc-message header survive.
  const odd = 'Cannot parse "ä%20ß":\nline two, 100% sure';
  await rejectsWith(
    f.predict.regress({ modelSpec: { name: `code:3:${odd}` } }),
    Code.INVALID_ARGUMENT,
    odd,
  );

  // A plain Error is INTERNAL with its message and no stack trace.
  const err = await rejectsWith(
    f.predict.predict({ modelSpec: { name: "throw:boom" } }),
    Code.INTERNAL,
    "boom",
  );
  assert.doesNotMatch(err.message, /\bat\b/);

  // Async rejections too.
  await rejectsWith(
    f.model.handleReloadConfigRequest({ metricNames: ["sleep:5", "code:9:not now"] }),
    Code.FAILED_PRECONDITION,
    "not now",
  );
  await rejectsWith(
    f.model.handleReloadConfigRequest({ metricNames: ["throw:async boom"] }),
    Code.INTERNAL,
    "async boom",
  );
  await rejectsWith(
    f.model.getModelStatus({ modelSpec: { name: "code:16:who are you" } }),
    Code.UNAUTHENTICATED,
    "who are you",
  );
});

/** Sends raw bytes to a method, as a client with a broken serializer would. */
function sendRaw(target: string, path: string, bytes: Uint8Array): Promise<grpc.ServiceError> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), NO_PROXY);
  return new Promise<grpc.ServiceError>((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      () => Buffer.from(bytes),
      (b: Buffer) => b,
      null,
      (err, res) => {
        client.close();
        if (err) resolve(err);
        else reject(new Error(`unexpected success: ${res?.length} bytes`));
      },
    );
  });
}

// Length-delimited field 1 claiming 5 bytes but carrying 1, then an illegal tag.
const GARBAGE = new Uint8Array([0x0a, 0x05, 0x01]);
const ZERO_TAG = new Uint8Array([0x00, 0x01, 0xff, 0xff]);

Deno.test(
  "startGrpcServer() answers an unparsable request as grpc++ does: INTERNAL, no message",
  opts,
  async () => {
    await using f = await fixture();
    for (const method of PredictionService.methods.concat(ModelService.methods)) {
      for (const bytes of [GARBAGE, ZERO_TAG]) {
        const err = await sendRaw(f.target, methodPath(method), bytes);
        assert.equal(err.code, grpc.status.INTERNAL, `${method.name}: ${err.message}`);
        assert.equal(err.details, "", method.name);
      }
    }
    assert.deepEqual(f.api.calls, {}, "the API must not be called");
    // The server still serves afterwards.
    assert.equal((await f.predict.predict({ modelSpec: { name: "ok" } })).modelSpec?.name, "ok");
  },
);

Deno.test(
  "startGrpcServer() accepts messages over grpc-js's 4 MB default (TF Serving: INT_MAX)",
  opts,
  async () => {
    await using f = await fixture();
    const content = new Uint8Array(6 * 1024 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = i & 0xff;
    const res = await f.predict.predict({
      modelSpec: { name: "big" },
      inputs: { x: { dtype: DataType.DT_UINT8, tensorContent: content } },
    });
    assert.equal(res.outputs.x.tensorContent.length, content.length);
    assert.equal(res.outputs.x.tensorContent[12345], 12345 & 0xff);
  },
);

Deno.test("Health/Check answers SERVING, NOT_SERVING and NOT_FOUND like grpc++", opts, async () => {
  await using f = await fixture();
  assert.equal(
    (await f.health.check({ service: "" })).status,
    HealthCheckResponse_ServingStatus.SERVING,
  );
  assert.equal(
    (await f.health.check({ service: "tensorflow.serving.PredictionService" })).status,
    HealthCheckResponse_ServingStatus.SERVING,
  );
  await rejectsWith(f.health.check({ service: "nope" }), Code.NOT_FOUND, "service name unknown");
  await rejectsWith(
    f.health.check({ service: "x".repeat(201) }),
    Code.INVALID_ARGUMENT,
    "could not parse request",
  );
  const raw = await sendRaw(f.target, methodPath(Health.method.check), GARBAGE);
  assert.equal(raw.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(raw.details, "could not parse request");

  f.api.serving = "NOT_SERVING";
  assert.equal((await f.health.check()).status, HealthCheckResponse_ServingStatus.NOT_SERVING);

  const list = await f.health.list();
  assert.deepEqual(Object.keys(list.statuses).sort(), [
    "",
    "tensorflow.serving.ModelService",
    "tensorflow.serving.PredictionService",
  ]);
  assert.equal(list.statuses[""].status, HealthCheckResponse_ServingStatus.NOT_SERVING);
});

Deno.test("Health/Watch streams the status, then each change, until cancelled", opts, async () => {
  await using f = await fixture({ healthWatchIntervalMs: 10 });
  const seen: HealthCheckResponse_ServingStatus[] = [];
  for await (const r of f.health.watch({ service: "" }, { deadlineMs: 5000 })) {
    seen.push(r.status);
    if (seen.length === 1) f.api.serving = "NOT_SERVING";
    if (seen.length === 2) f.api.serving = "SERVING";
    if (seen.length === 3) break;
  }
  assert.deepEqual(seen, [
    HealthCheckResponse_ServingStatus.SERVING,
    HealthCheckResponse_ServingStatus.NOT_SERVING,
    HealthCheckResponse_ServingStatus.SERVING,
  ]);

  // An unknown service is SERVICE_UNKNOWN on Watch (not an error), and the stream stays open.
  const unknown = f.health.watch({ service: "nope" }, { deadlineMs: 5000 });
  const first = await unknown.next();
  assert.equal(first.value?.status, HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN);
  await unknown.return();

  // Too long a name: INTERNAL "could not parse request", as grpc++'s WatchReactor.
  const long = f.health.watch({ service: "y".repeat(201) }, { deadlineMs: 5000 });
  await rejectsWith(long.next(), Code.INTERNAL, "could not parse request");
});

Deno.test(
  "Health/Watch is told NOT_SERVING and ended when the server shuts down",
  opts,
  async () => {
    const api = new FakeServingApi();
    const server = await startGrpcServer(api, {
      host: "127.0.0.1",
      port: 0,
      enableHealthCheck: true,
    });
    using health = new HealthClient(`127.0.0.1:${server.port}`);
    const seen: HealthCheckResponse_ServingStatus[] = [];
    const watching = (async () => {
      for await (const r of health.watch({ service: "" }, { deadlineMs: 5000 })) {
        seen.push(
          r.status,
        );
      }
    })();
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    await server.shutdown(5000);
    await watching;
    assert.ok(performance.now() - t0 < 2000, "the watch must not hold the shutdown");
    assert.deepEqual(seen, [
      HealthCheckResponse_ServingStatus.SERVING,
      HealthCheckResponse_ServingStatus.NOT_SERVING,
    ]);
  },
);

Deno.test(
  "startGrpcServer() without the health check does not serve grpc.health.v1",
  opts,
  async () => {
    await using f = await fixture({ enableHealthCheck: false });
    await rejectsWith(f.health.check(), Code.UNIMPLEMENTED);
  },
);

Deno.test(
  "GrpcServer.shutdown() lets a call in flight finish and refuses new ones",
  opts,
  async () => {
    const api = new FakeServingApi();
    const server = await startGrpcServer(api, {
      host: "127.0.0.1",
      port: 0,
      enableHealthCheck: false,
    });
    const target = `127.0.0.1:${server.port}`;
    using model = new ModelServiceClient(target);
    const inFlight = model.handleReloadConfigRequest({ metricNames: ["sleep:400"] });
    while (!api.calls.handleReloadConfigRequest) await new Promise((r) => setTimeout(r, 5));

    const t0 = performance.now();
    const down = server.shutdown(5000);
    assert.equal(server.shutdown(5000), down, "shutdown() twice returns the same promise");

    // New calls are refused, on a new channel and on the one with the call in flight.
    using late = new PredictionServiceClient(target);
    await rejectsWith(
      late.predict({ modelSpec: { name: "late" } }, { deadlineMs: 2000 }),
      Code.UNAVAILABLE,
    );
    await rejectsWith(
      model.getModelStatus({ modelSpec: { name: "late" } }, { deadlineMs: 2000 }),
      Code.UNAVAILABLE,
    );

    const res = await inFlight;
    assert.equal(res.status?.errorCode, 0);
    await down;
    const took = performance.now() - t0;
    assert.ok(took >= 300 && took < 3000, `shutdown took ${took} ms`);
    assert.equal(api.calls.getModelStatus, undefined);
    assert.equal(api.calls.predict, undefined);
  },
);

Deno.test(
  "GrpcServer.shutdown() cancels calls still running after the grace period",
  opts,
  async () => {
    const api = new FakeServingApi();
    const server = await startGrpcServer(api, {
      host: "127.0.0.1",
      port: 0,
      enableHealthCheck: false,
    });
    using model = new ModelServiceClient(`127.0.0.1:${server.port}`);
    const inFlight = model.handleReloadConfigRequest({ metricNames: ["sleep:3000"] });
    while (!api.calls.handleReloadConfigRequest) await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    await server.shutdown(100);
    const took = performance.now() - t0;
    assert.ok(took < 1000, `forced shutdown took ${took} ms`);
    const err = await inFlight.then(() => assert.fail("should be cancelled"), (e) => e);
    assert.ok(err instanceof ServingError);
    assert.ok(
      [Code.CANCELLED, Code.UNAVAILABLE, Code.INTERNAL].includes(err.code),
      `${Code[err.code]}: ${err.message}`,
    );
  },
);

Deno.test("a client deadline gives DEADLINE_EXCEEDED", opts, async () => {
  await using f = await fixture();
  const t0 = performance.now();
  await rejectsWith(
    f.model.handleReloadConfigRequest({ metricNames: ["sleep:2000"] }, { deadlineMs: 100 }),
    Code.DEADLINE_EXCEEDED,
  );
  assert.ok(performance.now() - t0 < 1500);
  // An AbortSignal cancels.
  const ac = new AbortController();
  const p = f.model.handleReloadConfigRequest({ metricNames: ["sleep:2000"] }, {
    signal: ac.signal,
  });
  setTimeout(() => ac.abort(), 50);
  await rejectsWith(p, Code.CANCELLED);
});

Deno.test("a synchronous call blocks others only for its own duration", opts, async () => {
  await using f = await fixture();
  using other = new PredictionServiceClient(f.target, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  await other.predict({}); // connect first
  const t0 = performance.now();
  const slow = f.predict.predict({ modelSpec: { name: "busy:150" } });
  // Calls on another connection while the sync call spins finish soon after it.
  const quick = Array.from({ length: 10 }, () => other.predict({ modelSpec: { name: "q" } }));
  await Promise.all([slow, ...quick]);
  const took = performance.now() - t0;
  assert.ok(took < 1000, `took ${took} ms`);
});

Deno.test("raw wire: a Predict answer decodes with protobuf-es", opts, async () => {
  await using f = await fixture();
  const client = new grpc.Client(f.target, grpc.credentials.createInsecure(), NO_PROXY);
  const bytes = toBinary(
    PredictRequestSchema,
    create(PredictRequestSchema, { modelSpec: { name: "w" } }),
  );
  const res = await new Promise<Buffer>((resolve, reject) =>
    client.makeUnaryRequest(
      methodPath(PredictionService.method.predict),
      () => Buffer.from(bytes),
      (b: Buffer) => b,
      null,
      (err, r) => (err ? reject(err) : resolve(r!)),
    )
  );
  client.close();
  assert.equal(fromBinary(PredictResponseSchema, res).modelSpec?.name, "w");
});

Deno.test("clients of a loopback target ignore a proxy set in the environment", opts, async () => {
  assert.ok(isLoopback("127.0.0.1:8500"));
  assert.ok(isLoopback("localhost:8500"));
  assert.ok(isLoopback("[::1]:8500"));
  assert.ok(isLoopback("dns:///localhost:8500"));
  assert.ok(!isLoopback("example.com:8500"));
  assert.ok(!isLoopback("10.0.0.1:8500"));

  await using f = await fixture();
  const saved = Deno.env.get("grpc_proxy");
  Deno.env.set("grpc_proxy", "http://127.0.0.1:9"); // nothing listens on the discard port
  try {
    using client = new PredictionServiceClient(f.target);
    const res = await client.predict({ modelSpec: { name: "direct" } }, { deadlineMs: 3000 });
    assert.equal(res.modelSpec?.name, "direct");
  } finally {
    if (saved === undefined) Deno.env.delete("grpc_proxy");
    else Deno.env.set("grpc_proxy", saved);
  }
});
