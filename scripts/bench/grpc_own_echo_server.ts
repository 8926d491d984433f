/**
 * The second baseline of the gRPC section: a bare echo on the server's own HTTP/2 transport
 * (src/api/grpc/h2/connection.ts on `Deno.listen`), as the REST section has a bare endpoint on
 * the own HTTP/1.1 server. Every call, whatever its path and body, is answered with the same
 * small pre-encoded PredictResponse (grpc_echo_server.ts's `fixedResponse`) once its request
 * has ended; nothing is decoded beyond HTTP/2 framing. What a real Predict costs beyond this is
 * the gRPC layer, decoding, inference and encoding.
 *
 * Usage: deno run -A scripts/bench/grpc_own_echo_server.ts [--host=127.0.0.1] [--port=0]
 *   [--exit-on-stdin-close]
 * Prints the bound port on a line of its own; serves until SIGTERM/SIGINT or stdin closes.
 *
 * @module
 */
import {
  DEFAULT_H2_LIMITS,
  H2Connection,
  type H2Handler,
} from "../../src/api/grpc/h2/connection.ts";
import { HpackEncoder } from "../../src/api/grpc/h2/hpack.ts";
import { fixedResponse } from "./grpc_echo_server.ts";

/**
 * Starts the echo.
 *
 * @param host the address to bind
 * @param port the port (0: any free one)
 * @returns the bound port and a stop function
 */
export function startOwnEchoServer(
  host = "127.0.0.1",
  port = 0,
): { port: number; stop(): void } {
  const hpack = new HpackEncoder();
  const headers = hpack.encode([":status", "200", "content-type", "application/grpc"]);
  const trailers = hpack.encode(["grpc-status", "0"]);
  const response = new Uint8Array(fixedResponse());
  const handler: H2Handler = {
    headers(stream, _fields, _oversize, endStream) {
      if (endStream) stream.connection.respondMessage(stream, headers, response, trailers);
    },
    data(stream, _chunk, endStream) {
      if (endStream) stream.connection.respondMessage(stream, headers, response, trailers);
    },
    reset() {},
  };
  const listener = Deno.listen({ hostname: host, port });
  (async () => {
    try {
      for await (const conn of listener) {
        conn.setNoDelay(true);
        new H2Connection(conn, handler, DEFAULT_H2_LIMITS, performance.now()).run();
      }
    } catch { /* closed */ }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, stop: () => listener.close() };
}

if (import.meta.main) {
  const flag = (name: string, fallback: string) =>
    Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
  const server = startOwnEchoServer(flag("host", "127.0.0.1"), Number(flag("port", "0")));
  console.log(server.port);
  const stop = () => {
    server.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  if (Deno.args.includes("--exit-on-stdin-close")) {
    (async () => {
      const buf = new Uint8Array(64);
      try {
        while ((await Deno.stdin.read(buf)) !== null) { /* ignore input */ }
      } catch { /* closed */ }
      stop();
    })();
  }
}
