/**
 * One HTTP/2 server connection (RFC 9113, cleartext, prior knowledge) on a `Deno.Conn`: the
 * preface, SETTINGS, PING, flow control in both directions, header blocks, stream states and
 * the errors the RFC names. What a request means is the {@link H2Handler}'s business (gRPC in
 * ../server.ts); this layer only moves frames.
 *
 * How it stays cheap: the connection reads into one reused buffer and handles every complete
 * frame in it before reading again (a read that fills it means more is waiting, a large request
 * body: the next reads go into a larger buffer borrowed from a small process-wide pool, see
 * {@link largeReadBuffersInUse}); the frames answering them are appended to one output
 * buffer ({@link FrameWriter}) and go out in one `write` per read (an answer produced later, by
 * a call that ran on a worker, is written at the next microtask, together with any others).
 * No timer is armed per connection or stream: the server's sweep ({@link H2Connection.sweep})
 * checks the deadlines.
 *
 * What a client cannot do (each a documented limit, see {@link H2Limits}; the number of
 * connections is the server's, `GrpcLimits.maxConnections`):
 * - hold a connection without sending the preface and SETTINGS (closed after
 *   `prefaceTimeoutMs`), or with a write the client does not read (closed after
 *   `writeTimeoutMs`: its streams are reset and their calls cancelled; Deno 2.9 cannot cancel a
 *   write under way, so the socket itself stays open until the client reads or goes away, holding
 *   only the bytes of that write); nothing more is read from a connection while more than
 *   `maxPendingWriteBytes` wait to be written, so a client that does not read stops being read
 *   and cannot make the server take more requests (tested: it gets about 9 answers of 1 MB in);
 * - open more than `maxConcurrentStreams` streams (advertised; more are refused with
 *   REFUSED_STREAM), or open new ones while more than `maxBlockedResponseBytes` of answers wait
 *   for its flow-control window (refused the same way);
 * - send a header block (HEADERS + CONTINUATION) over `maxHeaderBlockBytes` before it is
 *   decoded, or a header list over `maxHeaderListSize` once decoded (the first closes the
 *   connection with ENHANCE_YOUR_CALM, the second is the handler's to answer);
 * - reset more than `maxResetsPerSecond` streams, or send more than `maxControlFramesPerSecond`
 *   PING and SETTINGS frames, in a second (GOAWAY ENHANCE_YOUR_CALM: the "rapid reset" and
 *   flood attacks);
 * - send DATA beyond the window it was given (FLOW_CONTROL_ERROR); the window is credited back
 *   as soon as the handler has taken the bytes, and the handler bounds what it holds;
 * - take more than the 4 large read buffers the process lends (a body it sends slowly keeps one;
 *   other connections then read in their own 64 KiB buffers, only with more reads).
 *
 * @module
 */
import { HpackDecoder, HpackError } from "./hpack.ts";
import {
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FRAME_HEADER_BYTES,
  FrameType,
  FrameWriter,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW,
  MIN_MAX_FRAME_SIZE,
  PREFACE,
  Setting,
} from "./frames.ts";

/** The limits of a connection; see the module's documentation. */
export interface H2Limits {
  /** Streams open at once per connection, advertised in SETTINGS (default 256). */
  readonly maxConcurrentStreams: number;
  /** Header bytes (HEADERS + CONTINUATION) of one block before decoding (default 64 KiB). */
  readonly maxHeaderBlockBytes: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, advertised (default 16 KiB). */
  readonly maxHeaderListSize: number;
  /** The window granted to each stream (SETTINGS_INITIAL_WINDOW_SIZE, default 1 MiB). */
  readonly streamWindow: number;
  /** The window granted to the connection (default 16 MiB). */
  readonly connectionWindow: number;
  /** Bytes waiting to be written above which nothing more is read (default 4 MiB). */
  readonly maxPendingWriteBytes: number;
  /** Answer bytes waiting for the peer's window above which new streams are refused (16 MiB). */
  readonly maxBlockedResponseBytes: number;
  /** Time to receive the preface and the first SETTINGS (default 10 s). */
  readonly prefaceTimeoutMs: number;
  /** Time a write may wait for the peer to read (default 60 s). */
  readonly writeTimeoutMs: number;
  /** Streams the peer may reset per second (default 1000). */
  readonly maxResetsPerSecond: number;
  /** PING and SETTINGS frames the peer may send per second (default 1000). */
  readonly maxControlFramesPerSecond: number;
}

/** The default {@link H2Limits}. */
export const DEFAULT_H2_LIMITS: H2Limits = Object.freeze({
  maxConcurrentStreams: 256,
  maxHeaderBlockBytes: 64 << 10,
  maxHeaderListSize: 16 << 10,
  streamWindow: 1 << 20,
  connectionWindow: 16 << 20,
  maxPendingWriteBytes: 4 << 20,
  maxBlockedResponseBytes: 16 << 20,
  prefaceTimeoutMs: 10_000,
  writeTimeoutMs: 60_000,
  maxResetsPerSecond: 1000,
  maxControlFramesPerSecond: 1000,
});

/** Our frame size limit (SETTINGS_MAX_FRAME_SIZE left at its default). */
const MAX_FRAME = MIN_MAX_FRAME_SIZE;
const READ_BYTES = 64 << 10;
/**
 * Large read buffers: their size, and how many the process lends at once (at most 4 MiB in all,
 * whatever the number of connections; a client holding one only makes others read in 64 KiB
 * pieces). Every read costs an op round trip whatever it moves: a served selfie request (768
 * KiB, h2load) took 17-18 reads of 64 KiB and 0.32-0.41 ms from its first DATA to its last; with
 * 1 MiB buffers 4.5-6 reads (the client's writes arrive in pieces) and 0.26-0.29 ms (three
 * alternating runs of 500 calls each).
 */
const LARGE_READ_BYTES = 1 << 20;
const LARGE_READ_BUFFERS = 4;
/** Large read buffers not lent now. */
const idleLargeReads: Uint8Array<ArrayBuffer>[] = [];
let largeReadsLent = 0;

/** Large read buffers lent to connections now (at most 4; for tests and monitoring). */
export function largeReadBuffersInUse(): number {
  return largeReadsLent;
}

function borrowLargeRead(): Uint8Array<ArrayBuffer> | undefined {
  if (largeReadsLent >= LARGE_READ_BUFFERS) return undefined;
  largeReadsLent++;
  return idleLargeReads.pop() ?? new Uint8Array(LARGE_READ_BYTES + FRAME_HEADER_BYTES);
}

function returnLargeRead(b: Uint8Array<ArrayBuffer>): void {
  largeReadsLent--;
  idleLargeReads.push(b);
}
/** After a connection error: how long, and how much, the peer's input is drained before close. */
const LINGER_MS = 1000;
const LINGER_BYTES = 1 << 20;

/** A client stream as the handler sees it. */
export class H2Stream {
  /** The handler's state for this stream. */
  call: unknown = undefined;
  /** Whether the client has ended its side (END_STREAM received). */
  remoteClosed = false;
  /** Whether our side has ended (END_STREAM sent, or queued after the data). */
  localClosed = false;
  /** Whether the stream is gone (reset, answered and ended, or its connection closed). */
  closed = false;
  /** Our send window on this stream. */
  sendWindow: number;
  /** What the client may still send before we credit more. */
  recvWindow: number;
  /** Bytes received and taken but not yet credited back. */
  recvUncredited = 0;
  /** DATA waiting for window, then the trailers block (if any). */
  pending: Uint8Array[] | undefined = undefined;
  pendingOffset = 0;
  pendingTrailers: Uint8Array | undefined = undefined;

  constructor(
    /** The stream identifier. */
    readonly id: number,
    /** The connection. */
    readonly connection: H2Connection,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }
}

/** What the layer above (gRPC) does with streams. */
export interface H2Handler {
  /**
   * A new stream's request headers.
   *
   * @param fields the decoded fields, `[name, value, …]`
   * @param oversize whether the list was over SETTINGS_MAX_HEADER_LIST_SIZE (fields truncated)
   * @param endStream whether the request has no body
   */
  headers(stream: H2Stream, fields: string[], oversize: boolean, endStream: boolean): void;
  /**
   * Request body bytes: a view of the read buffer, valid only during the call (copy to keep).
   */
  data(stream: H2Stream, chunk: Uint8Array, endStream: boolean): void;
  /** The stream was reset by the client, or its connection closed, before it ended. */
  reset(stream: H2Stream): void;
}

/** Thrown inside frame handling: a connection error (GOAWAY, then close). */
class ConnectionError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

const SETTINGS_FRAME_PAYLOAD = 6;

/**
 * One server connection. Created by the server for each accepted `Deno.Conn`; {@link run}
 * serves it until it closes.
 */
export class H2Connection {
  readonly #conn: Deno.Conn;
  readonly #handler: H2Handler;
  readonly #limits: H2Limits;
  readonly #out = new FrameWriter();
  readonly #decoder: HpackDecoder;
  readonly #streams = new Map<number, H2Stream>();

  /** This connection's own read buffer. */
  readonly #small = new Uint8Array(READ_BYTES + FRAME_HEADER_BYTES);
  /** Where reads go: {@link #small}, or a large buffer borrowed while a long input arrives. */
  #buf = this.#small;
  #start = 0;
  #end = 0;
  #gotPreface = false;
  #gotSettings = false;
  #prefaceDeadline: number;
  #writeStartedAt = 0;
  #writing = false;
  #flushQueued = false;
  #drained: (() => void) | undefined;
  #closed = false;
  /** A connection error is being written: nothing else is, and the connection then closes. */
  #failing = false;
  #closedPromise: Promise<void>;
  #resolveClosed!: () => void;

  // Header block assembly (HEADERS + CONTINUATION).
  #blockStream = 0;
  #blockEndStream = false;
  #blockParts: Uint8Array[] = [];
  #blockBytes = 0;

  #lastStreamId = 0;
  #goawaySent = false;
  #goawayLastId = MAX_WINDOW;

  // The peer's settings.
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrame = MIN_MAX_FRAME_SIZE;
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow: number;
  #recvUncredited = 0;
  #blocked = new Set<H2Stream>();
  #blockedBytes = 0;

  #resets = 0;
  #controlFrames = 0;
  /** Sweeps since the last read (how long the connection has been quiet). */
  #idleSweeps = 0;

  /**
   * @param conn the accepted connection
   * @param handler the layer above
   * @param limits the connection's limits
   * @param now the current time (ms), for the preface deadline
   */
  constructor(conn: Deno.Conn, handler: H2Handler, limits: H2Limits, now: number) {
    this.#conn = conn;
    this.#handler = handler;
    this.#limits = limits;
    this.#decoder = new HpackDecoder(4096, limits.maxHeaderListSize);
    this.#prefaceDeadline = now + limits.prefaceTimeoutMs;
    this.#recvWindow = limits.connectionWindow;
    this.#closedPromise = new Promise((r) => (this.#resolveClosed = r));
    this.#writeSettings();
  }

  /** Resolves once the connection is closed. */
  get closed(): Promise<void> {
    return this.#closedPromise;
  }

  /**
   * How long the connection has had nothing to do: the sweeps since its last read, or -1 while
   * it has streams open (a busy connection is never the one to close for room).
   */
  get idleness(): number {
    return this.#streams.size > 0 ? -1 : this.#idleSweeps;
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.#streams.size;
  }

  #writeSettings(): void {
    const l = this.#limits;
    const out = this.#out;
    out.header(4 * SETTINGS_FRAME_PAYLOAD, FrameType.SETTINGS, 0, 0);
    out.u16(Setting.ENABLE_PUSH);
    out.u32(0);
    out.u16(Setting.MAX_CONCURRENT_STREAMS);
    out.u32(l.maxConcurrentStreams);
    out.u16(Setting.INITIAL_WINDOW_SIZE);
    out.u32(l.streamWindow);
    out.u16(Setting.MAX_HEADER_LIST_SIZE);
    out.u32(l.maxHeaderListSize);
    if (l.connectionWindow > DEFAULT_WINDOW) {
      out.windowUpdate(0, l.connectionWindow - DEFAULT_WINDOW);
    }
  }

  /** Serves the connection until it closes (never rejects). */
  async run(): Promise<void> {
    try {
      this.#flush();
      while (!this.#closed) {
        if (this.#end === this.#buf.length) this.#compact();
        let n: number | null;
        const room = this.#buf.length - this.#end;
        try {
          n = await this.#conn.read(this.#buf.subarray(this.#end));
        } catch {
          n = null;
        }
        if (n === null || this.#closed) break;
        this.#end += n;
        this.#idleSweeps = 0;
        try {
          this.#parse();
        } catch (e) {
          // GOAWAY is written, then the connection closes (#closing).
          if (e instanceof ConnectionError) this.#fail(e.code, e.message);
          else this.#fail(ErrorCode.INTERNAL_ERROR, "");
          return;
        }
        this.#flush();
        // A full read: more is waiting (a large body). The borrowed buffer is kept until a read
        // leaves the socket drained with no body still arriving (a client's writes come in
        // pieces: returning it at the first short read took the reads back to 64 KiB).
        if (n === room) this.#useLarge();
        else if (!this.#bodyArriving()) this.#useSmall();
        if (this.#writing && this.#out.length > this.#limits.maxPendingWriteBytes) {
          // The peer is not reading: neither do we, until the write drains (or times out).
          await new Promise<void>((r) => (this.#drained = r));
        }
      }
    } catch {
      // Nothing above throws but the handler; a failure there must not leave the socket open.
    } finally {
      // No read is under way now (a lingering close reads into the connection's own buffer).
      this.#useSmall();
    }
    // The peer closed (or a read failed): nothing more can be answered.
    this.close();
  }

  /**
   * Reads next into a borrowed large buffer, if the pool has one to lend, with the unparsed
   * bytes (less than a frame: parsing took every whole one) moved to its front.
   */
  #useLarge(): void {
    if (this.#buf !== this.#small) return;
    const large = borrowLargeRead();
    if (large === undefined) return;
    this.#moveUnparsed(large);
  }

  /** Whether a stream has sent its headers and not yet its END_STREAM. */
  #bodyArriving(): boolean {
    for (const s of this.#streams.values()) if (!s.remoteClosed) return true;
    return false;
  }

  /** Reads next into the connection's own buffer; a borrowed one goes back to the pool. */
  #useSmall(): void {
    const large = this.#buf;
    if (large === this.#small) return;
    this.#moveUnparsed(this.#small);
    returnLargeRead(large);
  }

  #moveUnparsed(to: Uint8Array<ArrayBuffer>): void {
    to.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = to;
  }

  /** Moves unparsed bytes to the front of the read buffer (a frame never exceeds it). */
  #compact(): void {
    if (this.#start === 0) return;
    this.#buf.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
  }

  #parse(): void {
    const b = this.#buf;
    if (!this.#gotPreface) {
      const have = this.#end - this.#start;
      const n = Math.min(have, PREFACE.length);
      for (let i = 0; i < n; i++) {
        if (b[this.#start + i] !== PREFACE[i]) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Invalid connection preface");
        }
      }
      if (have < PREFACE.length) return;
      this.#start += PREFACE.length;
      this.#gotPreface = true;
    }
    while (this.#end - this.#start >= FRAME_HEADER_BYTES) {
      const s = this.#start;
      const length = (b[s] << 16) | (b[s + 1] << 8) | b[s + 2];
      const type = b[s + 3];
      const flags = b[s + 4];
      const id = ((b[s + 5] & 0x7f) << 24) | (b[s + 6] << 16) | (b[s + 7] << 8) | b[s + 8];
      if (length > MAX_FRAME) {
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Frame larger than allowed");
      }
      if (this.#end - s < FRAME_HEADER_BYTES + length) break;
      const p = s + FRAME_HEADER_BYTES;
      this.#start = p + length;
      this.#frame(type, flags, id, p, length);
      if (this.#closed) return;
    }
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
    } else if (this.#buf.length - this.#start < FRAME_HEADER_BYTES + MAX_FRAME) {
      this.#compact();
    }
  }

  #frame(type: number, flags: number, id: number, p: number, length: number): void {
    if (!this.#gotSettings) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Expected SETTINGS first");
      }
      this.#gotSettings = true;
    }
    if (this.#blockStream !== 0 && type !== FrameType.CONTINUATION) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Expected CONTINUATION");
    }
    switch (type) {
      case FrameType.DATA:
        return this.#data(flags, id, p, length);
      case FrameType.HEADERS:
        return this.#headers(flags, id, p, length);
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on 0");
        if (length !== 5) this.#streamError(id, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.RST_STREAM:
        return this.#rstStream(id, p, length);
      case FrameType.SETTINGS:
        return this.#settings(flags, id, p, length);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case FrameType.PING:
        return this.#ping(flags, id, p, length);
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Short GOAWAY");
        // The client will open no more streams; those open finish as usual.
        return;
      case FrameType.WINDOW_UPDATE:
        return this.#windowUpdate(id, p, length);
      case FrameType.CONTINUATION:
        return this.#continuation(flags, id, p, length);
      default:
        return; // Unknown types are ignored (RFC 9113 §4.1).
    }
  }

  #u32(p: number): number {
    const b = this.#buf;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }

  /** A frame on a stream that was never opened is a connection error (RFC 9113 §5.1). */
  #checkNotIdle(id: number, what: string): void {
    if (id > this.#lastStreamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `${what} on an idle stream`);
    }
  }

  #data(flags: number, id: number, p: number, length: number): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    this.#checkNotIdle(id, "DATA");
    // Flow control counts the whole payload, padding included.
    if (length > this.#recvWindow) {
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "DATA beyond the window");
    }
    this.#recvWindow -= length;
    this.#creditConnection(length);
    let start = p;
    let end = p + length;
    if (flags & Flag.PADDED) {
      if (length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Short DATA");
      const pad = this.#buf[p];
      if (pad >= length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Bad padding");
      start = p + 1;
      end -= pad;
    }
    const stream = this.#streams.get(id);
    // Closed: ignored (RFC 9113 §5.1: frames may still arrive on a stream we reset or answered
    // early; counted for flow control above, nothing sent back).
    if (stream === undefined) return;
    if (stream.remoteClosed) {
      // Half-closed (remote): STREAM_CLOSED (RFC 9113 §5.1).
      this.#resetStream(stream, ErrorCode.STREAM_CLOSED);
      return;
    }
    if (length > stream.recvWindow) {
      this.#resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR);
      return;
    }
    stream.recvWindow -= length;
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (endStream) stream.remoteClosed = true;
    else {
      stream.recvUncredited += length;
      if (stream.recvUncredited >= this.#limits.streamWindow >>> 1) {
        this.#out.windowUpdate(id, stream.recvUncredited);
        stream.recvWindow += stream.recvUncredited;
        stream.recvUncredited = 0;
      }
    }
    this.#handler.data(stream, this.#buf.subarray(start, end), endStream);
    if (endStream) this.#maybeRemove(stream);
  }

  #creditConnection(n: number): void {
    this.#recvUncredited += n;
    if (this.#recvUncredited >= this.#limits.connectionWindow >>> 1) {
      this.#out.windowUpdate(0, this.#recvUncredited);
      this.#recvWindow += this.#recvUncredited;
      this.#recvUncredited = 0;
    }
  }

  #headers(flags: number, id: number, p: number, length: number): void {
    if (id === 0 || (id & 1) === 0) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on an invalid stream");
    }
    let start = p;
    let end = p + length;
    if (flags & Flag.PADDED) {
      if (length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Short HEADERS");
      const pad = this.#buf[p];
      start++;
      end -= pad;
    }
    if (flags & Flag.PRIORITY) {
      start += 5;
      const dep = this.#u32(start - 5) & 0x7fff_ffff;
      // A stream depending on itself (RFC 9113 §5.3.1); a connection error here, so the header
      // block need not be decoded for a stream that will not exist.
      if (dep === id) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Self-dependency");
    }
    if (start > end) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Bad padding");
    const endStream = (flags & Flag.END_STREAM) !== 0;
    if (flags & Flag.END_HEADERS) {
      // The usual case: the whole block in this frame, decoded from the read buffer in place.
      if (end - start > this.#limits.maxHeaderBlockBytes) {
        throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "Header block too large");
      }
      this.#block(id, endStream, this.#buf.subarray(start, end));
      return;
    }
    this.#blockStream = id;
    this.#blockEndStream = endStream;
    this.#blockBytes = 0;
    this.#addFragment(start, end);
  }

  #continuation(flags: number, id: number, p: number, length: number): void {
    if (this.#blockStream === 0 || id !== this.#blockStream) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Unexpected CONTINUATION");
    }
    this.#addFragment(p, p + length);
    if (flags & Flag.END_HEADERS) this.#endBlock();
  }

  #addFragment(start: number, end: number): void {
    this.#blockBytes += end - start;
    if (this.#blockBytes > this.#limits.maxHeaderBlockBytes) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "Header block too large");
    }
    // Copied: the read buffer is reused before a CONTINUATION arrives.
    this.#blockParts.push(this.#buf.slice(start, end));
  }

  #endBlock(): void {
    const id = this.#blockStream;
    const endStream = this.#blockEndStream;
    const parts = this.#blockParts;
    this.#blockStream = 0;
    this.#blockParts = [];
    let block: Uint8Array;
    if (parts.length === 1) block = parts[0];
    else {
      block = new Uint8Array(this.#blockBytes);
      let o = 0;
      for (const part of parts) {
        block.set(part, o);
        o += part.length;
      }
    }
    this.#block(id, endStream, block);
  }

  /** A whole header block of stream `id`: decoded, then a new stream or its trailers. */
  #block(id: number, endStream: boolean, block: Uint8Array): void {
    let decoded;
    try {
      decoded = this.#decoder.decode(block);
    } catch (e) {
      if (e instanceof HpackError) {
        throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, "Cannot decode header block");
      }
      throw e;
    }
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      // Trailers: they must end the stream.
      if (existing.remoteClosed) {
        this.#resetStream(existing, ErrorCode.STREAM_CLOSED);
      } else if (!endStream) {
        this.#resetStream(existing, ErrorCode.PROTOCOL_ERROR);
      } else {
        existing.remoteClosed = true;
        this.#handler.data(existing, new Uint8Array(0), true);
        this.#maybeRemove(existing);
      }
      return;
    }
    if (id <= this.#lastStreamId) {
      throw new ConnectionError(ErrorCode.STREAM_CLOSED, "HEADERS on a closed stream");
    }
    this.#lastStreamId = id;
    if (this.#goawaySent) return; // Past our GOAWAY: ignored, never processed.
    if (
      this.#streams.size >= this.#limits.maxConcurrentStreams ||
      this.#blockedBytes > this.#limits.maxBlockedResponseBytes
    ) {
      this.#out.rstStream(id, ErrorCode.REFUSED_STREAM);
      return;
    }
    const stream = new H2Stream(id, this, this.#peerInitialWindow, this.#limits.streamWindow);
    stream.remoteClosed = endStream;
    this.#streams.set(id, stream);
    this.#handler.headers(stream, decoded.fields, decoded.oversize, endStream);
    if (endStream) this.#maybeRemove(stream);
  }

  #rstStream(id: number, _p: number, length: number): void {
    if (length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Bad RST_STREAM");
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on 0");
    this.#checkNotIdle(id, "RST_STREAM");
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    if (++this.#resets > this.#limits.maxResetsPerSecond) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "Too many streams reset");
    }
    this.#drop(stream);
    this.#handler.reset(stream);
  }

  #settings(flags: number, id: number, p: number, length: number): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & Flag.ACK) {
      if (length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK");
      return;
    }
    if (length % SETTINGS_FRAME_PAYLOAD !== 0) {
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Bad SETTINGS length");
    }
    this.#countControlFrame();
    const b = this.#buf;
    for (let i = p; i < p + length; i += SETTINGS_FRAME_PAYLOAD) {
      const key = (b[i] << 8) | b[i + 1];
      const value = this.#u32(i + 2);
      switch (key) {
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH");
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) {
            throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE");
          }
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) {
              throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "Window overflow");
            }
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) {
            throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "MAX_FRAME_SIZE");
          }
          this.#peerMaxFrame = value;
          break;
        default:
          // HEADER_TABLE_SIZE: our encoder never uses the dynamic table, so any size suits it.
          // MAX_CONCURRENT_STREAMS (we push none), MAX_HEADER_LIST_SIZE (advisory), unknown:
          // nothing to do.
          break;
      }
    }
    this.#out.header(0, FrameType.SETTINGS, Flag.ACK, 0);
    this.#resumeBlocked();
  }

  #ping(flags: number, id: number, p: number, length: number): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Bad PING");
    if (flags & Flag.ACK) return;
    this.#countControlFrame();
    this.#out.header(8, FrameType.PING, Flag.ACK, 0);
    this.#out.bytes(this.#buf.subarray(p, p + 8));
  }

  #countControlFrame(): void {
    if (++this.#controlFrames > this.#limits.maxControlFramesPerSecond) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "Too many control frames");
    }
  }

  #windowUpdate(id: number, p: number, length: number): void {
    if (length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "Bad WINDOW_UPDATE");
    const inc = this.#u32(p) & 0x7fff_ffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "Zero increment");
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) {
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "Window overflow");
      }
      this.#resumeBlocked();
      return;
    }
    this.#checkNotIdle(id, "WINDOW_UPDATE");
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    if (inc === 0) return this.#resetStream(stream, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += inc;
    if (stream.sendWindow > MAX_WINDOW) {
      return this.#resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR);
    }
    if (stream.pending !== undefined || stream.pendingTrailers !== undefined) {
      this.#sendPending(stream);
    }
  }

  /** A stream error on a stream that may not be open: RST_STREAM (and the handler told). */
  #streamError(id: number, code: ErrorCode): void {
    const stream = this.#streams.get(id);
    if (stream !== undefined) this.#resetStream(stream, code);
    else this.#out.rstStream(id, code);
  }

  /** Resets a stream of ours (RST_STREAM) and tells the handler. */
  #resetStream(stream: H2Stream, code: ErrorCode): void {
    if (stream.closed) return;
    this.#out.rstStream(stream.id, code);
    this.#drop(stream);
    this.#handler.reset(stream);
    this.#scheduleFlush();
  }

  #drop(stream: H2Stream): void {
    stream.closed = true;
    this.#streams.delete(stream.id);
    if (this.#blocked.delete(stream)) this.#blockedBytes -= pendingBytes(stream);
    stream.pending = undefined;
    stream.pendingTrailers = undefined;
    if (this.#goawaySent && this.#streams.size === 0) this.#scheduleFlush();
  }

  /** Removes a stream both sides have ended. */
  #maybeRemove(stream: H2Stream): void {
    if (stream.remoteClosed && stream.localClosed && stream.pending === undefined) {
      if (!stream.closed) this.#drop(stream);
    }
  }

  // ---- Sending (the handler's side) ----

  /**
   * Sends a header block (response headers, or trailers when `endStream`).
   *
   * @param block an HPACK block (HEADERS, split into CONTINUATION past the peer's frame size)
   */
  sendHeaders(stream: H2Stream, block: Uint8Array, endStream: boolean): void {
    if (stream.closed || stream.localClosed) return;
    if (endStream && (stream.pending !== undefined)) {
      // Trailers wait behind the data still blocked by flow control.
      stream.pendingTrailers = block;
      stream.localClosed = true;
      return;
    }
    this.#writeHeaders(stream.id, block, endStream);
    if (endStream) this.#ended(stream);
    this.#scheduleFlush();
  }

  #writeHeaders(id: number, block: Uint8Array, endStream: boolean): void {
    const out = this.#out;
    const max = this.#peerMaxFrame;
    const es = endStream ? Flag.END_STREAM : 0;
    if (block.length <= max) {
      out.header(block.length, FrameType.HEADERS, es | Flag.END_HEADERS, id);
      out.bytes(block);
      return;
    }
    out.header(max, FrameType.HEADERS, es, id);
    out.bytes(block.subarray(0, max));
    for (let o = max; o < block.length; o += max) {
      const n = Math.min(max, block.length - o);
      out.header(n, FrameType.CONTINUATION, o + n === block.length ? Flag.END_HEADERS : 0, id);
      out.bytes(block.subarray(o, o + n));
    }
  }

  /** Our side ended (trailers written): the stream goes, early if the client is still sending. */
  #ended(stream: H2Stream): void {
    stream.localClosed = true;
    if (!stream.remoteClosed) {
      // "Early server closure" (gRPC's PROTOCOL-HTTP2.md, RFC 9113 §8.1): the rest of the
      // request is not wanted.
      this.#out.rstStream(stream.id, ErrorCode.NO_ERROR);
      this.#drop(stream);
      return;
    }
    this.#maybeRemove(stream);
  }

  /**
   * Sends body bytes, as far as the flow-control windows allow; the rest waits for
   * WINDOW_UPDATE. The bytes must stay unchanged until sent (they are not copied when they wait).
   */
  sendData(stream: H2Stream, data: Uint8Array): void {
    if (stream.closed || stream.localClosed) return;
    if (stream.pending !== undefined) {
      stream.pending.push(data);
      this.#blockedBytes += data.length;
      return;
    }
    const sent = this.#writeData(stream, data, 0);
    if (sent < data.length) {
      stream.pending = [data];
      stream.pendingOffset = sent;
      this.#blocked.add(stream);
      this.#blockedBytes += data.length - sent;
    }
    this.#scheduleFlush();
  }

  /**
   * A whole unary answer: headers, one DATA payload and the trailers, in order (the fast path:
   * usually all three frames at once).
   */
  respond(stream: H2Stream, headers: Uint8Array, data: Uint8Array, trailers: Uint8Array): void {
    if (stream.closed || stream.localClosed) return;
    this.#writeHeaders(stream.id, headers, false);
    this.sendData(stream, data);
    this.sendHeaders(stream, trailers, true);
  }

  /**
   * A whole unary gRPC answer: headers, the 5-byte message prefix and the message
   * (uncompressed) in DATA frames, and the trailers. The message is one array or pieces sent
   * one after the other (large values where they are: no copy made to join them). It is read at
   * once (it may live in shared or reused memory): written into frames as far as the
   * flow-control windows allow, and only what they do not allow yet is copied to wait.
   */
  respondMessage(
    stream: H2Stream,
    headers: Uint8Array,
    message: Uint8Array | readonly Uint8Array[],
    trailers: Uint8Array,
  ): void {
    if (stream.closed || stream.localClosed) return;
    this.#writeHeaders(stream.id, headers, false);
    const pieces = message instanceof Uint8Array ? [message] : message;
    let n = 0;
    for (let i = 0; i < pieces.length; i++) n += pieces[i].length;
    const total = n + 5;
    const out = this.#out;
    // Bytes of prefix + message written so far; the next message byte is pieces[piece][at].
    let sent = 0, piece = 0, at = 0;
    if (stream.pending === undefined) {
      while (sent < total) {
        const len = Math.min(total - sent, stream.sendWindow, this.#sendWindow, this.#peerMaxFrame);
        // A window under 5 bytes: everything waits (a prefix is never split).
        if (len <= 0 || (sent === 0 && len < 5)) break;
        out.header(len, FrameType.DATA, 0, stream.id);
        let body = len;
        if (sent === 0) {
          out.u8(0);
          out.u32(n);
          body -= 5;
        }
        while (body > 0) {
          const p = pieces[piece];
          const take = Math.min(body, p.length - at);
          out.bytes(take === p.length ? p : p.subarray(at, at + take));
          body -= take;
          at += take;
          if (at === p.length) {
            piece++;
            at = 0;
          }
        }
        stream.sendWindow -= len;
        this.#sendWindow -= len;
        sent += len;
      }
    }
    if (sent < total) {
      // The rest waits for WINDOW_UPDATE: a copy, since the message's memory is reused.
      const rest = new Uint8Array(total - sent);
      let o = 0;
      if (sent === 0) {
        rest[1] = n >>> 24;
        rest[2] = (n >>> 16) & 0xff;
        rest[3] = (n >>> 8) & 0xff;
        rest[4] = n & 0xff;
        o = 5;
      }
      for (; piece < pieces.length; piece++, at = 0) {
        const p = at === 0 ? pieces[piece] : pieces[piece].subarray(at);
        rest.set(p, o);
        o += p.length;
      }
      this.sendData(stream, rest);
    }
    this.sendHeaders(stream, trailers, true);
  }

  /** Resets a stream from the handler's side (e.g. CANCEL after its deadline). */
  reset(stream: H2Stream, code: ErrorCode): void {
    if (stream.closed) return;
    this.#out.rstStream(stream.id, code);
    this.#drop(stream);
    this.#scheduleFlush();
  }

  /** Writes as much of `data[from..]` as the windows allow; returns the new offset. */
  #writeData(stream: H2Stream, data: Uint8Array, from: number): number {
    const out = this.#out;
    let o = from;
    while (o < data.length) {
      const n = Math.min(data.length - o, stream.sendWindow, this.#sendWindow, this.#peerMaxFrame);
      if (n <= 0) break;
      out.header(n, FrameType.DATA, 0, stream.id);
      out.bytes(data.subarray(o, o + n));
      stream.sendWindow -= n;
      this.#sendWindow -= n;
      o += n;
    }
    return o;
  }

  #sendPending(stream: H2Stream): void {
    const queue = stream.pending;
    if (queue !== undefined) {
      while (queue.length > 0) {
        const data = queue[0];
        const from = stream.pendingOffset;
        const o = this.#writeData(stream, data, from);
        this.#blockedBytes -= o - from;
        if (o < data.length) {
          stream.pendingOffset = o;
          this.#scheduleFlush();
          return;
        }
        queue.shift();
        stream.pendingOffset = 0;
      }
      stream.pending = undefined;
      this.#blocked.delete(stream);
    }
    const trailers = stream.pendingTrailers;
    if (trailers !== undefined) {
      stream.pendingTrailers = undefined;
      this.#writeHeaders(stream.id, trailers, true);
      this.#ended(stream);
    }
    this.#scheduleFlush();
  }

  #resumeBlocked(): void {
    if (this.#blocked.size === 0) return;
    for (const s of [...this.#blocked]) {
      if (this.#sendWindow <= 0) break;
      if (s.sendWindow > 0) this.#sendPending(s);
    }
  }

  // ---- Writing ----

  #scheduleFlush(): void {
    if (this.#flushQueued || this.#closed || this.#failing) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /** Starts writing what is buffered (unless a write is under way: it continues with it). */
  #flush(): void {
    if (this.#writing || this.#closed || this.#failing) return;
    if (this.#out.length === 0) {
      if (this.#goawaySent && this.#streams.size === 0) this.close();
      return;
    }
    this.#writing = true;
    this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    const out = this.#out;
    try {
      while (out.length > 0 && !this.#closed && !this.#failing) {
        const bytes = out.take();
        this.#writeStartedAt = performance.now();
        let o = 0;
        while (o < bytes.length) o += await this.#conn.write(bytes.subarray(o));
        out.recycle(bytes);
      }
    } catch {
      this.#writing = false;
      this.close();
      return;
    }
    this.#writing = false;
    this.#writeStartedAt = 0;
    const drained = this.#drained;
    this.#drained = undefined;
    drained?.();
    if (this.#goawaySent && this.#streams.size === 0 && !this.#failing) this.close();
  }

  // ---- Lifetime ----

  /**
   * GOAWAY NO_ERROR: no new streams; the connection closes once the open ones end.
   */
  goaway(): void {
    if (this.#goawaySent || this.#closed) return;
    this.#goawaySent = true;
    this.#goawayLastId = this.#lastStreamId;
    this.#out.goaway(this.#goawayLastId, ErrorCode.NO_ERROR);
    this.#scheduleFlush();
  }

  /** A connection error: GOAWAY with the code, then close once it is written. */
  #fail(code: ErrorCode, message: string): void {
    if (this.#closed || this.#failing) return;
    this.#failing = true;
    this.#out.goaway(this.#lastStreamId, code, message);
    const bytes = this.#out.take();
    this.#closing(bytes);
  }

  /** Writes the last bytes (bounded by the write timeout via close) and closes. */
  async #closing(bytes: Uint8Array): Promise<void> {
    // Let a write under way finish first, so frames are not interleaved.
    for (let i = 0; this.#writing && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    if (!this.#closed) {
      try {
        let o = 0;
        while (o < bytes.length) o += await this.#conn.write(bytes.subarray(o));
        await this.#conn.closeWrite();
        // Linger: what the peer still sends is read and dropped for a moment, because closing
        // a socket with unread input resets the connection, and the peer could lose the GOAWAY.
        const timer = setTimeout(() => this.close(), LINGER_MS);
        let n = 0;
        while (!this.#closed && n < LINGER_BYTES) {
          const r = await this.#conn.read(this.#small);
          if (r === null) break;
          n += r;
        }
        clearTimeout(timer);
      } catch { /* gone */ }
    }
    this.close();
  }

  /** Closes the connection now; streams still open are reset for the handler. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#blocked.clear();
    for (const s of streams) {
      s.closed = true;
      this.#handler.reset(s);
    }
    this.#drained?.();
    this.#resolveClosed();
  }

  /**
   * The server's periodic check: closes a connection past its preface or write deadline and
   * restarts the per-second counters (resets, control frames).
   *
   * @param now the current time (ms, `performance.now()`)
   */
  sweep(now: number): void {
    this.#resets = 0;
    this.#controlFrames = 0;
    this.#idleSweeps++;
    if (!this.#gotSettings && now > this.#prefaceDeadline) {
      this.#fail(ErrorCode.PROTOCOL_ERROR, "No preface");
      return;
    }
    if (this.#writing && this.#writeStartedAt > 0) {
      if (now - this.#writeStartedAt > this.#limits.writeTimeoutMs) this.close();
    }
  }
}

function pendingBytes(stream: H2Stream): number {
  let n = -stream.pendingOffset;
  for (const d of stream.pending ?? []) n += d.length;
  return n;
}
