/**
 * The output-size guard of the kernels added for real-world graphs (layout, NMS, random,
 * TensorArray/TensorList): every size a kernel derives from a request's values (paddings, a
 * `shape` input, a list length) is checked here *before* anything is allocated.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { type Shape, shapeString } from "../tensor/tensor.ts";

/**
 * The most elements one tensor these kernels build may hold: 2^28 (1 GiB of float32), far more
 * than a serving request needs and small enough that a hostile size fails cleanly instead of
 * exhausting the process's memory.
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 28;

/**
 * The number of elements of `shape`, failing with INVALID_ARGUMENT if a dimension is negative
 * or not an integer, or RESOURCE_EXHAUSTED if the product exceeds {@link MAX_TENSOR_ELEMENTS}.
 */
export function checkedElements(shape: Shape, what: string): number {
  let n = 1;
  let zero = false;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `${what}: dimension ${d} of shape ${shapeString(shape)} must be a non-negative integer`,
      );
    }
    if (d === 0) zero = true;
    n *= d;
  }
  // A zero dimension makes any product of the others harmless (and Infinity · 0 is NaN).
  if (zero) return 0;
  if (n > MAX_TENSOR_ELEMENTS) {
    throw new ServingError(
      Code.RESOURCE_EXHAUSTED,
      `${what}: shape ${
        shapeString(shape)
      } has more than ${MAX_TENSOR_ELEMENTS} elements (the limit of one tensor)`,
    );
  }
  return n;
}

/**
 * The most elements a TensorArray or TensorList may hold: 2^24. Each element costs a slot even
 * before it is written, so a reserve or a write at a huge index from a request is refused
 * before anything is allocated.
 */
export const MAX_LIST_LENGTH = 2 ** 24;

/** Fails with RESOURCE_EXHAUSTED if a TensorArray/TensorList would exceed {@link MAX_LIST_LENGTH}. */
export function checkedLength(n: number, what: string): number {
  if (n > MAX_LIST_LENGTH) {
    throw new ServingError(
      Code.RESOURCE_EXHAUSTED,
      `${what}: ${n} elements is more than ${MAX_LIST_LENGTH} (the limit of one list)`,
    );
  }
  return n;
}
