/**
 * The feed type check TensorFlow's session applies to every fed tensor, with its wording. Apart
 * from input.ts (which re-exports it) so Predict does not import the tf.Example input reader.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { type DataType, dtypeName } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** TensorFlow's `DataTypeString`: `float`, `int32`, `string`, … */
export function tfTypeString(dtype: DataType): string {
  const name = dtypeName(dtype);
  if (!name.startsWith("DT_")) return name;
  // DT_FLOAT → float, DT_FLOAT_REF → float_ref, as TensorFlow prints them.
  return name.slice(3).toLowerCase();
}

/**
 * Checks fed tensors against the types the graph expects, with the message TensorFlow's session
 * gives (`FunctionCallFrame::SetArgs`), which clients of TF Serving see for a wrong dtype.
 *
 * @param feeds the tensors, in feed order
 * @param want the expected type of each feed
 * @throws ServingError INVALID_ARGUMENT `Expects arg[0] to be float but string is provided`
 */
export function checkFeedTypes(feeds: readonly Tensor[], want: readonly DataType[]): void {
  for (let i = 0; i < feeds.length; i++) {
    if (feeds[i].dtype !== want[i]) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Expects arg[${i}] to be ${tfTypeString(want[i])} but ${
          tfTypeString(feeds[i].dtype)
        } is provided`,
      );
    }
  }
}
