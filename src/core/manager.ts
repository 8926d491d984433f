/**
 * ServableManager: takes the aspired versions of each servable stream, loads and unloads them
 * through their Loaders following an aspired-version policy, and lends loaded servables out as
 * disposable handles. Mirrors tensorflow_serving/core/aspired_versions_manager.cc (aspired-version
 * bookkeeping), basic_manager.cc (load/unload execution, the serving map, handles) and
 * servable_state_monitor.cc (the published states that get_model_status reports).
 *
 * Knows nothing of TensorFlow or files: a servable is any `T`.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { LoaderHarness, statusString } from "./harness.ts";
import {
  consoleLog,
  type Loader,
  type LogFn,
  type ServableId,
  servableIdString,
} from "./loader.ts";
import {
  type AspiredServableStateSnapshot,
  type AspiredVersionPolicy,
  availabilityPreservingPolicy,
} from "./policy.ts";

/**
 * The published state of a servable version, as in get_model_status.proto's
 * ModelVersionStatus.State (START=10, LOADING=20, AVAILABLE=30, UNLOADING=40, END=50).
 */
export type ManagerState = "START" | "LOADING" | "AVAILABLE" | "UNLOADING" | "END";

/** One version's published state, as get_model_status reports it. */
export interface VersionStatus {
  /** The version number. */
  readonly version: number;
  /** Its latest published state. */
  readonly state: ManagerState;
  /** Set when the version ended with an error (state END): why it failed to load or unload. */
  readonly error?: ServingError;
}

/** A published state change (upstream's ServableState on the event bus). */
export interface ServableStateEvent {
  /** The servable version. */
  readonly id: ServableId;
  /** The state it reached. */
  readonly state: ManagerState;
  /** The error, if it ended with one. */
  readonly error?: ServingError;
}

/** One entry of an aspired-versions list: a version and the loader that can load it. */
export interface AspiredVersion<T> {
  /** The version number (a non-negative safe integer). */
  readonly version: number;
  /** Loads it; dropped unused if the version is already managed. */
  readonly loader: Loader<T>;
}

/** Options of a ServableManager. */
export interface ServableManagerOptions {
  /** Retries after a failed load before giving up (default 5, as TF Serving's server). */
  maxNumLoadRetries?: number;
  /** Wait between load retries in milliseconds (default 60000, as TF Serving's server). */
  loadRetryIntervalMs?: number;
  /** The aspired-version policy (default: availability preserving). */
  policy?: AspiredVersionPolicy;
  /** Receives one log line per transition, worded like TF Serving's (default: the console). */
  log?: LogFn;
  /** Called on every published state change, in order. */
  onStateChange?: (event: ServableStateEvent) => void;
}

/**
 * A loaded servable lent out by the manager. While any handle to a version is unreleased, that
 * version will not be unloaded. Release it with `using` or by calling `release()`.
 *
 * @typeParam T the servable
 *
 * @example
 * ```ts
 * {
 *   using handle = manager.acquire("mnist");
 *   await predict(handle.servable, request);
 * } // released here; a pending unload of this version may now proceed
 * ```
 */
export class ServableHandle<T> implements Disposable {
  /** The version lent out. */
  readonly id: ServableId;
  #servable: T;
  #release: (() => void) | undefined;

  /**
   * Made by `ServableManager.acquire()`; not meant to be constructed directly.
   *
   * @param id the version lent out
   * @param servable the loaded servable
   * @param release called once, when the handle is released
   */
  constructor(id: ServableId, servable: T, release: () => void) {
    this.id = id;
    this.#servable = servable;
    this.#release = release;
  }

  /** The servable stream name. */
  get name(): string {
    return this.id.name;
  }

  /** The version number. */
  get version(): number {
    return this.id.version;
  }

  /**
   * The loaded servable.
   *
   * @throws ServingError FAILED_PRECONDITION once the handle has been released
   */
  get servable(): T {
    if (this.#release === undefined) {
      throw new ServingError(
        Code.FAILED_PRECONDITION,
        `Cannot use servable ${servableIdString(this.id)}: its handle was released`,
      );
    }
    return this.#servable;
  }

  /** Whether `release()` has been called. */
  get released(): boolean {
    return this.#release === undefined;
  }

  /** Gives the version back; idempotent. */
  release(): void {
    const release = this.#release;
    if (release === undefined) return;
    this.#release = undefined;
    this.#servable = undefined as T;
    release();
  }

  /** Same as `release()`, for `using`. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/** One managed version: its harness, whether it is aspired, and the handles in flight. */
interface Entry<T> {
  readonly harness: LoaderHarness<T>;
  aspired: boolean;
  refs: number;
  /** Set while an unload waits for `refs` to reach zero. */
  drained?: () => void;
}

/** Harness states a non-aspired version can be forgotten in (upstream's FlushServables). */
const FLUSHABLE = new Set(["new", "disabled", "error"]);

/**
 * Manages the versions of servable streams: `setAspiredVersions()` says which versions should be
 * loaded; the manager loads new ones and unloads the rest following its policy, and `acquire()`
 * lends loaded versions out.
 *
 * Loads of different versions run concurrently; each harness transition is guarded. A version
 * that fails to load (after the retries) is reported END with its error and stays so while it
 * remains aspired; other versions keep serving.
 *
 * @typeParam T the servable
 *
 * @example
 * ```ts
 * const manager = new ServableManager<Model>({ log: myLog });
 * manager.setAspiredVersions("mnist", [{ version: 1, loader: modelLoader("/models/mnist/1") }]);
 * await manager.settled();
 * using handle = manager.acquire("mnist"); // the highest available version
 * ```
 */
export class ServableManager<T> implements AsyncDisposable {
  readonly #maxNumLoadRetries: number;
  readonly #loadRetryIntervalMs: number;
  readonly #policy: AspiredVersionPolicy;
  readonly #log: LogFn;
  readonly #onStateChange?: (event: ServableStateEvent) => void;
  /** The managed versions of each stream. */
  readonly #streams = new Map<string, Map<number, Entry<T>>>();
  /** The latest published state of every version ever managed (the state monitor). */
  readonly #states = new Map<string, Map<number, { state: ManagerState; error?: ServingError }>>();
  /** Aspired-versions requests not yet applied, newest per stream. */
  readonly #pending = new Map<string, AspiredVersion<T>[]>();
  /** Loads and unloads in progress; they never reject. */
  readonly #ops = new Set<Promise<void>>();
  #managing = false;
  #dirty = false;
  #stopped = false;
  #stopping: Promise<void> | undefined;

  /** @param options retries, policy, logging and the state hook */
  constructor(options: ServableManagerOptions = {}) {
    this.#maxNumLoadRetries = options.maxNumLoadRetries ?? 5;
    this.#loadRetryIntervalMs = options.loadRetryIntervalMs ?? 60_000;
    this.#policy = options.policy ?? availabilityPreservingPolicy;
    this.#log = options.log ?? consoleLog;
    this.#onStateChange = options.onStateChange;
  }

  /**
   * Replaces the aspired versions of one servable stream. Versions not listed stop being aspired
   * and are unloaded as the policy allows (by default only once an aspired version is available);
   * listed versions not yet managed start loading. Versions already managed keep their state (and
   * their original loader); repeating the same list is a no-op. An empty list unloads the stream.
   *
   * A request that re-aspires a version still being unloaded waits until that unload finishes.
   * Ignored after `stop()`.
   *
   * @param name the servable stream
   * @param versions the full aspired set
   * @throws ServingError INVALID_ARGUMENT for a version that is not a non-negative integer or is
   *   listed twice
   */
  setAspiredVersions(name: string, versions: readonly AspiredVersion<T>[]): void {
    const seen = new Set<number>();
    for (const { version } of versions) {
      if (!Number.isSafeInteger(version) || version < 0) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Cannot set aspired versions of servable ${name}: version ${version} is not a ` +
            "non-negative integer",
        );
      }
      if (seen.has(version)) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Cannot set aspired versions of servable ${name}: version ${version} is listed twice`,
        );
      }
      seen.add(version);
    }
    if (this.#stopped) return;
    this.#pending.set(name, [...versions]);
    this.#manageState();
  }

  /**
   * Lends out a loaded version: `version`, or without it the highest available one. The version
   * is not unloaded until the handle is released.
   *
   * @param name the servable stream
   * @param version a specific version, or undefined for the latest
   * @returns a handle to release (`using handle = manager.acquire(...)`)
   * @throws ServingError NOT_FOUND `Servable not found for request: Latest(foo)` or
   *   `Servable not found for request: Specific(foo, 3)` (TF Serving's wording, whether or not
   *   the name is known)
   */
  acquire(name: string, version?: number): ServableHandle<T> {
    const stream = this.#streams.get(name);
    let entry: Entry<T> | undefined;
    if (version === undefined) {
      for (const e of stream?.values() ?? []) {
        if (
          e.harness.state === "ready" &&
          (entry === undefined || e.harness.id.version > entry.harness.id.version)
        ) {
          entry = e;
        }
      }
    } else {
      const e = stream?.get(version);
      if (e?.harness.state === "ready") entry = e;
    }
    if (entry === undefined) {
      const request = version === undefined ? `Latest(${name})` : `Specific(${name}, ${version})`;
      throw new ServingError(Code.NOT_FOUND, `Servable not found for request: ${request}`);
    }
    const pinned = entry;
    ++pinned.refs;
    return new ServableHandle(pinned.harness.id, pinned.harness.servable as T, () => {
      if (--pinned.refs === 0 && pinned.drained) {
        const drained = pinned.drained;
        pinned.drained = undefined;
        drained();
      }
    });
  }

  /**
   * The published state of every version of a stream the manager has managed, highest version
   * first, including versions that ended (END, with `error` when they failed). Empty for an
   * unknown name.
   *
   * @param name the servable stream
   * @returns the versions' states
   */
  status(name: string): VersionStatus[] {
    const versions = this.#states.get(name);
    if (!versions) return [];
    return [...versions].sort((a, b) => b[0] - a[0]).map(([version, s]) =>
      s.error ? { version, state: s.state, error: s.error } : { version, state: s.state }
    );
  }

  /** Every servable stream the manager has been given versions of, sorted. */
  names(): string[] {
    return [...this.#states.keys()].sort();
  }

  /**
   * The versions of a stream that can be acquired now, ascending.
   *
   * @param name the servable stream
   * @returns the available version numbers
   */
  availableVersions(name: string): number[] {
    const out: number[] = [];
    for (const e of this.#streams.get(name)?.values() ?? []) {
      if (e.harness.state === "ready") out.push(e.harness.id.version);
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * Resolves once no load or unload is in progress (including retry waits and unloads waiting for
   * handles). For tests and orderly shutdown.
   */
  async settled(): Promise<void> {
    while (this.#ops.size > 0) await Promise.all(this.#ops);
  }

  /** Alias of `settled()`. */
  whenIdle(): Promise<void> {
    return this.settled();
  }

  /**
   * Stops taking aspired versions, cancels load retries, waits for loads and unloads in progress,
   * then unloads every loaded version once its handles are released. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(): Promise<void> {
    this.#stopped = true;
    this.#pending.clear();
    for (const stream of this.#streams.values()) {
      for (const e of stream.values()) e.harness.cancelLoadRetry();
    }
    await this.settled();
    this.#log("info", "Unload all remaining servables in the manager.");
    for (const stream of this.#streams.values()) {
      for (const e of stream.values()) if (e.harness.state === "ready") this.#unload(e);
    }
    await this.settled();
  }

  /**
   * Brings the managed versions towards the aspired ones: forgets finished non-aspired versions,
   * applies pending requests, then performs policy actions until none is left (unloads first).
   * Synchronous, so transitions are decided one at a time; re-entrant calls are folded in.
   */
  #manageState(): void {
    if (this.#stopped) return;
    if (this.#managing) {
      this.#dirty = true;
      return;
    }
    this.#managing = true;
    try {
      do {
        this.#dirty = false;
        this.#flush();
        this.#handlePending();
        for (let action = this.#nextAction(); action; action = this.#nextAction()) {
          if (!this.#perform(action.name, action.action, action.version)) break;
        }
      } while (this.#dirty && !this.#stopped);
    } finally {
      this.#managing = false;
    }
  }

  /** Forgets non-aspired versions that never started or have ended (their states stay). */
  #flush(): void {
    for (const [name, stream] of this.#streams) {
      for (const [version, e] of stream) {
        if (!e.aspired && FLUSHABLE.has(e.harness.state)) stream.delete(version);
      }
      if (stream.size === 0) this.#streams.delete(name);
    }
  }

  /**
   * Applies pending requests, except those re-aspiring a version on its way out (loading after
   * cancellation, quiescing or unloading): those wait until it is unloaded and forgotten, as
   * upstream. Unlike upstream, a non-aspired version that is still `ready` (kept serving because
   * its replacement failed) is simply taken back; upstream would postpone the request until that
   * version unloads, which the availability-preserving policy may never do.
   */
  #handlePending(): void {
    for (const [name, versions] of this.#pending) {
      const stream = this.#streams.get(name);
      const reaspired = stream !== undefined && versions.some((v) => {
        const e = stream.get(v.version);
        return e !== undefined && !e.aspired && e.harness.state !== "ready";
      });
      if (reaspired) continue; // Retried once the version is unloaded and flushed.
      this.#pending.delete(name);
      this.#processAspiredVersions(name, versions);
    }
  }

  #processAspiredVersions(name: string, versions: readonly AspiredVersion<T>[]): void {
    const next = new Set(versions.map((v) => v.version));
    let stream = this.#streams.get(name);
    const current = new Set<number>();
    for (const [version, e] of stream ?? []) {
      if (e.aspired) current.add(version);
      if (!next.has(version)) {
        e.aspired = false;
        e.harness.cancelLoadRetry();
      }
    }
    for (const { version, loader } of versions) {
      if (current.has(version)) continue;
      const existing = stream?.get(version);
      if (existing) {
        // A non-aspired version still ready (see #handlePending): keep it, drop the new loader.
        existing.aspired = true;
        continue;
      }
      if (!stream) this.#streams.set(name, stream = new Map());
      const harness = new LoaderHarness<T>({ name, version }, loader, {
        maxNumLoadRetries: this.#maxNumLoadRetries,
        loadRetryIntervalMs: this.#loadRetryIntervalMs,
        log: this.#log,
        onError: (id, error) => this.#publish(id, "END", error),
      });
      stream.set(version, { harness, aspired: true, refs: 0 });
      this.#publish(harness.id, "START");
    }
  }

  /** Asks the policy of every stream; an unload anywhere goes before any load. */
  #nextAction(): { name: string; action: "load" | "unload"; version: number } | undefined {
    let load: { name: string; action: "load"; version: number } | undefined;
    for (const [name, stream] of this.#streams) {
      const snapshots: AspiredServableStateSnapshot[] = [];
      for (const e of stream.values()) {
        snapshots.push({
          version: e.harness.id.version,
          state: e.harness.state,
          isAspired: e.aspired,
        });
      }
      const action = this.#policy(snapshots);
      if (action?.action === "unload") return { name, ...action };
      if (action && !load) load = { name, action: "load", version: action.version };
    }
    return load;
  }

  /** Starts one action; false if it could not (a policy asking the impossible). */
  #perform(name: string, action: "load" | "unload", version: number): boolean {
    const entry = this.#streams.get(name)?.get(version);
    const id = servableIdString({ name, version });
    const needed = action === "load" ? "new" : "ready";
    if (!entry || entry.harness.state !== needed) {
      this.#log(
        "error",
        `Servable ${id} cannot be ${action}ed: ` +
          (entry ? `it is in state ${entry.harness.state}` : "it is not being managed"),
      );
      return false;
    }
    if (action === "load") this.#load(entry);
    else this.#unload(entry);
    return true;
  }

  #load(entry: Entry<T>): void {
    const harness = entry.harness;
    this.#publish(harness.id, "LOADING");
    // load() moves the harness to "loading" synchronously, so the policy will not ask again.
    this.#track(
      harness.load().then(
        () => this.#publish(harness.id, "AVAILABLE"),
        (e) => {
          this.#log(
            "error",
            `Servable ${servableIdString(harness.id)} cannot be loaded: ${
              statusString(ServingError.from(e))
            }`,
          );
        },
      ),
    );
  }

  #unload(entry: Entry<T>): void {
    const harness = entry.harness;
    // Quiescing first: from here on acquire() no longer lends this version out.
    harness.startQuiescing();
    this.#publish(harness.id, "UNLOADING");
    this.#track(
      (async () => {
        if (entry.refs > 0) await new Promise<void>((resolve) => entry.drained = resolve);
        await harness.unload();
        if (harness.state === "disabled") this.#publish(harness.id, "END");
      })().catch((e) => {
        this.#log(
          "error",
          `Servable ${servableIdString(harness.id)} cannot be unloaded: ${
            statusString(ServingError.from(e))
          }`,
        );
      }),
    );
  }

  /** Records an operation until it settles, then re-runs the state management. */
  #track(operation: Promise<void>): void {
    const op: Promise<void> = operation.finally(() => {
      this.#ops.delete(op);
      try {
        this.#manageState();
      } catch (e) {
        // Only a throwing custom policy gets here; keep the operation itself settled.
        this.#log("error", `Cannot manage servable states: ${ServingError.from(e).message}`);
      }
    });
    this.#ops.add(op);
  }

  #publish(id: ServableId, state: ManagerState, error?: ServingError): void {
    let versions = this.#states.get(id.name);
    if (!versions) this.#states.set(id.name, versions = new Map());
    versions.set(id.version, error ? { state, error } : { state });
    if (!this.#onStateChange) return;
    try {
      this.#onStateChange(error ? { id, state, error } : { id, state });
    } catch (e) {
      this.#log("error", `Servable state hook failed: ${ServingError.from(e).message}`);
    }
  }
}
