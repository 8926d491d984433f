/**
 * `deno task compile`: builds `dist/tensorflow_model_server`, the model server as one
 * executable (`deno compile` of `server_main.ts`), with the permissions of
 * {@linkcode compiledScope} baked in and `--allowed_model_roots=/models` as its first flag.
 *
 * `deno compile` needs its runtime base, `denort`, which it downloads from dl.deno.land unless
 * `DENORT_BIN` names a local copy. Where that download is impossible (as on this project's build
 * machines) the task fails at once with instructions instead of waiting on the network.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import {
  compiledScope,
  CONTAINER_MODEL_ROOT,
  permissionFlags,
  v8FlagsArg,
} from "../src/config/permissions.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const OUTPUT = "dist/tensorflow_model_server";

/** The Rust target triple of this machine, as denort's release files are named. */
function target(): string {
  return Deno.build.target;
}

/** The `deno compile` arguments (after `deno`). */
export function compileArgs(workerModules: readonly string[]): string[] {
  return [
    "compile",
    "--config",
    `${ROOT}deno.json`,
    "--output",
    `${ROOT}${OUTPUT}`,
    // Only what server_main.ts reaches: no tfjs, no MNIST data, no playwright.
    "--exclude-unused-npm",
    // The binary may write nothing (and runs on a read-only root file system in deploy/k8s):
    // no V8 code cache to persist.
    "--no-code-cache",
    // The heap settings launch.ts gives the server (SERVER_V8_FLAGS says why).
    v8FlagsArg(),
    // Worker entry points are loaded by URL at run time; embed them explicitly.
    ...workerModules.flatMap((m) => ["--include", m]),
    ...permissionFlags(compiledScope()),
    `${ROOT}server_main.ts`,
    `--allowed_model_roots=${CONTAINER_MODEL_ROOT}`,
  ];
}

/** Worker entry points present in this checkout (the inference pool's, once it exists). */
function workerModules(): string[] {
  const out: string[] = [];
  for (const rel of ["src/exec/worker.ts", "src/api/rest/codec_worker.ts"]) {
    try {
      Deno.statSync(`${ROOT}${rel}`);
      out.push(`${ROOT}${rel}`);
    } catch { /* not in this checkout */ }
  }
  return out;
}

async function main(): Promise<number> {
  const version = Deno.version.deno;
  const zip = `https://dl.deno.land/release/v${version}/denort-${target()}.zip`;
  const denort = Deno.env.get("DENORT_BIN");
  if (!denort) {
    console.error(
      `deno task compile: deno compile needs its runtime base (denort ${version}), which it ` +
        `would download from\n  ${zip}\nand that download is not possible here. Fetch that ` +
        `zip where it is, unzip it, and run\n  DENORT_BIN=/path/to/denort deno task compile`,
    );
    return 1;
  }
  try {
    if (!Deno.statSync(denort).isFile) throw new Error("not a file");
  } catch (e) {
    console.error(
      `deno task compile: DENORT_BIN=${denort} is not a readable file (${(e as Error).message}); ` +
        `it must be the denort ${version} binary unzipped from ${zip}`,
    );
    return 1;
  }
  await Deno.mkdir(`${ROOT}dist`, { recursive: true });
  const args = compileArgs(workerModules());
  console.error(`deno ${args.join(" ")}`);
  const status = await new Deno.Command(Deno.execPath(), { args, env: { DENORT_BIN: denort } })
    .spawn().status;
  if (status.success) console.error(`Built ${OUTPUT}`);
  return status.code;
}

if (import.meta.main) {
  Deno.exit(await main());
}
