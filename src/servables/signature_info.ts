/**
 * What the request hot paths need of a signature, worked out once per loaded version rather than
 * per request: input aliases in feed order with their dtypes and the names error messages use,
 * the output aliases, and the run target fetching every output. Cached per {@link Signature}
 * object, which lives exactly as long as its loaded version.
 *
 * Any transport's fast path may use it (gRPC's Predict does; REST's could).
 *
 * @module
 */
import type { Signature } from "../runtime/model.ts";
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
    const outputAliases = sig.outputs.map((t) => t.alias);
    info = Object.freeze({
      inputAliases: sig.inputs.map((t) => t.alias),
      inputDtypes: sig.inputs.map((t) => t.dtype),
      inputWhat: sig.inputs.map((t) => `input "${t.alias}"`),
      hasDefaults: Object.keys(sig.def.defaults).length > 0,
      outputAliases,
      outputSet: new Set(outputAliases),
      allOutputsTarget: Object.freeze({ signature: sig.key, outputs: outputAliases }),
    });
    CACHE.set(sig, info);
  }
  return info;
}
