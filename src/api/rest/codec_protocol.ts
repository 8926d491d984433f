/**
 * The messages between the REST handler and its JSON codec workers (codec_worker.ts): a big
 * Predict body to decode into tensors, or a big Predict response to encode to JSON bytes.
 *
 * @module
 */
import type { TensorProto } from "../../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import type { Code } from "../../errors.ts";
import type { DataType } from "../../tensor/dtype.ts";
import type { JsonPredictRequestFormat } from "./json_tensor.ts";

/** A ServingError across the worker boundary. */
export interface CodecError {
  /** The status code. */
  readonly code: Code;
  /** The message a client sees. */
  readonly message: string;
}

/** Main isolate → codec worker. */
export type ToCodec =
  | {
    readonly type: "decode";
    readonly job: number;
    /** The Predict body (transferred). */
    readonly body: Uint8Array;
    /** The model spec's signature name before the body is read (the default when absent). */
    readonly signatureName: string;
    /** Input types per signature of the version the spec resolves to (absent: `lookupError`). */
    readonly signatures?: ReadonlyMap<string, ReadonlyMap<string, DataType>>;
    /** What that lookup failed with, thrown where `GetInfoMap` would be called. */
    readonly lookupError?: CodecError;
  }
  | {
    readonly type: "encode";
    readonly job: number;
    /** The Predict response's outputs. */
    readonly outputs: Readonly<Record<string, TensorProto>>;
    readonly format: JsonPredictRequestFormat;
  };

/** Codec worker → main isolate: one answer per job. */
export type FromCodec =
  | { readonly job: number; readonly error: CodecError }
  | {
    readonly job: number;
    readonly decoded: {
      readonly format: JsonPredictRequestFormat;
      /** The spec's signature name after the body's `signature_name`. */
      readonly signatureName: string;
      readonly inputs: Record<string, TensorProto>;
    };
  }
  | {
    readonly job: number;
    /** The response's JSON bytes (transferred). */
    readonly encoded: Uint8Array;
  };
