/**
 * grpc-js service definitions built from protobuf-es `GenService` descriptors, so the transport
 * needs no generated gRPC stubs: a method's path is `/<package>.<Service>/<Method>` and its
 * messages go through `toBinary` / `fromBinary`.
 *
 * A request that does not decode is not thrown from the deserializer (grpc-js would answer
 * INTERNAL "Error deserializing request"); it decodes to {@link UNDECODABLE} and the handler
 * answers what the C++ server (TF Serving) answers: grpc++'s `GenericDeserialize` returns
 * `Status(INTERNAL, msg->InitializationErrorString())`, and for a proto3 message that string is
 * empty (no required fields), so the status is INTERNAL with an empty message.
 *
 * Requests are parsed as C++ protobuf parses them (src/proto/binary.ts: a field with an
 * unexpected wire type is an unknown field, unknown fields are dropped, nesting stops at 100),
 * and what the decoded message may cost in memory is bounded by the decode limits
 * (src/tensor/limits.ts): over it, the request is refused with RESOURCE_EXHAUSTED before more
 * is built ({@link RefusedRequest}).
 *
 * @module
 */
import {
  type DescMessage,
  type DescMethod,
  fromBinary,
  type MessageShape,
} from "@bufbuild/protobuf";
import { decodeBinary, WireDecodeError } from "../../proto/binary.ts";
import { encodeMessage, methodPath } from "../../proto/rpc.ts";
import {
  type DecodeLimits,
  DEFAULT_DECODE_LIMITS,
  MESSAGE_COST_FACTOR,
  messageDecodeAllowance,
} from "../../tensor/limits.ts";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { MethodDefinition } from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { Code } from "../../errors.ts";

/** What a request decodes to when its bytes are not a valid message. */
export const UNDECODABLE: unique symbol = Symbol("undecodable request");

/** A request that parses but is refused before it is decoded whole (over a decode limit). */
export class RefusedRequest {
  /** @param status the status to answer */
  constructor(readonly status: { readonly code: number; readonly details: string }) {}
}

/** A decoded request, {@link UNDECODABLE}, or a {@link RefusedRequest}. */
export type Decoded<T> = T | typeof UNDECODABLE | RefusedRequest;

/**
 * The status grpc++ gives a request it cannot parse: INTERNAL with the message's
 * `InitializationErrorString()`, which is empty for proto3 messages.
 */
export const UNDECODABLE_STATUS: { readonly code: number; readonly details: string } = {
  code: Code.INTERNAL,
  details: "",
};

/** The request message type of a method descriptor. */
export type MethodInput<M extends Pick<DescMethod, "input">> = MessageShape<M["input"]>;
/** The response message type of a method descriptor. */
export type MethodOutput<M extends Pick<DescMethod, "output">> = MessageShape<M["output"]>;

/**
 * A grpc-js service definition keyed by the methods' local names (`predict`, `getModelStatus`);
 * requests decode to {@link Decoded}.
 */
export type GrpcServiceDefinition<S extends GenServiceMethods> = {
  readonly [K in keyof S]: MethodDefinition<Decoded<MethodInput<S[K]>>, MethodOutput<S[K]>>;
};

/**
 * Decodes wire bytes as C++ protobuf would, or returns {@link UNDECODABLE} when they are not a
 * valid message, or a {@link RefusedRequest} (RESOURCE_EXHAUSTED) when decoding them would cost
 * more memory than the limits allow.
 *
 * @param schema the message schema
 * @param bytes the wire bytes
 * @param limits the decode limits (defaults when omitted)
 */
export function decodeRequest<D extends DescMessage>(
  schema: D,
  bytes: Uint8Array,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): Decoded<MessageShape<D>> {
  const maxCost = messageDecodeAllowance(bytes.length, limits);
  try {
    return decodeBinary(schema, bytes, { maxCost });
  } catch (e) {
    if (e instanceof WireDecodeError && e.overLimit) {
      return new RefusedRequest({
        code: Code.RESOURCE_EXHAUSTED,
        details: `Cannot decode ${schema.typeName} of ${bytes.length} bytes: it would need ` +
          `more than ${maxCost} bytes of memory (max(--tensor_expansion_floor_bytes=` +
          `${limits.expansionFloorBytes}, ${MESSAGE_COST_FACTOR} × --max_tensor_expansion=` +
          `${limits.maxExpansion} × its bytes), at most --max_request_decoded_bytes=` +
          `${limits.maxRequestBytes})`,
      });
    }
    return UNDECODABLE;
  }
}

/**
 * Builds the grpc-js service definition of a protobuf-es service.
 *
 * @example
 * ```ts
 * const def = grpcServiceDefinition(PredictionService);
 * def.predict.path; // "/tensorflow.serving.PredictionService/Predict"
 * server.addService(def, { predict: (call, cb) => ... });
 * ```
 * @param service a generated service descriptor
 * @param limits bounds on what decoding a request may allocate (defaults when omitted)
 * @returns one method definition per RPC, keyed by local name
 */
export function grpcServiceDefinition<S extends GenServiceMethods>(
  service: GenService<S>,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): GrpcServiceDefinition<S> {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
      // Nothing here serves one; refuse loudly rather than build a wrong definition.
      throw new Error(`Cannot build a definition for ${methodPath(method)}: streaming requests`);
    }
    const input = method.input;
    const output = method.output;
    def[method.localName] = {
      path: methodPath(method),
      originalName: method.localName,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      requestSerialize: (m: unknown) => {
        if (m === UNDECODABLE || m instanceof RefusedRequest) {
          throw new Error("Cannot serialize an undecodable request");
        }
        return encodeMessage(input, m as MessageShape<typeof input>);
      },
      requestDeserialize: (b: Buffer) => decodeRequest(input, b, limits),
      responseSerialize: (m: unknown) => encodeMessage(output, m as MessageShape<typeof output>),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
    };
  }
  return def as unknown as GrpcServiceDefinition<S>;
}
