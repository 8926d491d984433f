/**
 * Classify over a loaded model, as TF Serving's `RunClassify`
 * (tensorflow_serving/servables/tensorflow/classifier.cc): the input's examples go, serialized,
 * into the signature's `inputs` tensor; `classes` (DT_STRING) and/or `scores` (DT_FLOAT), both
 * `[batch_size, num_classes]`, come back as a ClassificationResult.
 *
 * A signature is judged by its layout (one input `inputs`; one or two outputs among `classes`
 * and `scores`), not its `method_name`, unless `enableSignatureMethodNameCheck` is set: the same
 * default as upstream, and what lets TF2 exports (every signature labelled
 * `tensorflow/serving/predict`) be classified.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import type { SignatureDef } from "../proto/gen/tensorflow/core/protobuf/meta_graph_pb.ts";
import {
  type ClassificationRequest,
  type ClassificationResponse,
  ClassificationResponseSchema,
  type ClassificationResult,
  ClassificationResultSchema,
} from "../proto/gen/tensorflow_serving/apis/classification_pb.ts";
import type { ModelSpec } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import type { Model, Signature } from "../runtime/model.ts";
import { DataType, dtypeName } from "../tensor/dtype.ts";
import { shapeString, type Tensor } from "../tensor/tensor.ts";
import { invalid, oneShotSignature, type OneShotSpec, prepareOneShot } from "./one_shot.ts";
import { type PreparedCall, runPrepared } from "./prepared.ts";
import {
  CLASSIFY_METHOD_NAME,
  makeModelSpec,
  requireModelSpec,
  type ServableOptions,
  signatureDebugString,
} from "./model_spec.ts";

/** Input alias of classification signatures (`kClassifyInputs`). */
export type { OneShotSpec };

/** The input alias of a classification signature. */
export const CLASSIFY_INPUTS = "inputs";
/** Output alias of the class labels (`kClassifyOutputClasses`). */
export const CLASSIFY_OUTPUT_CLASSES = "classes";
/** Output alias of the class scores (`kClassifyOutputScores`). */
export const CLASSIFY_OUTPUT_SCORES = "scores";

/**
 * Upstream's `PreProcessClassification`: checks a signature's layout and names what to feed and
 * fetch (`classes` before `scores`).
 *
 * @throws ServingError INVALID_ARGUMENT with upstream's message when the layout does not fit
 */
export function preProcessClassification(
  sig: Signature,
  options: ServableOptions = {},
): OneShotSpec {
  const def = sig.def;
  if (options.enableSignatureMethodNameCheck && def.methodName !== CLASSIFY_METHOD_NAME) {
    throw invalid(
      `Expected classification signature method_name to be ${CLASSIFY_METHOD_NAME}. Was: ${def.methodName}`,
    );
  }
  if (sig.inputs.length !== 1) throw invalid("Expected one input Tensor.");
  if (sig.outputs.length !== 1 && sig.outputs.length !== 2) {
    throw invalid(`Expected one or two output Tensors, found ${sig.outputs.length}`);
  }
  const input = sig.inputs.find((t) => t.alias === CLASSIFY_INPUTS);
  if (!input) {
    throw invalid(`No classification inputs found in SignatureDef: ${signatureDebugString(def)}`);
  }
  const classes = sig.outputs.find((t) => t.alias === CLASSIFY_OUTPUT_CLASSES);
  const scores = sig.outputs.find((t) => t.alias === CLASSIFY_OUTPUT_SCORES);
  if (!classes && !scores) {
    throw invalid(
      `Expected classification signature outputs to contain at least one of "${CLASSIFY_OUTPUT_CLASSES}" or "${CLASSIFY_OUTPUT_SCORES}". Signature was: ${
        signatureDebugString(def)
      }`,
    );
  }
  const outs = [classes, scores].filter((t) => t !== undefined);
  return {
    inputName: input.name,
    inputAlias: input.alias,
    inputDtype: input.dtype,
    outputNames: outs.map((t) => t.name),
    outputAliases: outs.map((t) => t.alias),
  };
}

/** The tensor named `name` among the fetched outputs. */
function byName(
  name: string | undefined,
  names: readonly string[],
  outputs: readonly Tensor[],
): Tensor | undefined {
  if (name === undefined) return undefined;
  const i = names.indexOf(name);
  return i < 0 ? undefined : outputs[i];
}

function checkMatrix(t: Tensor, what: string, dtype: DataType, numExamples: number): void {
  if (t.rank !== 2) {
    throw invalid(
      `Expected Tensor shape: [batch_size num_classes] but got ${shapeString(t.shape)}`,
    );
  }
  if (t.dtype !== dtype) {
    throw invalid(`Expected ${what} Tensor of ${dtypeName(dtype)}. Got: ${dtypeName(t.dtype)}`);
  }
  if (t.shape[0] !== numExamples) {
    throw invalid(`Expected ${what} output batch size of ${numExamples}. Got: ${t.shape[0]}`);
  }
}

/**
 * Upstream's `PostProcessClassificationResult`: validates the fetched `classes` / `scores` and
 * turns them into one Classifications per example.
 *
 * @param def the signature (its `classes` / `scores` tensor names pick the outputs)
 * @param numExamples how many examples were fed
 * @param outputNames the fetched tensor names
 * @param outputs the fetched tensors, in the same order
 * @throws ServingError INVALID_ARGUMENT with upstream's message for outputs of the wrong shape or
 *   type
 */
export function postProcessClassificationResult(
  def: SignatureDef,
  numExamples: number,
  outputNames: readonly string[],
  outputs: readonly Tensor[],
): ClassificationResult {
  if (outputs.length !== outputNames.length) {
    throw invalid(
      `Expected ${outputNames.length} output tensor(s).  Got: ${outputs.length}`,
    );
  }
  const nameOf = (alias: string) => {
    const info = def.outputs[alias];
    return info && info.encoding.case === "name" ? info.encoding.value : undefined;
  };
  const classesName = nameOf(CLASSIFY_OUTPUT_CLASSES);
  const scoresName = nameOf(CLASSIFY_OUTPUT_SCORES);
  const classes = byName(classesName, outputNames, outputs);
  // As upstream: a tensor that is both is taken as the classes.
  const scores = scoresName === classesName && classes
    ? undefined
    : byName(scoresName, outputNames, outputs);

  if (classes) checkMatrix(classes, "classes", DataType.DT_STRING, numExamples);
  if (scores) checkMatrix(scores, "scores", DataType.DT_FLOAT, numExamples);
  let numClasses = 0;
  if (classes && scores) {
    if (classes.shape[1] !== scores.shape[1]) {
      throw invalid(
        `Tensors class and score should match in dim_size(1). Got ${classes.shape[1]} vs. ${
          scores.shape[1]
        }`,
      );
    }
    numClasses = classes.shape[1];
  } else if (classes) numClasses = classes.shape[1];
  else if (scores) numClasses = scores.shape[1];

  const labels = classes ? (classes.data as Uint8Array[]) : undefined;
  const values = scores ? (scores.data as Float32Array) : undefined;
  const decoder = new TextDecoder();
  const classifications = new Array<{ classes: { label: string; score: number }[] }>(numExamples);
  for (let i = 0; i < numExamples; i++) {
    const row = new Array<{ label: string; score: number }>(numClasses);
    for (let c = 0; c < numClasses; c++) {
      const k = i * numClasses + c;
      row[c] = { label: labels ? decoder.decode(labels[k]) : "", score: values ? values[k] : 0 };
    }
    classifications[i] = { classes: row };
  }
  return create(ClassificationResultSchema, { classifications });
}

/**
 * Upstream's `GetClassificationSignatureDef`: the signature a Classify request names, checked
 * (by method name with the check on, else by layout).
 *
 * @throws ServingError INVALID_ARGUMENT `No signature was found with the name: x`, or the
 *   layout's error
 */
export function classificationSignature(
  model: Model,
  spec: ModelSpec,
  options: ServableOptions = {},
): Signature {
  return oneShotSignature(model, spec, {
    noun: "classification",
    methodName: CLASSIFY_METHOD_NAME,
    preProcess: preProcessClassification,
  }, options);
}

/**
 * Runs Classify on a loaded model.
 *
 * @param model the loaded model version
 * @param version its version number (echoed in the response's model spec)
 * @param modelName the servable's name (echoed in the response's model spec)
 * @param req the request; `model_spec.signature_name` empty means `serving_default`
 * @param options server-wide options (method-name check)
 * @returns one Classifications per example, in order
 * @throws ServingError INVALID_ARGUMENT for an unknown or unfit signature, an empty input, or
 *   outputs of the wrong shape; the kernel's error from the run (e.g. unparsable examples)
 *
 * @example
 * ```ts
 * const res = classify(model, 123, "default", create(ClassificationRequestSchema, {
 *   modelSpec: { name: "default", signatureName: "classify_x_to_y" },
 *   input: { kind: { case: "exampleList", value: { examples: [example] } } },
 * }));
 * res.result!.classifications[0].classes[0].score; // 3 for x = 2
 * ```
 */
export function classify(
  model: Model,
  version: number,
  modelName: string,
  req: ClassificationRequest,
  options: ServableOptions = {},
): ClassificationResponse {
  return runPrepared(model, prepareClassify(model, version, modelName, req, options));
}

/**
 * Classify up to its run (see {@link classify}).
 *
 * @throws ServingError as {@link classify}, for everything checked before the run
 */
export function prepareClassify(
  model: Model,
  version: number,
  modelName: string,
  req: ClassificationRequest,
  options: ServableOptions = {},
): PreparedCall<ClassificationResponse> {
  const spec = requireModelSpec(req.modelSpec);
  const sig = classificationSignature(model, spec, options);
  const io = preProcessClassification(sig, options);
  return prepareOneShot(sig, io, req.input, options, (examples, outputs) => {
    const response = create(ClassificationResponseSchema, {
      modelSpec: makeModelSpec(modelName, spec.signatureName, version),
    });
    response.result = postProcessClassificationResult(
      sig.def,
      examples.shape[0],
      io.outputNames,
      outputs,
    );
    return response;
  });
}
