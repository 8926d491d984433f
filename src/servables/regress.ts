/**
 * Regress over a loaded model, as TF Serving's `RunRegress`
 * (tensorflow_serving/servables/tensorflow/regressor.cc): the input's examples go, serialized,
 * into the signature's `inputs` tensor; its one output `outputs` (DT_FLOAT, `[batch_size]` or
 * `[batch_size, 1]`) comes back as one Regression per example.
 *
 * As upstream by default, a signature is judged by its layout, not its `method_name` (TF2 exports
 * label every signature `tensorflow/serving/predict`); `enableSignatureMethodNameCheck` turns the
 * method-name check on.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import type { SignatureDef } from "../proto/gen/tensorflow/core/protobuf/meta_graph_pb.ts";
import type { ModelSpec } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import {
  type RegressionRequest,
  type RegressionResponse,
  RegressionResponseSchema,
  type RegressionResult,
  RegressionResultSchema,
} from "../proto/gen/tensorflow_serving/apis/regression_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { Model, Signature } from "../runtime/model.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import { shapeString, type Tensor } from "../tensor/tensor.ts";
import { invalid, oneShotSignature, type OneShotSpec, prepareOneShot } from "./one_shot.ts";
import { type PreparedCall, runPrepared } from "./prepared.ts";
import {
  makeModelSpec,
  REGRESS_METHOD_NAME,
  requireModelSpec,
  type ServableOptions,
  signatureDebugString,
} from "./model_spec.ts";

/** Input alias of regression signatures (`kRegressInputs`). */
export const REGRESS_INPUTS = "inputs";
/** Output alias of regression signatures (`kRegressOutputs`). */
export const REGRESS_OUTPUTS = "outputs";

/**
 * Upstream's `PreProcessRegression`: checks a signature's layout and names what to feed and
 * fetch.
 *
 * @throws ServingError INVALID_ARGUMENT with upstream's message when the layout does not fit
 */
export function preProcessRegression(sig: Signature, options: ServableOptions = {}): OneShotSpec {
  const def = sig.def;
  if (options.enableSignatureMethodNameCheck && def.methodName !== REGRESS_METHOD_NAME) {
    throw invalid(
      `Expected regression signature method_name to be ${REGRESS_METHOD_NAME}. Was: ${def.methodName}`,
    );
  }
  if (sig.inputs.length !== 1) throw invalid("Expected one input Tensor.");
  if (sig.outputs.length !== 1) throw invalid("Expected one output Tensor.");
  const input = sig.inputs.find((t) => t.alias === REGRESS_INPUTS);
  if (!input) {
    throw invalid(`No regression inputs found in SignatureDef: ${signatureDebugString(def)}`);
  }
  const output = sig.outputs.find((t) => t.alias === REGRESS_OUTPUTS);
  if (!output) {
    throw invalid(`No regression outputs found in SignatureDef: ${signatureDebugString(def)}`);
  }
  return {
    inputName: input.name,
    inputAlias: input.alias,
    inputDtype: input.dtype,
    outputNames: [output.name],
    outputAliases: [output.alias],
  };
}

/**
 * Upstream's `PostProcessRegressionResult`: validates the fetched `outputs` tensor and turns it
 * into one Regression per example.
 *
 * @param def the signature (its `outputs` tensor name picks the output)
 * @param numExamples how many examples were fed
 * @param outputNames the fetched tensor names
 * @param outputs the fetched tensors, in the same order
 * @throws ServingError INVALID_ARGUMENT (FAILED_PRECONDITION without an `outputs` alias) with
 *   upstream's message
 */
export function postProcessRegressionResult(
  def: SignatureDef,
  numExamples: number,
  outputNames: readonly string[],
  outputs: readonly Tensor[],
): RegressionResult {
  if (outputs.length !== outputNames.length) {
    throw invalid("Expected output_tensors and output_tensor_names to have the same size.");
  }
  const info = def.outputs[REGRESS_OUTPUTS];
  if (!info) {
    throw new ServingError(
      Code.FAILED_PRECONDITION,
      `No regression outputs found in SignatureDef: ${signatureDebugString(def)}`,
    );
  }
  const name = info.encoding.case === "name" ? info.encoding.value : "";
  const i = outputNames.indexOf(name);
  if (i < 0) throw invalid(`Could not find output tensor '${name}'`);
  const t = outputs[i];
  if (!(t.rank === 1 || (t.rank === 2 && t.shape[1] === 1))) {
    throw invalid(
      `Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got ${
        shapeString(t.shape)
      }`,
    );
  }
  if (numExamples !== t.shape[0]) {
    throw invalid(
      `Input batch size did not match output batch size: ${numExamples} vs. ${t.shape[0]}`,
    );
  }
  if (t.dtype !== DataType.DT_FLOAT) {
    throw invalid(`Expected output Tensor of DT_FLOAT.  Got: ${dtypeName(t.dtype)}`);
  }
  if (t.size !== numExamples) {
    throw invalid(`Expected output batch size to be ${numExamples}.  Got: ${t.size}`);
  }
  const values = t.data as Float32Array;
  const regressions = new Array<{ value: number }>(numExamples);
  for (let k = 0; k < numExamples; k++) regressions[k] = { value: values[k] };
  return create(RegressionResultSchema, { regressions });
}

/**
 * Upstream's `GetRegressionSignatureDef`: the signature a Regress request names, checked (by
 * method name with the check on, else by layout).
 *
 * @throws ServingError INVALID_ARGUMENT `No signature was found with the name: x`, or the
 *   layout's error
 */
export function regressionSignature(
  model: Model,
  spec: ModelSpec,
  options: ServableOptions = {},
): Signature {
  return oneShotSignature(model, spec, {
    noun: "regression",
    methodName: REGRESS_METHOD_NAME,
    preProcess: preProcessRegression,
  }, options);
}

/**
 * Runs Regress on a loaded model.
 *
 * @param model the loaded model version
 * @param version its version number (echoed in the response's model spec)
 * @param modelName the servable's name (echoed in the response's model spec)
 * @param req the request; `model_spec.signature_name` empty means `serving_default`
 * @param options server-wide options (method-name check)
 * @returns one Regression per example, in order
 * @throws ServingError INVALID_ARGUMENT for an unknown or unfit signature, an empty input, or an
 *   output of the wrong shape; the kernel's error from the run (e.g. unparsable examples)
 *
 * @example
 * ```ts
 * const res = regress(model, 123, "default", create(RegressionRequestSchema, {
 *   modelSpec: { name: "default", signatureName: "regress_x_to_y" },
 *   input: { kind: { case: "exampleList", value: { examples: [example] } } },
 * }));
 * res.result!.regressions[0].value; // 3 for x = 2
 * ```
 */
export function regress(
  model: Model,
  version: number,
  modelName: string,
  req: RegressionRequest,
  options: ServableOptions = {},
): RegressionResponse {
  return runPrepared(model, prepareRegress(model, version, modelName, req, options));
}

/**
 * Regress up to its run (see {@link regress}).
 *
 * @throws ServingError as {@link regress}, for everything checked before the run
 */
export function prepareRegress(
  model: Model,
  version: number,
  modelName: string,
  req: RegressionRequest,
  options: ServableOptions = {},
): PreparedCall<RegressionResponse> {
  const spec = requireModelSpec(req.modelSpec);
  const sig = regressionSignature(model, spec, options);
  const io = preProcessRegression(sig, options);
  return prepareOneShot(sig, io, req.input, options, (examples, outputs) => {
    const response = create(RegressionResponseSchema, {
      modelSpec: makeModelSpec(modelName, spec.signatureName, version),
    });
    response.result = postProcessRegressionResult(
      sig.def,
      examples.shape[0],
      io.outputNames,
      outputs,
    );
    return response;
  });
}
