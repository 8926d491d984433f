/**
 * `deno task bench [section…]`: runs the benchmarks and prints markdown for the README's
 * performance section. Every figure is a ratio against a baseline measured in the same run.
 * Sections: runtime, grpc, tutorial, rest, memory, startup, pool, realmodels; `grpc`, `rest` and
 * `memory` load the server with `h2load` (Debian package `nghttp2-client`).
 *
 * @module
 */
import { benchGrpc } from "./bench/grpc.ts";
import { benchMemory } from "./bench/memory.ts";
import { benchPool } from "./bench/pool.ts";
import { benchRealModels } from "./bench/realmodels.ts";
import { benchRest } from "./bench/rest.ts";
import { benchStartup } from "./bench/startup.ts";
import { benchRuntime } from "./bench/runtime.ts";
import { benchTutorial } from "./bench/tutorial.ts";

const SECTIONS: Record<string, () => Promise<string>> = {
  runtime: benchRuntime,
  grpc: () => benchGrpc(),
  tutorial: () => benchTutorial(),
  rest: () => benchRest(),
  memory: () => benchMemory(),
  startup: () => benchStartup(),
  pool: () => benchPool(),
  realmodels: () => benchRealModels(),
};

if (import.meta.main) {
  const wanted = Deno.args.filter((a) => a !== "--");
  const names = wanted.length > 0 ? wanted : Object.keys(SECTIONS);
  for (const name of names) {
    const run = SECTIONS[name];
    if (!run) {
      console.error(`Unknown bench section "${name}" (known: ${Object.keys(SECTIONS).join(", ")})`);
      Deno.exit(2);
    }
    console.log(await run());
    console.log();
  }
}
