import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import type { Loader, LogLevel } from "../../src/core/loader.ts";
import {
  ServableManager,
  type ServableManagerOptions,
  type ServableStateEvent,
} from "../../src/core/manager.ts";

/** A loader whose loads are settled by hand; `value` is what a successful load returns. */
class FakeLoader implements Loader<string> {
  readonly loads: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  readonly unloads: string[] = [];
  constructor(readonly value: string) {}
  load(): Promise<string> {
    return new Promise((resolve, reject) =>
      this.loads.push({ resolve: () => resolve(this.value), reject })
    );
  }
  unload(servable: string): void {
    this.unloads.push(servable);
  }
  /** Resolves the latest load attempt. */
  finish(): void {
    this.loads.at(-1)!.resolve();
  }
}

/** A loader that loads at once. */
const ready = (value: string): Loader<string> & { unloads: string[] } => ({
  unloads: [],
  load: () => Promise.resolve(value),
  unload(s: string) {
    this.unloads.push(s);
  },
});

/** A loader that always fails, counting attempts. */
const failing = (message: string): Loader<string> & { attempts: number } => ({
  attempts: 0,
  load() {
    ++this.attempts;
    return Promise.reject(new ServingError(Code.DATA_LOSS, message));
  },
  unload() {},
});

/** A manager recording its log lines and published states. */
function makeManager(options: ServableManagerOptions = {}) {
  const lines: string[] = [];
  const events: string[] = [];
  const manager = new ServableManager<string>({
    log: (_level: LogLevel, message: string) => lines.push(message),
    onStateChange: (e: ServableStateEvent) => events.push(`${e.id.version}:${e.state}`),
    ...options,
  });
  return { manager, lines, events };
}

/** The servable a request would get now (the handle is released at once). */
function peek(manager: ServableManager<string>, name: string, version?: number): string {
  using handle = manager.acquire(name, version);
  return handle.servable;
}

/** Lets pending promise reactions run. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

const notFound = (message: string) => (e: ServingError) => {
  assert.equal(e.code, Code.NOT_FOUND);
  assert.equal(e.message, message);
  return true;
};

Deno.test("ServableManager loads an aspired version and lends it out", async () => {
  const { manager, lines, events } = makeManager();
  const loader = new FakeLoader("v1");
  manager.setAspiredVersions("foo", [{ version: 1, loader }]);
  assert.deepEqual(manager.status("foo"), [{ version: 1, state: "LOADING" }]);
  assert.throws(
    () => manager.acquire("foo"),
    notFound("Servable not found for request: Latest(foo)"),
  );

  loader.finish();
  await manager.settled();
  assert.deepEqual(events, ["1:START", "1:LOADING", "1:AVAILABLE"]);
  assert.deepEqual(manager.status("foo"), [{ version: 1, state: "AVAILABLE" }]);
  assert.deepEqual(manager.names(), ["foo"]);
  assert.deepEqual(manager.availableVersions("foo"), [1]);
  {
    using h = manager.acquire("foo");
    assert.equal(h.servable, "v1");
    assert.deepEqual(h.id, { name: "foo", version: 1 });
    using h1 = manager.acquire("foo", 1);
    assert.equal(h1.servable, "v1");
  }
  assert.deepEqual(lines, [
    "Loading servable version {name: foo version: 1}",
    "Successfully loaded servable version {name: foo version: 1}",
  ]);
  await manager.stop();
  assert.deepEqual(loader.unloads, ["v1"]);
});

Deno.test("ServableManager.acquire() reports TF Serving's NOT_FOUND messages", async () => {
  const { manager } = makeManager();
  assert.throws(
    () => manager.acquire("bar"),
    notFound("Servable not found for request: Latest(bar)"),
  );
  assert.throws(
    () => manager.acquire("bar", 3),
    notFound("Servable not found for request: Specific(bar, 3)"),
  );
  manager.setAspiredVersions("foo", [{ version: 1, loader: ready("v1") }]);
  await manager.settled();
  assert.throws(
    () => manager.acquire("foo", 3),
    notFound("Servable not found for request: Specific(foo, 3)"),
  );
  assert.deepEqual(manager.status("bar"), []);
  await manager.stop();
});

Deno.test("ServableManager keeps the old version available until the new one is", async () => {
  const { manager, events } = makeManager();
  const v1 = new FakeLoader("v1");
  manager.setAspiredVersions("foo", [{ version: 1, loader: v1 }]);
  v1.finish();
  await manager.settled();

  const v2 = new FakeLoader("v2");
  manager.setAspiredVersions("foo", [{ version: 2, loader: v2 }]);
  await tick();
  // v2 is loading; v1 is no longer aspired but keeps serving.
  assert.deepEqual(manager.status("foo"), [
    { version: 2, state: "LOADING" },
    { version: 1, state: "AVAILABLE" },
  ]);
  {
    using h = manager.acquire("foo");
    assert.equal(h.servable, "v1");
  }
  assert.deepEqual(v1.unloads, []);

  v2.finish();
  await manager.settled();
  assert.deepEqual(events, [
    "1:START",
    "1:LOADING",
    "1:AVAILABLE",
    "2:START",
    "2:LOADING",
    "2:AVAILABLE",
    "1:UNLOADING",
    "1:END",
  ]);
  assert.deepEqual(v1.unloads, ["v1"]);
  assert.equal(peek(manager, "foo"), "v2");
  assert.throws(
    () => manager.acquire("foo", 1),
    notFound("Servable not found for request: Specific(foo, 1)"),
  );
  assert.deepEqual(manager.status("foo"), [
    { version: 2, state: "AVAILABLE" },
    { version: 1, state: "END" },
  ]);
});

Deno.test("ServableManager waits for handles in flight before unloading", async () => {
  const { manager, lines } = makeManager();
  const v1 = ready("v1");
  manager.setAspiredVersions("foo", [{ version: 1, loader: v1 }]);
  await manager.settled();

  const handle = manager.acquire("foo");
  manager.setAspiredVersions("foo", []);
  await tick();
  assert.deepEqual(manager.status("foo"), [{ version: 1, state: "UNLOADING" }]);
  assert.deepEqual(v1.unloads, []); // pinned by the handle
  assert.throws(
    () => manager.acquire("foo"),
    notFound("Servable not found for request: Latest(foo)"),
  );
  assert.equal(handle.servable, "v1"); // still usable by the request in flight

  let settled = false;
  const done = manager.settled().then(() => settled = true);
  await tick();
  assert.equal(settled, false);

  handle[Symbol.dispose]();
  await done;
  assert.deepEqual(v1.unloads, ["v1"]);
  assert.deepEqual(manager.status("foo"), [{ version: 1, state: "END" }]);
  assert.throws(() => handle.servable, (e: ServingError) => e.code === Code.FAILED_PRECONDITION);
  handle.release(); // idempotent
  assert.deepEqual(lines.slice(-4), [
    "Quiescing servable version {name: foo version: 1}",
    "Done quiescing servable version {name: foo version: 1}",
    "Unloading servable version {name: foo version: 1}",
    "Done unloading servable version {name: foo version: 1}",
  ]);
});

Deno.test("ServableManager reports a version that fails to load as END with the error while others serve", async () => {
  const { manager, lines } = makeManager({ maxNumLoadRetries: 2, loadRetryIntervalMs: 1 });
  manager.setAspiredVersions("foo", [{ version: 1, loader: ready("v1") }]);
  await manager.settled();

  const bad = failing("corrupt checkpoint");
  manager.setAspiredVersions("foo", [{ version: 2, loader: bad }]);
  await manager.settled();
  assert.equal(bad.attempts, 3);
  const [v2, v1] = manager.status("foo");
  assert.equal(v2.version, 2);
  assert.equal(v2.state, "END");
  assert.equal(v2.error?.code, Code.DATA_LOSS);
  assert.equal(v2.error?.message, "corrupt checkpoint");
  assert.deepEqual(v1, { version: 1, state: "AVAILABLE" });
  assert.equal(peek(manager, "foo"), "v1");
  assert.ok(lines.includes(
    "Servable {name: foo version: 2} cannot be loaded: DATA_LOSS: corrupt checkpoint",
  ));
  assert.ok(lines.includes(
    "Retrying of Loading servable: {name: foo version: 2} exhausted max_num_retries: 2",
  ));

  // Re-sending the same list does not retry the failed version (as upstream, without
  // enable_reload_servables_with_error).
  manager.setAspiredVersions("foo", [{ version: 2, loader: bad }]);
  await manager.settled();
  assert.equal(bad.attempts, 3);

  // Once it is dropped and listed again, it is loaded afresh.
  manager.setAspiredVersions("foo", [{ version: 1, loader: ready("v1") }]);
  const good = ready("v2");
  manager.setAspiredVersions("foo", [{ version: 2, loader: good }]);
  await manager.settled();
  assert.equal(peek(manager, "foo"), "v2");
  await manager.stop();
});

Deno.test("ServableManager unloads a version that is no longer aspired", async () => {
  const { manager } = makeManager();
  const v1 = ready("v1");
  const v2 = ready("v2");
  manager.setAspiredVersions("foo", [{ version: 1, loader: v1 }, { version: 2, loader: v2 }]);
  await manager.settled();
  assert.deepEqual(manager.availableVersions("foo"), [1, 2]);
  assert.equal(peek(manager, "foo"), "v2"); // the latest

  manager.setAspiredVersions("foo", [{ version: 2, loader: ready("ignored") }]);
  await manager.settled();
  assert.deepEqual(v1.unloads, ["v1"]);
  assert.deepEqual(v2.unloads, []);
  assert.deepEqual(manager.availableVersions("foo"), [2]);
  assert.equal(peek(manager, "foo"), "v2"); // the original loader's servable
  assert.deepEqual(manager.status("foo"), [
    { version: 2, state: "AVAILABLE" },
    { version: 1, state: "END" },
  ]);
  await manager.stop();
  assert.deepEqual(v2.unloads, ["v2"]);
});

Deno.test("ServableManager ignores a repeated aspired list", async () => {
  const { manager, events } = makeManager();
  let loads = 0;
  const loader = (): Loader<string> => ({
    load: () => Promise.resolve(`load ${++loads}`),
    unload() {},
  });
  for (let i = 0; i < 3; i++) {
    manager.setAspiredVersions("foo", [{ version: 7, loader: loader() }]);
    await manager.settled();
  }
  assert.equal(loads, 1);
  assert.deepEqual(events, ["7:START", "7:LOADING", "7:AVAILABLE"]);
  await manager.stop();
});

Deno.test("ServableManager cancels a load whose version stops being aspired", async () => {
  const { manager, lines } = makeManager();
  const loader = new FakeLoader("v1");
  manager.setAspiredVersions("foo", [{ version: 1, loader }]);
  manager.setAspiredVersions("foo", []);
  loader.finish();
  await manager.settled();
  const [s] = manager.status("foo");
  assert.equal(s.state, "END");
  assert.equal(s.error?.code, Code.CANCELLED);
  assert.deepEqual(loader.unloads, ["v1"]);
  assert.ok(lines.includes(
    "Servable {name: foo version: 1} cannot be loaded: CANCELLED: Loading of servable cancelled",
  ));
  assert.throws(() => manager.acquire("foo"), /Latest\(foo\)/);
});

Deno.test("ServableManager cancels a failing load's retries when it stops being aspired", async () => {
  const { manager } = makeManager({ maxNumLoadRetries: 5, loadRetryIntervalMs: 60_000 });
  const bad = failing("nope");
  manager.setAspiredVersions("foo", [{ version: 1, loader: bad }]);
  await tick();
  manager.setAspiredVersions("foo", [{ version: 2, loader: ready("v2") }]);
  await manager.settled(); // would wait a minute if the retry wait were not cancelled
  assert.equal(bad.attempts, 1);
  assert.equal(peek(manager, "foo"), "v2");
  await manager.stop();
});

Deno.test("ServableManager loads several versions concurrently", async () => {
  const { manager } = makeManager();
  const a = new FakeLoader("a");
  const b = new FakeLoader("b");
  manager.setAspiredVersions("foo", [{ version: 1, loader: a }, { version: 2, loader: b }]);
  assert.equal(a.loads.length, 1);
  assert.equal(b.loads.length, 1);
  a.finish();
  await tick();
  assert.equal(peek(manager, "foo"), "a"); // 2 is not available yet
  b.finish();
  await manager.settled();
  assert.equal(peek(manager, "foo"), "b");
  await manager.stop();
});

Deno.test("ServableManager postpones re-aspiring a version until its unload finishes", async () => {
  const { manager, events } = makeManager();
  const first = ready("first");
  manager.setAspiredVersions("foo", [{ version: 1, loader: first }]);
  await manager.settled();
  const handle = manager.acquire("foo");
  manager.setAspiredVersions("foo", []);
  const second = ready("second");
  manager.setAspiredVersions("foo", [{ version: 1, loader: second }]);
  await tick();
  assert.deepEqual(manager.status("foo"), [{ version: 1, state: "UNLOADING" }]);
  handle.release();
  await manager.settled();
  assert.deepEqual(first.unloads, ["first"]);
  assert.equal(peek(manager, "foo"), "second");
  assert.deepEqual(events.slice(-5), [
    "1:UNLOADING",
    "1:END",
    "1:START",
    "1:LOADING",
    "1:AVAILABLE",
  ]);
  await manager.stop();
});

Deno.test("ServableManager keeps servable streams apart", async () => {
  const { manager } = makeManager();
  manager.setAspiredVersions("a", [{ version: 1, loader: ready("a1") }]);
  manager.setAspiredVersions("b", [{ version: 5, loader: ready("b5") }]);
  await manager.settled();
  assert.deepEqual(manager.names(), ["a", "b"]);
  assert.equal(peek(manager, "a"), "a1");
  assert.equal(peek(manager, "b", 5), "b5");
  assert.throws(() => manager.acquire("a", 5), /Specific\(a, 5\)/);
  await manager.stop();
});

Deno.test("ServableManager.setAspiredVersions() rejects bad versions", () => {
  const { manager } = makeManager();
  for (const version of [-1, 1.5, NaN]) {
    assert.throws(
      () => manager.setAspiredVersions("foo", [{ version, loader: ready("x") }]),
      (e: ServingError) => e.code === Code.INVALID_ARGUMENT,
    );
  }
  assert.throws(
    () =>
      manager.setAspiredVersions("foo", [
        { version: 1, loader: ready("x") },
        { version: 1, loader: ready("y") },
      ]),
    /version 1 is listed twice/,
  );
});

Deno.test("ServableManager.stop() unloads everything after the handles drain", async () => {
  const { manager, lines } = makeManager({ maxNumLoadRetries: 5, loadRetryIntervalMs: 60_000 });
  const a = ready("a");
  const b = ready("b");
  manager.setAspiredVersions("a", [{ version: 1, loader: a }]);
  manager.setAspiredVersions("b", [{ version: 1, loader: b }]);
  manager.setAspiredVersions("c", [{ version: 1, loader: failing("retrying forever") }]);
  await tick(); // a and b load; c fails and waits a minute to retry
  const handle = manager.acquire("a");
  let stopped = false;
  const stopping = manager.stop().then(() => stopped = true);
  await tick();
  assert.equal(stopped, false);
  assert.deepEqual(b.unloads, ["b"]);
  assert.deepEqual(a.unloads, []);
  assert.equal(handle.servable, "a");
  handle.release();
  await stopping;
  assert.deepEqual(a.unloads, ["a"]);
  assert.ok(lines.includes("Unload all remaining servables in the manager."));
  assert.equal(manager.status("c")[0].state, "END");
  // Stopped: new aspired versions are ignored.
  manager.setAspiredVersions("a", [{ version: 2, loader: ready("a2") }]);
  await manager.settled();
  assert.throws(() => manager.acquire("a"), /Latest\(a\)/);
  await manager.stop(); // idempotent
});

Deno.test("ServableManager works with await using", async () => {
  const loader = ready("x");
  {
    await using manager = new ServableManager<string>({ log: () => {} });
    manager.setAspiredVersions("foo", [{ version: 1, loader }]);
    await manager.whenIdle();
    using h = manager.acquire("foo");
    assert.equal(h.version, 1);
    assert.equal(h.name, "foo");
  }
  assert.deepEqual(loader.unloads, ["x"]);
});
