/**
 * Variables: TF1 reference variables (`VariableV2`, `Assign`, …) and TF2 resource variables
 * (`VarHandleOp`, `ReadVariableOp`, `AssignVariableOp`, …). State lives in the model's
 * resources, so it persists across calls of one loaded version, as in a TensorFlow session.
 *
 * A reference output is a Tensor whose `ref` is the Variable; the plan reads the variable's
 * current value wherever such an output feeds an input that takes a value.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { baseType, DataType, dtypeName } from "../tensor/dtype.ts";
import { shapeString, Tensor, Variable } from "../tensor/tensor.ts";
import type { Kernel, KernelContext } from "./kernel.ts";

function variableKey(ctx: KernelContext): string {
  const container = ctx.attr.string("container", "");
  const shared = ctx.attr.string("shared_name", "");
  return `${container || "localhost"}/${shared || ctx.name}`;
}

function variableOf(t: Tensor, op: string): Variable {
  const v = t.dtype === DataType.DT_RESOURCE ? (t.data as unknown[])[0] : t.ref;
  if (!(v instanceof Variable)) {
    throw new ServingError(Code.INVALID_ARGUMENT, `${op} expects a variable as its first input`);
  }
  return v;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkDtype(v: Variable, value: Tensor): void {
  if (baseType(v.dtype) !== value.dtype) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Trying to assign variable with wrong dtype. Expected ${dtypeName(baseType(v.dtype))} got ${
        dtypeName(value.dtype)
      }`,
    );
  }
}

function refTo(v: Variable, value: Tensor): Tensor {
  return new Tensor(value.dtype, value.shape, value.data, v);
}

/** Elementwise a ± b for same-shaped numeric tensors (AssignAdd / AssignSub). */
function addInto(a: Tensor, b: Tensor, sign: 1 | -1, op: string): Tensor {
  if (!sameShape(a.shape, b.shape)) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `${op} requires shapes of both tensors to match. lhs shape= ${
        shapeString(a.shape)
      } rhs shape= ${shapeString(b.shape)}`,
    );
  }
  const x = a.numbers;
  const y = b.numbers;
  if (x instanceof BigInt64Array || x instanceof BigUint64Array) {
    const out = x.slice();
    const yy = y as BigInt64Array;
    for (let i = 0; i < out.length; i++) out[i] = sign === 1 ? out[i] + yy[i] : out[i] - yy[i];
    return new Tensor(a.dtype, a.shape, out);
  }
  const out = x.slice() as Float32Array;
  const yy = y as Float32Array;
  for (let i = 0; i < out.length; i++) out[i] = out[i] + sign * yy[i];
  return new Tensor(a.dtype, a.shape, out);
}

function refVariable(ctx: KernelContext) {
  const dtype = baseType(ctx.attr.type("dtype"));
  const key = variableKey(ctx);
  const v = ctx.resources.lookupOrCreate(key, () => new Variable(key, dtype, ctx.name));
  // The output is the reference itself; every consumer that takes a value reads the variable
  // (the plan dereferences), so one handle serves every run.
  const out = [new Tensor(dtype, [], [] as Uint8Array[], v)];
  return () => out;
}

function assignRef(ctx: KernelContext, op: string, sign: 0 | 1 | -1) {
  const validate = ctx.attr.bool("validate_shape", true);
  return ([ref, value]: Tensor[]) => {
    const v = variableOf(ref, op);
    checkDtype(v, value);
    if (sign !== 0) {
      v.value = addInto(v.read(), value, sign, op);
    } else {
      if (validate && v.value && !sameShape(v.value.shape, value.shape)) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Assign requires shapes of both tensors to match. lhs shape= ${
            shapeString(v.value.shape)
          } rhs shape= ${shapeString(value.shape)}`,
        );
      }
      v.value = value;
    }
    return [refTo(v, v.value)];
  };
}

function assignResource(op: string, sign: 0 | 1 | -1) {
  return ([handle, value]: Tensor[]) => {
    const v = variableOf(handle, op);
    checkDtype(v, value);
    v.value = sign === 0 ? value : addInto(v.read(), value, sign, op);
    return [];
  };
}

/** Variable kernels. */
export const stateKernels: Kernel[] = [
  { op: "VariableV2", compile: refVariable },
  { op: "Variable", compile: refVariable },
  { op: "Assign", compile: (ctx) => assignRef(ctx, "Assign", 0) },
  { op: "AssignAdd", compile: (ctx) => assignRef(ctx, "AssignAdd", 1) },
  { op: "AssignSub", compile: (ctx) => assignRef(ctx, "AssignSub", -1) },
  {
    op: "IsVariableInitialized",
    compile: () => ([ref]) => [
      Tensor.scalar(
        DataType.DT_BOOL,
        variableOf(ref, "IsVariableInitialized").value !== undefined,
      ),
    ],
  },
  {
    op: "VarHandleOp",
    compile(ctx) {
      const dtype = baseType(ctx.attr.type("dtype"));
      const key = variableKey(ctx);
      const v = ctx.resources.lookupOrCreate(key, () => new Variable(key, dtype, ctx.name));
      const out = new Tensor(DataType.DT_RESOURCE, [], [v]);
      return () => [out];
    },
  },
  {
    op: "ReadVariableOp",
    compile(ctx) {
      const dtype = baseType(ctx.attr.type("dtype"));
      return ([h]) => {
        const v = variableOf(h, "ReadVariableOp");
        if (v.value === undefined) {
          throw new ServingError(
            Code.FAILED_PRECONDITION,
            `Error while reading resource variable ${v.name}: it is uninitialized`,
          );
        }
        if (v.value.dtype !== dtype) {
          throw new ServingError(
            Code.INVALID_ARGUMENT,
            `Trying to read variable ${v.name} with wrong dtype. Expected ${
              dtypeName(v.value.dtype)
            } got ${dtypeName(dtype)}`,
          );
        }
        return [v.value];
      };
    },
  },
  { op: "AssignVariableOp", compile: () => assignResource("AssignVariableOp", 0) },
  { op: "AssignAddVariableOp", compile: () => assignResource("AssignAddVariableOp", 1) },
  { op: "AssignSubVariableOp", compile: () => assignResource("AssignSubVariableOp", -1) },
  {
    op: "VarIsInitializedOp",
    compile: () => ([h]) => [
      Tensor.scalar(DataType.DT_BOOL, variableOf(h, "VarIsInitializedOp").value !== undefined),
    ],
  },
  // Resources are freed with the loaded version; an explicit destroy has nothing to do.
  { op: "DestroyResourceOp", compile: () => () => [] },
];
