/**
 * The Loader of one SavedModel version: load the runtime model, replay its warmup requests,
 * and hand it to the manager. Unloading drops every reference so the memory can be collected.
 *
 * @module
 */
import type { Loader, LogFn } from "../core/loader.ts";
import { loadModel, type Model } from "../runtime/model.ts";
import type { ServableOptions } from "../servables/model_spec.ts";
import { WARMUP_FILE } from "../servables/warmup_file.ts";
import { joinPath } from "../saved_model/reader.ts";
import { checkVersionDirConfined } from "../config/model_roots.ts";
import type { Executor } from "../exec/executor.ts";
import { shareConstants } from "../exec/shared_model.ts";

/** A loaded model version, as the manager lends it out. */
export interface ServableModel {
  /** The model name. */
  readonly name: string;
  /** The version number. */
  readonly version: number;
  /** The version directory. */
  readonly path: string;
  /** The loaded runtime model. */
  readonly model: Model;
}

/** How versions are loaded. */
export interface LoaderOptions extends ServableOptions {
  /** MetaGraphDef tags (`--saved_model_tags`). */
  readonly tags: readonly string[];
  /** Replay `assets.extra/tf_serving_warmup_requests` (`--enable_model_warmup`). */
  readonly enableModelWarmup: boolean;
  /** `--num_request_iterations_for_warmup` (0 or less means 1). */
  readonly warmupIterations: number;
  /** Log lines. */
  readonly log: LogFn;
  /**
   * Resolved model roots (`--allowed_model_roots`): a version directory holding a symlink that
   * leads outside them fails to load with PERMISSION_DENIED. Undefined = not checked.
   */
  readonly allowedModelRoots?: readonly string[];
  /**
   * Where inference runs: a loaded version (after warmup) is handed to it, with its large
   * constants in shared memory. Without one, everything runs inline.
   */
  readonly executor?: Executor;
}

/** False only when `path` is known not to exist (any other failure is left to the reader). */
async function mayExist(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

/** Creates the loader of one version directory. Cheap: nothing is read until load(). */
export function savedModelLoader(
  name: string,
  version: number,
  path: string,
  options: LoaderOptions,
): Loader<ServableModel> {
  return {
    async load() {
      const t0 = performance.now();
      options.log("info", `Reading SavedModel from: ${path}`);
      if (options.allowedModelRoots) await checkVersionDirConfined(path, options.allowedModelRoots);
      const executor = options.executor;
      const model = await loadModel(path, {
        tags: options.tags,
        prepare: executor ? shareConstants : undefined,
      });
      options.log(
        "info",
        `SavedModel load for tags { ${options.tags.join(" ")} }; Status: success: OK. Took ${
          Math.round((performance.now() - t0) * 1000)
        } microseconds.`,
      );
      if (options.enableModelWarmup && await mayExist(joinPath(path, WARMUP_FILE))) {
        // Imported only for a version that has warmup data (start-up: the replay brings every
        // request type and the PredictionLog reader).
        const { runWarmup } = await import("../servables/warmup.ts");
        const n = await runWarmup(model, path, {
          ...options,
          modelName: name,
          version,
          iterations: options.warmupIterations,
        });
        if (n > 0) {
          options.log(
            "info",
            `Finished reading warmup data for model at ${path}. Number of warmup records read: ${n}.`,
          );
        }
      }
      // After warmup: a stateful version's state moves to its worker as warmup left it.
      await executor?.attach(model, `servable ${name} version ${version}`);
      return { name, version, path, model };
    },
    unload(servable) {
      // The model holds only JS memory; dropping the references (here and in the workers)
      // frees it.
      options.executor?.detach(servable.model);
    },
  };
}
