/**
 * The program: `tensorflow_model_server` in Deno, plus the basic tutorial's commands. With
 * `server_main.ts` (the server alone, what `deno task compile` builds) and `launch.ts` (the
 * least-privilege launcher), the only modules that touch Deno.args, Deno.exit and signals.
 *
 * - `main.ts [flags]`: the model server, with upstream's flags (`deno task serve`).
 * - `main.ts train [--training_iteration=N] [--model_version=N] EXPORT_BASE` (`deno task train`).
 * - `main.ts client --num_tests=N --server=host:port [--concurrency=N]` (`deno task client`).
 * - `main.ts start [flags]`: trains into models/mnist if it has no version, then serves it on
 *   8500 (gRPC) and 8501 (REST) (`deno task start`).
 *
 * @module
 */
import { serverLog } from "./src/log.ts";
import { fileSink, runTrain } from "./src/trainer/command.ts";
import { serve } from "./server_main.ts";

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
    case "client": {
      // Imported here: the client brings grpc-js, which `start` (the server under least
      // privilege, no GRPC_* variables granted) must not load.
      const { runClient } = await import("./src/client/mnist_client.ts");
      return await runClient(args.slice(1), {
        out: (t) => fileSink(Deno.stdout).write(t),
        err: (t) => fileSink(Deno.stderr).write(t),
      });
    }
    case "start":
      return await start(args.slice(1).filter((a) => a !== "--"));
    default:
      return await serve(args);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
