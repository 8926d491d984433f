/**
 * The REST transport: TF Serving's HTTP/REST API (`--rest_api_port`) on `Deno.serve`, as
 * upstream's `CreateAndStartHttpServer` (model_servers/http_server.cc) sets it up.
 *
 * - A `routes` hook sees every request first; a Response from it is sent as it is (health
 *   pages, the Prometheus path, `/`), so other code adds paths without touching this router.
 * - Paths under `/v1/` go to {@link RestApiHandler}. Any other path is
 *   `404 {"error": "Not Found: <METHOD> <path>"}` (upstream sends libevent's HTML 404 page).
 * - The request body is read whole. `Content-Type` is not looked at (upstream ignores it, and
 *   its own test client sends form-encoded JSON). A body with `Content-Encoding: gzip` is
 *   inflated, as upstream does; one that does not inflate is taken as empty. A body (after
 *   inflating) over `maxBodyBytes` is refused with `413 {"error": ...}` before it is parsed —
 *   upstream has no limit besides 100 MB for inflated bodies; the default here is 64 MiB.
 * - Requests are decoded and encoded on the event loop; inference runs inline when cheap, else
 *   on a worker (src/exec/). `timeoutMs` (`--rest_api_timeout_in_ms`) is the inference call's
 *   deadline: 504 at the deadline even while a worker runs it (see
 *   {@link RestApiHandlerOptions.timeoutMs}); a client that goes away drops its queued call.
 *
 * @module
 */
import type { LogFn } from "../../log.ts";
import type { ServingApi } from "../serving_api.ts";
import { REST_PATH, RestApiHandler, type RestReply } from "./handler.ts";
import { makeJsonFromStatus } from "./json_tensor.ts";

/** The default `maxBodyBytes`: 64 MiB. */
export const DEFAULT_MAX_BODY_BYTES: number = 64 * 1024 * 1024;

/**
 * A hook that may answer a request before the REST API does: return a Response to send it, or
 * undefined to let the REST API handle the request.
 */
export type RouteHook = (
  req: Request,
  url: URL,
) => Response | undefined | Promise<Response | undefined>;

/** Options of {@link startRestServer}. */
export interface RestServerOptions {
  /** The address to bind, e.g. `0.0.0.0`. */
  readonly host: string;
  /** The port (0: any free port). */
  readonly port: number;
  /** `--rest_api_timeout_in_ms` (0 or less: none). */
  readonly timeoutMs: number;
  /** `--rest_api_enable_cors_support`. */
  readonly enableCors: boolean;
  /** The largest request body accepted (after gzip inflation). Default 64 MiB. */
  readonly maxBodyBytes?: number;
  /** Where unexpected failures are logged. */
  readonly log?: LogFn;
  /** Paths answered before the REST API (see {@link RouteHook}). */
  readonly routes?: RouteHook;
}

/** A running REST server. */
export interface RestServer extends AsyncDisposable {
  /** The bound port. */
  readonly port: number;
  /**
   * Stops accepting connections and waits (up to `graceMs`, default 10 s) for the requests in
   * flight to be answered.
   */
  shutdown(graceMs?: number): Promise<void>;
}

class BodyTooLarge extends Error {}

const EMPTY = new Uint8Array(0);

async function readAll(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let k = 0;
  for (const c of chunks) {
    out.set(c, k);
    k += c.length;
  }
  return out;
}

/** The request body, inflated if gzip-encoded, refused if over `limit`. */
async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const length = req.headers.get("content-length");
  if (length !== null && Number(length) > limit) throw new BodyTooLarge();
  if (!req.body) return EMPTY;
  const encoding = req.headers.get("content-encoding");
  if (encoding !== null && encoding.includes("gzip")) {
    const compressed = await readAll(req.body, limit);
    try {
      const inflated = new Blob([compressed as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
        new DecompressionStream("gzip"),
      );
      return await readAll(inflated, limit);
    } catch (e) {
      if (e instanceof BodyTooLarge) throw e;
      return EMPTY; // upstream: a body that does not inflate reads as empty
    }
  }
  if (length !== null) return await req.bytes();
  return await readAll(req.body, limit);
}

/** The path and query of a request URL, as received (not normalized or decoded). */
function pathAndQuery(url: string): string {
  const scheme = url.indexOf("://");
  const slash = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  return slash < 0 ? "/" : url.slice(slash);
}

function toResponse(reply: RestReply): Response {
  return new Response(reply.body as BodyInit | null, {
    status: reply.status,
    headers: reply.headers as [string, string][],
  });
}

function jsonError(status: number, message: string, cors: boolean): Response {
  const headers: [string, string][] = [["Content-Type", "application/json"]];
  if (cors) {
    headers.push(
      ["Access-Control-Allow-Origin", "*"],
      ["Access-Control-Allow-Methods", "POST, GET"],
      ["Access-Control-Allow-Headers", "Content-Type"],
    );
  }
  return new Response(makeJsonFromStatus(message), { status, headers });
}

/**
 * Starts the REST API on `Deno.serve`.
 *
 * @param api the serving operations
 * @param options address, timeout, CORS, body limit and the route hook
 * @returns the running server
 * @throws Deno.errors.AddrInUse (or another bind error) when the port cannot be bound
 *
 * @example
 * ```ts
 * await using rest = await startRestServer(api, {
 *   host: "127.0.0.1", port: 8501, timeoutMs: 30_000, enableCors: false,
 *   routes: (_req, url) => url.pathname === "/healthz" ? new Response("ok") : undefined,
 * });
 * ```
 */
export function startRestServer(api: ServingApi, options: RestServerOptions): Promise<RestServer> {
  const handler = new RestApiHandler(api, {
    timeoutMs: options.timeoutMs,
    enableCors: options.enableCors,
  });
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const cors = options.enableCors;
  const log = options.log;
  const routes = options.routes;

  const serve = async (req: Request): Promise<Response> => {
    try {
      if (routes) {
        const r = await routes(req, new URL(req.url));
        if (r) return r;
      }
      const path = pathAndQuery(req.url);
      if (!REST_PATH.test(path)) return jsonError(404, `Not Found: ${req.method} ${path}`, false);
      let body: Uint8Array;
      try {
        body = await readBody(req, limit);
      } catch (e) {
        if (e instanceof BodyTooLarge) {
          return jsonError(413, `Request body is larger than the limit of ${limit} bytes`, cors);
        }
        throw e;
      }
      const reply = handler.handle(
        req.method,
        path,
        body,
        req.headers.get("origin"),
        () => req.signal,
      );
      return toResponse(reply instanceof Promise ? await reply : reply);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      log?.("error", `REST request ${req.method} ${req.url} failed: ${message}`);
      return jsonError(500, message, cors);
    }
  };

  const server = Deno.serve({
    hostname: options.host,
    port: options.port,
    onListen: () => {},
    onError: (e) => jsonError(500, e instanceof Error ? e.message : String(e), cors),
  }, serve);
  const port = (server.addr as Deno.NetAddr).port;

  let closing: Promise<void> | undefined;
  const shutdown = (graceMs = 10_000) =>
    closing ??= (async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([server.shutdown(), grace]);
      clearTimeout(timer);
    })();
  return Promise.resolve({ port, shutdown, [Symbol.asyncDispose]: () => shutdown() });
}
