/**
 * LoaderHarness: the manager's grip on one servable version while it owns the Loader. A small
 * state machine with one guarded `transition()`, mirroring tensorflow_serving/core/loader_harness.
 *
 * ```
 * new ──► loading ──► ready ──► quiescing ──► unloading ──► disabled
 *            │                                    ▲
 *            └────────────────────────────────────┘  (load finished after it was cancelled)
 * any ──► error
 * ```
 *
 * Upstream's kLoadRequested/kLoadApproved (resource reservation) have no counterpart here, and its
 * kUnloadRequested/kQuiescing/kQuiesced collapse into `quiescing`: the version is no longer lent
 * out and the manager waits for the handles in flight before calling `unload()`.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import {
  consoleLog,
  type Loader,
  type LogFn,
  type ServableId,
  servableIdString,
} from "./loader.ts";

/** The harness states (TF Serving's LoaderHarness::State, as its StateDebugString spells them). */
export type HarnessState =
  | "new"
  | "loading"
  | "ready"
  | "quiescing"
  | "unloading"
  | "disabled"
  | "error";

/** The legal edges of the state machine; `error` is reachable from anywhere via `error()`. */
const TRANSITIONS: Readonly<Record<HarnessState, readonly HarnessState[]>> = {
  new: ["loading"],
  loading: ["ready", "unloading"],
  ready: ["quiescing"],
  quiescing: ["unloading"],
  unloading: ["disabled"],
  disabled: [],
  error: [],
};

/** Options of a LoaderHarness (TF Serving's LoaderHarness::Options). */
export interface LoaderHarnessOptions {
  /** Retries after the first failed load before giving up (default 0). */
  maxNumLoadRetries?: number;
  /** Wait between load retries, in milliseconds (default 0). */
  loadRetryIntervalMs?: number;
  /** Receives the harness's log lines (default: the console). */
  log?: LogFn;
  /**
   * Called when the servable reaches its end with an error: on a transition to `error`, and when
   * a load is cancelled (then the state is `disabled` and the error CANCELLED).
   */
  onError?: (id: ServableId, error: ServingError) => void;
}

/**
 * Formats an error the way `absl::Status::ToString()` does, for log lines.
 *
 * @param error the error
 * @returns e.g. `NOT_FOUND: no such file`
 */
export function statusString(error: ServingError): string {
  return `${Code[error.code] ?? error.code}: ${error.message}`;
}

/**
 * Holds one Loader and tracks its servable's state. Every state change goes through
 * `transition(from, to)`, which refuses illegal or stale requests, so concurrent callers cannot
 * load twice or unload a version that is not ready.
 *
 * @typeParam T the loaded servable
 *
 * @example
 * ```ts
 * const harness = new LoaderHarness({ name: "foo", version: 1 }, loader, { maxNumLoadRetries: 2 });
 * const servable = await harness.load(); // state "ready"
 * harness.startQuiescing();
 * await harness.unload(); // state "disabled"
 * ```
 */
export class LoaderHarness<T> {
  /** The version this harness manages. */
  readonly id: ServableId;
  readonly #loader: Loader<T>;
  readonly #maxNumLoadRetries: number;
  readonly #loadRetryIntervalMs: number;
  readonly #log: LogFn;
  readonly #onError?: (id: ServableId, error: ServingError) => void;
  #state: HarnessState = "new";
  #status: ServingError | undefined;
  #servable: T | undefined;
  #shouldRetry = true;
  /** Ends the current retry wait early; set only while waiting. */
  #wake: (() => void) | undefined;

  /**
   * @param id the servable version
   * @param loader its loader; the harness owns it from now on
   * @param options retries, logging and the error callback
   */
  constructor(id: ServableId, loader: Loader<T>, options: LoaderHarnessOptions = {}) {
    this.id = id;
    this.#loader = loader;
    this.#maxNumLoadRetries = Math.max(0, Math.floor(options.maxNumLoadRetries ?? 0));
    this.#loadRetryIntervalMs = Math.max(0, options.loadRetryIntervalMs ?? 0);
    this.#log = options.log ?? consoleLog;
    this.#onError = options.onError;
  }

  /** The current state. */
  get state(): HarnessState {
    return this.#state;
  }

  /** The error that ended this servable, if any (set in state `error`). */
  get status(): ServingError | undefined {
    return this.#status;
  }

  /** The loaded servable while `ready` or `quiescing`, else undefined. */
  get servable(): T | undefined {
    return this.#servable;
  }

  /** False once `cancelLoadRetry()` was called: no further load attempts will be made. */
  get shouldRetry(): boolean {
    return this.#shouldRetry;
  }

  /**
   * Moves from `from` to `to` if the harness is in `from` and the edge is legal. Otherwise the
   * harness goes to `error` and the INTERNAL error is thrown (upstream's release-build behaviour).
   *
   * @param from the state the caller expects
   * @param to the state to move to
   * @throws ServingError INTERNAL `Illegal request to transition from state <s> to <to>`
   */
  transition(from: HarnessState, to: HarnessState): void {
    if (this.#state !== from || !TRANSITIONS[from].includes(to)) {
      const error = new ServingError(
        Code.INTERNAL,
        `Illegal request to transition from state ${this.#state} to ${to}`,
      );
      this.error(error);
      throw error;
    }
    this.#state = to;
  }

  /**
   * Loads the servable: `new → loading → ready`, retrying a failed load up to
   * `maxNumLoadRetries` times, `loadRetryIntervalMs` apart, unless `cancelLoadRetry()` is called.
   * On final failure the harness is in `error` and the load error is thrown. If the load was
   * cancelled but still succeeded, the just-loaded servable is unloaded (`loading → unloading →
   * disabled`) and CANCELLED `Loading of servable cancelled` is thrown.
   *
   * The state moves to `loading` synchronously, before the first await.
   *
   * @returns the loaded servable
   */
  async load(): Promise<T> {
    this.transition("new", "loading");
    const id = servableIdString(this.id);
    this.#log("info", `Loading servable version ${id}`);

    // Upstream's Retry(): try, and while failing, under the cap and not cancelled: wait, retry.
    const description = `Loading servable: ${id}`;
    let error: ServingError | undefined;
    let servable: T | undefined;
    let tries = 0;
    do {
      if (tries > 0) {
        await this.#sleep(this.#loadRetryIntervalMs);
        // Cancelled while waiting: give up now rather than make one more attempt.
        if (!this.#shouldRetry) break;
        this.#log("info", `Retrying of ${description} retry: ${tries}`);
      }
      try {
        servable = await this.#loader.load();
        error = undefined;
      } catch (e) {
        error = ServingError.from(e);
        this.#log("error", `${description} failed: ${statusString(error)}`);
      }
      ++tries;
    } while (error && tries < this.#maxNumLoadRetries + 1 && this.#shouldRetry);
    if (!this.#shouldRetry) this.#log("info", `Retrying of ${description} was cancelled.`);
    if (error && tries === this.#maxNumLoadRetries + 1) {
      this.#log(
        "info",
        `Retrying of ${description} exhausted max_num_retries: ${this.#maxNumLoadRetries}`,
      );
    }

    if (error) {
      if (this.#state === "loading") this.error(error);
      throw error;
    }
    if (!this.#shouldRetry) {
      // The version stopped being aspired while loading: it is about to be unloaded anyway, so
      // never report it available.
      await this.#unloadFrom("loading", servable as T, "Unloading just-loaded servable version");
      const cancelled = new ServingError(Code.CANCELLED, "Loading of servable cancelled");
      this.#onError?.(this.id, cancelled);
      throw cancelled;
    }
    this.transition("loading", "ready");
    this.#servable = servable;
    this.#log("info", `Successfully loaded servable version ${id}`);
    return servable as T;
  }

  /**
   * Stops further load attempts (best effort: an attempt in progress is not interrupted, but a
   * retry wait ends at once). Called when the version stops being aspired.
   */
  cancelLoadRetry(): void {
    this.#shouldRetry = false;
    this.#wake?.();
  }

  /** `ready → quiescing`: the servable is no longer lent out; handles in flight may remain. */
  startQuiescing(): void {
    this.transition("ready", "quiescing");
    this.#log("info", `Quiescing servable version ${servableIdString(this.id)}`);
  }

  /**
   * `quiescing → unloading → disabled`: calls the loader's `unload()`. The caller must have
   * waited for every handle to be released. An unload failure moves the harness to `error`.
   */
  async unload(): Promise<void> {
    this.#log("info", `Done quiescing servable version ${servableIdString(this.id)}`);
    const servable = this.#servable as T;
    this.#servable = undefined;
    await this.#unloadFrom("quiescing", servable, "Unloading servable version");
  }

  /**
   * Moves to `error` with `error` as the status, logs it and calls `onError`.
   *
   * @param error what went wrong
   */
  error(error: ServingError): void {
    this.#state = "error";
    this.#status = error;
    this.#servable = undefined;
    this.#onError?.(this.id, error);
    this.#log(
      "error",
      `Encountered an error for servable version ${servableIdString(this.id)}: ${
        statusString(error)
      }`,
    );
  }

  async #unloadFrom(from: HarnessState, servable: T, what: string): Promise<void> {
    this.transition(from, "unloading");
    const id = servableIdString(this.id);
    this.#log("info", `${what} ${id}`);
    try {
      await this.#loader.unload(servable);
    } catch (e) {
      // Upstream's Unload() cannot fail; here the failure ends the servable with that error.
      this.error(ServingError.from(e));
      return;
    }
    this.transition("unloading", "disabled");
    this.#log("info", `Done unloading servable version ${id}`);
  }

  /** A retry wait that `cancelLoadRetry()` cuts short, so no timer outlives the harness. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}
