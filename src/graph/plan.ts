/**
 * Compiles a graph, for one set of feeds, fetches and targets, into a Plan: the pruned nodes in
 * topological order, each with its kernel already compiled and its inputs and outputs assigned
 * to slots, and the last use of every slot known so tensors are dropped as soon as possible.
 * Everything that can fail for a model (a missing op, a dangling input, a cycle) fails here, at
 * load time, not on a request. A graph with TF1 control flow (Switch/Merge, loop frames) has no
 * straight-line order: it compiles into the control-flow executor (`executor.ts`) instead, and
 * only such graphs pay for it.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { Attrs } from "../kernels/attrs.ts";
import type { Kernel, KernelRun, ResourceManager } from "../kernels/kernel.ts";
import type { KernelRegistry } from "../kernels/registry.ts";
import { Tensor } from "../tensor/tensor.ts";
import { DataType } from "../tensor/dtype.ts";
import { activateArena, Arena, inFloatStore } from "../tensor/arena.ts";
import { compileExecutor, CONTROL_FLOW_OPS, isBackEdge, nodeError } from "./executor.ts";
import {
  FUSED_ADD_AVG_POOL,
  FUSED_DENSE_SOFTMAX,
  FUSED_MUL_ADD,
  FUSED_RESIZE_CONV,
  FUSED_SCALE_CONV,
  type FusedNode,
  fuseGraph,
} from "./fuse.ts";
import { mulAddF32 } from "../kernels/mul_add.ts";
import { splitBinaryF32, splitsBinary } from "../kernels/wasm/elementwise_split.ts";
import { isTeamMember } from "../kernels/wasm/team.ts";
import { addMeanF32 } from "../kernels/wasm/conv.ts";
import { type Graph, type GraphNode, refName, type TensorRef } from "./graph.ts";

/** What a plan is compiled against. */
export interface CompileEnv {
  /** Kernels by op name. */
  readonly registry: KernelRegistry;
  /** The model's resources (variables, tables). */
  readonly resources: ResourceManager;
  /** Compiles a library function into a callable; undefined if `op` names no function. */
  callable(op: string): KernelRun | undefined;
}

/** What a plan computes. */
export interface PlanSpec {
  /** Tensors supplied by the caller, in the order `run` takes them. */
  readonly feeds: readonly TensorRef[];
  /** Tensors returned, in the order `run` returns them. */
  readonly fetches: readonly TensorRef[];
  /** Nodes run for their effect (initialisers, restore ops). */
  readonly targets?: readonly string[];
  /** Fuse known chains into faster kernels (on unless turned off for tests). */
  readonly fuse?: boolean;
  /** Recycle intermediate tensors' storage across runs (on unless turned off for tests). */
  readonly arena?: boolean;
}

/** Thrown when nodes use ops that have no kernel; lists every such op. */
export class MissingOpsError extends ServingError {
  /**
   * @param ops op name → the nodes that use it
   * @param where what was being compiled
   */
  constructor(readonly ops: ReadonlyMap<string, readonly string[]>, where: string) {
    const list = [...ops].map(([op, nodes]) =>
      `${op} (used by ${nodes.slice(0, 3).map((n) => `"${n}"`).join(", ")}${
        nodes.length > 3 ? `, and ${nodes.length - 3} more` : ""
      })`
    ).join(", ");
    super(Code.UNIMPLEMENTED, `Cannot compile ${where}: no kernel for op(s) ${list}`);
  }
}

interface Step {
  readonly node: string;
  readonly run: KernelRun;
  readonly inputSlots: Int32Array;
  /** Inputs that carry a variable reference to be read before the kernel sees them. */
  readonly deref: readonly number[];
  /** Slot per output index, -1 where the output is unused. */
  readonly outputSlots: Int32Array;
  /** Slots whose last reader is this step. */
  readonly free: Int32Array;
  /** The kernel may allocate from the plan's arena (a pure op, see ARENA_OPS). */
  readonly arena: boolean;
}

const NODE_SUFFIX = (node: string) => `\n\t [[{{node ${node}}}]]`;

/** Told each step's op and duration (ms) while set; for profiling scripts, never the server. */
export type StepTimer = (op: string, node: string, ms: number) => void;
let stepTimer: StepTimer | undefined;

/** Sets (or clears) the step timer of this isolate's sequential plans; returns the old one. */
export function setStepTimer(timer: StepTimer | undefined): StepTimer | undefined {
  const old = stepTimer;
  stepTimer = timer;
  return old;
}

/**
 * Storage for a fetched float32 tensor of `length` elements that the plan would otherwise copy
 * out of the kernel memory into a fresh array (a worker gives buffers it posts to the main
 * isolate as they are); undefined: the plan's own copy.
 */
export type FetchStorage = (length: number) => Float32Array | undefined;

/** An executable plan. */
export interface Plan {
  /** How many nodes run (at most once each in a plan without control flow). */
  readonly size: number;
  /** The op of every node in the plan, for inspection and tests. */
  readonly ops: readonly string[];
  /**
   * Runs the plan.
   *
   * @param feeds one tensor per feed, in PlanSpec order
   * @param fetchStorage where fetched tensors computed in the kernel memory are copied to
   * @returns one tensor per fetch, in PlanSpec order
   * @throws ServingError from a kernel, with the failing node named as TensorFlow does
   */
  run(feeds: readonly Tensor[], fetchStorage?: FetchStorage): Tensor[];
}

/** A plan without control flow: every node runs once, in one precomputed order. */
export class SequentialPlan implements Plan {
  /** @internal */
  constructor(
    private readonly steps: readonly Step[],
    private readonly numSlots: number,
    private readonly feedSlots: Int32Array,
    private readonly fetchSlots: Int32Array,
    /** The op of every node that runs, for inspection and tests. */
    readonly ops: readonly string[],
    /**
     * Per slot: non-zero where its tensor's storage must never be recycled: KEPT_BY_KERNEL (it
     * reaches a kernel that may keep it), FETCHED (the caller gets it); null when the plan
     * recycles nothing.
     */
    private readonly keep: Uint8Array | null,
    /**
     * The slots every run starts with: the constants' values (filled once, at compile time;
     * no step computes them), holes elsewhere.
     */
    private readonly initial: readonly (Tensor | undefined)[],
  ) {
    this.#arena = keep === null ? undefined : new Arena();
  }

  readonly #arena: Arena | undefined;

  /** How many nodes run. */
  get size(): number {
    return this.steps.length;
  }

  /**
   * Runs the plan.
   *
   * @param feeds one tensor per feed, in PlanSpec order
   * @param fetchStorage where fetched tensors computed in the kernel memory are copied to
   * @returns one tensor per fetch, in PlanSpec order
   * @throws ServingError from a kernel, with the failing node named as TensorFlow does
   */
  run(feeds: readonly Tensor[], fetchStorage?: FetchStorage): Tensor[] {
    const arena = this.#arena;
    if (arena === undefined || !arena.wanted()) return this.#run(feeds, undefined, undefined);
    const prev = activateArena(undefined);
    try {
      return this.#run(feeds, arena, fetchStorage);
    } finally {
      activateArena(prev);
      arena.endRun();
    }
  }

  #run(
    feeds: readonly Tensor[],
    arena: Arena | undefined,
    fetchStorage: FetchStorage | undefined,
  ): Tensor[] {
    const keep = this.keep!;
    // A copy of the constants' slots: a step's free clears only this run's copy.
    const slots = this.initial.slice();
    for (let i = 0; i < this.feedSlots.length; i++) slots[this.feedSlots[i]] = feeds[i];
    const timer = stepTimer;
    let s = 0;
    for (const step of this.steps) {
      const t0 = timer === undefined ? 0 : performance.now();
      const ins = step.inputSlots;
      const args: Tensor[] = new Array(ins.length);
      for (let i = 0; i < ins.length; i++) args[i] = slots[ins[i]]!;
      let outs: Tensor[];
      try {
        const deref = step.deref;
        for (let d = 0; d < deref.length; d++) {
          const t = args[deref[d]];
          if (t.ref) args[deref[d]] = t.ref.read();
        }
        if (arena !== undefined && step.arena) {
          activateArena(arena);
          try {
            outs = step.run(args);
          } finally {
            activateArena(undefined);
          }
        } else outs = step.run(args);
      } catch (e) {
        // Name the failing node once, at the innermost level, as TensorFlow's messages do.
        throw nodeError(e, step.node);
      }
      if (timer !== undefined) timer(this.ops[s], step.node, performance.now() - t0);
      s++;
      const os = step.outputSlots;
      if (outs.length < os.length) {
        throw new ServingError(
          Code.INTERNAL,
          `Kernel returned ${outs.length} outputs, expected at least ${os.length}` +
            NODE_SUFFIX(step.node),
        );
      }
      for (let i = 0; i < os.length; i++) {
        const s = os[i];
        if (s < 0) continue;
        let t = outs[i];
        if (arena !== undefined) {
          if ((keep[s] & KEPT_BY_KERNEL) !== 0 && arena.stored(t.data)) {
            // Stored storage never leaves the run (tensor/arena.ts): a tensor a kernel might
            // keep gets ordinary storage before it reaches one.
            t = new Tensor(t.dtype, t.shape, (t.data as Float32Array).slice());
          } else arena.hold(t.data, keep[s] !== 0);
        }
        slots[s] = t;
      }
      const free = step.free;
      for (let i = 0; i < free.length; i++) {
        const t = slots[free[i]];
        if (arena !== undefined && t !== undefined) arena.release(t.data);
        slots[free[i]] = undefined;
      }
    }
    const out: Tensor[] = new Array(this.fetchSlots.length);
    for (let i = 0; i < out.length; i++) {
      const t = slots[this.fetchSlots[i]]!;
      // A fetched variable reference is returned as the variable's value. A fetched tensor in
      // stored storage gets ordinary storage now, not as it was made: the steps after it read
      // it in the kernel memory, where kernels work on it in place and split it across the
      // kernel team (selfie's Sigmoid reads its fetched logits: 0.11 ms on a copy).
      if (t.ref) out[i] = t.ref.read();
      else if (arena !== undefined && arena.stored(t.data)) {
        out[i] = new Tensor(t.dtype, t.shape, copyOut(t.data as Float32Array, fetchStorage));
      } else out[i] = t;
    }
    return out;
  }
}

/**
 * A fetched tensor's floats out of the kernel memory: into `fetchStorage`'s array when it gives
 * one (a worker's buffer it posts as it is: selfie's two 256 KiB outputs cost its worker
 * 0.16-0.29 ms per call copied into fresh arrays, first touched, then 45-65 µs more into the
 * buffers it posts), else a fresh copy.
 */
function copyOut(data: Float32Array, fetchStorage: FetchStorage | undefined): Float32Array {
  const dst = fetchStorage?.(data.length);
  if (dst === undefined || dst.length !== data.length) return data.slice();
  dst.set(data);
  return dst;
}

/** Why a slot's storage is never recycled (see SequentialPlan's `keep`). */
const KEPT_BY_KERNEL = 1;
const FETCHED = 2;

/**
 * Ops whose kernels are pure functions of their inputs: they keep no input or output after they
 * return and cache no tensor they allocate while running, so their outputs may be allocated from
 * the plan's arena and their inputs' storage recycled after its last use (tensor/arena.ts).
 * Anything else (stateful ops, function calls, ops not reviewed) runs without the arena and
 * pins the storage of what it reads.
 */
const ARENA_OPS = new Set([
  "Abs",
  "Add",
  "AddN",
  "AddV2",
  "ArgMax",
  "ArgMin",
  "Atan2",
  "AvgPool",
  "BatchMatMul",
  "BatchMatMulV2",
  "BiasAdd",
  "BroadcastTo",
  "Cast",
  "Ceil",
  "ConcatV2",
  "Const",
  "Conv2D",
  "Conv2DBackpropInput",
  "Cos",
  "DepthToSpace",
  "DepthwiseConv2dNative",
  "Elu",
  "Equal",
  "Exp",
  "ExpandDims",
  "Fill",
  "Floor",
  "FloorDiv",
  "GatherNd",
  "GatherV2",
  "Greater",
  "GreaterEqual",
  "LeakyRelu",
  "Less",
  "LessEqual",
  "Log",
  "LogicalAnd",
  "MatMul",
  "Max",
  "MaxPool",
  "Maximum",
  "Mean",
  "Min",
  "Minimum",
  "Mul",
  "Neg",
  "Pack",
  "Pad",
  "Range",
  "RealDiv",
  "Reciprocal",
  "Relu",
  "Relu6",
  "Reshape",
  "ResizeBilinear",
  "ResizeNearestNeighbor",
  "Rsqrt",
  "Select",
  "Shape",
  "Sigmoid",
  "Sin",
  "Size",
  "Softmax",
  "Split",
  "Sqrt",
  "Square",
  "SquaredDifference",
  "Squeeze",
  "StridedSlice",
  "Sub",
  "Sum",
  "Tanh",
  "Tile",
  "TopKV2",
  "Transpose",
  "Unpack",
  "Where",
  "ZerosLike",
  "_FusedConv2D",
  "_FusedDepthwiseConv2dNative",
  "_FusedMatMul",
  FUSED_DENSE_SOFTMAX,
  FUSED_MUL_ADD,
  FUSED_RESIZE_CONV,
  FUSED_SCALE_CONV,
  FUSED_ADD_AVG_POOL,
]);

/**
 * Constant folding (an op of constants evaluated at compile time) is for the small shape and
 * index arithmetic converters leave in graphs: at most this many bytes in its inputs, and in
 * its outputs.
 */
const MAX_FOLD_BYTES = 64 * 1024;
/** Most bytes of folded constants a plan holds. */
const MAX_FOLDED_PLAN_BYTES = 4 * 1024 * 1024;
/**
 * Pure ops never folded: the products, convolutions and pools, whose weights are prepared
 * (packed, shared with the workers) on their first run, and which can be slow; folding them
 * would move that work, and its cost, into the load.
 */
const NOT_FOLDED = new Set([
  "AvgPool",
  "BatchMatMul",
  "BatchMatMulV2",
  "Conv2D",
  "Conv2DBackpropInput",
  "DepthwiseConv2dNative",
  "MatMul",
  "MaxPool",
  "_FusedConv2D",
  "_FusedDepthwiseConv2dNative",
  "_FusedMatMul",
  FUSED_DENSE_SOFTMAX,
  FUSED_RESIZE_CONV,
  FUSED_SCALE_CONV,
  FUSED_ADD_AVG_POOL,
]);

/** The bytes of a tensor's values; Infinity for strings (never folded). */
function byteSize(t: Tensor): number {
  return (t.data as { byteLength?: number }).byteLength ?? Infinity;
}

/** Ops whose outputs are variable references (TensorFlow's ref types). */
const REF_OUTPUT_OPS = new Set(["VariableV2", "Variable", "Assign", "AssignAdd", "AssignSub"]);
/** Ops that pass their one input through unchanged. */
const FORWARD_OPS = new Set(["Identity", "StopGradient", "PreventGradient", "Snapshot"]);
/** Ops whose output is their first input's value, where it exists (for `inputOps`). */
const VALUE_FORWARD_OPS = new Set(["Enter", "RefEnter", "Switch", "RefSwitch"]);
/** Ops that pass a variable reference on as a reference (TF1 control flow on ref tensors). */
const REF_FORWARD_OPS = new Set([
  "RefEnter",
  "RefExit",
  "RefNextIteration",
  "RefMerge",
  "RefIdentity",
]);
/** Ops whose fed outputs take their control edges along (TensorFlow's FeedInputs). */
const PLACEHOLDER_OPS = new Set(["Placeholder", "PlaceholderV2"]);
/** Inputs that take a reference rather than a value, by op. */
const REF_INPUTS: Readonly<Record<string, readonly number[]>> = {
  Assign: [0],
  AssignAdd: [0],
  AssignSub: [0],
  IsVariableInitialized: [0],
};

/**
 * Compiles a plan.
 *
 * @param graph the nodes
 * @param spec feeds, fetches and targets
 * @param env kernels, resources and functions
 * @param where what is compiled, for messages (e.g. `signature "serving_default"`)
 * @throws MissingOpsError if any node that must run has no kernel
 * @throws ServingError INVALID_ARGUMENT for a dangling input, an unfed argument or a cycle (other
 *   than a loop's back edge from NextIteration to Merge)
 */
export function compilePlan(graph: Graph, spec: PlanSpec, env: CompileEnv, where: string): Plan {
  const fed = new Map<string, number>();
  spec.feeds.forEach((r, i) => fed.set(refName(r), i));
  const fail = (msg: string) =>
    new ServingError(Code.INVALID_ARGUMENT, `Cannot compile ${where}: ${msg}`);
  // A fed Placeholder is replaced by its feed, which takes over its control edges: a node with a
  // control input on it does not make it run (TensorFlow's subgraph.cc FeedInputs).
  const fedPlaceholders = new Set<string>();
  for (const r of spec.feeds) {
    if (PLACEHOLDER_OPS.has(graph.get(r.node)?.op ?? "")) fedPlaceholders.add(r.node);
  }

  // 1. Prune: walk back from fetches and targets, stopping at fed tensors.
  const nodes = new Map<string, GraphNode>();
  const stack: [string, string][] = [];
  for (const r of spec.fetches) if (!fed.has(refName(r))) stack.push([r.node, "a fetch"]);
  for (const t of spec.targets ?? []) stack.push([t, "a target"]);
  while (stack.length > 0) {
    const [name, by] = stack.pop()!;
    if (nodes.has(name)) continue;
    const n = graph.get(name);
    if (!n) throw fail(`node "${name}" (needed by ${by}) does not exist`);
    nodes.set(name, n);
    for (const r of n.inputs) if (!fed.has(refName(r))) stack.push([r.node, `"${name}"`]);
    for (const c of n.controlInputs) if (!fedPlaceholders.has(c)) stack.push([c, `"${name}"`]);
  }
  const controlFlow = [...nodes.values()].some((n) => CONTROL_FLOW_OPS.has(n.op));

  // 2. Fuse known chains.
  if (spec.fuse !== false && !controlFlow) {
    const pinned = new Set([...fed.keys(), ...spec.fetches.map(refName)]);
    fuseGraph(nodes, pinned);
  }

  // 3. Order (Kahn): a node runs after the producers of its unfed inputs and its control inputs.
  // A loop's back edge (NextIteration → Merge) is the one cycle allowed; it is left out here.
  const indegree = new Map<string, number>();
  const after = new Map<string, string[]>();
  for (const n of nodes.values()) {
    const deps = new Set<string>();
    for (const r of n.inputs) {
      if (!fed.has(refName(r)) && !isBackEdge(nodes.get(r.node), n)) deps.add(r.node);
    }
    for (const c of n.controlInputs) if (!fedPlaceholders.has(c)) deps.add(c);
    indegree.set(n.name, deps.size);
    for (const d of deps) {
      let list = after.get(d);
      if (!list) after.set(d, list = []);
      list.push(n.name);
    }
  }
  let order: GraphNode[] = [];
  const ready = [...nodes.values()].filter((n) => indegree.get(n.name) === 0).map((n) => n.name)
    .reverse();
  while (ready.length > 0) {
    const name = ready.pop()!;
    order.push(nodes.get(name)!);
    for (const m of after.get(name) ?? []) {
      const d = indegree.get(m)! - 1;
      indegree.set(m, d);
      if (d === 0) ready.push(m);
    }
  }
  if (order.length !== nodes.size) {
    const stuck = [...indegree].filter(([, d]) => d > 0).map(([n]) => n);
    throw fail(
      `the graph has a cycle through node "${stuck[0]}" (a cycle that is not a loop's ` +
        `NextIteration → Merge back edge)`,
    );
  }

  // The op behind a tensor, looking through forwarding ops; "" where the tensor is fed.
  const sourceOp = (r: TensorRef): string => {
    for (let hops = 0; hops < 64; hops++) {
      if (fed.has(refName(r))) return "";
      const n = graph.get(r.node);
      if (!n) return "";
      if (VALUE_FORWARD_OPS.has(n.op) && n.inputs.length > 0) {
        r = n.inputs[0];
        continue;
      }
      if (!FORWARD_OPS.has(n.op) || n.inputs.length !== 1) return n.op;
      r = n.inputs[0];
    }
    return "";
  };

  // 4. Resolve every kernel; collect all missing ops before failing.
  const missing = new Map<string, string[]>();
  const runs = new Map<string, KernelRun>();
  const functionCalls = new Set<string>();
  const compileNode = (n: GraphNode): KernelRun | undefined => {
    if (n.op === "_Arg") throw fail(`argument "${n.name}" is used but not fed`);
    const fn = env.callable(n.op);
    if (fn) {
      functionCalls.add(n.name);
      return fn;
    }
    const k: Kernel | undefined = env.registry.get(n.op);
    if (!k) {
      const list = missing.get(n.op) ?? [];
      list.push(n.name);
      missing.set(n.op, list);
      return undefined;
    }
    return k.compile({
      name: n.name,
      op: n.op,
      attr: new Attrs(n.name, n.attr),
      numInputs: n.inputs.length,
      inputNames: n.inputs.map((r) => r.index === 0 ? r.node : refName(r)),
      inputOps: n.inputs.map(sourceOp),
      resources: env.resources,
      compileFunction: (f) => {
        const c = env.callable(f);
        if (!c) {
          throw new ServingError(
            Code.NOT_FOUND,
            `Cannot compile node "${n.name}": function "${f}" is not in the graph's library`,
          );
        }
        return c;
      },
    });
  };
  // Kernels compile (and constants are evaluated, below) with no arena active: a constant's
  // storage must never be the arena's to recycle (tensor/arena.ts).
  const outerArena = activateArena(undefined);
  try {
    for (const n of order) {
      const fused = FUSED_COMPILERS.get(n.op);
      if (fused !== undefined) {
        const run = fused(n as FusedNode, compileNode);
        if (run) runs.set(n.name, run);
      } else if (splitsBinary(n.op) && !controlFlow && isTeamMember()) {
        // Only a team member (a pool worker) ever splits: other isolates' plans pay nothing.
        const run = compileNode(n);
        if (run) runs.set(n.name, splittingBinary(n.op, run));
      } else {
        const run = compileNode(n);
        if (run) runs.set(n.name, run);
      }
    }
  } finally {
    activateArena(outerArena);
  }
  if (missing.size > 0) throw new MissingOpsError(missing, where);

  if (controlFlow) {
    return compileExecutor({
      nodes: order,
      runs,
      fed,
      fedPlaceholders,
      fetches: spec.fetches,
      keepsRef: (n, j) =>
        REF_FORWARD_OPS.has(n.op) || (n.op === "RefSwitch" && j === 0) ||
        (REF_INPUTS[n.op]?.includes(j) ?? false),
      where,
    });
  }

  // 5. Slots: feeds first, then every output some step or fetch reads. An Identity of a value
  // (not of a variable reference, which it must read) shares its input's slot and never runs:
  // tensors are immutable, so forwarding is free.
  // An Identity of a variable reference reads the variable when it runs; forwarding it moves the
  // read to its consumers, which is the same value unless something assigns the variable in
  // between, so that is done only in plans that assign no variable.
  const assigns = [...nodes.values()].some((n) =>
    REF_INPUTS[n.op]?.includes(0) && n.op !== "IsVariableInitialized"
  );
  const forwarded = (n: GraphNode): boolean =>
    FORWARD_OPS.has(n.op) && n.inputs.length === 1 && runs.has(n.name) &&
    (!assigns || !REF_OUTPUT_OPS.has(nodes.get(n.inputs[0].node)?.op ?? ""));
  // The node that really produces a tensor, through forwarded ones.
  const producerOf = (r: TensorRef): GraphNode | undefined => {
    let n = nodes.get(r.node);
    while (n && r.index === 0 && forwarded(n) && !fed.has(refName(r))) {
      r = n.inputs[0];
      n = fed.has(refName(r)) ? undefined : nodes.get(r.node);
    }
    return n;
  };
  const slotOf = new Map<string, number>();
  let numSlots = 0;
  const feedSlots = Int32Array.from(spec.feeds, (r) => {
    const key = refName(r);
    if (!slotOf.has(key)) slotOf.set(key, numSlots++);
    return slotOf.get(key)!;
  });
  const slot = (r: TensorRef): number => {
    const key = refName(r);
    let s = slotOf.get(key);
    if (s === undefined) {
      const producer = nodes.get(r.node);
      s = producer && r.index === 0 && forwarded(producer) ? slot(producer.inputs[0]) : numSlots++;
      slotOf.set(key, s);
    }
    return s;
  };
  order = order.filter((n) => !forwarded(n));
  // A Const is evaluated once, here, and its value put in the slots every run starts with; a
  // NoOp has no outputs and no effect (its control inputs are ordered and run as steps of their
  // own). Neither is a step: a run pays nothing for them. A fed Const output is never one of its
  // outputs' slots (noteOutput below), so the feed is what readers see.
  const constants = order.filter((n) =>
    n.op === "Const" && n.inputs.length === 0 && !functionCalls.has(n.name)
  );
  order = order.filter((n) =>
    !((n.op === "Const" || n.op === "NoOp") && n.inputs.length === 0 &&
      !functionCalls.has(n.name))
  );
  let inputSlots = order.map((n) => Int32Array.from(n.inputs, slot));
  const fetchSlots = Int32Array.from(spec.fetches, slot);

  // Which slots each node's outputs fill (a fed output is never overwritten by its producer).
  const outsOf = new Map<string, [number, number][]>();
  const noteOutput = (r: TensorRef): void => {
    const key = refName(r);
    if (fed.has(key)) return;
    const producer = nodes.get(r.node);
    if (producer && r.index === 0 && forwarded(producer)) return noteOutput(producer.inputs[0]);
    let list = outsOf.get(r.node);
    if (!list) outsOf.set(r.node, list = []);
    if (!list.some(([idx]) => idx === r.index)) list.push([r.index, slotOf.get(key)!]);
  };
  for (const n of order) n.inputs.forEach(noteOutput);
  spec.fetches.forEach(noteOutput);

  // The constants' values, in the slots every run starts with. Their storage was made with no
  // arena active, so no arena ever recycles it or hands it to a kernel to write; a step's free
  // of a constant's slot is left out (the next run starts from these again).
  const initial: (Tensor | undefined)[] = new Array(numSlots);
  const isConstant = new Uint8Array(numSlots);
  const prevArena = activateArena(undefined);
  try {
    for (const n of constants) {
      const outs = outsOf.get(n.name);
      if (outs === undefined) continue;
      let values: Tensor[];
      try {
        values = runs.get(n.name)!([]);
      } catch (e) {
        throw nodeError(e, n.name);
      }
      for (const [idx, s] of outs) {
        if (idx >= values.length) {
          throw new ServingError(
            Code.INTERNAL,
            `Kernel returned ${values.length} outputs, expected at least ${idx + 1}` +
              NODE_SUFFIX(n.name),
          );
        }
        initial[s] = values[idx];
        isConstant[s] = 1;
      }
    }
    // Constant folding: a pure op (ARENA_OPS: deterministic, keeps nothing) whose inputs are all
    // constants is evaluated here too and is no step. One that fails is left as a step, so that
    // a run fails as it would have; one with large inputs or outputs is left too (TensorFlow's
    // constant folding also bounds what it materializes), as are the ops in NOT_FOLDED and a
    // split binary op of a kernel team member (which must not use the team while compiling).
    const folded = new Uint8Array(order.length);
    let foldedBytes = 0;
    order.forEach((n, i) => {
      const ins = inputSlots[i];
      if (!ARENA_OPS.has(n.op) || NOT_FOLDED.has(n.op) || functionCalls.has(n.name)) return;
      if (ins.length === 0 || (splitsBinary(n.op) && isTeamMember())) return;
      let inBytes = 0;
      for (let j = 0; j < ins.length; j++) {
        if (isConstant[ins[j]] === 0) return;
        inBytes += byteSize(initial[ins[j]]!);
      }
      if (inBytes > MAX_FOLD_BYTES) return;
      const outs = outsOf.get(n.name);
      if (outs === undefined) return;
      let values: Tensor[];
      try {
        values = runs.get(n.name)!(Array.from(ins, (s) => initial[s]!));
      } catch {
        return;
      }
      let bytes = 0;
      for (const [idx] of outs) {
        const v = values[idx];
        if (v === undefined || v.ref || typeof v.data !== "object" || inFloatStore(v.data)) return;
        bytes += byteSize(v);
      }
      if (bytes > MAX_FOLD_BYTES || foldedBytes + bytes > MAX_FOLDED_PLAN_BYTES) return;
      foldedBytes += bytes;
      for (const [idx, s] of outs) {
        initial[s] = values[idx];
        isConstant[s] = 1;
      }
      folded[i] = 1;
    });
    inputSlots = inputSlots.filter((_, i) => folded[i] === 0);
    order = order.filter((_, i) => folded[i] === 0);
  } finally {
    activateArena(prevArena);
  }
  const lastUse = new Int32Array(numSlots).fill(-1);
  inputSlots.forEach((ins, i) => ins.forEach((s) => (lastUse[s] = i)));
  for (const s of fetchSlots) lastUse[s] = order.length; // never freed
  const frees: number[][] = order.map(() => []);
  lastUse.forEach((step, s) => {
    if (step >= 0 && step < order.length && isConstant[s] === 0) frees[step].push(s);
  });

  // Storage recycling (tensor/arena.ts): pure ops allocate from the plan's arena; a slot read by
  // any other kernel (which might keep the tensor) or fetched never has its storage recycled.
  const pure = (n: GraphNode) => ARENA_OPS.has(n.op) && !functionCalls.has(n.name);
  const keep = new Uint8Array(numSlots);
  order.forEach((n, i) => {
    if (!pure(n)) { for (const s of inputSlots[i]) keep[s] |= KEPT_BY_KERNEL; }
  });
  for (const s of fetchSlots) keep[s] |= FETCHED;

  const steps: Step[] = order.map((n, i) => {
    const outs = outsOf.get(n.name) ?? [];
    const outputSlots = new Int32Array(Math.max(-1, ...outs.map(([idx]) => idx)) + 1).fill(-1);
    for (const [idx, s] of outs) outputSlots[idx] = s;
    const refIns = REF_INPUTS[n.op] ?? [];
    const deref = n.inputs.flatMap((r, j) => {
      const producer = fed.has(refName(r)) ? undefined : producerOf(r);
      return producer && REF_OUTPUT_OPS.has(producer.op) && !refIns.includes(j) ? [j] : [];
    });
    return {
      node: n.name,
      run: runs.get(n.name)!,
      inputSlots: inputSlots[i],
      deref,
      outputSlots,
      free: Int32Array.from(frees[i]),
      arena: pure(n),
    };
  });
  return new SequentialPlan(
    steps,
    numSlots,
    feedSlots,
    fetchSlots,
    order.map((n) => n.op),
    spec.arena === false ? null : keep,
    initial,
  );
}

/**
 * The fused dense → bias → softmax node: the fast kernel when x and W are float matrices and the
 * bias a vector of the output width; the original three kernels otherwise, so every shape
 * TensorFlow accepts still gives TensorFlow's answer.
 */
function compileFusedDenseSoftmax(
  node: FusedNode,
  compileNode: (n: GraphNode) => KernelRun | undefined,
): KernelRun | undefined {
  const fast = compileNode(node);
  const [mm, add, sm] = node.replaces.map(compileNode);
  if (!fast || !mm || !add || !sm) return undefined;
  const ta = node.attr["transpose_a"]?.value.value === true;
  const tb = node.attr["transpose_b"]?.value.value === true;
  const biasFirst = node.biasFirst;
  return (inputs) => {
    const [x, w, b] = inputs;
    const m = w.rank === 2 ? w.shape[tb ? 0 : 1] : -1;
    if (
      x.rank === 2 && w.rank === 2 && b.rank === 1 && b.shape[0] === m && !ta &&
      x.data instanceof Float32Array && w.data instanceof Float32Array &&
      b.data instanceof Float32Array
    ) {
      return fast(inputs);
    }
    const prod = mm([x, w])[0];
    const sum = add(biasFirst ? [b, prod] : [prod, b])[0];
    return sm([sum]);
  };
}

/**
 * The fused x·s + r node: one pass (kernels/mul_add.ts) when all three are float32 and the
 * shapes are the common ones; the original Mul and Add kernels otherwise, so every shape and
 * type TensorFlow accepts still gives TensorFlow's answer (and its errors).
 */
function compileFusedMulAdd(
  node: FusedNode,
  compileNode: (n: GraphNode) => KernelRun | undefined,
): KernelRun | undefined {
  const [mul, add] = node.replaces.map(compileNode);
  if (!mul || !add) return undefined;
  const productSecond = node.biasFirst;
  return (inputs) => {
    const [x, s, r] = inputs;
    const fast = mulAddF32(x, s, r);
    if (fast !== null) return [fast];
    const prod = mul([x, s])[0];
    return add(productSecond ? [r, prod] : [prod, r]);
  };
}

/**
 * A resize and the 1×1 convolution of its output (graph/fuse.ts `fuseResizeConv`: they
 * commute): the convolution first when the resize enlarges the images, at the input's
 * resolution (selfie's three decoder convolutions: a quarter of their work, and the resizes move
 * 16 or 24 channels instead of 16, 24 and 128); in the graph's order otherwise, and whenever the
 * inputs are not what both kernels accept, so that every error is the graph's own.
 */
function compileResizeConv(
  node: FusedNode,
  compileNode: (n: GraphNode) => KernelRun | undefined,
): KernelRun | undefined {
  const [resize, conv] = node.replaces.map(compileNode);
  if (!resize || !conv) return undefined;
  return (inputs) => {
    const [x, size] = inputs;
    const weights = inputs.slice(2);
    const filter = weights[0];
    if (
      x.rank === 4 && x.data instanceof Float32Array && size.rank === 1 && size.shape[0] === 2 &&
      size.data instanceof Int32Array && filter.rank === 4 && filter.shape[2] === x.shape[3] &&
      x.shape[0] > 0 && x.shape[3] > 0 &&
      size.data[0] * size.data[1] > x.shape[1] * x.shape[2] &&
      size.data[0] >= x.shape[1] && size.data[1] >= x.shape[2]
    ) {
      const y = conv([x, ...weights])[0];
      return resize([y, size]);
    }
    return conv([resize([x, size])[0], ...weights]);
  };
}

/**
 * A convolution of Mul(a, b) (graph/fuse.ts `fuseScaleConv`): when one factor is a float32
 * per-channel scale of the other, a 4-D float32 map (shape [C] or ones then C, C its channels:
 * the product then has the map's shape), the convolution's own kernel with `_scale_input` on
 * the map and the scale; the Mul's kernel, then the convolution's, otherwise (every other
 * shape, and every error, as the graph's).
 */
function compileScaledConv(
  node: FusedNode,
  compileNode: (n: GraphNode) => KernelRun | undefined,
): KernelRun | undefined {
  const [mulNode, convNode] = node.replaces;
  const mul = compileNode(mulNode), conv = compileNode(convNode);
  const fast = compileNode({ ...node, op: convNode.op });
  if (!mul || !conv || !fast) return undefined;
  const scales = (s: Tensor, x: Tensor) =>
    x.rank === 4 && x.dtype === DataType.DT_FLOAT && s.dtype === DataType.DT_FLOAT &&
    s.rank >= 1 && s.rank <= 4 && s.shape[s.rank - 1] === x.shape[3] && s.size === x.shape[3];
  return (inputs) => {
    const a = inputs[0], b = inputs[inputs.length - 1];
    const rest = inputs.slice(1, -1);
    if (scales(b, a)) return fast(inputs);
    if (scales(a, b)) return fast([b, ...rest, a]);
    return conv([mul([a, b])[0], ...rest]);
  };
}

/**
 * An AvgPool of Add(a, b) (graph/fuse.ts `fuseAddAvgPool`): when a and b are float32 of one
 * 4-D shape whose height and width are the pool's window (a VALID global average), one pass
 * over both (`addMeanF32`: the float32 sums averaged in float64, the sum never made: selfie's
 * 128×128×16 Add and its pool took 77 + 41 µs served); the Add's kernel, then the pool's,
 * otherwise (every other shape, and every error, as the graph's).
 */
function compileAddAvgPool(
  node: FusedNode,
  compileNode: (n: GraphNode) => KernelRun | undefined,
): KernelRun | undefined {
  const [add, pool] = node.replaces.map(compileNode);
  if (!add || !pool) return undefined;
  const k = node.attr["ksize"]?.value;
  const ksize = k?.case === "list" ? k.value.i.map(Number) : [];
  const windowed = ksize.length === 4 && ksize[0] === 1 && ksize[3] === 1;
  return (inputs) => {
    const [a, b] = inputs;
    if (
      windowed && a.rank === 4 && b.rank === 4 && a.dtype === DataType.DT_FLOAT &&
      b.dtype === DataType.DT_FLOAT && a.shape.every((d, i) => d === b.shape[i]) &&
      a.shape[1] === ksize[1] && a.shape[2] === ksize[2]
    ) {
      const [n, h, w, c] = a.shape;
      const y = addMeanF32(a.data as Float32Array, b.data as Float32Array, n, h, w, c);
      if (y !== null) return [new Tensor(DataType.DT_FLOAT, [n, 1, 1, c], y)];
    }
    return pool(add(inputs));
  };
}

/**
 * How each plan-time fused node compiles (graph/fuse.ts makes them; each keeps its originals).
 * A Map: op names come from the graph, and an object would answer "constructor".
 */
const FUSED_COMPILERS = new Map<
  string,
  (node: FusedNode, compileNode: (n: GraphNode) => KernelRun | undefined) => KernelRun | undefined
>([
  [FUSED_DENSE_SOFTMAX, compileFusedDenseSoftmax],
  [FUSED_MUL_ADD, compileFusedMulAdd],
  [FUSED_RESIZE_CONV, compileResizeConv],
  [FUSED_SCALE_CONV, compileScaledConv],
  [FUSED_ADD_AVG_POOL, compileAddAvgPool],
]);

/**
 * A float32 Add / AddV2 / Sub / Mul that a worker of the kernel team may split with the others
 * (kernels/wasm/elementwise_split.ts: the same floats); the op's own kernel otherwise, and for
 * everything else it accepts (and its errors).
 */
function splittingBinary(op: string, run: KernelRun): KernelRun {
  return (inputs) => {
    if (inputs.length === 2) {
      const y = splitBinaryF32(op, inputs[0], inputs[1]);
      if (y !== null) return [y];
    }
    return run(inputs);
  };
}
