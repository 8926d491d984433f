/**
 * `--monitoring_config_file`: a MonitoringConfig in protobuf text format, e.g.
 *
 * ```
 * prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }
 * ```
 *
 * As upstream's http_server.cc: Prometheus metrics are served on the REST port only when
 * `enable` is true, at `path`, or at {@linkcode DEFAULT_PROMETHEUS_PATH} when `path` is empty.
 *
 * @module
 */

import { Code, ServingError } from "../errors.ts";
import {
  type MonitoringConfig as MonitoringConfigProto,
  MonitoringConfigSchema,
} from "../proto/gen/tensorflow_serving/config/monitoring_config_pb.ts";
import { parseTextProto, readTextProtoFile } from "./model_config.ts";
import { DEFAULT_PROMETHEUS_PATH, type MonitoringConfig } from "./monitoring_defaults.ts";

export {
  DEFAULT_PROMETHEUS_PATH,
  defaultMonitoringConfig,
  type MonitoringConfig,
} from "./monitoring_defaults.ts";

/**
 * Validates a MonitoringConfig message and applies the defaults.
 *
 * @param proto the message
 * @throws {ServingError} INVALID_ARGUMENT for a path that does not start with "/" (it could
 *   never match a request path)
 */
export function toMonitoringConfig(proto: MonitoringConfigProto): MonitoringConfig {
  const enable = proto.prometheusConfig?.enable ?? false;
  const path = proto.prometheusConfig?.path || DEFAULT_PROMETHEUS_PATH;
  if (!path.startsWith("/")) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot use prometheus_config.path "${path}": it must start with "/"`,
    );
  }
  return { prometheus: { enable, path } };
}

/**
 * Parses and validates the text of a MonitoringConfig.
 *
 * @param text the text-format contents
 * @param source the file name, for messages
 * @throws {ServingError} INVALID_ARGUMENT for bad syntax (with line:column) or a bad path
 */
export function parseMonitoringConfig(text: string, source?: string): MonitoringConfig {
  return toMonitoringConfig(parseTextProto(MonitoringConfigSchema, text, source));
}

/**
 * Reads and validates `--monitoring_config_file`.
 *
 * @param path the file
 * @throws {ServingError} NOT_FOUND / PERMISSION_DENIED if unreadable, INVALID_ARGUMENT if bad
 */
export async function readMonitoringConfigFile(path: string): Promise<MonitoringConfig> {
  return toMonitoringConfig(await readTextProtoFile(MonitoringConfigSchema, path));
}
