/**
 * Where plans run: the Executor takes a prepared call (a RunTarget and its feeds) and runs it
 * either here, on the main isolate, or in a pool of worker isolates, so that the transports,
 * the probes and the version watcher never wait on a long inference.
 *
 * Placement, per loaded model version, decided once when it is attached (after warmup):
 * - **Stateless versions** run wherever is cheapest for each call. Each (version, target) keeps
 *   an estimate of its cost per input element: the least of its last few calls, measured
 *   wherever they ran (a GC pause or a preempted thread inflates single calls, never the
 *   least of several, so one pause doesn't move a µs-cheap model to the pool). A call that other
 *   workers helped with (intra-op splits) counts as many times its time as there are workers:
 *   what it could take alone, as it would inline. A call
 *   predicted to cost less than `inlineBelowMs` runs here at once: posting it to a worker and
 *   back costs more than that, and so short a run stalls no one. Other calls go to any worker
 *   (each rebuilt the model over the same shared weights, see shared_model.ts). Before a
 *   target is measured, a version whose weights are small (under `heavyWeightElements`
 *   elements: half_plus_two, MNIST) tries inline, a larger one goes to the pool.
 * - **The idle rule** (placement.ts): while no other call runs or waits (nor did for BUSY_MS),
 *   a call above the threshold but under twice it still runs here when its target's calls
 *   took less here than the pool took to answer them, hand-offs and wake-ups included (on a
 *   virtual machine those cost more than such a call gains from a second core). A call that
 *   arrives while another runs or waits turns the rule off for BUSY_MS, so under concurrent
 *   load every core works and the event loop stays free.
 * - **Stateful versions** (a signature reaches an op that assigns a variable or fills a table)
 *   are pinned: a small one to the main isolate, a large one to one worker; every call runs
 *   there, one at a time, so state stays consistent as in one TensorFlow session (N concurrent
 *   AssignAdd calls add N) and never splits between copies. Warmup ran before the move, so
 *   its effects are kept.
 * - A version whose resources are not all variables (lookup tables) cannot be rebuilt in a
 *   worker and runs inline; so does everything when no worker can be started.
 *
 * The workers start when first needed (a large version is attached, or a call is too costly to
 * run inline), so a server with only small models never starts them; a small version's costly
 * call runs inline while they start rather than wait for them.
 *
 * With batching (`--enable_batching`, batching.ts), a stateless version's calls with inputs go
 * through a batching queue per target instead; each merged batch is then placed as one call.
 *
 * Queues and deadlines: a worker takes one call at a time; calls wait in a bounded FIFO per
 * version, and idle workers take from the versions round-robin (as TF's shared batch scheduler
 * visits its queues). A full queue refuses with UNAVAILABLE and upstream's message. A call
 * whose deadline passes is answered DEADLINE_EXCEEDED at once, queued or running; a running
 * call's result is then dropped when it arrives. A call whose client went away (its signal
 * aborts) leaves the queue before it runs.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import type { LogFn } from "../log.ts";
import { type Model, type RunTarget, runTargetKey } from "../runtime/model.ts";
import type { PreparedCall } from "../servables/prepared.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { RequestBuffer } from "../tensor/request_memory.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { kernelMemory } from "../kernels/wasm/shared_memory.ts";
import { noteMemberStopped, setCallPending, setMainRunning } from "../kernels/wasm/team.ts";
import {
  type Cost,
  idleRunsHere,
  measure,
  measureHere,
  measurePooled,
  newCost,
} from "./placement.ts";
import {
  type BatchingParameters,
  type MergedBatch,
  mergeInputs,
  roundToAllowedBatchSize,
  splitOutputs,
  taskSize,
} from "./batching.ts";
import {
  type ModelImage,
  modelImage,
  modelTraits,
  postedImage,
  tensorFromImage,
} from "./shared_model.ts";

/** Upstream's message when a batching queue is full (shared_batch_scheduler.h). */
export const QUEUE_FULL_MESSAGE =
  "The batch scheduling queue to which this task was submitted is full";

/** The message of a call whose deadline passed (what DirectSession reports for a timeout). */
export const DEADLINE_MESSAGE = "Timed out waiting for notification";

/** Default bound of the calls waiting per model version. */
export const DEFAULT_MAX_QUEUED = 128;

/** Default cost below which a call runs on the main isolate, in milliseconds. */
export const DEFAULT_INLINE_BELOW_MS = 1;

/**
 * Input elements from which a call of a version with no measured cost goes to the pool: about
 * 4 MB of floats, far above what the small models it serves inline take per call.
 */
const LARGE_CALL_UNITS = 1 << 20;

/** A call predicted to take longer than this waits for the pool to start rather than run inline. */
const WAIT_FOR_POOL_MS = 50;

/** Default weight count from which a version is placed as costly before it is measured. */
export const DEFAULT_HEAVY_WEIGHT_ELEMENTS = 100_000;

/**
 * The pool size the thread flags ask for, as TF Serving sizes its session thread pools: each
 * worker runs one session call at a time, so `--tensorflow_session_parallelism` (or else
 * `--tensorflow_inter_op_parallelism`, or else `--tensorflow_intra_op_parallelism`) is the
 * number of calls that run at once; 0 (the default) means as many as CPUs.
 */
export function inferenceWorkers(flags: {
  readonly tensorflowSessionParallelism: number;
  readonly tensorflowInterOpParallelism: number;
  readonly tensorflowIntraOpParallelism: number;
}): number {
  for (
    const n of [
      flags.tensorflowSessionParallelism,
      flags.tensorflowInterOpParallelism,
      flags.tensorflowIntraOpParallelism,
    ]
  ) {
    if (n > 0) return n;
  }
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}

/** How the executor runs calls. */
export interface ExecutorOptions {
  /** Worker isolates (0: every call runs on the main isolate). */
  readonly workers: number;
  /** Calls that may wait per model version before new ones are refused. */
  readonly maxQueued?: number;
  /** Calls predicted to cost less than this (ms) run on the main isolate (0: none does). */
  readonly inlineBelowMs?: number;
  /** Versions with at least this many weight elements are placed as costly until measured. */
  readonly heavyWeightElements?: number;
  /**
   * Split large convolutions across idle workers (intra-op parallelism, kernels/wasm/team.ts;
   * default: on when there are 2 workers or more).
   */
  readonly intraOp?: boolean;
  /** `--enable_batching`: batch concurrent calls of each signature (see batching.ts). */
  readonly batching?: BatchingParameters;
  /** Told about every batch (upstream's batching metrics). */
  readonly batchObserver?: BatchObserver;
  /** Log lines. */
  readonly log?: LogFn;
}

/** What a transport knows about a call besides its request. */
export interface CallContext {
  /** When the call must be answered by, in ms since the epoch (`Date.now()`). */
  readonly deadline?: number;
  /** Aborted when the client went away. */
  readonly signal?: AbortSignal;
  /**
   * Reused memory the call's feeds may view (tensor/request_memory.ts): the executor holds it
   * while a worker may read it, and lets it be reused only for a version that keeps no state.
   */
  readonly requestBuffer?: RequestBuffer;
}

/** What batching reports, as upstream's batching_session metrics. */
export interface BatchObserver {
  /** A call's rows (`input_batch_size`). */
  inputBatchSize(rows: number): void;
  /** A batch run, padding included (`processed_batch_size`, `padding_size`). */
  processedBatch(executionBatchSize: number, padding: number): void;
  /** Time a call waited in its queue (`queuing_latency`, µs). */
  queuingLatency(micros: number, threadPoolName: string): void;
}

/** One call waiting in a batching queue. */
interface BatchTask {
  readonly feeds: readonly Tensor[];
  readonly size: number;
  readonly enqueued: number;
  readonly resolve: (outs: Tensor[]) => void;
  readonly reject: (e: ServingError) => void;
  done: boolean;
  batch?: PendingBatch;
  timer?: ReturnType<typeof setTimeout>;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface PendingBatch {
  readonly tasks: BatchTask[];
  size: number;
  opened: number;
  closed: boolean;
}

/** The batching queue of one (version, target). */
interface BatchQueue {
  readonly em: ExecModel;
  readonly target: RunTarget;
  readonly key: string;
  /** At least one; the last is open. */
  readonly batches: PendingBatch[];
}

/** One worker isolate. */
interface Slot {
  readonly index: number;
  readonly worker: Worker;
  alive: boolean;
  /** The call it runs, if any. */
  job: Job | undefined;
  /** Versions pinned to it (stateful ones). */
  pinned: number;
  /** Versions it holds. */
  readonly ready: Set<number>;
}

/** A loaded version as the executor sees it. */
interface ExecModel {
  readonly id: number;
  readonly label: string;
  readonly model: Model;
  readonly stateful: boolean;
  /** Large enough to be sent to the pool before it is measured. */
  readonly heavy: boolean;
  /** Its image for the workers; undefined: it always runs inline. */
  readonly image: ModelImage | undefined;
  /** Workers chosen to hold it (once the pool runs); empty while none may run it. */
  slots: Slot[];
  /** Resolves once the chosen workers answered its load; undefined until the pool runs. */
  placed?: Promise<void>;
  readonly queue: Job[];
  /** What its calls cost, by target key. */
  readonly cost: Map<string, Cost>;
  /** Batching queues by target key. */
  readonly batchers: Map<string, BatchQueue>;
  /** Set when a stateful version's worker died: its state is gone, every call is refused. */
  lost?: string;
}

interface Job {
  readonly id: number;
  readonly em: ExecModel;
  readonly target: RunTarget;
  readonly key: string;
  readonly units: number;
  readonly feeds: readonly Tensor[];
  readonly resolve: (outs: Tensor[]) => void;
  readonly reject: (e: ServingError) => void;
  done: boolean;
  /** When it was queued. */
  readonly queuedAt: number;
  /** Whether it was posted as it was queued (it found a worker idle). */
  direct?: boolean;
  timer?: ReturnType<typeof setTimeout>;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** Held from enqueue until it leaves the queue unrun or its worker is done with it. */
  buffer?: RequestBuffer;
}

/** The keys of frozen run targets (the per-version ones every unfiltered call reuses). */
const TARGET_KEYS = new WeakMap<RunTarget, string>();

/** {@linkcode runTargetKey}, remembered for a frozen target so a call builds no key string. */
function targetKey(target: RunTarget): string {
  if (!Object.isFrozen(target)) return runTargetKey(target);
  let key = TARGET_KEYS.get(target);
  if (key === undefined) TARGET_KEYS.set(target, key = runTargetKey(target));
  return key;
}

/** Elements fed (1 + the sum over feeds), the unit costs are measured in. */
function feedUnits(feeds: readonly Tensor[]): number {
  let n = 1;
  for (const t of feeds) n += t.size;
  return n;
}

/** The process's kernel memory, or undefined when the engine has no shared memory. */
function processKernelMemory(): WebAssembly.Memory | undefined {
  try {
    return kernelMemory();
  } catch {
    return undefined;
  }
}

/** After a call arrived while others ran or waited, how long the idle rule stays off (ms). */
const BUSY_MS = 100;

/** Runs prepared calls inline or on worker isolates. */
export class Executor implements AsyncDisposable {
  readonly #workers: number;
  readonly #maxQueued: number;
  readonly #inlineBelowMs: number;
  readonly #heavyWeights: number;
  readonly #intraOp: boolean;
  readonly #batching: BatchingParameters | undefined;
  readonly #batchObserver: BatchObserver | undefined;
  readonly #batchQueues: BatchQueue[] = [];
  #batchesInFlight = 0;
  #batchKick: ReturnType<typeof setTimeout> | undefined;
  readonly #log: LogFn;
  readonly #models = new Map<Model, ExecModel>();
  /** Versions with calls waiting, visited round-robin. */
  readonly #waiting: ExecModel[] = [];
  #slots: Slot[] | undefined;
  #nextModel = 1;
  #nextJob = 1;
  #closed = false;
  /** Until when the idle rule is off: a call arrived while others ran or waited. */
  #busyUntil = 0;

  /** @param options pool size, queue bound and inline thresholds */
  constructor(options: ExecutorOptions) {
    this.#workers = Math.max(0, Math.floor(options.workers));
    this.#maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.#inlineBelowMs = options.inlineBelowMs ?? DEFAULT_INLINE_BELOW_MS;
    this.#heavyWeights = options.heavyWeightElements ?? DEFAULT_HEAVY_WEIGHT_ELEMENTS;
    this.#intraOp = (options.intraOp ?? true) && this.#workers >= 2;
    this.#batching = options.batching;
    this.#batchObserver = options.batchObserver;
    this.#log = options.log ?? (() => {});
  }

  /** Number of live worker isolates (0 until the pool is first needed). */
  get workers(): number {
    return this.#slots?.filter((s) => s.alive).length ?? 0;
  }

  /**
   * Where a version's calls may run: `main` (always inline), `worker` (pinned to one worker)
   * or `any` (inline when cheap, else any worker). Undefined for a version not attached.
   */
  placement(model: Model): "main" | "worker" | "any" | undefined {
    const em = this.#models.get(model);
    if (!em) return undefined;
    if (!em.image) return "main";
    return em.stateful ? "worker" : "any";
  }

  /**
   * Takes a loaded version (after its warmup: from here on a stateful version's state lives
   * where it is pinned). A large one is loaded into the workers before this resolves (starting
   * them if needed); if they cannot take it, it runs inline and the reason is logged.
   */
  async attach(model: Model, label: string): Promise<void> {
    if (this.#closed || this.#models.has(model)) return;
    const traits = modelTraits(model.bundle);
    const heavy = traits.weightElements >= this.#heavyWeights || this.#inlineBelowMs <= 0;
    let image: ModelImage | undefined;
    // A small stateful version stays pinned to the main isolate; so does everything without
    // workers.
    if (this.#workers > 0 && (heavy || !traits.stateful)) {
      image = modelImage(model);
      if (!image) {
        this.#log("info", `${label} runs on the main thread: it holds lookup tables`);
      }
    }
    const em: ExecModel = {
      id: this.#nextModel++,
      label,
      model,
      stateful: traits.stateful,
      heavy,
      image,
      slots: [],
      queue: [],
      cost: new Map(),
      batchers: new Map(),
    };
    this.#models.set(model, em);
    if (!image) return;
    if (heavy) this.#startPool();
    if (this.#slots) await (em.placed ??= this.#place(em, this.#slots));
  }

  /** Starts the workers if they are not running, and places every version that may use them. */
  #startPool(): void {
    if (this.#slots) return;
    const pool = this.#pool();
    for (const em of this.#models.values()) {
      if (em.image && !em.placed) em.placed = this.#place(em, pool);
    }
  }

  /** Chooses the workers of a version and loads it into them. */
  async #place(em: ExecModel, pool: Slot[]): Promise<void> {
    const alive = pool.filter((s) => s.alive);
    let chosen = alive;
    if (em.stateful && alive.length > 0) {
      const least = alive.reduce((a, b) => (b.pinned < a.pinned ? b : a));
      least.pinned++;
      chosen = [least];
    }
    em.slots = chosen;
    await Promise.all(chosen.map((s) => this.#load(s, em)));
    if (em.slots.length === 0) this.#runInlineFromNow(em, "no worker could load it");
  }

  #loading = new Map<string, (error?: { message: string }) => void>();

  #load(slot: Slot, em: ExecModel): Promise<void> {
    return new Promise((resolve) => {
      this.#loading.set(`${slot.index}/${em.id}`, (error) => {
        if (error) {
          this.#log("warning", `Worker ${slot.index} cannot load ${em.label}: ${error.message}`);
          em.slots = em.slots.filter((s) => s !== slot);
        } else slot.ready.add(em.id);
        resolve();
        this.#pump();
      });
      this.#post(slot, { type: "load", model: em.id, image: em.image! });
    });
  }

  /** A version no worker can run: its waiting calls (and all later ones) run inline. */
  #runInlineFromNow(em: ExecModel, why: string): void {
    if (!this.#models.has(em.model)) return;
    this.#log("warning", `${em.label} runs on the main thread from now on: ${why}`);
    const replaced: ExecModel = { ...em, image: undefined, slots: [], queue: [] };
    this.#models.set(em.model, replaced);
    for (const job of em.queue.slice()) {
      try {
        const outs = em.model.plan(job.target).run(job.feeds);
        this.#settle(job, outs);
      } catch (e) {
        this.#settle(job, ServingError.from(e));
      }
    }
  }

  /** Forgets a version (once its calls are done, as the manager unloads it). */
  detach(model: Model): void {
    const em = this.#models.get(model);
    if (!em) return;
    this.#models.delete(model);
    for (const s of em.slots) {
      if (em.stateful) s.pinned--;
      s.ready.delete(em.id);
      if (s.alive) this.#post(s, { type: "unload", model: em.id });
    }
    em.slots = [];
    for (const job of em.queue.slice()) {
      this.#settle(job, new ServingError(Code.UNAVAILABLE, `${em.label} was unloaded`));
    }
    for (const q of em.batchers.values()) {
      const i = this.#batchQueues.indexOf(q);
      if (i >= 0) this.#batchQueues.splice(i, 1);
      for (const b of q.batches) {
        for (const t of b.tasks) {
          this.#settleTask(t, new ServingError(Code.UNAVAILABLE, `${em.label} was unloaded`));
        }
      }
    }
  }

  /**
   * Runs a prepared call: synchronously when it runs inline (no promise is made), else through
   * the version's queue.
   *
   * @throws ServingError DEADLINE_EXCEEDED past the deadline, CANCELLED when the client went
   *   away, UNAVAILABLE when the queue is full; the run's own error
   */
  run<R>(model: Model, call: PreparedCall<R>, ctx: CallContext = {}): R | Promise<R> {
    const em = this.#models.get(model);
    if (em?.lost !== undefined) throw new ServingError(Code.INTERNAL, em.lost);
    if (
      this.#batching !== undefined && em !== undefined && !em.stateful && call.feeds.length > 0
    ) {
      return this.#batch(em, call, ctx).then((outs) => call.finish(outs));
    }
    // A version that keeps no state keeps no view of its feeds past the call (runs inline are
    // synchronous; a worker's run is held, see Job.buffer).
    if (em !== undefined && !em.stateful) ctx.requestBuffer?.allowReuse();
    if (em === undefined || em.image === undefined) {
      return call.finish(model.plan(call.target).run(call.feeds));
    }
    if (ctx.deadline !== undefined && Date.now() >= ctx.deadline) {
      throw new ServingError(Code.DEADLINE_EXCEEDED, DEADLINE_MESSAGE);
    }
    const outs = this.#dispatch(em, call.target, call.feeds, ctx);
    return outs instanceof Promise ? outs.then((o) => call.finish(o)) : call.finish(outs);
  }

  /** Runs feeds inline when predicted cheap (or when the version has no workers), else queues. */
  #dispatch(
    em: ExecModel,
    target: RunTarget,
    feeds: readonly Tensor[],
    ctx: CallContext,
  ): Tensor[] | Promise<Tensor[]> {
    if (em.image === undefined) return em.model.plan(target).run(feeds);
    const key = targetKey(target);
    const units = feedUnits(feeds);
    if (!em.stateful) {
      const cost = em.cost.get(key);
      const perUnit = cost?.least;
      // A call with no measured cost yet runs inline unless its input alone is large: a hostile
      // or unusual request to a cheap model must not stall the event loop for seconds.
      let inline = perUnit === undefined
        ? !em.heavy && units < LARGE_CALL_UNITS
        : perUnit * units < this.#inlineBelowMs;
      if (!inline && cost !== undefined) inline = this.#idleInline(cost, units);
      if (!inline && !em.heavy && !em.slots.some((s) => s.alive && s.ready.has(em.id))) {
        // No worker holds this small version yet: start the pool (in the background) and run
        // here rather than wait for it, unless the call is predicted to take longer than the
        // wait. (A large version was loaded into the workers at attach.)
        this.#startPool();
        inline = perUnit === undefined
          ? units < LARGE_CALL_UNITS
          : perUnit * units < WAIT_FOR_POOL_MS;
      }
      if (inline) {
        // Workers still spinning (for their next call, after helping) would take the CPU
        // this runs on (kernels/wasm/team.ts).
        const quiet = this.#intraOp && this.#slots !== undefined;
        if (quiet) setMainRunning(true);
        const t0 = performance.now();
        let outs;
        try {
          outs = em.model.plan(target).run(feeds);
        } finally {
          if (quiet) setMainRunning(false);
        }
        const ms = performance.now() - t0;
        // The first inline run of a target is cold (code not yet optimised, caches empty): it
        // says nothing of the next calls, and taken as the estimate it would start the pool for
        // a µs-cheap model. Later runs are measured.
        if (cost === undefined) em.cost.set(key, newCost());
        else measureHere(cost, ms / units);
        return outs;
      }
    }
    return this.#enqueue(em, target, key, units, feeds, ctx);
  }

  /**
   * Whether a call the inline threshold sends to the pool runs here by the idle rule
   * ({@link idleRunsHere}): only while nothing else runs or waits, and nothing did for BUSY_MS.
   */
  #idleInline(cost: Cost, units: number): boolean {
    const now = performance.now();
    if (this.#waiting.length > 0 || this.#slots?.some((s) => s.job !== undefined)) {
      // Calls overlap: every core may be needed, and the event loop must stay free.
      this.#busyUntil = now + BUSY_MS;
      return false;
    }
    return now >= this.#busyUntil && idleRunsHere(cost, units, this.#inlineBelowMs);
  }

  /** Adds a call to its batching queue (upstream's `Queue::Schedule`). */
  #batch(em: ExecModel, call: PreparedCall<unknown>, ctx: CallContext): Promise<Tensor[]> {
    const params = this.#batching!;
    let size: number;
    try {
      size = taskSize(call.feeds);
    } catch (e) {
      return Promise.reject(e);
    }
    this.#batchObserver?.inputBatchSize(size);
    if (size > params.maxBatchSize) {
      return Promise.reject(
        new ServingError(
          Code.INVALID_ARGUMENT,
          `Task size ${size} is larger than maximum batch size ${params.maxBatchSize}`,
        ),
      );
    }
    if (this.#closed) {
      return Promise.reject(new ServingError(Code.UNAVAILABLE, "Server is shutting down"));
    }
    if (ctx.deadline !== undefined && Date.now() >= ctx.deadline) {
      return Promise.reject(new ServingError(Code.DEADLINE_EXCEEDED, DEADLINE_MESSAGE));
    }
    const key = runTargetKey(call.target);
    let q = em.batchers.get(key);
    if (!q) {
      q = {
        em,
        target: call.target,
        key,
        batches: [{ tasks: [], size: 0, opened: 0, closed: false }],
      };
      em.batchers.set(key, q);
      this.#batchQueues.push(q);
    }
    let open = q.batches[q.batches.length - 1];
    if (open.size + size > params.maxBatchSize) {
      if (q.batches.length >= params.maxEnqueuedBatches) {
        return Promise.reject(new ServingError(Code.UNAVAILABLE, QUEUE_FULL_MESSAGE));
      }
      open.closed = true;
      open = { tasks: [], size: 0, opened: 0, closed: false };
      q.batches.push(open);
    }
    const { promise, resolve, reject } = Promise.withResolvers<Tensor[]>();
    const task: BatchTask = {
      feeds: call.feeds,
      size,
      enqueued: performance.now(),
      resolve,
      reject,
      done: false,
      batch: open,
    };
    if (open.tasks.length === 0) open.opened = task.enqueued;
    open.tasks.push(task);
    open.size += size;
    const drop = (e: ServingError) => {
      if (task.done) return;
      const b = task.batch;
      if (b) {
        // Still queued: it leaves its batch (a running batch keeps its rows; the answer is
        // dropped).
        const i = b.tasks.indexOf(task);
        if (i >= 0) b.tasks.splice(i, 1);
        b.size -= task.size;
      }
      this.#settleTask(task, e);
    };
    if (ctx.deadline !== undefined) {
      task.timer = setTimeout(
        () => drop(new ServingError(Code.DEADLINE_EXCEEDED, DEADLINE_MESSAGE)),
        Math.max(0, ctx.deadline - Date.now()),
      );
    }
    const signal = ctx.signal;
    if (signal) {
      task.signal = signal;
      task.onAbort = () => drop(new ServingError(Code.CANCELLED, "Cancelled"));
      signal.addEventListener("abort", task.onAbort, { once: true });
    }
    this.#kickBatches(0);
    return promise;
  }

  #settleTask(task: BatchTask, result: ServingError | Tensor[]): void {
    if (task.done) return;
    task.done = true;
    clearTimeout(task.timer);
    if (task.onAbort) task.signal?.removeEventListener("abort", task.onAbort);
    if (result instanceof ServingError) task.reject(result);
    else task.resolve(result);
  }

  /**
   * Processes schedulable batches on the next turn of the event loop (so that calls arriving
   * together are batched together), or after `delayMs` for a batch waiting out its timeout.
   */
  #kickBatches(delayMs: number): void {
    if (this.#batchKick !== undefined) return;
    this.#batchKick = setTimeout(() => {
      this.#batchKick = undefined;
      this.#processBatches();
    }, delayMs);
  }

  /** Upstream's batch threads: take schedulable batches round-robin while a thread is free. */
  #processBatches(): void {
    const params = this.#batching!;
    const timeoutMs = params.batchTimeoutMicros / 1000;
    let wait = Infinity;
    while (this.#batchesInFlight < params.numBatchThreads) {
      let found: { q: BatchQueue; batch: PendingBatch } | undefined;
      for (let k = 0; k < this.#batchQueues.length && !found; k++) {
        const q = this.#batchQueues[k];
        // Batches emptied by calls that left (deadline, client gone) are skipped.
        while (q.batches.length > 1 && q.batches[0].tasks.length === 0) q.batches.shift();
        const front = q.batches[0];
        if (front.tasks.length === 0) continue;
        const now = performance.now();
        if (
          front.closed || front.size >= params.maxBatchSize || now - front.opened >= timeoutMs
        ) {
          found = { q, batch: front };
          // Round-robin: this queue goes to the back.
          this.#batchQueues.splice(k, 1);
          this.#batchQueues.push(q);
        } else wait = Math.min(wait, front.opened + timeoutMs - now);
      }
      if (!found) break;
      const { q, batch } = found;
      q.batches.shift();
      if (q.batches.length === 0) q.batches.push({ tasks: [], size: 0, opened: 0, closed: false });
      this.#runBatch(q, batch);
    }
    if (wait < Infinity) this.#kickBatches(Math.max(0, wait));
  }

  #runBatch(q: BatchQueue, batch: PendingBatch): void {
    const params = this.#batching!;
    const tasks = batch.tasks;
    const now = performance.now();
    for (const t of tasks) {
      t.batch = undefined;
      this.#batchObserver?.queuingLatency((now - t.enqueued) * 1000, params.threadPoolName);
    }
    let merged: MergedBatch;
    try {
      merged = mergeInputs(
        tasks.map((t) => t.feeds),
        tasks.map((t) => t.size),
        "signature" in q.target
          ? q.em.model.signatures.get(q.target.signature)?.inputs.map((i) => i.name) ?? []
          : q.target.feeds,
        params,
      );
    } catch (e) {
      for (const t of tasks) this.#settleTask(t, ServingError.from(e));
      return;
    }
    this.#batchObserver?.processedBatch(
      roundToAllowedBatchSize(params.allowedBatchSizes, batch.size),
      merged.padding,
    );
    const finish = (result: ServingError | Tensor[]) => {
      if (result instanceof ServingError) {
        for (const t of tasks) this.#settleTask(t, result);
      } else {
        let split: Tensor[][];
        try {
          split = splitOutputs(result, merged);
        } catch (e) {
          for (const t of tasks) this.#settleTask(t, ServingError.from(e));
          return;
        }
        tasks.forEach((t, i) => this.#settleTask(t, split[i]));
      }
    };
    this.#batchesInFlight++;
    const done = () => {
      this.#batchesInFlight--;
      this.#kickBatches(0);
    };
    let outs: Tensor[] | Promise<Tensor[]>;
    try {
      outs = this.#dispatch(q.em, q.target, merged.feeds, {});
    } catch (e) {
      finish(ServingError.from(e));
      done();
      return;
    }
    if (outs instanceof Promise) {
      outs.then(finish, (e) => finish(ServingError.from(e))).finally(done);
    } else {
      finish(outs);
      done();
    }
  }

  #enqueue(
    em: ExecModel,
    target: RunTarget,
    key: string,
    units: number,
    feeds: readonly Tensor[],
    ctx: CallContext,
  ): Promise<Tensor[]> {
    if (this.#closed) {
      return Promise.reject(new ServingError(Code.UNAVAILABLE, "Server is shutting down"));
    }
    if (em.queue.length >= this.#maxQueued) {
      return Promise.reject(new ServingError(Code.UNAVAILABLE, QUEUE_FULL_MESSAGE));
    }
    const signal = ctx.signal;
    if (signal?.aborted) return Promise.reject(new ServingError(Code.CANCELLED, "Cancelled"));
    const { promise, resolve, reject } = Promise.withResolvers<Tensor[]>();
    const job: Job = {
      id: this.#nextJob++,
      em,
      target,
      key,
      units,
      feeds,
      resolve,
      reject,
      done: false,
      queuedAt: performance.now(),
    };
    if (ctx.requestBuffer !== undefined) {
      job.buffer = ctx.requestBuffer;
      job.buffer.hold();
    }
    if (ctx.deadline !== undefined) {
      job.timer = setTimeout(
        () => this.#settle(job, new ServingError(Code.DEADLINE_EXCEEDED, DEADLINE_MESSAGE)),
        Math.max(0, ctx.deadline - Date.now()),
      );
    }
    if (signal) {
      job.signal = signal;
      job.onAbort = () => this.#settle(job, new ServingError(Code.CANCELLED, "Cancelled"));
      signal.addEventListener("abort", job.onAbort, { once: true });
    }
    em.queue.push(job);
    if (em.queue.length === 1) this.#waiting.push(em);
    // The first call that needs a worker starts the pool.
    this.#startPool();
    this.#pump();
    job.direct = this.#slots?.some((slot) => slot.job === job) === true;
    return promise;
  }

  /** Answers a call once; a queued one leaves its queue. */
  #settle(job: Job, result: ServingError | Tensor[]): void {
    if (job.done) return;
    job.done = true;
    clearTimeout(job.timer);
    if (job.onAbort) job.signal?.removeEventListener("abort", job.onAbort);
    const q = job.em.queue;
    const i = q.indexOf(job);
    if (i >= 0) {
      q.splice(i, 1);
      if (q.length === 0) this.#dropWaiting(job.em);
      // It never reached a worker.
      job.buffer?.release();
    }
    if (result instanceof ServingError) job.reject(result);
    else job.resolve(result);
  }

  #dropWaiting(em: ExecModel): void {
    const i = this.#waiting.indexOf(em);
    if (i >= 0) this.#waiting.splice(i, 1);
  }

  /** Gives every idle worker the next call it can run. */
  #pump(): void {
    const slots = this.#slots;
    if (!slots) return;
    for (const slot of slots) {
      if (!slot.alive || slot.job !== undefined) continue;
      const job = this.#next(slot);
      if (!job) continue;
      slot.job = job;
      // A worker helping another's split stops at once for its own call (kernels/wasm/team.ts).
      if (this.#intraOp) setCallPending(slot.index, true);
      this.#post(slot, {
        type: "run",
        worker: slot.index,
        job: job.id,
        model: job.em.id,
        target: job.target,
        feeds: job.feeds.map(postedImage),
        // Outputs read only until the call is answered (request_memory.ts) may reuse memory.
        reuseOutputs: job.buffer?.reusable === true,
      });
    }
  }

  /** The next call `slot` may run, taking versions round-robin. */
  #next(slot: Slot): Job | undefined {
    const n = this.#waiting.length;
    for (let k = 0; k < n; k++) {
      const em = this.#waiting[k];
      if (!slot.ready.has(em.id) || !em.slots.includes(slot)) continue;
      const job = em.queue.shift()!;
      // Round-robin: this version goes to the back (or leaves, if nothing else waits).
      this.#waiting.splice(k, 1);
      if (em.queue.length > 0) this.#waiting.push(em);
      return job;
    }
    return undefined;
  }

  #post(slot: Slot, message: ToWorker): void {
    try {
      slot.worker.postMessage(message);
    } catch (e) {
      this.#fail(slot, `cannot post to worker ${slot.index}: ${(e as Error).message}`);
    }
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    if (m.type === "loaded") {
      const key = `${slot.index}/${m.model}`;
      const done = this.#loading.get(key);
      this.#loading.delete(key);
      done?.(m.error);
      return;
    }
    const reusable = m.reusable;
    if (reusable !== undefined && reusable.length > 0) {
      // Back to the worker once the call is answered (after the transport encoded them).
      slot.job?.buffer?.whenReused(() => {
        if (slot.alive) this.#post(slot, { type: "reclaim", buffers: reusable });
      });
    }
    const job = this.#endRun(slot);
    if (job && job.id === m.job) {
      if (m.error === undefined) {
        let cost = job.em.cost.get(job.key);
        if (cost === undefined) job.em.cost.set(job.key, cost = newCost());
        // A call other workers helped with would take up to that many times as long alone,
        // as it would inline: its estimate must not send the next one to the event loop.
        const alone = m.helped ? m.ms * this.#workers : m.ms;
        // The pool's time counts for a call that found a worker idle (one that waited says
        // nothing of an idle server).
        if (job.direct) {
          measurePooled(cost, alone / job.units, (performance.now() - job.queuedAt) / job.units);
        } else measure(cost, alone / job.units);
      }
      this.#settle(
        job,
        m.error
          ? new ServingError(m.error.code as Code, m.error.message)
          : (m.outputs ?? []).map(tensorFromImage),
      );
    }
    this.#pump();
  }

  /** The call a worker ran, now done with (or stopped): its request memory is let go. */
  #endRun(slot: Slot): Job | undefined {
    const job = slot.job;
    slot.job = undefined;
    job?.buffer?.release();
    return job;
  }

  /** A worker died: its call fails; its versions run on the other workers, or inline. */
  #fail(slot: Slot, why: string): void {
    if (!slot.alive) return;
    slot.alive = false;
    this.#log("error", `Worker ${slot.index} stopped: ${why}`);
    try {
      slot.worker.terminate();
    } catch { /* already gone */ }
    // Parts of another worker's split it had claimed will never finish: that worker computes
    // them itself (kernels/wasm/team.ts).
    if (this.#intraOp) noteMemberStopped(slot.index);
    for (const [key, done] of this.#loading) {
      if (key.startsWith(`${slot.index}/`)) {
        this.#loading.delete(key);
        done({ message: why });
      }
    }
    const job = this.#endRun(slot);
    if (job) this.#settle(job, new ServingError(Code.INTERNAL, `Worker stopped: ${why}`));
    for (const em of [...this.#models.values()]) {
      if (!em.slots.includes(slot)) continue;
      em.slots = em.slots.filter((s) => s !== slot);
      if (em.slots.length > 0) continue;
      if (em.stateful) {
        // Its state was in that worker: refuse from now on rather than answer from the main
        // isolate's stale copy (the version must be reloaded).
        const lost = `Cannot run ${em.label}: the worker holding its state stopped (${why})`;
        for (const j of em.queue.slice()) this.#settle(j, new ServingError(Code.INTERNAL, lost));
        em.lost = lost;
      } else this.#runInlineFromNow(em, why);
    }
    this.#pump();
  }

  /** The workers, started on first use. */
  #pool(): Slot[] {
    if (this.#slots) return this.#slots;
    const slots: Slot[] = [];
    for (let i = 0; i < this.#workers; i++) {
      let worker: Worker;
      try {
        // A static specifier, so `deno compile` bundles the worker module.
        worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
      } catch (e) {
        this.#log(
          "warning",
          `Cannot start inference workers; models run on the main thread: ${(e as Error).message}`,
        );
        break;
      }
      const slot: Slot = {
        index: i,
        worker,
        alive: true,
        job: undefined,
        pinned: 0,
        ready: new Set(),
      };
      worker.onmessage = (e: MessageEvent<FromWorker>) => this.#onMessage(slot, e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#fail(slot, e.message);
      };
      worker.onmessageerror = () => this.#fail(slot, "a message could not be read");
      slots.push(slot);
      // The kernels' memory first, so the worker packs no weight the process already packed.
      const memory = processKernelMemory();
      if (memory) {
        this.#post(slot, { type: "init", kernelMemory: memory, team: this.#intraOp, index: i });
      }
    }
    this.#slots = slots;
    if (slots.length > 0) {
      this.#log("info", `Started ${slots.length} inference worker(s)`);
    }
    return slots;
  }

  /** Refuses calls still waiting and stops the workers. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    clearTimeout(this.#batchKick);
    this.#batchKick = undefined;
    for (const q of this.#batchQueues.splice(0)) {
      for (const b of q.batches) {
        for (const t of b.tasks) {
          this.#settleTask(t, new ServingError(Code.UNAVAILABLE, "Server is shutting down"));
        }
      }
    }
    for (const em of this.#waiting.slice()) {
      for (const job of em.queue.slice()) {
        this.#settle(job, new ServingError(Code.UNAVAILABLE, "Server is shutting down"));
      }
    }
    for (const slot of this.#slots ?? []) {
      const job = this.#endRun(slot);
      if (job) this.#settle(job, new ServingError(Code.UNAVAILABLE, "Server is shutting down"));
      slot.alive = false;
      slot.worker.terminate();
      // It leaves the kernel team (its counts of members, calls running and members polling).
      if (this.#intraOp) noteMemberStopped(slot.index);
    }
    for (const done of this.#loading.values()) done({ message: "the server is shutting down" });
    this.#loading.clear();
    return Promise.resolve();
  }

  /** Same as close(). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
