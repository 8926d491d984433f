/**
 * Start-up (issue 10): what the launcher and the server load before they need it. Checked on the
 * static module graph (`deno info --json`, following static imports only): a module reached only
 * through a dynamic `import()` is loaded when that code runs.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface InfoModule {
  readonly specifier: string;
  readonly dependencies?: readonly {
    readonly code?: { readonly specifier: string };
    readonly isDynamic?: boolean;
  }[];
  readonly npmPackage?: string;
}

/** The specifiers `entry` loads before any of its code runs (its static import closure). */
async function staticClosure(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", `${ROOT}deno.json`, `${ROOT}${entry}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  const modules = new Map<string, InfoModule>(
    (info.modules as InfoModule[]).map((m) => [m.specifier, m]),
  );
  const seen = new Set<string>();
  const visit = (s: string) => {
    if (seen.has(s)) return;
    seen.add(s);
    for (const d of modules.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code) visit(d.code.specifier);
    }
  };
  visit(info.roots[0]);
  return seen;
}

const has = (set: Set<string>, tail: string) => [...set].some((s) => s.includes(tail));

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
