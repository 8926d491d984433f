/**
 * The baselines of the REST benchmark: a bare `Deno.serve` that receives the same request bodies
 * as the model server and either only reads them and answers a small fixed JSON (`--mode=read`,
 * the baseline of `deno task bench rest`), echoes the parsed JSON back (`--mode=echo`:
 * `JSON.parse` then `JSON.stringify` of the whole body) or only parses it and answers a small
 * JSON (`--mode=parse`). With `--server=http1`, `--mode=read` runs on the model server's own
 * HTTP/1.1 server (src/api/rest/http1.ts) instead: the same bare endpoint on a server that keeps
 * connections alive whatever the body size. Prints `ready <port>` once listening.
 *
 * ```sh
 * deno run --allow-net scripts/bench/rest_echo_server.ts --port=8601 --mode=echo
 * ```
 *
 * @module
 */
import { serveHttp1 } from "../../src/api/rest/http1.ts";

function arg(name: string, fallback: string): string {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
}

/** What `--mode=read` answers (the size of a batch-1 half_plus_two answer). */
export const READ_ANSWER = '{"predictions":[3.0]}';

if (import.meta.main && arg("server", "deno") === "http1") {
  const server = serveHttp1({
    hostname: "127.0.0.1",
    port: Number(arg("port", "0")),
    onError: (e) => new Response(String(e), { status: 500 }),
  }, () => new Response(READ_ANSWER, { headers: { "content-type": "application/json" } }));
  console.log(`ready ${server.addr.port}`);
  Deno.addSignalListener("SIGTERM", () => server.shutdown(0).then(() => Deno.exit(0)));
} else if (import.meta.main) {
  const mode = arg("mode", "echo");
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: Number(arg("port", "0")),
    onListen: (addr) => console.log(`ready ${addr.port}`),
  }, async (req) => {
    if (mode === "read") {
      await req.arrayBuffer();
      return new Response(READ_ANSWER, { headers: { "content-type": "application/json" } });
    }
    const value = await req.json();
    if (mode === "parse") {
      return Response.json({ items: Array.isArray(value?.instances) ? value.instances.length : 0 });
    }
    return Response.json(value);
  });
  Deno.addSignalListener("SIGTERM", () => server.shutdown());
  await server.finished;
}
