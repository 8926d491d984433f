/**
 * Test helpers for kernels: build attrs and run one op on tensors, without a graph.
 *
 * @module
 */
import type { AttrValue } from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { attrValue } from "../../src/graph/builder.ts";
import { Attrs } from "../../src/kernels/attrs.ts";
import type { Kernel, KernelRun } from "../../src/kernels/kernel.ts";
import { Resources } from "../../src/runtime/resources.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { ServingError } from "../../src/errors.ts";

/** AttrValue builders (the same ones the graph builder uses). */
export const attr = attrValue;

/** Compiles one node of `op` from `family` with `attrs`. */
export function compileOp(
  family: readonly Kernel[],
  op: string,
  attrs: Record<string, AttrValue> = {},
  numInputs = 0,
  resources = new Resources(),
): KernelRun {
  const kernel = family.find((k) => k.op === op);
  if (!kernel) throw new Error(`no kernel for ${op} in this family`);
  return kernel.compile({
    name: `test_${op}`,
    op,
    attr: new Attrs(`test_${op}`, attrs),
    numInputs,
    inputNames: Array.from({ length: numInputs }, (_, i) => `input_${i}`),
    // Inputs of a kernel test are constants (weights take the WebAssembly path where it has one).
    inputOps: Array.from({ length: numInputs }, () => "Const"),
    resources,
    compileFunction: () => {
      throw new Error("no functions in kernel tests");
    },
  });
}

/** Compiles and runs one op on `inputs`. */
export function runOp(
  family: readonly Kernel[],
  op: string,
  inputs: Tensor[],
  attrs: Record<string, AttrValue> = {},
  resources = new Resources(),
): Tensor[] {
  return compileOp(family, op, attrs, inputs.length, resources)(inputs);
}

/** Asserts two number lists agree within `tol` (absolute + relative). */
export function assertClose(
  actual: ArrayLike<number | bigint>,
  expected: ArrayLike<number | bigint>,
  tol = 1e-5,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`length ${actual.length} != ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]);
    const e = Number(expected[i]);
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    if (!(Math.abs(a - e) <= tol + tol * Math.abs(e))) {
      throw new Error(`at ${i}: ${a} != ${e} (tol ${tol}); actual ${Array.from(actual)}`);
    }
  }
}

/** Runs `fn` and returns the ServingError it throws; fails if it returns or throws another error. */
export function failure(fn: () => unknown): ServingError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ServingError) return e;
    throw new Error(`expected a ServingError, got ${e}`);
  }
  throw new Error("expected a failure");
}
