/**
 * The program: `tensorflow_model_server` in Deno, plus the basic tutorial's commands. The only
 * module that touches Deno.args, Deno.exit and signals.
 *
 * - `main.ts [flags]`: the model server, with upstream's flags (`deno task serve`).
 * - `main.ts train [--training_iteration=N] [--model_version=N] EXPORT_BASE` (`deno task train`).
 * - `main.ts client --num_tests=N --server=host:port [--concurrency=N]` (`deno task client`).
 * - `main.ts start [flags]`: trains into models/mnist if it has no version, then serves it on
 *   8500 (gRPC) and 8501 (REST) (`deno task start`).
 *
 * @module
 */
import { parseFlags, usage, UsageError, versionText } from "./src/config/flags.ts";
import { ServingError } from "./src/errors.ts";
import { serverLog } from "./src/log.ts";
import { startServer } from "./src/server.ts";
import { fileSink, runTrain } from "./src/trainer/command.ts";
import { runClient } from "./src/client/mnist_client.ts";
import {
  PERMISSION_REPORT_ENV,
  PERMISSION_REPORT_PREFIX,
  permissionReport,
  serverScope,
  STOP_ON_STDIN_EOF_ENV,
} from "./src/config/permissions.ts";

/** Exit code for a bad command line. */
const USAGE_EXIT = 2;

/** The tutorial model's base path for `start`, under the working directory. */
const MNIST_BASE = "models/mnist";

/** True if `base` holds a version dir with a saved_model.pb. */
async function hasVersion(base: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(base)) {
      if (e.isDirectory && /^\d+$/.test(e.name)) {
        try {
          await Deno.stat(`${base}/${e.name}/saved_model.pb`);
          return true;
        } catch { /* not a complete version */ }
      }
    }
  } catch { /* no base dir yet */ }
  return false;
}

async function start(args: string[]): Promise<number> {
  const base = `${Deno.cwd()}/${MNIST_BASE}`;
  if (!(await hasVersion(base))) {
    serverLog("info", `No model in ${MNIST_BASE}: training one`);
    const code = await runTrain([base], fileSink(Deno.stdout), fileSink(Deno.stderr));
    if (code !== 0) return code;
  }
  return await serve([
    "--model_name=mnist",
    `--model_base_path=${base}`,
    "--rest_api_port=8501",
    ...args,
  ]);
}

async function main(args: string[]): Promise<number> {
  switch (args[0]) {
    case "train":
      return await runTrain(args.slice(1), fileSink(Deno.stdout), fileSink(Deno.stderr));
    case "client":
      return await runClient(args.slice(1), {
        out: (t) => fileSink(Deno.stdout).write(t),
        err: (t) => fileSink(Deno.stderr).write(t),
      });
    case "start":
      return await start(args.slice(1).filter((a) => a !== "--"));
    default:
      return await serve(args);
  }
}

async function serve(args: string[]): Promise<number> {
  let options;
  try {
    options = parseFlags(args);
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

  let server;
  try {
    server = await startServer(options);
  } catch (e) {
    serverLog("error", `Failed to start server. Error: ${ServingError.from(e).message}`);
    return 1;
  }

  // Test mode: log what this process may touch, as Deno sees it (tests/permissions_test.ts).
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
  return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted" &&
    Deno.env.get(name) === "1";
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
