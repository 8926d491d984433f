/**
 * The executor for graphs with TF1 control flow (`Switch`/`Merge` conditionals and
 * `Enter`/`Exit`/`NextIteration`/`LoopCond` loops). A straight-line plan cannot run them: a loop
 * body runs once per iteration, each iteration needs its own copy of the body's tensors, and a
 * `Switch` decides at run time which branch runs at all. This module follows TensorFlow's
 * executor (`core/common_runtime/propagator_state.cc`, `immutable_executor_state.cc`):
 *
 * - Every node belongs to a *frame*, found by walking the graph from its roots: an `Enter` opens
 *   the frame its `frame_name` names, an `Exit` returns to the parent frame. At run time a frame
 *   has an instance per iteration of its parent, and a frame instance has *iterations*, each with
 *   its own pending counts and input buffers.
 * - A node becomes ready when all its inputs have arrived. A tensor may be *dead* (the untaken
 *   output of a `Switch`); a node with a dead data input, or a control input from a dead node, does
 *   not run and its outputs are dead. A `Merge` runs on the first live data input and is dead only
 *   when every data input is dead (or a dead `Enter` feeds it: a loop on an untaken branch).
 *   `ControlTrigger` always runs.
 * - `Enter` sends its value into iteration 0 of the child frame (to every iteration when
 *   `is_constant`, a loop invariant); a live `NextIteration` starts the next iteration; a live
 *   `Exit` sends its value to the parent frame, and the dead `Exit`s of a loop's last iteration
 *   send deadness there when the frame finishes; a dead `NextIteration` stops.
 *
 * Iterations run one at a time (TensorFlow's `parallel_iterations` = 1, a valid schedule: the
 * results of a dataflow graph do not depend on it), so a frame holds one iteration's state at a
 * time whatever the iteration count, and the work list is a plain stack: no recursion on the
 * number of iterations.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import type { KernelRun } from "../kernels/kernel.ts";
import { getWhileIterationLimit } from "../kernels/control_flow.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type GraphNode, refName, type TensorRef } from "./graph.ts";
import type { Plan } from "./plan.ts";

/** Ops that make a plan need this executor instead of a straight-line order. */
export const CONTROL_FLOW_OPS: ReadonlySet<string> = new Set([
  "Switch",
  "RefSwitch",
  "Merge",
  "RefMerge",
  "Enter",
  "RefEnter",
  "Exit",
  "RefExit",
  "NextIteration",
  "RefNextIteration",
  "LoopCond",
  "ControlTrigger",
]);

const MERGE_OPS = new Set(["Merge", "RefMerge"]);
const NEXT_ITERATION_OPS = new Set(["NextIteration", "RefNextIteration"]);

/**
 * True for the back edge of a loop, a data edge from a `NextIteration` into a `Merge`: the one
 * kind of cycle a GraphDef may have (TensorFlow's GraphConstructor accepts no other).
 */
export function isBackEdge(src: GraphNode | undefined, dst: GraphNode): boolean {
  return src !== undefined && NEXT_ITERATION_OPS.has(src.op) && MERGE_OPS.has(dst.op);
}

/** Formats a failure inside a node as TensorFlow's messages do, naming the node once. */
export function nodeError(e: unknown, node: string): ServingError {
  const err = ServingError.from(e);
  return err.message.includes("[[{{node ") ? err : new ServingError(
    err.code,
    `${err.message}\n\t [[{{node ${node}}}]]`,
    { cause: e },
  );
}

// Item kinds: how a node's readiness and outputs are routed.
const OP = 0;
const MERGE = 1;
const ENTER = 2;
const EXIT = 3;
const NEXT = 4;
const FEED = 5;
const FETCH = 6;

/** One node of the executor's graph: a graph node, a feed or a fetch. */
interface Item {
  readonly name: string;
  readonly kind: number;
  readonly run: KernelRun | undefined;
  readonly controlTrigger: boolean;
  /** Static frame index; position of the node and of its inputs within that frame. */
  frame: number;
  local: number;
  inputStart: number;
  readonly numInputs: number;
  /** Out data edges as (dst item, dst input, src output) triples. */
  outEdges: number[];
  /** Out control edges: dst items. */
  outControl: number[];
  /** Outputs some consumer reads (a kernel must return at least this many). */
  numOutputs: number;
  /** Inputs to read if they hold a variable reference. */
  readonly deref: readonly number[];
  /** Enter: the frame entered and whether the value is a loop invariant. */
  childFrame: number;
  readonly constant: boolean;
  /** Feed: index into the feeds; fetch: its retval index. */
  readonly slot: number;
}

/** What is known of a frame before running: its nodes' initial pending counts. */
interface FrameInfo {
  readonly name: string;
  readonly index: number;
  parent: number;
  numNodes: number;
  numInputs: number;
  /** How many Enter nodes feed it: iteration 0 is complete only after all have run. */
  enters: number;
  initialPending: Int32Array;
}

/** State of one iteration of one frame instance. */
class Iteration {
  readonly pending: Int32Array;
  readonly dead: Int32Array;
  readonly started: Uint8Array;
  readonly inputs: (Tensor | undefined)[];
  outstandingOps = 0;
  outstandingFrames = 0;
  children: Map<number, Frame> | undefined;

  constructor(public num: number, info: FrameInfo) {
    this.pending = info.initialPending.slice();
    this.dead = new Int32Array(info.numNodes);
    this.started = new Uint8Array(info.numNodes);
    this.inputs = new Array(info.numInputs);
  }

  /** Makes a finished iteration's storage the fresh state of iteration `num` (typed arrays are
   * costly to allocate, and a loop ends one iteration just before it starts the next). */
  reset(num: number, info: FrameInfo): this {
    this.num = num;
    this.pending.set(info.initialPending);
    this.dead.fill(0);
    this.started.fill(0);
    this.inputs.fill(undefined);
    this.outstandingOps = 0;
    this.outstandingFrames = 0;
    this.children = undefined;
    return this;
  }
}

/** One instance of a frame (a loop run for one iteration of its parent). */
class Frame {
  iter: Iteration | undefined;
  iterationCount = 0;
  outstandingIterations = 1;
  pendingInputs: number;
  /** Values of live NextIteration nodes, waiting for the current iteration to finish. */
  nextRoots: [number, Tensor | undefined][] = [];
  /** Loop invariants (constant Enter values), given to every iteration. */
  readonly invariants: [number, Tensor | undefined][] = [];
  /** Dead Exit nodes of the latest iteration: deadness sent to the parent when the frame ends. */
  deadExits: number[] = [];
  /** The storage of the last finished iteration, for the next one. */
  spare: Iteration | undefined;

  constructor(
    readonly info: FrameInfo,
    readonly parent: Frame | undefined,
    readonly parentIter: Iteration | undefined,
  ) {
    this.pendingInputs = info.enters;
    this.iter = new Iteration(0, info);
  }
}

interface Tagged {
  readonly item: number;
  readonly frame: Frame;
  readonly iter: Iteration;
  readonly dead: boolean;
}

const NONE: readonly (Tensor | undefined)[] = [];

/** What compileExecutor needs from the plan compiler. */
export interface ExecutorSpec {
  /** The nodes that run (pruned), each with its compiled kernel. */
  readonly nodes: readonly GraphNode[];
  readonly runs: ReadonlyMap<string, KernelRun>;
  /** Fed tensors (`node:i`) → index into the feeds. */
  readonly fed: ReadonlyMap<string, number>;
  /** Fed Placeholders: their control edges move to the feed, as TensorFlow's FeedInputs does. */
  readonly fedPlaceholders: ReadonlySet<string>;
  readonly fetches: readonly TensorRef[];
  /** Inputs of a node that take a variable reference rather than its value. */
  keepsRef(node: GraphNode, input: number): boolean;
  /** What is compiled, for messages. */
  readonly where: string;
}

/** A plan run by the control-flow executor. */
export class ExecutorPlan implements Plan {
  /** @internal */
  constructor(
    private readonly items: readonly Item[],
    private readonly frames: readonly FrameInfo[],
    private readonly roots: readonly number[],
    /** Per requested fetch, its retval: the index of its name among the distinct names sorted. */
    private readonly fetchIndex: Int32Array,
    private readonly numRetvals: number,
    /** The op of every node that runs. */
    readonly ops: readonly string[],
  ) {}

  /** How many graph nodes the plan holds. */
  get size(): number {
    return this.ops.length;
  }

  /**
   * Runs the plan.
   *
   * @param feeds one tensor per feed, in PlanSpec order
   * @returns one tensor per fetch, in PlanSpec order
   * @throws ServingError from a kernel, naming the node; INVALID_ARGUMENT `Retval[i] does not
   *   have value` when a fetched tensor is dead, as TensorFlow's session reports it
   */
  run(feeds: readonly Tensor[]): Tensor[] {
    const ex = new Execution(this.items, this.frames, feeds, this.numRetvals);
    ex.start(this.roots);
    ex.loop();
    const results = ex.results;
    for (let i = 0; i < results.length; i++) {
      if (results[i] === undefined) {
        throw new ServingError(Code.INVALID_ARGUMENT, `Retval[${i}] does not have value`);
      }
    }
    const out: Tensor[] = new Array(this.fetchIndex.length);
    for (let i = 0; i < out.length; i++) {
      const t = results[this.fetchIndex[i]]!;
      out[i] = t.ref ? t.ref.read() : t;
    }
    return out;
  }
}

/** One run of an ExecutorPlan. */
class Execution {
  readonly ready: Tagged[] = [];
  readonly results: (Tensor | undefined)[];
  rootDone = false;
  readonly #limit = getWhileIterationLimit();

  constructor(
    private readonly items: readonly Item[],
    private readonly frames: readonly FrameInfo[],
    private readonly feeds: readonly Tensor[],
    numFetches: number,
  ) {
    this.results = new Array(numFetches);
  }

  start(roots: readonly number[]): void {
    const root = new Frame(this.frames[0], undefined, undefined);
    const iter = root.iter!;
    for (let i = roots.length - 1; i >= 0; i--) {
      iter.started[this.items[roots[i]].local] = 1;
      this.ready.push({ item: roots[i], frame: root, iter, dead: false });
    }
    iter.outstandingOps = roots.length;
    if (roots.length === 0) this.rootDone = true;
  }

  loop(): void {
    const ready = this.ready;
    while (ready.length > 0) this.process(ready.pop()!);
    if (!this.rootDone) {
      throw new ServingError(
        Code.INTERNAL,
        "The control-flow executor stalled: some nodes wait for inputs that never arrive " +
          "(a malformed loop)",
      );
    }
  }

  process(t: Tagged): void {
    const it = this.items[t.item];
    const { frame, iter } = t;
    const dead = t.dead;
    const inputs = iter.inputs;
    const base = it.inputStart;
    const n = it.numInputs;
    let outs = NONE;
    if (!dead) {
      if (it.kind === FEED) {
        outs = [this.feeds[it.slot]];
      } else if (it.kind === FETCH) {
        if (this.results[it.slot] !== undefined) {
          throw new ServingError(Code.INTERNAL, `Retval[${it.slot}] has already been set.`);
        }
        this.results[it.slot] = inputs[base];
      } else {
        const args: Tensor[] = new Array(n);
        for (let j = 0; j < n; j++) args[j] = inputs[base + j]!;
        try {
          const deref = it.deref;
          for (let d = 0; d < deref.length; d++) {
            const a = args[deref[d]];
            if (a?.ref) args[deref[d]] = a.ref.read();
          }
          outs = it.run!(args);
        } catch (e) {
          throw nodeError(e, it.name);
        }
        if (outs.length < it.numOutputs) {
          throw nodeError(
            new ServingError(
              Code.INTERNAL,
              `Kernel returned ${outs.length} outputs, expected at least ${it.numOutputs}`,
            ),
            it.name,
          );
        }
      }
    }
    for (let j = 0; j < n; j++) inputs[base + j] = undefined;

    switch (it.kind) {
      case ENTER: {
        let child = iter.children?.get(it.childFrame);
        if (!child) {
          child = new Frame(this.frames[it.childFrame], frame, iter);
          (iter.children ??= new Map()).set(it.childFrame, child);
          iter.outstandingFrames++;
        }
        // Iteration 0 lives until every Enter has delivered, so it is the current one.
        const citer = child.iter!;
        if (it.constant) child.invariants.push([t.item, outs[0]]);
        citer.outstandingOps += this.activate(it, dead, child, citer, outs);
        child.pendingInputs--;
        if (citer.outstandingOps === 0) this.cleanup(child, citer);
        break;
      }
      case EXIT:
        if (dead) {
          if (iter.num === frame.iterationCount) frame.deadExits.push(t.item);
        } else {
          const piter = frame.parentIter!;
          piter.outstandingOps += this.activate(it, false, frame.parent!, piter, outs);
        }
        break;
      case NEXT:
        // A dead NextIteration stops; a live one waits for its iteration to finish.
        if (!dead) frame.nextRoots.push([t.item, outs[0]]);
        break;
      default:
        iter.outstandingOps += this.activate(it, dead, frame, iter, outs);
    }
    if (--iter.outstandingOps === 0) this.cleanup(frame, iter);
  }

  /** Delivers a node's outputs (or its deadness) to its consumers; returns how many became ready. */
  activate(
    it: Item,
    dead: boolean,
    frame: Frame,
    iter: Iteration,
    outs: readonly (Tensor | undefined)[],
  ): number {
    const items = this.items;
    const { pending, dead: deadCount, started, inputs } = iter;
    let activated = 0;
    const e = it.outEdges;
    for (let k = 0; k < e.length; k += 3) {
      const d = e[k];
      const dst = items[d];
      const loc = dst.local;
      const v = outs[e[k + 2]];
      let ready: boolean;
      let dstDead: boolean;
      if (dst.kind === MERGE) {
        if (started[loc]) continue;
        if (v !== undefined) {
          inputs[dst.inputStart + e[k + 1]] = v;
          const count = pending[loc];
          pending[loc] = count & ~1;
          ready = count === 1;
          dstDead = false;
        } else {
          const dc = ++deadCount[loc];
          // A dead Enter kills the Merge at once: its back edge will never deliver.
          dstDead = dc === dst.numInputs || it.kind === ENTER;
          ready = pending[loc] === 1 && dstDead;
        }
      } else {
        if (v !== undefined) inputs[dst.inputStart + e[k + 1]] = v;
        else deadCount[loc]++;
        ready = --pending[loc] === 0;
        dstDead = deadCount[loc] > 0;
      }
      if (ready) {
        started[loc] = 1;
        this.ready.push({ item: d, frame, iter, dead: dstDead && !dst.controlTrigger });
        activated++;
      }
    }
    const c = it.outControl;
    for (let k = 0; k < c.length; k++) {
      const d = c[k];
      const dst = items[d];
      const loc = dst.local;
      let ready: boolean;
      let dstDead: boolean;
      if (dst.kind === MERGE) {
        if (started[loc]) continue;
        const p = pending[loc] -= 2;
        dstDead = deadCount[loc] === dst.numInputs;
        ready = p === 0 || (p === 1 && dstDead);
      } else {
        if (dead) deadCount[loc]++;
        ready = --pending[loc] === 0;
        dstDead = deadCount[loc] > 0;
      }
      if (ready) {
        started[loc] = 1;
        this.ready.push({ item: d, frame, iter, dead: dstDead && !dst.controlTrigger });
        activated++;
      }
    }
    return activated;
  }

  /**
   * Called when an iteration has no outstanding op: ends it (starting the next one if a
   * NextIteration delivered), and ends the frame when its last iteration is over, going up
   * through the parents that this completes. A loop, not recursion.
   */
  cleanup(frame: Frame, iter: Iteration): void {
    for (;;) {
      if (iter.outstandingOps !== 0 || iter.outstandingFrames !== 0) return;
      if (iter.num === 0 && frame.pendingInputs !== 0) return;
      frame.iter = undefined;
      frame.spare = iter;
      frame.outstandingIterations--;
      if (frame.nextRoots.length > 0) {
        iter = this.nextIteration(frame);
        continue;
      }
      if (frame.pendingInputs !== 0 || frame.outstandingIterations !== 0) return;
      const parent = frame.parent;
      if (!parent) {
        this.rootDone = true;
        return;
      }
      const piter = frame.parentIter!;
      piter.children!.delete(frame.info.index);
      for (const x of frame.deadExits) {
        piter.outstandingOps += this.activate(this.items[x], true, parent, piter, NONE);
      }
      piter.outstandingFrames--;
      frame = parent;
      iter = piter;
    }
  }

  /** Starts the next iteration of a frame with the NextIteration values and the invariants. */
  nextIteration(frame: Frame): Iteration {
    if (frame.iterationCount >= this.#limit) {
      throw new ServingError(
        Code.RESOURCE_EXHAUSTED,
        `While loop "${frame.info.name}" did not finish within ${this.#limit} iterations (the ` +
          `server's limit per loop)`,
      );
    }
    const num = ++frame.iterationCount;
    const iter = frame.spare?.reset(num, frame.info) ?? new Iteration(num, frame.info);
    frame.spare = undefined;
    frame.iter = iter;
    frame.outstandingIterations++;
    frame.deadExits = [];
    const roots = frame.nextRoots;
    frame.nextRoots = [];
    let activated = 0;
    for (const [x, v] of roots) activated += this.activate(this.items[x], false, frame, iter, [v]);
    for (const [x, v] of frame.invariants) {
      activated += this.activate(this.items[x], v === undefined, frame, iter, [v]);
    }
    iter.outstandingOps += activated;
    return iter;
  }
}

function attrString(n: GraphNode, name: string): string | undefined {
  const v = n.attr[name]?.value;
  return v?.case === "s" ? new TextDecoder().decode(v.value) : undefined;
}

/**
 * Builds an ExecutorPlan: the executor's graph (feeds and fetches as nodes of their own, as
 * TensorFlow's subgraph rewrite makes them), the frame of every node, and each frame's layout.
 *
 * @throws ServingError INVALID_ARGUMENT for a node with inputs from different frames, an Exit
 *   without an Enter or an Enter without a frame name
 */
export function compileExecutor(spec: ExecutorSpec): ExecutorPlan {
  const fail = (msg: string) =>
    new ServingError(Code.INVALID_ARGUMENT, `Cannot compile ${spec.where}: ${msg}`);
  const items: Item[] = [];
  const nodeOf: GraphNode[] = [];
  const newItem = (
    name: string,
    kind: number,
    fields: Partial<Item> & { numInputs: number },
    node?: GraphNode,
  ): number => {
    items.push({
      name,
      kind,
      run: undefined,
      controlTrigger: false,
      frame: -1,
      local: -1,
      inputStart: -1,
      outEdges: [],
      outControl: [],
      numOutputs: 0,
      deref: [],
      childFrame: -1,
      constant: false,
      slot: -1,
      ...fields,
    });
    if (node) nodeOf[items.length - 1] = node;
    return items.length - 1;
  };

  // Feeds: one node per fed tensor (the last position wins, as in the straight-line plan).
  const feedItem = new Map<string, number>();
  const placeholderFeed = new Map<string, number>();
  for (const [key, i] of spec.fed) {
    const x = newItem(`_feed_${key}`, FEED, { numInputs: 0, slot: i });
    feedItem.set(key, x);
    const node = key.slice(0, key.lastIndexOf(":"));
    if (spec.fedPlaceholders.has(node) && !placeholderFeed.has(node)) placeholderFeed.set(node, x);
  }
  // Graph nodes.
  const itemOf = new Map<string, number>();
  for (const n of spec.nodes) {
    const kind = MERGE_OPS.has(n.op)
      ? MERGE
      : n.op === "Enter" || n.op === "RefEnter"
      ? ENTER
      : n.op === "Exit" || n.op === "RefExit"
      ? EXIT
      : NEXT_ITERATION_OPS.has(n.op)
      ? NEXT
      : OP;
    const deref: number[] = [];
    n.inputs.forEach((_, j) => {
      if (!spec.keepsRef(n, j)) deref.push(j);
    });
    const isConstant = n.attr["is_constant"]?.value;
    itemOf.set(
      n.name,
      newItem(n.name, kind, {
        numInputs: n.inputs.length,
        run: spec.runs.get(n.name),
        controlTrigger: n.op === "ControlTrigger",
        deref,
        constant: kind === ENTER && isConstant?.case === "b" && isConstant.value,
      }, n),
    );
  }
  // Fetches: one node per distinct tensor, numbered as TensorFlow's session numbers its retvals
  // (the fetch names sorted), so that errors name the same `Retval[i]`.
  const fetchKeys = [...new Set(spec.fetches.map(refName))].sort();
  const fetchItems = fetchKeys.map((key, slot) =>
    newItem(`_retval_${key}`, FETCH, { numInputs: 1, slot })
  );
  const fetchIndex = Int32Array.from(spec.fetches, (r) => fetchKeys.indexOf(refName(r)));

  // Edges.
  const numControl = new Int32Array(items.length);
  const source = (r: TensorRef): [number, number] => {
    const f = feedItem.get(refName(r));
    return f !== undefined ? [f, 0] : [itemOf.get(r.node)!, r.index];
  };
  const addEdge = (r: TensorRef, dst: number, input: number) => {
    const [src, out] = source(r);
    const s = items[src];
    s.outEdges.push(dst, input, out);
    if (out + 1 > s.numOutputs) s.numOutputs = out + 1;
  };
  for (const n of spec.nodes) {
    const x = itemOf.get(n.name)!;
    n.inputs.forEach((r, j) => addEdge(r, x, j));
    const controls = new Set<number>();
    for (const c of n.controlInputs) {
      const src = placeholderFeed.get(c) ?? itemOf.get(c);
      if (src !== undefined) controls.add(src);
    }
    for (const src of controls) items[src].outControl.push(x);
    numControl[x] = controls.size;
  }
  fetchKeys.forEach((key, i) => {
    const ref = spec.fetches.find((r) => refName(r) === key)!;
    addEdge(ref, fetchItems[i], 0);
  });

  // Frames: walk from the roots as TensorFlow's BuildControlFlowInfo does.
  const frames: FrameInfo[] = [];
  const frameIndex = new Map<string, number>();
  const frameNamed = (name: string): number => {
    let f = frameIndex.get(name);
    if (f === undefined) {
      f = frames.length;
      frameIndex.set(name, f);
      frames.push({
        name,
        index: f,
        parent: -1,
        numNodes: 0,
        numInputs: 0,
        enters: 0,
        initialPending: new Int32Array(0),
      });
    }
    return f;
  };
  frameNamed("");
  const parentEnter = new Int32Array(items.length).fill(-1);
  const reachedFrom = new Int32Array(items.length).fill(-1);
  const roots: number[] = [];
  const queue: number[] = [];
  items.forEach((it, x) => {
    if (it.numInputs === 0 && numControl[x] === 0) {
      it.frame = 0;
      roots.push(x);
      queue.push(x);
    }
  });
  const frameOfEnter = (x: number): number => {
    const name = attrString(nodeOf[x], "frame_name") ?? "";
    if (name === "") throw fail(`the Enter node "${items[x].name}" must have a frame name`);
    return frameNamed(name);
  };
  for (let q = 0; q < queue.length; q++) {
    const cur = queue[q];
    const it = items[cur];
    let outFrame: number;
    let outParent: number;
    if (it.kind === ENTER) {
      outFrame = frameOfEnter(cur);
      outParent = cur;
      const info = frames[outFrame];
      if (info.parent === -1) info.parent = it.frame;
      else if (info.parent !== it.frame) {
        throw new ServingError(
          Code.INTERNAL,
          `Cannot compile ${spec.where}: invalid loop structure: mismatched parent frames for ` +
            `"${info.name}": "${frames[it.frame].name}" vs "${frames[info.parent].name}"`,
        );
      }
    } else if (it.kind === EXIT) {
      const p = parentEnter[cur];
      if (p < 0) {
        throw fail(
          `invalid Exit op "${it.name}": cannot find a corresponding Enter op`,
        );
      }
      outFrame = items[p].frame;
      outParent = parentEnter[p];
    } else {
      outFrame = it.frame;
      outParent = parentEnter[cur];
    }
    const visit = (d: number) => {
      const dst = items[d];
      if (dst.frame === -1) {
        dst.frame = outFrame;
        parentEnter[d] = outParent;
        reachedFrom[d] = cur;
        queue.push(d);
      } else if (dst.frame !== outFrame) {
        throw fail(
          `node "${dst.name}" has inputs from different frames. The input "${it.name}" is in ` +
            `frame '${frames[outFrame].name}'. The input "${
              items[reachedFrom[d]].name
            }" is in frame '${frames[dst.frame].name}'.`,
        );
      }
    };
    for (let k = 0; k < it.outEdges.length; k += 3) visit(it.outEdges[k]);
    for (const d of it.outControl) visit(d);
  }

  // Layout of each frame: node positions, input buffers, initial pending counts.
  const pendingLists: number[][] = frames.map(() => []);
  items.forEach((it, x) => {
    if (it.frame < 0) {
      // Unreachable from any root: only possible inside a cycle, which compilePlan refuses.
      throw fail(`node "${it.name}" cannot be reached from any input`);
    }
    if (it.kind === NEXT && it.frame === 0) {
      throw fail(`the NextIteration node "${it.name}" is not inside a loop (no Enter leads to it)`);
    }
    const info = frames[it.frame];
    it.local = info.numNodes++;
    it.inputStart = info.numInputs;
    info.numInputs += it.numInputs;
    pendingLists[it.frame].push(
      it.kind === MERGE ? 1 + 2 * numControl[x] : it.numInputs + numControl[x],
    );
    if (it.kind === ENTER) {
      it.childFrame = frameOfEnter(x);
      frames[it.childFrame].enters++;
    }
  });
  frames.forEach((f, i) => (f.initialPending = Int32Array.from(pendingLists[i])));

  return new ExecutorPlan(
    items,
    frames,
    roots,
    fetchIndex,
    fetchKeys.length,
    spec.nodes.map((n) => n.op),
  );
}
