/**
 * A servable call split around its one run: everything before (resolve the signature, check and
 * convert the request) and after (check the outputs, build the response) stays with the caller,
 * and the run itself — a RunTarget and its feeds, which can be sent to another isolate — may
 * happen wherever the executor decides.
 *
 * @module
 */
import type { Model, RunTarget } from "../runtime/model.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** A call prepared up to its run. */
export interface PreparedCall<R> {
  /** What to compute. */
  readonly target: RunTarget;
  /** One tensor per feed of the target, in its order. */
  readonly feeds: readonly Tensor[];
  /**
   * Builds the response from the fetched tensors (in the target's order).
   *
   * @throws ServingError for outputs that do not fit the API (upstream's post-processing)
   */
  finish(outputs: readonly Tensor[]): R;
}

/** Runs a prepared call here, synchronously, on the model's own session. */
export function runPrepared<R>(model: Model, call: PreparedCall<R>): R {
  return call.finish(model.plan(call.target).run(call.feeds));
}
