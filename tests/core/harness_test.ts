import assert from "node:assert/strict";
import { Code, ServingError } from "../../src/errors.ts";
import { LoaderHarness, statusString } from "../../src/core/harness.ts";
import type { Loader, LogLevel, ServableId } from "../../src/core/loader.ts";

const ID: ServableId = { name: "foo", version: 1 };

/** A loader whose loads are settled by hand. */
class FakeLoader implements Loader<string> {
  readonly loads: { resolve: (v: string) => void; reject: (e: unknown) => void }[] = [];
  readonly unloads: string[] = [];
  unloadError: Error | undefined;
  load(): Promise<string> {
    return new Promise((resolve, reject) => this.loads.push({ resolve, reject }));
  }
  unload(servable: string): void {
    this.unloads.push(servable);
    if (this.unloadError) throw this.unloadError;
  }
}

/** A loader that fails `failures` times, then succeeds. */
function flakyLoader(failures: number): Loader<string> & { attempts: number } {
  return {
    attempts: 0,
    load() {
      return ++this.attempts <= failures
        ? Promise.reject(new ServingError(Code.NOT_FOUND, `attempt ${this.attempts}`))
        : Promise.resolve("servable");
    },
    unload() {},
  };
}

function logger() {
  const lines: string[] = [];
  return { lines, log: (_level: LogLevel, message: string) => lines.push(message) };
}

/** Lets pending promise reactions run. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("LoaderHarness loads and unloads through new → loading → ready → disabled", async () => {
  const loader = new FakeLoader();
  const { lines, log } = logger();
  const h = new LoaderHarness(ID, loader, { log });
  assert.equal(h.state, "new");
  const loaded = h.load();
  assert.equal(h.state, "loading"); // synchronously
  loader.loads[0].resolve("model");
  assert.equal(await loaded, "model");
  assert.equal(h.state, "ready");
  assert.equal(h.servable, "model");

  h.startQuiescing();
  assert.equal(h.state, "quiescing");
  await h.unload();
  assert.equal(h.state, "disabled");
  assert.deepEqual(loader.unloads, ["model"]);
  assert.equal(h.servable, undefined);
  assert.equal(h.status, undefined);
  assert.deepEqual(lines, [
    "Loading servable version {name: foo version: 1}",
    "Successfully loaded servable version {name: foo version: 1}",
    "Quiescing servable version {name: foo version: 1}",
    "Done quiescing servable version {name: foo version: 1}",
    "Unloading servable version {name: foo version: 1}",
    "Done unloading servable version {name: foo version: 1}",
  ]);
});

Deno.test("LoaderHarness.transition() refuses an illegal transition and goes to error", () => {
  const errors: ServingError[] = [];
  const h = new LoaderHarness(ID, new FakeLoader(), {
    log: () => {},
    onError: (_id, e) => errors.push(e),
  });
  assert.throws(() => h.transition("ready", "quiescing"), (e: ServingError) => {
    assert.equal(e.code, Code.INTERNAL);
    assert.equal(e.message, "Illegal request to transition from state new to quiescing");
    return true;
  });
  assert.equal(h.state, "error");
  assert.equal(errors.length, 1);
  // A second load is refused too: the test-and-change is guarded.
  const h2 = new LoaderHarness(ID, new FakeLoader(), { log: () => {} });
  h2.transition("new", "loading");
  assert.throws(() => h2.transition("new", "loading"), /from state loading to loading/);
});

Deno.test("LoaderHarness.load() refuses a second load", async () => {
  const loader = new FakeLoader();
  const h = new LoaderHarness(ID, loader, { log: () => {} });
  const first = h.load();
  await assert.rejects(h.load(), /Illegal request to transition from state loading to loading/);
  assert.equal(h.state, "error");
  loader.loads[0].resolve("x");
  await assert.rejects(first, /from state error to ready/);
});

Deno.test("LoaderHarness.load() retries a failed load and succeeds", async () => {
  const loader = flakyLoader(2);
  const { lines, log } = logger();
  const h = new LoaderHarness(ID, loader, { maxNumLoadRetries: 2, loadRetryIntervalMs: 1, log });
  assert.equal(await h.load(), "servable");
  assert.equal(loader.attempts, 3);
  assert.equal(h.state, "ready");
  assert.deepEqual(lines, [
    "Loading servable version {name: foo version: 1}",
    "Loading servable: {name: foo version: 1} failed: NOT_FOUND: attempt 1",
    "Retrying of Loading servable: {name: foo version: 1} retry: 1",
    "Loading servable: {name: foo version: 1} failed: NOT_FOUND: attempt 2",
    "Retrying of Loading servable: {name: foo version: 1} retry: 2",
    "Successfully loaded servable version {name: foo version: 1}",
  ]);
});

Deno.test("LoaderHarness.load() gives up after maxNumLoadRetries and reports the error", async () => {
  const loader = flakyLoader(10);
  const { lines, log } = logger();
  const errors: [ServableId, ServingError][] = [];
  const h = new LoaderHarness(ID, loader, {
    maxNumLoadRetries: 2,
    loadRetryIntervalMs: 1,
    log,
    onError: (id, e) => errors.push([id, e]),
  });
  await assert.rejects(h.load(), (e: ServingError) => e.message === "attempt 3");
  assert.equal(loader.attempts, 3);
  assert.equal(h.state, "error");
  assert.equal(h.status?.code, Code.NOT_FOUND);
  assert.deepEqual(errors.map(([id, e]) => [id, e.message]), [[ID, "attempt 3"]]);
  assert.deepEqual(lines.slice(-2), [
    "Retrying of Loading servable: {name: foo version: 1} exhausted max_num_retries: 2",
    "Encountered an error for servable version {name: foo version: 1}: NOT_FOUND: attempt 3",
  ]);
});

Deno.test("LoaderHarness.load() without retries fails at once; non-ServingErrors become INTERNAL", async () => {
  const h = new LoaderHarness<string>(ID, {
    load: () => Promise.reject(new Error("boom")),
    unload() {},
  }, { log: () => {} });
  await assert.rejects(h.load(), /boom/);
  assert.equal(h.status?.code, Code.INTERNAL);
  // A loader that throws synchronously is handled the same way.
  const h2 = new LoaderHarness<string>(ID, {
    load: () => {
      throw new Error("sync");
    },
    unload() {},
  }, { log: () => {} });
  await assert.rejects(h2.load(), /sync/);
  assert.equal(h2.state, "error");
});

Deno.test("LoaderHarness.cancelLoadRetry() ends a retry wait at once", async () => {
  const loader = flakyLoader(10);
  const { lines, log } = logger();
  const h = new LoaderHarness(ID, loader, {
    maxNumLoadRetries: 5,
    loadRetryIntervalMs: 60_000, // would hang the test (and leak a timer) if not cancelled
    log,
  });
  const loaded = h.load();
  await tick();
  assert.equal(loader.attempts, 1);
  h.cancelLoadRetry();
  await assert.rejects(loaded, /attempt 1/);
  assert.equal(loader.attempts, 1);
  assert.equal(h.state, "error");
  assert.ok(lines.includes("Retrying of Loading servable: {name: foo version: 1} was cancelled."));
});

Deno.test("LoaderHarness unloads a load that succeeded after it was cancelled", async () => {
  const loader = new FakeLoader();
  const { lines, log } = logger();
  const errors: ServingError[] = [];
  const h = new LoaderHarness(ID, loader, { log, onError: (_id, e) => errors.push(e) });
  const loaded = h.load();
  h.cancelLoadRetry();
  loader.loads[0].resolve("model");
  await assert.rejects(loaded, (e: ServingError) => {
    assert.equal(e.code, Code.CANCELLED);
    assert.equal(e.message, "Loading of servable cancelled");
    return true;
  });
  assert.equal(h.state, "disabled");
  assert.deepEqual(loader.unloads, ["model"]);
  assert.equal(errors[0].code, Code.CANCELLED);
  assert.ok(lines.includes("Unloading just-loaded servable version {name: foo version: 1}"));
});

Deno.test("LoaderHarness goes to error when unload() fails", async () => {
  const loader = new FakeLoader();
  loader.unloadError = new Error("cannot free");
  const errors: ServingError[] = [];
  const h = new LoaderHarness(ID, loader, { log: () => {}, onError: (_id, e) => errors.push(e) });
  const loaded = h.load();
  loader.loads[0].resolve("m");
  await loaded;
  h.startQuiescing();
  await h.unload();
  assert.equal(h.state, "error");
  assert.equal(h.status?.message, "cannot free");
  assert.equal(errors.length, 1);
});

Deno.test("statusString() formats like absl::Status::ToString()", () => {
  assert.equal(statusString(new ServingError(Code.NOT_FOUND, "gone")), "NOT_FOUND: gone");
});
