/**
 * The read-only view of the models that metrics, health checks and the web page need: what is
 * configured and each version's published state. `ServerCore` satisfies it; tests pass fakes.
 *
 * @module
 */
import type { VersionStatus } from "../core/manager.ts";

export type { VersionStatus };

/** One configured model, as far as monitoring cares. */
export interface ModelEntry {
  /** The model name. */
  readonly name: string;
  /** Its base path (holding the numbered version directories). */
  readonly basePath: string;
}

/** What monitoring reads of a ServerCore. */
export interface ModelsView {
  /** The models of the config in force, in config order. */
  readonly models: readonly ModelEntry[];
  /** Every version's state of a model, highest version first (including ended ones). */
  status(name: string): readonly VersionStatus[];
}

/** Why a model is not ready: no version of it is AVAILABLE. */
export interface UnreadyModel {
  /** The model name. */
  readonly name: string;
  /** The newest version's state, or undefined when no version was found yet. */
  readonly state?: string;
  /** The newest version, if any. */
  readonly version?: number;
  /** The newest error among its versions (a failed load), if any. */
  readonly error?: string;
}

/**
 * The configured models that have no AVAILABLE version: the server is ready when this is empty.
 *
 * @param view the models
 * @returns one entry per unready model, in config order
 */
export function unreadyModels(view: ModelsView): UnreadyModel[] {
  const out: UnreadyModel[] = [];
  for (const m of view.models) {
    const versions = view.status(m.name);
    if (versions.some((v) => v.state === "AVAILABLE")) continue;
    const newest = versions[0];
    // Versions come highest first, so the first error is the newest one's.
    const error = versions.find((v) => v.error)?.error?.message;
    out.push({
      name: m.name,
      ...(newest ? { state: newest.state, version: newest.version } : {}),
      ...(error !== undefined ? { error } : {}),
    });
  }
  return out;
}
