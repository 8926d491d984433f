/**
 * A loaded SavedModel version: the session after restore and init, and its signatures compiled
 * into plans. `loadModel()` is the runtime's entry point; it follows TensorFlow's C++ loader:
 * read the MetaGraphDef, restore variables through the graph's own restore op, run the init op
 * with the asset paths fed, then compile every signature so a missing kernel fails the load.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { GraphDefSchema } from "../proto/gen/tensorflow/core/framework/graph_pb.ts";
import type {
  SignatureDef,
  TensorInfo,
} from "../proto/gen/tensorflow/core/protobuf/meta_graph_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { KernelRegistry } from "../kernels/registry.ts";
import { kernelsFor } from "../kernels/lazy.ts";
import { parseTensorName, type TensorRef } from "../graph/graph.ts";
import { MissingOpsError, type Plan } from "../graph/plan.ts";
import { validateSavedModel } from "../graph/validate.ts";
import { readSavedModel, type SavedModelBundle } from "../saved_model/reader.ts";
import { baseType, DataType, dtypeName } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import { partialShapeFromProto } from "../tensor/tensor_proto.ts";
import { Session } from "./session.ts";

/** One input or output of a signature. */
export interface SignatureTensor {
  /** The alias clients use (`x`). */
  readonly alias: string;
  /** The graph tensor (`x:0`). */
  readonly name: string;
  /** The element type (reference types as their base type). */
  readonly dtype: DataType;
  /** Dims with -1 for unknown; undefined for unknown rank. */
  readonly shape: readonly number[] | undefined;
}

/** Formats a partial shape: `[-1,1]`, or `<unknown>`. */
export function partialShapeString(shape: readonly number[] | undefined): string {
  return shape === undefined ? "<unknown>" : shapeString(shape);
}

function describe(alias: string, info: TensorInfo, sig: string): SignatureTensor {
  if (info.encoding.case !== "name") {
    throw new ServingError(
      Code.UNIMPLEMENTED,
      `Cannot use tensor "${alias}" of signature "${sig}": ${
        info.encoding.case ?? "no"
      } encoding is not supported (only dense tensors)`,
    );
  }
  return {
    alias,
    name: info.encoding.value,
    dtype: baseType(info.dtype),
    shape: partialShapeFromProto(info.tensorShape),
  };
}

/** True if a tensor's shape fits a partial shape. */
export function shapeFits(shape: readonly number[], want: readonly number[] | undefined): boolean {
  if (want === undefined) return true;
  return shape.length === want.length && want.every((d, i) => d < 0 || d === shape[i]);
}

/** A compiled signature of a loaded model. */
export class Signature {
  /** Inputs, sorted by alias (the feed order). */
  readonly inputs: readonly SignatureTensor[];
  /** Outputs, sorted by alias. */
  readonly outputs: readonly SignatureTensor[];
  readonly #plans = new Map<string, Plan>();
  readonly #allAliases: readonly string[];
  #allPlan: Plan | undefined;
  /** The last frozen alias list planned, and its plan. */
  #lastAliases: readonly string[] | undefined;
  #lastPlan: Plan | undefined;
  readonly #inputIndex: ReadonlyMap<string, number>;
  readonly #outputByAlias: ReadonlyMap<string, SignatureTensor>;

  /** @internal Built by loadModel(). */
  constructor(
    /** The signature key. */
    readonly key: string,
    /** The SignatureDef as stored. */
    readonly def: SignatureDef,
    private readonly session: Session,
  ) {
    const sorted = (m: Record<string, TensorInfo>) =>
      Object.keys(m).sort().map((a) => describe(a, m[a], key));
    this.inputs = sorted(def.inputs);
    this.outputs = sorted(def.outputs);
    this.#inputIndex = new Map(this.inputs.map((t, i) => [t.alias, i]));
    this.#outputByAlias = new Map(this.outputs.map((t) => [t.alias, t]));
    this.#allAliases = this.outputs.map((t) => t.alias);
  }

  /** The method name (`tensorflow/serving/predict`, …). */
  get methodName(): string {
    return this.def.methodName;
  }

  /** The plan fetching `aliases` (compiled once per distinct set). */
  plan(aliases: readonly string[]): Plan {
    // The hot paths pass the same (frozen, per-version) alias list on every call: no key then.
    if (aliases === this.#lastAliases) return this.#lastPlan!;
    const key = aliases.join("\0");
    let plan = this.#plans.get(key);
    if (!plan) {
      const ref = (t: SignatureTensor): TensorRef => parseTensorName(t.name);
      plan = this.session.compile(
        {
          feeds: this.inputs.map(ref),
          fetches: aliases.map((a) => ref(this.#outputByAlias.get(a)!)),
        },
        `signature "${this.key}"`,
      );
      this.#plans.set(key, plan);
    }
    if (Object.isFrozen(aliases)) {
      this.#lastAliases = aliases;
      this.#lastPlan = plan;
    }
    return plan;
  }

  /**
   * Runs the signature.
   *
   * @param inputs a tensor per input alias; every input must be given
   * @param outputAliases the outputs wanted (default: all, sorted by alias)
   * @returns the outputs by alias
   * @throws ServingError INVALID_ARGUMENT for an unknown or missing input, a dtype or shape that
   *   does not fit the signature, or an unknown output
   */
  run(
    inputs: Readonly<Record<string, Tensor>>,
    outputAliases?: readonly string[],
  ): Record<string, Tensor> {
    const feeds: Tensor[] = new Array(this.inputs.length);
    let given = 0;
    for (const alias in inputs) {
      const i = this.#inputIndex.get(alias);
      if (i === undefined) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Input "${alias}" is not in signature "${this.key}" (inputs: ${
            this.inputs.map((t) => t.alias).join(", ")
          })`,
        );
      }
      const spec = this.inputs[i];
      const t = inputs[alias];
      if (t.dtype !== spec.dtype) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Input "${alias}" of signature "${this.key}" must be ${dtypeName(spec.dtype)}, got ${
            dtypeName(t.dtype)
          }`,
        );
      }
      if (!shapeFits(t.shape, spec.shape)) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Input "${alias}" of signature "${this.key}" has shape ${
            shapeString(t.shape)
          }, which does not fit ${partialShapeString(spec.shape)}`,
        );
      }
      feeds[i] = t;
      given++;
    }
    if (given !== this.inputs.length) {
      const missing = this.inputs.filter((t) => !(t.alias in inputs)).map((t) => t.alias);
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Missing input(s) ${missing.map((a) => `"${a}"`).join(", ")} of signature "${this.key}"`,
      );
    }
    if (outputAliases === undefined) {
      // The common case: every output, in alias order, through the plan compiled at load.
      const outs = (this.#allPlan ??= this.plan(this.#allAliases)).run(feeds);
      const result: Record<string, Tensor> = {};
      for (let i = 0; i < outs.length; i++) result[this.#allAliases[i]] = outs[i];
      return result;
    }
    const aliases = outputAliases;
    for (const a of aliases) {
      if (!this.#outputByAlias.has(a)) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Output "${a}" is not in signature "${this.key}" (outputs: ${
            this.outputs.map((t) => t.alias).join(", ")
          })`,
        );
      }
    }
    const outs = this.plan(aliases).run(feeds);
    const result: Record<string, Tensor> = {};
    aliases.forEach((a, i) => (result[a] = outs[i]));
    return result;
  }
}

/** Options of loadModel(). */
export interface LoadOptions {
  /** The MetaGraphDef tag set (default `["serve"]`). */
  readonly tags?: readonly string[];
  /**
   * The kernels (default: those of the ops the graph and its functions use, imported on demand;
   * see kernels/lazy.ts).
   */
  readonly registry?: KernelRegistry;
  /**
   * Called with the bundle as read, before anything is compiled: the worker pool moves large
   * constants into shared memory here, so every isolate's Const kernels view the same bytes.
   */
  readonly prepare?: (bundle: SavedModelBundle) => void;
}

/**
 * What one run computes, in a form that can be sent to another isolate: a signature's outputs
 * by alias (Predict, Classify, Regress) or graph tensors by name (MultiInference).
 */
export type RunTarget =
  | { readonly signature: string; readonly outputs: readonly string[] }
  | { readonly feeds: readonly string[]; readonly fetches: readonly string[] };

/** A stable key of a RunTarget (for caches and statistics). */
export function runTargetKey(t: RunTarget): string {
  return "signature" in t
    ? `s\u0001${t.signature}\u0001${t.outputs.join("\u0000")}`
    : `t\u0001${t.feeds.join("\u0000")}\u0001${t.fetches.join("\u0000")}`;
}

/** A loaded SavedModel version. */
export class Model {
  /** @internal Built by loadModel(). */
  constructor(
    /** What was read from disk. */
    readonly bundle: SavedModelBundle,
    /** The session holding the variables. */
    readonly session: Session,
    /** Signatures by key. */
    readonly signatures: ReadonlyMap<string, Signature>,
  ) {}

  readonly #tensorPlans = new Map<string, Plan>();

  /**
   * The plan computing a RunTarget, compiled once per distinct target.
   *
   * @throws ServingError FAILED_PRECONDITION for an unknown signature; INVALID_ARGUMENT for an
   *   unknown output alias or tensor
   */
  plan(target: RunTarget): Plan {
    if ("signature" in target) {
      const sig = this.signatures.get(target.signature);
      if (!sig) {
        throw new ServingError(
          Code.FAILED_PRECONDITION,
          `Serving signature key "${target.signature}" not found.`,
        );
      }
      return sig.plan(target.outputs);
    }
    const key = runTargetKey(target);
    let plan = this.#tensorPlans.get(key);
    if (!plan) {
      plan = this.session.compile(
        { feeds: target.feeds.map(parseTensorName), fetches: target.fetches.map(parseTensorName) },
        "multi-inference",
      );
      this.#tensorPlans.set(key, plan);
    }
    return plan;
  }

  /**
   * The signature under `key` (`""` means `serving_default`).
   *
   * @throws ServingError FAILED_PRECONDITION as TF Serving words it for an unknown key
   */
  signature(key: string): Signature {
    const k = key === "" ? "serving_default" : key;
    const s = this.signatures.get(k);
    if (!s) {
      throw new ServingError(Code.FAILED_PRECONDITION, `Serving signature key "${k}" not found.`);
    }
    return s;
  }
}

/** Every op of a bundle's graph and of its function library. */
function graphOps(bundle: SavedModelBundle): Set<string> {
  const graph = bundle.metaGraph.graphDef;
  const ops = new Set<string>();
  for (const n of graph?.node ?? []) ops.add(n.op);
  for (const f of graph?.library?.function ?? []) for (const n of f.nodeDef) ops.add(n.op);
  return ops;
}

/**
 * Loads a SavedModel version directory.
 *
 * @param exportDir the version directory (holding `saved_model.pb`)
 * @throws ServingError naming the file, node or op that failed
 */
export async function loadModel(exportDir: string, options: LoadOptions = {}): Promise<Model> {
  const bundle = await readSavedModel(exportDir, options.tags ?? ["serve"]);
  const registry = options.registry ?? await kernelsFor(graphOps(bundle));
  validateSavedModel(bundle, registry); // Nodes against their OpDefs and kernels, defaults filled.
  options.prepare?.(bundle);
  const model = compileModel(bundle, registry);
  const session = model.session;

  const assetFeeds = bundle.assets.map((a) => ({
    ref: parseTensorName(a.tensor),
    value: Tensor.strings([a.path], []),
  }));
  if (bundle.restore) {
    const r = bundle.restore;
    const plan = session.compile(
      { feeds: [parseTensorName(r.filenameTensor)], fetches: [], targets: [r.op] },
      `restore op "${r.op}" of ${exportDir}`,
    );
    plan.run([Tensor.strings([r.prefix], [])]);
  }
  if (bundle.initOp) {
    const plan = session.compile(
      { feeds: assetFeeds.map((a) => a.ref), fetches: [], targets: [bundle.initOp] },
      `init op "${bundle.initOp}" of ${exportDir}`,
    );
    plan.run(assetFeeds.map((a) => a.value));
  }
  return model;
}

/**
 * Builds a model's session and compiles every signature, without restoring variables or running
 * the init op: what loadModel() does first, and what a worker isolate does with a model whose
 * state it is handed.
 *
 * @throws MissingOpsError listing every op without a kernel
 */
export function compileModel(bundle: SavedModelBundle, registry: KernelRegistry): Model {
  const mg = bundle.metaGraph;
  const session = new Session(
    mg.graphDef ?? create(GraphDefSchema),
    mg.metaInfoDef?.strippedOpList?.op ?? [],
    registry,
  );

  // Compile the signatures first: a model with an op we lack fails before touching variables,
  // and the error lists every missing op at once.
  const signatures = new Map<string, Signature>();
  const missing = new Map<string, string[]>();
  for (const [key, def] of bundle.signatures) {
    const sig = new Signature(key, def, session);
    try {
      sig.plan(sig.outputs.map((t) => t.alias));
    } catch (e) {
      if (!(e instanceof MissingOpsError)) throw e;
      for (const [op, nodes] of e.ops) missing.set(op, [...(missing.get(op) ?? []), ...nodes]);
    }
    signatures.set(key, sig);
  }
  if (missing.size > 0) throw new MissingOpsError(missing, `SavedModel ${bundle.exportDir}`);
  return new Model(bundle, session, signatures);
}
