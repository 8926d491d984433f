/**
 * Intra-op parallelism for the WebAssembly kernels: an isolate running a large convolution
 * splits it into parts (ranges of output rows) and lets idle isolates of the team compute some
 * of them, over the process's shared kernel memory (`shared_memory.ts`), where the input, the
 * packed weights and the output already are.
 *
 * - Members are the inference workers ({@link joinKernelTeam}); the main isolate never joins
 *   (it is the event loop: it must neither wait for parts nor be taken for helping).
 * - A member posts a task in its own slot of the team's control block (an op code and its
 *   arguments, a part count), bumps a sequence word and notifies it. Idle members wait on that
 *   word with `Atomics.waitAsync`, so an idle worker still takes new requests by postMessage as
 *   before; a busy one notices the task only when it is done with its own call, and finds it
 *   finished. Parts are claimed one at a time with a compare-and-swap on the slot's claim word
 *   (a generation and the next part), so each part runs exactly once, by whoever claims it.
 * - The caller runs part 0 (claimed as it posts, so with two parts each member's share of the
 *   work is known, see {@link splitShare}), then claims parts too, and never waits for a part
 *   nobody started: when every other member is busy it simply runs all the parts itself. It then
 *   waits (`Atomics.wait`, allowed in a worker) only for parts other members are computing.
 * - A part a helper failed (it threw) is run again by the caller.
 * - Splitting must pay: a caller that gives a task's work (flops, elements) learns, per op and
 *   exact work and part count (in practice per node of a plan), the wall time per unit of split runs against runs of all the parts
 *   itself (see {@link runSplit}), and runs a class that splits no faster unsplit, trying a split
 *   again now and then (every 16 calls, backing off to 512 while it keeps not paying). Small
 *   tasks learn that hand-offs cost what they save; any task learns it while the other cores are
 *   busy elsewhere. Tasks without a work measure use the older rule: when a window of splits
 *   gained less than 5%, the isolate stops splitting for a while (64 eligible calls, doubling up
 *   to 4096 while it keeps not paying), then tries again.
 * - A part's results must not depend on who computes it or on how the work is cut: the ops
 *   split output rows, and each output element is summed in the same order whatever rows it
 *   is computed with (see `conv.wat`), so split and unsplit results are the same floats.
 *
 * - A member that stops (its worker crashed and was terminated) may have claimed parts it will
 *   never finish: the isolate that saw it stop (the executor) calls {@link noteMemberStopped},
 *   and a caller waiting for parts then computes every unfinished part itself (a part's values
 *   are the same whoever computes them, so a dying member's last writes change nothing), waits
 *   briefly for such writes to end, and returns.
 *
 * @module
 */
import { TEAM_WORDS, teamControl } from "./shared_memory.ts";

// The control block, in words.
/** Bumped and notified whenever a task is posted. */
const SEQ = 0;
/** Isolates that joined. */
const MEMBERS = 1;
/** Tasks split, and parts helpers ran, by all members (statistics). */
const SPLITS = 2;
const HELPED = 3;
/** Microseconds callers spent waiting for helpers' parts (statistics). */
const WAITED_US = 4;
/** Bumped whenever a member stopped (see {@link noteMemberStopped}). */
const STOPPED = 5;
/** Members running a call now (see {@link beginTeamCall}). */
const RUNNING = 6;
/**
 * Whether splits have lately been paying, as a score in [-PAY_LIMIT, PAY_LIMIT]: each measured
 * split adds one when it beat running alone, subtracts one when not. Members stay hot for
 * others' calls only while it is positive, so on a machine whose cores are busy elsewhere
 * (where splits stop paying) idle members stop spinning too.
 */
const PAYS = 7;
const PAY_LIMIT = 8;
/**
 * Members waiting (blocked or asynchronously) on SEQ. A notify that finds a waiter costs the
 * notifying thread 30-250 µs on a virtual machine (a blocked waiter's CPU must be woken, an
 * async one's event loop be sent a task), one that finds none about a microsecond: posters
 * notify only when this is non-zero. (A member counts itself before it waits, and the wait
 * returns at once if SEQ moved meanwhile, so no post is missed.)
 */
const WAITERS = 8;
/**
 * Members polling for tasks now (see the wake loop): a task posted while none is takes a
 * wake-up (0.1-0.5 ms here) before anyone helps, so only a long one is worth posting then.
 */
const HOT = 9;
/**
 * 1 while the main isolate runs a call itself (see {@link setMainRunning}): members spinning
 * with no call running (watching for their next call, lingering after helping) stop, so as not
 * to take the CPU it runs on. Measured through the server: ssrnet_age run inline took 2.0 ms
 * right after pooled calls, with both workers still spinning on the two CPUs, and 1.1-1.4 ms
 * otherwise.
 */
const QUIET = 10;
const SLOTS_AT = 16;
const SLOT_WORDS = 48;
/** Members that may split (one slot each, taken for good); more members only help. */
const SLOTS = 32;
/**
 * One word per worker index: bit 0 while the main isolate has posted it a call it has not
 * begun, bit 1 while it runs a call (see {@link beginTeamCall}).
 */
const PENDING_AT = SLOTS_AT + SLOTS * SLOT_WORDS;
const MAX_PENDING = TEAM_WORDS - PENDING_AT;
/** The bits of a worker's word. */
const PENDING = 1;
const IN_CALL = 2;
const POLLING = 4;
// A slot, in words from its start.
/** 1 once an isolate took the slot (for good). */
const OWNER = 0;
/** (generation << 12) | next part to claim. */
const CLAIM = 1;
/** Bits of the parts finished (by anyone). */
const DONE = 2;
const NPARTS = 3;
/** Bits of the parts a helper failed. */
const FAILED = 4;
const OP = 5;
/** Microseconds the last part a helper ran took (see {@link splitShare}). */
const HELPER_US = 6;
const ARGS = 8;

/** Arguments a task may carry (32-bit integers; floats as their bits, see `floatBits`). */
export const MAX_ARGS = SLOT_WORDS - ARGS;

/** Parts a task may have (a bit each in DONE and FAILED). */
export const MAX_PARTS = 32;

const PART_MASK = 0xfff;

/** Computes part `part` of `parts` of a task from its arguments (in the helping isolate). */
export type PartRunner = (args: Int32Array, part: number, parts: number) => void;

const runners = new Map<number, PartRunner>();

/** Registers what op code `op` computes (each kernel module, when it loads). */
export function registerPartRunner(op: number, run: PartRunner): void {
  if (runners.has(op)) throw new Error(`Part runner ${op} is registered twice`);
  runners.set(op, run);
}

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

/** The bits of a float32, to pass it as an argument. */
export function floatBits(v: number): number {
  f32[0] = v;
  return i32[0];
}

/** The float32 whose bits `floatBits` gave. */
export function bitsFloat(bits: number): number {
  i32[0] = bits;
  return f32[0];
}

let control: Int32Array<SharedArrayBuffer> | undefined;
let member = false;
/** This member's worker index (its pending-call word), or -1. */
let myIndex = -1;
let splitting = false;
/** This isolate's slot as a caller: -1 none taken yet, -2 none was free. */
let mySlot = -1;
let generation = 0;

/** Counts of this isolate's team work, for tests and benchmarks. */
export interface TeamStats {
  /** Tasks this isolate split. */
  split: number;
  /** Parts of those it ran itself. */
  ranOwn: number;
  /** Parts of other isolates' tasks it ran. */
  helped: number;
  /** Tasks it ran all parts of itself because splitting them had not paid (or to compare). */
  alone: number;
}

const stats: TeamStats = { split: 0, ranOwn: 0, helped: 0, alone: 0 };

/** This isolate's team counts so far. */
export function teamStats(): TeamStats {
  return { ...stats };
}

/**
 * The whole team's counts (any isolate may read them): members, tasks split, parts helped, the
 * time callers waited for helpers, members running a call, members polling for tasks, and the
 * score of whether splits pay.
 */
export function teamTotals(): {
  members: number;
  split: number;
  helped: number;
  waitedMs: number;
  running: number;
  polling: number;
  pays: number;
} {
  const ctl = control ??= teamControl();
  return {
    running: Atomics.load(ctl, RUNNING),
    polling: Atomics.load(ctl, HOT),
    pays: Atomics.load(ctl, PAYS),
    members: Atomics.load(ctl, MEMBERS),
    split: Atomics.load(ctl, SPLITS),
    helped: Atomics.load(ctl, HELPED),
    waitedMs: Atomics.load(ctl, WAITED_US) / 1000,
  };
}

/** True when the main isolate has posted this member a call it has not begun. */
function callPending(ctl: Int32Array<SharedArrayBuffer>): boolean {
  return myIndex >= 0 && (Atomics.load(ctl, PENDING_AT + myIndex) & PENDING) !== 0;
}

/**
 * Marks (main isolate, as it posts a call to worker `index`) or clears (the worker, as it
 * begins it) that worker's pending call: a member with a call waiting stops helping at once,
 * so helping never holds up a worker's own calls by more than the part it is running.
 */
export function setCallPending(index: number, pending: boolean): void {
  if (index < 0 || index >= MAX_PENDING) return;
  const ctl = control ??= teamControl();
  if (pending) Atomics.or(ctl, PENDING_AT + index, PENDING);
  else Atomics.and(ctl, PENDING_AT + index, ~PENDING);
}

/**
 * Counts this member in (or out of) HOT; a member with a worker index also marks its word, so
 * that {@link noteMemberStopped} can take a stopped member out.
 */
function setPolling(ctl: Int32Array<SharedArrayBuffer>, on: boolean): void {
  if (myIndex < 0) {
    Atomics.add(ctl, HOT, on ? 1 : -1);
    return;
  }
  const word = PENDING_AT + myIndex;
  const was = on ? Atomics.or(ctl, word, POLLING) : Atomics.and(ctl, word, ~POLLING);
  if (((was & POLLING) !== 0) !== on) Atomics.add(ctl, HOT, on ? 1 : -1);
}

/** Notifies SEQ's waiters, if any (see WAITERS). */
function wakeWaiters(ctl: Int32Array<SharedArrayBuffer>): void {
  if (Atomics.load(ctl, WAITERS) > 0) Atomics.notify(ctl, SEQ);
}

/** Bumps SEQ and wakes the members waiting on it: for this member's call, or a task it posted. */
function callHelpers(ctl: Int32Array<SharedArrayBuffer>): void {
  Atomics.add(ctl, SEQ, 1);
  wakeWaiters(ctl);
}

/**
 * Makes this isolate a member of the team (an inference worker, after it adopted the process's
 * kernel memory): from now on it splits its large kernels and helps the other members' when
 * idle. `index` is its worker index (see {@link setCallPending}).
 */
export function joinKernelTeam(index = -1): void {
  if (member) return;
  const ctl = control ??= teamControl();
  member = true;
  myIndex = index < MAX_PENDING ? index : -1;
  // Splits are taken to pay until measured not to (the first member sets the score).
  if (Atomics.load(ctl, MEMBERS) === 0) Atomics.store(ctl, PAYS, PAY_LIMIT / 2);
  splitting = true;
  Atomics.add(ctl, MEMBERS, 1);
  let seen = Atomics.load(ctl, SEQ);
  const wake = () => {
    // Having helped, wait a little for the caller's next split (its next layer) blocking,
    // which wakes far sooner than a waitAsync's turn of the event loop; a request posted
    // meanwhile waits at most LINGER_MS.
    let until = performance.now();
    // Woken with nothing to help yet: a worker just began a call (beginTeamCall), whose first
    // split follows shortly; spinning meanwhile spares that split this member's wake-up.
    let spinUntil = until + PRIMED_SPIN_MS;
    let lastWork = until;
    setPolling(ctl, true);
    for (;;) {
      seen = Atomics.load(ctl, SEQ);
      if (helpAll(ctl)) {
        const now = performance.now();
        lastWork = now;
        until = now + LINGER_MS;
        spinUntil = now + SPIN_MS;
      }
      if (callPending(ctl)) break;
      // While another member runs a call, its next split may come at any moment (its next
      // layer): stay hot, polling, so that split starts at once instead of after a wake-up
      // (tens to hundreds of µs on a virtual machine, as long as a layer takes). Bounded: a
      // call that posts nothing for HOT_MS (a long unsplit op) is waited for blocked.
      const hot = Atomics.load(ctl, RUNNING) > 0 && Atomics.load(ctl, PAYS) > 0;
      if (hot) spinUntil = Math.max(spinUntil, lastWork + HOT_MS);
      // Spin first: a blocked thread (and, in a virtual machine, its halted CPU) takes tens of
      // microseconds to wake, as long as a small part takes to compute.
      if (spinFor(ctl, SEQ, seen, spinUntil, hot)) continue;
      if (hot && Atomics.load(ctl, RUNNING) === 0) {
        // The call ended: linger only as after a part (its client's next call may follow).
        spinUntil = 0;
      }
      const left = until - performance.now();
      // Blocked, this member would see a call posted to it only when the wait ends: it blocks
      // only while another member's call runs (whose next split it waits for).
      if (left <= 0 || callPending(ctl) || Atomics.load(ctl, RUNNING) === 0) break;
      setPolling(ctl, false);
      Atomics.add(ctl, WAITERS, 1);
      const r = Atomics.wait(ctl, SEQ, seen, left);
      Atomics.sub(ctl, WAITERS, 1);
      setPolling(ctl, true);
      if (r === "timed-out") break;
    }
    setPolling(ctl, false);
    arm();
  };
  const arm = () => {
    Atomics.add(ctl, WAITERS, 1);
    const r = Atomics.waitAsync(ctl, SEQ, seen);
    // Posted again while helping: look again on the next turn (other tasks go first).
    if (r.async) {
      r.value.then(() => {
        Atomics.sub(ctl, WAITERS, 1);
        wake();
      });
    } else {
      Atomics.sub(ctl, WAITERS, 1);
      setTimeout(wake, 0);
    }
  };
  arm();
}

/**
 * Marks the start of a call this member runs (its worker took a call): the other members stay
 * hot for its splits until {@link endTeamCall}. Calls nest not; a non-member's are ignored.
 */
export function beginTeamCall(): void {
  if (!member || control === undefined || myIndex < 0) return;
  // Splits that stopped paying turned the hot waiting off, and without it few splits are tried:
  // one call in PAY_RETRY_CALLS runs hot again to measure afresh.
  if (++calls % PAY_RETRY_CALLS === 0 && Atomics.load(control, PAYS) <= 0) {
    Atomics.store(control, PAYS, 1);
  }
  if ((Atomics.or(control, PENDING_AT + myIndex, IN_CALL) & IN_CALL) === 0) {
    Atomics.add(control, RUNNING, 1);
  }
  noteCallGap(performance.now());
  // Members waiting are woken to stay hot for this call. (Not by the main isolate as it posts
  // the call: there a notify that finds async waiters was measured at ~1.3 ms per call.) When
  // the next-call watch saw it posted, they were woken then, and this finds none waiting.
  callHelpers(control);
}

/** Calls of this member, and how often one runs hot though splits had stopped paying. */
let calls = 0;
const PAY_RETRY_CALLS = 16;

/**
 * After a call, how long at least a worker watches (polling) for its next one before it goes
 * back to its event loop to wait: a client that sends its next request when the last answer
 * arrives does so within a loopback round trip, and a thread that stayed on its CPU takes that
 * call at once where a parked one (its virtual CPU halted) wakes 0.1-0.5 ms later. Measured
 * through the server (h2load, one call at a time), the next call was posted 0.6-0.8 ms after the
 * last one ended (the answer's way out and the next request's way in), so a 0.5 ms watch missed
 * more than half of them; with 1 ms, served medians were 0.05-0.15 ms lower (ssrnet_age, emotion;
 * five alternating runs each).
 */
const NEXT_CALL_SPIN_MS = 1;

/**
 * The longest watch: while this worker's last calls came within 1/{@link GAP_MARGIN} of it after
 * the one before ended, it watches for 1.5 times their median gap. Large tensors take longer
 * to go out and come in: selfie's next call came 2.1 ms after the last ended (768 KiB in, 512 KiB
 * out), so a 1 ms watch missed them all, and its worker and the CPU it ran on were parked for
 * every call. Served (alternating blocks, both servers up), a 3-6 ms watch made selfie's median
 * 0.4-1.2 ms lower (5.07-6.55 against 6.13-6.97 ms in five pairs), movenet_multipose's 0.6 ms;
 * emotion and ssrnet_age, whose calls follow within 1 ms, unchanged. Sparse traffic (gaps past
 * the bound) keeps the 1 ms watch, so a lightly loaded server does not burn a core; under
 * concurrent load the watch ends when another member runs a call (throughput with 2 and 4
 * h2load clients as before: selfie 4.77 / 3.87 s per 1000 calls against 4.85 / 3.86).
 */
const MAX_NEXT_CALL_SPIN_MS = 6;
const GAP_MARGIN = 1.5;
/** The last gaps (ms) between a call's end and the start of this worker's next call. */
const gaps: number[] = [];
const GAP_SAMPLES = 8;
/** When this worker's last call ended (its watch began), or -1 while a call runs. */
let lastEnd = -1;

/**
 * How long (ms) a worker watches for its next call, given the last gaps (ms) between a call's
 * end and the start of its next call (see MAX_NEXT_CALL_SPIN_MS).
 */
export function watchSpanMs(lastGaps: readonly number[]): number {
  if (lastGaps.length === 0) return NEXT_CALL_SPIN_MS;
  const gap = typical(lastGaps) * GAP_MARGIN;
  return gap > MAX_NEXT_CALL_SPIN_MS ? NEXT_CALL_SPIN_MS : Math.max(NEXT_CALL_SPIN_MS, gap);
}

/** Notes the gap since this worker's last call ended (its next call begins). */
function noteCallGap(now: number): void {
  if (lastEnd < 0) return;
  if (gaps.length >= GAP_SAMPLES) gaps.shift();
  gaps.push(now - lastEnd);
  lastEnd = -1;
}

/**
 * Polls this member's pending-call flag for a while (a worker, right after it answered a call:
 * see NEXT_CALL_SPIN_MS and MAX_NEXT_CALL_SPIN_MS); returns as soon as a call is posted to it
 * (its message is then in the queue, or about to be).
 */
export function watchForNextCall(): void {
  if (!member || control === undefined || myIndex < 0) return;
  const ctl = control;
  const word = PENDING_AT + myIndex;
  const now = performance.now();
  lastEnd = now;
  const until = now + watchSpanMs(gaps);
  for (let i = 0;; i++) {
    if ((Atomics.load(ctl, word) & PENDING) !== 0) {
      // Wake the members waiting now, not when the call begins: their wake-up (45-130 µs
      // through the server) overlaps this worker's taking the call's message.
      callHelpers(ctl);
      return;
    }
    // Also stops when another member runs a call (concurrent load): this worker's CPU is then
    // better spent helping that call's splits, which it does from its event loop.
    if (
      (i & 63) === 63 &&
      (performance.now() >= until || Atomics.load(ctl, QUIET) !== 0 ||
        Atomics.load(ctl, RUNNING) !== 0)
    ) return;
  }
}

/**
 * Tells the members whether the main isolate is running a call itself (the executor, around
 * its inline runs, once workers exist): spinning members with no call running stop while it
 * is (see QUIET).
 */
export function setMainRunning(on: boolean): void {
  const ctl = control ??= teamControl();
  Atomics.store(ctl, QUIET, on ? 1 : 0);
}

/** Marks the end of the call {@link beginTeamCall} began. */
export function endTeamCall(): void {
  if (!member || control === undefined || myIndex < 0) return;
  if ((Atomics.and(control, PENDING_AT + myIndex, ~IN_CALL) & IN_CALL) !== 0) {
    Atomics.sub(control, RUNNING, 1);
  }
}

/** Members of the team now (the isolates that joined and have not stopped). */
export function teamMembers(): number {
  return control === undefined ? 0 : Atomics.load(control, MEMBERS);
}

/** Whether this isolate joined the team (only members split, so others need not try). */
export function isTeamMember(): boolean {
  return member;
}

/** How long a caller waits, after a member stopped, for that member's last writes to end. */
const STOPPED_GRACE_MS = 200;

/**
 * Tells the team that a member stopped (its worker was terminated): it no longer counts as a
 * member, a call it was running (as worker `index`) no longer keeps the others hot, and callers
 * waiting for its parts compute them themselves (see the module).
 */
export function noteMemberStopped(index = -1): void {
  const ctl = control ??= teamControl();
  // A call it was running has ended.
  if (index >= 0 && index < MAX_PENDING) {
    const was = Atomics.and(ctl, PENDING_AT + index, ~(IN_CALL | PENDING | POLLING));
    if ((was & IN_CALL) !== 0) Atomics.sub(ctl, RUNNING, 1);
    if ((was & POLLING) !== 0) Atomics.sub(ctl, HOT, 1);
  }
  if (Atomics.load(ctl, MEMBERS) > 0) Atomics.sub(ctl, MEMBERS, 1);
  Atomics.add(ctl, STOPPED, 1);
  for (let s = 0; s < SLOTS; s++) Atomics.notify(ctl, SLOTS_AT + s * SLOT_WORDS + DONE);
}

/**
 * Turns this member's splitting off or on (it is on once joined), so benchmarks and tests can
 * compare; it still helps others. Returns the old setting.
 */
export function setKernelSplitting(on: boolean): boolean {
  const was = splitting;
  splitting = on && member;
  return was;
}

/** How long a member that helped waits, blocked, for the next task before it goes idle. */
const LINGER_MS = 1;

/**
 * How long a member spins (polling) for the next task after helping, and a caller for its
 * helpers' last parts, before blocking in `Atomics.wait`.
 */
let SPIN_MS = 0.25;

/** How long a member woken by a posted call spins for that call's first split. */
const PRIMED_SPIN_MS = 0.5;

/**
 * How long a member stays hot (polling) while another member runs a call that has posted no
 * task: longer than the gap between two split layers, shorter than a long unsplit op.
 */
const HOT_MS = 2;

/** Sets how long members spin before blocking (0: never), for benchmarks; returns the old. */
export function setTeamSpin(ms: number): number {
  const old = SPIN_MS;
  SPIN_MS = Math.max(0, ms);
  return old;
}

/**
 * Polls `ctl[index]` until it differs from `value` (true) or the clock passes `until` (false),
 * leaving early when this member's own call is posted.
 */
function spinFor(
  ctl: Int32Array<SharedArrayBuffer>,
  index: number,
  value: number,
  until: number,
  hot = false,
): boolean {
  for (let i = 0;; i++) {
    if (Atomics.load(ctl, index) !== value) return true;
    if (
      (i & 63) === 63 &&
      (performance.now() >= until || callPending(ctl) ||
        ((hot || Atomics.load(ctl, QUIET) !== 0) && Atomics.load(ctl, RUNNING) === 0))
    ) return false;
  }
}

/** The arguments of the part being helped (runners use them before they return, never keep them). */
const helpArgs = new Int32Array(MAX_ARGS);

/** Runs the parts of other members' tasks that nobody claimed yet; true if it ran any. */
function helpAll(ctl: Int32Array<SharedArrayBuffer>): boolean {
  let ran = false;
  for (let s = 0; s < SLOTS; s++) {
    if (s === mySlot) continue;
    const base = SLOTS_AT + s * SLOT_WORDS;
    if (Atomics.load(ctl, base + OWNER) === 0) continue;
    for (;;) {
      if (callPending(ctl)) return ran;
      const w = Atomics.load(ctl, base + CLAIM);
      const part = w & PART_MASK;
      const parts = Atomics.load(ctl, base + NPARTS);
      if (part >= parts) break;
      // The arguments of this generation: the owner writes them before it publishes the
      // generation, and cannot change them before this part is claimed and done.
      const op = ctl[base + OP];
      const args = helpArgs;
      for (let i = 0; i < MAX_ARGS; i++) args[i] = ctl[base + ARGS + i];
      if (Atomics.compareExchange(ctl, base + CLAIM, w, (w + 1) | 0) !== w) continue;
      ran = true;
      try {
        const run = runners.get(op);
        if (run === undefined) throw new Error(`No part runner ${op}`);
        const t = performance.now();
        run(args, part, parts);
        Atomics.store(ctl, base + HELPER_US, Math.round((performance.now() - t) * 1000));
        stats.helped++;
        Atomics.add(ctl, HELPED, 1);
      } catch {
        Atomics.or(ctl, base + FAILED, 1 << part);
      }
      Atomics.or(ctl, base + DONE, 1 << part);
      Atomics.notify(ctl, base + DONE);
    }
  }
  return ran;
}

/** This isolate's slot's first word, or -1 when it has none. */
function slotBase(ctl: Int32Array<SharedArrayBuffer>): number {
  if (mySlot === -1) {
    mySlot = -2;
    for (let s = 0; s < SLOTS; s++) {
      if (Atomics.compareExchange(ctl, SLOTS_AT + s * SLOT_WORDS + OWNER, 0, 1) === 0) {
        mySlot = s;
        break;
      }
    }
  }
  return mySlot < 0 ? -1 : SLOTS_AT + mySlot * SLOT_WORDS;
}

/** Splits per judgement of whether splitting pays. */
const WINDOW = 16;
const MIN_BACKOFF = 64;
const MAX_BACKOFF = 4096;
/** The current window: splits, their estimated one-thread time and their elapsed time (ms). */
let windowSplits = 0;
let windowAlone = 0;
let windowTook = 0;
/** Eligible calls left to run unsplit, and the next pause's length. */
let pause = 0;
let nextPause = MIN_BACKOFF;

let judging = true;

/**
 * Turns off (or back on) the pauses after splits that did not pay, so tests can count on every
 * eligible call splitting even on a busy machine. Returns the old setting.
 */
export function setSplitJudging(on: boolean): boolean {
  const was = judging;
  judging = on;
  if (!on) pause = 0;
  return was;
}

/** Moves the team's score of whether splits pay (see PAYS) by one. */
function notePaid(ctl: Int32Array<SharedArrayBuffer>, paid: boolean): void {
  const old = Atomics.load(ctl, PAYS);
  const next = Math.max(-PAY_LIMIT, Math.min(PAY_LIMIT, old + (paid ? 1 : -1)));
  if (next !== old) Atomics.compareExchange(ctl, PAYS, old, next);
}

/** Adds one split's times to the window; at its end, pauses splitting if it did not pay. */
function judge(alone: number, took: number): void {
  if (!judging) return;
  windowSplits++;
  windowAlone += alone;
  windowTook += took;
  if (windowSplits < WINDOW) return;
  if (windowAlone < windowTook * 1.05) {
    pause = nextPause;
    nextPause = Math.min(MAX_BACKOFF, nextPause * 2);
  } else nextPause = MIN_BACKOFF;
  windowSplits = 0;
  windowAlone = 0;
  windowTook = 0;
}

/**
 * True when this isolate may split a kernel now: it is a member with splitting on, another
 * member exists, and splitting has been paying (see the module). Whether the others are idle
 * is found out by posting.
 */
export function canSplit(): boolean {
  if (!splitting || control === undefined || Atomics.load(control, MEMBERS) < 2) return false;
  if (pause > 0) {
    pause--;
    return false;
  }
  return true;
}

/**
 * What splitting one class of task (an op code, its exact work and part count) costs against not
 * splitting it: the last few wall-clock times per unit of work, each way.
 */
interface SplitCost {
  /** Its class: "op:work:parts" (for {@link teamSplitCosts}). */
  readonly key: string;
  readonly split: number[];
  readonly alone: number[];
  /**
   * The medians of `split` and `alone` (NaN while empty), kept as the samples change: read at
   * every call of the class, where sorting the samples each time cost as much as the rest of
   * the decision.
   */
  splitMedian: number;
  aloneMedian: number;
  calls: number;
  /** Times it was split (the first is cold and not sampled). */
  splits: number;
  /** Calls until the way not preferred is tried again. */
  explore: number;
  /** The next such interval: doubles (to MAX_EXPLORE) while splitting keeps not paying. */
  every: number;
  /** The share of the work for part 0 of two (see {@link splitShare}). */
  share: number;
}

/** By {@link costKey}. */
const costs = new Map<number, SplitCost>();

/**
 * A class's key in {@link costs}: a number, as a string built and hashed at every split cost
 * more than the rest of the lookup. Op codes are under 64 and parts at most 32; a work past
 * 2^41 (flops no call reaches) may share a key with its neighbours, which only shares their
 * samples.
 */
function costKey(op: number, work: number, parts: number): number {
  return (work * 64 + parts) * 64 + op;
}
/** Entries kept (new shapes beyond it replace the table: a server with many models). */
const MAX_COSTS = 4096;

/**
 * One call in this many runs the way not preferred, so both costs stay current; up to
 * MAX_EXPLORE calls while splitting keeps not paying (a split on a busy machine may wait for a
 * descheduled helper for a whole time slice).
 */
const EXPLORE_EVERY = 16;
const MAX_EXPLORE = 512;

/** A task predicted to take this long alone is posted even when no member polls (it wakes one). */
const COLD_SPLIT_MS = 1;

/** How much slower than alone a node's splits must be measured before it runs alone. */
const SPLIT_LOSS = 1.1;
/** A loss from which explorations back off (MAX_EXPLORE): a machine busy elsewhere. */
const BAD_SPLIT = 1.5;
/**
 * A gain from which explorations back off too, to {@link MAX_GOOD_EXPLORE} calls: a node whose
 * splits clearly pay need not run alone every 16th call to learn that alone is slower (its
 * splits are measured every time, so a split turning slow is seen at once). In a served selfie
 * call 6-16% of the split nodes' runs were alone; each exploration of a node that splits at
 * half its time alone costs that half again.
 */
const GOOD_SPLIT = 0.8;
const MAX_GOOD_EXPLORE = 128;

/**
 * The calls until a task class's next exploration after this one, given the interval so far
 * and its split / alone time ratio now: each exploration that finds splitting still losing
 * badly (a machine busy elsewhere), or still clearly paying, waits twice as long for the next
 * (to {@link MAX_EXPLORE} or {@link MAX_GOOD_EXPLORE}); any other ratio, or NaN (not yet
 * measured both ways), explores every {@link EXPLORE_EVERY} calls.
 */
export function nextExploreInterval(every: number, ratio: number): number {
  if (ratio > BAD_SPLIT) return Math.min(MAX_EXPLORE, every * 2);
  if (ratio < GOOD_SPLIT) return Math.min(MAX_GOOD_EXPLORE, every * 2);
  return EXPLORE_EVERY;
}

/** Samples kept each way: their median is the cost, so one outlier (a preempted helper) is not. */
const SAMPLES = 5;

function addSample(samples: number[], v: number): void {
  if (samples.length >= SAMPLES) samples.shift();
  samples.push(v);
}

/** The median of the samples (the lower of the middle two); NaN when there are none. */
function typical(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

/**
 * Runs a task here, measured as running alone: `whole()` (the task unsplit: one call over all
 * of it, cheaper than its parts one after the other) or else every part.
 */
function runAlone(
  cost: SplitCost,
  parts: number,
  local: (part: number) => void,
  work: number,
  whole: (() => void) | undefined,
): void {
  const t = performance.now();
  if (whole !== undefined) whole();
  else for (let p = 0; p < parts; p++) local(p);
  if (cost.calls > 1) {
    addSample(cost.alone, (performance.now() - t) / work);
    cost.aloneMedian = typical(cost.alone);
  }
  stats.alone++;
}

/**
 * Runs parts 0..parts-1 of a task: `local(part)` here for the parts this isolate claims, op
 * `op`'s runner with `args` in the members that claim the others. Returns when every part is
 * done; false (having run nothing) when the task cannot be posted, and the caller computes the
 * work unsplit itself.
 *
 * With `work` (flops, elements: any measure proportional to the task's time), whether to split
 * is learned per op, exact work and part count: the wall time per unit of split runs against that
 * of runs here of `whole()` (the task unsplit, which must give the same floats), or else of all
 * parts one after the other. Tasks of a class that
 * splits no faster (small ones, whose hand-offs cost what they save; any, while the other
 * cores are busy elsewhere) run here, except one in {@link EXPLORE_EVERY}, which keeps trying.
 */
export function runSplit(
  op: number,
  args: ArrayLike<number>,
  parts: number,
  local: (part: number) => void,
  work = 0,
  whole?: () => void,
): boolean {
  if (!canSplit() || parts < 2 || parts > MAX_PARTS || args.length > MAX_ARGS) return false;
  let cost: SplitCost | undefined;
  /** Whether this split is an exploration: the node has lately run alone. */
  let exploring = false;
  if (work > 0 && judging) {
    // One entry per op and exact work and parts: in practice one per node of a plan (its
    // shapes fix both), so a node that splits badly (a large output read back by a core that
    // wrote little of it) does not stop another of about the same work from splitting.
    const key = costKey(op, work, parts);
    cost = costs.get(key);
    if (cost === undefined) {
      if (costs.size >= MAX_COSTS) costs.clear();
      costs.set(
        key,
        cost = {
          key: `${op}:${work}:${parts}`,
          split: [],
          alone: [],
          splitMedian: NaN,
          aloneMedian: NaN,
          calls: 0,
          splits: 0,
          explore: 1,
          every: EXPLORE_EVERY,
          share: 0.5,
        },
      );
    }
    cost.calls++;
    // The first call runs alone (an exploration, too cold to count), and so does the second
    // (the first warm measurement of running alone, which every comparison needs).
    if (
      cost.calls === 2 ||
      (Atomics.load(control!, HOT) === 0 && !(cost.aloneMedian * work >= COLD_SPLIT_MS))
    ) {
      // Else, nobody polls for tasks: a helper would start this one only after its wake-up,
      // which takes about as long as the task. Run it here (a measurement of running alone).
      // (Posting it anyway to helpers woken for this call, on their way, was tried: a helper
      // that claims the second half late makes the caller wait for it; isolated selfie calls
      // took 0.5 ms longer.)
      runAlone(cost, parts, local, work, whole);
      return true;
    }
    // Split unless measured clearly not to pay (NaN compares false: split until both are
    // known). The margin is wide because single measurements on a shared machine swing by
    // 10-20% and, with helpers kept hot, a split that merely breaks even frees nothing: it is
    // the losses (a helper descheduled, a part's data on the other core) this must catch.
    const ratio = cost.splitMedian / cost.aloneMedian;
    const preferSplit = !(ratio > SPLIT_LOSS);
    const explore = --cost.explore <= 0;
    if (explore) {
      cost.explore = cost.every;
      cost.every = nextExploreInterval(cost.every, ratio);
    }
    if (preferSplit === explore) {
      runAlone(cost, parts, local, work, whole);
      return true;
    }
    exploring = explore;
  }
  const ctl = control!;
  const base = slotBase(ctl);
  if (base < 0) return false;
  stats.split++;
  Atomics.add(ctl, SPLITS, 1);
  for (let i = 0; i < args.length; i++) ctl[base + ARGS + i] = args[i];
  ctl[base + OP] = op;
  Atomics.store(ctl, base + NPARTS, parts);
  Atomics.store(ctl, base + DONE, 0);
  Atomics.store(ctl, base + FAILED, 0);
  generation = (generation + 1) & 0xfffff;
  // Part 0 is the caller's, claimed as it is posted: a helper starts from part 1, so with two
  // parts each member's share of the work is known (see splitShare).
  Atomics.store(ctl, base + CLAIM, (generation << 12) | 1);
  Atomics.store(ctl, base + HELPER_US, -1);
  const start = performance.now();
  const stopped = Atomics.load(ctl, STOPPED);
  callHelpers(ctl);
  let error: unknown = undefined;
  let own = 0, ownMs = 0, firstMs = 0;
  /** The part this isolate is running (its bit is set as done if it throws). */
  let running = 0;
  // When this isolate's current part began (the last one's end: one clock read per part).
  let t = performance.now();
  try {
    // Part 0 first (claimed as posted), then whatever is left to claim.
    for (;;) {
      local(running);
      const end = performance.now();
      const ms = end - t;
      t = end;
      if (own === 0) firstMs = ms;
      ownMs += ms;
      own++;
      stats.ranOwn++;
      Atomics.or(ctl, base + DONE, 1 << running);
      let next = -1;
      for (;;) {
        const w = Atomics.load(ctl, base + CLAIM);
        const part = w & PART_MASK;
        if (part >= parts) break;
        if (Atomics.compareExchange(ctl, base + CLAIM, w, (w + 1) | 0) === w) {
          next = part;
          break;
        }
      }
      if (next < 0) break;
      running = next;
    }
  } catch (e) {
    error = e;
    // Nobody may start a part after this returns (the buffers are the caller's): claim the
    // rest, as done, with the one that threw (nobody else runs it).
    Atomics.or(ctl, base + DONE, 1 << running);
    for (;;) {
      const w = Atomics.load(ctl, base + CLAIM);
      const part = w & PART_MASK;
      if (part >= parts) break;
      if (Atomics.compareExchange(ctl, base + CLAIM, w, ((w & ~PART_MASK) | parts) | 0) === w) {
        let rest = 0;
        for (let p = part; p < parts; p++) rest |= 1 << p;
        Atomics.or(ctl, base + DONE, rest);
        break;
      }
    }
  }
  // Wait for the parts other members are computing.
  const all = parts === 32 ? -1 : (1 << parts) - 1;
  const t0 = t;
  // Spin (rather than block, whose wake-up costs tens of µs here) for as long as a part takes:
  // the parts still out were claimed no earlier than this isolate's last.
  const spinUntil = t0 + Math.max(SPIN_MS, own > 0 ? (1.5 * ownMs) / own : 0);
  let lost = 0;
  for (;;) {
    const d = Atomics.load(ctl, base + DONE);
    if ((d & all) === all) break;
    if (Atomics.load(ctl, STOPPED) !== stopped) {
      // A member stopped: the parts not done may be its own, never to finish.
      lost = all & ~d;
      break;
    }
    if (performance.now() < spinUntil) {
      spinFor(ctl, base + DONE, d, spinUntil);
      continue;
    }
    Atomics.wait(ctl, base + DONE, d, 50);
  }
  const waited = performance.now() - t0;
  if (waited > 0.01) Atomics.add(ctl, WAITED_US, Math.round(waited * 1000));
  if (lost !== 0) {
    if (error === undefined) {
      for (let p = 0; p < parts; p++) if (lost & (1 << p)) local(p);
    }
    // Parts a live member is computing still finish (their bits); a stopped member's never
    // do. Waiting for them, at most STOPPED_GRACE_MS, also lets a terminated isolate (which
    // stops at its next interrupt check) finish its last writes before the buffers are reused.
    const until = performance.now() + STOPPED_GRACE_MS;
    for (;;) {
      const d = Atomics.load(ctl, base + DONE);
      const left = until - performance.now();
      if ((d & all) === all || left <= 0) break;
      Atomics.wait(ctl, base + DONE, d, left);
    }
  }
  if (error !== undefined) throw error;
  const failed = Atomics.load(ctl, base + FAILED);
  for (let p = 0; p < parts; p++) if (failed & (1 << p) && !(lost & (1 << p))) local(p);
  if (cost !== undefined && parts === 2 && own === 1 && lost === 0 && error === undefined) {
    // The caller ran part 0, a helper part 1: move the share toward equal finishing times.
    const helperMs = Atomics.load(ctl, base + HELPER_US) / 1000;
    if (helperMs > 0 && firstMs > 0) cost.share = nextShare(cost.share, firstMs, helperMs);
  }
  // Parts are of equal work (but the last): own parts' time scaled to all is the time alone.
  if (cost !== undefined) {
    const v = (performance.now() - start) / work;
    // A node's first split is cold (the helpers' code and caches): it says nothing of the next.
    if (++cost.splits > 1) {
      const alone = cost.aloneMedian;
      const helped = own < parts && lost === 0;
      if (addSplitSample(cost.split, v, alone, exploring && helped)) cost.every = EXPLORE_EVERY;
      cost.splitMedian = typical(cost.split);
      if (alone > 0) notePaid(ctl, v < alone);
    }
  } else if (own > 0) {
    const alone = (ownMs / own) * parts, took = performance.now() - start;
    judge(alone, took);
    notePaid(ctl, took < alone);
  }
  return true;
}

/**
 * Adds a split's time per unit of work `v` to a task class's split samples, against its typical
 * time alone `alone`. A split that explores (its class has lately run alone) and beats running
 * alone replaces the samples: the losses it was weighed against are stale (a helper whose code
 * was still cold, a busy moment), and kept, they would outvote it until more explorations paid,
 * while explorations back off (16, 32, ... 512 calls apart) as long as the median loses badly:
 * a class whose first splits met a cold helper (in one of selfie's first calls, the helper's
 * half of a 1×1 convolution took 812 µs, the caller's 87) could run alone for hundreds of
 * calls. Returns true when it replaced them (the class is then explored as often as at first).
 * `exploring` is given only for an exploration another member helped with: one the caller ran
 * all of itself measures running alone, not splitting (it let a class whose helper is slow
 * flip back to splitting on noise).
 */
export function addSplitSample(
  samples: number[],
  v: number,
  alone: number,
  exploring: boolean,
): boolean {
  const reset = exploring && v < alone;
  if (reset) samples.length = 0;
  addSample(samples, v);
  return reset;
}

/** The bounds of a share of two parts, and how far one split moves it toward its target. */
const MIN_SHARE = 0.25;
const SHARE_STEP = 0.25;

/**
 * The next share of part 0 of two, after a split in which part 0 (`share` of the work) took
 * `firstMs` and part 1 took `secondMs`: a step toward the share at which both would have taken
 * as long, each member's speed being its part's work over its time. Members are not alike in
 * practice: a part whose input another core wrote, or a core the host slows, was measured at
 * up to 1.7 times the other part's time through the server (selfie's 128×128 1×1 convolutions,
 * helper 0.127 ms against the caller's 0.082).
 */
export function nextShare(share: number, firstMs: number, secondMs: number): number {
  const v0 = share / firstMs, v1 = (1 - share) / secondMs;
  const target = v0 / (v0 + v1);
  const next = share + SHARE_STEP * (target - share);
  return Math.min(1 - MIN_SHARE, Math.max(MIN_SHARE, next));
}

/**
 * The share of the work part 0 of a split in two should take: learned per class of task (an op
 * code, its exact work: in practice a node), from the times its two members took (part 0 is
 * always the caller's); 0.5 until measured.
 */
export function splitShare(op: number, work: number): number {
  return forcedShare ?? costs.get(costKey(op, work, 2))?.share ?? 0.5;
}

let forcedShare: number | undefined;

/**
 * Makes every split in two cut at `share` (undefined: learned again), so tests can check that
 * any cut gives the unsplit floats. Returns the old setting.
 */
export function forceSplitShare(share: number | undefined): number | undefined {
  const was = forcedShare;
  forcedShare = share;
  return was;
}

/**
 * This isolate's split decisions, for benchmarks: per task class (op, work and parts), the
 * median split and unsplit times per unit of work (NaN until measured) and the calls seen.
 */
export function teamSplitCosts(): { key: string; split: number; alone: number; calls: number }[] {
  return [...costs.values()].map((c) => ({
    key: c.key,
    split: c.splitMedian,
    alone: c.aloneMedian,
    calls: c.calls,
  }));
}
