/**
 * Load-time validation of a model's nodes against TensorFlow's op definitions, as TensorFlow's
 * graph import does (`core/framework/node_def_util.cc` ValidateNodeDef, `op_def_util.cc`
 * ValidateAttrValue, `common_runtime/graph_constructor.cc` MakeEdge), before any kernel is
 * compiled:
 *
 * - attrs: a missing attr with a default gets the default (kernels read it like any other);
 *   one without a default, a value of the wrong kind, below the minimum or outside the allowed
 *   values fails with INVALID_ARGUMENT in TensorFlow's words. Attrs the OpDef does not name are
 *   ignored, as TensorFlow does for graphs from a newer producer; `_`-prefixed attrs are internal.
 * - dtypes: each node's input dtypes, derived from its attrs and OpDef, must match the output
 *   dtypes of the tensors it reads (derived the same way from their producers), a reference
 *   output feeding a value input being read through (TypesCompatible); the count of data inputs
 *   must match the OpDef.
 * - kernels: every node a plan will run (the signatures, the restore op, the init op, and the
 *   functions they call) is held to what its kernel honours (`kernels/honours.ts`): an attr value
 *   the kernel would ignore fails with UNIMPLEMENTED, naming the node, the attr and the value.
 *
 * The OpDefs are the model's own (`meta_info_def.stripped_op_list`, written by TensorFlow) where
 * it has one for the op, else the registry's (`kernels/op_defs.ts`). Nodes whose op has no kernel
 * are left alone: the plan reports them as missing ops, with every other missing op.
 *
 * @module
 */
import { clone, create, toBinary } from "@bufbuild/protobuf";
import {
  type AttrValue,
  AttrValueSchema,
} from "../proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { type GraphDef, GraphDefSchema } from "../proto/gen/tensorflow/core/framework/graph_pb.ts";
import type { FunctionDef } from "../proto/gen/tensorflow/core/framework/function_pb.ts";
import type {
  OpDef,
  OpDef_ArgDef,
  OpDef_AttrDef,
} from "../proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { Code, ServingError } from "../errors.ts";
import { type HonouredValues, KERNEL_HONOURS } from "../kernels/honours.ts";
import { registeredOpDef } from "../kernels/op_defs.ts";
import type { KernelRegistry } from "../kernels/registry.ts";
import type { SavedModelBundle } from "../saved_model/reader.ts";
import { DataType } from "../tensor/dtype.ts";
import {
  functionBody,
  graphFromNodeDefs,
  type GraphNode,
  parseTensorName,
  refName,
  type TensorRef,
} from "./graph.ts";

/** Finds the OpDef of an op. */
export type OpDefLookup = (op: string) => OpDef | undefined;

/** What one plan runs: tensors fed, tensors fetched, nodes run for their effect. */
export interface GraphRun {
  /** Fed tensor names (`x:0`). */
  readonly feeds: readonly string[];
  /** Fetched tensor names. */
  readonly fetches: readonly string[];
  /** Target node names. */
  readonly targets: readonly string[];
}

/** How far a reference dtype is from its base type (`DT_FLOAT_REF` = `DT_FLOAT` + 100). */
const REF_OFFSET = 100;

/** TensorFlow's DataTypeString: `float`, `int32`, `float_ref`. */
export function tfTypeName(dt: DataType): string {
  const name = DataType[dt];
  return name ? name.replace(/^DT_/, "").toLowerCase() : `unknown dtype enum (${dt})`;
}

function isRef(dt: DataType): boolean {
  return dt > REF_OFFSET;
}

/** TypesCompatible(expected, actual): equal, or a reference read as its value. */
function typesCompatible(expected: DataType, actual: DataType): boolean {
  return expected === actual ||
    (!isRef(expected) && isRef(actual) && actual - REF_OFFSET === expected);
}

// ---------------------------------------------------------------------------------------------
// TensorFlow's summaries, for messages
// ---------------------------------------------------------------------------------------------

const decoder = new TextDecoder();

/** SummarizeAttrValue, as TensorFlow prints attr values in messages. */
function summarizeAttrValue(v: AttrValue): string {
  const x = v.value;
  switch (x.case) {
    case "s":
      return JSON.stringify(decoder.decode(x.value));
    case "i":
      return String(x.value);
    case "f":
      return String(Math.fround(x.value) === x.value ? x.value : Number(x.value.toPrecision(7)));
    case "b":
      return String(x.value);
    case "type":
      return DataType[x.value] ?? String(x.value);
    case "shape":
      return x.value.unknownRank
        ? "<unknown>"
        : `[${x.value.dim.map((d) => (d.size < 0n ? "?" : String(d.size))).join(",")}]`;
    case "tensor":
      return "<tensor>";
    case "func":
      return x.value.name;
    case "placeholder":
      return `$${x.value}`;
    case "list": {
      const l = x.value;
      const items = [
        ...l.s.map((s) => JSON.stringify(decoder.decode(s))),
        ...l.i.map(String),
        ...l.f.map(String),
        ...l.b.map(String),
        ...l.type.map((t) => DataType[t] ?? String(t)),
        ...l.shape.map((s) =>
          summarizeAttrValue(create(AttrValueSchema, { value: { case: "shape", value: s } }))
        ),
        ...l.func.map((f) => f.name),
      ];
      return `[${items.join(", ")}]`;
    }
    default:
      return "";
  }
}

function summarizeArgs(args: readonly OpDef_ArgDef[]): string {
  return args.map((a) => {
    let s = `${a.name}:`;
    if (a.isRef) s += "Ref(";
    if (a.numberAttr) s += `${a.numberAttr}*`;
    s += a.type !== DataType.DT_INVALID ? tfTypeName(a.type) : a.typeAttr || a.typeListAttr;
    if (a.isRef) s += ")";
    return s;
  }).join(", ");
}

/** SummarizeOpDef: `Op<name=Mul; signature=x:T, y:T -> z:T; attr=T:type,allowed=[…]>`. */
export function summarizeOpDef(d: OpDef): string {
  let s = `Op<name=${d.name}; signature=${summarizeArgs(d.inputArg)} -> ${
    summarizeArgs(d.outputArg)
  }`;
  for (const a of d.attr) {
    s += `; attr=${a.name}:${a.type}`;
    if (a.defaultValue) s += `,default=${summarizeAttrValue(a.defaultValue)}`;
    if (a.hasMinimum) s += `,min=${a.minimum}`;
    if (a.allowedValues) s += `,allowed=${summarizeAttrValue(a.allowedValues)}`;
  }
  if (d.isCommutative) s += "; is_commutative=true";
  if (d.isAggregate) s += "; is_aggregate=true";
  if (d.isStateful) s += "; is_stateful=true";
  if (d.allowsUninitializedInput) s += "; allows_uninitialized_input=true";
  if (d.isDistributedCommunication) s += "; is_distributed_communication=true";
  return s + ">";
}

/** FormatNodeDefForError. */
function nodeForError(name: string): string {
  return `{{node ${name}}}`;
}

// ---------------------------------------------------------------------------------------------
// Attrs
// ---------------------------------------------------------------------------------------------

const KIND_OF_CASE: Readonly<Record<string, string>> = {
  s: "string",
  i: "int",
  f: "float",
  b: "bool",
  type: "type",
  shape: "shape",
  tensor: "tensor",
  func: "func",
};

/** The kind of list an AttrValue's list holds (`list(int)`), or undefined if it is empty. */
function listKind(v: AttrValue): string | undefined {
  if (v.value.case !== "list") return undefined;
  const l = v.value.value;
  const kinds: [number, string][] = [
    [l.s.length, "string"],
    [l.i.length, "int"],
    [l.f.length, "float"],
    [l.b.length, "bool"],
    [l.type.length, "type"],
    [l.shape.length, "shape"],
    [l.tensor.length, "tensor"],
    [l.func.length, "func"],
  ];
  const k = kinds.find(([n]) => n > 0);
  return k ? `list(${k[1]})` : undefined;
}

function listLength(v: AttrValue): number {
  if (v.value.case !== "list") return 0;
  const l = v.value.value;
  return l.s.length + l.i.length + l.f.length + l.b.length + l.type.length + l.shape.length +
    l.tensor.length + l.func.length;
}

/** ValidateAttrValue: kind, minimum, allowed values. Returns TensorFlow's message or undefined. */
function attrValueError(v: AttrValue, a: OpDef_AttrDef): string | undefined {
  const kind = a.type;
  const c = v.value.case;
  if (c === "placeholder") return undefined;
  if (kind.startsWith("list(")) {
    if (c !== "list" && c !== undefined) {
      return `AttrValue had value with type '${KIND_OF_CASE[c] ?? c}' when '${kind}' expected` +
        ` for attr '${a.name}'`;
    }
    const lk = listKind(v);
    if (lk !== undefined && lk !== kind) {
      return `AttrValue had value with type '${lk}' when '${kind}' expected for attr '${a.name}'`;
    }
  } else if (c === undefined) {
    return `AttrValue missing value with expected type '${kind}' for attr '${a.name}'`;
  } else if (c === "list" || KIND_OF_CASE[c] !== kind) {
    const got = c === "list" ? (listKind(v) ?? "list") : KIND_OF_CASE[c];
    return `AttrValue had value with type '${got}' when '${kind}' expected for attr '${a.name}'`;
  }
  if (kind === "type" || kind === "list(type)") {
    const list = kind === "list(type)";
    const types = v.value.case === "type"
      ? [v.value.value]
      : v.value.case === "list"
      ? v.value.value.type
      : [];
    for (const t of types) {
      let err: string | undefined;
      if (DataType[t] === undefined) err = `AttrValue has invalid DataType enum: ${t}`;
      else if (isRef(t)) err = `AttrValue must not have reference type value of ${tfTypeName(t)}`;
      else if (t === DataType.DT_INVALID) {
        err = list ? "AttrValue contains invalid DataType" : "AttrValue has invalid DataType";
      }
      if (err) return `${err} for attr '${a.name}'`;
    }
  }
  if (a.hasMinimum) {
    if (kind === "int") {
      const i = v.value.case === "i" ? v.value.value : 0n;
      if (i < a.minimum) {
        return `Value for attr '${a.name}' of ${i} must be at least minimum ${a.minimum}`;
      }
    } else {
      const n = listLength(v);
      if (BigInt(n) < a.minimum) {
        return `Length for attr '${a.name}' of ${n} must be at least minimum ${a.minimum}`;
      }
    }
  }
  const allowed = a.allowedValues?.value.case === "list" ? a.allowedValues.value.value : undefined;
  if (allowed) {
    if (kind === "type" || kind === "list(type)") {
      const types = v.value.case === "type"
        ? [v.value.value]
        : v.value.case === "list"
        ? v.value.value.type
        : [];
      for (const t of types) {
        if (!allowed.type.includes(t)) {
          return `Value for attr '${a.name}' of ${tfTypeName(t)} is not in the list of allowed ` +
            `values: ${allowed.type.map(tfTypeName).join(", ")}`;
        }
      }
    } else if (kind === "string" || kind === "list(string)") {
      const ok = new Set(allowed.s.map((s) => decoder.decode(s)));
      const strs = v.value.case === "s"
        ? [v.value.value]
        : v.value.case === "list"
        ? v.value.value.s
        : [];
      for (const b of strs) {
        const s = decoder.decode(b);
        if (!ok.has(s)) {
          return `Value for attr '${a.name}' of "${s}" is not in the list of allowed values: ${
            [...ok].map((x) => `"${x}"`).join(", ")
          }`;
        }
      }
    }
  }
  return undefined;
}

function invalid(message: string, where: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, where ? `${message} (in ${where})` : message);
}

/**
 * Validates one node's attrs against its OpDef (ValidateNodeDef) and fills in the defaults of
 * attrs it leaves out, in place.
 *
 * @param node the node (its attr map is completed)
 * @param def the op's definition
 * @param where `""` for the main graph, else e.g. `function "f"`, for messages
 * @throws ServingError INVALID_ARGUMENT worded as TensorFlow's
 */
export function validateNodeAttrs(node: GraphNode, def: OpDef, where = ""): void {
  const attr = node.attr as Record<string, AttrValue>;
  const missing: string[] = [];
  for (const a of def.attr) {
    const v = attr[a.name];
    if (v === undefined) {
      if (a.defaultValue) attr[a.name] = clone(AttrValueSchema, a.defaultValue);
      else missing.push(a.name);
      continue;
    }
    const err = attrValueError(v, a);
    if (err) {
      throw invalid(
        `${err}\n\t; NodeDef: ${nodeForError(node.name)}; ${summarizeOpDef(def)}`,
        where,
      );
    }
  }
  if (missing.length > 0) {
    throw invalid(
      `NodeDef missing attr${missing.length === 1 ? "" : "s"} '${missing.join("', '")}' from ${
        summarizeOpDef(def)
      }; NodeDef: ${nodeForError(node.name)}`,
      where,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Arg types
// ---------------------------------------------------------------------------------------------

/** Dtypes per tensor of an arg list; undefined entries are unknown; undefined if the count is. */
type Dtypes = (DataType | undefined)[] | undefined;

function typeOf(v: AttrValue | undefined): DataType | undefined {
  return v?.value.case === "type" ? v.value.value : undefined;
}

/**
 * The dtypes of a node's inputs or outputs by its OpDef and attrs (InOutTypesForNode), with
 * the OpDef's defaults for attrs the node leaves out.
 */
export function argDtypes(
  args: readonly OpDef_ArgDef[],
  def: OpDef,
  attr: Readonly<Record<string, AttrValue>>,
): Dtypes {
  const get = (name: string): AttrValue | undefined =>
    attr[name] ?? def.attr.find((a) => a.name === name)?.defaultValue;
  const out: (DataType | undefined)[] = [];
  for (const a of args) {
    let types: (DataType | undefined)[];
    if (a.typeListAttr) {
      const v = get(a.typeListAttr);
      if (v?.value.case === "list") types = [...v.value.value.type];
      else if (v !== undefined && v.value.case === undefined) types = [];
      else return undefined;
    } else {
      let n = 1;
      if (a.numberAttr) {
        const v = get(a.numberAttr);
        if (v?.value.case !== "i") return undefined;
        n = Number(v.value.value);
        if (!(n >= 0)) return undefined;
      }
      const t = a.type !== DataType.DT_INVALID ? a.type : typeOf(get(a.typeAttr));
      types = new Array(n).fill(t);
    }
    if (a.isRef) types = types.map((t) => (t === undefined || isRef(t) ? t : t + REF_OFFSET));
    out.push(...types);
  }
  return out;
}

/** The dtypes of a function's args (undefined where they depend on an attr). */
function signatureDtypes(args: readonly OpDef_ArgDef[] | undefined): Dtypes {
  return (args ?? []).map((a) => a.type !== DataType.DT_INVALID ? a.type : undefined);
}

// ---------------------------------------------------------------------------------------------
// Graph walk
// ---------------------------------------------------------------------------------------------

/** What the walk over one graph needs. */
interface Scope {
  readonly opDefOf: OpDefLookup;
  readonly kernels: KernelRegistry;
  readonly functions: ReadonlyMap<string, FunctionDef>;
}

/** Validates the attrs and input dtypes of every node of `graph` whose op has a kernel. */
function checkGraph(
  graph: ReadonlyMap<string, GraphNode>,
  argTypes: ReadonlyMap<string, DataType | undefined>,
  scope: Scope,
  where: string,
): void {
  const runnable = (op: string) => scope.functions.has(op) || scope.kernels.get(op) !== undefined;
  // 1. Attrs, defaults filled (in place: kernels and the writer read the same maps).
  for (const n of graph.values()) {
    if (n.op === "_Arg" || !runnable(n.op) || scope.functions.has(n.op)) continue;
    const def = scope.opDefOf(n.op);
    if (def) validateNodeAttrs(n, def, where);
  }
  // 2. Output dtypes of every node, on demand.
  const outputs = new Map<string, Dtypes>();
  const outputsOf = (n: GraphNode): Dtypes => {
    if (outputs.has(n.name)) return outputs.get(n.name);
    let d: Dtypes;
    const fn = scope.functions.get(n.op);
    if (n.op === "_Arg") d = [argTypes.get(n.name)];
    else if (fn) {
      d = (fn.signature?.outputArg ?? []).map((a) =>
        a.type !== DataType.DT_INVALID ? a.type : typeOf(n.attr[a.typeAttr])
      );
    } else {
      const def = scope.opDefOf(n.op);
      d = def ? argDtypes(def.outputArg, def, n.attr) : undefined;
    }
    outputs.set(n.name, d);
    return d;
  };
  const dtypeOf = (r: TensorRef): DataType | undefined => {
    const p = graph.get(r.node);
    return p ? outputsOf(p)?.[r.index] : undefined;
  };
  // 3. Inputs against the producers' outputs (MakeEdge).
  for (const n of graph.values()) {
    if (n.op === "_Arg" || !runnable(n.op)) continue;
    const fn = scope.functions.get(n.op);
    const def = fn ? undefined : scope.opDefOf(n.op);
    const expected = fn
      ? signatureDtypes(fn.signature?.inputArg)
      : def
      ? argDtypes(def.inputArg, def, n.attr)
      : undefined;
    if (!expected) continue;
    if (expected.length !== n.inputs.length) {
      if (!def) continue;
      const known = expected.every((t) => t !== undefined);
      throw invalid(
        `NodeDef expected inputs '${
          known ? expected.map((t) => tfTypeName(t!)).join(", ") : `${expected.length} tensors`
        }' do not match ${n.inputs.length} inputs specified; ${summarizeOpDef(def)}; NodeDef: ${
          nodeForError(n.name)
        }`,
        where,
      );
    }
    n.inputs.forEach((r, i) => {
      const want = expected[i];
      const got = dtypeOf(r);
      if (want === undefined || got === undefined || typesCompatible(want, got)) return;
      throw invalid(
        `Input ${i} of node ${n.name} was passed ${tfTypeName(got)} from ${r.node}:${r.index} ` +
          `incompatible with expected ${tfTypeName(want)}.`,
        where,
      );
    });
  }
}

/** The nodes the runs reach: back from fetches and targets, stopping at fed tensors. */
function reached(graph: ReadonlyMap<string, GraphNode>, runs: readonly GraphRun[]): Set<string> {
  const seen = new Set<string>();
  for (const run of runs) {
    const fed = new Set(run.feeds.map((t) => refName(parseTensorName(t))));
    const stack: string[] = [...run.targets];
    for (const f of run.fetches) {
      const r = parseTensorName(f);
      if (!fed.has(refName(r))) stack.push(r.node);
    }
    const mine = new Set<string>();
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (mine.has(name)) continue;
      mine.add(name);
      seen.add(name);
      const n = graph.get(name);
      if (!n) continue;
      for (const r of n.inputs) if (!fed.has(refName(r))) stack.push(r.node);
      stack.push(...n.controlInputs);
    }
  }
  return seen;
}

/** The library functions a node calls: as its op, or through func attrs (If, While, calls). */
function calledFunctions(n: GraphNode, functions: ReadonlyMap<string, FunctionDef>): string[] {
  const out: string[] = [];
  if (functions.has(n.op)) out.push(n.op);
  for (const v of Object.values(n.attr)) {
    if (v.value.case === "func") out.push(v.value.value.name);
    else if (v.value.case === "list") out.push(...v.value.value.func.map((f) => f.name));
  }
  return out.filter((f) => functions.has(f));
}

/** A value of an attr as a kernel declaration lists it (scalars only). */
function scalarOf(v: AttrValue): string | number | boolean | undefined {
  const x = v.value;
  switch (x.case) {
    case "s":
      return decoder.decode(x.value);
    case "i":
      return Number(x.value);
    case "f":
    case "b":
      return x.value;
    default:
      return undefined;
  }
}

function sameAttrValue(a: AttrValue, b: AttrValue): boolean {
  // Compared as bytes: a float attr read from a GraphDef is float32, a default parsed from text
  // may not be.
  const x = toBinary(AttrValueSchema, a);
  const y = toBinary(AttrValueSchema, b);
  return x.length === y.length && x.every((byte, i) => byte === y[i]);
}

/**
 * Holds a node that will run to what its kernel honours (Kernel.honours over KERNEL_HONOURS).
 *
 * @throws ServingError UNIMPLEMENTED naming the node, the attr and the value
 */
export function checkHonoured(node: GraphNode, def: OpDef, kernels: KernelRegistry): void {
  const own = kernels.get(node.op)?.honours;
  const table = KERNEL_HONOURS[node.op];
  if (!own && !table) return;
  const decl: Readonly<Record<string, HonouredValues>> = { ...table, ...own };
  const typed = new Set(
    def.attr.filter((a) => a.type === "type" || a.type === "list(type)").map((a) => a.name),
  );
  for (const a of [...def.inputArg, ...def.outputArg]) if (a.numberAttr) typed.add(a.numberAttr);
  const refuse = (a: OpDef_AttrDef, shown: string, supported: string) =>
    new ServingError(
      Code.UNIMPLEMENTED,
      `Cannot load node "${node.name}" (${node.op}): attr ${a.name}=${shown} is not supported ` +
        `by this server's ${node.op} kernel (supported: ${supported})`,
    );
  for (const a of def.attr) {
    const v = node.attr[a.name];
    if (v === undefined || v.value.case === "placeholder") continue;
    const h = decl[a.name];
    if (h === "any" || h === "ignored") continue;
    if (h !== undefined && "types" in h) {
      const types = v.value.case === "type"
        ? [v.value.value]
        : v.value.case === "list"
        ? v.value.value.type
        : [];
      const bad = types.find((t) => !h.types.includes(t));
      if (bad !== undefined) throw refuse(a, tfTypeName(bad), h.types.map(tfTypeName).join(", "));
      continue;
    }
    if (typed.has(a.name)) continue;
    if (h === undefined) {
      if (a.defaultValue && sameAttrValue(v, a.defaultValue)) continue;
    } else {
      const s = scalarOf(v);
      if (s !== undefined && h.includes(s)) continue;
    }
    throw refuse(
      a,
      summarizeAttrValue(v),
      h === undefined
        ? a.defaultValue ? `only the default, ${summarizeAttrValue(a.defaultValue)}` : "no value"
        : h.map((x) => JSON.stringify(x)).join(", "),
    );
  }
}

/**
 * Validates a graph and the library functions its runs call.
 *
 * @param graphDef the graph (attr maps completed with defaults in place)
 * @param opDefOf the OpDefs to hold nodes to
 * @param kernels the kernels (nodes without one are skipped)
 * @param runs what plans will run, for the kernel declarations
 * @throws ServingError INVALID_ARGUMENT for a node its OpDef refuses, UNIMPLEMENTED for an attr
 *   value its kernel does not honour
 */
export function validateGraph(
  graphDef: GraphDef,
  opDefOf: OpDefLookup,
  kernels: KernelRegistry,
  runs: readonly GraphRun[],
): void {
  const functions = new Map(
    (graphDef.library?.function ?? []).map((f) => [f.signature?.name ?? "", f]),
  );
  const scope: Scope = { opDefOf, kernels, functions };
  const graph = graphFromNodeDefs(graphDef.node);
  checkGraph(graph, new Map(), scope, "");

  const honour = (n: GraphNode) => {
    if (n.op === "_Arg" || functions.has(n.op) || !kernels.get(n.op)) return;
    const def = opDefOf(n.op);
    if (def) checkHonoured(n, def, kernels);
  };
  const pending: string[] = [];
  for (const name of reached(graph, runs)) {
    const n = graph.get(name);
    if (!n) continue;
    honour(n);
    pending.push(...calledFunctions(n, functions));
  }
  // Functions run whole: every node of a called function, and the functions those call.
  const done = new Set<string>();
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (done.has(name)) continue;
    done.add(name);
    const fdef = functions.get(name)!;
    let body;
    try {
      body = functionBody(fdef, { opDef: opDefOf, functionDef: (f) => functions.get(f) });
    } catch {
      continue; // A body that does not resolve fails when its plan is compiled, with that error.
    }
    const argTypes = new Map<string, DataType | undefined>();
    (fdef.signature?.inputArg ?? []).forEach((a, i) => {
      argTypes.set(body.args[i].node, a.type !== DataType.DT_INVALID ? a.type : undefined);
    });
    const where = `function "${name}"`;
    checkGraph(body.graph, argTypes, scope, where);
    for (const n of body.graph.values()) {
      honour(n);
      pending.push(...calledFunctions(n, functions));
    }
  }
}

/**
 * The OpDefs a model's nodes are held to: its own `stripped_op_list` where it lists the op, else
 * the registry's.
 */
export function modelOpDefs(strippedOpList: readonly OpDef[]): OpDefLookup {
  const own = new Map(strippedOpList.map((d) => [d.name, d]));
  return (op) => own.get(op) ?? registeredOpDef(op);
}

/**
 * Validates a SavedModel's graph before anything is compiled: every node against its OpDef,
 * and the nodes its signatures, restore op and init op run against their kernels' declarations.
 * Fills in default attrs in the bundle's graph.
 *
 * @throws ServingError INVALID_ARGUMENT or UNIMPLEMENTED, naming the node
 */
export function validateSavedModel(bundle: SavedModelBundle, kernels: KernelRegistry): void {
  const mg = bundle.metaGraph;
  const runs: GraphRun[] = [];
  const names = (m: Record<string, { encoding: { case?: string; value?: unknown } }>) =>
    Object.values(m).flatMap((t) => t.encoding.case === "name" ? [t.encoding.value as string] : []);
  for (const sig of bundle.signatures.values()) {
    runs.push({ feeds: names(sig.inputs), fetches: names(sig.outputs), targets: [] });
  }
  if (bundle.restore) {
    runs.push({
      feeds: [bundle.restore.filenameTensor],
      fetches: [],
      targets: [bundle.restore.op],
    });
  }
  if (bundle.initOp) {
    runs.push({ feeds: bundle.assets.map((a) => a.tensor), fetches: [], targets: [bundle.initOp] });
  }
  validateGraph(
    mg.graphDef ?? create(GraphDefSchema),
    modelOpDefs(mg.metaInfoDef?.strippedOpList?.op ?? []),
    kernels,
    runs,
  );
}
