/**
 * Regenerates the TypeScript protobuf code in `src/proto/gen/` from the
 * `.proto` files in `protos/`. Run with `deno task proto`.
 *
 * The generator tools (`@bufbuild/buf`, which ships the `buf` binary inside its
 * npm package, and `@bufbuild/protoc-gen-es`) are installed with npm into a
 * cache directory outside the repository, so nothing here is a runtime
 * dependency: the generated code is committed and only needs
 * `@bufbuild/protobuf` (mapped in deno.json).
 *
 * Environment:
 *   PROTOGEN_DIR  where to install the tools
 *                 (default: $XDG_CACHE_HOME or ~/.cache, + /tfserving-protogen/<versions>)
 */

const BUF_VERSION = "1.75.0";
// Must match the @bufbuild/protobuf runtime version in deno.json.
const PROTOC_GEN_ES_VERSION = "2.17.0";

const repoRoot = new URL("../", import.meta.url).pathname;
const protoDir = "protos";
const outDir = "src/proto/gen";

function toolDir(): string {
  const explicit = Deno.env.get("PROTOGEN_DIR");
  if (explicit) return explicit;
  const cache = Deno.env.get("XDG_CACHE_HOME") ??
    `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${cache}/tfserving-protogen/buf-${BUF_VERSION}_es-${PROTOC_GEN_ES_VERSION}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const { code } = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) throw new Error(`${cmd} exited with code ${code}`);
}

async function ensureTools(dir: string): Promise<{ buf: string; plugin: string }> {
  const buf = `${dir}/node_modules/.bin/buf`;
  const plugin = `${dir}/node_modules/.bin/protoc-gen-es`;
  if (!(await exists(buf)) || !(await exists(plugin))) {
    await Deno.mkdir(dir, { recursive: true });
    if (!(await exists(`${dir}/package.json`))) {
      await Deno.writeTextFile(
        `${dir}/package.json`,
        JSON.stringify({ name: "tfserving-protogen", private: true }, null, 2) + "\n",
      );
    }
    await run("npm", [
      "install",
      "--no-audit",
      "--no-fund",
      "--save-exact",
      `@bufbuild/buf@${BUF_VERSION}`,
      `@bufbuild/protoc-gen-es@${PROTOC_GEN_ES_VERSION}`,
    ], dir);
  }
  return { buf, plugin };
}

async function main(): Promise<void> {
  const { buf, plugin } = await ensureTools(toolDir());

  // buf.gen.yaml (v2), passed inline. `clean` empties outDir first so that
  // deleted .proto files do not leave stale output behind.
  const template = {
    version: "v2",
    clean: true,
    plugins: [{
      local: plugin,
      out: outDir,
      opt: ["target=ts", "import_extension=ts"],
    }],
  };

  await run(buf, ["--version"], repoRoot);
  await run(buf, ["generate", protoDir, "--template", JSON.stringify(template)], repoRoot);

  let count = 0;
  for await (const _ of walk(`${repoRoot}${outDir}`)) count++;
  console.log(`generated ${count} files in ${outDir}/`);
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile) yield path;
  }
}

if (import.meta.main) {
  await main();
}
