/**
 * The Loader contract between a source's aspired versions and the manager, and the small shared
 * nouns of core/: a servable id, its TF Serving debug string and the log callback.
 *
 * Mirrors tensorflow_serving/core/loader.h and servable_id.h, minus resource estimation: the
 * manager knows nothing of what a servable is, only how to load and unload it.
 *
 * @module
 */
import type { LogFn, LogLevel } from "../log.ts";

/**
 * Loads and unloads one version of a servable. The manager calls `load()` at most once per
 * attempt (more than once only when retrying a failed load) and `unload()` once with the value a
 * successful `load()` returned.
 *
 * Creating a Loader must be cheap and side-effect free: a source re-emits its aspired versions on
 * every poll, and the manager drops the loaders of versions it already manages unused. All real
 * work belongs in `load()`.
 *
 * @typeParam T the loaded servable
 *
 * @example
 * ```ts
 * const loader: Loader<string> = { load: () => Promise.resolve("model"), unload() {} };
 * ```
 */
export interface Loader<T> {
  /** Loads the servable. A rejection is the load error (a ServingError keeps its code). */
  load(): Promise<T>;
  /** Frees what `load()` acquired. Called only once no handle to `servable` is in use. */
  unload(servable: T): Promise<void> | void;
}

/** Identifies one version of a servable stream (TF Serving's ServableId). */
export interface ServableId {
  /** The servable stream (model) name. */
  readonly name: string;
  /** The version number within the stream. */
  readonly version: number;
}

/**
 * Formats an id the way TF Serving's `ServableId::DebugString()` does, so log lines read the same.
 *
 * @param id the servable id
 * @returns e.g. `{name: foo version: 123}`
 */
export function servableIdString(id: ServableId): string {
  return `{name: ${id.name} version: ${id.version}}`;
}

export type { LogFn, LogLevel };

/** The default log: info to stdout, warnings and errors to stderr. */
export const consoleLog: LogFn = (level, message) => {
  if (level === "info") console.log(message);
  else if (level === "warning") console.warn(message);
  else console.error(message);
};
