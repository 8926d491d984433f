/**
 * Predict from tensors a transport decoded itself (REST's JSON goes straight into typed arrays),
 * answering the output tensors rather than a PredictResponse message, so the hot path makes no
 * message objects either way.
 *
 * The common request — exactly the signature's inputs, with its dtypes, within the decode limits
 * — runs directly; any other (an input missing or extra, a signature that is not compiled, a
 * limit passed, the method-name check on) is turned into the PredictRequest message it stands for
 * and run by {@link preparePredict}, so its answer and every error message are the message
 * path's, word for word.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import type { TensorProto } from "../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import type { ModelSpec } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import {
  PredictRequestSchema,
  type PredictResponse,
} from "../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { Model } from "../runtime/model.ts";
import { DataType, elementBytes } from "../tensor/dtype.ts";
import { DecodeBudget, MAX_DIMS, STRING_ELEMENT_BYTES } from "../tensor/limits.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { tensorToProto } from "../tensor/tensor_proto.ts";
import { resolveSignatureName, type ServableOptions } from "./model_spec.ts";
import { preparePredict } from "./predict.ts";
import type { PreparedCall } from "./prepared.ts";
import { type SignatureInfo, signatureInfo } from "./signature_info.ts";

/** A Predict request whose inputs are tensors already. */
export interface TensorPredictRequest {
  /** The model spec as the request gives it (name, version or label, signature name). */
  readonly modelSpec: ModelSpec;
  /** The inputs by alias. */
  readonly inputs: ReadonlyMap<string, Tensor>;
}

/** The outputs of a Predict run directly: the tensors by alias, sorted as the response lists them. */
export class PredictTensors {
  /**
   * @param signatureName the signature run (resolved)
   * @param version the version run
   * @param aliases the output aliases
   * @param tensors one tensor per alias
   */
  constructor(
    readonly signatureName: string,
    readonly version: number,
    readonly aliases: readonly string[],
    readonly tensors: readonly Tensor[],
  ) {}
}

/** What `tensorFromProto` charges for a tensor sent as `tensor_content` (or `string_val`). */
function charge(budget: DecodeBudget, what: string, t: Tensor): void {
  let n = 1;
  for (const d of t.shape) n *= d;
  let decoded: number;
  let encoded = 2 * t.shape.length;
  if (t.dtype === DataType.DT_STRING) {
    decoded = n * STRING_ELEMENT_BYTES;
    for (const s of t.data as Uint8Array[]) encoded += s.byteLength + 2;
  } else {
    decoded = n * elementBytes(t.dtype);
    encoded += decoded;
  }
  budget.charge(what, decoded, encoded);
}

/**
 * Predict up to its run, from tensors.
 *
 * @param model the loaded model version
 * @param version its version number
 * @param modelName the servable's name
 * @param req the request
 * @param options server-wide options
 * @returns the prepared call; it finishes with {@link PredictTensors} on the direct path and a
 *   PredictResponse on the message path
 * @throws ServingError as {@link preparePredict}
 */
export function preparePredictTensors(
  model: Model,
  version: number,
  modelName: string,
  req: TensorPredictRequest,
  options: ServableOptions = {},
): PreparedCall<PredictResponse | PredictTensors> {
  const signatureName = resolveSignatureName(req.modelSpec.signatureName);
  const sig = model.signatures.get(signatureName);
  if (sig !== undefined && !options.enableSignatureMethodNameCheck) {
    const info = signatureInfo(sig);
    const feeds = directFeeds(info, req.inputs, options);
    if (feeds !== undefined) {
      const fetch = info.outputAliases;
      return {
        target: info.allOutputsTarget,
        feeds,
        finish(outs) {
          if (outs.length !== fetch.length) {
            throw new ServingError(Code.UNKNOWN, "Predict internal error");
          }
          return new PredictTensors(signatureName, version, fetch, outs);
        },
      };
    }
  }
  return preparePredict(model, version, modelName, messageOf(req), options);
}

/** The feeds in signature order when the request takes the direct path, else undefined. */
function directFeeds(
  d: SignatureInfo,
  inputs: ReadonlyMap<string, Tensor>,
  options: ServableOptions,
): Tensor[] | undefined {
  if (inputs.size !== d.inputAliases.length) return undefined;
  const budget = new DecodeBudget(options.decodeLimits);
  const feeds: Tensor[] = new Array(d.inputAliases.length);
  for (let i = 0; i < feeds.length; i++) {
    const t = inputs.get(d.inputAliases[i]);
    if (t === undefined || t.dtype !== d.inputDtypes[i] || t.shape.length > MAX_DIMS) {
      return undefined;
    }
    try {
      charge(budget, d.inputWhat[i], t);
    } catch {
      return undefined; // the message path words the refusal
    }
    feeds[i] = t;
  }
  return feeds;
}

/** The PredictRequest message a tensor request stands for (values in `tensor_content`). */
function messageOf(req: TensorPredictRequest) {
  const message = create(PredictRequestSchema, { modelSpec: req.modelSpec });
  const inputs: Record<string, TensorProto> = message.inputs;
  for (const [alias, t] of req.inputs) {
    Object.defineProperty(inputs, alias, {
      value: tensorToProto(t, true),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return message;
}
