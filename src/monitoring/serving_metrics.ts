/**
 * The model server's metrics. Where TF Serving (or TensorFlow, whose metrics it exports) has an
 * equivalent, the name, labels, unit and bucket layout are upstream's, with the `/` of TF's
 * monitoring names turned into `:` as `tensorflow_serving/util/prometheus_exporter.cc` does, so
 * dashboards written for TF Serving work unchanged:
 *
 * | metric | type | labels | upstream |
 * | --- | --- | --- | --- |
 * | `:tensorflow:serving:request_count` | counter | model_name, status | servables/tensorflow/util.cc |
 * | `:tensorflow:serving:request_latency` | histogram (µs) | model_name, API, entrypoint | servables/tensorflow/util.cc |
 * | `:tensorflow:cc:saved_model:load_attempt_count` | counter | model_path, status | tensorflow/cc/saved_model/loader.cc |
 * | `:tensorflow:cc:saved_model:load_latency` | counter (µs) | model_path | tensorflow/cc/saved_model/loader.cc |
 *
 * The server's own metrics add what upstream lacks — the version, and per-state version counts:
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `model_server_requests_total` | counter | model_name, version, API, entrypoint, status |
 * | `model_server_request_duration_seconds` | histogram | model_name, version, API, entrypoint |
 * | `model_server_model_load_duration_seconds` | histogram | model_name, status |
 * | `model_server_model_versions` | gauge | model_name, state |
 * | `model_server_metric_series_dropped_total` | counter | metric |
 * | `process_start_time_seconds`, `process_resident_memory_bytes` | gauge | |
 *
 * Label values: `API` is the gRPC method (`Predict`, `Classify`, `Regress`, `MultiInference`,
 * `GetModelMetadata`) whichever the transport; `entrypoint` is `GRPC` or `REST`, as upstream's;
 * `status` is the canonical code name (`OK`, `NOT_FOUND`, …) as `error::Code_Name` gives.
 *
 * @module
 */
import { Code } from "../errors.ts";
import type { CallObserver } from "../model_server/service.ts";
import type { ServableStateEvent } from "../core/manager.ts";
import {
  type Counter,
  exponentialBuckets,
  type Gauge,
  type Histogram,
  type HistogramSeries,
  Registry,
  type ScalarSeries,
} from "./metrics.ts";
import type { ModelsView } from "./models_view.ts";

/** TF Serving's latency buckets: 10 µs · 1.8^i, 33 of them (~20 minutes), util.cc. */
export const UPSTREAM_LATENCY_BUCKETS_US: readonly number[] = exponentialBuckets(10, 1.8, 33);

/** Request duration buckets in seconds, 100 µs to 10 s. */
export const REQUEST_BUCKETS_S: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Model load duration buckets in seconds, 10 ms to 10 minutes. */
export const LOAD_BUCKETS_S: readonly number[] = [
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300,
  600,
];

/** The published version states, in lifecycle order. */
export const VERSION_STATES = ["START", "LOADING", "AVAILABLE", "UNLOADING", "END"] as const;

/** The `API` label per ServingApi call name: the gRPC method names. */
const API_LABEL: Readonly<Record<string, string>> = {
  predict: "Predict",
  classify: "Classify",
  regress: "Regress",
  multi_inference: "MultiInference",
  get_model_metadata: "GetModelMetadata",
};

/** Model names whose series are kept resolved; past it the cache starts over. */
const MAX_CACHED_MODELS = 1024;

/** Each API label's place in the per-kind series cache. */
const API_INDEX: ReadonlyMap<string, number> = new Map(
  Object.keys(API_LABEL).map((api, i) => [api, i]),
);

/** The canonical name of a code, as `error::Code_Name` gives (the enum's reverse mapping). */
function codeName(code: Code): string {
  return Code[code] ?? "UNKNOWN";
}

/** The series one kind of call (model, version, API, entrypoint) records into. */
interface CallCells {
  /** model_name, version, API, entrypoint. */
  readonly labels: readonly [string, string, string, string];
  /** `request_latency`'s series once a call succeeded; undefined before, null past the cap. */
  latency: HistogramSeries | null | undefined;
  /** `model_server_request_duration_seconds`'s series; undefined past the cap. */
  readonly duration: HistogramSeries | undefined;
  /** The counters' series per status code. */
  readonly byCode: (
    | { count: ScalarSeries | undefined; requests: ScalarSeries | undefined }
    | undefined
  )[];
}

/** TF's load_attempt_count status values (loader.cc's kLoadAttemptSuccess / kLoadAttemptFail). */
const LOAD_SUCCESS = "success";
const LOAD_FAIL = "fail";

/** Options of {@linkcode ServingMetrics}. */
export interface ServingMetricsOptions {
  /** The models (for model paths and per-state counts); undefined while not started. */
  readonly core?: () => ModelsView | undefined;
  /** A clock in milliseconds (default `performance.now`), for load durations. */
  readonly now?: () => number;
  /** Cap on label sets per metric (default 10,000). */
  readonly maxSeries?: number;
}

/** Request totals of one model, for the web page. */
export interface ModelRequestStats {
  /** Calls observed, every API and transport. */
  readonly requests: number;
  /** Of those, calls that failed. */
  readonly errors: number;
  /** Calls per API label. */
  readonly byApi: Readonly<Record<string, number>>;
  /** Calls per entrypoint label (GRPC, REST). */
  readonly byEntrypoint: Readonly<Record<string, number>>;
  /** Mean call duration in milliseconds, or undefined before any call. */
  readonly meanMs?: number;
}

/** A finished load of one version, for the web page. */
export interface LoadRecord {
  /** `success` or `fail`. */
  readonly status: string;
  /** How long LOADING lasted, in milliseconds (retries included). */
  readonly ms: number;
}

function modelPath(basePath: string, version: number): string {
  return basePath.endsWith("/") ? `${basePath}${version}` : `${basePath}/${version}`;
}

/**
 * The server's metrics, fed by the service's {@linkcode CallObserver} and the core's state
 * changes.
 *
 * @example
 * ```ts
 * const metrics = new ServingMetrics({ core: () => core });
 * const service = new ModelServerService(core, options, metrics.observe);
 * // ServerCore options: { ..., onStateChange: metrics.onStateChange }
 * const text = metrics.render(); // the Prometheus page
 * ```
 */
export class ServingMetrics {
  /** Every metric; render it for the Prometheus page. */
  readonly registry: Registry;
  /** `:tensorflow:serving:request_count{model_name,status}`. */
  readonly requestCount: Counter;
  /** `:tensorflow:serving:request_latency{model_name,API,entrypoint}`, µs, successful calls. */
  readonly requestLatency: Histogram;
  /** `:tensorflow:cc:saved_model:load_attempt_count{model_path,status}`. */
  readonly loadAttemptCount: Counter;
  /** `:tensorflow:cc:saved_model:load_latency{model_path}`, total µs of successful loads. */
  readonly loadLatency: Counter;
  /** `model_server_requests_total{model_name,version,API,entrypoint,status}`. */
  readonly requests: Counter;
  /** `model_server_request_duration_seconds{model_name,version,API,entrypoint}`. */
  readonly requestDuration: Histogram;
  /** `model_server_model_load_duration_seconds{model_name,status}`. */
  readonly loadDuration: Histogram;
  /** `model_server_model_versions{model_name,state}`. */
  readonly modelVersions: Gauge;
  /** `model_server_metric_series_dropped_total{metric}`. */
  readonly seriesDropped: Counter;

  readonly #core: () => ModelsView | undefined;
  readonly #now: () => number;
  /** When each version in LOADING started, by `name\0version`. */
  readonly #loading = new Map<string, number>();
  /** The last finished load per `name\0version`. */
  readonly #loads = new Map<string, LoadRecord>();
  /** Models seen in state events, with their versions' states (when no core is given). */
  readonly #states = new Map<string, Map<number, ServableStateEvent>>();

  /** @param options the models, a clock and the label-set cap */
  constructor(options: ServingMetricsOptions = {}) {
    this.#core = options.core ?? (() => undefined);
    this.#now = options.now ?? (() => performance.now());
    const m = { maxSeries: options.maxSeries };
    const r = this.registry = new Registry({
      onDrop: (metric) => {
        if (metric !== this.seriesDropped) this.seriesDropped.inc([metric.name]);
      },
    });
    this.requestCount = r.counter(
      ":tensorflow:serving:request_count",
      "The total number of requests.",
      ["model_name", "status"],
      m,
    );
    this.requestLatency = r.histogram(
      ":tensorflow:serving:request_latency",
      "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
      ["model_name", "API", "entrypoint"],
      UPSTREAM_LATENCY_BUCKETS_US,
      m,
    );
    this.loadAttemptCount = r.counter(
      ":tensorflow:cc:saved_model:load_attempt_count",
      "The number of times a SavedModel was successfully loaded.",
      ["model_path", "status"],
      m,
    );
    this.loadLatency = r.counter(
      ":tensorflow:cc:saved_model:load_latency",
      "Latency in microseconds for SavedModels that were successfully loaded.",
      ["model_path"],
      m,
    );
    this.requests = r.counter(
      "model_server_requests_total",
      "Inference and metadata calls, by model version, API, transport and status.",
      ["model_name", "version", "API", "entrypoint", "status"],
      m,
    );
    this.requestDuration = r.histogram(
      "model_server_request_duration_seconds",
      "Wall time of inference and metadata calls in seconds, successful or not.",
      ["model_name", "version", "API", "entrypoint"],
      REQUEST_BUCKETS_S,
      m,
    );
    this.loadDuration = r.histogram(
      "model_server_model_load_duration_seconds",
      "Time model versions spent LOADING (retries included), by outcome.",
      ["model_name", "status"],
      LOAD_BUCKETS_S,
      m,
    );
    this.modelVersions = r.gauge(
      "model_server_model_versions",
      "Model versions per published state (START, LOADING, AVAILABLE, UNLOADING, END).",
      ["model_name", "state"],
      m,
    );
    this.seriesDropped = r.counter(
      "model_server_metric_series_dropped_total",
      "Observations dropped because a metric reached its label-set cap.",
      ["metric"],
    );
    const start = r.gauge(
      "process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.",
    );
    start.set([], Math.round(performance.timeOrigin) / 1000);
    const rss = r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
    r.onCollect(() => {
      this.#collectVersions();
      try {
        rss.set([], Deno.memoryUsage().rss);
      } catch {
        // Not available in this runtime; the gauge stays at its last value.
      }
    });
  }

  /**
   * The series one kind of call records into, by model name, then version, then API and
   * entrypoint (see {@linkcode CallCells}): resolved on a kind's first call and reused, so a
   * call builds no label keys. Dropped whole when any request metric is reset.
   */
  readonly #calls = new Map<string, Map<number | undefined, (CallCells | undefined)[]>>();
  /** The request metrics' generations the cache was filled under. */
  #callsGeneration = 0;

  /** Records one served call; pass it to `ModelServerService` as its observer. */
  readonly observe: CallObserver = (call) => {
    const generation = this.requestCount.generation + this.requestLatency.generation +
      this.requests.generation + this.requestDuration.generation;
    if (generation !== this.#callsGeneration) {
      this.#calls.clear();
      this.#callsGeneration = generation;
    }
    const apiIndex = API_INDEX.get(call.api);
    if (apiIndex === undefined) return this.#observeByLabels(call);
    let byVersion = this.#calls.get(call.model);
    if (byVersion === undefined) {
      // Names of models that do not exist come from clients: bound what is kept for them.
      if (this.#calls.size >= MAX_CACHED_MODELS) this.#calls.clear();
      this.#calls.set(call.model, byVersion = new Map());
    }
    let kinds = byVersion.get(call.version);
    if (kinds === undefined) byVersion.set(call.version, kinds = []);
    const k = apiIndex * 2 + (call.via === "grpc" ? 0 : 1);
    // A series past the label-set cap is undefined: such a call records by labels, which counts
    // the drop on every call as before (the call that resolved it has counted it already).
    let cells = kinds[k];
    const freshKind = cells === undefined;
    if (cells === undefined) kinds[k] = cells = this.#callCells(call);
    const code = call.code;
    let byCode = cells.byCode[code];
    const freshCode = byCode === undefined;
    if (byCode === undefined) {
      cells.byCode[code] = byCode = {
        count: this.requestCount.child([call.model, codeName(code)]),
        requests: this.requests.child([...cells.labels, codeName(code)]),
      };
    }
    if (byCode.count !== undefined) byCode.count.value++;
    else if (!freshCode) this.requestCount.inc([call.model, codeName(code)]);
    // Upstream records request_latency for successful calls only, in whole microseconds.
    if (code === Code.OK) {
      const us = Math.round(call.ms * 1000);
      // Resolved on the first success only: a kind of call that never succeeds has no series.
      if (cells.latency === undefined) {
        cells.latency = this.requestLatency.child([call.model, cells.labels[2], cells.labels[3]]) ??
          null;
        if (cells.latency !== null) this.requestLatency.observeSeries(cells.latency, us);
      } else if (cells.latency !== null) this.requestLatency.observeSeries(cells.latency, us);
      else this.requestLatency.observe([call.model, cells.labels[2], cells.labels[3]], us);
    }
    if (byCode.requests !== undefined) byCode.requests.value++;
    else if (!freshCode) this.requests.inc([...cells.labels, codeName(code)]);
    if (cells.duration !== undefined) {
      this.requestDuration.observeSeries(cells.duration, call.ms / 1000);
    } else if (!freshKind) this.requestDuration.observe(cells.labels, call.ms / 1000);
  };

  /** The series of one kind of call (the per-status ones are added as statuses occur). */
  #callCells(call: Parameters<CallObserver>[0]): CallCells {
    const api = API_LABEL[call.api];
    const entrypoint = call.via === "grpc" ? "GRPC" : "REST";
    const version = call.version === undefined ? "" : String(call.version);
    const labels = [call.model, version, api, entrypoint] as const;
    return {
      labels,
      latency: undefined,
      duration: this.requestDuration.child(labels),
      byCode: [],
    };
  }

  /** The uncached form of {@linkcode observe}, for an API without a label of its own. */
  #observeByLabels(call: Parameters<CallObserver>[0]): void {
    const status = codeName(call.code);
    const api = API_LABEL[call.api] ?? call.api;
    const entrypoint = call.via === "grpc" ? "GRPC" : "REST";
    const version = call.version === undefined ? "" : String(call.version);
    this.requestCount.inc([call.model, status]);
    if (call.code === Code.OK) {
      this.requestLatency.observe([call.model, api, entrypoint], Math.round(call.ms * 1000));
    }
    this.requests.inc([call.model, version, api, entrypoint, status]);
    this.requestDuration.observe([call.model, version, api, entrypoint], call.ms / 1000);
  }

  /** Records a published state change; pass it to the ServerCore options. */
  readonly onStateChange = (event: ServableStateEvent): void => {
    const { name, version } = event.id;
    let versions = this.#states.get(name);
    if (!versions) this.#states.set(name, versions = new Map());
    versions.set(version, event);

    const key = `${name}\u0000${version}`;
    if (event.state === "LOADING") {
      this.#loading.set(key, this.#now());
      return;
    }
    const started = this.#loading.get(key);
    if (started === undefined) return;
    // A load ends in AVAILABLE, or in END (with the error) when every retry failed.
    if (event.state !== "AVAILABLE" && event.state !== "END") return;
    this.#loading.delete(key);
    const ms = Math.max(0, this.#now() - started);
    const status = event.state === "AVAILABLE" ? LOAD_SUCCESS : LOAD_FAIL;
    const base = this.#core()?.models.find((m) => m.name === name)?.basePath ?? name;
    const path = modelPath(base, version);
    this.loadAttemptCount.inc([path, status]);
    if (status === LOAD_SUCCESS) this.loadLatency.inc([path], Math.round(ms * 1000));
    this.loadDuration.observe([name, status], ms / 1000);
    this.#loads.set(key, { status, ms });
  };

  /** The last finished load of a version, if any. */
  lastLoad(name: string, version: number): LoadRecord | undefined {
    return this.#loads.get(`${name}\u0000${version}`);
  }

  /** The models known: the configured ones, then others seen in state events. */
  modelNames(): string[] {
    const names = new Set((this.#core()?.models ?? []).map((m) => m.name));
    for (const name of this.#states.keys()) names.add(name);
    return [...names];
  }

  /** Request totals per model name, from `model_server_requests_total` and its durations. */
  requestStats(): Map<string, ModelRequestStats> {
    type Acc = {
      requests: number;
      errors: number;
      byApi: Record<string, number>;
      byEntrypoint: Record<string, number>;
      sum: number;
      count: number;
    };
    const acc = new Map<string, Acc>();
    const get = (model: string) => {
      let a = acc.get(model);
      if (!a) {
        acc.set(
          model,
          a = { requests: 0, errors: 0, byApi: {}, byEntrypoint: {}, sum: 0, count: 0 },
        );
      }
      return a;
    };
    for (const s of this.requests.series()) {
      const [model, , api, entrypoint, status] = s.labels;
      const a = get(model);
      a.requests += s.value;
      if (status !== "OK") a.errors += s.value;
      a.byApi[api] = (a.byApi[api] ?? 0) + s.value;
      a.byEntrypoint[entrypoint] = (a.byEntrypoint[entrypoint] ?? 0) + s.value;
    }
    for (const s of this.requestDuration.series()) {
      const a = get(s.labels[0]);
      a.sum += s.sum;
      a.count += s.count;
    }
    const out = new Map<string, ModelRequestStats>();
    for (const [model, a] of acc) {
      out.set(model, {
        requests: a.requests,
        errors: a.errors,
        byApi: a.byApi,
        byEntrypoint: a.byEntrypoint,
        ...(a.count > 0 ? { meanMs: (a.sum / a.count) * 1000 } : {}),
      });
    }
    return out;
  }

  /** The versions of a model and their states, highest first (from the core when given). */
  versionStates(name: string): readonly { version: number; state: string; error?: Error }[] {
    const core = this.#core();
    if (core) return core.status(name);
    return [...(this.#states.get(name)?.values() ?? [])]
      .sort((a, b) => b.id.version - a.id.version)
      .map((e) => ({
        version: e.id.version,
        state: e.state,
        ...(e.error ? { error: e.error } : {}),
      }));
  }

  #collectVersions(): void {
    this.modelVersions.reset();
    for (const name of this.modelNames()) {
      const counts = new Map<string, number>(VERSION_STATES.map((s) => [s, 0]));
      for (const v of this.versionStates(name)) counts.set(v.state, (counts.get(v.state) ?? 0) + 1);
      for (const [state, n] of counts) this.modelVersions.set([name, state], n);
    }
  }

  /** The Prometheus exposition of every metric. */
  render(): string {
    return this.registry.render();
  }
}
