/**
 * The one error type of the project. Every failure that reaches a client carries a canonical
 * gRPC status code; the transports map it to a gRPC status or an HTTP status at the edge only.
 *
 * @module
 */

/** Canonical status codes, numbered as in `google.rpc.Code` and `tensorflow.error.Code`. */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/**
 * An error with a canonical status code.
 *
 * @example
 * ```ts
 * throw new ServingError(Code.NOT_FOUND, 'Servable not found for request: Latest(foo)');
 * ```
 */
export class ServingError extends Error {
  /** The canonical status code. */
  readonly code: Code;

  /**
   * @param code the canonical status code
   * @param message the message a client sees
   * @param options the cause, if any
   */
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ServingError";
    this.code = code;
  }

  /**
   * Turns anything thrown into a ServingError: a ServingError is returned as it is, anything
   * else becomes INTERNAL (or `fallback`) with its message kept.
   */
  static from(e: unknown, fallback: Code = Code.INTERNAL): ServingError {
    if (e instanceof ServingError) return e;
    const message = e instanceof Error ? e.message : String(e);
    return new ServingError(fallback, message, { cause: e });
  }

  /** Returns a copy of this error whose message has `prefix` in front, keeping the code. */
  withPrefix(prefix: string): ServingError {
    return new ServingError(this.code, `${prefix}${this.message}`, { cause: this });
  }
}

/** Shorthand for `new ServingError(Code.INVALID_ARGUMENT, message)`. */
export function invalidArgument(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}
