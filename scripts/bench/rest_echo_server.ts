/**
 * The baselines of the REST benchmark: a bare `Deno.serve` that receives the same request bodies
 * as the model server and either echoes the parsed JSON back (`--mode=echo`: `JSON.parse` then
 * `JSON.stringify` of the whole body) or only parses it and answers a small JSON
 * (`--mode=parse`). Prints `ready <port>` once listening.
 *
 * ```sh
 * deno run --allow-net scripts/bench/rest_echo_server.ts --port=8601 --mode=echo
 * ```
 *
 * @module
 */

function arg(name: string, fallback: string): string {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
}

if (import.meta.main) {
  const mode = arg("mode", "echo");
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(arg("port", "0")),
    onListen: (addr) => console.log(`ready ${addr.port}`),
  }, async (req) => {
    const value = await req.json();
    if (mode === "parse") {
      return Response.json({ items: Array.isArray(value?.instances) ? value.instances.length : 0 });
    }
    return Response.json(value);
  });
  Deno.addSignalListener("SIGTERM", () => server.shutdown());
  await server.finished;
}
