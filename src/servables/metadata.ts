/**
 * GetModelMetadata over a loaded model, as TF Serving's `GetModelMetadataImpl`
 * (tensorflow_serving/servables/tensorflow/get_model_metadata_impl.cc): the only metadata field
 * is `signature_def`, a `SignatureDefMap` of every SignatureDef in the MetaGraphDef (TF2's
 * `__saved_model_init_op` included, as upstream copies the map whole) packed in an Any.
 *
 * @module
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";
import {
  type GetModelMetadataRequest,
  type GetModelMetadataResponse,
  GetModelMetadataResponseSchema,
  SignatureDefMapSchema,
} from "../proto/gen/tensorflow_serving/apis/get_model_metadata_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { Model } from "../runtime/model.ts";
import { makeModelSpec, requireModelSpec } from "./model_spec.ts";

/** The one supported metadata field (`GetModelMetadataImpl::kSignatureDef`). */
export const SIGNATURE_DEF_METADATA_FIELD = "signature_def";

/** The Any's type URL, as `PackFrom` writes it. */
const SIGNATURE_DEF_MAP_TYPE_URL = `type.googleapis.com/${SignatureDefMapSchema.typeName}`;

/** The packed SignatureDefMap of each model: a model's signatures never change once loaded. */
const packed = new WeakMap<Model, Uint8Array>();

/** The model's SignatureDefMap packed as `PackFrom` does (a fresh Any; the bytes are shared). */
function signatureDefAny(model: Model): Any {
  let value = packed.get(model);
  if (!value) {
    const map = create(SignatureDefMapSchema, {
      signatureDef: { ...model.bundle.metaGraph.signatureDef },
    });
    value = toBinary(SignatureDefMapSchema, map);
    packed.set(model, value);
  }
  return create(AnySchema, { typeUrl: SIGNATURE_DEF_MAP_TYPE_URL, value });
}

/**
 * Upstream's `ValidateGetModelMetadataRequest`.
 *
 * @throws ServingError INVALID_ARGUMENT for no field or a field other than `signature_def`
 */
export function validateGetModelMetadataRequest(req: GetModelMetadataRequest): void {
  if (req.metadataField.length === 0) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      "GetModelMetadataRequest must specify at least one metadata_field",
    );
  }
  for (const field of req.metadataField) {
    if (field !== SIGNATURE_DEF_METADATA_FIELD) {
      throw new ServingError(Code.INVALID_ARGUMENT, `Metadata field ${field} is not supported`);
    }
  }
}

/**
 * Runs GetModelMetadata on a loaded model.
 *
 * @param model the loaded model version
 * @param version its version number
 * @param modelName the servable's name
 * @param req the request; `metadata_field` must list `signature_def` (and nothing else)
 * @returns the model spec (name and version; no signature name) and `metadata.signature_def`
 * @throws ServingError INVALID_ARGUMENT `Missing ModelSpec`, or an invalid metadata field
 *
 * @example
 * ```ts
 * const res = getModelMetadata(model, 123, "default", create(GetModelMetadataRequestSchema, {
 *   modelSpec: { name: "default" },
 *   metadataField: ["signature_def"],
 * }));
 * anyUnpack(res.metadata.signature_def, SignatureDefMapSchema);
 * ```
 */
export function getModelMetadata(
  model: Model,
  version: number,
  modelName: string,
  req: GetModelMetadataRequest,
): GetModelMetadataResponse {
  requireModelSpec(req.modelSpec);
  validateGetModelMetadataRequest(req);
  return create(GetModelMetadataResponseSchema, {
    modelSpec: makeModelSpec(modelName, undefined, version),
    metadata: { [SIGNATURE_DEF_METADATA_FIELD]: signatureDefAny(model) },
  });
}
