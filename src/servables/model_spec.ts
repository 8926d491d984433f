/**
 * The ModelSpec a response carries, the default signature key, the request checks every
 * servable API shares, and the SignatureDef text TF Serving quotes in its messages
 * (tensorflow_serving/servables/tensorflow/util.cc `MakeModelSpec`).
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { toText } from "@bufbuild/protobuf/txtpb";
import { Int64ValueSchema } from "@bufbuild/protobuf/wkt";
import { type ModelSpec, ModelSpecSchema } from "../proto/gen/tensorflow_serving/apis/model_pb.ts";
import {
  type SignatureDef,
  SignatureDefSchema,
} from "../proto/gen/tensorflow/core/protobuf/meta_graph_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { DecodeLimits } from "../tensor/limits.ts";

/** The signature key an empty `signature_name` means (`kDefaultServingSignatureDefKey`). */
export const DEFAULT_SERVING_SIGNATURE_DEF_KEY = "serving_default";

/** `method_name` of prediction signatures (`kPredictMethodName`). */
export const PREDICT_METHOD_NAME = "tensorflow/serving/predict";
/** `method_name` of classification signatures (`kClassifyMethodName`). */
export const CLASSIFY_METHOD_NAME = "tensorflow/serving/classify";
/** `method_name` of regression signatures (`kRegressMethodName`). */
export const REGRESS_METHOD_NAME = "tensorflow/serving/regress";

/**
 * Options shared by the servable APIs; each mirrors a `tensorflow_model_server` flag.
 */
export interface ServableOptions {
  /**
   * `--enable_signature_method_name_check` (default false): require the signature's
   * `method_name` to match the API. Off, a signature is judged by the layout of its inputs and
   * outputs only, which is what lets TF2 exports (every signature labelled
   * `tensorflow/serving/predict`) serve Classify and Regress.
   */
  readonly enableSignatureMethodNameCheck?: boolean;
  /**
   * `--enable_serialization_as_tensor_content` (default false): Predict writes numeric outputs
   * into `tensor_content` (`AsProtoTensorContent`) instead of the typed repeated fields
   * (`AsProtoField`).
   */
  readonly enableSerializationAsTensorContent?: boolean;
  /**
   * What decoding one request's tensors may allocate (`--max_request_decoded_bytes`,
   * `--max_tensor_expansion`, `--tensor_expansion_floor_bytes`); defaults when omitted.
   */
  readonly decodeLimits?: DecodeLimits;
}

/** Resolves a requested signature name: empty means `serving_default`. */
export function resolveSignatureName(name: string | undefined): string {
  return name ? name : DEFAULT_SERVING_SIGNATURE_DEF_KEY;
}

/**
 * Builds the ModelSpec of a response, as upstream's `MakeModelSpec`: the name, the signature
 * name (empty resolved to `serving_default`) when given, and the version as an Int64Value when
 * known.
 *
 * @param name the model name
 * @param signatureName the signature name; undefined leaves `signature_name` unset (metadata)
 * @param version the servable version; undefined leaves `version` unset
 *
 * @example
 * ```ts
 * makeModelSpec("default", "", 123); // { name: "default", signatureName: "serving_default", version: 123n }
 * ```
 */
export function makeModelSpec(
  name: string,
  signatureName: string | undefined,
  version: number | bigint | undefined,
): ModelSpec {
  const spec = create(ModelSpecSchema, { name });
  if (signatureName !== undefined) spec.signatureName = resolveSignatureName(signatureName);
  if (version !== undefined) {
    spec.versionChoice = {
      case: "version",
      value: create(Int64ValueSchema, { value: BigInt(version) }),
    };
  }
  return spec;
}

/**
 * Fails as upstream's service implementations do for a request without a model spec.
 *
 * @throws ServingError INVALID_ARGUMENT `Missing ModelSpec`
 */
export function requireModelSpec(spec: ModelSpec | undefined): ModelSpec {
  if (spec === undefined) throw new ServingError(Code.INVALID_ARGUMENT, "Missing ModelSpec");
  return spec;
}

/**
 * A SignatureDef in the protobuf text format, as C++ `DebugString()` prints it (TF Serving
 * quotes it in Classify/Regress errors): `inputs {` rather than txtpbfmt's `inputs: {`.
 */
export function signatureDebugString(def: SignatureDef): string {
  return toText(SignatureDefSchema, def).replace(/^(\s*[A-Za-z_][A-Za-z0-9_]*): \{$/gm, "$1 {");
}
