/**
 * Tests of the split-kernel team (`src/kernels/wasm/team.ts`) with real worker isolates: a task
 * is split between members, each part runs once, an idle member helps; and a convolution model
 * run on a pool whose workers split it gives exactly the one-thread result.
 *
 * @module
 */
import assert from "node:assert/strict";
import { kernelMemory, sharedHeap } from "../../src/kernels/wasm/shared_memory.ts";
import {
  addSplitSample,
  nextExploreInterval,
  nextShare,
  noteMemberStopped,
  setCallPending,
  teamTotals,
  watchSpanMs,
} from "../../src/kernels/wasm/team.ts";
import { Executor } from "../../src/exec/executor.ts";
import { shareConstants } from "../../src/exec/shared_model.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { CORPUS_ROOT, corpusModelDir, readManifest } from "../real_models.ts";

function startWorker(id: number): Promise<Worker> {
  const w = new Worker(new URL("./team_worker.ts", import.meta.url).href, { type: "module" });
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => (e.data.adopted ? resolve(w) : reject(new Error("not adopted")));
    w.onerror = (e) => reject(e);
    w.postMessage({ type: "init", id, memory: kernelMemory() });
  });
}

/** Terminates test workers 1 and 2 and takes them out of the team's counts, as the executor does. */
function stopWorkers(a: Worker, b: Worker): void {
  a.terminate();
  b.terminate();
  noteMemberStopped(1);
  noteMemberStopped(2);
}

Deno.test("a worker watches for its next call as long as its recent calls took to come", () => {
  // Nothing known yet, or calls that follow at once: the 1 ms watch.
  assert.equal(watchSpanMs([]), 1);
  assert.equal(watchSpanMs([0.1, 0.3, 0.2]), 1);
  // Calls 2.1 ms apart (selfie's large tensors): watched for 1.5 times that.
  assert.ok(Math.abs(watchSpanMs([2.1, 2.0, 2.3, 2.1, 9]) - 3.15) < 1e-9);
  // The median: one long gap (a pause of the client) does not stretch the watch.
  assert.ok(Math.abs(watchSpanMs([2, 2, 50]) - 3) < 1e-9);
  // Sparse traffic (gaps past 4 ms): back to 1 ms, not a core burnt after every call.
  assert.equal(watchSpanMs([5, 6, 7]), 1);
  assert.equal(watchSpanMs([3, 4.5, 100]), 1);
  assert.equal(watchSpanMs([4, 4, 4]), 6);
});

Deno.test("an exploring split that beats running alone outweighs the losses before it", () => {
  // Five losses (a cold helper) against 1 alone: the median says do not split.
  const samples = [3, 3, 3, 3, 3];
  // A split run while the class still splits adds to them.
  assert.equal(addSplitSample(samples, 0.6, 1, false), false);
  assert.deepEqual(samples, [3, 3, 3, 3, 0.6]);
  // An exploration that loses too adds to them.
  assert.equal(addSplitSample(samples, 1.2, 1, true), false);
  assert.deepEqual(samples, [3, 3, 3, 0.6, 1.2]);
  // An exploration that pays replaces them: the class splits again from its next call.
  assert.equal(addSplitSample(samples, 0.6, 1, true), true);
  assert.deepEqual(samples, [0.6]);
});

Deno.test("explorations back off while splitting clearly pays or clearly loses", () => {
  // Splits at half the time alone: 16, 32, 64, 128 calls apart, then every 128.
  let every = 16;
  const seen: number[] = [];
  for (let i = 0; i < 5; i++) seen.push(every = nextExploreInterval(every, 0.5));
  assert.deepEqual(seen, [32, 64, 128, 128, 128]);
  // A ratio near one (either side of the decision) or not yet known: every 16 calls again.
  for (const ratio of [0.9, 1, 1.2, NaN]) assert.equal(nextExploreInterval(128, ratio), 16);
  // Losing badly (a machine busy elsewhere): up to 512 apart.
  assert.equal(nextExploreInterval(256, 2), 512);
  assert.equal(nextExploreInterval(512, 2), 512);
});

Deno.test("a split in two moves its cut toward both members finishing together", () => {
  // Equal halves, equal times: it stays.
  assert.equal(nextShare(0.5, 1, 1), 0.5);
  // The helper's half took 1.5 times the caller's: the caller's share grows, by a step.
  const s1 = nextShare(0.5, 0.082, 0.127);
  assert.ok(s1 > 0.5 && s1 < 0.608, `${s1}`);
  // Repeated, it settles where both take as long (share 0.608 for those speeds).
  let s = 0.5;
  for (let i = 0; i < 40; i++) {
    const t0 = s / 0.5 * 0.082, t1 = (1 - s) / 0.5 * 0.127;
    s = nextShare(s, t0, t1);
  }
  assert.ok(Math.abs(s - 0.6077) < 0.002, `${s}`);
  // The other way, and never past the bounds however lopsided the times.
  assert.ok(nextShare(0.5, 2, 1) < 0.5);
  assert.equal(nextShare(0.74, 0.001, 100), 0.75);
  assert.equal(nextShare(0.26, 100, 0.001), 0.25);
});

Deno.test("runSplit: every part runs once, and an idle member helps", async () => {
  const a = await startWorker(1);
  const b = await startWorker(2);
  try {
    const parts = 8;
    const offset = sharedHeap().alloc(parts * 4);
    new Int32Array(kernelMemory().buffer, offset, parts).fill(0);
    const before = teamTotals();
    const done = new Promise<{ split: boolean; words: number[] }>((r) => {
      a.onmessage = (e) => r(e.data);
    });
    a.postMessage({ type: "go", offset, parts, waitForHelp: true });
    const { split, words } = await done;
    assert.ok(split, "two members: the task was split");
    // Each word holds the id of the member that ran that part: all ran, some by the helper.
    assert.ok(words.every((w) => w === 1 || w === 2), `parts: ${words}`);
    // Part 0 is the caller's, claimed as it posts (a helper starts from part 1); it waits for a
    // helper to run another.
    assert.equal(words[0], 1, "the caller ran part 0");
    assert.ok(words.includes(2), "the idle member ran a part");
    const after = teamTotals();
    assert.equal(after.split - before.split, 1);
    assert.equal(after.helped - before.helped, words.filter((w) => w === 2).length);
    sharedHeap().free(offset, parts * 4);
  } finally {
    stopWorkers(a, b);
  }
});

Deno.test("runSplit: a part the caller runs that throws ends the split with its error", async () => {
  const a = await startWorker(1);
  const b = await startWorker(2);
  try {
    for (const throwOn of [0, 3]) {
      const parts = 4;
      const offset = sharedHeap().alloc(parts * 4);
      new Int32Array(kernelMemory().buffer, offset, parts).fill(0);
      const done = new Promise<{ split: boolean; error: string }>((r) => {
        a.onmessage = (e) => r(e.data);
      });
      // Part 0 is the caller's; part 3 is run by whoever claims it (the caller if it gets there).
      a.postMessage({ type: "go", offset, parts, throwOn });
      const { error } = await done;
      if (throwOn === 0) assert.equal(error, "part 0 failed");
      else assert.ok(error === "" || error === "part 3 failed", error);
      sharedHeap().free(offset, parts * 4);
    }
  } finally {
    stopWorkers(a, b);
  }
});

Deno.test("a member with a call pending does not help", async () => {
  const a = await startWorker(1);
  const b = await startWorker(2);
  try {
    const parts = 8;
    const offset = sharedHeap().alloc(parts * 4);
    new Int32Array(kernelMemory().buffer, offset, parts).fill(0);
    setCallPending(2, true);
    const before = teamTotals();
    const done = new Promise<{ split: boolean; words: number[] }>((r) => {
      a.onmessage = (e) => r(e.data);
    });
    // The caller holds its first part 300 ms: time enough for an idle member to take the rest.
    a.postMessage({ type: "go", offset, parts, waitForHelp: false, holdMs: 300 });
    const { split, words } = await done;
    assert.ok(split);
    assert.deepEqual(words, new Array(parts).fill(1), "the caller ran every part");
    assert.equal(teamTotals().helped, before.helped);
    sharedHeap().free(offset, parts * 4);
  } finally {
    setCallPending(2, false);
    stopWorkers(a, b);
  }
});

Deno.test("a member's call keeps the team hot until it ends, or until the member stops", async () => {
  const a = await startWorker(1);
  const b = await startWorker(2);
  const say = (w: Worker, type: string) =>
    new Promise<void>((r) => {
      w.onmessage = () => r();
      w.postMessage({ type });
    });
  try {
    const base = teamTotals().running;
    await say(a, "begin");
    assert.equal(teamTotals().running, base + 1);
    // A second begin of the same member's call counts once.
    await say(a, "begin");
    assert.equal(teamTotals().running, base + 1);
    await say(a, "end");
    assert.equal(teamTotals().running, base);
    await say(b, "begin");
    assert.equal(teamTotals().running, base + 1);
    // Its worker stopped mid-call (terminated): the call no longer keeps anyone hot.
    b.terminate();
    noteMemberStopped(2);
    assert.equal(teamTotals().running, base);
  } finally {
    a.terminate();
    noteMemberStopped(1);
  }
});

Deno.test("a short task is not posted while no member polls for tasks; it runs alone", async () => {
  const a = await startWorker(1);
  const b = await startWorker(2);
  try {
    // b idles in its event loop (no call runs, nothing to help): it does not poll.
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(teamTotals().running, 0);
    assert.equal(teamTotals().polling, 0);
    const parts = 4;
    const offset = sharedHeap().alloc(parts * 4);
    new Int32Array(kernelMemory().buffer, offset, parts).fill(0);
    const done = new Promise<{ split: boolean; words: number[]; posted: number; alone: number }>(
      (r) => {
        a.onmessage = (e) => r(e.data);
      },
    );
    // A measured task (work > 0) that nobody has timed yet: not worth a helper's wake-up.
    a.postMessage({ type: "go", offset, parts, waitForHelp: false, work: 1000 });
    const r = await done;
    assert.ok(r.split, "runSplit ran the task (here)");
    assert.equal(r.posted, 0, "nothing was posted");
    assert.equal(r.alone, 1);
    assert.deepEqual(r.words, new Array(parts).fill(1), "the caller ran every part");
    sharedHeap().free(offset, parts * 4);
  } finally {
    stopWorkers(a, b);
  }
});

Deno.test("a convolution model split across pool workers gives the one-thread result exactly", async () => {
  const name = "selfie";
  const manifest = await readManifest(name);
  const c = manifest.cases.find((k) => k.batch === 1) ?? manifest.cases[0];
  const feeds: Record<string, Tensor> = {};
  for (const [k, spec] of Object.entries(c.inputs)) {
    const bytes = await Deno.readFile(`${CORPUS_ROOT}${name}/data/${spec.file}`);
    assert.equal(spec.dtype, "DT_FLOAT");
    feeds[k] = new Tensor(DataType.DT_FLOAT, spec.shape, new Float32Array(bytes.buffer));
  }
  const single = (await loadModel(corpusModelDir(name))).signature("serving_default").run(feeds);
  const model = await loadModel(corpusModelDir(name), { prepare: shareConstants });
  await using exec = new Executor({ workers: 2, inlineBelowMs: 0 });
  await exec.attach(model, name);
  const sig = model.signature("serving_default");
  const aliases = sig.outputs.map((o) => o.alias);
  const before = teamTotals();
  // Splitting is learned (a node's first calls run alone, a cold machine's splits may not pay
  // at first): calls go on until some split, at most 30.
  for (let i = 0; i < 30 && (i < 3 || teamTotals().split === before.split); i++) {
    const outs = await exec.run(model, {
      target: { signature: "serving_default", outputs: aliases },
      feeds: sig.inputs.map((t) => feeds[t.alias]),
      finish: (o) => o,
    });
    outs.forEach((t, j) => {
      const want = single[aliases[j]].data as Float32Array;
      const got = t.data as Float32Array;
      assert.equal(got.length, want.length);
      for (let e = 0; e < got.length; e++) {
        if (!Object.is(got[e], want[e])) {
          assert.fail(`${aliases[j]}[${e}]: ${got[e]} split, ${want[e]} in one thread`);
        }
      }
    });
  }
  assert.ok(teamTotals().split > before.split, "the workers split its convolutions");
});
