/**
 * ServerCore, as TF Serving's `model_servers/server_core.cc`: owns the model config, the
 * file-system source, the servable manager and the version labels, and turns a ModelSpec into a
 * handle on a loaded version.
 *
 * @module
 */
import type { ModelSpec } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import { Code, ServingError } from "../errors.ts";
import { servableIdString } from "../core/loader.ts";
import {
  type ServableHandle,
  ServableManager,
  type ServableStateEvent,
  type VersionStatus,
} from "../core/manager.ts";
import { FileSystemSource } from "../sources/file_system_source.ts";
import type { ModelConfig, ModelServerConfig } from "../config/model_config.ts";
import { checkConfigWithinRoots } from "../config/model_roots.ts";
import { type LoaderOptions, savedModelLoader, type ServableModel } from "./saved_model_loader.ts";

export type { ServableModel };

/** How the core loads, retries and polls. */
export interface ServerCoreOptions extends LoaderOptions {
  /** `--max_num_load_retries`. */
  readonly maxNumLoadRetries: number;
  /** `--load_retry_interval_micros`, in milliseconds. */
  readonly loadRetryIntervalMs: number;
  /** `--file_system_poll_wait_seconds`. */
  readonly fileSystemPollWaitSeconds: number;
  /** `--version_dir_ready_timeout_seconds` (default: the source's, 60 s). */
  readonly versionDirReadyTimeoutSeconds?: number;
  /** `--allow_version_labels_for_unavailable_models`. */
  readonly allowVersionLabelsForUnavailableModels: boolean;
  /** Called on every published state change (metrics, readiness). */
  readonly onStateChange?: (event: ServableStateEvent) => void;
}

/** The models, their versions, and the config that says which. */
export class ServerCore implements AsyncDisposable {
  readonly #options: ServerCoreOptions;
  readonly #manager: ServableManager<ServableModel>;
  readonly #source: FileSystemSource;
  #config: ModelServerConfig | undefined;
  #labels = new Map<string, ReadonlyMap<string, number>>();
  #reloading: Promise<void> = Promise.resolve();
  #started = false;

  /** @param options loading, retry and polling options */
  constructor(options: ServerCoreOptions) {
    this.#options = options;
    this.#manager = new ServableManager<ServableModel>({
      maxNumLoadRetries: options.maxNumLoadRetries,
      loadRetryIntervalMs: options.loadRetryIntervalMs,
      log: options.log,
      onStateChange: options.onStateChange,
    });
    this.#source = new FileSystemSource({
      pollWaitSeconds: options.fileSystemPollWaitSeconds,
      readyTimeoutSeconds: options.versionDirReadyTimeoutSeconds,
      log: options.log,
      onAspiredVersions: (name, versions) =>
        this.#manager.setAspiredVersions(
          name,
          versions.map(({ version, path }) => ({
            version,
            loader: savedModelLoader(name, version, path, this.#options),
          })),
        ),
    });
  }

  /** The current config's models. */
  get models(): readonly ModelConfig[] {
    return this.#config?.models ?? [];
  }

  /**
   * Applies a model config, as ServerCore::ReloadConfig: labels are checked against the versions
   * available now, the source starts watching the new set (models left out are unloaded), and
   * the call resolves once every model new to the config has settled.
   *
   * @throws ServingError FAILED_PRECONDITION for a label on an unavailable version; UNKNOWN
   *   naming the new models that did not become available (the config stays applied)
   */
  reloadConfig(config: ModelServerConfig): Promise<void> {
    // Reloads run one at a time, in the order asked. A base path outside the model roots (or
    // under /proc, /sys, /dev) refuses the whole config before anything changes.
    const next = this.#reloading.then(async () => {
      await checkConfigWithinRoots(config.models, this.#options.allowedModelRoots, Deno.cwd());
      await this.#reload(config);
    });
    this.#reloading = next.catch(() => {});
    return next;
  }

  async #reload(config: ModelServerConfig): Promise<void> {
    if (config.empty) {
      // As upstream: an unset config (an empty file, e.g. one truncated by an editor saving in
      // place) changes nothing; a later non-empty config is applied as usual.
      this.#options.log("info", "Taking no action for empty config.");
      return;
    }
    const old = new Set(this.models.map((m) => m.name));
    this.#labels = this.#checkLabels(config);
    this.#config = config;
    this.#options.log("info", "Adding/updating models.");
    await this.#source.setConfig(
      config.models.map((m) => ({ name: m.name, basePath: m.basePath, policy: m.versionPolicy })),
    );
    if (!this.#started) {
      // The first poll is queued by start(); waiting for one more makes sure it has emitted.
      this.#started = true;
      this.#source.start();
      await this.#source.pollNow();
    }
    await this.#manager.settled();
    this.#options.log("info", "Finished adding/updating models");
    const unavailable = config.models.filter((m) =>
      !old.has(m.name) && this.#manager.availableVersions(m.name).length === 0
    );
    if (unavailable.length > 0) {
      const detail = unavailable.map((m) => {
        const st = this.#manager.status(m.name)[0];
        const id = servableIdString({ name: m.name, version: st?.version ?? 0 });
        return st?.error ? `{${id} due to error: ${st.error.message}}` : `{${id}}`;
      });
      throw new ServingError(
        Code.UNKNOWN,
        `${unavailable.length} model(s) did not become available: {${detail.join(", ")}, }`,
      );
    }
  }

  #checkLabels(config: ModelServerConfig): Map<string, ReadonlyMap<string, number>> {
    const labels = new Map<string, ReadonlyMap<string, number>>();
    for (const m of config.models) {
      for (const [label, version] of m.versionLabels) {
        const existing = this.#labels.get(m.name)?.get(label);
        const allowed = this.#options.allowVersionLabelsForUnavailableModels &&
          (existing === undefined || existing === version);
        if (!allowed && !this.#manager.availableVersions(m.name).includes(version)) {
          throw new ServingError(
            Code.FAILED_PRECONDITION,
            `Request to assign label to version ${version} of model ${m.name}, which is not currently available for inference`,
          );
        }
      }
      if (m.versionLabels.size > 0) labels.set(m.name, m.versionLabels);
    }
    return labels;
  }

  /**
   * Lends the version a ModelSpec asks for: by version, by label, or the latest.
   *
   * @throws ServingError INVALID_ARGUMENT for no name or an unknown label; NOT_FOUND for no
   *   such model or version
   */
  acquire(spec: ModelSpec): ServableHandle<ServableModel> {
    if (spec.name === "") {
      throw new ServingError(Code.INVALID_ARGUMENT, "ModelSpec has no name specified.");
    }
    const choice = spec.versionChoice;
    if (choice.case === "version") {
      return this.#manager.acquire(spec.name, servedVersion(spec.name, choice.value.value));
    }
    if (choice.case === "versionLabel") {
      const version = this.#labels.get(spec.name)?.get(choice.value);
      if (version === undefined) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Unrecognized servable version label: ${choice.value}`,
        );
      }
      return this.#manager.acquire(spec.name, version);
    }
    return this.#manager.acquire(spec.name);
  }

  /** Every version's state of a model, highest first (including ended ones). */
  status(name: string): VersionStatus[] {
    return this.#manager.status(name);
  }

  /** Versions of a model that are AVAILABLE now, ascending. */
  availableVersions(name: string): number[] {
    return this.#manager.availableVersions(name);
  }

  /** Resolves when no load or unload is pending. */
  settled(): Promise<void> {
    return this.#manager.settled();
  }

  /** Polls the model base paths now (tests). */
  pollNow(): Promise<void> {
    return this.#source.pollNow();
  }

  /** Stops watching, then unloads every version once its requests have finished. */
  async stop(): Promise<void> {
    await this.#source.stop();
    await this.#manager.stop();
  }

  /** Same as stop(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * A requested int64 version as the number the manager keys versions by. Versions on disk are
 * safe integers (the source skips others), so a version beyond 2^53 cannot be served: it is
 * NOT_FOUND, with the int64 printed exactly as upstream prints it (never rounded by a double).
 *
 * @throws ServingError NOT_FOUND `Servable not found for request: Specific(name, version)`
 */
export function servedVersion(name: string, version: bigint): number {
  const n = Number(version);
  if (!Number.isSafeInteger(n)) {
    throw new ServingError(
      Code.NOT_FOUND,
      `Servable not found for request: Specific(${name}, ${version})`,
    );
  }
  return n;
}
