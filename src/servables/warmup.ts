/**
 * Model warmup, as TF Serving's `saved_model_warmup.cc`: before a version becomes AVAILABLE,
 * replay the requests logged in `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
 * PredictionLog records, at most 1000) so the first real request pays no first-call costs.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { decodeBinary, WireDecodeError } from "../proto/binary.ts";
import { DEFAULT_DECODE_LIMITS, messageDecodeAllowance } from "../tensor/limits.ts";
import { ClassificationRequestSchema } from "../proto/gen/tensorflow_serving/apis/classification_pb.ts";
import { MultiInferenceRequestSchema } from "../proto/gen/tensorflow_serving/apis/inference_pb.ts";
import { PredictRequestSchema } from "../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { RegressionRequestSchema } from "../proto/gen/tensorflow_serving/apis/regression_pb.ts";
import { PredictionLogSchema } from "../proto/gen/tensorflow_serving/apis/prediction_log_pb.ts";
import { Code, ServingError } from "../errors.ts";
import type { Model } from "../runtime/model.ts";
import { joinPath } from "../saved_model/reader.ts";
import { readTFRecords } from "../saved_model/tfrecord.ts";
import { classify } from "./classify.ts";
import type { ServableOptions } from "./model_spec.ts";
import { multiInference } from "./multi_inference.ts";
import { predict } from "./predict.ts";
import { regress } from "./regress.ts";
import { WARMUP_FILE } from "./warmup_file.ts";

export { WARMUP_FILE };
/** Upstream's limit on warmup records. */
export const MAX_WARMUP_RECORDS = 1000;

/** What runWarmup() needs besides the model. */
export interface WarmupOptions extends ServableOptions {
  /** The model's name and version, as requests will name them. */
  readonly modelName: string;
  readonly version: number;
  /** Times each record is replayed (`--num_request_iterations_for_warmup`; default 1). */
  readonly iterations?: number;
}

/**
 * Replays the warmup requests of a loaded version, if its directory has any.
 *
 * @returns how many records were replayed (0 when there is no warmup file)
 * @throws ServingError as upstream: DATA_LOSS for a bad TFRecord, INVALID_ARGUMENT for an
 *   unparsable record or too many, UNIMPLEMENTED for an unsupported log type, or the error of
 *   a replayed request
 */
export async function runWarmup(
  model: Model,
  exportDir: string,
  options: WarmupOptions,
): Promise<number> {
  const path = joinPath(exportDir, WARMUP_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0; // Warmup data is optional.
    throw new ServingError(Code.UNAVAILABLE, `Cannot read ${path}: ${(e as Error).message}`);
  }
  let records: Uint8Array[];
  try {
    records = readTFRecords(bytes, path, MAX_WARMUP_RECORDS);
  } catch (e) {
    const err = ServingError.from(e);
    throw new ServingError(
      err.code,
      `${err.message}. Please verify your warmup data is in TFRecord format.`,
    );
  }
  if (records.length > MAX_WARMUP_RECORDS) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Number of warmup records exceeds the maximum (${MAX_WARMUP_RECORDS}) at ${path}`,
    );
  }
  const iterations = Math.max(1, options.iterations ?? 1);
  const { modelName: name, version } = options;
  for (const record of records) {
    let log;
    try {
      // Parsed as the C++ server parses it, and bounded as a request is.
      const limits = options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
      log = decodeBinary(PredictionLogSchema, record, {
        maxCost: messageDecodeAllowance(record.length, limits),
      });
    } catch (e) {
      if (e instanceof WireDecodeError && e.overLimit) {
        throw new ServingError(
          Code.RESOURCE_EXHAUSTED,
          `Cannot decode a warmup record of ${record.length} bytes from ${path}: ${e.message}`,
        );
      }
      throw new ServingError(Code.INVALID_ARGUMENT, `Failed to parse warmup record from ${path}`);
    }
    for (let i = 0; i < iterations; i++) {
      const t = log.logType;
      switch (t.case) {
        case "regressLog":
          regress(
            model,
            version,
            name,
            t.value.request ?? create(RegressionRequestSchema),
            options,
          );
          break;
        case "classifyLog":
          classify(
            model,
            version,
            name,
            t.value.request ?? create(ClassificationRequestSchema),
            options,
          );
          break;
        case "predictLog":
          predict(model, version, name, t.value.request ?? create(PredictRequestSchema), options);
          break;
        case "multiInferenceLog":
          multiInference(
            model,
            version,
            name,
            t.value.request ?? create(MultiInferenceRequestSchema),
            options,
          );
          break;
        case "predictStreamedLog":
        case "sessionRunLog":
          throw new ServingError(
            Code.UNIMPLEMENTED,
            `Unsupported log_type for warmup: ${t.case}`,
          );
        default:
          break;
      }
    }
  }
  return records.length;
}
