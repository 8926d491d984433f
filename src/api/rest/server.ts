/**
 * The REST transport: TF Serving's HTTP/REST API (`--rest_api_port`), as upstream's
 * `CreateAndStartHttpServer` (model_servers/http_server.cc) sets it up, on this project's own
 * HTTP/1.1 server ({@link serveHttp1}) rather than `Deno.serve`, which has no header or body
 * read timeout, no connection limit, and resets pipelining connections.
 *
 * - A `routes` hook sees every request first; a Response from it is sent as it is (health
 *   pages, the Prometheus path, `/`), so other code adds paths without touching this router.
 * - Paths under `/v1/` go to {@link RestApiHandler}. Any other path is
 *   `404 {"error": "Not Found: <METHOD> <path>"}` (upstream sends libevent's HTML 404 page).
 * - The request body is read whole, within the limits of {@link RestServerLimits}: a body over
 *   `maxBodyBytes` is refused with `413 {"error": ...}` before it is read when its
 *   `Content-Length` says so, or as soon as a chunked body passes the limit. `Content-Type` is
 *   not looked at (upstream ignores it, and its own test client sends form-encoded JSON). A body
 *   with `Content-Encoding: gzip` is inflated, as upstream does, and refused with 413 once the
 *   inflated bytes pass `maxBodyBytes`; one that does not inflate is taken as empty. Upstream
 *   has no limit besides 100 MB for inflated bodies; the default here is 64 MiB.
 * - Slow or stuck clients are cut off: see {@link RestServerLimits} (header, body and idle
 *   timeouts, the number of connections, the body bytes held at once).
 * - Small requests are decoded and encoded on the event loop; a big Predict body (over 1 MiB)
 *   is decoded, and a big Predict response (over 65536 elements) encoded, on a JSON codec
 *   worker (codec.ts), so others are not held meanwhile. Inference runs inline when cheap, else
 *   on a worker (src/exec/). `timeoutMs` (`--rest_api_timeout_in_ms`) is the inference call's
 *   deadline: 504 at the deadline even while a worker runs it (see
 *   {@link RestApiHandlerOptions.timeoutMs}); a queued call whose connection closes is dropped.
 *
 * @module
 */
import type { LogFn } from "../../log.ts";
import type { ServingApi } from "../../model_server/serving_api.ts";
import { isRestPath, RestApiHandler, type RestReply } from "./handler.ts";
import { makeJsonFromStatus } from "./json_tensor.ts";
import type { RouteReply } from "./page/routes.ts";
import { type Http1Reply, type Http1Request, serveHttp1 } from "./http1.ts";

/** The default `maxBodyBytes`: 64 MiB. */
export const DEFAULT_MAX_BODY_BYTES: number = 64 * 1024 * 1024;

/**
 * A hook that may answer a request before the REST API does: return a Response to send it, or
 * undefined to let the REST API handle the request.
 */
export type RouteHook =
  & ((req: Request, url: URL) => Response | undefined | Promise<Response | undefined>)
  & {
    /**
     * Whether the hook may answer a path (a URL's `pathname`). When given, a request for a path
     * it does not claim goes to the REST API without the `Request` and `URL` the hook would
     * need (the Predict hot path never builds them).
     */
    readonly claims?: (pathname: string) => boolean;
    /**
     * The answer for a claimed path from the method and path alone, without a `Request`
     * (undefined: the hook is asked). It must be what the hook would answer.
     */
    readonly quick?: (method: string, pathname: string) => RouteReply | undefined;
  };

/**
 * Whether a path's URL `pathname` is itself (no percent-encoding, dot segments or characters the
 * URL parser rewrites): `/` then only `[A-Za-z0-9_:/-]`, so a hook's `claims` can be asked
 * without parsing a URL. A loop rather than a RegExp: it runs once per request.
 */
function isPlainPath(pathname: string): boolean {
  if (pathname.charCodeAt(0) !== 0x2f) return false;
  for (let i = 1; i < pathname.length; i++) {
    const c = pathname.charCodeAt(i);
    const letter = (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a;
    if (!letter && !(c >= 0x2d && c <= 0x3a) && c !== 0x5f) return false; // - . / 0-9 :
    if (c === 0x2e) return false; // "." is not in the class
  }
  return true;
}

/**
 * Connection limits (flags `--rest_api_*`, README "Limits"); 0 or less disables a timeout or a
 * count. A request refused by one is answered with a JSON error (408, 413, 431, 503) and its
 * connection closed.
 */
export interface RestServerLimits {
  /** The largest request body (after gzip inflation). Default 64 MiB. */
  readonly maxBodyBytes?: number;
  /** `--rest_api_max_connections`: connections open at once. Default 1000. */
  readonly maxConnections?: number;
  /** `--rest_api_header_timeout_ms`: first byte to end of headers. Default 10 s. */
  readonly headerTimeoutMs?: number;
  /** `--rest_api_body_timeout_ms`: end of headers to end of body. Default 60 s. */
  readonly bodyTimeoutMs?: number;
  /** `--rest_api_idle_timeout_ms`: a keep-alive connection without a request. Default 60 s. */
  readonly idleTimeoutMs?: number;
  /** `--rest_api_max_buffered_body_bytes`: body bytes held over all connections. 256 MiB. */
  readonly maxBufferedBodyBytes?: number;
}

/** Options of {@link startRestServer}. */
export interface RestServerOptions extends RestServerLimits {
  /** The address to bind, e.g. `0.0.0.0`. */
  readonly host: string;
  /** The port (0: any free port). */
  readonly port: number;
  /** `--rest_api_timeout_in_ms` (0 or less: none). */
  readonly timeoutMs: number;
  /** `--rest_api_enable_cors_support`. */
  readonly enableCors: boolean;
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

/** The inflated body does not fit in the bytes all connections may hold at once. */
class BudgetExceeded extends Error {}

const EMPTY = new Uint8Array(0);

async function readAll(
  stream: ReadableStream<Uint8Array>,
  limit: number,
  hold: (bytes: number) => boolean,
): Promise<Uint8Array> {
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
    if (!hold(value.length)) {
      await reader.cancel().catch(() => {});
      throw new BudgetExceeded();
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

/** The request body, inflated if gzip-encoded, refused if the inflated bytes pass `limit`. */
async function inflateBody(req: Http1Request, limit: number): Promise<Uint8Array> {
  const encoding = req.header("content-encoding");
  if (encoding === null || !encoding.includes("gzip") || req.body.length === 0) return req.body;
  try {
    const inflated = new Blob([req.body as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("gzip"),
    );
    // Held within the server's budget of body bytes (a gzip bomb from many clients stays bounded).
    return await readAll(inflated, limit, (n) => req.hold(n));
  } catch (e) {
    if (e instanceof BodyTooLarge || e instanceof BudgetExceeded) throw e;
    return EMPTY; // upstream: a body that does not inflate reads as empty
  }
}

/** The path and query of a request URL, as received (not normalized or decoded). */
function pathAndQuery(url: string): string {
  const scheme = url.indexOf("://");
  const slash = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  return slash < 0 ? "/" : url.slice(slash);
}

function jsonError(status: number, message: string, cors: boolean): RestReply {
  const headers: [string, string][] = [["Content-Type", "application/json"]];
  if (cors) {
    headers.push(
      ["Access-Control-Allow-Origin", "*"],
      ["Access-Control-Allow-Methods", "POST, GET"],
      ["Access-Control-Allow-Headers", "Content-Type"],
    );
  }
  return { status, headers, body: makeJsonFromStatus(message) };
}

/**
 * Starts the REST API on its own HTTP/1.1 server ({@link serveHttp1}).
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

  const serve = (req: Http1Request): Http1Reply | Response | Promise<Http1Reply | Response> => {
    // Origin form (`/v1/...`) as sent; the absolute form (`http://host/v1/...`) cut to it.
    const path = req.target.startsWith("/") ? req.target : pathAndQuery(req.target);
    if (routes === undefined) return restApi(req, path);
    const claims = routes.claims;
    if (claims === undefined) return route(req, path);
    const q = path.indexOf("?");
    const pathname = q < 0 ? path : path.slice(0, q);
    if (!isPlainPath(pathname)) return route(req, path);
    if (!claims(pathname)) return restApi(req, path);
    return routes.quick?.(req.method, pathname) ?? route(req, path);
  };

  /** The routes hook first, then the REST API. */
  const route = async (req: Http1Request, path: string): Promise<Http1Reply | Response> => {
    if (routes) {
      let url: URL;
      try {
        url = new URL(`http://${req.headers.get("host") || "localhost"}${path}`);
      } catch {
        try {
          url = new URL(`http://localhost${path}`);
        } catch {
          return jsonError(400, `Malformed request target: ${path}`, cors);
        }
      }
      const request = new Request(url, {
        method: req.method,
        headers: req.headers,
        body: req.method === "GET" || req.method === "HEAD" || req.body.length === 0
          ? undefined
          : req.body as Uint8Array<ArrayBuffer>,
      });
      const r = await routes(request, new URL(request.url));
      if (r) return r;
    }
    return restApi(req, path);
  };

  /** The REST API (paths under `/v1/`). */
  const restApi = (req: Http1Request, path: string): RestReply | Promise<RestReply> => {
    if (!isRestPath(path)) return jsonError(404, `Not Found: ${req.method} ${path}`, false);
    const encoding = req.header("content-encoding");
    if (encoding === null || !encoding.includes("gzip") || req.body.length === 0) {
      return handler.handle(req.method, path, req.body, req.header("origin"), () => req.signal);
    }
    return inflated(req, path);
  };

  /** The REST API for a gzip-encoded body. */
  const inflated = async (req: Http1Request, path: string): Promise<RestReply> => {
    let body: Uint8Array;
    try {
      body = await inflateBody(req, limit);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        return jsonError(413, `Request body is larger than the limit of ${limit} bytes`, cors);
      }
      if (e instanceof BudgetExceeded) {
        return jsonError(503, "Too many request bytes are being received; try again later", cors);
      }
      throw e;
    }
    return await handler.handle(req.method, path, body, req.header("origin"), () => req.signal);
  };

  let server: ReturnType<typeof serveHttp1>;
  try {
    server = serveHttp1({
      hostname: options.host,
      port: options.port,
      maxBodyBytes: limit,
      maxConnections: options.maxConnections,
      headerTimeoutMs: options.headerTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      maxBufferedBodyBytes: options.maxBufferedBodyBytes,
      onError: (e) => {
        const message = e instanceof Error ? e.message : String(e);
        log?.("error", `REST request failed: ${message}`);
        return jsonError(500, message, cors);
      },
      refusal: (status, message) => jsonError(status, message, cors),
    }, serve);
  } catch (e) {
    return Promise.reject(e); // a bind error, as a rejection like the rest of startup
  }
  const port = server.addr.port;

  let closing: Promise<void> | undefined;
  const shutdown = (graceMs = 10_000) =>
    closing ??= server.shutdown(graceMs).finally(() => handler.close());
  return Promise.resolve({ port, shutdown, [Symbol.asyncDispose]: () => shutdown() });
}
