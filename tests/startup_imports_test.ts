/**
 * Start-up (issue 10): what the launcher and the server load before they need it. Checked on the
 * static module graph (`deno info --json`, following static imports only): a module reached only
 * through a dynamic `import()` is loaded when that code runs.
 */
import assert from "node:assert/strict";
import { has, staticClosure } from "./import_graph.ts";

Deno.test("launch.ts loads neither the model config reader nor protobuf-es up front", async () => {
  const closure = await staticClosure("launch.ts");
  assert.ok(has(closure, "src/config/flags.ts"));
  assert.ok(!has(closure, "src/config/model_config.ts"), [...closure].join("\n"));
  assert.ok(!has(closure, "@bufbuild/protobuf"), [...closure].join("\n"));
  assert.ok(!has(closure, "@grpc/grpc-js"));
});

Deno.test("startServer loads the REST transport only when a REST port is served", async () => {
  const closure = await staticClosure("src/server.ts");
  for (const lazy of ["src/api/rest/server.ts", "src/api/rest/monitoring_routes.ts"]) {
    assert.ok(!has(closure, lazy), lazy);
  }
});

Deno.test("the server loads no node: module before its transports", async () => {
  // A `node:` module starts Deno's Node compatibility layer; the server's own code needs none
  // (file paths are joined as strings).
  const closure = await staticClosure("server_main.ts");
  const node = [...closure].filter((s) => s.startsWith("node:"));
  assert.deepEqual(node, []);
});

Deno.test("the gRPC transport loads neither grpc-js nor any node: module", async () => {
  // It serves HTTP/2 itself on Deno.listen; grpc-js (CommonJS through Deno's Node layer, about
  // 0.2 s to import) is for the clients only.
  const closure = await staticClosure("src/api/grpc/server.ts");
  assert.ok(!has(closure, "@grpc/grpc-js"), [...closure].join("\n"));
  assert.deepEqual([...closure].filter((s) => s.startsWith("node:")), []);
});

Deno.test("main.ts (what `deno task start` runs) does not load grpc-js up front", async () => {
  // `start` runs main.ts with least privilege and no GRPC_* variables: grpc-js reads them when
  // it loads, so loading it there would end the server at start.
  const closure = await staticClosure("main.ts");
  assert.ok(!has(closure, "@grpc/grpc-js"), closure.join("\n"));
  assert.ok(has(closure, "server_main.ts"));
});
