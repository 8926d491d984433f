/**
 * The two places a canonical {@link Code} leaves the server: as a gRPC status (the same number)
 * and as an HTTP status for the REST API.
 *
 * @module
 */
import { Code } from "../errors.ts";

/**
 * The gRPC status number of a canonical code. The canonical codes are gRPC's, so this is the
 * identity; it exists so the transport says where the mapping happens.
 *
 * @param code a canonical code
 * @returns the gRPC status code
 */
export function grpcStatus(code: Code): number {
  return code;
}

/**
 * HTTP status per canonical code, exactly as TF Serving's REST server maps them
 * (`ToHTTPStatusCode` in tensorflow_serving/model_servers/http_server.cc, with the numbers of
 * tensorflow_serving/util/net_http/server/public/response_code_enum.h).
 */
const HTTP_STATUS: Readonly<Record<Code, number>> = {
  [Code.OK]: 200, // OK
  [Code.CANCELLED]: 499, // CLIENT_CLOSED_REQUEST (nginx)
  [Code.UNKNOWN]: 500, // ERROR
  [Code.INVALID_ARGUMENT]: 400, // BAD_REQUEST
  [Code.DEADLINE_EXCEEDED]: 504, // GATEWAY_TO
  [Code.NOT_FOUND]: 404, // NOT_FOUND
  [Code.ALREADY_EXISTS]: 409, // CONFLICT
  [Code.PERMISSION_DENIED]: 403, // FORBIDDEN
  [Code.RESOURCE_EXHAUSTED]: 429, // TOO_MANY_REQUESTS
  [Code.FAILED_PRECONDITION]: 400, // BAD_REQUEST
  [Code.ABORTED]: 409, // CONFLICT
  [Code.OUT_OF_RANGE]: 400, // BAD_REQUEST
  [Code.UNIMPLEMENTED]: 501, // NOT_IMP
  [Code.INTERNAL]: 500, // ERROR
  [Code.UNAVAILABLE]: 503, // SERVICE_UNAV
  [Code.DATA_LOSS]: 500, // ERROR
  [Code.UNAUTHENTICATED]: 401, // UNAUTHORIZED
};

/**
 * The HTTP status TF Serving's REST API answers for a canonical code; anything outside the
 * enum is 500, as upstream's sentinel cases are.
 *
 * @example
 * ```ts
 * httpStatus(Code.NOT_FOUND); // 404
 * httpStatus(Code.FAILED_PRECONDITION); // 400
 * ```
 * @param code a canonical code
 * @returns the HTTP status code
 */
export function httpStatus(code: Code): number {
  return HTTP_STATUS[code] ?? 500;
}
