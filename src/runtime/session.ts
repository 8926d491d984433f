/**
 * A Session: one graph with its function library and its resources, compiling plans on demand.
 * It is what TensorFlow's DirectSession is to a SavedModel: restore, init and every signature
 * run through the same session, so they share variables and tables.
 *
 * @module
 */
import type { GraphDef } from "../proto/gen/tensorflow/core/framework/graph_pb.ts";
import type { FunctionDef } from "../proto/gen/tensorflow/core/framework/function_pb.ts";
import type { OpDef } from "../proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { KernelRun } from "../kernels/kernel.ts";
import { registeredOpDef } from "../kernels/op_defs.ts";
import type { KernelRegistry } from "../kernels/registry.ts";
import { functionBody, type Graph, graphFromNodeDefs, type OpSignatures } from "../graph/graph.ts";
import { compilePlan, type Plan, type PlanSpec } from "../graph/plan.ts";
import { Resources } from "./resources.ts";

/** A graph, its library and its state. */
export class Session implements OpSignatures {
  /** Variables and tables of this session. */
  readonly resources: Resources = new Resources();
  readonly #graph: Graph;
  readonly #functions: ReadonlyMap<string, FunctionDef>;
  readonly #opDefs: ReadonlyMap<string, OpDef>;
  readonly #compiled = new Map<string, KernelRun>();
  readonly #compiling = new Set<string>();

  /**
   * @param graphDef the graph (with its function library)
   * @param opDefs OpDefs of the ops used (the MetaGraphDef's stripped op list), to resolve
   *   named outputs inside functions
   * @param registry the kernels
   */
  constructor(
    graphDef: GraphDef,
    opDefs: readonly OpDef[],
    private readonly registry: KernelRegistry,
  ) {
    this.#graph = graphFromNodeDefs(graphDef.node);
    this.#functions = new Map(
      (graphDef.library?.function ?? []).map((f) => [f.signature?.name ?? "", f]),
    );
    this.#opDefs = new Map(opDefs.map((o) => [o.name, o]));
  }

  /** The OpDef of an op: the model's if it lists it, else the registry's (kernels/op_defs.ts). */
  opDef(op: string): OpDef | undefined {
    return this.#opDefs.get(op) ?? registeredOpDef(op);
  }

  /** The FunctionDef of a library function. */
  functionDef(name: string): FunctionDef | undefined {
    return this.#functions.get(name);
  }

  /** Compiles a plan over the main graph. */
  compile(spec: PlanSpec, where: string): Plan {
    return compilePlan(this.#graph, spec, this.#env(), where);
  }

  #env() {
    return {
      registry: this.registry,
      resources: this.resources,
      callable: (op: string) => this.#callable(op),
    };
  }

  /**
   * Compiles a library function once into a callable. The body runs its results, its control
   * results and every stateful node, as a TensorFlow function does; stateless nodes nothing
   * depends on are pruned.
   */
  #callable(name: string): KernelRun | undefined {
    const done = this.#compiled.get(name);
    if (done) return done;
    const fdef = this.#functions.get(name);
    if (!fdef) return undefined;
    if (this.#compiling.has(name)) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Cannot compile function "${name}": recursive functions are not supported`,
      );
    }
    this.#compiling.add(name);
    try {
      const body = functionBody(fdef, this);
      const stateful = [...body.graph.values()]
        .filter((n) => n.op !== "_Arg" && this.#opDefs.get(n.op)?.isStateful === true)
        .map((n) => n.name);
      const plan = compilePlan(
        body.graph,
        { feeds: body.args, fetches: body.rets, targets: [...body.controlRets, ...stateful] },
        this.#env(),
        `function "${name}"`,
      );
      const run: KernelRun = (inputs) => plan.run(inputs);
      this.#compiled.set(name, run);
      return run;
    } finally {
      this.#compiling.delete(name);
    }
  }
}
