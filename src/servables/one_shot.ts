/**
 * What Classify and Regress share (upstream's classifier.cc and regressor.cc have the same
 * shape): finding and checking the signature a request names, and running it once on the
 * request's serialized examples.
 *
 * @module
 */
import type { ModelSpec } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import type { Input } from "../proto/gen/tensorflow_serving/apis/input_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { Model, Signature } from "../runtime/model.ts";
import type { DataType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkFeedTypes, inputToExamplesTensor } from "./input.ts";
import { DecodeBudget } from "../tensor/limits.ts";
import { resolveSignatureName, type ServableOptions } from "./model_spec.ts";
import type { PreparedCall } from "./prepared.ts";

/** How a one-shot (Classify or Regress) signature is fed and fetched. */
export interface OneShotSpec {
  /** The graph tensor the serialized examples are fed to (`tf_example:0`). */
  readonly inputName: string;
  /** Its alias in the signature. */
  readonly inputAlias: string;
  /** Its declared type (DT_STRING for a parsing signature). */
  readonly inputDtype: DataType;
  /** Graph tensors fetched, in upstream's order. */
  readonly outputNames: readonly string[];
  /** Their aliases, in the same order. */
  readonly outputAliases: readonly string[];
}

/** Shorthand for an INVALID_ARGUMENT ServingError. */
export function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/** What distinguishes Classify from Regress when finding a signature. */
export interface OneShotKind {
  /** `classification` or `regression`, as upstream's messages say. */
  readonly noun: string;
  /** The method name the signature must have when the check is on. */
  readonly methodName: string;
  /** Checks the signature's layout and says how to run it. */
  readonly preProcess: (sig: Signature, options: ServableOptions) => OneShotSpec;
}

/**
 * Upstream's `Get{Classification,Regression}SignatureDef`: the signature a request names,
 * checked by method name with `--enable_signature_method_name_check`, else by layout.
 *
 * @throws ServingError INVALID_ARGUMENT `No signature was found with the name: x`, or the
 *   layout's error
 */
export function oneShotSignature(
  model: Model,
  spec: ModelSpec,
  kind: OneShotKind,
  options: ServableOptions = {},
): Signature {
  const name = resolveSignatureName(spec.signatureName);
  const sig = model.signatures.get(name);
  if (!sig) throw invalid(`No signature was found with the name: ${name}`);
  if (options.enableSignatureMethodNameCheck) {
    if (sig.methodName !== kind.methodName) {
      throw invalid(
        `Expected ${kind.noun} signature method_name to be ${kind.methodName}. Was: ${sig.methodName}`,
      );
    }
  } else kind.preProcess(sig, options);
  return sig;
}

/**
 * Prepares feeding the request's examples to a one-shot signature and fetching its outputs.
 *
 * @param finish builds the response from the examples fed and the outputs fetched
 */
export function prepareOneShot<R>(
  sig: Signature,
  io: OneShotSpec,
  input: Input | undefined,
  options: ServableOptions,
  finish: (examples: Tensor, outputs: readonly Tensor[]) => R,
): PreparedCall<R> {
  const examples = inputToExamplesTensor(input, new DecodeBudget(options.decodeLimits));
  checkFeedTypes([examples], [io.inputDtype]);
  return {
    target: { signature: sig.key, outputs: io.outputAliases },
    feeds: [examples],
    finish: (outputs) => finish(examples, outputs),
  };
}
