/**
 * Kubernetes-style probes on the REST port, without authentication and with tiny JSON bodies:
 *
 * - `GET /healthz` (liveness): 200 `{"status":"ok"}` whenever the process answers at all —
 *   also while shutting down, so a draining server is not restarted.
 * - `GET /readyz` (readiness): 200 `{"status":"ok"}` when every configured model has an
 *   AVAILABLE version; otherwise 503 with the reason, e.g.
 *   `{"status":"unavailable","reason":"1 model has no available version","models":[{"name":
 *   "mnist","state":"END","version":1,"error":"…"}]}`. It is also 503 before the models are
 *   known and once shutdown began, so traffic drains first.
 *
 * Both answer `HEAD` (status only) and 405 for other methods. TF Serving has no such endpoints;
 * its gRPC health service and GET /v1/models/{name} are the upstream equivalents.
 *
 * @module
 */
import { type ModelsView, unreadyModels } from "../../monitoring/models_view.ts";
import type { RouteFn, RouteReply } from "./page/routes.ts";

/** The liveness path. */
export const HEALTHZ_PATH = "/healthz";
/** The readiness path. */
export const READYZ_PATH = "/readyz";

/** Options of {@linkcode healthRoutes}. */
export interface HealthOptions {
  /** The models; undefined while the server is starting. */
  readonly core: () => ModelsView | undefined;
  /** False once shutdown began (default: always serving). */
  readonly serving?: () => boolean;
}

/** A readiness verdict and its JSON body. */
export interface Readiness {
  /** Whether to answer 200. */
  readonly ready: boolean;
  /** The body: `{status: "ok"}` or `{status: "unavailable", reason, models?}`. */
  readonly body: Record<string, unknown>;
}

/**
 * Decides readiness.
 *
 * @param options the models and the serving flag
 * @returns the verdict and the JSON body explaining it
 */
export function readiness(options: HealthOptions): Readiness {
  if (options.serving && !options.serving()) {
    return {
      ready: false,
      body: { status: "unavailable", reason: "The server is shutting down" },
    };
  }
  const core = options.core();
  if (!core) {
    return { ready: false, body: { status: "unavailable", reason: "The server is starting" } };
  }
  const models = unreadyModels(core);
  if (models.length === 0) return { ready: true, body: { status: "ok" } };
  const n = models.length;
  return {
    ready: false,
    body: {
      status: "unavailable",
      reason: `${n} model${n === 1 ? " has" : "s have"} no available version`,
      models,
    },
  };
}

/**
 * A JSON response that never gets cached; `HEAD` gets the headers only.
 *
 * @param req the request (for its method)
 * @param status the HTTP status
 * @param body the JSON body
 * @param headers extra headers
 */
export function jsonResponse(
  req: Request,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(req.method === "HEAD" ? null : JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json",
      "cache-control": "no-store",
      ...headers,
    },
  });
}

/** 405 for a method other than GET or HEAD on a read-only path. */
export function methodNotAllowed(req: Request, path: string): Response {
  return jsonResponse(
    req,
    405,
    { error: `Method ${req.method} is not allowed on ${path}; use GET or HEAD` },
    { allow: "GET, HEAD" },
  );
}

/**
 * The probe routes, for the REST server's `routes` hook.
 *
 * @example
 * ```ts
 * const health = healthRoutes({ core: () => core, serving: () => !closing });
 * startRestServer(api, { port, routes: (req, url) => health(req, url) });
 * ```
 * @param options the models and the serving flag
 * @returns a handler answering `/healthz` and `/readyz`, undefined for other paths
 */
export function healthRoutes(options: HealthOptions): RouteFn {
  const routes = (req: Request, url: URL) => {
    const path = url.pathname;
    if (path !== HEALTHZ_PATH && path !== READYZ_PATH) return undefined;
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(req, path);
    if (path === HEALTHZ_PATH) return jsonResponse(req, 200, { status: "ok" });
    const r = readiness(options);
    return jsonResponse(req, r.ready ? 200 : 503, r.body);
  };
  // What jsonResponse answers, field for field (a Response lists its headers sorted).
  const quick = (method: string, pathname: string): RouteReply | undefined => {
    if (method !== "GET" && method !== "HEAD") return undefined; // 405: the route words it
    let status: number;
    let body: string;
    if (pathname === HEALTHZ_PATH) {
      status = 200;
      body = HEALTHZ_BODY;
    } else if (pathname === READYZ_PATH) {
      const r = readiness(options);
      status = r.ready ? 200 : 503;
      body = JSON.stringify(r.body);
    } else {
      return undefined;
    }
    return { status, headers: PROBE_HEADERS, body: method === "HEAD" ? null : body };
  };
  return Object.assign(routes, {
    claims: (pathname: string) => pathname === HEALTHZ_PATH || pathname === READYZ_PATH,
    quick,
  });
}

const HEALTHZ_BODY = JSON.stringify({ status: "ok" });
const PROBE_HEADERS = Object.freeze([
  Object.freeze(["cache-control", "no-store"] as const),
  Object.freeze(["content-type", "application/json"] as const),
]);
