/**
 * What the neural-network families share: their float storage types, the errors they raise
 * with the node named, input checks, and a scratch buffer a compiled node reuses across runs.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import { uninitialized, zeroed } from "../tensor/arena.ts";
import type { KernelContext } from "./kernel.ts";

/** Storage of the float types these kernels compute on. */
export type FloatArray = Float32Array | Float64Array;

export const FLOAT_TYPES: readonly DataType[] = [DataType.DT_FLOAT, DataType.DT_DOUBLE];

export function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

export function unimplemented(message: string): ServingError {
  return new ServingError(Code.UNIMPLEMENTED, message);
}

export function dtypeError(
  ctx: KernelContext,
  dtype: DataType,
  allowed: readonly DataType[],
): ServingError {
  return unimplemented(
    `${ctx.op} node "${ctx.name}" has no kernel for ${dtypeName(dtype)} ` +
      `(supported: ${allowed.map(dtypeName).join(", ")})`,
  );
}

/** Fails at load time when the node's type attr names a type we have no loop for. */
export function checkTypeAttr(
  ctx: KernelContext,
  allowed: readonly DataType[] = FLOAT_TYPES,
  name = "T",
): void {
  if (!ctx.attr.has(name)) return;
  const t = ctx.attr.type(name);
  if (!allowed.includes(t)) throw dtypeError(ctx, t, allowed);
}

/** The float storage of `t`, or UNIMPLEMENTED naming the node and the type. */
export function floatData(ctx: KernelContext, t: Tensor): FloatArray {
  if (t.dtype === DataType.DT_FLOAT || t.dtype === DataType.DT_DOUBLE) {
    return t.data as FloatArray;
  }
  throw dtypeError(ctx, t.dtype, FLOAT_TYPES);
}

/** The storage of a further input that must have the same float type as the first one. */
export function sameFloat(ctx: KernelContext, t: Tensor, like: Tensor, what: string): FloatArray {
  if (t.dtype !== like.dtype) {
    throw invalid(
      `${ctx.op} node "${ctx.name}": ${what} is ${dtypeName(t.dtype)} but the input is ` +
        dtypeName(like.dtype),
    );
  }
  return t.data as FloatArray;
}

/** Storage for `n` values of `like`'s float type whose contents start unspecified. */
export function uninitializedLike(like: FloatArray, n: number): FloatArray {
  return like instanceof Float32Array
    ? uninitialized(Float32Array, n)
    : uninitialized(Float64Array, n);
}

/** Zeroed storage for `n` values of `like`'s float type. */
export function allocLike(like: FloatArray, n: number): FloatArray {
  return like instanceof Float32Array ? zeroed(Float32Array, n) : zeroed(Float64Array, n);
}

export function checkArity(ctx: KernelContext, inputs: Tensor[], n: number): void {
  if (inputs.length < n) {
    throw invalid(`${ctx.op} node "${ctx.name}" expects ${n} inputs, got ${inputs.length}`);
  }
}

/** A growable float64 scratch buffer owned by one compiled node. */
export class Scratch {
  #buf = new Float64Array(0);
  /** A buffer of at least `n` elements (contents unspecified). */
  get(n: number): Float64Array {
    if (this.#buf.length < n) this.#buf = new Float64Array(Math.max(n, this.#buf.length * 2));
    return this.#buf;
  }
}
