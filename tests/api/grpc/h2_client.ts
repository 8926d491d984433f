/**
 * A raw HTTP/2 client for the transport's protocol tests: writes frames byte for byte (with the
 * server's own FrameWriter and HPACK encoder) and reads the server's frames one at a time, so a
 * test can send what no real client would and see exactly what comes back.
 *
 * @module
 */
import {
  ErrorCode,
  Flag,
  FrameType,
  FrameWriter,
  PREFACE,
} from "../../../src/api/grpc/h2/frames.ts";
import { HpackDecoder, HpackEncoder } from "../../../src/api/grpc/h2/hpack.ts";

/** One frame read from the server. */
export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Uint8Array;
}

const encoder = new HpackEncoder();

/** The request headers of a gRPC call. */
export function grpcHeaders(path: string, extra: string[] = []): Uint8Array {
  return encoder.encode([
    ":method",
    "POST",
    ":scheme",
    "http",
    ":path",
    path,
    ":authority",
    "localhost",
    "content-type",
    "application/grpc",
    "te",
    "trailers",
    ...extra,
  ]);
}

/** A length-prefixed gRPC message. */
export function grpcMessage(message: Uint8Array, compressed = 0): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  out[0] = compressed;
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

/** A raw connection. */
export class RawH2 {
  readonly #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #eof = false;
  readonly decoder = new HpackDecoder();

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /**
   * Connects; by default sends the preface and an empty SETTINGS, and ACKs the server's.
   */
  static async connect(
    port: number,
    opts: { preface?: boolean; settings?: Uint8Array } = {},
  ): Promise<RawH2> {
    const c = new RawH2(await Deno.connect({ hostname: "127.0.0.1", port }));
    if (opts.preface !== false) {
      await c.raw(PREFACE);
      await c.send(FrameType.SETTINGS, 0, 0, opts.settings ?? new Uint8Array(0));
    }
    return c;
  }

  /** Writes bytes as they are. */
  async raw(bytes: Uint8Array): Promise<void> {
    let o = 0;
    while (o < bytes.length) o += await this.#conn.write(bytes.subarray(o));
  }

  /** Writes one frame. */
  async send(type: number, flags: number, stream: number, payload: Uint8Array = new Uint8Array(0)) {
    await this.raw(frameBytes(type, flags, stream, payload));
  }

  /** HEADERS with END_HEADERS (and END_STREAM when asked). */
  headers(stream: number, block: Uint8Array, endStream = false): Promise<void> {
    return this.send(
      FrameType.HEADERS,
      Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0),
      stream,
      block,
    );
  }

  /** DATA. */
  data(stream: number, bytes: Uint8Array, endStream = true): Promise<void> {
    return this.send(FrameType.DATA, endStream ? Flag.END_STREAM : 0, stream, bytes);
  }

  /** The next frame, or null at end of stream (or after `timeoutMs`: then it throws). */
  async frame(timeoutMs = 5000): Promise<Frame | null> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      if (this.#buf.length >= 9) {
        const b = this.#buf;
        const len = (b[0] << 16) | (b[1] << 8) | b[2];
        if (b.length >= 9 + len) {
          const f: Frame = {
            type: b[3],
            flags: b[4],
            stream: new DataView(b.buffer, b.byteOffset).getUint32(5) & 0x7fffffff,
            payload: b.slice(9, 9 + len),
          };
          this.#buf = b.slice(9 + len);
          return f;
        }
      }
      if (this.#eof) return null;
      const chunk = new Uint8Array(65536);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("No frame in time");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#conn.read(chunk).catch(() => null),
        new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), left))),
      ]);
      clearTimeout(timer);
      if (n === "timeout") throw new Error("No frame in time");
      if (n === null) {
        this.#eof = true;
        continue;
      }
      const next = new Uint8Array(this.#buf.length + n);
      next.set(this.#buf);
      next.set(chunk.subarray(0, n), this.#buf.length);
      this.#buf = next;
    }
  }

  /** Reads frames until one matches (acking SETTINGS on the way); null at end of stream. */
  async until(pred: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame | null> {
    while (true) {
      const f = await this.frame(timeoutMs);
      if (f === null) return null;
      if (f.type === FrameType.SETTINGS && !(f.flags & Flag.ACK)) {
        await this.send(FrameType.SETTINGS, Flag.ACK, 0);
      }
      if (pred(f)) return f;
    }
  }

  /** Reads until the server's GOAWAY; returns its error code (or null if it just closed). */
  async goaway(timeoutMs = 5000): Promise<number | null> {
    const f = await this.until((f) => f.type === FrameType.GOAWAY, timeoutMs);
    if (f === null) return null;
    return new DataView(f.payload.buffer).getUint32(4);
  }

  /** Reads until the connection closes (true), or throws after `timeoutMs`. */
  async closes(timeoutMs = 5000): Promise<true> {
    while ((await this.frame(timeoutMs)) !== null) { /* drain */ }
    return true;
  }

  /** Reads until RST_STREAM on `stream`; returns its error code. */
  async rst(stream: number): Promise<number | null> {
    const f = await this.until((f) => f.type === FrameType.RST_STREAM && f.stream === stream);
    return f === null ? null : new DataView(f.payload.buffer).getUint32(0);
  }

  /**
   * Reads one stream's answer to the end (END_STREAM or RST_STREAM): its header blocks decoded
   * (HEADERS with CONTINUATION joined), DATA joined, and a reset code if it was reset.
   */
  async answer(stream: number): Promise<Answer> {
    const headers: Map<string, string>[] = [];
    const data: Uint8Array[] = [];
    let block: Uint8Array[] = [];
    while (true) {
      const f = await this.until((f) => f.stream === stream || f.type === FrameType.GOAWAY);
      if (f === null) throw new Error(`Connection closed before stream ${stream} ended`);
      if (f.type === FrameType.GOAWAY) {
        throw new Error(`GOAWAY ${new DataView(f.payload.buffer).getUint32(4)}`);
      }
      if (f.type === FrameType.RST_STREAM) {
        return { headers, data: join(data), reset: new DataView(f.payload.buffer).getUint32(0) };
      }
      if (f.type === FrameType.HEADERS || f.type === FrameType.CONTINUATION) {
        block.push(f.payload);
        if (f.flags & Flag.END_HEADERS) {
          const fields = this.decoder.decode(join(block)).fields;
          block = [];
          const m = new Map<string, string>();
          for (let i = 0; i < fields.length; i += 2) m.set(fields[i], fields[i + 1]);
          headers.push(m);
        }
        if (f.type === FrameType.HEADERS && (f.flags & Flag.END_STREAM)) {
          if (!(f.flags & Flag.END_HEADERS)) continue;
          return { headers, data: join(data) };
        }
      } else if (f.type === FrameType.DATA) {
        data.push(f.payload);
        if (f.flags & Flag.END_STREAM) return { headers, data: join(data) };
      }
    }
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** One stream's answer. */
export interface Answer {
  /** Each header block (response headers, trailers) as a map. */
  readonly headers: Map<string, string>[];
  readonly data: Uint8Array;
  /** The RST_STREAM code, if the stream was reset. */
  readonly reset?: number;
}

/** The grpc-status (and message) of an answer: from its last header block. */
export function statusOf(a: Answer): { code: number; message: string; http: string } {
  const last = a.headers[a.headers.length - 1] ?? new Map();
  return {
    code: Number(last.get("grpc-status") ?? NaN),
    message: last.get("grpc-message") ?? "",
    http: a.headers[0]?.get(":status") ?? "",
  };
}

/** One frame's bytes. */
export function frameBytes(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array,
): Uint8Array {
  const w = new FrameWriter();
  w.frame(type, flags, stream, payload);
  return w.take().slice();
}

/** The bytes of `parts`, one after the other. */
export function join(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A 32-bit big-endian payload. */
export function u32(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v);
  return out;
}

/** A SETTINGS payload. */
export function settings(...pairs: [number, number][]): Uint8Array {
  const out = new Uint8Array(pairs.length * 6);
  const v = new DataView(out.buffer);
  pairs.forEach(([k, val], i) => {
    v.setUint16(i * 6, k);
    v.setUint32(i * 6 + 2, val);
  });
  return out;
}

export { ErrorCode, Flag, FrameType };
