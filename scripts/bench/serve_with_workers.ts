/**
 * The model server with a given number of inference workers (`--workers=N`, 0: everything
 * inline), other flags as `main.ts` takes them: lets the benchmarks compare the worker pool
 * with inline execution in the same run. Stops on SIGTERM or when stdin closes.
 *
 * @module
 */
import { parseFlags } from "../../src/config/flags.ts";
import { startServer } from "../../src/server.ts";

if (import.meta.main) {
  const workers = Deno.args.find((a) => a.startsWith("--workers="));
  const flags = Deno.args.filter((a) => a !== workers);
  const server = await startServer(parseFlags(flags), {
    inferenceWorkers: workers ? Number(workers.slice("--workers=".length)) : undefined,
  });
  const stopped = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", () => stopped.resolve());
  await stopped.promise;
  await server.close();
  Deno.exit(0);
}
