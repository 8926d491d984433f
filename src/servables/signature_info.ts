/**
 * What the request hot paths need of a loaded version's signatures, worked out once per loaded
 * version rather than per request (a model's signatures never change once loaded), for every
 * transport:
 *
 * - {@link signatureInfo}: per compiled signature, the input aliases in feed order with their
 *   dtypes and the names error messages use, the output aliases, and the run target fetching
 *   every output (gRPC's Predict from wire bytes and REST's Predict from JSON tensors run on it).
 *   Cached per {@link Signature} object, which lives exactly as long as its loaded version.
 * - {@link signatureInputTypes}: per model, every SignatureDef's input dtypes by alias, which
 *   TF Serving's REST handler reads through GetModelMetadata (`GetInfoMap`) before it decodes a
 *   JSON body. Taken from the MetaGraphDef's `signature_def` map as GetModelMetadata reports it
 *   (TF2's `__saved_model_init_op` and signatures that did not compile included), so a lookup
 *   answers exactly what the metadata would. Cached per {@link Model}.
 *
 * @module
 */
import type { Model, Signature } from "../runtime/model.ts";
import type { DataType } from "../tensor/dtype.ts";

/** A run target naming a signature's outputs (one form of `RunTarget`). */
export interface SignatureTarget {
  readonly signature: string;
  readonly outputs: readonly string[];
}

/** A signature's metadata for per-request use. */
export interface SignatureInfo {
  /** Input aliases, sorted (the feed order). */
  readonly inputAliases: readonly string[];
  /** Each input's dtype, in feed order. */
  readonly inputDtypes: readonly DataType[];
  /** `input "<alias>"`, as decode errors name each input. */
  readonly inputWhat: readonly string[];
  /** Whether the SignatureDef has default input values. */
  readonly hasDefaults: boolean;
  /** Output aliases, sorted. */
  readonly outputAliases: readonly string[];
  /** The same, as a set. */
  readonly outputSet: ReadonlySet<string>;
  /** The target fetching every output (sorted), reused by every unfiltered call. */
  readonly allOutputsTarget: SignatureTarget;
}

const CACHE = new WeakMap<Signature, SignatureInfo>();

/**
 * The metadata of a signature, computed on first use.
 *
 * @param sig a compiled signature of a loaded model
 */
export function signatureInfo(sig: Signature): SignatureInfo {
  let info = CACHE.get(sig);
  if (info === undefined) {
    // Frozen, lists included: shared by every call, and a frozen alias list lets
    // `Signature.plan` find its plan without building a key.
    const outputAliases = Object.freeze(sig.outputs.map((t) => t.alias));
    info = Object.freeze({
      inputAliases: Object.freeze(sig.inputs.map((t) => t.alias)),
      inputDtypes: Object.freeze(sig.inputs.map((t) => t.dtype)),
      inputWhat: Object.freeze(sig.inputs.map((t) => `input "${t.alias}"`)),
      hasDefaults: Object.keys(sig.def.defaults).length > 0,
      outputAliases,
      outputSet: new Set(outputAliases),
      allOutputsTarget: Object.freeze({ signature: sig.key, outputs: outputAliases }),
    });
    CACHE.set(sig, info);
  }
  return info;
}

/** A signature's inputs: alias → dtype. */
export type SignatureInputTypes = ReadonlyMap<string, DataType>;

const INPUT_TYPES = new WeakMap<Model, ReadonlyMap<string, SignatureInputTypes>>();

/**
 * The input dtypes of each SignatureDef of `model`, computed on first use.
 *
 * @param model a loaded model version
 * @returns signature key → (input alias → dtype)
 */
export function signatureInputTypes(model: Model): ReadonlyMap<string, SignatureInputTypes> {
  let sigs = INPUT_TYPES.get(model);
  if (sigs === undefined) {
    const map = new Map<string, SignatureInputTypes>();
    const defs = model.bundle.metaGraph.signatureDef;
    for (const name of Object.keys(defs)) {
      const inputs = new Map<string, DataType>();
      const def = defs[name].inputs;
      for (const alias of Object.keys(def)) inputs.set(alias, def[alias].dtype);
      map.set(name, inputs);
    }
    sigs = map;
    INPUT_TYPES.set(model, sigs);
  }
  return sigs;
}
