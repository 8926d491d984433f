/**
 * What gRPC needs of a protobuf-es schema on either side of a call: a method's HTTP/2 path and a
 * message's wire bytes as the Buffer grpc-js takes. Shared by the server's transport (src/api/grpc/)
 * and the clients (src/client/), which must not depend on each other.
 *
 * @module
 */
import { type DescMessage, type DescMethod, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Buffer } from "node:buffer";

/**
 * The HTTP/2 path of a method, e.g. `/tensorflow.serving.PredictionService/Predict`.
 *
 * @param method a method descriptor (`PredictionService.method.predict`)
 */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/**
 * Encodes a message into a Buffer without copying (grpc-js wants a Buffer).
 *
 * @param schema the message schema
 * @param message the message
 * @returns the wire bytes
 */
export function encodeMessage<D extends DescMessage>(schema: D, message: MessageShape<D>): Buffer {
  const bytes = toBinary(schema, message);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
