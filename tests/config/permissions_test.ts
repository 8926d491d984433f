import assert from "node:assert/strict";
import { parseFlags } from "../../src/config/flags.ts";
import { permissionFlags, SERVER_ENV, serverScope } from "../../src/config/permissions.ts";

Deno.test("serverScope(): roots, named files, the socket, the ports; nothing else", () => {
  const opts = parseFlags([
    "--port=9000",
    "--rest_api_port=9001",
    "--model_config_file=conf/models.config",
    "--monitoring_config_file=/etc/tfs/monitoring.config",
    "--grpc_socket_path=/run/tfs.sock",
  ]);
  const scope = serverScope(opts, { cwd: "/w", roots: ["/models", "rel"] });
  assert.deepEqual(scope.read, [
    "/models",
    "/w/rel",
    "/w/conf/models.config",
    "/etc/tfs/monitoring.config",
    "/run/tfs.sock",
  ]);
  assert.deepEqual(scope.write, ["/run/tfs.sock"]);
  assert.deepEqual(scope.net, ["unix:/run/tfs.sock", "0.0.0.0:9000", "0.0.0.0:9001"]);
  for (const v of SERVER_ENV) assert.ok(scope.env.includes(v));
});

Deno.test("serverScope(): no REST port, no gRPC TCP port, no TCP grant", () => {
  const opts = parseFlags(["--port=0", "--grpc_socket_path=s.sock", "--model_base_path=/m"]);
  const scope = serverScope(opts, { cwd: "/w", roots: ["/m"] });
  assert.deepEqual(scope.net, ["unix:/w/s.sock"]);
  const none = parseFlags(["--port=1", "--model_base_path=/m"]);
  assert.deepEqual(serverScope(none, { cwd: "/w", roots: ["/m"] }).net, ["0.0.0.0:1"]);
});

Deno.test("permissionFlags(): scoped lists only, and --no-prompt", () => {
  const flags = permissionFlags({
    read: ["/a", "/b,c"],
    write: [],
    net: ["0.0.0.0:1"],
    env: ["X"],
  });
  // A path with a comma cannot be granted on its own: it is left out rather than split.
  assert.deepEqual(flags, [
    "--allow-read=/a",
    "--allow-net=0.0.0.0:1",
    "--allow-env=X",
    "--no-prompt",
  ]);
});
