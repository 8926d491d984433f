/**
 * Big JSON off the event loop: a small pool of codec workers (codec_worker.ts) that decode a
 * big Predict body into tensors and encode a big Predict response to JSON bytes, so that one
 * client's 60 MB body does not hold every other client (gRPC, REST, health checks) for
 * seconds. The body goes to the worker without a copy when it owns its buffer (transferred:
 * the caller's view is emptied), the decoded tensor contents and the encoded bytes come back
 * transferred. Workers start on first use and live until {@link JsonCodec.close}.
 *
 * Where workers cannot start (a runtime without them), the methods return undefined and the
 * caller does the work inline.
 *
 * @module
 */
import type { TensorProto } from "../../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { Code, ServingError } from "../../errors.ts";
import { allocate, DataType, toBytes } from "../../tensor/dtype.ts";
import { isSlab } from "../../tensor/arena.ts";
import type { CodecError, FromCodec, ToCodec } from "./codec_protocol.ts";
import type { JsonPredictRequestFormat } from "./json_tensor.ts";

/** A decoded Predict body. */
export interface DecodedPredict {
  /** The request format (it decides the response format). */
  readonly format: JsonPredictRequestFormat;
  /** The spec's signature name after the body's `signature_name`. */
  readonly signatureName: string;
  /** The input tensors. */
  readonly inputs: Record<string, TensorProto>;
}

interface Slot {
  readonly worker: Worker;
  /** Jobs posted and not answered. */
  readonly jobs: Set<number>;
  /** Whether it has answered a job (it started). */
  answered: boolean;
  /** Ends the worker once it has been idle for {@link IDLE_MS}. */
  idle?: ReturnType<typeof setTimeout>;
}

interface Pending {
  resolve(m: FromCodec): void;
  reject(e: ServingError): void;
}

/**
 * An idle codec worker is ended after this long. Its heap held bodies of megabytes that V8 would
 * keep for a long while in an isolate that runs no more code; a new worker (about 0.1 s) is cheap
 * next to the jobs it serves (bodies over 1 MiB).
 */
const IDLE_MS = 2000;

/** The default number of codec workers (the machine's cores, at most 2). */
const DEFAULT_WORKERS = Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1));

/** The typed field a dtype's values are in when not in tensor_content (those packed here). */
const VALUE_FIELD: ReadonlyMap<DataType, keyof TensorProto> = new Map<DataType, keyof TensorProto>([
  [DataType.DT_FLOAT, "floatVal"],
  [DataType.DT_DOUBLE, "doubleVal"],
  [DataType.DT_INT32, "intVal"],
  [DataType.DT_INT64, "int64Val"],
  [DataType.DT_UINT32, "uint32Val"],
  [DataType.DT_UINT64, "uint64Val"],
  [DataType.DT_BOOL, "boolVal"],
]);

/**
 * The same tensor with its typed field's values in `tensor_content` (a copy; `t` is left as it
 * is), its buffer added to `transfer`; `t` itself when it has no such field or when the field
 * does not hold one value per element (a fill from fewer values stays as it is).
 */
function packed(t: TensorProto, transfer: ArrayBuffer[]): TensorProto {
  const field = VALUE_FIELD.get(t.dtype);
  if (field === undefined || t.tensorContent.byteLength > 0) return t;
  const values = t[field] as ArrayLike<number | bigint | boolean>;
  let n = 1;
  for (const d of t.tensorShape?.dim ?? []) n *= Number(d.size);
  if (values.length === 0 || values.length !== n) return t;
  const data = allocate(t.dtype, n);
  (data as unknown as { set(v: ArrayLike<unknown>): void }).set(values);
  // Never a slab tiny arrays share (tensor/arena.ts): moving it would empty the others.
  if (!isSlab(data.buffer)) transfer.push(data.buffer as ArrayBuffer);
  return { ...t, [field]: [], tensorContent: toBytes(data) };
}

function toError(e: CodecError): ServingError {
  return new ServingError(e.code, e.message);
}

/** The JSON codec workers of a REST handler. */
export class JsonCodec {
  readonly #max: number;
  readonly #slots: Slot[] = [];
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #closed = false;
  /** Set once a worker could not start: everything is done inline from then on. */
  #unavailable = false;

  /** How many workers are running now (idle ones end after a while). */
  get workers(): number {
    return this.#slots.length;
  }

  /** @param workers how many workers at most (default: the cores, at most 2) */
  constructor(workers: number = DEFAULT_WORKERS) {
    this.#max = Math.max(1, workers);
  }

  /**
   * Decodes a Predict body as `fillPredictRequestFromJson` does, on a worker.
   *
   * @param body the body; transferred (emptied) when it is the whole of its buffer
   * @param signatureName the model spec's signature name before the body is read
   * @param signatures input types per signature of the version the request resolves to
   * @param lookupError what that lookup failed with (thrown where upstream looks it up)
   * @returns the decoded request (rejects with the same ServingError as the inline path), or
   *   undefined when no worker can run it
   */
  decodePredict(
    body: Uint8Array,
    signatureName: string,
    signatures: ReadonlyMap<string, ReadonlyMap<string, DataType>> | undefined,
    lookupError: ServingError | undefined,
  ): Promise<DecodedPredict> | undefined {
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength &&
      body.buffer instanceof ArrayBuffer;
    const sent = owned ? body : body.slice();
    return this.#post(
      {
        type: "decode",
        job: 0,
        body: sent,
        signatureName,
        signatures,
        lookupError: lookupError && { code: lookupError.code, message: lookupError.message },
      },
      [sent.buffer as ArrayBuffer],
      (m) => {
        if (!("decoded" in m)) throw new ServingError(Code.INTERNAL, "Bad codec answer");
        return m.decoded;
      },
    );
  }

  /**
   * Encodes a Predict response as `makeJsonFromTensors` does, on a worker.
   *
   * @returns the JSON bytes (the UTF-8 of what the inline path returns; rejects with the same
   *   ServingError), or undefined when no worker can run it
   */
  encodePredict(
    outputs: Readonly<Record<string, TensorProto>>,
    format: JsonPredictRequestFormat,
  ): Promise<Uint8Array> | undefined {
    // The typed fields (a JS array per tensor, as Predict fills them) would be cloned element
    // by element on this thread; packed into tensor_content they are transferred at once.
    const transfer: ArrayBuffer[] = [];
    const sent: Record<string, TensorProto> = {};
    for (const [name, t] of Object.entries(outputs)) sent[name] = packed(t, transfer);
    return this.#post({ type: "encode", job: 0, outputs: sent, format }, transfer, (m) => {
      if (!("encoded" in m)) throw new ServingError(Code.INTERNAL, "Bad codec answer");
      return m.encoded;
    });
  }

  #post<T>(
    message: ToCodec,
    transfer: Transferable[],
    take: (m: FromCodec) => T,
  ): Promise<T> | undefined {
    if (this.#closed) {
      return Promise.reject(new ServingError(Code.UNAVAILABLE, "Server is shutting down"));
    }
    const slot = this.#slot();
    if (!slot) return undefined;
    const job = ++this.#next;
    const done = new Promise<FromCodec>((resolve, reject) =>
      this.#pending.set(job, { resolve, reject })
    );
    slot.jobs.add(job);
    clearTimeout(slot.idle);
    slot.worker.postMessage({ ...message, job }, transfer);
    return done.then((m) => {
      if ("error" in m) throw toError(m.error);
      return take(m);
    });
  }

  /** The least busy worker; a new one while all are busy and the pool is not full. */
  #slot(): Slot | undefined {
    if (this.#unavailable) return undefined;
    let best: Slot | undefined;
    for (const s of this.#slots) if (!best || s.jobs.size < best.jobs.size) best = s;
    if (best && (best.jobs.size === 0 || this.#slots.length >= this.#max)) return best;
    let worker: Worker;
    try {
      // A static specifier, so `deno compile` (scripts/compile.ts --include) bundles it.
      worker = new Worker(new URL("./codec_worker.ts", import.meta.url).href, { type: "module" });
    } catch {
      if (best) return best;
      this.#unavailable = true;
      return undefined;
    }
    const slot: Slot = { worker, jobs: new Set(), answered: false };
    worker.onmessage = (e: MessageEvent<FromCodec>) => {
      slot.answered = true;
      slot.jobs.delete(e.data.job);
      if (slot.jobs.size === 0) slot.idle = setTimeout(() => this.#retire(slot), IDLE_MS);
      const p = this.#pending.get(e.data.job);
      this.#pending.delete(e.data.job);
      p?.resolve(e.data);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(slot, e.message);
    };
    worker.onmessageerror = () => this.#fail(slot, "a message could not be read");
    this.#slots.push(slot);
    return slot;
  }

  /** Ends an idle worker (its memory goes with it); the next job starts a new one. */
  #retire(slot: Slot): void {
    if (slot.jobs.size > 0) return;
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots.splice(i, 1);
    slot.worker.terminate();
  }

  /** A worker stopped: its jobs fail, the next job starts a new one. */
  #fail(slot: Slot, why: string): void {
    const i = this.#slots.indexOf(slot);
    if (i >= 0) this.#slots.splice(i, 1);
    clearTimeout(slot.idle);
    // One that never started (its module cannot load here) would fail again: inline from now.
    if (!slot.answered) this.#unavailable = true;
    slot.worker.terminate();
    this.#settleAll(
      slot.jobs,
      new ServingError(Code.INTERNAL, `JSON codec worker stopped: ${why}`),
    );
  }

  #settleAll(jobs: Iterable<number>, error: ServingError): void {
    for (const job of [...jobs]) {
      const p = this.#pending.get(job);
      this.#pending.delete(job);
      p?.reject(error);
    }
  }

  /** Stops the workers; jobs not answered fail with UNAVAILABLE. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots.splice(0)) {
      clearTimeout(slot.idle);
      slot.worker.terminate();
    }
    this.#settleAll(
      [...this.#pending.keys()],
      new ServingError(Code.UNAVAILABLE, "Server is shutting down"),
    );
  }
}
