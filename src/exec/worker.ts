/**
 * The worker isolate's entry point: holds the models it was given (rebuilt from their images,
 * weights shared with the main isolate) and runs one plan per message, answering with the
 * outputs or the error. It never touches the network or the file system.
 *
 * @module
 */
import { ServingError } from "../errors.ts";
import type { Model } from "../runtime/model.ts";
import {
  modelFromImage,
  postedImageIn,
  SHARE_POSTED_BYTES,
  tensorFromImage,
} from "./shared_model.ts";
import { SharedBufferPool } from "../tensor/request_memory.ts";
import { defaultRegistry } from "../kernels/mod.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { adoptKernelMemory } from "../kernels/wasm/shared_memory.ts";
import {
  beginTeamCall,
  endTeamCall,
  joinKernelTeam,
  setCallPending,
  teamStats,
  watchForNextCall,
} from "../kernels/wasm/team.ts";

/** The worker's side of its message port. */
const port = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

const models = new Map<number, Model>();

/** Large outputs' memory, given back by the main isolate once a call is answered. */
const outputMemory = new SharedBufferPool();

/**
 * Shared storage for a large fetched output of a call whose outputs the main isolate gives back
 * (`reusable` lists the buffers): from `outputMemory`, and then posted as it is (see
 * `postedImageIn`). Undefined otherwise: small outputs are cloned, and for a call that keeps its
 * outputs a fresh shared buffer allocated while the run is timed cost more than the copy it saves
 * (in-process pool runs of selfie, p10 0.35 ms longer).
 */
function postedFloats(n: number, reusable: SharedArrayBuffer[] | undefined) {
  const bytes = n * 4;
  if (reusable === undefined || bytes < SHARE_POSTED_BYTES) return undefined;
  const buffer = outputMemory.take(bytes) ?? new SharedArrayBuffer(bytes);
  reusable.push(buffer);
  return new Float32Array(buffer, 0, n);
}

function errorOf(e: unknown) {
  const err = ServingError.from(e);
  return { code: err.code, message: err.message };
}

port.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "init":
      // Before any kernel runs here: packed weights then live once, in the main isolate's
      // memory. (If it could not be adopted, kernels make a memory of their own: correct,
      // only not shared.)
      if (adoptKernelMemory(m.kernelMemory) && m.team) joinKernelTeam(m.index);
      break;
    case "load": {
      try {
        models.set(m.model, modelFromImage(m.image, defaultRegistry()));
        port.postMessage({ type: "loaded", model: m.model });
      } catch (err) {
        port.postMessage({ type: "loaded", model: m.model, error: errorOf(err) });
      }
      break;
    }
    case "unload":
      models.delete(m.model);
      break;
    case "reclaim":
      for (const b of m.buffers) outputMemory.give(b);
      break;
    case "run": {
      setCallPending(m.worker, false);
      const t0 = performance.now();
      try {
        const model = models.get(m.model);
        if (!model) throw new Error(`Model ${m.model} is not loaded in this worker`);
        // The other members stay hot for this call's splits while it runs (team.ts).
        beginTeamCall();
        const splitBefore = teamStats().split;
        const reusable: SharedArrayBuffer[] | undefined = m.reuseOutputs ? [] : undefined;
        let outs;
        try {
          outs = model.plan(m.target).run(
            m.feeds.map(tensorFromImage),
            (n) => postedFloats(n, reusable),
          );
        } finally {
          endTeamCall();
        }
        const ms = performance.now() - t0;
        const helped = teamStats().split !== splitBefore;
        const outputs = outs.map((t) => postedImageIn(t, outputMemory, reusable));
        port.postMessage({ type: "done", job: m.job, ms, helped, outputs, reusable });
      } catch (err) {
        port.postMessage({
          type: "done",
          job: m.job,
          ms: performance.now() - t0,
          error: errorOf(err),
        });
      }
      // A closed-loop client's next call follows within a round trip: take it on a CPU still
      // awake (team.ts).
      watchForNextCall();
      break;
    }
  }
};
