/**
 * HTTP/2 framing (RFC 9113 §4, §6): frame types, flags, error codes, settings identifiers, and
 * {@link FrameWriter}, which appends frames to one growable output buffer so that every frame
 * produced while handling one read goes out in one `write`.
 *
 * @module
 */

/** The client connection preface (RFC 9113 §3.4). */
export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** The size of a frame header. */
export const FRAME_HEADER_BYTES = 9;

/** Frame types (RFC 9113 §6). */
export enum FrameType {
  DATA = 0x0,
  HEADERS = 0x1,
  PRIORITY = 0x2,
  RST_STREAM = 0x3,
  SETTINGS = 0x4,
  PUSH_PROMISE = 0x5,
  PING = 0x6,
  GOAWAY = 0x7,
  WINDOW_UPDATE = 0x8,
  CONTINUATION = 0x9,
}

/** Frame flags. */
export enum Flag {
  END_STREAM = 0x1,
  ACK = 0x1,
  END_HEADERS = 0x4,
  PADDED = 0x8,
  PRIORITY = 0x20,
}

/** Error codes (RFC 9113 §7). */
export enum ErrorCode {
  NO_ERROR = 0x0,
  PROTOCOL_ERROR = 0x1,
  INTERNAL_ERROR = 0x2,
  FLOW_CONTROL_ERROR = 0x3,
  SETTINGS_TIMEOUT = 0x4,
  STREAM_CLOSED = 0x5,
  FRAME_SIZE_ERROR = 0x6,
  REFUSED_STREAM = 0x7,
  CANCEL = 0x8,
  COMPRESSION_ERROR = 0x9,
  CONNECT_ERROR = 0xa,
  ENHANCE_YOUR_CALM = 0xb,
  INADEQUATE_SECURITY = 0xc,
  HTTP_1_1_REQUIRED = 0xd,
}

/** Settings identifiers (RFC 9113 §6.5.2). */
export enum Setting {
  HEADER_TABLE_SIZE = 0x1,
  ENABLE_PUSH = 0x2,
  MAX_CONCURRENT_STREAMS = 0x3,
  INITIAL_WINDOW_SIZE = 0x4,
  MAX_FRAME_SIZE = 0x5,
  MAX_HEADER_LIST_SIZE = 0x6,
}

/** The initial flow-control window of a stream and of the connection (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW = 65_535;
/** The largest flow-control window (2^31 − 1). */
export const MAX_WINDOW = 0x7fff_ffff;
/** The smallest and largest SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2). */
export const MIN_MAX_FRAME_SIZE = 16_384;
export const MAX_MAX_FRAME_SIZE = 16_777_215;

/** Buffers that grew past this are dropped after use rather than kept for the next batch. */
const KEEP_BYTES = 1 << 20;
const INITIAL_BYTES = 16 << 10;

/**
 * Frames to write, appended to one buffer. {@link take} hands the bytes over for a write and
 * switches to a second buffer, so frames can be appended while that write is under way; the
 * written buffer comes back through {@link recycle}.
 */
export class FrameWriter {
  #buf: Uint8Array = new Uint8Array(INITIAL_BYTES);
  #spare: Uint8Array | undefined = new Uint8Array(INITIAL_BYTES);
  #len = 0;

  /** Bytes waiting to be written. */
  get length(): number {
    return this.#len;
  }

  #ensure(n: number): void {
    const need = this.#len + n;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  /**
   * Appends a frame header for a payload of `length` bytes; the caller appends the payload.
   *
   * @returns the offset of the payload in the buffer (valid until the next append)
   */
  header(length: number, type: number, flags: number, streamId: number): void {
    this.#ensure(FRAME_HEADER_BYTES + length);
    const b = this.#buf;
    let i = this.#len;
    b[i++] = length >>> 16;
    b[i++] = (length >>> 8) & 0xff;
    b[i++] = length & 0xff;
    b[i++] = type;
    b[i++] = flags;
    b[i++] = (streamId >>> 24) & 0x7f;
    b[i++] = (streamId >>> 16) & 0xff;
    b[i++] = (streamId >>> 8) & 0xff;
    b[i++] = streamId & 0xff;
    this.#len = i;
  }

  /** Appends bytes (after {@link header}, which reserved room for them). */
  bytes(src: Uint8Array): void {
    this.#ensure(src.length);
    this.#buf.set(src, this.#len);
    this.#len += src.length;
  }

  /** Appends a 32-bit big-endian number. */
  u32(v: number): void {
    this.#ensure(4);
    const b = this.#buf;
    const i = this.#len;
    b[i] = v >>> 24;
    b[i + 1] = (v >>> 16) & 0xff;
    b[i + 2] = (v >>> 8) & 0xff;
    b[i + 3] = v & 0xff;
    this.#len = i + 4;
  }

  /** Appends a 16-bit big-endian number. */
  u16(v: number): void {
    this.#ensure(2);
    this.#buf[this.#len] = v >>> 8;
    this.#buf[this.#len + 1] = v & 0xff;
    this.#len += 2;
  }

  /** Appends one byte. */
  u8(v: number): void {
    this.#ensure(1);
    this.#buf[this.#len++] = v;
  }

  /** A whole frame with a payload. */
  frame(type: number, flags: number, streamId: number, payload?: Uint8Array): void {
    this.header(payload?.length ?? 0, type, flags, streamId);
    if (payload) this.bytes(payload);
  }

  /** RST_STREAM. */
  rstStream(streamId: number, code: number): void {
    this.header(4, FrameType.RST_STREAM, 0, streamId);
    this.u32(code);
  }

  /** WINDOW_UPDATE. */
  windowUpdate(streamId: number, increment: number): void {
    this.header(4, FrameType.WINDOW_UPDATE, 0, streamId);
    this.u32(increment);
  }

  /** GOAWAY with an optional debug text (ASCII). */
  goaway(lastStreamId: number, code: number, debug = ""): void {
    this.header(8 + debug.length, FrameType.GOAWAY, 0, 0);
    this.u32(lastStreamId & 0x7fff_ffff);
    this.u32(code);
    for (let i = 0; i < debug.length; i++) this.u8(debug.charCodeAt(i) & 0x7f);
  }

  /**
   * Hands over the bytes appended so far (for one write) and starts a new buffer.
   *
   * @returns the bytes; give the buffer back with {@link recycle} once written
   */
  take(): Uint8Array {
    const out = this.#buf.subarray(0, this.#len);
    this.#buf = this.#spare ?? new Uint8Array(INITIAL_BYTES);
    this.#spare = undefined;
    this.#len = 0;
    return out;
  }

  /** Returns a buffer from {@link take} once its write is done. */
  recycle(written: Uint8Array): void {
    const buf = new Uint8Array(written.buffer);
    if (this.#spare === undefined && buf.length <= KEEP_BYTES) this.#spare = buf;
  }
}
