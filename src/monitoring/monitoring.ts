/**
 * Everything monitoring adds to the server, in one object to wire: the metrics (fed by the
 * service's call observer and the core's state changes) and the REST-port routes — the
 * Prometheus page, `/healthz` and `/readyz`, and the web page at `/`.
 *
 * @example
 * ```ts
 * let core: ServerCore | undefined;
 * const monitoring = createMonitoring({ config: options.monitoring, core: () => core });
 * core = new ServerCore({ ...coreOptions, onStateChange: monitoring.onStateChange });
 * const service = new ModelServerService(core, servableOptions, monitoring.observer);
 * await startRestServer(service, { port, routes: monitoring.routes });
 * ```
 *
 * @module
 */
import type { ServableStateEvent } from "../core/manager.ts";
import type { MonitoringConfig } from "../config/monitoring_config.ts";
import type { CallObserver } from "../model_server/service.ts";
import { healthRoutes } from "../api/rest/health.ts";
import { pageRoutes } from "../api/rest/page/routes.ts";
import { EXPOSITION_CONTENT_TYPE } from "./metrics.ts";
import type { ModelsView } from "./models_view.ts";
import { ServingMetrics } from "./serving_metrics.ts";

/** Options of {@linkcode createMonitoring}. */
export interface MonitoringOptions {
  /** `--monitoring_config_file`'s settings: whether and where to serve Prometheus metrics. */
  readonly config: MonitoringConfig;
  /** The models (a ServerCore); undefined while the server is starting. */
  readonly core: () => ModelsView | undefined;
  /** False once shutdown began: `/readyz` then answers 503 (default: always serving). */
  readonly serving?: () => boolean;
  /** Serve the web page at `/` (default true). */
  readonly ui?: boolean;
  /** Cap on label sets per metric (default 10,000). */
  readonly maxSeries?: number;
}

/** What to wire into the server. */
export interface Monitoring {
  /** The metrics themselves (for tests, or more exporters). */
  readonly metrics: ServingMetrics;
  /** Pass to `ModelServerService` as its observer. */
  readonly observer: CallObserver;
  /** Pass to the `ServerCore` options as `onStateChange`. */
  readonly onStateChange: (event: ServableStateEvent) => void;
  /**
   * Pass to the REST server as its `routes` hook: answers the monitoring paths and returns
   * undefined for every other path, which the REST API then handles.
   */
  routes(req: Request, url: URL): Response | undefined;
}

/**
 * Serves the Prometheus page as upstream's `ProcessPrometheusRequest` does: whatever the method
 * (upstream registers the handler for the path alone), with the text exposition; `HEAD` gets
 * the headers only.
 */
function prometheusResponse(req: Request, metrics: ServingMetrics): Response {
  return new Response(req.method === "HEAD" ? null : metrics.render(), {
    headers: { "content-type": EXPOSITION_CONTENT_TYPE, "cache-control": "no-store" },
  });
}

/**
 * Creates the server's monitoring.
 *
 * @param options the monitoring config, the models and the serving flag
 * @returns the observer, the state hook and the routes to wire
 */
export function createMonitoring(options: MonitoringOptions): Monitoring {
  const metrics = new ServingMetrics({ core: options.core, maxSeries: options.maxSeries });
  const prometheus = options.config.prometheus;
  const health = healthRoutes(options);
  const page = options.ui === false ? undefined : pageRoutes({
    core: options.core,
    metrics,
    serving: options.serving,
    ...(prometheus.enable ? { metricsPath: prometheus.path } : {}),
  });
  return {
    metrics,
    observer: metrics.observe,
    onStateChange: metrics.onStateChange,
    routes(req, url) {
      // Upstream registers the exporter for its path before the REST dispatcher, so it wins.
      if (prometheus.enable && url.pathname === prometheus.path) {
        return prometheusResponse(req, metrics);
      }
      return health(req, url) ?? page?.(req, url);
    },
  };
}
