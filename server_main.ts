/**
 * `tensorflow_model_server`: the model server alone, without the tutorial's trainer and client,
 * so its module graph is what `deno task compile` embeds (no tfjs, no MNIST data). `main.ts`
 * runs the same {@linkcode serve} for `main.ts [flags]`.
 *
 * In a container (the compiled binary, granted the variables `MODEL_NAME` and
 * `MODEL_BASE_PATH`), a command line naming no model serves `$MODEL_BASE_PATH/$MODEL_NAME` as
 * model `$MODEL_NAME`, like the `tensorflow/serving` image's entrypoint.
 *
 * @module
 */
import { parseFlags, usage, UsageError, versionText } from "./src/config/flags.ts";
import { ServingError } from "./src/errors.ts";
import { serverLog } from "./src/log.ts";
import { startServer } from "./src/server.ts";
import {
  PERMISSION_REPORT_ENV,
  PERMISSION_REPORT_PREFIX,
  permissionReport,
  serverScope,
  STOP_ON_STDIN_EOF_ENV,
} from "./src/config/permissions.ts";

/** Exit code for a bad command line. */
const USAGE_EXIT = 2;

/** The container variables, as the `tensorflow/serving` image names them. */
export const CONTAINER_ENV = ["MODEL_NAME", "MODEL_BASE_PATH"] as const;

/**
 * The flags a container's variables add: `--model_name=$MODEL_NAME` and
 * `--model_base_path=$MODEL_BASE_PATH/$MODEL_NAME` when the command line names no model and
 * `MODEL_BASE_PATH` is set (`MODEL_NAME` defaults to "model", as in the image).
 *
 * @param args the command line
 * @param env reads a variable (undefined when unset or not granted)
 */
export function containerModelFlags(
  args: readonly string[],
  env: (name: string) => string | undefined,
): string[] {
  const names = (f: string) => args.some((a) => a === `--${f}` || a.startsWith(`--${f}=`));
  if (names("model_base_path") || names("model_config_file")) return [];
  const base = env("MODEL_BASE_PATH");
  if (!base) return [];
  const name = env("MODEL_NAME") || "model";
  return [`--model_name=${name}`, `--model_base_path=${base.replace(/\/+$/, "")}/${name}`];
}

/** A variable's value if this process may read it. */
function readEnv(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name);
}

/**
 * Runs the model server until SIGINT/SIGTERM (or, under `launch.ts`, until the launcher is
 * gone); returns the exit code.
 *
 * @param args tensorflow_model_server's flags
 */
export async function serve(args: string[]): Promise<number> {
  let options;
  try {
    options = parseFlags([...containerModelFlags(args, readEnv), ...args]);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`Error: ${e.message}\n`);
      console.error(usage());
      return USAGE_EXIT;
    }
    throw e;
  }
  if (options.help) {
    console.log(usage());
    return 0;
  }
  if (options.version) {
    console.log(versionText());
    return 0;
  }

  // A root this process may not read (a compiled binary's permissions are fixed at build time)
  // would fail every load later with a less clear error.
  const unreadable = options.allowedModelRoots.filter((path) =>
    Deno.permissions.querySync({ name: "read", path }).state !== "granted"
  );
  if (unreadable.length > 0) {
    serverLog(
      "error",
      `Failed to start server. Error: --allowed_model_roots names ${unreadable.join(", ")}, ` +
        "which this process may not read: start it with deno task serve (which grants the " +
        "roots), or build the binary with read access to them",
    );
    return 1;
  }

  let server;
  try {
    server = await startServer(options);
  } catch (e) {
    serverLog("error", `Failed to start server. Error: ${ServingError.from(e).message}`);
    return 1;
  }

  // Test mode: log what this process may touch, as Deno sees it (tests/least_privilege_test.ts).
  if (envSwitch(PERMISSION_REPORT_ENV)) {
    const scope = serverScope(options, { cwd: Deno.cwd(), roots: options.allowedModelRoots });
    serverLog("info", PERMISSION_REPORT_PREFIX + JSON.stringify(await permissionReport(scope)));
  }

  const stopped = Promise.withResolvers<void>();
  const onSignal = (sig: string) => () => {
    serverLog("info", `Received ${sig}; finishing calls in flight`);
    stopped.resolve();
  };
  const signals: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal("SIGINT")],
    ["SIGTERM", onSignal("SIGTERM")],
  ];
  for (const [s, f] of signals) Deno.addSignalListener(s, f);
  if (envSwitch(STOP_ON_STDIN_EOF_ENV)) {
    // Started by launch.ts: its pipe closes when it exits, even when it was killed.
    (async () => {
      try {
        for await (const _ of Deno.stdin.readable) { /* nothing is sent */ }
      } catch { /* closed */ }
      serverLog("info", "The launcher is gone; finishing calls in flight");
      stopped.resolve();
    })();
  }
  await stopped.promise;
  for (const [s, f] of signals) Deno.removeSignalListener(s, f);
  await server.close();
  return 0;
}

/** Whether the variable `name` is readable and set to 1. */
function envSwitch(name: string): boolean {
  return readEnv(name) === "1";
}

if (import.meta.main) {
  Deno.exit(await serve(Deno.args));
}
