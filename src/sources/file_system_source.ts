/**
 * FileSystemSource: polls each servable's base path for version directories, applies its version
 * policy (latest / all / specific) and emits the full aspired list of `{version, path}` per
 * servable on every poll. Mirrors
 * tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc, plus one guard of
 * its own: a version directory whose `saved_model.pb` is missing or still changing is not aspired
 * until it stops changing — or until `readyTimeoutSeconds` have passed since the directory was
 * first seen, so that a directory that will never hold a SavedModel (a symlink to `/etc`, a
 * stray folder) is handed to the loader, fails there with upstream's "Could not find SavedModel
 * .pb or .pbtxt" error, and is reported by GetModelStatus instead of being waited on forever.
 *
 * Knows nothing of loading: what the versions become is the receiver's business.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";

/**
 * `dir/name`, as upstream's `io::JoinPath` (no other normalisation). A plain join rather than
 * `node:path`, whose polyfill would be loaded at start-up only for this (issue 10).
 */
function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * Which versions found on disk to serve (FileSystemStoragePathSourceConfig.ServableVersionPolicy).
 * Without a policy: `{ kind: "latest", numVersions: 1 }`.
 */
export type VersionPolicy =
  /** The `numVersions` highest versions (at least 1; 0 or unset means 1). */
  | { readonly kind: "latest"; readonly numVersions?: number }
  /** Every version. */
  | { readonly kind: "all" }
  /** Exactly these versions, those that exist. */
  | { readonly kind: "specific"; readonly versions: readonly number[] };

/** One servable to watch (FileSystemStoragePathSourceConfig.ServableToMonitor). */
export interface ServableToMonitor {
  /** The servable (model) name emitted with its versions. */
  readonly name: string;
  /** The directory whose integer-named children are versions. */
  readonly basePath: string;
  /** Which versions to serve (default latest 1). */
  readonly policy?: VersionPolicy;
}

/** One aspired version: its number and its directory. */
export interface VersionPath {
  /** The version number. */
  readonly version: number;
  /** The version directory (`basePath/child`). */
  readonly path: string;
}

/** Receives the full aspired list of one servable; an empty list means unload every version. */
export type AspiredPathsCallback = (name: string, versions: VersionPath[]) => void;

/** Receives one log line (the same shape as core's LogFn). */
export type SourceLogFn = (level: "info" | "warning" | "error", message: string) => void;

/** Options of a FileSystemSource. */
export interface FileSystemSourceOptions {
  /** The servables to watch (default none; see `setConfig()`). */
  readonly servables?: readonly ServableToMonitor[];
  /**
   * Seconds between polls (default 1, TF Serving's server default). 0 polls once at `start()`
   * (and after each `setConfig()`); a negative value never polls by itself (`pollNow()` only).
   */
  readonly pollWaitSeconds?: number;
  /** Receives every servable's aspired list on every poll. */
  readonly onAspiredVersions: AspiredPathsCallback;
  /** Receives log lines (default: the console). */
  readonly log?: SourceLogFn;
  /**
   * Files that mark a version directory as written; the first one present is watched
   * (default `saved_model.pb`, then `saved_model.pbtxt`).
   */
  readonly readyFiles?: readonly string[];
  /**
   * How long a version directory may stay without a stable ready file before it is aspired
   * anyway (so the loader reports why it cannot load), in seconds. Default
   * {@link DEFAULT_READY_TIMEOUT_SECONDS}; 0 aspires every version directory as soon as it is
   * seen (upstream's behaviour). Checked at each poll: without periodic polls (`pollWaitSeconds`
   * ≤ 0) a directory lacking its ready file at the one poll is never aspired.
   */
  readonly readyTimeoutSeconds?: number;
  /** The clock, in milliseconds (tests). Default `performance.now`. */
  readonly now?: () => number;
}

/**
 * The default `readyTimeoutSeconds` (`--version_dir_ready_timeout_seconds`): a minute is long
 * enough for a copy that writes `saved_model.pb` after its variables, and short enough for an
 * operator to see a broken version directory reported soon after it appears.
 */
export const DEFAULT_READY_TIMEOUT_SECONDS = 60;

const DEFAULT_READY_FILES = ["saved_model.pb", "saved_model.pbtxt"];

/**
 * Parses a version directory name as `absl::SimpleAtoi` does for an int64: optional surrounding
 * ASCII whitespace, an optional sign, base-10 digits, leading zeros allowed (`00000123` is 123).
 * Negative numbers (not valid servable versions) and numbers beyond 2^53 - 1 (not exact in
 * JavaScript) are rejected too.
 *
 * @param name a child of the base path
 * @returns the version, or undefined if the name is not one
 */
export function parseVersion(name: string): number | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)[ \t\n\v\f\r]*$/.exec(name);
  if (!m) return undefined;
  const value = Number(m[2]);
  if (!Number.isSafeInteger(value)) return undefined;
  if (m[1] === "-" && value !== 0) return undefined;
  return value;
}

/**
 * Applies a version policy to the versions present (a pure function).
 *
 * @param policy the policy (undefined = latest 1)
 * @param available the versions present
 * @returns the versions to aspire: latest highest first, all and specific ascending
 */
export function selectVersions(
  policy: VersionPolicy | undefined,
  available: Iterable<number>,
): number[] {
  const sorted = [...new Set(available)].sort((a, b) => a - b);
  if (policy === undefined || policy.kind === "latest") {
    // Upstream: max(num_versions, 1), the proto default 0 meaning 1.
    const n = Math.max(Math.floor(policy?.numVersions ?? 1), 1);
    return sorted.reverse().slice(0, n);
  }
  if (policy.kind === "all") return sorted;
  const wanted = new Set(policy.versions);
  return sorted.filter((v) => wanted.has(v));
}

/** What the source remembers of one version directory between polls. */
interface DirState {
  /** The ready file's name, size and mtime at the last poll; undefined if it was missing. */
  signature: string | undefined;
  /** Deemed fully written; sticky while the directory exists. */
  complete: boolean;
  /** When the directory was first seen (the clock's milliseconds). */
  firstSeen: number;
  /** Aspired without a stable ready file because the ready timeout passed; sticky. */
  timedOut: boolean;
}

/** What the source remembers of one watched servable. */
interface Watch {
  config: ServableToMonitor;
  /** Polls attempted so far; on the first, existing version directories count as written. */
  polls: number;
  dirs: Map<string, DirState>;
  /** The warnings of the previous poll, so a standing problem is logged once, not every poll. */
  warned: Set<string>;
}

/**
 * Watches base paths for version directories and emits the aspired versions of each servable.
 *
 * A missing base path is logged and retried on the next poll; nothing is emitted for it (so its
 * loaded versions stay). A base path with no versions emits an empty list. A version directory is
 * aspired only once its ready file exists and its size and mtime are unchanged since the previous
 * poll — except on a servable's very first poll, where what exists is taken as written.
 *
 * @example
 * ```ts
 * const source = new FileSystemSource({
 *   servables: [{ name: "mnist", basePath: "/models/mnist", policy: { kind: "latest" } }],
 *   onAspiredVersions: (name, versions) => manager.setAspiredVersions(name, toLoaders(versions)),
 * });
 * source.start();
 * // ...
 * await source.stop();
 * ```
 */
export class FileSystemSource implements AsyncDisposable {
  readonly #pollWaitSeconds: number;
  readonly #emit: AspiredPathsCallback;
  readonly #log: SourceLogFn;
  readonly #readyFiles: readonly string[];
  readonly #readyTimeoutMs: number;
  readonly #now: () => number;
  #watches = new Map<string, Watch>();
  /** Serializes polls and config changes. */
  #queue: Promise<void> = Promise.resolve();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #started = false;
  #stopped = false;

  /** @param options the servables, poll period, callback and logging */
  constructor(options: FileSystemSourceOptions) {
    this.#pollWaitSeconds = options.pollWaitSeconds ?? 1;
    this.#emit = options.onAspiredVersions;
    this.#log = options.log ?? ((level, message) => {
      if (level === "info") console.log(message);
      else if (level === "warning") console.warn(message);
      else console.error(message);
    });
    this.#readyFiles = options.readyFiles ?? DEFAULT_READY_FILES;
    this.#readyTimeoutMs = Math.max(
      0,
      (options.readyTimeoutSeconds ?? DEFAULT_READY_TIMEOUT_SECONDS) * 1000,
    );
    this.#now = options.now ?? (() => performance.now());
    this.#watches = FileSystemSource.#makeWatches(options.servables ?? [], new Map());
  }

  /** The servables currently watched. */
  get servables(): ServableToMonitor[] {
    return [...this.#watches.values()].map((w) => w.config);
  }

  /**
   * Starts polling: polls at once, then every `pollWaitSeconds` after the previous poll ends
   * (once only if 0; never if negative). Idempotent.
   */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    if (this.#pollWaitSeconds >= 0) this.#pollAndSchedule();
  }

  /**
   * Replaces the watched servables. Servables no longer listed get an empty aspired list (so
   * they are unloaded); a servable whose base path changed starts afresh. Once started, polls
   * right away so new servables are picked up without waiting a period.
   *
   * @param servables the new set
   * @throws ServingError INVALID_ARGUMENT for a duplicate or empty name or an empty base path
   */
  async setConfig(servables: readonly ServableToMonitor[]): Promise<void> {
    const watches = FileSystemSource.#makeWatches(servables, this.#watches);
    await this.#enqueue(() => {
      const old = this.#watches;
      this.#watches = watches;
      for (const name of old.keys()) if (!watches.has(name)) this.#callback(name, []);
      return Promise.resolve();
    });
    if (this.#started && this.#pollWaitSeconds >= 0) await this.pollNow();
  }

  /** Polls every servable now (after any poll in progress) and emits; for tests and reloads. */
  pollNow(): Promise<void> {
    return this.#enqueue(() => this.#pollAll());
  }

  /** Stops polling and waits for a poll in progress. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#queue;
  }

  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  static #makeWatches(
    servables: readonly ServableToMonitor[],
    previous: ReadonlyMap<string, Watch>,
  ): Map<string, Watch> {
    const watches = new Map<string, Watch>();
    for (const config of servables) {
      if (!config.name) {
        throw new ServingError(Code.INVALID_ARGUMENT, "Cannot watch a servable without a name");
      }
      if (!config.basePath) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Cannot watch servable ${config.name}: its base path is empty`,
        );
      }
      if (watches.has(config.name)) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Illegal to list model ${config.name} multiple times in config list`,
        );
      }
      const old = previous.get(config.name);
      watches.set(
        config.name,
        old && old.config.basePath === config.basePath
          ? { ...old, config }
          : { config, polls: 0, dirs: new Map(), warned: new Set() },
      );
    }
    return watches;
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(() => this.#stopped ? undefined : task());
    // The queue itself never rejects, so one failure does not wedge later polls.
    this.#queue = run.catch((e) => {
      this.#log("error", `FileSystemStoragePathSource failed: ${ServingError.from(e).message}`);
    });
    return run;
  }

  #pollAndSchedule(): void {
    this.pollNow().catch(() => {}).finally(() => {
      if (this.#stopped || this.#pollWaitSeconds <= 0) return;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#pollAndSchedule();
      }, this.#pollWaitSeconds * 1000);
    });
  }

  async #pollAll(): Promise<void> {
    for (const watch of this.#watches.values()) {
      const versions = await this.#pollServable(watch);
      if (versions !== undefined && !this.#stopped) this.#callback(watch.config.name, versions);
    }
  }

  #callback(name: string, versions: VersionPath[]): void {
    try {
      this.#emit(name, versions);
    } catch (e) {
      this.#log(
        "error",
        `Aspired-versions callback failed for servable ${name}: ${ServingError.from(e).message}`,
      );
    }
  }

  /** One servable's poll: its aspired list, or undefined when its base path cannot be read. */
  async #pollServable(watch: Watch): Promise<VersionPath[] | undefined> {
    const { name, basePath, policy } = watch.config;
    const firstPoll = watch.polls++ === 0;
    const warnings: [level: "info" | "warning" | "error", message: string][] = [];
    const finish = <R>(result: R): R => {
      this.#logChanges(watch, warnings);
      return result;
    };

    // Never emit an empty list for a missing (or transiently unavailable) base path: that would
    // unload every version.
    try {
      await Deno.stat(basePath);
    } catch (e) {
      warnings.push([
        "error",
        "FileSystemStoragePathSource encountered a filesystem access error: Could not find base " +
        `path ${basePath} for servable ${name} with error ${fsErrorString(e)}`,
      ]);
      return finish(undefined);
    }
    const children: string[] = [];
    try {
      for await (const entry of Deno.readDir(basePath)) children.push(entry.name);
    } catch (e) {
      warnings.push([
        "error",
        `FileSystemStoragePathSource encountered a filesystem access error: ${fsErrorString(e)}`,
      ]);
      return finish(undefined);
    }

    // Every child named like a version is tracked, duplicates included ("1" and "00001"), so
    // that when one of them is deleted the other, already known to be written, takes over at
    // once and the version is never unaspired in between.
    children.sort();
    const byVersion = new Map<number, string[]>();
    for (const child of children) {
      const version = parseVersion(child);
      if (version === undefined) continue;
      const names = byVersion.get(version);
      if (names) names.push(child);
      else byVersion.set(version, [child]);
    }
    // Forget directories that are gone, so a re-created one is checked afresh.
    const current = new Set([...byVersion.values()].flat());
    for (const child of watch.dirs.keys()) if (!current.has(child)) watch.dirs.delete(child);

    if (policy?.kind === "specific" && policy.versions.length === 0) {
      warnings.push(["warning", `No specific versions requested for servable ${name}.`]);
      return finish([]);
    }

    // Only fully written directories are candidates, so latest{n} keeps serving the previous
    // version while a newer one is still being copied in. Among duplicates, as upstream's
    // IndexChildrenByVersion, the later name wins: here the last in sorted order of those that
    // are written, preferring one with a stable ready file to one aspired by the ready timeout.
    const complete = new Map<number, string>();
    for (const [version, names] of byVersion) {
      let stable: string | undefined;
      let timedOut: string | undefined;
      for (const child of names) {
        const path = join(basePath, child);
        if (await this.#isComplete(watch, child, path, firstPoll)) {
          if (watch.dirs.get(child)?.timedOut) {
            warnings.push([
              "warning",
              `Version ${version} of servable ${name} has no complete ${
                this.#readyFiles.join(" or ")
              } after ${this.#readyTimeoutMs / 1000} s; loading it anyway: ${path}`,
            ]);
            timedOut = child;
          } else stable = child;
        } else {
          warnings.push([
            "info",
            `Waiting for version ${version} of servable ${name} to be written: ${path}`,
          ]);
        }
      }
      const winner = stable ?? timedOut;
      if (winner === undefined) continue;
      complete.set(version, winner);
      for (const child of names) {
        if (child === winner) continue;
        warnings.push([
          "warning",
          `Duplicate version directories detected. Version ${version} will be loaded from ` +
          `${winner}, ${child} will be ignored.`,
        ]);
      }
    }
    const selected = selectVersions(policy, complete.keys());

    if (policy?.kind === "specific") {
      for (const version of new Set(policy.versions)) {
        if (!byVersion.has(version)) {
          warnings.push([
            "warning",
            `Version ${version} of servable ${name}, which was requested to be served as a ` +
            "'specific' version in the servable's version policy, was not found in the file " +
            "system",
          ]);
        }
      }
    }
    const found = policy?.kind === "specific"
      ? policy.versions.some((v) => byVersion.has(v))
      : byVersion.size > 0;
    if (!found) {
      warnings.push([
        "warning",
        `No versions of servable ${name} found under base path ${basePath}. Did you forget to ` +
        "name your leaf directory as a number (eg. '/1/')?",
      ]);
    }
    return finish(
      selected.map((version) => ({ version, path: join(basePath, complete.get(version)!) })),
    );
  }

  /** Whether a version directory is fully written (see the class comment). */
  async #isComplete(
    watch: Watch,
    child: string,
    path: string,
    firstPoll: boolean,
  ): Promise<boolean> {
    const previous = watch.dirs.get(child);
    if (previous?.complete) return true;
    const now = this.#now();
    const signature = await this.#signature(path);
    const firstSeen = previous?.firstSeen ?? now;
    const stable = signature !== undefined &&
      (firstPoll || (previous !== undefined && previous.signature === signature));
    // A directory being written gets its ready file and stops changing within the timeout; one
    // that does not is handed to the loader, whose error says what is wrong with it.
    const timedOut = !stable && now - firstSeen >= this.#readyTimeoutMs;
    const complete = stable || timedOut;
    watch.dirs.set(child, { signature, complete, firstSeen, timedOut });
    return complete;
  }

  /** The first ready file's name, size and mtime, or undefined if none is present. */
  async #signature(dir: string): Promise<string | undefined> {
    for (const file of this.#readyFiles) {
      try {
        const info = await Deno.stat(join(dir, file));
        if (info.isFile) return `${file}:${info.size}:${info.mtime?.getTime() ?? ""}`;
      } catch {
        // Not there (yet): try the next name.
      }
    }
    return undefined;
  }

  /** Logs this poll's warnings that the previous poll did not already log. */
  #logChanges(watch: Watch, warnings: [level: "info" | "warning" | "error", string][]): void {
    const now = new Set<string>();
    for (const [level, message] of warnings) {
      now.add(message);
      if (!watch.warned.has(message)) this.#log(level, message);
    }
    watch.warned = now;
  }
}

/** Formats a file-system error like a status string: `NOT_FOUND: …`. */
function fsErrorString(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  let code = "UNKNOWN";
  if (e instanceof Deno.errors.NotFound) code = "NOT_FOUND";
  else if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
    code = "PERMISSION_DENIED";
  } else if (e instanceof Deno.errors.NotADirectory) code = "FAILED_PRECONDITION";
  return `${code}: ${message}`;
}
