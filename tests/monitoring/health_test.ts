import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { defaultMonitoringConfig } from "../../src/config/monitoring_config.ts";
import { healthRoutes } from "../../src/api/rest/health.ts";
import { createMonitoring } from "../../src/monitoring/monitoring.ts";
import { monitoringRoutes } from "../../src/api/rest/monitoring_routes.ts";
import type { ModelsView, VersionStatus } from "../../src/monitoring/models_view.ts";

/** A core whose versions the test moves through their states. */
class FakeCore implements ModelsView {
  readonly versions = new Map<string, VersionStatus[]>();
  constructor(names: string[]) {
    for (const n of names) this.versions.set(n, []);
  }
  get models() {
    return [...this.versions.keys()].map((name) => ({ name, basePath: `/models/${name}` }));
  }
  status(name: string): VersionStatus[] {
    return this.versions.get(name) ?? [];
  }
  set(name: string, ...versions: VersionStatus[]): void {
    this.versions.set(name, versions);
  }
}

function call(
  routes: (req: Request, url: URL) => Response | undefined,
  path: string,
  method = "GET",
): Response | undefined {
  const url = new URL(`http://localhost${path}`);
  return routes(new Request(url, { method }), url);
}

Deno.test("/healthz answers 200 {status: ok} while the process serves, and on HEAD", async () => {
  let serving = true;
  const routes = healthRoutes({ core: () => undefined, serving: () => serving });
  const res = call(routes, "/healthz")!;
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.deepEqual(await res.json(), { status: "ok" });
  const head = call(routes, "/healthz", "HEAD")!;
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  // Liveness stays up while draining, so Kubernetes does not restart a stopping server.
  serving = false;
  assert.equal(call(routes, "/healthz")!.status, 200);
});

Deno.test("/readyz flips from 503 to 200 as the model becomes available", async () => {
  const core = new FakeCore(["mnist"]);
  let started = false;
  const routes = healthRoutes({ core: () => (started ? core : undefined) });

  let res = call(routes, "/readyz")!;
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { status: "unavailable", reason: "The server is starting" });

  started = true;
  res = call(routes, "/readyz")!;
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), {
    status: "unavailable",
    reason: "1 model has no available version",
    models: [{ name: "mnist" }],
  });

  core.set("mnist", { version: 1, state: "LOADING" });
  res = call(routes, "/readyz")!;
  assert.equal(res.status, 503);
  assert.deepEqual((await res.json()).models, [{ name: "mnist", state: "LOADING", version: 1 }]);

  core.set("mnist", { version: 1, state: "AVAILABLE" });
  res = call(routes, "/readyz")!;
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "ok" });

  // A new version loading next to an available one keeps the model ready.
  core.set("mnist", { version: 2, state: "LOADING" }, { version: 1, state: "AVAILABLE" });
  assert.equal(call(routes, "/readyz")!.status, 200);
  const head = call(routes, "/readyz", "HEAD")!;
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
});

Deno.test("/readyz names every unready model and its last error", async () => {
  const core = new FakeCore(["good", "broken", "pending"]);
  core.set("good", { version: 1, state: "AVAILABLE" });
  core.set(
    "broken",
    {
      version: 2,
      state: "END",
      error: new ServingError(Code.NOT_FOUND, "Could not find SavedModel .pb or .pbtxt"),
    },
    { version: 1, state: "END", error: new ServingError(Code.INTERNAL, "older error") },
  );
  const routes = healthRoutes({ core: () => core });
  const res = call(routes, "/readyz")!;
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), {
    status: "unavailable",
    reason: "2 models have no available version",
    models: [
      {
        name: "broken",
        state: "END",
        version: 2,
        error: "Could not find SavedModel .pb or .pbtxt",
      },
      { name: "pending" },
    ],
  });
});

Deno.test("/readyz is 503 once shutdown began, and 200 with no models configured", async () => {
  let serving = true;
  const routes = healthRoutes({ core: () => new FakeCore([]), serving: () => serving });
  assert.equal(call(routes, "/readyz")!.status, 200);
  serving = false;
  const res = call(routes, "/readyz")!;
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), {
    status: "unavailable",
    reason: "The server is shutting down",
  });
});

Deno.test("the probes answer 405 to other methods and ignore other paths", async () => {
  const routes = healthRoutes({ core: () => undefined });
  const res = call(routes, "/readyz", "POST")!;
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("allow"), "GET, HEAD");
  assert.match((await res.json()).error, /POST is not allowed on \/readyz/);
  assert.equal(call(routes, "/v1/models/mnist"), undefined);
  assert.equal(call(routes, "/healthz/x"), undefined);
});

Deno.test({
  name: "the probes over HTTP through monitoringRoutes()",
  sanitizeResources: false,
  async fn() {
    const core = new FakeCore(["mnist"]);
    const { metrics } = createMonitoring({ core: () => core });
    const routes = monitoringRoutes({
      config: defaultMonitoringConfig(),
      metrics,
      core: () => core,
    });
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => routes(req, new URL(req.url)) ?? new Response("not found", { status: 404 }),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    let res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 503);
    assert.equal((await res.json()).models[0].name, "mnist");
    core.set("mnist", { version: 1, state: "AVAILABLE" });
    res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{"status":"ok"}');
    res = await fetch(`${base}/healthz`, { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "");
    // Prometheus is off by default: its path is left to the REST API.
    res = await fetch(`${base}/monitoring/prometheus/metrics`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  },
});
