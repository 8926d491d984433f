/**
 * Aspired-version policies: pure functions from the states of every version of one servable
 * stream to the next action. Mirrors tensorflow_serving/core/aspired_version_policy.{h,cc} and
 * availability_preserving_policy.cc.
 *
 * @module
 */
import type { HarnessState } from "./harness.ts";

/** One version of a stream as a policy sees it (upstream's AspiredServableStateSnapshot). */
export interface AspiredServableStateSnapshot {
  /** The version number. */
  readonly version: number;
  /** Its harness state. */
  readonly state: HarnessState;
  /** Whether the source still lists it. */
  readonly isAspired: boolean;
}

/** What a policy asks the manager to do next, for one version. */
export interface ServableAction {
  /** Load a `new` version, or unload a `ready` one. */
  readonly action: "load" | "unload";
  /** The version to act on. */
  readonly version: number;
}

/**
 * A policy: stateless and idempotent; given the same snapshots it returns the same action, or
 * undefined when the stream is up to date.
 */
export type AspiredVersionPolicy = (
  versions: readonly AspiredServableStateSnapshot[],
) => ServableAction | undefined;

/**
 * The aspired version with the highest number that is still `new`, if any
 * (upstream's GetHighestAspiredNewServableId).
 *
 * @param versions the stream's snapshots
 * @returns the version number, or undefined
 */
export function highestAspiredNewVersion(
  versions: readonly AspiredServableStateSnapshot[],
): number | undefined {
  let highest: number | undefined;
  for (const v of versions) {
    if (v.isAspired && v.state === "new" && (highest === undefined || v.version > highest)) {
      highest = v.version;
    }
  }
  return highest;
}

/**
 * The availability-preserving policy, TF Serving's default: never lets a stream that is serving
 * drop to zero available versions on a version change. A non-aspired `ready` version is unloaded
 * only if nothing is aspired, or some aspired version is already `ready`, or more than one
 * non-aspired version is `ready` (then the lowest goes first). Otherwise the highest aspired
 * `new` version is loaded.
 *
 * @param versions the snapshots of every version of one stream
 * @returns the next action, or undefined if there is nothing to do
 *
 * @example
 * ```ts
 * availabilityPreservingPolicy([
 *   { version: 1, state: "ready", isAspired: false },
 *   { version: 2, state: "new", isAspired: true },
 * ]); // { action: "load", version: 2 } — version 1 keeps serving meanwhile
 * ```
 */
export const availabilityPreservingPolicy: AspiredVersionPolicy = (versions) => {
  let hasAspired = false;
  let hasAspiredServing = false;
  let unaspiredServing = 0;
  let lowestUnaspiredServing: number | undefined;
  for (const v of versions) {
    if (v.isAspired) {
      hasAspired = true;
      if (v.state === "ready") hasAspiredServing = true;
    } else if (v.state === "ready") {
      ++unaspiredServing;
      if (lowestUnaspiredServing === undefined || v.version < lowestUnaspiredServing) {
        lowestUnaspiredServing = v.version;
      }
    }
  }

  if (!hasAspired || hasAspiredServing || unaspiredServing > 1) {
    if (lowestUnaspiredServing !== undefined) {
      return { action: "unload", version: lowestUnaspiredServing };
    }
  }

  const load = highestAspiredNewVersion(versions);
  return load === undefined ? undefined : { action: "load", version: load };
};
