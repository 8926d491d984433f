/**
 * The input dtypes of every SignatureDef of a loaded model, by signature key and input alias:
 * what TF Serving's REST handler reads through GetModelMetadata (`GetInfoMap`) before it decodes
 * a JSON body. Worked out once per loaded version (a model's signatures never change once
 * loaded), not per request.
 *
 * Taken from the MetaGraphDef's `signature_def` map as GetModelMetadata reports it (TF2's
 * `__saved_model_init_op` included), so a lookup answers exactly what the metadata would.
 *
 * @module
 */
import type { DataType } from "../tensor/dtype.ts";
import type { Model } from "./model.ts";

/** A signature's inputs: alias → dtype. */
export type SignatureInputTypes = ReadonlyMap<string, DataType>;

const CACHE = new WeakMap<Model, ReadonlyMap<string, SignatureInputTypes>>();

/**
 * The input dtypes of each signature of `model`, computed on first use.
 *
 * @param model a loaded model version
 * @returns signature key → (input alias → dtype)
 */
export function signatureInputTypes(model: Model): ReadonlyMap<string, SignatureInputTypes> {
  let sigs = CACHE.get(model);
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
    CACHE.set(model, sigs);
  }
  return sigs;
}
