/**
 * `tensorflow_model_server` in Deno: parses upstream's flags, starts the server, and stops it
 * cleanly on SIGINT/SIGTERM. The only module that touches Deno.args, Deno.exit and signals.
 *
 * Usage: `deno task serve --model_name=half_plus_two --model_base_path=/models/half_plus_two`
 *
 * @module
 */
import { parseFlags, usage, UsageError, versionText } from "./src/config/flags.ts";
import { ServingError } from "./src/errors.ts";
import { serverLog } from "./src/log.ts";
import { startServer } from "./src/server.ts";

/** Exit code for a bad command line. */
const USAGE_EXIT = 2;

async function main(args: string[]): Promise<number> {
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
  await stopped.promise;
  for (const [s, f] of signals) Deno.removeSignalListener(s, f);
  await server.close();
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
