/**
 * TF Serving's request batching (`--enable_batching`): concurrent calls of one signature (one
 * RunTarget of one version) are concatenated on the 0th dimension, run once, and the outputs
 * split back — `tensorflow_serving/batching/batching_session.cc` over TF's
 * `SharedBatchScheduler` queues, with their parameters (`BatchingParameters`, read from
 * `--batching_parameters_file`) and their messages.
 *
 * - A queue holds at most `max_enqueued_batches` batches of at most `max_batch_size` rows; the
 *   last one is open. A call that does not fit the open batch closes it and opens another; when
 *   none may be opened it is refused: UNAVAILABLE "The batch scheduling queue to which this task
 *   was submitted is full". A call with more rows than `max_batch_size` is INVALID_ARGUMENT.
 * - A closed batch, or the open one once full or `batch_timeout_micros` old, is processed as soon
 *   as one of `num_batch_threads` is free (here: a slot of concurrently processed batches; the
 *   run itself goes inline or to a worker as any other call).
 * - Inputs of a call must have rank ≥ 1 and one 0th-dimension size. Calls whose other
 *   dimensions differ are refused with upstream's message, unless `pad_variable_length_inputs`
 *   pads each to the largest size (with its own first element, as upstream's Eigen pad does).
 * - With `allowed_batch_sizes`, a batch is padded to the next allowed size with copies of the
 *   last call's first row; the padding rows' outputs are dropped.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { allocate, DataType, type NumericArray } from "../tensor/dtype.ts";
import { sizeOf, Tensor } from "../tensor/tensor.ts";

/** BatchingParameters (session_bundle_config.proto), with upstream's defaults filled in. */
export interface BatchingParameters {
  /** Rows per batch (SharedBatchScheduler default 1000). */
  readonly maxBatchSize: number;
  /** How long an open batch waits for more calls (default 0). */
  readonly batchTimeoutMicros: number;
  /** Batches a queue holds before refusing calls (default 10). */
  readonly maxEnqueuedBatches: number;
  /** Batches processed at once (default: CPUs). */
  readonly numBatchThreads: number;
  /** `thread_pool_name` (default `batch_threads`; reported, not used). */
  readonly threadPoolName: string;
  /** Sizes a batch is padded up to (empty: none). */
  readonly allowedBatchSizes: readonly number[];
  /** Pad inputs whose non-batch dimensions differ (default false). */
  readonly padVariableLengthInputs: boolean;
}

/** Upstream's defaults (SharedBatchScheduler::Options and QueueOptions). */
export function defaultBatchingParameters(): BatchingParameters {
  return {
    maxBatchSize: 1000,
    batchTimeoutMicros: 0,
    maxEnqueuedBatches: 10,
    numBatchThreads: Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1),
    // What model_servers/server.cc names the pool when no parameters file is given.
    threadPoolName: "model_server_batch_threads",
    allowedBatchSizes: [],
    padVariableLengthInputs: false,
  };
}

const WRAPPED_INT = new Map(
  [
    ["max_batch_size", "maxBatchSize"],
    ["batch_timeout_micros", "batchTimeoutMicros"],
    ["max_enqueued_batches", "maxEnqueuedBatches"],
    ["num_batch_threads", "numBatchThreads"],
  ] as const,
);

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/**
 * Parses a BatchingParameters text proto (`max_batch_size { value: 128 }`,
 * `allowed_batch_sizes: 32`, `pad_variable_length_inputs: true`, …) and checks it as upstream
 * does when it builds the batching session.
 *
 * @throws ServingError INVALID_ARGUMENT for an unknown field, a malformed value, or an invalid
 *   combination (upstream's messages)
 */
export function parseBatchingParameters(text: string): BatchingParameters {
  const p: { -readonly [K in keyof BatchingParameters]: BatchingParameters[K] } = {
    ...defaultBatchingParameters(),
    threadPoolName: "batch_threads",
    allowedBatchSizes: [],
  };
  const src = text.replace(/#[^\n]*/g, "");
  const token =
    /\s*(?:([A-Za-z_][A-Za-z0-9_]*)\s*(:?)\s*(\{\s*value\s*:?\s*("(?:[^"\\]|\\.)*"|[^\s}]+)\s*\}|"(?:[^"\\]|\\.)*"|[^\s{}]+)|(\S))/gy;
  let m: RegExpExecArray | null;
  const allowed: number[] = [];
  while ((m = token.exec(src)) !== null) {
    if (m[6] !== undefined) throw invalid(`Cannot parse batching parameters near "${m[6]}"`);
    const [, field, , raw, wrapped] = m;
    const value = wrapped ?? raw;
    const int = () => {
      if (!/^-?\d+$/.test(value)) {
        throw invalid(
          `Cannot parse batching parameters: ${field} must be an integer, got ${value}`,
        );
      }
      return Number(value);
    };
    const key = WRAPPED_INT.get(field as never);
    if (key !== undefined) {
      if (wrapped === undefined) {
        throw invalid(`Cannot parse batching parameters: ${field} takes { value: N }`);
      }
      p[key] = int();
    } else if (field === "thread_pool_name") {
      if (wrapped === undefined) {
        throw invalid(`Cannot parse batching parameters: ${field} takes { value: "…" }`);
      }
      p.threadPoolName = JSON.parse(value);
    } else if (field === "allowed_batch_sizes") {
      allowed.push(int());
    } else if (field === "pad_variable_length_inputs") {
      if (value !== "true" && value !== "false") {
        throw invalid(`Cannot parse batching parameters: ${field} must be true or false`);
      }
      p.padVariableLengthInputs = value === "true";
    } else {
      throw invalid(`Cannot parse batching parameters: unknown field "${field}"`);
    }
  }
  p.allowedBatchSizes = allowed;
  if (p.maxBatchSize <= 0) {
    throw invalid(`max_batch_size must be positive; was ${p.maxBatchSize}`);
  }
  if (p.batchTimeoutMicros < 0) {
    throw invalid(`batch_timeout_micros must be non-negative; was ${p.batchTimeoutMicros}`);
  }
  if (p.maxEnqueuedBatches < 0) {
    throw invalid(`max_enqueued_batches must be non-negative; was ${p.maxEnqueuedBatches}`);
  }
  if (p.numBatchThreads < 1) {
    throw invalid(`num_batch_threads must be positive; was ${p.numBatchThreads}`);
  }
  if (allowed.length > 0 && allowed[allowed.length - 1] !== p.maxBatchSize) {
    throw invalid(
      `Last entry in allowed_batch_sizes must match max_batch_size; last entry was ${
        allowed[allowed.length - 1]
      }; expected ${p.maxBatchSize}`,
    );
  }
  for (let i = 1; i < allowed.length; i++) {
    if (allowed[i] <= allowed[i - 1]) {
      throw invalid("allowed_batch_sizes entries must be monotonically increasing");
    }
  }
  return p;
}

/** Reads `--batching_parameters_file`. */
export async function readBatchingParametersFile(path: string): Promise<BatchingParameters> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot read batching parameters file ${path}: ${(e as Error).message}`,
    );
  }
  try {
    return parseBatchingParameters(text);
  } catch (e) {
    throw ServingError.from(e).withPrefix(`In ${path}: `);
  }
}

/**
 * Upstream's `ComputeTensorBatchSize`: the common 0th-dimension size of a call's inputs.
 *
 * @throws ServingError INVALID_ARGUMENT with upstream's messages
 */
export function taskSize(feeds: readonly Tensor[]): number {
  if (feeds.length === 0) {
    throw invalid("Batching Run() must have at least one input tensor");
  }
  let size = -1;
  for (const t of feeds) {
    if (t.rank < 1) {
      throw invalid("Batching Run() input tensors must have at least one dimension");
    }
    if (size >= 0 && t.shape[0] !== size) {
      throw invalid("Batching Run() input tensors must have equal 0th-dimension size");
    }
    size = t.shape[0];
  }
  return size;
}

/** Upstream's `RoundToLowestAllowedBatchSize`. */
export function roundToAllowedBatchSize(allowed: readonly number[], size: number): number {
  for (const a of allowed) if (a >= size) return a;
  return size;
}

/** Rows `[from, from + count)` of a tensor (numeric storage is a view). */
export function sliceRows(t: Tensor, from: number, count: number): Tensor {
  const row = t.shape[0] === 0 ? 0 : t.size / t.shape[0];
  const shape = [count, ...t.shape.slice(1)];
  const data = t.data;
  const begin = from * row;
  const end = (from + count) * row;
  if (Array.isArray(data)) return new Tensor(t.dtype, shape, data.slice(begin, end) as never);
  return new Tensor(t.dtype, shape, (data as NumericArray).subarray(begin, end) as NumericArray);
}

/** Upstream's `AddPadding`: grows dims ≥ 1 to `max`, filling with the tensor's first element. */
function padTo(t: Tensor, max: readonly number[]): Tensor {
  if (t.shape.every((d, i) => i === 0 || d === max[i])) return t;
  if (t.dtype === DataType.DT_STRING || t.dtype === DataType.DT_RESOURCE) {
    throw invalid("Unsupported type");
  }
  const shape = t.shape.map((d, i) => (i === 0 ? d : max[i]));
  const src = t.data as NumericArray;
  const out = allocate(t.dtype, sizeOf(shape)) as Float64Array;
  if (src.length > 0) out.fill(src[0] as number);
  // Copy each source element to its place in the larger shape.
  const rank = shape.length;
  const srcStrides = new Array<number>(rank);
  const dstStrides = new Array<number>(rank);
  srcStrides[rank - 1] = 1;
  dstStrides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) {
    srcStrides[i] = srcStrides[i + 1] * t.shape[i + 1];
    dstStrides[i] = dstStrides[i + 1] * shape[i + 1];
  }
  for (let k = 0; k < src.length; k++) {
    let rest = k;
    let d = 0;
    for (let i = 0; i < rank; i++) {
      const c = Math.floor(rest / srcStrides[i]);
      rest -= c * srcStrides[i];
      d += c * dstStrides[i];
    }
    out[d] = src[k] as number;
  }
  return new Tensor(t.dtype, shape, out as unknown as NumericArray);
}

/** Concatenates tensors of one dtype and equal dims ≥ 1 on the 0th dimension. */
function concatRows(parts: readonly Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const first = parts[0];
  const rows = parts.reduce((n, t) => n + t.shape[0], 0);
  const shape = [rows, ...first.shape.slice(1)];
  if (Array.isArray(first.data)) {
    return new Tensor(first.dtype, shape, parts.flatMap((t) => t.data as Uint8Array[]));
  }
  const out = allocate(first.dtype, sizeOf(shape)) as Float32Array;
  let k = 0;
  for (const t of parts) {
    out.set(t.data as Float32Array, k);
    k += t.size;
  }
  return new Tensor(first.dtype, shape, out);
}

/** A batch's merged inputs and how to split its outputs back. */
export interface MergedBatch {
  /** One tensor per feed. */
  readonly feeds: Tensor[];
  /** Rows of each call, in order. */
  readonly sizes: readonly number[];
  /** Rows added to reach an allowed batch size. */
  readonly padding: number;
}

/**
 * Upstream's `MergeInputTensors`: concatenates the calls' feeds (each a list in target order).
 *
 * @throws ServingError FAILED_PRECONDITION when shapes differ and padding is off
 */
export function mergeInputs(
  calls: readonly (readonly Tensor[])[],
  sizes: readonly number[],
  names: readonly string[],
  params: BatchingParameters,
): MergedBatch {
  const total = sizes.reduce((a, b) => a + b, 0);
  const padding = roundToAllowedBatchSize(params.allowedBatchSizes, total) - total;
  const feeds: Tensor[] = [];
  for (let f = 0; f < calls[0].length; f++) {
    let parts = calls.map((c) => c[f]);
    const ref = parts[0];
    if (params.padVariableLengthInputs) {
      const max = ref.shape.map((_, i) => Math.max(...parts.map((t) => t.shape[i] ?? 0)));
      if (parts.some((t) => t.rank !== ref.rank)) {
        throw invalid("Only tensors with rank from 1 to 6 can be padded.");
      }
      parts = parts.map((t) => padTo(t, max));
    } else {
      for (const t of parts) {
        if (
          t.dtype !== ref.dtype || t.rank !== ref.rank ||
          t.shape.some((d, i) => i > 0 && d !== ref.shape[i])
        ) {
          throw new ServingError(
            Code.FAILED_PRECONDITION,
            `Tensors with name '${names[f]}' from different tasks have different shapes and ` +
              "padding is turned off. Set pad_variable_length_inputs to true, or ensure that " +
              "all tensors with the same name have equal dimensions starting with the first dim.",
          );
        }
      }
    }
    if (padding > 0) {
      const row = sliceRows(parts[parts.length - 1], 0, 1);
      parts = [...parts, ...Array.from({ length: padding }, () => row)];
    }
    feeds.push(concatRows(parts));
  }
  return { feeds, sizes, padding };
}

/**
 * Upstream's `SplitOutputTensors`: each call's rows of every output.
 *
 * @throws ServingError FAILED_PRECONDITION for an output without a batch dimension that fits
 */
export function splitOutputs(outputs: readonly Tensor[], batch: MergedBatch): Tensor[][] {
  const total = batch.sizes.reduce((a, b) => a + b, 0) + batch.padding;
  for (const t of outputs) {
    if (t.rank === 0) {
      throw new ServingError(Code.FAILED_PRECONDITION, "Batched output tensor has 0 dimensions");
    }
    if (t.shape[0] !== total) {
      throw new ServingError(
        Code.FAILED_PRECONDITION,
        "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension " +
          "sizes of the input tensors",
      );
    }
  }
  const result: Tensor[][] = [];
  let from = 0;
  for (const n of batch.sizes) {
    result.push(outputs.map((t) => sliceRows(t, from, n)));
    from += n;
  }
  return result;
}
