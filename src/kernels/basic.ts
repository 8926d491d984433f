/**
 * Graph basics: Const, Identity and its aliases (StopGradient, PreventGradient, Snapshot,
 * PlaceholderWithDefault), IdentityN, NoOp and Placeholder (which fails unless fed).
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { baseType } from "../tensor/dtype.ts";
import { passThrough } from "./array_common.ts";
import { dataTypeString } from "./dtypes.ts";
import type { Kernel, KernelRun } from "./kernel.ts";

// ---------------------------------------------------------------------------------------------
// Graph basics.

const identity: KernelRun = (inputs) => [passThrough(inputs[0])];

function identityKernel(op: string): Kernel {
  return { op, compile: () => identity };
}

/** The graph basics: Const, the identities, NoOp and Placeholder. */
export const basicKernels: Kernel[] = [
  {
    op: "Const",
    compile(ctx) {
      // Converted once: every run returns the same immutable tensor.
      const value = ctx.attr.tensor("value");
      if (ctx.attr.has("dtype")) {
        const dtype = baseType(ctx.attr.type("dtype"));
        if (dtype !== value.dtype) {
          throw invalidArgument(
            `Type mismatch between value (${dataTypeString(value.dtype)}) and dtype (${
              dataTypeString(dtype)
            })`,
          );
        }
      }
      const out = [value];
      return () => out;
    },
  },
  identityKernel("Identity"),
  identityKernel("StopGradient"),
  identityKernel("PreventGradient"),
  identityKernel("Snapshot"),
  identityKernel("PlaceholderWithDefault"),
  { op: "IdentityN", compile: () => (inputs) => inputs.map(passThrough) },
  { op: "NoOp", compile: () => () => [] },
  {
    op: "Placeholder",
    compile(ctx) {
      const dtype = ctx.attr.type("dtype");
      const shape = ctx.attr.has("shape") ? ctx.attr.shape("shape") : undefined;
      // As TF's PlaceholderOp: the shape is named only when its rank is known and non-zero.
      let message = `You must feed a value for placeholder tensor '${ctx.name}' with dtype ${
        dataTypeString(dtype)
      }`;
      if (shape !== undefined && shape.length > 0) {
        message += ` and shape [${shape.map((d) => (d < 0 ? "?" : String(d))).join(",")}]`;
      }
      return () => {
        throw invalidArgument(message);
      };
    },
  },
];
