/**
 * MultiInference over a loaded model, as TF Serving's `TensorFlowMultiInferenceRunner::Infer`
 * (tensorflow_serving/servables/tensorflow/multi_inference.cc): several Classify / Regress tasks
 * over one Input, in one session run. Every task's input tensor is fed the same serialized
 * examples (TF2 exports give each signature its own placeholder), the union of their outputs is
 * fetched once, and each task's result is cut from it.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  type InferenceResult,
  InferenceResultSchema,
  type MultiInferenceRequest,
  type MultiInferenceResponse,
  MultiInferenceResponseSchema,
} from "../proto/gen/tensorflow_serving/apis/inference_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { Model, Signature } from "../runtime/model.ts";
import type { DataType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import {
  type OneShotSpec,
  postProcessClassificationResult,
  preProcessClassification,
} from "./classify.ts";
import { checkFeedTypes, inputToExamplesTensor } from "./input.ts";
import { DecodeBudget } from "../tensor/limits.ts";
import {
  CLASSIFY_METHOD_NAME,
  makeModelSpec,
  REGRESS_METHOD_NAME,
  resolveSignatureName,
  type ServableOptions,
} from "./model_spec.ts";
import { postProcessRegressionResult, preProcessRegression } from "./regress.ts";
import { type PreparedCall, runPrepared } from "./prepared.ts";

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/**
 * Runs MultiInference on a loaded model.
 *
 * @param model the loaded model version
 * @param version its version number (echoed in every result's model spec)
 * @param _modelName the servable's name; each result echoes its own task's model name, which
 *   must all be the same (the one the servable was found by)
 * @param req the tasks (`tensorflow/serving/classify` or `tensorflow/serving/regress`) and the
 *   input they share
 * @param options server-wide options (method-name check)
 * @returns one result per task, in task order
 * @throws ServingError INVALID_ARGUMENT for an empty or mixed model name, a duplicate or unknown
 *   signature, an unfit signature or an empty input; UNIMPLEMENTED for another method name
 *
 * @example
 * ```ts
 * const res = multiInference(model, 123, "default", create(MultiInferenceRequestSchema, {
 *   tasks: [
 *     { modelSpec: { name: "default", signatureName: "regress_x_to_y" }, methodName: "tensorflow/serving/regress" },
 *     { modelSpec: { name: "default", signatureName: "classify_x_to_y" }, methodName: "tensorflow/serving/classify" },
 *   ],
 *   input: { kind: { case: "exampleList", value: { examples: [example] } } },
 * }));
 * ```
 */
export function multiInference(
  model: Model,
  version: number,
  modelName: string,
  req: MultiInferenceRequest,
  options: ServableOptions = {},
): MultiInferenceResponse {
  return runPrepared(model, prepareMultiInference(model, version, modelName, req, options));
}

/**
 * MultiInference up to its run (see {@link multiInference}).
 *
 * @throws ServingError as {@link multiInference}, for everything checked before the run
 */
export function prepareMultiInference(
  model: Model,
  version: number,
  _modelName: string,
  req: MultiInferenceRequest,
  options: ServableOptions = {},
): PreparedCall<MultiInferenceResponse> {
  let modelName = "";
  const signatureNames = new Set<string>();
  const inputs = new Map<string, DataType>();
  const outputs = new Set<string>();
  const resolved: { sig: Signature; io: OneShotSpec }[] = [];
  for (const task of req.tasks) {
    const taskModel = task.modelSpec?.name ?? "";
    if (taskModel === "") throw invalid("Found ModelSpec with an empty model name.");
    if (modelName === "") modelName = taskModel;
    else if (modelName !== taskModel) {
      throw invalid(
        "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
      );
    }
    const signatureName = resolveSignatureName(task.modelSpec?.signatureName);
    if (signatureNames.has(signatureName)) {
      throw invalid(`Duplicate evaluation of signature: ${signatureName}`);
    }
    signatureNames.add(signatureName);
    const sig = model.signatures.get(signatureName);
    if (!sig) throw invalid(`Requested signature not found in model graph: ${signatureName}`);
    let io: OneShotSpec;
    if (task.methodName === CLASSIFY_METHOD_NAME) io = preProcessClassification(sig, options);
    else if (task.methodName === REGRESS_METHOD_NAME) io = preProcessRegression(sig, options);
    else {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Unsupported signature method_name: ${task.methodName}`,
      );
    }
    inputs.set(io.inputName, io.inputDtype);
    for (const name of io.outputNames) outputs.add(name);
    resolved.push({ sig, io });
  }

  // Upstream keeps both as std::set: sorted, one feed per distinct input tensor.
  const outputNames = [...outputs].sort();
  const inputNames = [...inputs.keys()].sort();
  const examples = inputToExamplesTensor(req.input, new DecodeBudget(options.decodeLimits));
  const feeds: Tensor[] = inputNames.map(() => examples);
  checkFeedTypes(feeds, inputNames.map((n) => inputs.get(n)!));
  const numExamples = examples.shape[0];
  return {
    target: { feeds: inputNames, fetches: outputNames },
    feeds,
    finish: (fetched) =>
      multiInferenceResponse(req, resolved, version, numExamples, outputNames, fetched),
  };
}

function multiInferenceResponse(
  req: MultiInferenceRequest,
  resolved: readonly { sig: Signature }[],
  version: number,
  numExamples: number,
  outputNames: readonly string[],
  fetched: readonly Tensor[],
): MultiInferenceResponse {
  const results: InferenceResult[] = [];
  req.tasks.forEach((task, i) => {
    const { sig } = resolved[i];
    const result = create(InferenceResultSchema, {
      modelSpec: makeModelSpec(
        task.modelSpec?.name ?? "",
        task.modelSpec?.signatureName ?? "",
        version,
      ),
    });
    if (task.methodName === CLASSIFY_METHOD_NAME) {
      result.result = {
        case: "classificationResult",
        value: postProcessClassificationResult(sig.def, numExamples, outputNames, fetched),
      };
    } else {
      result.result = {
        case: "regressionResult",
        value: postProcessRegressionResult(sig.def, numExamples, outputNames, fetched),
      };
    }
    results.push(result);
  });
  return create(MultiInferenceResponseSchema, { results });
}
