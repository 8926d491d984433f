import assert from "node:assert/strict";
import type { HarnessState } from "../../src/core/harness.ts";
import {
  type AspiredServableStateSnapshot,
  availabilityPreservingPolicy,
  highestAspiredNewVersion,
  type ServableAction,
} from "../../src/core/policy.ts";

/** [version, state, isAspired] rows, as upstream's tests write them. */
type Row = [number, HarnessState, boolean];

const snapshots = (rows: Row[]): AspiredServableStateSnapshot[] =>
  rows.map(([version, state, isAspired]) => ({ version, state, isAspired }));

// The cases of tensorflow_serving/core/availability_preserving_policy_test.cc, then a few more.
const cases: { name: string; rows: Row[]; want: ServableAction | undefined }[] = [
  {
    name: "loads the highest new aspired version",
    rows: [
      [1, "unloading", false],
      [2, "error", false],
      [3, "ready", true],
      [4, "new", true],
      [5, "new", true],
    ],
    want: { action: "load", version: 5 },
  },
  {
    name: "unloads a non-aspired version first when an aspired one is ready",
    rows: [
      [1, "unloading", false],
      [2, "error", false],
      [3, "ready", false],
      [4, "ready", true],
      [5, "new", true],
    ],
    want: { action: "unload", version: 3 },
  },
  {
    name: "unloads when nothing is aspired",
    rows: [
      [1, "disabled", false],
      [2, "ready", false],
      [3, "error", false],
    ],
    want: { action: "unload", version: 2 },
  },
  {
    name: "does nothing when nothing is loadable or unloadable",
    rows: [
      [1, "ready", true],
      [2, "error", true],
      [3, "loading", true],
      [4, "unloading", false],
      [5, "disabled", false],
    ],
    want: undefined,
  },
  {
    name: "does not unload while the aspired version is still loading",
    rows: [
      [1, "ready", false],
      [2, "loading", true],
    ],
    want: undefined,
  },
  {
    name: "does not unload when the aspired version failed",
    rows: [
      [1, "ready", false],
      [2, "error", true],
    ],
    want: undefined,
  },
  {
    name: "unloads if another aspired version is ready even if one is loading",
    rows: [
      [1, "ready", false],
      [2, "loading", true],
      [3, "ready", true],
    ],
    want: { action: "unload", version: 1 },
  },
  {
    name: "unloads if another aspired version is ready even if one failed",
    rows: [
      [1, "ready", false],
      [2, "error", true],
      [3, "ready", true],
    ],
    want: { action: "unload", version: 1 },
  },
  {
    name: "unloads the lowest of several non-aspired ready versions",
    rows: [
      [2, "ready", false],
      [1, "ready", false],
      [3, "error", true],
      [4, "loading", true],
    ],
    want: { action: "unload", version: 1 },
  },
  { name: "does nothing for an empty stream", rows: [], want: undefined },
  {
    name: "loads while the old version keeps serving",
    rows: [
      [1, "ready", false],
      [2, "new", true],
    ],
    want: { action: "load", version: 2 },
  },
  {
    name: "ignores a non-aspired new version",
    rows: [
      [1, "ready", true],
      [2, "new", false],
    ],
    want: undefined,
  },
  {
    name: "ignores quiescing versions (already being unloaded)",
    rows: [
      [1, "quiescing", false],
      [2, "ready", true],
    ],
    want: undefined,
  },
  {
    name: "loads the next new version while a higher one loads",
    rows: [
      [1, "new", true],
      [2, "loading", true],
    ],
    want: { action: "load", version: 1 },
  },
];

for (const { name, rows, want } of cases) {
  Deno.test(`availabilityPreservingPolicy() ${name}`, () => {
    assert.deepEqual(availabilityPreservingPolicy(snapshots(rows)), want);
  });
}

Deno.test("highestAspiredNewVersion() picks the highest aspired new version", () => {
  assert.equal(
    highestAspiredNewVersion(snapshots([[1, "new", true], [3, "new", false], [2, "new", true]])),
    2,
  );
  assert.equal(highestAspiredNewVersion(snapshots([[1, "ready", true]])), undefined);
});
