/**
 * The placement bookkeeping on its own: the cost estimate and the idle rule's choices, from
 * given measurements (no clock).
 */
import assert from "node:assert/strict";
import {
  IDLE_INLINE_FACTOR,
  idleRunsHere,
  measure,
  measureHere,
  measurePooled,
  newCost,
  PROBE_CALLS,
  PROBE_EVERY,
  TRIAL_CALLS,
} from "../../src/exec/placement.ts";

/** The threshold the tests use (ms); the idle rule's limit is IDLE_INLINE_FACTOR times it. */
const T = 1;
const LIMIT = IDLE_INLINE_FACTOR * T;

/** Where `n` calls of one unit go: "h" here, "p" the pool. */
function choices(cost: ReturnType<typeof newCost>, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += idleRunsHere(cost, 1, T) ? "h" : "p";
  return s;
}

Deno.test("the estimate is the least of the last four calls", () => {
  const cost = newCost();
  for (const ms of [5, 3, 4, 6]) measure(cost, ms);
  assert.equal(cost.least, 3);
  measure(cost, 7);
  assert.equal(cost.least, 3);
  measure(cost, 8);
  assert.equal(cost.least, 4, "the 3 ms call is no longer among the last four");
});

Deno.test("the idle rule waits for the pool's time, and stays off with the threshold off", () => {
  const cost = newCost();
  measure(cost, 0.5 * LIMIT);
  assert.equal(idleRunsHere(cost, 1, T), false, "the pool has not answered one yet");
  measurePooled(cost, 0.5 * LIMIT, 2 * LIMIT);
  assert.equal(idleRunsHere(cost, 1, 0), false, "inlineBelowMs 0: nothing runs inline");
});

Deno.test("the idle rule runs TRIAL_CALLS calls here to measure, if the estimate is under twice the limit", () => {
  // A helped pooled call counted as (time x workers): maybe far less alone.
  const cost = newCost();
  measurePooled(cost, 1.9 * LIMIT, 1.2 * LIMIT);
  // The first call here is cold (5 times the limit: not a sample); the next ones are not.
  for (const ms of [5, ...new Array(TRIAL_CALLS).fill(0.5)]) {
    assert.equal(idleRunsHere(cost, 1, T), true);
    measureHere(cost, ms * LIMIT);
  }
  assert.deepEqual(cost.here, new Array(TRIAL_CALLS).fill(0.5 * LIMIT), "the cold call is out");
  assert.equal(idleRunsHere(cost, 1, T), true, "judged: here is faster");
  const costly = newCost();
  measurePooled(costly, 2 * LIMIT, 1.2 * LIMIT);
  assert.equal(idleRunsHere(costly, 1, T), false, "twice the limit: never tried here");
  // Units scale it: the same target with a 3 times larger input.
  const scaled = newCost();
  measurePooled(scaled, 0.7 * LIMIT, 1.2 * LIMIT);
  assert.equal(idleRunsHere(scaled, 3, T), false);
});

Deno.test("the idle rule prefers the faster way by median, probing the pool every PROBE_EVERY calls", () => {
  const cost = newCost();
  for (let i = 0; i < 3; i++) measurePooled(cost, 1.4 * LIMIT, 0.9 * LIMIT);
  // A cold first call, then one slow pause here (a GC) among the samples: not the median.
  for (const ms of [5, 0.6, 0.6, 3, 0.6, 0.6]) measureHere(cost, ms * LIMIT);
  const block = "h".repeat(PROBE_EVERY - 1) + "p".repeat(PROBE_CALLS);
  assert.equal(choices(cost, 2 * block.length), block + block);
});

Deno.test("the idle rule sends calls to a pool that answers sooner, trying here every PROBE_EVERY calls", () => {
  const cost = newCost();
  for (let i = 0; i <= TRIAL_CALLS; i++) measureHere(cost, 0.8 * LIMIT);
  for (let i = 0; i < 5; i++) measurePooled(cost, 1.2 * LIMIT, 0.5 * LIMIT);
  const run = choices(cost, PROBE_EVERY);
  assert.equal(run, "p".repeat(PROBE_EVERY - 1) + "h");
});

Deno.test("calls that take the limit or more here go to the pool however slow it is", () => {
  const cost = newCost();
  for (let i = 0; i <= TRIAL_CALLS; i++) measureHere(cost, LIMIT);
  for (let i = 0; i < 5; i++) measurePooled(cost, 1.5 * LIMIT, 10 * LIMIT);
  // Tried here again every PROBE_EVERY calls (a slow spell, measured again).
  assert.equal(choices(cost, PROBE_EVERY), "p".repeat(PROBE_EVERY - 1) + "h");
  // Estimated at twice the limit or more: not tried here again.
  for (let i = 0; i < 5; i++) measureHere(cost, 2 * LIMIT);
  assert.equal(choices(cost, 2 * PROBE_EVERY), "p".repeat(2 * PROBE_EVERY));
});
