/**
 * Predict over a loaded model, as TF Serving's `RunPredict`
 * (tensorflow_serving/servables/tensorflow/predict_util.cc): resolve the signature, check the
 * request's inputs against it (filling signature defaults), check the output filter, run, and
 * write the outputs by alias.
 *
 * Messages are upstream's, word for word, since clients match them. Like TensorFlow's session,
 * fed shapes are not checked against the signature's shapes (a placeholder that is fed is
 * replaced, so `[3]` may be fed where the signature says `[-1,1]`); dtypes are.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import type { TensorProto } from "../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import type { ModelSpec } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import {
  type PredictRequest,
  type PredictResponse,
  PredictResponseSchema,
} from "../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { Model, Signature } from "../runtime/model.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { tensorFromProto, type TensorProtoValues, tensorToProto } from "../tensor/tensor_proto.ts";
import { directlyEncodable } from "../tensor/tensor_wire.ts";
import { signatureInfo } from "./signature_info.ts";
import { DecodeBudget } from "../tensor/limits.ts";
import { checkFeedTypes } from "./feed_types.ts";
import { type PreparedCall, runPrepared } from "./prepared.ts";
import {
  CLASSIFY_METHOD_NAME,
  makeModelSpec,
  PREDICT_METHOD_NAME,
  REGRESS_METHOD_NAME,
  requireModelSpec,
  resolveSignatureName,
  type ServableOptions,
} from "./model_spec.ts";

/** Keys of a proto map as upstream's `GetMapKeys` returns them: a sorted set. */
function mapKeys(m: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(m).sort();
}

/** Elements of `a` not in `b` (upstream's `SetDifference`; both sorted). */
function setDifference(a: readonly string[], b: readonly string[]): string[] {
  const s = new Set(b);
  return a.filter((x) => !s.has(x));
}

/**
 * Looks up the signature Predict runs.
 *
 * @throws ServingError FAILED_PRECONDITION `Serving signature key "x" not found.`
 */
export function predictSignature(model: Model, signatureName: string): Signature {
  const sig = model.signatures.get(signatureName);
  if (!sig) {
    throw new ServingError(
      Code.FAILED_PRECONDITION,
      `Serving signature key "${signatureName}" not found.`,
    );
  }
  return sig;
}

/** Upstream's `VerifySignature`, effective only with the method-name check on. */
function verifySignature(sig: Signature, options: ServableOptions): void {
  const m = sig.methodName;
  if (
    options.enableSignatureMethodNameCheck && m !== PREDICT_METHOD_NAME &&
    m !== CLASSIFY_METHOD_NAME && m !== REGRESS_METHOD_NAME
  ) {
    throw new ServingError(
      Code.INTERNAL,
      `Expected prediction signature method_name to be one of {${PREDICT_METHOD_NAME}, ${CLASSIFY_METHOD_NAME}, ${REGRESS_METHOD_NAME}}. Was: ${m}`,
    );
  }
}

/** Upstream's `VerifyRequestInputsSize`. */
function verifyRequestInputsSize(sig: Signature, req: PredictRequest): void {
  const requestInputs = mapKeys(req.inputs);
  const signatureInputs = sig.inputs.map((t) => t.alias);
  const hasDefaults = Object.keys(sig.def.defaults).length > 0;
  if (
    requestInputs.length > signatureInputs.length ||
    (requestInputs.length < signatureInputs.length && !hasDefaults)
  ) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `input size does not match signature: ${requestInputs.length}!=${signatureInputs.length} len({${
        requestInputs.join(",")
      }}) != len({${signatureInputs.join(",")}}). Sent extra: {${
        setDifference(requestInputs, signatureInputs).join(",")
      }}. Missing but required: {${setDifference(signatureInputs, requestInputs).join(",")}}.`,
    );
  }
}

/**
 * Upstream's `saved_model::GetInputValues`: one tensor per signature input (in the signature's
 * alias order), from the request or else the signature's default.
 */
function inputValues(sig: Signature, req: PredictRequest, budget: DecodeBudget): Tensor[] {
  const defaults = sig.def.defaults;
  const feeds: Tensor[] = new Array(sig.inputs.length);
  let seen = 0;
  const seenAliases: string[] = [];
  for (let i = 0; i < sig.inputs.length; i++) {
    const { alias, name } = sig.inputs[i];
    let proto: TensorProto;
    if (Object.hasOwn(req.inputs, alias)) {
      proto = req.inputs[alias];
      seen++;
      seenAliases.push(alias);
    } else if (Object.hasOwn(defaults, alias)) {
      proto = defaults[alias];
    } else {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Signature input alias: ${alias}(feed name: ${name}) not found in request and no default value provided. Inputs expected to be in the request {${
          mapKeys(req.inputs).join(",")
        }}, or default input alias set: ${mapKeys(defaults).join(",")}`,
      );
    }
    try {
      feeds[i] = tensorFromProto(proto, `input "${alias}"`, budget);
    } catch (e) {
      // Over a decode limit is ours to say; a tensor Tensor::FromProto refuses gets upstream's
      // words (the detail, in TensorFlow's words, is the cause).
      if (e instanceof ServingError && e.code === Code.RESOURCE_EXHAUSTED) throw e;
      throw new ServingError(Code.INVALID_ARGUMENT, `tensor parsing error: ${alias}`, {
        cause: e,
      });
    }
  }
  const requestInputs = mapKeys(req.inputs);
  if (requestInputs.length > 0 && seen !== requestInputs.length) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Inputs contains invalid name. Used request inputs: ${
        seenAliases.sort().join(",")
      }, request input: ${requestInputs.join(",")}`,
    );
  }
  return feeds;
}

/** The output aliases to fetch: the filter, checked, or else every output. */
function outputAliases(sig: Signature, req: PredictRequest): string[] {
  const known = new Set(sig.outputs.map((t) => t.alias));
  const seen = new Set<string>();
  for (const alias of req.outputFilter) {
    if (!known.has(alias)) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `output tensor alias not found in signature: ${alias} Outputs expected to be in the set {${
          sig.outputs.map((t) => t.alias).join(",")
        }}.`,
      );
    }
    if (seen.has(alias)) {
      throw new ServingError(Code.INVALID_ARGUMENT, `duplicate output tensor alias: ${alias}`);
    }
    seen.add(alias);
  }
  return seen.size > 0 ? [...seen] : sig.outputs.map((t) => t.alias);
}

/**
 * Runs Predict on a loaded model.
 *
 * @param model the loaded model version
 * @param version its version number (echoed in the response's model spec)
 * @param modelName the servable's name (echoed in the response's model spec)
 * @param req the request; `model_spec.signature_name` empty means `serving_default`
 * @param options server-wide options (method-name check, tensor_content outputs)
 * @returns the outputs by alias, as typed repeated fields unless
 *   `enableSerializationAsTensorContent`
 * @throws ServingError INVALID_ARGUMENT for a request that does not fit the signature,
 *   FAILED_PRECONDITION for an unknown signature, or the kernel's error from the run
 *
 * @example
 * ```ts
 * const res = predict(model, 123, "half_plus_two", create(PredictRequestSchema, {
 *   modelSpec: { name: "half_plus_two" },
 *   inputs: { x: tensorToProto(Tensor.float32([1, 2], [2, 1])) },
 * }));
 * ```
 */
export function predict(
  model: Model,
  version: number,
  modelName: string,
  req: PredictRequest,
  options: ServableOptions = {},
): PredictResponse {
  return runPrepared(model, preparePredict(model, version, modelName, req, options));
}

/**
 * Predict up to its run: the checks and conversions of {@link predict}, and how to build the
 * response from the fetched tensors.
 *
 * @throws ServingError as {@link predict}, for everything checked before the run
 */
export function preparePredict(
  model: Model,
  version: number,
  modelName: string,
  req: PredictRequest,
  options: ServableOptions = {},
): PreparedCall<PredictResponse> {
  const spec = requireModelSpec(req.modelSpec);
  const signatureName = resolveSignatureName(spec.signatureName);
  const sig = predictSignature(model, signatureName);

  verifySignature(sig, options);
  verifyRequestInputsSize(sig, req);
  const feeds = inputValues(sig, req, new DecodeBudget(options.decodeLimits));
  const aliases = outputAliases(sig, req);
  checkFeedTypes(feeds, sig.inputs.map((t) => t.dtype));

  // One compiled plan per set of outputs, whatever order the filter lists them in.
  const fetch = aliases.length > 1 ? [...aliases].sort() : aliases;
  const useContent = options.enableSerializationAsTensorContent === true;
  return {
    target: { signature: signatureName, outputs: fetch },
    feeds,
    finish(outs) {
      if (outs.length !== fetch.length) {
        throw new ServingError(Code.UNKNOWN, "Predict internal error");
      }
      return predictResponse(modelName, signatureName, version, fetch, outs, useContent);
    },
  };
}

/** The response message of a run: the outputs by alias and the model spec. */
function predictResponse(
  modelName: string,
  signatureName: string,
  version: number,
  fetch: readonly string[],
  outs: readonly Tensor[],
  useContent: boolean,
): PredictResponse {
  const response = create(PredictResponseSchema, {
    modelSpec: makeModelSpec(modelName, signatureName, version),
  });
  for (let i = 0; i < fetch.length; i++) {
    response.outputs[fetch[i]] = tensorToProto(outs[i], useContent);
  }
  return response;
}

/**
 * A PredictRequest read straight from its wire bytes (src/api/grpc/predict_codec.ts): the model
 * spec, each input as a view of its TensorProto, the output filter, and the same request decoded
 * as a message on demand, for whatever the direct path does not take.
 */
export interface PredictRequestView {
  /** The request's model spec (undefined when absent). */
  readonly modelSpec: ModelSpec | undefined;
  /** The inputs' aliases (distinct), in request order. */
  readonly inputAliases: readonly string[];
  /** The inputs' tensors, one per alias. */
  readonly inputValues: readonly TensorProtoValues[];
  /** The output filter. */
  readonly outputFilter: readonly string[];
  /**
   * The same request decoded by the general decoder.
   *
   * @throws Error when the bytes do not decode (never, for a view the codec built)
   */
  message(): PredictRequest;
}

/**
 * The outcome of a Predict taken on the direct path: the output tensors by alias, for the
 * transport to encode as the PredictResponse {@link predict} would build (same fields, same
 * order, same bytes).
 */
export class PredictOutputs {
  /**
   * @param modelName the servable's name
   * @param signatureName the signature run (resolved)
   * @param version the version run
   * @param aliases the output aliases, in the order the response map lists them
   * @param tensors one tensor per alias
   * @param useContent write numbers into `tensor_content` (`--enable_serialization_as_tensor_content`)
   */
  constructor(
    readonly modelName: string,
    readonly signatureName: string,
    readonly version: number,
    readonly aliases: readonly string[],
    readonly tensors: readonly Tensor[],
    readonly useContent: boolean,
  ) {}
}

/**
 * Predict from a {@link PredictRequestView}: the common request (every signature input given
 * once, the filter naming known outputs once, types that match, values TensorFlow accepts) goes
 * straight from the views to tensors with the signature's metadata resolved once per version, and
 * its outputs come back as {@link PredictOutputs}; any other request — including every one that
 * fails a check — runs {@link preparePredict} on the decoded message, so its answer, error
 * messages included, is exactly the message path's.
 *
 * @throws ServingError as {@link preparePredict}
 */
export function preparePredictView(
  model: Model,
  version: number,
  modelName: string,
  req: PredictRequestView,
  options: ServableOptions = {},
): PreparedCall<PredictResponse | PredictOutputs> {
  let direct: PreparedCall<PredictResponse | PredictOutputs> | undefined;
  try {
    direct = prepareDirect(model, version, modelName, req, options);
  } catch {
    // A check failed or a tensor was refused: the message path words the answer.
  }
  return direct ?? preparePredict(model, version, modelName, req.message(), options);
}

/** The direct path of {@link preparePredictView}; undefined (or a throw) leaves the request to it. */
function prepareDirect(
  model: Model,
  version: number,
  modelName: string,
  req: PredictRequestView,
  options: ServableOptions,
): PreparedCall<PredictResponse | PredictOutputs> | undefined {
  const spec = req.modelSpec;
  if (spec === undefined) return undefined;
  const signatureName = resolveSignatureName(spec.signatureName);
  const sig = model.signatures.get(signatureName);
  if (sig === undefined) return undefined;
  if (options.enableSignatureMethodNameCheck) verifySignature(sig, options);
  const info = signatureInfo(sig);
  const aliases = info.inputAliases;
  // Exactly the signature's inputs: defaults, extras and missing ones take the message path.
  const given = req.inputAliases;
  if (given.length !== aliases.length) return undefined;
  const budget = new DecodeBudget(options.decodeLimits);
  const feeds: Tensor[] = new Array(aliases.length);
  for (let i = 0; i < aliases.length; i++) {
    const at = aliases.length === 1
      ? (given[0] === aliases[0] ? 0 : -1)
      : given.indexOf(aliases[i]);
    if (at < 0) return undefined;
    const t = tensorFromProto(req.inputValues[at], info.inputWhat[i], budget);
    if (t.dtype !== info.inputDtypes[i]) return undefined;
    feeds[i] = t;
  }
  let target = info.allOutputsTarget;
  const filter = req.outputFilter;
  if (filter.length > 0) {
    const seen = new Set<string>();
    for (let i = 0; i < filter.length; i++) {
      const alias = filter[i];
      if (!info.outputSet.has(alias) || seen.has(alias)) return undefined;
      seen.add(alias);
    }
    const wanted = [...seen];
    target = { signature: signatureName, outputs: wanted.length > 1 ? wanted.sort() : wanted };
  }
  const fetch = target.outputs;
  const useContent = options.enableSerializationAsTensorContent === true;
  return {
    target,
    feeds,
    finish(outs) {
      if (outs.length !== fetch.length) {
        throw new ServingError(Code.UNKNOWN, "Predict internal error");
      }
      for (let i = 0; i < outs.length; i++) {
        if (!directlyEncodable(outs[i])) {
          return predictResponse(modelName, signatureName, version, fetch, outs, useContent);
        }
      }
      return new PredictOutputs(modelName, signatureName, version, fetch, outs, useContent);
    },
  };
}
