/**
 * TF2 functional control flow: `If`/`StatelessIf`, `Case`/`StatelessCase` and
 * `While`/`StatelessWhile`. Their branches and loop functions live in the graph's function
 * library; each is compiled once, when the node is compiled (so a missing op inside a branch
 * fails the model load, not a request), and called like `PartitionedCall` calls its function.
 *
 * Semantics follow `tensorflow/core/kernels/functional_ops.cc`: a condition tensor is turned into
 * a bool by TF's `ToBool` (a scalar number is true when non-zero, a scalar string when non-empty,
 * any non-scalar when it has elements), `Case` runs its last branch for an out-of-range index,
 * and the results are checked against the node's output types as `SetOutputs` does. The stateful
 * and stateless variants run the same way here (we never prune or reorder calls).
 *
 * TF1 control flow (`Switch`/`Merge`/`Enter`/`Exit`/`NextIteration`/`LoopCond`, their `Ref`
 * variants and `ControlTrigger`) has kernels here for the value each node computes; which nodes
 * run, in which frame and iteration, and which tensors are dead is the executor's business
 * (`graph/executor.ts`), and any plan holding one of these ops runs there. A kernel marks a dead
 * output by leaving it undefined (the untaken port of a `Switch`), and a `Merge` receives its
 * dead or absent inputs as undefined.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";

// ---------------------------------------------------------------------------------------------
// Loop guard

/**
 * The default most iterations one `While` node, or one instance of a TF1 loop frame
 * (`graph/executor.ts`), may run per call: 10 million. TensorFlow has no
 * limit; we keep one so that a loop whose condition never turns false cannot hold a request (and
 * its thread) forever. Real models loop far fewer times (an RNN over a sequence, a decoder over
 * its tokens); an iteration of a trivial body (two adds and a compare) costs about 1.3 µs here,
 * so the limit is reached after some 13 seconds at the very least.
 */
export const DEFAULT_WHILE_ITERATION_LIMIT = 10_000_000;

let whileIterationLimit = DEFAULT_WHILE_ITERATION_LIMIT;

/** The most iterations a loop may run per call (a `While` node, or a TF1 loop frame). */
export function getWhileIterationLimit(): number {
  return whileIterationLimit;
}

/**
 * Sets the most iterations a `While` or a TF1 loop may run per call (for tests, or a server that
 * wants a tighter bound) and returns the previous limit. Past the limit the call fails RESOURCE_EXHAUSTED.
 */
export function setWhileIterationLimit(limit: number): number {
  if (!(Number.isInteger(limit) && limit >= 0)) {
    throw new RangeError(`While iteration limit must be a non-negative integer, got ${limit}`);
  }
  const was = whileIterationLimit;
  whileIterationLimit = limit;
  return was;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/** TensorFlow's DataTypeString: `float`, `int32`, `half`, … */
function dataTypeString(dtype: DataType): string {
  const name = dtypeName(dtype);
  return name.startsWith("DT_") ? name.slice(3).toLowerCase() : name;
}

/**
 * Converts a condition tensor to a bool exactly as TensorFlow's `ToBool`: a scalar float, double,
 * int8/16/32/64 or uint8 is true when it is not 0 (so NaN is true), a scalar bool is itself, a
 * scalar string is true when non-empty, and a tensor of any other rank is true when it has at
 * least one element (whatever its values).
 *
 * @throws ServingError INVALID_ARGUMENT for a scalar of another type (`half cannot be converted
 *   to a boolean`)
 */
export function toBool(t: Tensor): boolean {
  if (t.rank !== 0) return t.size > 0;
  switch (t.dtype) {
    case DataType.DT_FLOAT:
    case DataType.DT_DOUBLE:
    case DataType.DT_INT32:
    case DataType.DT_UINT8:
    case DataType.DT_INT16:
    case DataType.DT_INT8:
    case DataType.DT_BOOL:
      return (t.data as ArrayLike<number>)[0] !== 0;
    case DataType.DT_INT64:
      return (t.data as BigInt64Array)[0] !== 0n;
    case DataType.DT_STRING:
      return (t.data as Uint8Array[])[0].length > 0;
    default:
      throw invalid(`${dataTypeString(t.dtype)} cannot be converted to a boolean`);
  }
}

/** Compiles the function named by a `func` attr. */
function compileFunc(ctx: KernelContext, attr: string): KernelRun {
  return ctx.compileFunction(ctx.attr.func(attr).name);
}

/** The output types a node declares (`Tout` / `T`), or undefined when it has no such attr. */
function outputTypes(ctx: KernelContext, attr: string): readonly DataType[] | undefined {
  return ctx.attr.has(attr) ? ctx.attr.types(attr) : undefined;
}

/**
 * Checks a function's results against the node's declared output types, as TensorFlow's
 * `SetOutputs` does (a mismatch is a malformed graph: INTERNAL).
 */
function checkOutputs(rets: Tensor[], types: readonly DataType[] | undefined): Tensor[] {
  if (types === undefined) return rets;
  if (rets.length !== types.length) {
    throw new ServingError(
      Code.INTERNAL,
      `Expect to produce ${types.length} tensors, but only get ${rets.length}`,
    );
  }
  for (let i = 0; i < rets.length; i++) {
    if (rets[i].dtype !== types[i]) {
      throw new ServingError(
        Code.INTERNAL,
        `Expect ${i}-th output is of type ${dataTypeString(types[i])} but get ${
          dataTypeString(rets[i].dtype)
        }`,
      );
    }
  }
  return rets;
}

// ---------------------------------------------------------------------------------------------
// If

/** If / StatelessIf: input 0 is the condition, the rest are the branch arguments. */
function ifKernel(op: string): Kernel {
  return {
    op,
    compile(ctx) {
      const thenRun = compileFunc(ctx, "then_branch");
      const elseRun = compileFunc(ctx, "else_branch");
      const types = outputTypes(ctx, "Tout");
      return (inputs) => {
        const run = toBool(inputs[0]) ? thenRun : elseRun;
        return checkOutputs(run(inputs.slice(1)), types);
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Case

/** The function names of a `list(func)` attr (the typed getters have no list-of-func reader). */
function funcList(ctx: KernelContext, attr: string): string[] {
  const v = ctx.attr.values[attr]?.value;
  if (v === undefined) {
    throw invalid(`Cannot read attr "${attr}" of node "${ctx.name}": missing`);
  }
  if (v.case !== "list") {
    throw invalid(
      `Cannot read attr "${attr}" of node "${ctx.name}": expected a list, found ${v.case}`,
    );
  }
  return v.value.func.map((f) => f.name);
}

/** Case / StatelessCase: input 0 is the int32 branch index, the rest are the arguments. */
function caseKernel(op: string): Kernel {
  return {
    op,
    compile(ctx) {
      const names = funcList(ctx, "branches");
      if (names.length === 0) {
        throw invalid(`${op} node "${ctx.name}" has no branches (attr "branches" is empty)`);
      }
      const branches = names.map((n) => ctx.compileFunction(n));
      const types = outputTypes(ctx, "Tout");
      const last = branches.length - 1;
      return (inputs) => {
        const index = inputs[0];
        if (index.rank !== 0) throw invalid("branch_index must be scalar");
        const d = index.data;
        const b = typeof (d as ArrayLike<unknown>)[0] === "bigint"
          ? Number((d as BigInt64Array)[0])
          : (d as ArrayLike<number>)[0];
        // The last branch is the default branch.
        const run = branches[b >= 0 && b <= last ? b : last];
        return checkOutputs(run(inputs.slice(1)), types);
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// While

/** While / StatelessWhile: the inputs are the loop variables; the outputs their final values. */
function whileKernel(op: string): Kernel {
  return {
    op,
    compile(ctx) {
      const cond = compileFunc(ctx, "cond");
      const body = compileFunc(ctx, "body");
      const types = outputTypes(ctx, "T");
      const node = ctx.name;
      return (inputs) => {
        const limit = whileIterationLimit;
        let vars = inputs;
        for (let i = 0;; i++) {
          const c = cond(vars);
          if (c.length !== 1) {
            throw invalid(
              `Expected a single scalar return value from WhileOp cond, got ${c.length} tensors.`,
            );
          }
          if (!toBool(c[0])) return checkOutputs(vars, types);
          if (i >= limit) {
            throw new ServingError(
              Code.RESOURCE_EXHAUSTED,
              `While loop "${node}" did not finish within ${limit} iterations (the server's ` +
                `limit per While call)`,
            );
          }
          const next = body(vars);
          if (next.length !== vars.length) {
            throw invalid(
              `While loop body returned ${next.length} arguments. Expected: ${vars.length}`,
            );
          }
          vars = next;
        }
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// TF1 control flow (the values; routing and deadness are the executor's)

/**
 * Switch / RefSwitch: forwards `data` to output 1 when `pred` is true, to output 0 otherwise;
 * the other output is dead (left undefined). As `SwitchOp` in control_flow_ops.cc.
 */
function switchKernel(op: string): Kernel {
  return {
    op,
    compile() {
      return (inputs) => {
        const pred = inputs[1];
        if (pred.rank !== 0) {
          throw invalid(
            `The second input must be a scalar, but it has shape ${shapeString(pred.shape)}`,
          );
        }
        if (pred.dtype !== DataType.DT_BOOL) {
          throw invalid(`The second input must be bool, got ${dataTypeString(pred.dtype)}`);
        }
        const outs: Tensor[] = new Array(2);
        outs[(pred.data as Uint8Array)[0] ? 1 : 0] = inputs[0];
        return outs;
      };
    },
  };
}

/**
 * Merge / RefMerge: forwards the one live input and its index (`value_index`, int32). The
 * executor runs it on the first live input; two live inputs is TF's INTERNAL error.
 */
function mergeKernel(op: string): Kernel {
  return {
    op,
    compile() {
      return (inputs) => {
        let found = -1;
        for (let i = 0; i < inputs.length; i++) {
          if (inputs[i] === undefined) continue;
          if (found >= 0) {
            throw new ServingError(Code.INTERNAL, "Merge can not have more than one valid input.");
          }
          found = i;
        }
        if (found < 0) throw new ServingError(Code.INTERNAL, "Merge ran with no live input");
        return [inputs[found], Tensor.scalar(DataType.DT_INT32, found)];
      };
    },
  };
}

/** Enter, Exit, NextIteration, LoopCond and their Ref variants pass their input through. */
function forwardKernel(op: string): Kernel {
  return { op, compile: () => (inputs) => [inputs[0]] };
}

// ---------------------------------------------------------------------------------------------
// The family

/**
 * Control-flow kernels: the functional If, StatelessIf, Case, StatelessCase, While,
 * StatelessWhile, and TF1's Switch, Merge, Enter, Exit, NextIteration (with Ref variants),
 * LoopCond and ControlTrigger.
 */
export const controlFlowKernels: Kernel[] = [
  ifKernel("If"),
  ifKernel("StatelessIf"),
  caseKernel("Case"),
  caseKernel("StatelessCase"),
  whileKernel("While"),
  whileKernel("StatelessWhile"),
  switchKernel("Switch"),
  switchKernel("RefSwitch"),
  mergeKernel("Merge"),
  mergeKernel("RefMerge"),
  ...[
    "Enter",
    "RefEnter",
    "Exit",
    "RefExit",
    "NextIteration",
    "RefNextIteration",
    "LoopCond",
  ].map(forwardKernel),
  { op: "ControlTrigger", compile: () => () => [] },
];
