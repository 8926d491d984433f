/**
 * The server's Deno permissions, derived from its flags: what `launch.ts` grants the server
 * process it starts (`deno task serve`, `deno task start`), and what the server reports about
 * itself in test mode. Pure apart from {@linkcode permissionReport}, which queries
 * `Deno.permissions`.
 *
 * The scope:
 * - read: the model roots (`--allowed_model_roots`, else the base paths named at start), the
 *   files named by flags (`--model_config_file`, `--monitoring_config_file`, …), the UNIX socket,
 *   and the program's own `src/` (so `new Worker(...)` can load its module files);
 * - write: the UNIX socket only (plus `models/mnist` for `start`, which may train into it);
 * - net: listening on `0.0.0.0:<port>` and `0.0.0.0:<rest_api_port>`, nothing outbound;
 * - env: the variables the server's dependencies read ({@linkcode SERVER_ENV});
 * - no run, ffi, sys or import beyond the module graph.
 *
 * @module
 */
import type { ServerOptions } from "./flags.ts";
import { absolutePath } from "./model_roots.ts";

/**
 * Environment variables the server's dependencies read: none since the gRPC transport is the
 * project's own (grpc-js read its `GRPC_*` variables at load). The server's own switches are
 * {@linkcode PERMISSION_REPORT_ENV} and {@linkcode STOP_ON_STDIN_EOF_ENV}.
 */
export const SERVER_ENV: readonly string[] = [];

/** Set to 1 to make the server log its permission state at start (tests read the line). */
export const PERMISSION_REPORT_ENV = "TFS_PERMISSION_REPORT";

/**
 * Set to 1 by `launch.ts`: the server stops when its stdin (a pipe from the launcher) closes, so
 * it never outlives a launcher that was killed (SIGKILL cannot be forwarded).
 */
export const STOP_ON_STDIN_EOF_ENV = "TFS_STOP_ON_STDIN_EOF";

/** The prefix of the line {@linkcode permissionReport} is logged under. */
export const PERMISSION_REPORT_PREFIX = "Permission report: ";

/** Flags naming a file the server (or a part of it that may come) reads. */
export const FILE_FLAGS: readonly (keyof ServerOptions)[] = [
  "modelConfigFile",
  "monitoringConfigFile",
  "batchingParametersFile",
  "platformConfigFile",
  "sslConfigFile",
  "tensorflowSessionConfigFile",
  "threadPoolFactoryConfigFile",
];

/**
 * The V8 heap settings `launch.ts` starts the server with (and `deno task compile` builds into
 * the binary), chosen for a flat footprint under load (issue 10; README "Performance", memory):
 * V8's defaults let the young generation grow to 3 × 16 MiB semi-spaces and the old generation
 * fill with promoted per-request garbage to several times its live size before a full GC, which
 * took the server with half_plus_two from ~100 MiB idle to ~300 MiB after 10k calls. A 4 MiB
 * semi-space and a fixed 20 % old-generation growth step (V8 picks between 10 % and 300 %) keep it
 * near its live size at a throughput cost within the noise of the bench.
 */
export const SERVER_V8_FLAGS: readonly string[] = [
  "--max-semi-space-size=4",
  "--heap-growing-percent=20",
];

/** {@linkcode SERVER_V8_FLAGS} as one `deno run`/`deno compile` argument. */
export function v8FlagsArg(): string {
  return `--v8-flags=${SERVER_V8_FLAGS.join(",")}`;
}

/** The host the server listens on (as `startServer`'s default). */
export const LISTEN_HOST = "0.0.0.0";

/** Every variable the server process may read: {@linkcode SERVER_ENV} and its own switches. */
export function serverEnv(): string[] {
  return [...SERVER_ENV, PERMISSION_REPORT_ENV, STOP_ON_STDIN_EOF_ENV];
}

/** A set of Deno permissions, each a list of allowed values (empty = none). */
export interface PermissionScope {
  /** `--allow-read` paths. */
  readonly read: readonly string[];
  /** `--allow-write` paths. */
  readonly write: readonly string[];
  /** `--allow-net` host:port entries. */
  readonly net: readonly string[];
  /** `--allow-env` variable names. */
  readonly env: readonly string[];
}

/** What the scope is computed from, besides the flags. */
export interface ScopeInputs {
  /** The working directory relative paths are resolved against. */
  readonly cwd: string;
  /** The model roots (absolute); from `--allowed_model_roots` or the config at start. */
  readonly roots: readonly string[];
  /** Extra read paths (the program's `src/`, the MNIST data for `start`). */
  readonly extraRead?: readonly string[];
  /** Extra write paths (`models/mnist` for `start`). */
  readonly extraWrite?: readonly string[];
}

/**
 * The server's permission scope for parsed flags.
 *
 * @param opts the parsed flags
 * @param inputs roots, working directory and extras
 */
export function serverScope(opts: ServerOptions, inputs: ScopeInputs): PermissionScope {
  const abs = (p: string) => absolutePath(p, inputs.cwd);
  const read = new Set<string>(inputs.roots.map(abs));
  for (const f of FILE_FLAGS) {
    const v = opts[f];
    if (typeof v === "string" && v !== "") read.add(abs(v));
  }
  const write = new Set<string>((inputs.extraWrite ?? []).map(abs));
  if (opts.grpcSocketPath) {
    read.add(abs(opts.grpcSocketPath));
    write.add(abs(opts.grpcSocketPath));
  }
  for (const p of inputs.extraRead ?? []) read.add(abs(p));
  for (const p of write) read.add(p);
  const net: string[] = [];
  // Deno asks for net access to "unix:<path>" to listen on a UNIX socket (through node:net).
  if (opts.grpcSocketPath) net.push(`unix:${abs(opts.grpcSocketPath)}`);
  if (opts.port > 0) net.push(`${LISTEN_HOST}:${opts.port}`);
  if (opts.restApiPort > 0 && opts.restApiPort !== opts.port) {
    net.push(`${LISTEN_HOST}:${opts.restApiPort}`);
  }
  return { read: [...read], write: [...write], net, env: serverEnv() };
}

/**
 * The `deno run` flags granting a scope, plus `--no-prompt` (a denied access is an error, never
 * a question on a terminal). An empty list grants nothing (the flag is left out).
 */
export function permissionFlags(scope: PermissionScope): string[] {
  const flags: string[] = [];
  const add = (name: string, values: readonly string[]) => {
    // Deno splits the list on commas; a value holding one cannot be granted on its own.
    const ok = values.filter((v) => !v.includes(","));
    if (ok.length > 0) flags.push(`--allow-${name}=${ok.join(",")}`);
  };
  add("read", scope.read);
  add("write", scope.write);
  add("net", scope.net);
  add("env", scope.env);
  flags.push("--no-prompt");
  return flags;
}

/** One probe of {@linkcode permissionReport}: a descriptor and its state. */
export interface PermissionProbe {
  /** The descriptor, as written for `Deno.permissions.query`. */
  readonly descriptor: Deno.PermissionDescriptor;
  /** Its state: "granted", "prompt" or "denied". */
  readonly state: Deno.PermissionState;
}

/**
 * Queries the process's own permissions: every path and port of `scope` (expected granted) and
 * probes outside it (expected not granted): the file system root, `/etc`, `/proc/self`, any
 * outbound host, any variable, run, ffi, sys.
 *
 * @param scope the scope the process should have
 */
export async function permissionReport(scope: PermissionScope): Promise<PermissionProbe[]> {
  const descriptors: Deno.PermissionDescriptor[] = [
    ...scope.read.map((path): Deno.PermissionDescriptor => ({ name: "read", path })),
    ...scope.write.map((path): Deno.PermissionDescriptor => ({ name: "write", path })),
    ...scope.net.map((host): Deno.PermissionDescriptor => ({ name: "net", host })),
    ...scope.env.map((variable): Deno.PermissionDescriptor => ({ name: "env", variable })),
    { name: "read", path: "/" },
    { name: "read", path: "/etc/passwd" },
    { name: "read", path: "/proc/self/environ" },
    { name: "write", path: "/" },
    { name: "write", path: "/tmp" },
    { name: "net" },
    { name: "net", host: "example.com:443" },
    { name: "net", host: "127.0.0.1:22" },
    { name: "env" },
    { name: "env", variable: "HOME" },
    { name: "env", variable: "GRPC_TRACE" },
    { name: "run" },
    { name: "ffi" },
    { name: "sys" },
  ];
  const out: PermissionProbe[] = [];
  for (const descriptor of descriptors) {
    out.push({ descriptor, state: (await Deno.permissions.query(descriptor)).state });
  }
  return out;
}

/** The model root of the compiled binary: the Docker convention of the `tensorflow/serving` image. */
export const CONTAINER_MODEL_ROOT = "/models";

/** Where the compiled binary may read config files (model config, monitoring config). */
export const CONTAINER_CONFIG_DIR = "/config";

/** The ports the compiled binary may listen on (TF Serving's gRPC and REST conventions). */
export const CONTAINER_PORTS: readonly number[] = [8500, 8501];

/**
 * The permissions `deno task compile` bakes into `dist/tensorflow_model_server`. A compiled
 * binary cannot change them at run time, so they are fixed: read `/models` and `/config`, listen
 * on 8500 and 8501, the server's variables plus `MODEL_NAME`/`MODEL_BASE_PATH`.
 */
export function compiledScope(): PermissionScope {
  return {
    read: [CONTAINER_MODEL_ROOT, CONTAINER_CONFIG_DIR],
    write: [],
    net: CONTAINER_PORTS.map((p) => `${LISTEN_HOST}:${p}`),
    env: [...serverEnv(), "MODEL_NAME", "MODEL_BASE_PATH"],
  };
}
