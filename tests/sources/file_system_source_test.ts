import assert from "node:assert/strict";
import { join } from "node:path";
import {
  FileSystemSource,
  type FileSystemSourceOptions,
  parseVersion,
  selectVersions,
  type ServableToMonitor,
  type VersionPath,
} from "../../src/sources/file_system_source.ts";

/** Makes a version dir; with `complete`, writes its saved_model.pb. */
async function version(base: string, child: string, complete = true): Promise<string> {
  const dir = join(base, child);
  await Deno.mkdir(dir, { recursive: true });
  if (complete) await Deno.writeFile(join(dir, "saved_model.pb"), new Uint8Array([1, 2, 3]));
  return dir;
}

/** A source with pollWaitSeconds -1 (polled by hand) recording emissions and log lines. */
function makeSource(
  servables: ServableToMonitor[],
  options: Partial<FileSystemSourceOptions> = {},
) {
  const emitted: [string, VersionPath[]][] = [];
  const logs: string[] = [];
  const source = new FileSystemSource({
    servables,
    pollWaitSeconds: -1,
    onAspiredVersions: (name, versions) => emitted.push([name, versions]),
    log: (level, message) => logs.push(`${level}: ${message}`),
    ...options,
  });
  /** The versions emitted for `name` by the last poll. */
  const last = (name: string) => emitted.findLast(([n]) => n === name)?.[1];
  return { source, emitted, logs, last };
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fs_source_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseVersion() parses like absl::SimpleAtoi, non-negative only", () => {
  const cases: [string, number | undefined][] = [
    ["1", 1],
    ["123", 123],
    ["00000123", 123],
    ["0", 0],
    ["+5", 5],
    [" 7 ", 7],
    ["-0", 0],
    ["-1", undefined],
    ["1a", undefined],
    ["a1", undefined],
    ["1.5", undefined],
    ["1e3", undefined],
    ["0x10", undefined],
    ["", undefined],
    ["tmp", undefined],
    ["9007199254740991", 9007199254740991],
    ["99999999999999999999", undefined],
  ];
  for (const [name, want] of cases) assert.equal(parseVersion(name), want, JSON.stringify(name));
});

Deno.test("selectVersions() applies latest, all and specific", () => {
  const present = [3, 1, 10, 2];
  assert.deepEqual(selectVersions(undefined, present), [10]);
  assert.deepEqual(selectVersions({ kind: "latest" }, present), [10]);
  assert.deepEqual(selectVersions({ kind: "latest", numVersions: 0 }, present), [10]);
  assert.deepEqual(selectVersions({ kind: "latest", numVersions: 2 }, present), [10, 3]);
  assert.deepEqual(selectVersions({ kind: "latest", numVersions: 9 }, present), [10, 3, 2, 1]);
  assert.deepEqual(selectVersions({ kind: "all" }, present), [1, 2, 3, 10]);
  assert.deepEqual(selectVersions({ kind: "specific", versions: [2, 10, 7] }, present), [2, 10]);
  assert.deepEqual(selectVersions({ kind: "latest" }, []), []);
});

Deno.test("FileSystemSource aspires the latest version and ignores non-integer entries", async () => {
  await withTempDir(async (base) => {
    await version(base, "1");
    await version(base, "2");
    await version(base, "3");
    await version(base, "tmp");
    await version(base, "4a");
    await Deno.writeTextFile(join(base, "README"), "not a version");
    const { source, emitted } = makeSource([{ name: "foo", basePath: base }]);
    await source.pollNow();
    assert.deepEqual(emitted, [["foo", [{ version: 3, path: join(base, "3") }]]]);
    // Every poll emits the full list, changed or not.
    await source.pollNow();
    assert.equal(emitted.length, 2);
    assert.deepEqual(emitted[1], emitted[0]);
    await source.stop();
  });
});

Deno.test("FileSystemSource applies latest{2}, all and specific policies", async () => {
  await withTempDir(async (base) => {
    for (const v of ["1", "2", "3"]) await version(base, v);
    const { source, last, logs } = makeSource([
      { name: "latest2", basePath: base, policy: { kind: "latest", numVersions: 2 } },
      { name: "all", basePath: base, policy: { kind: "all" } },
      { name: "specific", basePath: base, policy: { kind: "specific", versions: [1, 3, 7] } },
    ]);
    await source.pollNow();
    const versions = (name: string) => last(name)?.map((v) => v.version);
    assert.deepEqual(versions("latest2"), [3, 2]);
    assert.deepEqual(versions("all"), [1, 2, 3]);
    assert.deepEqual(versions("specific"), [1, 3]);
    assert.ok(logs.includes(
      "warning: Version 7 of servable specific, which was requested to be served as a " +
        "'specific' version in the servable's version policy, was not found in the file system",
    ));
    await source.stop();
  });
});

Deno.test("FileSystemSource reads leading zeros as the version number, keeping the path", async () => {
  await withTempDir(async (base) => {
    await version(base, "00000123");
    const { source, last } = makeSource([{ name: "foo", basePath: base }]);
    await source.pollNow();
    assert.deepEqual(last("foo"), [{ version: 123, path: join(base, "00000123") }]);
    await source.stop();
  });
});

Deno.test("FileSystemSource warns of duplicate version directories and keeps the later name", async () => {
  await withTempDir(async (base) => {
    await version(base, "01");
    await version(base, "1");
    const { source, last, logs } = makeSource([{ name: "foo", basePath: base }]);
    await source.pollNow();
    assert.deepEqual(last("foo"), [{ version: 1, path: join(base, "1") }]);
    assert.ok(logs.includes(
      "warning: Duplicate version directories detected. Version 1 will be loaded from 1, 01 " +
        "will be ignored.",
    ));
    await source.stop();
  });
});

Deno.test("FileSystemSource keeps a version aspired when one of its duplicate dirs is deleted", async () => {
  await withTempDir(async (base) => {
    await version(base, "00001");
    await version(base, "1");
    const { source, emitted, last } = makeSource([{ name: "foo", basePath: base }]);
    await source.pollNow();
    assert.deepEqual(last("foo"), [{ version: 1, path: join(base, "1") }]);
    // "1" goes: "00001", known to be written, serves version 1 from the very next poll.
    await Deno.remove(join(base, "1"), { recursive: true });
    await source.pollNow();
    await source.pollNow();
    assert.deepEqual(last("foo"), [{ version: 1, path: join(base, "00001") }]);
    // No poll ever emitted a list without version 1 (which would unload it).
    for (const [, versions] of emitted) assert.deepEqual(versions.map((v) => v.version), [1]);
    await source.stop();
  });
});

Deno.test("FileSystemSource aspires a version dir that never gets a saved_model.pb after the ready timeout", async () => {
  await withTempDir(async (base) => {
    await version(base, "1");
    let now = 0;
    const { source, last, logs } = makeSource([{ name: "foo", basePath: base }], {
      readyTimeoutSeconds: 10,
      now: () => now,
    });
    await source.pollNow();
    const dir = join(base, "300");
    await Deno.symlink("/etc", dir); // never a SavedModel
    await source.pollNow();
    now = 9_000;
    await source.pollNow();
    assert.deepEqual(last("foo")?.map((v) => v.version), [1]);
    now = 10_000;
    await source.pollNow();
    // Handed to the loader, which reports why it cannot load.
    assert.deepEqual(last("foo"), [{ version: 300, path: dir }]);
    assert.ok(
      logs.includes(
        "warning: Version 300 of servable foo has no complete saved_model.pb or " +
          `saved_model.pbtxt after 10 s; loading it anyway: ${dir}`,
      ),
      logs.join("\n"),
    );
    await source.stop();
  });
});

Deno.test("FileSystemSource with a ready timeout of 0 aspires version dirs at once, as upstream", async () => {
  await withTempDir(async (base) => {
    await version(base, "1");
    const { source, last } = makeSource([{ name: "foo", basePath: base }], {
      readyTimeoutSeconds: 0,
    });
    await source.pollNow();
    await version(base, "2", false);
    await source.pollNow();
    assert.deepEqual(last("foo")?.map((v) => v.version), [2]);
    await source.stop();
  });
});

Deno.test("FileSystemSource does not aspire a version directory still being written", async () => {
  await withTempDir(async (base) => {
    await version(base, "1");
    const { source, last, logs } = makeSource([{ name: "foo", basePath: base }]);
    await source.pollNow(); // first poll: existing files count as written
    assert.deepEqual(last("foo")?.map((v) => v.version), [1]);

    // Version 2 appears without saved_model.pb: version 1 stays the latest.
    const dir2 = await version(base, "2", false);
    await source.pollNow();
    assert.deepEqual(last("foo")?.map((v) => v.version), [1]);
    assert.ok(logs.includes(`info: Waiting for version 2 of servable foo to be written: ${dir2}`));

    // saved_model.pb appears: not yet (it may still be growing).
    await Deno.writeFile(join(dir2, "saved_model.pb"), new Uint8Array([1]));
    await source.pollNow();
    assert.deepEqual(last("foo")?.map((v) => v.version), [1]);

    // It grows between polls: still not.
    await Deno.writeFile(join(dir2, "saved_model.pb"), new Uint8Array([2, 3]), { append: true });
    await source.pollNow();
    assert.deepEqual(last("foo")?.map((v) => v.version), [1]);

    // Unchanged since the previous poll: now it is aspired.
    await source.pollNow();
    assert.deepEqual(last("foo"), [{ version: 2, path: dir2 }]);
    // The waiting line was logged once, not once per poll.
    assert.equal(logs.filter((l) => l.includes("Waiting for version 2")).length, 1);
    await source.stop();
  });
});

Deno.test("FileSystemSource accepts saved_model.pbtxt and skips a dir with no model on the first poll", async () => {
  await withTempDir(async (base) => {
    await Deno.mkdir(join(base, "1"));
    await Deno.writeTextFile(join(base, "1", "saved_model.pbtxt"), "meta_graphs {}");
    await version(base, "2", false); // no saved_model at all
    const { source, last } = makeSource([{ name: "foo", basePath: base }]);
    await source.pollNow();
    assert.deepEqual(last("foo")?.map((v) => v.version), [1]);
    await source.stop();
  });
});

Deno.test("FileSystemSource logs a missing base path, emits nothing, and picks it up once it appears", async () => {
  await withTempDir(async (dir) => {
    const base = join(dir, "models", "foo");
    const { source, emitted, logs, last } = makeSource([{ name: "foo", basePath: base }]);
    await source.pollNow();
    await source.pollNow();
    assert.deepEqual(emitted, []); // an empty list would unload everything
    const errors = logs.filter((l) => l.startsWith("error: "));
    assert.equal(errors.length, 1); // logged once while the problem stands
    assert.match(
      errors[0],
      new RegExp(
        "^error: FileSystemStoragePathSource encountered a filesystem access error: Could not " +
          `find base path ${base} for servable foo with error NOT_FOUND: `,
      ),
    );

    await version(base, "1");
    await source.pollNow(); // not the first poll: waits one poll for the files to settle
    assert.deepEqual(last("foo"), []);
    await source.pollNow();
    assert.deepEqual(last("foo"), [{ version: 1, path: join(base, "1") }]);
    await source.stop();
  });
});

Deno.test("FileSystemSource emits an empty list and warns when a base path has no versions", async () => {
  await withTempDir(async (base) => {
    await Deno.mkdir(join(base, "not_a_version"));
    const { source, emitted, logs } = makeSource([
      { name: "foo", basePath: base },
      { name: "none", basePath: base, policy: { kind: "specific", versions: [] } },
    ]);
    await source.pollNow();
    assert.deepEqual(emitted, [["foo", []], ["none", []]]);
    assert.ok(logs.includes(
      `warning: No versions of servable foo found under base path ${base}. Did you forget to ` +
        "name your leaf directory as a number (eg. '/1/')?",
    ));
    assert.ok(logs.includes("warning: No specific versions requested for servable none."));
    await source.stop();
  });
});

Deno.test("FileSystemSource drops a removed version directory", async () => {
  await withTempDir(async (base) => {
    await version(base, "1");
    await version(base, "2");
    const { source, last } = makeSource([
      { name: "foo", basePath: base, policy: { kind: "all" } },
    ]);
    await source.pollNow();
    assert.deepEqual(last("foo")?.map((v) => v.version), [1, 2]);
    await Deno.remove(join(base, "1"), { recursive: true });
    await source.pollNow();
    assert.deepEqual(last("foo")?.map((v) => v.version), [2]);
    await source.stop();
  });
});

Deno.test("FileSystemSource.setConfig() unaspires removed servables and polls new ones", async () => {
  await withTempDir(async (dir) => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await version(a, "1");
    await version(b, "4");
    const { source, emitted, last } = makeSource([{ name: "a", basePath: a }], {
      pollWaitSeconds: 0, // poll once at start, and after each config change
    });
    source.start();
    await source.pollNow();
    assert.deepEqual(last("a")?.map((v) => v.version), [1]);

    emitted.length = 0;
    await source.setConfig([{ name: "b", basePath: b }]);
    assert.deepEqual(emitted, [["a", []], ["b", [{ version: 4, path: join(b, "4") }]]]);
    assert.deepEqual(source.servables.map((s) => s.name), ["b"]);

    await assert.rejects(
      source.setConfig([{ name: "b", basePath: b }, { name: "b", basePath: a }]),
      /Illegal to list model b multiple times in config list/,
    );
    await source.stop();
  });
});

Deno.test("FileSystemSource polls periodically until stopped", async () => {
  await withTempDir(async (base) => {
    await version(base, "1");
    let polls = 0;
    const { promise, resolve } = Promise.withResolvers<void>();
    const source = new FileSystemSource({
      servables: [{ name: "foo", basePath: base }],
      pollWaitSeconds: 0.01,
      onAspiredVersions: () => {
        if (++polls === 3) resolve();
      },
      log: () => {},
    });
    source.start();
    await promise;
    await source.stop(); // clears the timer: the test sanitizer would fail otherwise
    const after = polls;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(polls, after);
    await source.pollNow(); // a no-op once stopped
    assert.equal(polls, after);
  });
});
