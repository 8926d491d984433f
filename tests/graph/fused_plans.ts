/**
 * Helpers for the tests of plan-time rewrites: the default kernels with some ops watched (which
 * original kernels a fused node ran, and on what), and the text of the error a plan throws.
 *
 * @module
 */
import type { Kernel } from "../../src/kernels/kernel.ts";
import { defaultRegistry } from "../../src/kernels/mod.ts";
import { KernelRegistry } from "../../src/kernels/registry.ts";
import type { Plan } from "../../src/graph/plan.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";

/** The default kernels; `seen(op, inputs)` is called before each run of the ops in `ops`. */
export function spyRegistry(
  ops: readonly string[],
  seen: (op: string, inputs: readonly Tensor[]) => void,
): KernelRegistry {
  const base = defaultRegistry();
  return new KernelRegistry(
    base.ops().map((op): Kernel => {
      const k = base.get(op)!;
      if (!ops.includes(op)) return k;
      return {
        ...k,
        compile: (ctx) => {
          const run = k.compile(ctx);
          return (inputs) => {
            seen(op, inputs);
            return run(inputs);
          };
        },
      };
    }),
  );
}

/**
 * The message `plan.run(feeds)` throws, without the failing node's name (a fused node carries
 * another node's name than the unfused plan's failing one); "no error" when it runs.
 */
export function errorText(plan: Plan, feeds: readonly Tensor[]): string {
  try {
    plan.run(feeds);
  } catch (e) {
    return (e as Error).message.replace(/ \(node [^)]*\)|\[\[.*\]\]/g, "");
  }
  return "no error";
}
