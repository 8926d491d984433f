/**
 * Checkpoint I/O kernels: `RestoreV2`, which a SavedModel's restore op runs once at load time to
 * fill the variables from `variables/variables.*` (`tensorflow/core/kernels/save_restore_v2_ops.cc`,
 * `save_restore_tensor.cc` RestoreTensorsV2).
 *
 * Kernels are synchronous, so the bundle is read with synchronous file calls; that is fine for
 * an op that runs once per model load. The bundle is opened per call and closed before
 * returning, so nothing stays open or cached between loads.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { shapeString, type Tensor } from "../tensor/tensor.ts";
import { compareBytes } from "../saved_model/table.ts";
import { TensorBundle } from "../saved_model/tensor_bundle.ts";
import { dataTypeString } from "./dtypes.ts";
import type { Kernel } from "./kernel.ts";

const utf8 = new TextDecoder();

/** `RestoreV2(prefix, tensor_names, shape_and_slices) -> tensors`, attr `dtypes: list(type)`. */
const restoreV2: Kernel = {
  op: "RestoreV2",
  compile(ctx) {
    const dtypes = ctx.attr.types("dtypes");
    return (inputs) => {
      const [prefix, tensorNames, shapeAndSlices] = inputs;
      if (!prefix || !tensorNames || !shapeAndSlices) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `RestoreV2 needs 3 inputs (prefix, tensor_names, shape_and_slices), got ${inputs.length}`,
        );
      }
      // The checks and their order follow save_restore_v2_ops.cc (RestoreV2 and ValidateInputs).
      if (tensorNames.size !== dtypes.length) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Got ${tensorNames.size} tensor names, but ${dtypes.length} expected dtypes.`,
        );
      }
      if (prefix.size !== 1) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Input prefix should have a single element, got ${prefix.size} instead.`,
        );
      }
      if (tensorNames.rank !== 1 || shapeAndSlices.rank !== 1) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Input tensor_names and shape_and_slices should be an 1-D tensors, got ` +
            `${shapeString(tensorNames.shape)} and ${shapeString(shapeAndSlices.shape)} instead.`,
        );
      }
      if (tensorNames.size !== shapeAndSlices.size) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `tensor_names and shape_and_slices have different number of elements: ` +
            `${tensorNames.size} vs. ${shapeAndSlices.size}`,
        );
      }
      const prefixString = utf8.decode(prefix.strings[0]);
      const rawNames = tensorNames.strings;
      const names = rawNames.map((s) => utf8.decode(s));
      const slices = shapeAndSlices.strings;

      const bundle = TensorBundle.openSync(prefixString);
      try {
        // Like TensorFlow, look every name up and compare dtypes before reading any data, and
        // report all mismatches at once. Names are visited in sorted order, as TF does for
        // read locality, so the first missing key reported is the same one TF reports.
        const order = names.map((_, i) => i).sort((a, b) => compareBytes(rawNames[a], rawNames[b]));
        const mismatched: string[] = [];
        for (const i of order) {
          const stored = bundle.entry(names[i]).dtype;
          if (stored !== dtypes[i]) {
            mismatched.push(
              `tensor_name = ${names[i]}; expected dtype ${dataTypeString(dtypes[i])} does not ` +
                `equal original dtype ${dataTypeString(stored)}`,
            );
          }
        }
        if (mismatched.length > 0) {
          throw new ServingError(Code.INVALID_ARGUMENT, mismatched.join("\n"));
        }
        const out: Tensor[] = new Array(names.length);
        for (const i of order) {
          if (slices[i].length > 0) {
            throw new ServingError(
              Code.UNIMPLEMENTED,
              `Cannot restore ${names[i]}: restoring a slice ("${utf8.decode(slices[i])}") of a ` +
                `partitioned variable is not supported`,
            );
          }
          out[i] = bundle.readSync(names[i]);
        }
        return out;
      } finally {
        bundle.close();
      }
    };
  },
};

/** The checkpoint I/O kernels. */
export const ioKernels: Kernel[] = [restoreV2];
