/**
 * A graph in one normal form, whether it came from a GraphDef or from a FunctionDef body:
 * nodes by name, each data input resolved to a (node, output index) pair.
 *
 * @module
 */
import type { AttrValue } from "../proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import type { NodeDef } from "../proto/gen/tensorflow/core/framework/node_def_pb.ts";
import type { FunctionDef } from "../proto/gen/tensorflow/core/framework/function_pb.ts";
import type { OpDef } from "../proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { Code, ServingError } from "../errors.ts";

/** One output of one node. */
export interface TensorRef {
  readonly node: string;
  readonly index: number;
}

/** A node in normal form. */
export interface GraphNode {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly TensorRef[];
  readonly controlInputs: readonly string[];
  readonly attr: Readonly<Record<string, AttrValue>>;
}

/** Nodes by name. */
export type Graph = ReadonlyMap<string, GraphNode>;

/** Formats a tensor reference as TensorFlow names it: `node:0`. */
export function refName(r: TensorRef): string {
  return `${r.node}:${r.index}`;
}

/**
 * Parses a tensor name as a GraphDef writes it: `node`, `node:1` or `^node` (a control input).
 */
export function parseTensorName(name: string): TensorRef & { control: boolean } {
  if (name.startsWith("^")) return { node: name.slice(1), index: -1, control: true };
  const colon = name.lastIndexOf(":");
  if (colon > 0) {
    const idx = name.slice(colon + 1);
    if (/^\d+$/.test(idx)) {
      return { node: name.slice(0, colon), index: Number(idx), control: false };
    }
  }
  return { node: name, index: 0, control: false };
}

/** Builds the normal form of a GraphDef's nodes; duplicate names are an error. */
export function graphFromNodeDefs(
  nodes: readonly NodeDef[],
  where = "graph",
): Map<string, GraphNode> {
  const g = new Map<string, GraphNode>();
  for (const n of nodes) {
    if (g.has(n.name)) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot build ${where}: duplicate node name "${n.name}"`,
      );
    }
    const inputs: TensorRef[] = [];
    const controlInputs: string[] = [];
    for (const i of n.input) {
      const r = parseTensorName(i);
      if (r.control) controlInputs.push(r.node);
      else inputs.push({ node: r.node, index: r.index });
    }
    g.set(n.name, { name: n.name, op: n.op, inputs, controlInputs, attr: n.attr });
  }
  return g;
}

/** Output-arg layout of ops and functions, to resolve `node:arg:i` names inside functions. */
export interface OpSignatures {
  /** The OpDef of an op, if known. */
  opDef(op: string): OpDef | undefined;
  /** The FunctionDef of a function, if the library has it. */
  functionDef(name: string): FunctionDef | undefined;
}

/** A function body in normal form, with its arguments fed and its results fetched. */
export interface FunctionBody {
  readonly name: string;
  readonly graph: Map<string, GraphNode>;
  /** One pseudo-node per input arg, fed by the caller. */
  readonly args: readonly TensorRef[];
  /** The tensors returned, in output-arg order. */
  readonly rets: readonly TensorRef[];
  /** Nodes that must run even if no result depends on them. */
  readonly controlRets: readonly string[];
}

/** How many tensors an arg stands for on a node (a list arg may hold several). */
function argLength(
  arg: OpDef["outputArg"][number],
  attr: Readonly<Record<string, AttrValue>>,
  where: string,
): number {
  if (arg.numberAttr) {
    const v = attr[arg.numberAttr]?.value;
    if (v?.case === "i") return Number(v.value);
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot resolve ${where}: attr "${arg.numberAttr}" is missing`,
    );
  }
  if (arg.typeListAttr) {
    const v = attr[arg.typeListAttr]?.value;
    if (v?.case === "list") return v.value.type.length;
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot resolve ${where}: attr "${arg.typeListAttr}" is missing`,
    );
  }
  return 1;
}

/**
 * Converts a FunctionDef body to the normal form. Inside a function, inputs are written `arg`,
 * `node:out_arg:i` or `^node`; the flat output index of `out_arg:i` comes from the op's OpDef
 * (the MetaGraphDef's stripped op list) or from the called function's signature.
 */
export function functionBody(fdef: FunctionDef, sigs: OpSignatures): FunctionBody {
  const fname = fdef.signature?.name ?? "<unnamed>";
  const where = `function "${fname}"`;
  const graph = new Map<string, GraphNode>();
  const args: TensorRef[] = [];
  const argNames = new Set<string>();
  for (const a of fdef.signature?.inputArg ?? []) {
    // Arg pseudo-nodes are named after the arg; node names in a body cannot clash with them.
    argNames.add(a.name);
    args.push({ node: a.name, index: 0 });
    graph.set(a.name, { name: a.name, op: "_Arg", inputs: [], controlInputs: [], attr: {} });
  }
  const byName = new Map(fdef.nodeDef.map((n) => [n.name, n]));
  const offsets = new Map<string, Map<string, number>>();
  const outputOffset = (nodeName: string, arg: string, ref: string): number => {
    let m = offsets.get(nodeName);
    if (!m) {
      const n = byName.get(nodeName);
      if (!n) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Cannot resolve input "${ref}" in ${where}: no node "${nodeName}"`,
        );
      }
      m = new Map();
      const fn = sigs.functionDef(n.op);
      const outArgs = fn ? fn.signature?.outputArg ?? [] : sigs.opDef(n.op)?.outputArg;
      if (!outArgs) {
        throw new ServingError(
          Code.UNIMPLEMENTED,
          `Cannot resolve input "${ref}" in ${where}: no OpDef for op "${n.op}"`,
        );
      }
      let off = 0;
      for (const a of outArgs) {
        m.set(a.name, off);
        off += fn ? 1 : argLength(a, n.attr, `"${ref}" in ${where}`);
      }
      offsets.set(nodeName, m);
    }
    const off = m.get(arg);
    if (off === undefined) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot resolve input "${ref}" in ${where}: node "${nodeName}" has no output "${arg}"`,
      );
    }
    return off;
  };
  const resolve = (s: string): TensorRef => {
    const parts = s.split(":");
    if (parts.length === 1) {
      if (!argNames.has(s)) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Cannot resolve input "${s}" in ${where}: no such argument`,
        );
      }
      return { node: s, index: 0 };
    }
    if (parts.length === 3) {
      return { node: parts[0], index: outputOffset(parts[0], parts[1], s) + Number(parts[2]) };
    }
    if (parts.length === 2 && argNames.has(parts[0])) return { node: parts[0], index: 0 };
    throw new ServingError(Code.INVALID_ARGUMENT, `Cannot resolve input "${s}" in ${where}`);
  };
  for (const n of fdef.nodeDef) {
    if (graph.has(n.name)) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot build ${where}: duplicate node name "${n.name}"`,
      );
    }
    const inputs: TensorRef[] = [];
    const controlInputs: string[] = [];
    for (const i of n.input) {
      if (i.startsWith("^")) controlInputs.push(i.slice(1));
      else inputs.push(resolve(i));
    }
    graph.set(n.name, { name: n.name, op: n.op, inputs, controlInputs, attr: n.attr });
  }
  const rets = (fdef.signature?.outputArg ?? []).map((a) => {
    const r = fdef.ret[a.name];
    if (r === undefined) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Cannot build ${where}: output "${a.name}" has no return value`,
      );
    }
    return resolve(r);
  });
  const controlRets = Object.values(fdef.controlRet);
  return { name: fname, graph, args, rets, controlRets };
}
