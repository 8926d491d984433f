/**
 * Bounds on what decoding a request may allocate: shapes are checked as TensorFlow's
 * `TensorShape::IsValidShape` does (rank ≤ 254, an int64 element count), and the bytes a tensor
 * decodes to are compared with a limit **before** anything is allocated.
 *
 * Why these limits. A TensorProto's typed fields may hold fewer values than its shape needs
 * (TensorFlow repeats the last value, or fills zeros when there is none), so 41 bytes can
 * declare a 2 GB tensor. A tensor whose values are all written out decodes to at most 12 times
 * its encoded size (an empty `string_val` entry is 2 bytes on the wire and one 24-byte string
 * slot; a one-byte varint `int64_val` is 8 bytes; everything else less), so:
 *
 * - a tensor may decode to at most `max(expansionFloorBytes, maxExpansion × its encoded bytes)`:
 *   with the default ratio of 16 every fully written tensor passes whatever its size, and the
 *   repeat rule still builds tensors up to the floor (16 MiB: a [1,1024,1024,4] float image of
 *   zeros) from a few bytes;
 * - all tensors of one request together decode to at most `maxRequestBytes` (1 GiB): the gRPC
 *   receive limit is INT_MAX as upstream's, and half of that decoded and held at once is already
 *   more than a shared host should give one call.
 *
 * Over a limit is RESOURCE_EXHAUSTED naming the tensor and the limit.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";

/** TensorFlow's `TensorShape::MaxDimensions()` (`kMaxRep16`-based: 254). */
export const MAX_DIMS = 254;

/** Bytes one DT_STRING element counts for: `sizeof(tstring)` in TensorFlow. */
export const STRING_ELEMENT_BYTES = 24;

/** The decode limits of the server (`--max_request_decoded_bytes`, …). */
export interface DecodeLimits {
  /** All tensors of one request decode to at most this many bytes (and so does each one). */
  readonly maxRequestBytes: number;
  /** A tensor may decode to at most this multiple of its encoded bytes … */
  readonly maxExpansion: number;
  /** … or to this many bytes, whichever is larger. */
  readonly expansionFloorBytes: number;
}

/** The defaults: 1 GiB per request, 16× the encoded bytes or 16 MiB per tensor. */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = Object.freeze({
  maxRequestBytes: 1 << 30,
  maxExpansion: 16,
  expansionFloorBytes: 16 << 20,
});

/**
 * The decode allowance of one request: every tensor decoded for it is charged here before its
 * storage is allocated.
 *
 * @example
 * ```ts
 * const budget = new DecodeBudget(DEFAULT_DECODE_LIMITS);
 * budget.charge('input "x"', 400_000_000, 41); // throws RESOURCE_EXHAUSTED
 * ```
 */
export class DecodeBudget {
  #used = 0;

  /** @param limits the server's limits (defaults when omitted) */
  constructor(readonly limits: DecodeLimits = DEFAULT_DECODE_LIMITS) {}

  /** Bytes charged so far. */
  get used(): number {
    return this.#used;
  }

  /**
   * Charges a tensor's decoded size, or fails when it is over a limit.
   *
   * @param what names the tensor in the message (`input "x"`)
   * @param decodedBytes what the tensor will hold once decoded (may exceed 2^53: then it is
   *   approximate but certainly over)
   * @param encodedBytes what it took on the wire (a lower bound is fine)
   * @throws ServingError RESOURCE_EXHAUSTED naming the tensor and the limit
   */
  charge(what: string, decodedBytes: number, encodedBytes: number): void {
    const { maxRequestBytes, maxExpansion, expansionFloorBytes } = this.limits;
    const allowed = Math.min(
      maxRequestBytes,
      Math.max(expansionFloorBytes, maxExpansion * encodedBytes),
    );
    if (decodedBytes > allowed) {
      const which = decodedBytes > maxRequestBytes
        ? `the limit of ${maxRequestBytes} bytes per request (--max_request_decoded_bytes)`
        : `the limit of ${allowed} bytes for a tensor of ${encodedBytes} encoded bytes ` +
          `(max(--tensor_expansion_floor_bytes=${expansionFloorBytes}, ` +
          `--max_tensor_expansion=${maxExpansion} × encoded bytes))`;
      throw new ServingError(
        Code.RESOURCE_EXHAUSTED,
        `Cannot decode ${what}: it needs ${bytesText(decodedBytes)} bytes, over ${which}`,
      );
    }
    if (this.#used + decodedBytes > maxRequestBytes) {
      throw new ServingError(
        Code.RESOURCE_EXHAUSTED,
        `Cannot decode ${what}: with it the request's tensors need ${
          bytesText(this.#used + decodedBytes)
        } bytes, over the limit of ${maxRequestBytes} bytes per request ` +
          `(--max_request_decoded_bytes)`,
      );
    }
    this.#used += decodedBytes;
  }
}

/**
 * Protobuf messages cost more in a JS heap than their tensors hold: an `int64_val` value is a
 * 24-byte BigInt behind an 8-byte slot (32 times a one-byte varint), an empty `string_val` a
 * typed-array view (about 50 times its 2 bytes). A parsed message may therefore cost this many
 * times the tensor expansion ratio per wire byte, so that every well-formed tensor still parses.
 */
export const MESSAGE_COST_FACTOR = 4;

/**
 * The memory a protobuf message of `size` wire bytes (a gRPC request, a warmup record) may cost
 * once parsed: `max(floor, MESSAGE_COST_FACTOR × maxExpansion × size)`, at most a request's cap.
 *
 * @example
 * ```ts
 * messageDecodeAllowance(41, DEFAULT_DECODE_LIMITS); // 16777216 (the floor)
 * ```
 */
export function messageDecodeAllowance(size: number, limits: DecodeLimits): number {
  return Math.min(
    limits.maxRequestBytes,
    Math.max(limits.expansionFloorBytes, MESSAGE_COST_FACTOR * limits.maxExpansion * size),
  );
}

/** An integer byte count as digits (no exponent, even past 2^53). */
function bytesText(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : BigInt(Math.round(n)).toString();
}

const INT64_MAX = (1n << 63n) - 1n;

/** TensorFlow's `TensorShapeRep::DebugString(proto)`: `[2,3]`, `?` for -1, `<unknown>`. */
export function shapeDebugString(dims: readonly bigint[], unknownRank = false): string {
  if (unknownRank && dims.length === 0) return "<unknown>";
  return `${unknownRank ? "<unknown>" : ""}[${dims.map((d) => d === -1n ? "?" : d).join(",")}]`;
}

/**
 * Checks a declared shape as TensorFlow's `TensorShape::IsValidShape` (non-partial) and returns
 * its element count, computed without overflow before anything is allocated.
 *
 * @param dims the dimension sizes as the proto holds them (int64)
 * @returns the element count; exact when ≤ 2^53, else a double that is certainly over any limit
 * @throws ServingError INVALID_ARGUMENT with TensorFlow's words: `Shape [..] has too many
 *   dimensions`, `… is not fully defined`, `… is too large (more than 2**63 - 1 entries)`
 */
export function checkedElementCount(dims: readonly bigint[]): number {
  if (dims.length > MAX_DIMS) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Shape ${shapeDebugString(dims)} has too many dimensions`,
    );
  }
  let n = 1n;
  for (const d of dims) {
    if (d < 0n) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Shape ${shapeDebugString(dims)} is not fully defined`,
      );
    }
    // MultiplyWithoutOverflow, in the proto's order: [2^32, 2^32, 0] overflows before the 0.
    n *= d;
    if (n > INT64_MAX) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Shape ${shapeDebugString(dims)} is too large (more than 2**63 - 1 entries)`,
      );
    }
  }
  return Number(n);
}
