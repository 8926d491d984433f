/**
 * The REST-port routes that expose monitoring: the Prometheus page (`--monitoring_config_file`),
 * `/healthz` and `/readyz`, and the web page at `/`. The REST layer mounts them; monitoring itself
 * only observes (src/monitoring/), so the dependency runs one way, from the transport to what it
 * shows.
 *
 * @example
 * ```ts
 * const monitoring = createMonitoring({ core: () => core });
 * const routes = monitoringRoutes({ config, metrics: monitoring.metrics, core: () => core });
 * await startRestServer(service, { port, routes });
 * ```
 *
 * @module
 */
import type { MonitoringConfig } from "../../config/monitoring_config.ts";
import { EXPOSITION_CONTENT_TYPE } from "../../monitoring/metrics.ts";
import type { ModelsView } from "../../monitoring/models_view.ts";
import type { ServingMetrics } from "../../monitoring/serving_metrics.ts";
import { healthRoutes } from "./health.ts";
import { pageRoutes, type RouteFn } from "./page/routes.ts";

/** Options of {@linkcode monitoringRoutes}. */
export interface MonitoringRoutesOptions {
  /** `--monitoring_config_file`'s settings: whether and where to serve Prometheus metrics. */
  readonly config: MonitoringConfig;
  /** The metrics to render. */
  readonly metrics: ServingMetrics;
  /** The models (a ServerCore); undefined while the server is starting. */
  readonly core: () => ModelsView | undefined;
  /** False once shutdown began: `/readyz` then answers 503 (default: always serving). */
  readonly serving?: () => boolean;
  /** Serve the web page at `/` (default true). */
  readonly ui?: boolean;
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
 * Builds the REST server's `routes` hook for monitoring: answers the monitoring paths and returns
 * undefined for every other path, which the REST API then handles.
 *
 * @param options the monitoring config, the metrics, the models and the serving flag
 */
export function monitoringRoutes(options: MonitoringRoutesOptions): RouteFn {
  const { metrics } = options;
  const prometheus = options.config.prometheus;
  const health = healthRoutes(options);
  const page = options.ui === false ? undefined : pageRoutes({
    core: options.core,
    metrics,
    serving: options.serving,
    ...(prometheus.enable ? { metricsPath: prometheus.path } : {}),
  });
  const routes = (req: Request, url: URL) => {
    // Upstream registers the exporter for its path before the REST dispatcher, so it wins.
    if (prometheus.enable && url.pathname === prometheus.path) {
      return prometheusResponse(req, metrics);
    }
    return health(req, url) ?? page?.(req, url);
  };
  const claims = (pathname: string) =>
    (prometheus.enable && pathname === prometheus.path) || health.claims(pathname) ||
    (page?.claims(pathname) ?? false);
  const quick = (method: string, pathname: string) =>
    prometheus.enable && pathname === prometheus.path
      ? undefined
      : health.quick?.(method, pathname);
  return Object.assign(routes, { claims, quick });
}
