import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { checkFile, checkTree, importsOf, unitOf } from "../scripts/check_boundaries.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

Deno.test("checkTree() finds no import against the data flow in src/", async () => {
  assert.deepEqual(await checkTree(ROOT), []);
});

Deno.test("checkFile() flags an import against the flow and a peer import, not a downward one", () => {
  const src = "/r/src";
  const up = checkFile(src, "/r/src/kernels/x.ts", 'import { a } from "../api/rest/server.ts";');
  assert.deepEqual(up, [{
    file: "kernels/x.ts",
    specifier: "../api/rest/server.ts",
    from: "kernels",
    to: "api",
  }]);
  // api and client are peers: neither may import the other.
  assert.equal(checkFile(src, "/r/src/client/c.ts", 'import "../api/grpc/x.ts";').length, 1);
  assert.deepEqual(
    checkFile(src, "/r/src/api/grpc/s.ts", 'import type { T } from "../../tensor/tensor.ts";'),
    [],
  );
  // Dynamic imports and re-exports count; comments do not.
  assert.equal(checkFile(src, "/r/src/tensor/t.ts", 'await import("../runtime/m.ts");').length, 1);
  assert.equal(checkFile(src, "/r/src/tensor/t.ts", 'export { x } from "../core/m.ts";').length, 1);
  assert.deepEqual(importsOf('// import "../api/x.ts"\n/* from "../api/y.ts" */'), []);
});

Deno.test("unitOf() names the folder, or a file placed in a layer of its own", () => {
  assert.equal(unitOf("api/rest/server.ts"), "api");
  assert.equal(unitOf("saved_model/writer.ts"), "saved_model/writer.ts");
  assert.equal(unitOf("saved_model/reader.ts"), "saved_model");
  assert.equal(unitOf("errors.ts"), "errors.ts");
});
