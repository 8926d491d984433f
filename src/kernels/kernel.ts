/**
 * What a kernel is: the code for one TensorFlow op, compiled once per node at load time into a
 * function from input tensors to output tensors.
 *
 * @module
 */
import type { Attrs } from "./attrs.ts";
import type { Honours } from "./honours.ts";
import type { Resource, Tensor } from "../tensor/tensor.ts";

/** Runs one node: inputs in, outputs out. Synchronous; never writes into its inputs. */
export type KernelRun = (inputs: Tensor[]) => Tensor[];

/** Stateful objects of one loaded model (variables, lookup tables), keyed `container/name`. */
export interface ResourceManager {
  /** Returns the resource under `key`, creating it with `make` if there is none. */
  lookupOrCreate<R extends Resource>(key: string, make: () => R): R;
  /** Returns the resource under `key`, or undefined. */
  get(key: string): Resource | undefined;
}

/** What a kernel sees of its node and of the model when it is compiled. */
export interface KernelContext {
  /** The node name. */
  readonly name: string;
  /** The op name. */
  readonly op: string;
  /** The node's attrs, with typed getters. */
  readonly attr: Attrs;
  /** How many data inputs the node has. */
  readonly numInputs: number;
  /** The data inputs as the NodeDef names them (`x`, `split:1`), for messages. */
  readonly inputNames: readonly string[];
  /**
   * The op producing each data input, seen through Identity-like ops (`Const`, `ReadVariableOp`,
   * …; `""` for a fed tensor or a function argument). Kernels use it to tell weights, which
   * keep their storage from run to run, from activations, which are new on every run.
   */
  readonly inputOps: readonly string[];
  /** The model's resources. */
  readonly resources: ResourceManager;
  /** Compiles a function of the graph's library into a callable (for call ops). */
  compileFunction(name: string): KernelRun;
}

/** The kernel of one op. */
export interface Kernel {
  /** The TensorFlow op name, such as `MatMul`. */
  readonly op: string;
  /** Compiles one node; may throw a ServingError for unsupported attrs. */
  compile(ctx: KernelContext): KernelRun;
  /**
   * The attrs this kernel honours (see honours.ts); checked at load before `compile`. When
   * absent, `KERNEL_HONOURS[op]` applies, if any.
   */
  readonly honours?: Honours;
}
