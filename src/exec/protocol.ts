/**
 * The messages between the main isolate and a worker (structured-cloned; shared memory stays
 * shared).
 *
 * @module
 */
import type { RunTarget } from "../runtime/model.ts";
import type { ModelImage, TensorImage } from "./shared_model.ts";

/** An error as it crosses isolates. */
export interface ErrorImage {
  readonly code: number;
  readonly message: string;
}

/** Main → worker. */
export type ToWorker =
  /** First message: the process's kernel memory (kernels/wasm/shared_memory.ts). */
  | {
    readonly type: "init";
    readonly kernelMemory: WebAssembly.Memory;
    /** Join the team that splits large kernels across idle workers (kernels/wasm/team.ts). */
    readonly team: boolean;
    /** The worker's index in the pool. */
    readonly index: number;
  }
  | { readonly type: "load"; readonly model: number; readonly image: ModelImage }
  | { readonly type: "unload"; readonly model: number }
  | {
    readonly type: "run";
    readonly job: number;
    /** The index of the worker it is posted to (to clear its pending-call flag). */
    readonly worker: number;
    readonly model: number;
    readonly target: RunTarget;
    readonly feeds: readonly TensorImage[];
    /**
     * Large outputs may be copied into the worker's reused memory: the main isolate gives it
     * back ("reclaim") once the call is answered.
     */
    readonly reuseOutputs?: boolean;
  }
  /** Output memory of earlier calls ("done" `reusable`), no longer read. */
  | { readonly type: "reclaim"; readonly buffers: readonly SharedArrayBuffer[] };

/** Worker → main. */
export type FromWorker =
  | { readonly type: "loaded"; readonly model: number; readonly error?: ErrorImage }
  | {
    readonly type: "done";
    readonly job: number;
    /** Time spent running the plan in the worker. */
    readonly ms: number;
    /** Whether it posted tasks for other workers to help with (kernels/wasm/team.ts). */
    readonly helped?: boolean;
    readonly outputs?: readonly TensorImage[];
    /** The buffers of `outputs` in the worker's reused memory, to give back (see "run"). */
    readonly reusable?: readonly SharedArrayBuffer[];
    readonly error?: ErrorImage;
  };
