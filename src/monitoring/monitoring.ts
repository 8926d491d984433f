/**
 * Everything monitoring adds to the server, in one object to wire: the metrics, fed by the
 * service's call observer and the core's state changes. Monitoring observes and never drives: the
 * REST layer mounts the routes that expose it (`src/api/rest/monitoring_routes.ts`), not the
 * other way round.
 *
 * @example
 * ```ts
 * let core: ServerCore | undefined;
 * const monitoring = createMonitoring({ core: () => core });
 * core = new ServerCore({ ...coreOptions, onStateChange: monitoring.onStateChange });
 * const service = new ModelServerService(core, servableOptions, monitoring.observer);
 * ```
 *
 * @module
 */
import type { ServableStateEvent } from "../core/manager.ts";
import type { CallObserver } from "../model_server/service.ts";
import type { ModelsView } from "./models_view.ts";
import { ServingMetrics } from "./serving_metrics.ts";

/** Options of {@linkcode createMonitoring}. */
export interface MonitoringOptions {
  /** The models (a ServerCore); undefined while the server is starting. */
  readonly core: () => ModelsView | undefined;
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
}

/**
 * Creates the server's monitoring.
 *
 * @param options the models and the series cap
 * @returns the metrics, the observer and the state hook to wire
 */
export function createMonitoring(options: MonitoringOptions): Monitoring {
  const metrics = new ServingMetrics({ core: options.core, maxSeries: options.maxSeries });
  return { metrics, observer: metrics.observe, onStateChange: metrics.onStateChange };
}
