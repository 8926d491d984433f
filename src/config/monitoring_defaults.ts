/**
 * The monitoring settings without a `--monitoring_config_file`: the defaults, which need no
 * generated schema (start-up, issue 10: monitoring_config.ts, which reads the file, loads only
 * when the flag is set, and re-exports everything here).
 *
 * @module
 */

/** Upstream's PrometheusExporter::kPrometheusPath. */
export const DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics";

/** The monitoring settings, defaults applied. */
export interface MonitoringConfig {
  /** Prometheus exposition on the REST port. */
  readonly prometheus: {
    /** Whether to serve metrics at all (default false). */
    readonly enable: boolean;
    /** The URL path to serve them at (default {@linkcode DEFAULT_PROMETHEUS_PATH}). */
    readonly path: string;
  };
}

/** The config without a `--monitoring_config_file`: Prometheus off. */
export function defaultMonitoringConfig(): MonitoringConfig {
  return { prometheus: { enable: false, path: DEFAULT_PROMETHEUS_PATH } };
}
