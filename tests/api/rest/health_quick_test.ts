/**
 * The probes' quick answers (no Request, URL or Response on the REST port's hot path) are what
 * the routes answer through a Request: the same status, header fields and body.
 */
import assert from "node:assert/strict";
import { healthRoutes } from "../../../src/api/rest/health.ts";
import { monitoringRoutes } from "../../../src/api/rest/monitoring_routes.ts";
import type { RouteFn } from "../../../src/api/rest/page/routes.ts";
import { defaultMonitoringConfig } from "../../../src/config/monitoring_config.ts";
import { createMonitoring } from "../../../src/monitoring/monitoring.ts";
import type { ModelsView } from "../../../src/monitoring/models_view.ts";

/** A core whose one model has no version yet (not ready) or an available one. */
function core(ready: boolean): ModelsView {
  return {
    models: [{ name: "m", basePath: "/models/m" }],
    status: () => ready ? [{ version: 1, state: "AVAILABLE" }] : [],
  } as unknown as ModelsView;
}

async function viaRequest(routes: RouteFn, method: string, path: string) {
  const url = new URL(`http://localhost${path}`);
  const res = routes(new Request(url, { method }), url)!;
  return { status: res.status, headers: [...res.headers], body: await res.text() };
}

function viaQuick(routes: RouteFn, method: string, path: string) {
  const r = routes.quick!(method, path)!;
  return { status: r.status, headers: r.headers.map(([k, v]) => [k, v]), body: r.body ?? "" };
}

Deno.test("probe quick answers equal the routes' Responses", async () => {
  for (const ready of [true, false]) {
    for (const serving of [true, false]) {
      const health = healthRoutes({ core: () => core(ready), serving: () => serving });
      const monitoring = monitoringRoutes({
        config: defaultMonitoringConfig(),
        metrics: createMonitoring({ core: () => core(ready) }).metrics,
        core: () => core(ready),
        serving: () => serving,
      });
      for (const routes of [health, monitoring]) {
        for (const method of ["GET", "HEAD"]) {
          for (const path of ["/healthz", "/readyz"]) {
            assert.deepEqual(
              viaQuick(routes, method, path),
              await viaRequest(routes, method, path),
              `${method} ${path} ready=${ready} serving=${serving}`,
            );
          }
        }
        // A method the probes refuse, and other paths, are left to the routes.
        assert.equal(routes.quick!("POST", "/healthz"), undefined);
        assert.equal(routes.quick!("GET", "/"), undefined);
      }
    }
  }
});

Deno.test("a Prometheus path over a probe's keeps the probe off the quick path", () => {
  const config = defaultMonitoringConfig();
  const routes = monitoringRoutes({
    config: { prometheus: { ...config.prometheus, enable: true, path: "/healthz" } },
    metrics: createMonitoring({ core: () => undefined }).metrics,
    core: () => undefined,
  });
  assert.equal(routes.quick!("GET", "/healthz"), undefined);
  assert.ok(routes.claims("/healthz"));
});
