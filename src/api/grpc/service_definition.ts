/**
 * Method definitions built from protobuf-es `GenService` descriptors, so the transport needs no
 * generated gRPC stubs (a method's path is `/<package>.<Service>/<Method>`), and the request
 * decoder.
 *
 * A request that does not decode is not an exception: it decodes to {@link UNDECODABLE} and the
 * handler
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
import type { DescMessage, DescMethod, MessageShape } from "@bufbuild/protobuf";
import { decodeBinary, WireDecodeError } from "../../proto/binary.ts";
import {
  type DecodeLimits,
  DEFAULT_DECODE_LIMITS,
  MESSAGE_COST_FACTOR,
  messageDecodeAllowance,
} from "../../tensor/limits.ts";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
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
 * A method's HTTP/2 path (as src/proto/rpc.ts `methodPath`, which the clients use; not imported
 * from there because that module brings `node:buffer` for grpc-js).
 */
function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** One method of a service as the transport routes it. */
export interface GrpcMethodDefinition<M extends DescMethod = DescMethod> {
  /** The HTTP/2 path, `/<package>.<Service>/<Method>`. */
  readonly path: string;
  /** Whether the answer is a stream of messages (Health/Watch). */
  readonly responseStream: boolean;
  /** The request and response message schemas. */
  readonly input: M["input"];
  readonly output: M["output"];
}

/** A service's method definitions keyed by the methods' local names (`predict`, …). */
export type GrpcServiceDefinition<S extends GenServiceMethods> = {
  readonly [K in keyof S]: GrpcMethodDefinition<S[K] & DescMethod>;
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
 * The method definitions of a protobuf-es service: paths and message schemas.
 *
 * @example
 * ```ts
 * const def = grpcServiceDefinition(PredictionService);
 * def.predict.path; // "/tensorflow.serving.PredictionService/Predict"
 * ```
 * @param service a generated service descriptor
 * @returns one method definition per RPC, keyed by local name
 * @throws Error for a client-streaming or bidirectional method (nothing here serves one)
 */
export function grpcServiceDefinition<S extends GenServiceMethods>(
  service: GenService<S>,
): GrpcServiceDefinition<S> {
  const def: Record<string, GrpcMethodDefinition> = {};
  for (const method of service.methods) {
    if (method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming") {
      // Nothing here serves one; refuse loudly rather than build a wrong definition.
      throw new Error(`Cannot build a definition for ${methodPath(method)}: streaming requests`);
    }
    def[method.localName] = {
      path: methodPath(method),
      responseStream: method.methodKind === "server_streaming",
      input: method.input,
      output: method.output,
    };
  }
  return def as unknown as GrpcServiceDefinition<S>;
}
