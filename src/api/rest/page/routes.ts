/**
 * The live web page on the REST port: `GET /` serves the page, `GET /ui/…` its assets, and
 * `GET /ui/api/models` the JSON it polls — the models, their versions and states, and request
 * totals from the metrics. Everything is embedded; nothing is read from disk at run time.
 *
 * The page itself calls the REST API (`/v1/models/{name}/versions/{v}/metadata` and
 * `/v1/models/{name}:predict`) for the drawing pad.
 *
 * @module
 */
import type { ServingMetrics } from "../../../monitoring/serving_metrics.ts";
import type { ModelsView } from "../../../monitoring/models_view.ts";
import { jsonResponse, methodNotAllowed, readiness } from "../health.ts";
import { APP_JS } from "./app_js.ts";
import { FAVICON_SVG, INDEX_HTML } from "./index_html.ts";
import { STYLE_CSS } from "./style_css.ts";

/** Where the page's assets and JSON live. */
export const UI_PREFIX = "/ui/";

/** The JSON the page polls. */
export const UI_MODELS_PATH = "/ui/api/models";

/** A strict policy: only this origin's scripts, styles, images and fetches. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const ASSETS: ReadonlyMap<string, { body: string; type: string }> = new Map([
  ["/", { body: INDEX_HTML, type: "text/html; charset=utf-8" }],
  ["/ui/app.js", { body: APP_JS, type: "text/javascript; charset=utf-8" }],
  ["/ui/style.css", { body: STYLE_CSS, type: "text/css; charset=utf-8" }],
  ["/ui/favicon.svg", { body: FAVICON_SVG, type: "image/svg+xml" }],
]);

/** Options of {@linkcode pageRoutes}. */
export interface PageOptions {
  /** The models; undefined while the server is starting. */
  readonly core: () => ModelsView | undefined;
  /** The metrics, for request totals and load times. */
  readonly metrics: ServingMetrics;
  /** The Prometheus path when metrics are served, for a link on the page. */
  readonly metricsPath?: string;
  /** False once shutdown began. */
  readonly serving?: () => boolean;
}

/** One version in the page's JSON. */
export interface UiVersion {
  /** The version number. */
  readonly version: number;
  /** Its published state. */
  readonly state: string;
  /** Why it failed, if it did. */
  readonly error?: string;
  /** How long its last load took, in milliseconds. */
  readonly loadMs?: number;
}

/** One model in the page's JSON. */
export interface UiModel {
  /** The model name. */
  readonly name: string;
  /** Its base path, when configured. */
  readonly basePath?: string;
  /** Its versions, highest first. */
  readonly versions: readonly UiVersion[];
  /** Calls served, every API and transport. */
  readonly requests: number;
  /** Calls that failed. */
  readonly errors: number;
  /** Calls per API. */
  readonly byApi: Readonly<Record<string, number>>;
  /** Calls per transport (GRPC, REST). */
  readonly byEntrypoint: Readonly<Record<string, number>>;
  /** Mean call duration in milliseconds. */
  readonly meanMs?: number;
}

/** The page's JSON: `GET /ui/api/models`. */
export interface UiModels {
  /** Whether `/readyz` answers 200. */
  readonly ready: boolean;
  /** Why not, if not. */
  readonly reason?: string;
  /** The Prometheus path, or null when metrics are off. */
  readonly metricsPath: string | null;
  /** The models: configured ones first, in config order. */
  readonly models: readonly UiModel[];
}

/**
 * Builds the page's JSON.
 *
 * @param options the models and metrics
 * @returns what `GET /ui/api/models` answers
 */
export function uiModels(options: PageOptions): UiModels {
  const core = options.core();
  const stats = options.metrics.requestStats();
  const basePaths = new Map((core?.models ?? []).map((m) => [m.name, m.basePath]));
  const models: UiModel[] = options.metrics.modelNames().map((name) => {
    const s = stats.get(name);
    return {
      name,
      ...(basePaths.has(name) ? { basePath: basePaths.get(name) } : {}),
      versions: options.metrics.versionStates(name).map((v) => {
        const load = options.metrics.lastLoad(name, v.version);
        return {
          version: v.version,
          state: v.state,
          ...(v.error ? { error: v.error.message } : {}),
          ...(load ? { loadMs: Math.round(load.ms * 10) / 10 } : {}),
        };
      }),
      requests: s?.requests ?? 0,
      errors: s?.errors ?? 0,
      byApi: s?.byApi ?? {},
      byEntrypoint: s?.byEntrypoint ?? {},
      ...(s?.meanMs !== undefined ? { meanMs: s.meanMs } : {}),
    };
  });
  const r = readiness(options);
  return {
    ready: r.ready,
    ...(typeof r.body.reason === "string" ? { reason: r.body.reason } : {}),
    metricsPath: options.metricsPath ?? null,
    models,
  };
}

/**
 * The page routes, for the REST server's `routes` hook.
 *
 * @param options the models, metrics and metrics path
 * @returns a handler answering `/` and `/ui/…`, undefined for other paths
 */
export function pageRoutes(options: PageOptions): RouteFn {
  const routes = (req: Request, url: URL) => {
    const path = url.pathname;
    const asset = ASSETS.get(path);
    const isJson = path === UI_MODELS_PATH;
    if (!asset && !isJson) {
      return path.startsWith(UI_PREFIX)
        ? jsonResponse(req, 404, { error: "Not found" })
        : undefined;
    }
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(req, path);
    if (isJson) return jsonResponse(req, 200, uiModels(options));
    return new Response(req.method === "HEAD" ? null : asset!.body, {
      headers: {
        "content-type": asset!.type,
        // Small and embedded: revalidate every time rather than serve a stale page after upgrades.
        "cache-control": "no-cache",
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      },
    });
  };
  return Object.assign(routes, { claims: claimsPage });
}

/** A route function with the paths it answers. */
export type RouteFn = ((req: Request, url: URL) => Response | undefined) & {
  /** Whether it may answer `pathname`. */
  readonly claims: (pathname: string) => boolean;
  /**
   * The same answer without a Request, Response or URL, where the route can give it from the
   * method and path alone (undefined: ask the route itself).
   */
  readonly quick?: (method: string, pathname: string) => RouteReply | undefined;
};

/** An answer given without a Response object: what the Response would carry. */
export interface RouteReply {
  /** The status. */
  readonly status: number;
  /** Header fields, as a Response lists them (lower case, sorted). */
  readonly headers: readonly (readonly [string, string])[];
  /** The body (null: none). */
  readonly body: string | null;
}

/** The paths {@link pageRoutes} answers. */
function claimsPage(pathname: string): boolean {
  return ASSETS.has(pathname) || pathname === UI_MODELS_PATH || pathname.startsWith(UI_PREFIX);
}
