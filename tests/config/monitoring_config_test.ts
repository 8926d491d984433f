import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Code, ServingError } from "../../src/errors.ts";
import {
  DEFAULT_PROMETHEUS_PATH,
  defaultMonitoringConfig,
  parseMonitoringConfig,
  readMonitoringConfigFile,
} from "../../src/config/monitoring_config.ts";

/** A path in the shared TF Serving testdata (../shared/testdata/tf-serving beside the repo). */
function testdata(rel: string): string {
  return fileURLToPath(new URL(`../../../shared/testdata/tf-serving/${rel}`, import.meta.url));
}

Deno.test("readMonitoringConfigFile() reads upstream's monitoring_config.txt", async () => {
  assert.deepEqual(await readMonitoringConfigFile(testdata("monitoring_config.txt")), {
    prometheus: { enable: true, path: "/monitoring/prometheus/metrics" },
  });
});

Deno.test("readMonitoringConfigFile() reports a missing file as NOT_FOUND", async () => {
  await assert.rejects(readMonitoringConfigFile(testdata("no_such_monitoring.txt")), (e) => {
    assert.ok(e instanceof ServingError);
    assert.equal(e.code, Code.NOT_FOUND);
    return true;
  });
});

Deno.test("parseMonitoringConfig() applies upstream's defaults", () => {
  assert.equal(DEFAULT_PROMETHEUS_PATH, "/monitoring/prometheus/metrics");
  assert.deepEqual(defaultMonitoringConfig(), {
    prometheus: { enable: false, path: DEFAULT_PROMETHEUS_PATH },
  });
  assert.deepEqual(parseMonitoringConfig(""), defaultMonitoringConfig());
  assert.deepEqual(parseMonitoringConfig("prometheus_config { enable: true }"), {
    prometheus: { enable: true, path: DEFAULT_PROMETHEUS_PATH },
  });
  assert.deepEqual(parseMonitoringConfig('prometheus_config { path: "/metrics" }'), {
    prometheus: { enable: false, path: "/metrics" },
  });
});

Deno.test("parseMonitoringConfig() rejects bad text and a path without a leading slash", () => {
  assert.throws(
    () => parseMonitoringConfig("prometheus_config {\n  enable: maybe\n}", "mon.txt"),
    (e: unknown) => {
      assert.ok(e instanceof ServingError);
      assert.equal(e.code, Code.INVALID_ARGUMENT);
      assert.match(
        e.message,
        /^Invalid protobuf file: 'mon.txt': Error parsing text-format tensorflow.serving.MonitoringConfig: 2:11: /,
      );
      return true;
    },
  );
  assert.throws(
    () => parseMonitoringConfig('prometheus_config { enable: true path: "metrics" }'),
    (e: unknown) => {
      assert.ok(e instanceof ServingError);
      assert.equal(e.code, Code.INVALID_ARGUMENT);
      assert.equal(
        e.message,
        'Cannot use prometheus_config.path "metrics": it must start with "/"',
      );
      return true;
    },
  );
});
