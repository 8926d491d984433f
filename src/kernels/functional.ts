/**
 * Function calls: `PartitionedCall` and `StatefulPartitionedCall` run a function of the graph's
 * library (TF2 SavedModels put every signature behind one). The function is compiled into its
 * own plan when the calling node is compiled, so a call costs one plan run.
 *
 * @module
 */
import type { Kernel, KernelContext } from "./kernel.ts";

function call(ctx: KernelContext) {
  return ctx.compileFunction(ctx.attr.func("f").name);
}

/** Function-call kernels. */
export const functionalKernels: Kernel[] = [
  { op: "PartitionedCall", compile: call },
  { op: "StatefulPartitionedCall", compile: call },
];
