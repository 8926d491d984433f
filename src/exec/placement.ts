/**
 * What the executor knows of a target's calls, and the rules it places them by: the estimate
 * of what a call costs alone (the inline threshold's input) and the idle rule, which compares
 * how long calls took on the event loop with how long the pool took to answer them.
 *
 * Pure bookkeeping: no clock, no isolates. The executor measures, and says whether the server
 * is idle.
 *
 * @module
 */

/**
 * Calls a cost estimate is the least of. A pause lands on single calls; a call that is really
 * slower (a value-dependent loop) moves the estimate after this many calls.
 */
const COST_SAMPLES = 4;

/** Samples kept each way for the idle rule; their medians are compared (see Cost.here). */
const IDLE_SAMPLES = 5;

/**
 * The idle rule: a call the inline threshold sends to the pool runs on the event loop instead
 * when the server is idle (the executor's part), the calls of its target held the loop less
 * than this many times the threshold, and they took less time there than the pool took to
 * answer them.
 *
 * Why: through the pool a call pays two hand-offs between isolates and, on a virtual machine,
 * the wake-ups of parked threads (0.1-0.5 ms each here). Measured through the server (h2load,
 * one call at a time), ssrnet_age (about 1.1 ms alone) was answered in 1.2-1.4 ms median
 * inline against 1.8-2.6 ms on the pool with both workers splitting its kernels.
 */
export const IDLE_INLINE_FACTOR = 2;

/**
 * Every PROBE_EVERY calls the idle rule placed, it tries the way it does not prefer, so both
 * times stay current: PROBE_CALLS calls to the pool (the first finds the workers parked, the
 * next does not; and a call arriving while they run shows the executor the server is not
 * idle), or one call here.
 */
export const PROBE_EVERY = 64;
export const PROBE_CALLS = 2;

/** Calls the idle rule measures here (after the cold first one) before it judges by their median. */
export const TRIAL_CALLS = 3;

/** What a version's calls of one target cost, per input element (ms). */
export interface Cost {
  /** The last `COST_SAMPLES` measurements of a call alone, wherever it ran. */
  readonly recent: number[];
  /** The least of `recent`, the estimate; undefined until one call is measured. */
  least: number | undefined;
  /**
   * The idle rule's samples, the last `IDLE_SAMPLES` each: the times of calls that ran on the
   * event loop, and of calls that found the pool idle, as the event loop waited for them (from
   * the call to its answer: the hand-offs and wake-ups both ways, and the run).
   */
  readonly here: number[];
  readonly pooled: number[];
  /** Calls the idle rule placed since it last tried the other way. */
  sinceProbe: number;
  /** Calls left in the current run of calls sent to the pool to measure it. */
  probing: number;
  /** Until a call ran on the event loop: the first one there is cold, and not sampled. */
  coldHere: boolean;
}

/** A cost with nothing measured yet. */
export function newCost(): Cost {
  return {
    recent: [],
    least: undefined,
    here: [],
    pooled: [],
    sinceProbe: 0,
    probing: 0,
    coldHere: true,
  };
}

/** Adds a measurement of a call alone (ms per input element) to a cost. */
export function measure(cost: Cost, perUnit: number): void {
  const recent = cost.recent;
  if (recent.length === COST_SAMPLES) recent.shift();
  recent.push(perUnit);
  let least = recent[0];
  for (let i = 1; i < recent.length; i++) if (recent[i] < least) least = recent[i];
  cost.least = least;
}

/**
 * Adds the time of a call that ran on the event loop (ms per input element); the first such call
 * is cold (the main isolate's code not yet optimised for the target's kernels, their data not in
 * its caches: several times the next ones) and is not an idle-rule sample.
 */
export function measureHere(cost: Cost, perUnit: number): void {
  measure(cost, perUnit);
  if (cost.coldHere) cost.coldHere = false;
  else addIdleSample(cost.here, perUnit);
}

/**
 * Adds the time of a call that found the pool idle, from the call to its answer (ms per input
 * element); `alone` is its run's own measure ({@link measure}).
 */
export function measurePooled(cost: Cost, alone: number, waited: number): void {
  measure(cost, alone);
  addIdleSample(cost.pooled, waited);
}

function addIdleSample(samples: number[], perUnit: number): void {
  if (samples.length === IDLE_SAMPLES) samples.shift();
  samples.push(perUnit);
}

/** The median of samples (the lower middle one). */
function median(samples: readonly number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

/**
 * The idle rule for a call of `units` input elements that the inline threshold
 * (`inlineBelowMs`) sends to the pool, on an idle server: true to run it on the event loop.
 * Counts the call (probes, see PROBE_EVERY).
 *
 * - Not before the pool answered one of its target's calls, nor with the threshold off (0).
 * - Until TRIAL_CALLS ran on the event loop (after a first, cold one: see {@link measureHere}),
 *   calls run there if the estimate (until then maybe a helped call's upper bound) is under
 *   twice the limit (IDLE_INLINE_FACTOR times the threshold), to measure.
 * - Then here when the median there is under the limit and under the pool's median, else on
 *   the pool; every PROBE_EVERY calls the other way is tried (here only while the estimate is
 *   under twice the limit), so a slow spell either way is measured again.
 */
export function idleRunsHere(cost: Cost, units: number, inlineBelowMs: number): boolean {
  const limit = IDLE_INLINE_FACTOR * inlineBelowMs;
  if (limit <= 0 || cost.least === undefined || cost.pooled.length === 0) return false;
  if (cost.probing > 0) {
    cost.probing--;
    return false;
  }
  // The estimate (until calls ran here, maybe a helped call's upper bound) allows trying here.
  const mayTry = cost.least * units < 2 * limit;
  if (cost.here.length < TRIAL_CALLS) return mayTry;
  const here = median(cost.here) * units;
  const preferHere = here < limit && here < median(cost.pooled) * units;
  if (++cost.sinceProbe >= PROBE_EVERY) {
    cost.sinceProbe = 0;
    if (!preferHere) return mayTry;
    cost.probing = PROBE_CALLS - 1;
    return false;
  }
  return preferHere;
}
