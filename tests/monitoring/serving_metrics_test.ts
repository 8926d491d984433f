import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { Code, ServingError } from "../../src/errors.ts";
import { silentLog } from "../../src/log.ts";
import { modelConfigFromFlags } from "../../src/config/model_config.ts";
import {
  defaultMonitoringConfig,
  type MonitoringConfig,
} from "../../src/config/monitoring_config.ts";
import type { ServableStateEvent } from "../../src/core/manager.ts";
import { ServerCore } from "../../src/model_server/server_core.ts";
import { ModelServerService } from "../../src/model_server/service.ts";
import { createMonitoring } from "../../src/monitoring/monitoring.ts";
import {
  monitoringRoutes,
  type MonitoringRoutesOptions,
} from "../../src/api/rest/monitoring_routes.ts";
import type { ModelsView, VersionStatus } from "../../src/monitoring/models_view.ts";
import {
  ServingMetrics,
  UPSTREAM_LATENCY_BUCKETS_US,
} from "../../src/monitoring/serving_metrics.ts";
import { PredictRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { GetModelMetadataRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { testdata } from "../testdata.ts";
import { type Family, parseExposition, sampleValue } from "./exposition.ts";

/** Monitoring with its REST routes mounted, as src/server.ts wires them. */
function withRoutes(options: Omit<MonitoringRoutesOptions, "metrics">) {
  const mon = createMonitoring({ core: options.core });
  return { ...mon, routes: monitoringRoutes({ ...options, metrics: mon.metrics }) };
}

const ENABLED: MonitoringConfig = {
  prometheus: { enable: true, path: "/monitoring/prometheus/metrics" },
};

function fakeCore(models: Record<string, VersionStatus[]>, basePath = "/models"): ModelsView {
  return {
    models: Object.keys(models).map((name) => ({ name, basePath: `${basePath}/${name}` })),
    status: (name) => models[name] ?? [],
  };
}

function scrape(metrics: ServingMetrics): Map<string, Family> {
  return parseExposition(metrics.render());
}

function get(path: string, method = "GET"): [Request, URL] {
  const url = new URL(`http://localhost${path}`);
  return [new Request(url, { method }), url];
}

Deno.test("observe() counts calls under TF Serving's names and labels", () => {
  const m = new ServingMetrics();
  m.observe({ api: "predict", model: "mnist", version: 1, via: "grpc", code: Code.OK, ms: 2.5 });
  m.observe({ api: "predict", model: "mnist", version: 1, via: "rest", code: Code.OK, ms: 0.004 });
  m.observe({ api: "classify", model: "mnist", via: "rest", code: Code.NOT_FOUND, ms: 0.1 });
  m.observe({
    api: "get_model_metadata",
    model: "mnist",
    version: 1,
    via: "grpc",
    code: Code.OK,
    ms: 1,
  });
  const f = scrape(m);

  assert.equal(f.get(":tensorflow:serving:request_count")!.type, "counter");
  assert.equal(
    sampleValue(f, ":tensorflow:serving:request_count", { model_name: "mnist", status: "OK" }),
    3,
  );
  assert.equal(
    sampleValue(f, ":tensorflow:serving:request_count", {
      model_name: "mnist",
      status: "NOT_FOUND",
    }),
    1,
  );

  // request_latency: µs, successful calls only, API = gRPC method, entrypoint GRPC/REST.
  const latency = ":tensorflow:serving:request_latency";
  assert.equal(f.get(latency)!.type, "histogram");
  const count = (labels: Record<string, string>) => sampleValue(f, `${latency}_count`, labels);
  assert.equal(count({ model_name: "mnist", API: "Predict", entrypoint: "GRPC" }), 1);
  assert.equal(count({ model_name: "mnist", API: "Predict", entrypoint: "REST" }), 1);
  assert.equal(count({ model_name: "mnist", API: "GetModelMetadata", entrypoint: "GRPC" }), 1);
  assert.equal(count({ model_name: "mnist", API: "Classify" }), undefined);
  assert.equal(
    sampleValue(f, `${latency}_sum`, { model_name: "mnist", API: "Predict", entrypoint: "GRPC" }),
    2500,
  );
  // 4 µs lands in the first bucket (le="10"); 2500 µs below le="3570.47" and above le="1983.59".
  const bucket = (le: string, entrypoint: string) =>
    sampleValue(f, `${latency}_bucket`, { API: "Predict", entrypoint, le });
  assert.equal(bucket("10", "REST"), 1);
  assert.equal(bucket("1983.59", "GRPC"), 0);
  assert.equal(bucket("3570.47", "GRPC"), 1);
  const les = f.get(latency)!.samples.filter((s) =>
    s.name.endsWith("_bucket") && s.labels.entrypoint === "GRPC" && s.labels.API === "Predict"
  ).map((s) => s.labels.le);
  assert.equal(les.length, UPSTREAM_LATENCY_BUCKETS_US.length + 1);
  assert.deepEqual(les.slice(0, 4), ["10", "18", "32.4", "58.32"]);
  assert.equal(les.at(-1), "+Inf");

  // The server's own metrics carry the version and every call, failed or not.
  assert.equal(
    sampleValue(f, "model_server_requests_total", {
      model_name: "mnist",
      version: "1",
      API: "Predict",
      entrypoint: "REST",
      status: "OK",
    }),
    1,
  );
  assert.equal(
    sampleValue(f, "model_server_requests_total", {
      version: "",
      API: "Classify",
      status: "NOT_FOUND",
    }),
    1,
  );
  assert.equal(
    sampleValue(f, "model_server_request_duration_seconds_sum", {
      version: "1",
      API: "Predict",
      entrypoint: "GRPC",
    }),
    0.0025,
  );

  const stats = m.requestStats().get("mnist")!;
  assert.equal(stats.requests, 4);
  assert.equal(stats.errors, 1);
  assert.deepEqual(stats.byApi, { Predict: 2, Classify: 1, GetModelMetadata: 1 });
  assert.deepEqual(stats.byEntrypoint, { GRPC: 2, REST: 2 });
  assert.ok(Math.abs(stats.meanMs! - (2.5 + 0.004 + 0.1 + 1) / 4) < 1e-9);
});

Deno.test("onStateChange() times loads: LOADING → AVAILABLE succeeds, LOADING → END fails", () => {
  let now = 1000;
  const states: Record<string, VersionStatus[]> = { mnist: [] };
  const m = new ServingMetrics({ core: () => fakeCore(states), now: () => now });
  const event = (version: number, state: ServableStateEvent["state"], error?: ServingError) =>
    m.onStateChange({ id: { name: "mnist", version }, state, ...(error ? { error } : {}) });

  event(1, "START");
  event(1, "LOADING");
  now += 1500;
  event(1, "AVAILABLE");
  event(2, "START");
  event(2, "LOADING");
  now += 20;
  event(2, "END", new ServingError(Code.NOT_FOUND, "Cannot load: no saved_model.pb"));
  // Ending after an unload is not a load.
  event(1, "UNLOADING");
  event(1, "END");

  const f = scrape(m);
  const attempts = ":tensorflow:cc:saved_model:load_attempt_count";
  assert.equal(
    sampleValue(f, attempts, { model_path: "/models/mnist/1", status: "success" }),
    1,
  );
  assert.equal(sampleValue(f, attempts, { model_path: "/models/mnist/2", status: "fail" }), 1);
  assert.equal(
    sampleValue(f, attempts, { model_path: "/models/mnist/1", status: "fail" }),
    undefined,
  );
  assert.equal(
    sampleValue(f, ":tensorflow:cc:saved_model:load_latency", { model_path: "/models/mnist/1" }),
    1_500_000,
  );
  assert.equal(
    sampleValue(f, ":tensorflow:cc:saved_model:load_latency", { model_path: "/models/mnist/2" }),
    undefined,
    "upstream counts the latency of successful loads only",
  );
  const load = "model_server_model_load_duration_seconds";
  assert.equal(sampleValue(f, `${load}_sum`, { model_name: "mnist", status: "success" }), 1.5);
  assert.equal(sampleValue(f, `${load}_count`, { model_name: "mnist", status: "fail" }), 1);
  assert.deepEqual(m.lastLoad("mnist", 1), { status: "success", ms: 1500 });
});

Deno.test("model_server_model_versions counts versions per state, zeros included", () => {
  const core = fakeCore({
    mnist: [{ version: 3, state: "LOADING" }, { version: 2, state: "AVAILABLE" }, {
      version: 1,
      state: "END",
    }],
    empty: [],
  });
  const m = new ServingMetrics({ core: () => core });
  const f = scrape(m);
  const v = (model_name: string, state: string) =>
    sampleValue(f, "model_server_model_versions", { model_name, state });
  assert.equal(f.get("model_server_model_versions")!.type, "gauge");
  assert.equal(v("mnist", "LOADING"), 1);
  assert.equal(v("mnist", "AVAILABLE"), 1);
  assert.equal(v("mnist", "END"), 1);
  assert.equal(v("mnist", "START"), 0);
  assert.equal(v("empty", "AVAILABLE"), 0);
});

Deno.test("without a core, versions come from the state events", () => {
  const m = new ServingMetrics();
  m.onStateChange({ id: { name: "a", version: 1 }, state: "START" });
  m.onStateChange({ id: { name: "a", version: 1 }, state: "LOADING" });
  m.onStateChange({ id: { name: "a", version: 1 }, state: "AVAILABLE" });
  m.onStateChange({ id: { name: "a", version: 2 }, state: "START" });
  assert.deepEqual(m.modelNames(), ["a"]);
  assert.deepEqual(m.versionStates("a"), [
    { version: 2, state: "START" },
    { version: 1, state: "AVAILABLE" },
  ]);
  const f = scrape(m);
  assert.equal(
    sampleValue(f, "model_server_model_versions", { model_name: "a", state: "AVAILABLE" }),
    1,
  );
  // The load ran without a base path known: the model path falls back to name/version.
  assert.equal(
    sampleValue(f, ":tensorflow:cc:saved_model:load_attempt_count", { model_path: "a/1" }),
    1,
  );
});

Deno.test("client-chosen model names cannot grow the metrics without bound", () => {
  const m = new ServingMetrics({ maxSeries: 3 });
  for (let i = 0; i < 10; i++) {
    m.observe({ api: "predict", model: `junk${i}`, via: "rest", code: Code.NOT_FOUND, ms: 0.1 });
  }
  const f = scrape(m);
  const counts = f.get(":tensorflow:serving:request_count")!.samples.length;
  assert.equal(counts, 3);
  assert.equal(
    sampleValue(f, "model_server_metric_series_dropped_total", {
      metric: ":tensorflow:serving:request_count",
    }),
    7,
  );
});

Deno.test("the Prometheus route follows prometheus_config, as upstream's http_server.cc", async (t) => {
  await t.step("off by default: the path falls through to the REST API", () => {
    const mon = withRoutes({ config: defaultMonitoringConfig(), core: () => undefined });
    assert.equal(mon.routes(...get("/monitoring/prometheus/metrics")), undefined);
  });
  await t.step("on: text exposition at the path, query ignored, any method", async () => {
    const mon = withRoutes({ config: ENABLED, core: () => fakeCore({}) });
    mon.observer({ api: "predict", model: "m", version: 1, via: "grpc", code: Code.OK, ms: 1 });
    const res = mon.routes(...get("/monitoring/prometheus/metrics?x=1"))!;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const f = parseExposition(await res.text());
    assert.equal(sampleValue(f, ":tensorflow:serving:request_count", { model_name: "m" }), 1);
    // Upstream registers the handler for the path, whatever the method.
    const post = mon.routes(...get("/monitoring/prometheus/metrics", "POST"))!;
    assert.equal(post.status, 200);
    await post.body?.cancel();
    const head = mon.routes(...get("/monitoring/prometheus/metrics", "HEAD"))!;
    assert.equal(head.status, 200);
    assert.equal(head.body, null);
    assert.equal(mon.routes(...get("/monitoring/prometheus/metrics/")), undefined);
    assert.equal(mon.routes(...get("/v1/models/m")), undefined);
  });
  await t.step("a custom path", async () => {
    const mon = withRoutes({
      config: { prometheus: { enable: true, path: "/metrics" } },
      core: () => undefined,
    });
    const res = mon.routes(...get("/metrics"))!;
    assert.equal(res.status, 200);
    parseExposition(await res.text());
    assert.equal(mon.routes(...get("/monitoring/prometheus/metrics")), undefined);
  });
  await t.step("ui: false leaves / to the REST API", () => {
    const mon = withRoutes({ config: ENABLED, core: () => undefined, ui: false });
    assert.equal(mon.routes(...get("/")), undefined);
    assert.equal(mon.routes(...get("/healthz"))!.status, 200);
  });
});

Deno.test({
  name: "createMonitoring() wired into a real ServerCore and service counts loads and calls",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // The monitoring exists before the core (the core takes its state hook).
    const ref: { core?: ServerCore } = {};
    const mon = withRoutes({ config: ENABLED, core: () => ref.core });
    const core = ref.core = new ServerCore({
      tags: ["serve"],
      enableModelWarmup: false,
      warmupIterations: 1,
      maxNumLoadRetries: 0,
      loadRetryIntervalMs: 1,
      fileSystemPollWaitSeconds: 0,
      allowVersionLabelsForUnavailableModels: false,
      log: silentLog,
      onStateChange: mon.onStateChange,
    });
    await using _ = core;
    const base = testdata("saved_model_half_plus_two_2_versions");
    await core.reloadConfig(modelConfigFromFlags({ modelName: "half", modelBasePath: base }));
    const service = new ModelServerService(core, {}, mon.observer);

    const x = tensorToProto(Tensor.float32([1, 2], [2]));
    const res = await service.predict(
      create(PredictRequestSchema, {
        modelSpec: { name: "half", signatureName: "serving_default" },
        inputs: { x },
      }),
      "rest",
    );
    assert.ok(res.outputs.y);
    service.getModelMetadata(
      create(GetModelMetadataRequestSchema, {
        modelSpec: { name: "half" },
        metadataField: ["signature_def"],
      }),
      "grpc",
    );
    assert.throws(
      () => service.predict(create(PredictRequestSchema, { modelSpec: { name: "nope" } }), "grpc"),
      ServingError,
    );

    const text = await mon.routes(...get("/monitoring/prometheus/metrics"))!.text();
    const f = parseExposition(text);
    const version = String(core.availableVersions("half")[0]);
    assert.equal(
      sampleValue(f, ":tensorflow:serving:request_count", { model_name: "half", status: "OK" }),
      2,
    );
    assert.equal(
      sampleValue(f, ":tensorflow:serving:request_count", {
        model_name: "nope",
        status: "NOT_FOUND",
      }),
      1,
    );
    assert.equal(
      sampleValue(f, "model_server_requests_total", {
        model_name: "half",
        version,
        API: "Predict",
        entrypoint: "REST",
        status: "OK",
      }),
      1,
    );
    assert.equal(
      sampleValue(f, ":tensorflow:cc:saved_model:load_attempt_count", {
        model_path: `${base}/${version}`,
        status: "success",
      }),
      1,
    );
    assert.ok(
      sampleValue(f, ":tensorflow:cc:saved_model:load_latency", {
        model_path: `${base}/${version}`,
      })! > 0,
    );
    assert.equal(
      sampleValue(f, "model_server_model_versions", { model_name: "half", state: "AVAILABLE" }),
      1,
    );
    const ready = mon.routes(...get("/readyz"))!;
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: "ok" });
  },
});

Deno.test("repeated calls count in the series resolved on the first, per version, status and transport; a reset starts over", () => {
  const m = new ServingMetrics();
  const call = (version: number | undefined, code: Code, via: "grpc" | "rest", ms = 2) =>
    m.observe({ api: "predict", model: "hp", version, via, code, ms });
  for (let i = 0; i < 3; i++) call(1, Code.OK, "grpc");
  call(1, Code.INVALID_ARGUMENT, "grpc");
  call(2, Code.OK, "rest");
  call(undefined, Code.NOT_FOUND, "rest");
  m.observe({ api: "no_such_api", model: "hp", version: 1, via: "grpc", code: Code.OK, ms: 1 });
  let f = scrape(m);
  const v = (name: string, labels: Record<string, string>) => sampleValue(f, name, labels);
  assert.equal(v(":tensorflow:serving:request_count", { model_name: "hp", status: "OK" }), 5);
  assert.equal(
    v(":tensorflow:serving:request_count", { model_name: "hp", status: "INVALID_ARGUMENT" }),
    1,
  );
  assert.equal(
    v("model_server_requests_total", {
      model_name: "hp",
      version: "1",
      API: "Predict",
      entrypoint: "GRPC",
      status: "OK",
    }),
    3,
  );
  assert.equal(
    v("model_server_requests_total", {
      model_name: "hp",
      version: "",
      API: "Predict",
      entrypoint: "REST",
      status: "NOT_FOUND",
    }),
    1,
  );
  assert.equal(
    v("model_server_requests_total", {
      model_name: "hp",
      version: "1",
      API: "no_such_api",
      entrypoint: "GRPC",
      status: "OK",
    }),
    1,
  );
  assert.equal(
    v(":tensorflow:serving:request_latency_count", {
      model_name: "hp",
      API: "Predict",
      entrypoint: "GRPC",
    }),
    3,
  );
  assert.equal(
    v(":tensorflow:serving:request_latency_sum", {
      model_name: "hp",
      API: "Predict",
      entrypoint: "GRPC",
    }),
    6000,
  );
  assert.equal(
    v("model_server_request_duration_seconds_count", {
      model_name: "hp",
      version: "1",
      API: "Predict",
      entrypoint: "GRPC",
    }),
    4,
  );
  // A kind of call that never succeeded has no latency series.
  m.observe({ api: "predict", model: "fails", via: "rest", code: Code.NOT_FOUND, ms: 1 });
  m.observe({ api: "predict", model: "fails", via: "rest", code: Code.NOT_FOUND, ms: 1 });
  f = scrape(m);
  assert.equal(
    v(":tensorflow:serving:request_count", { model_name: "fails", status: "NOT_FOUND" }),
    2,
  );
  assert.ok(
    !f.get(":tensorflow:serving:request_latency")!.samples.some((s) =>
      s.labels.model_name === "fails"
    ),
  );
  m.requests.reset();
  call(1, Code.OK, "grpc");
  f = scrape(m);
  assert.equal(
    v("model_server_requests_total", {
      model_name: "hp",
      version: "1",
      API: "Predict",
      entrypoint: "GRPC",
      status: "OK",
    }),
    1,
  );
  assert.equal(v(":tensorflow:serving:request_count", { model_name: "hp", status: "OK" }), 6);
});
