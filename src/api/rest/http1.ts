/**
 * A small HTTP/1.1 server on `Deno.listen`, for the REST port. `Deno.serve` (Deno 2.9.3) has no
 * header or body read timeout (a client that sends its headers or body slowly, or never ends a
 * chunked body, holds its connection forever), no connection limit, and resets a connection
 * that pipelines more than a handful of requests; this server owns the connection, so it can:
 *
 * - close a connection whose request line and headers do not arrive within `headerTimeoutMs` of
 *   the request's first byte, or whose body does not arrive within `bodyTimeoutMs` of the end of
 *   its headers (`408`, then close); a keep-alive connection idle for `idleTimeoutMs` is closed;
 *   a response the client does not read within `idleTimeoutMs` closes the connection too;
 * - refuse a body over `maxBodyBytes` with `413` *before* reading it when `Content-Length`
 *   declares it, and as soon as a chunked body grows past it (then close, the rest unread);
 * - keep all request bodies held at once within `maxBufferedBodyBytes` (a request that would
 *   pass it gets `503` and its connection is closed), so memory stays bounded whatever the number
 *   of clients; and at most `maxConnections` connections are open: when a new one comes at the
 *   limit, the connection that has waited longest for a request (idle, or still sending one) is
 *   closed to make room, so slow clients cannot lock others out; if every connection is being
 *   answered, the new one is closed;
 * - answer pipelined requests one after the other, in order, on the same connection: the next
 *   request is read only once the previous response is written, so a client pipelining many
 *   requests is slowed by TCP flow control, never cut off.
 *
 * What it does not do: TLS, HTTP/2, upgrades, streaming request bodies to the handler (a body is
 * read whole, within the limits above). Responses are sent with `Content-Length`.
 *
 * @module
 */

/** One request, read whole. */
export interface Http1Request {
  /** The method, e.g. `POST`. */
  readonly method: string;
  /** The request target as sent (origin form: path and query). */
  readonly target: string;
  /** The headers. */
  readonly headers: Headers;
  /** The body (empty when there is none), as received (not inflated). */
  readonly body: Uint8Array;
  /**
   * Takes `bytes` more from the budget of body bytes held at once (`maxBufferedBodyBytes`), for
   * memory the handler holds on behalf of the body (e.g. its inflated copy); given back once the
   * response is written.
   *
   * @returns false (nothing taken) when they do not fit
   */
  hold(bytes: number): boolean;
  /**
   * Aborted when the connection closes (timeouts, shutdown, a failed write): work queued for a
   * request whose connection is gone can be dropped.
   */
  readonly signal: AbortSignal;
}

/** Answers one request. A thrown error is answered with `onError`'s response. */
export type Http1Handler = (req: Http1Request) => Response | Promise<Response>;

/** The limits of an {@link Http1Server}; 0 or less disables a timeout or a count. */
export interface Http1Limits {
  /** Connections open at once (default 1000). */
  readonly maxConnections?: number;
  /** From a request's first byte to the end of its headers (default 10 s). */
  readonly headerTimeoutMs?: number;
  /** From the end of a request's headers to the end of its body (default 60 s). */
  readonly bodyTimeoutMs?: number;
  /** A keep-alive connection without a request under way; also a response write (default 60 s). */
  readonly idleTimeoutMs?: number;
  /** The largest body, as sent (default 64 MiB). */
  readonly maxBodyBytes?: number;
  /** Body bytes held at once over all connections (default 256 MiB). */
  readonly maxBufferedBodyBytes?: number;
  /** The largest request line plus headers (default 64 KiB). */
  readonly maxHeaderBytes?: number;
}

/** Options of {@link serveHttp1}. */
export interface Http1Options extends Http1Limits {
  /** The address to bind. */
  readonly hostname: string;
  /** The port (0: any free port). */
  readonly port: number;
  /** The response to a request whose handler threw. */
  readonly onError: (e: unknown) => Response;
  /**
   * The response to a request refused before its handler ran (413, 503, 408, 400, 431): the
   * status and a message. Default: a plain-text body.
   */
  readonly refusal?: (status: number, message: string) => Response;
}

/** A running server. */
export interface Http1Server {
  /** The bound address. */
  readonly addr: Deno.NetAddr;
  /** Requests refused by a limit, by status (for tests and logs). */
  readonly refused: ReadonlyMap<number, number>;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Stops accepting, closes idle connections, waits for the requests under way to be answered
   * (each connection is closed after its current response), up to `graceMs`; then closes all.
   */
  shutdown(graceMs: number): Promise<void>;
}

const DEFAULTS = {
  maxConnections: 1000,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  maxBodyBytes: 64 * 1024 * 1024,
  maxBufferedBodyBytes: 256 * 1024 * 1024,
  maxHeaderBytes: 64 * 1024,
};

/**
 * A connection's read buffer starts this small (thousands of connections may be open; a request
 * head is usually well under 1 KiB) and doubles while a head needs it; bodies are read straight
 * into their own arrays.
 */
const INITIAL_BUFFER = 4 * 1024;
/** The scratch buffer discarding input after a refusal. */
const READ_CHUNK = 64 * 1024;
/** A chunk-size line (hex size and extensions) longer than this is refused. */
const MAX_CHUNK_LINE = 4096;

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  411: "Length Required",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  417: "Expectation Failed",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** A request refused by the server itself: answered with `status`, then the connection closes. */
class Refusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The connection ended (EOF, reset, or closed by a timer): nothing more to answer. */
class Closed extends Error {}

/** A shared count of body bytes held, with a cap. */
class Budget {
  #used = 0;
  constructor(readonly cap: number) {}
  /** Takes `n` bytes if they fit. */
  take(n: number): boolean {
    if (this.cap > 0 && this.#used + n > this.cap) return false;
    this.#used += n;
    return true;
  }
  give(n: number): void {
    this.#used -= n;
  }
}

/** Buffered reads from one connection. */
class Reader {
  buf = new Uint8Array(INITIAL_BUFFER);
  start = 0;
  end = 0;
  constructor(private readonly conn: Deno.Conn) {}

  get available(): number {
    return this.end - this.start;
  }

  /** Reads more bytes (at least one); throws Closed at EOF. */
  async fill(): Promise<void> {
    if (this.start === this.end) this.start = this.end = 0;
    if (this.buf.length - this.end < 1024) {
      const live = this.end - this.start;
      if (live * 2 <= this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        // Only a header block (bounded by maxHeaderBytes) or a chunk-size line grows it.
        const next = new Uint8Array(this.buf.length * 2);
        next.set(this.buf.subarray(this.start, this.end), 0);
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    let n: number | null;
    try {
      n = await this.conn.read(this.buf.subarray(this.end));
    } catch {
      throw new Closed();
    }
    if (n === null) throw new Closed();
    this.end += n;
  }

  /** The index (relative to start) of `\r\n\r\n` at or after `from`, or -1. */
  indexOfHeaderEnd(from: number): number {
    const b = this.buf;
    for (let i = this.start + Math.max(0, from); i + 3 < this.end; i++) {
      if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) {
        return i - this.start;
      }
    }
    return -1;
  }

  /** The index (relative to start) of `\r\n`, or -1. */
  indexOfLineEnd(): number {
    const b = this.buf;
    for (let i = this.start; i + 1 < this.end; i++) {
      if (b[i] === 13 && b[i + 1] === 10) return i - this.start;
    }
    return -1;
  }

  /** Takes `n` buffered bytes as a string (latin1). */
  takeString(n: number): string {
    const s = latin1.decode(this.buf.subarray(this.start, this.start + n));
    this.start += n;
    return s;
  }

  /**
   * Fills `out[at, at + n)`: buffered bytes first, then reads from the connection straight into
   * `out` (no copy through the buffer). Throws Closed at EOF.
   */
  async readExactly(out: Uint8Array, at: number, n: number): Promise<void> {
    let got = this.takeInto(out, at, n);
    while (got < n) {
      let k: number | null;
      try {
        k = await this.conn.read(out.subarray(at + got, at + n));
      } catch {
        throw new Closed();
      }
      if (k === null) throw new Closed();
      got += k;
    }
  }

  /** Copies up to `n` buffered bytes into `out` at `at`; returns how many. */
  takeInto(out: Uint8Array, at: number, n: number): number {
    const k = Math.min(n, this.available);
    out.set(this.buf.subarray(this.start, this.start + k), at);
    this.start += k;
    return k;
  }

  skip(n: number): void {
    this.start += n;
  }

  /** Lets a grown buffer shrink back once it is empty (after a large header block). */
  shrink(): void {
    if (this.available === 0 && this.buf.length > INITIAL_BUFFER) {
      this.buf = new Uint8Array(INITIAL_BUFFER);
      this.start = this.end = 0;
    }
  }
}

/**
 * Starts an HTTP/1.1 server.
 *
 * @param options address, limits and the error response
 * @param handler answers each request
 * @throws Deno.errors.AddrInUse (or another bind error) when the port cannot be bound
 */
export function serveHttp1(options: Http1Options, handler: Http1Handler): Http1Server {
  const limits = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    const v = options[key];
    if (v !== undefined) limits[key] = v;
  }
  const refusal = options.refusal ??
    ((status: number, message: string) => new Response(message, { status }));
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const budget = new Budget(limits.maxBufferedBodyBytes);
  const refused = new Map<number, number>();
  const conns = new Set<Connection>();
  let closing = false;

  class Connection {
    readonly reader: Reader;
    /** A request is being read or answered (not idle). */
    busy = false;
    /** The handler is running or its answer is being written (not evictable). */
    handling = false;
    /** When the connection last started waiting for a request (idle or reading one). */
    waitingSince = performance.now();
    closed = false;
    timer: ReturnType<typeof setTimeout> | undefined;
    /** Aborted on close (each request's `signal`). */
    readonly aborter = new AbortController();

    constructor(readonly conn: Deno.Conn) {
      this.reader = new Reader(conn);
    }

    close(): void {
      if (this.closed) return;
      this.closed = true;
      clearTimeout(this.timer);
      this.aborter.abort();
      try {
        this.conn.close();
      } catch {
        // Already closed.
      }
    }

    /** Arms (or with ms ≤ 0, disarms) the one timer of this connection. */
    deadline(ms: number, status?: number, message?: string): void {
      clearTimeout(this.timer);
      this.timer = undefined;
      if (ms <= 0) return;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (status === undefined) return this.close();
        count(status);
        // Best effort: the 408 goes out if the client reads; the connection closes regardless.
        const done = () => this.close();
        const res = refusal(status, message ?? "");
        res.arrayBuffer()
          .then((body) => this.conn.write(serialize(res, new Uint8Array(body), false, false)))
          .then(done, done);
        setTimeout(done, 1000);
      }, ms);
    }

    async write(bytes: Uint8Array): Promise<void> {
      this.deadline(limits.idleTimeoutMs);
      let off = 0;
      try {
        while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
      } catch {
        throw new Closed();
      }
      this.deadline(0);
    }
  }

  function count(status: number): void {
    refused.set(status, (refused.get(status) ?? 0) + 1);
  }

  /** Reads the request line and headers; undefined at a clean EOF between requests. */
  async function readHead(c: Connection): Promise<
    { method: string; target: string; version: string; headers: Headers } | undefined
  > {
    const r = c.reader;
    c.waitingSince = performance.now();
    // Idle until the first byte; then the header timeout runs.
    if (r.available === 0) {
      c.busy = false;
      if (closing) return undefined;
      c.deadline(limits.idleTimeoutMs);
      try {
        await r.fill();
      } catch (e) {
        if (e instanceof Closed) return undefined;
        throw e;
      }
    }
    c.busy = true;
    c.deadline(limits.headerTimeoutMs, 408, "Request headers not received in time");
    // RFC 9112 2.2: ignore empty lines before a request line.
    for (;;) {
      while (r.available < 2) await r.fill();
      if (r.buf[r.start] === 13 && r.buf[r.start + 1] === 10) r.skip(2);
      else break;
    }
    let end = -1;
    let searched = 0;
    while ((end = r.indexOfHeaderEnd(searched)) < 0) {
      if (r.available > limits.maxHeaderBytes) {
        throw new Refusal(431, "Request header fields too large");
      }
      searched = Math.max(0, r.available - 3);
      await r.fill();
    }
    if (end > limits.maxHeaderBytes) throw new Refusal(431, "Request header fields too large");
    const head = r.takeString(end);
    r.skip(4);
    const lines = head.split("\r\n");
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0]);
    if (!m) throw new Refusal(400, "Malformed request line");
    const headers = new Headers();
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(":");
      // No obsolete line folding, no space before the colon (RFC 9112 5.1, 5.2).
      if (colon <= 0 || line[0] === " " || line[0] === "\t" || /\s/.test(line[colon - 1])) {
        throw new Refusal(400, "Malformed header field");
      }
      try {
        headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
      } catch {
        throw new Refusal(400, "Malformed header field");
      }
    }
    return { method: m[1], target: m[2], version: m[3], headers };
  }

  /** Reads the body the headers declare, within the limits; the budget taken is returned. */
  async function readBody(
    c: Connection,
    headers: Headers,
    expectContinue: boolean,
  ): Promise<{ body: Uint8Array; taken: number }> {
    const te = headers.get("transfer-encoding");
    const cl = headers.get("content-length");
    if (te !== null) {
      // Only "chunked" alone is understood; with Content-Length as well the message is
      // ambiguous (request smuggling), so both are refused.
      if (te.trim().toLowerCase() !== "chunked") {
        throw new Refusal(501, `Transfer-Encoding ${te} is not supported`);
      }
      if (cl !== null) throw new Refusal(400, "Both Transfer-Encoding and Content-Length");
      if (expectContinue) await c.write(CONTINUE);
      return await readChunked(c);
    }
    if (cl === null) return { body: EMPTY, taken: 0 };
    if (!/^[0-9]+$/.test(cl.trim())) throw new Refusal(400, "Malformed Content-Length");
    const length = Number(cl.trim());
    if (length === 0) return { body: EMPTY, taken: 0 };
    if (length > limits.maxBodyBytes) {
      throw new Refusal(
        413,
        `Request body is larger than the limit of ${limits.maxBodyBytes} bytes`,
      );
    }
    if (!budget.take(length)) {
      throw new Refusal(503, "Too many request bytes are being received; try again later");
    }
    try {
      if (expectContinue) await c.write(CONTINUE);
      c.deadline(limits.bodyTimeoutMs, 408, "Request body not received in time");
      const body = new Uint8Array(length);
      await c.reader.readExactly(body, 0, length);
      return { body, taken: length };
    } catch (e) {
      budget.give(length);
      throw e;
    }
  }

  async function readChunked(c: Connection): Promise<{ body: Uint8Array; taken: number }> {
    c.deadline(limits.bodyTimeoutMs, 408, "Request body not received in time");
    const r = c.reader;
    const chunks: Uint8Array[] = [];
    let total = 0;
    const line = async (): Promise<string> => {
      let end;
      while ((end = r.indexOfLineEnd()) < 0) {
        if (r.available > MAX_CHUNK_LINE) throw new Refusal(400, "Malformed chunked body");
        await r.fill();
      }
      const s = r.takeString(end);
      r.skip(2);
      return s;
    };
    try {
      for (;;) {
        const sizeLine = await line();
        const hex = /^([0-9A-Fa-f]{1,15})[ \t]*(;.*)?$/.exec(sizeLine);
        if (!hex) throw new Refusal(400, "Malformed chunked body");
        const size = parseInt(hex[1], 16);
        if (size === 0) break;
        if (total + size > limits.maxBodyBytes) {
          throw new Refusal(
            413,
            `Request body is larger than the limit of ${limits.maxBodyBytes} bytes`,
          );
        }
        if (!budget.take(size)) {
          throw new Refusal(503, "Too many request bytes are being received; try again later");
        }
        total += size;
        const chunk = new Uint8Array(size);
        chunks.push(chunk);
        await r.readExactly(chunk, 0, size);
        while (r.available < 2) await r.fill();
        if (r.buf[r.start] !== 13 || r.buf[r.start + 1] !== 10) {
          throw new Refusal(400, "Malformed chunked body");
        }
        r.skip(2);
      }
      // Trailer fields, up to the empty line; bounded like the header block.
      let trailer = 0;
      for (;;) {
        const t = await line();
        if (t === "") break;
        trailer += t.length;
        if (trailer > limits.maxHeaderBytes) {
          throw new Refusal(431, "Request header fields too large");
        }
      }
    } catch (e) {
      budget.give(total);
      throw e;
    }
    if (chunks.length === 1) return { body: chunks[0], taken: total };
    const body = new Uint8Array(total);
    let k = 0;
    for (const chunk of chunks) {
      body.set(chunk, k);
      k += chunk.length;
    }
    return { body, taken: total };
  }

  async function serveConnection(c: Connection): Promise<void> {
    try {
      for (;;) {
        const head = await readHead(c);
        if (head === undefined) break;
        const { method, target, version, headers } = head;
        const connection = (headers.get("connection") ?? "").toLowerCase();
        let keepAlive = version === "1.1"
          ? !/(^|,)\s*close\s*(,|$)/.test(connection)
          : /(^|,)\s*keep-alive\s*(,|$)/.test(connection);
        const expect = headers.get("expect");
        if (expect !== null && expect.toLowerCase() !== "100-continue") {
          throw new Refusal(417, `Expectation ${expect} is not supported`);
        }
        const { body, taken } = await readBody(c, headers, expect !== null && version === "1.1");
        c.deadline(0);
        c.handling = true;
        let response: Response;
        let payload: Uint8Array;
        let held = 0;
        const hold = (bytes: number) => {
          if (!budget.take(bytes)) return false;
          held += bytes;
          return true;
        };
        try {
          try {
            response = await handler({
              method,
              target,
              headers,
              body,
              hold,
              signal: c.aborter.signal,
            });
          } catch (e) {
            response = options.onError(e);
          }
          payload = new Uint8Array(await response.arrayBuffer());
        } finally {
          budget.give(taken + held);
        }
        if (closing) keepAlive = false;
        await c.write(serialize(response, payload, method === "HEAD", keepAlive));
        c.handling = false;
        c.reader.shrink();
        if (!keepAlive) {
          // Requests pipelined behind this one stay unanswered (RFC 9112 9.6); lingering keeps
          // them from resetting the connection before the client has read this answer.
          await lingerClose(c);
          break;
        }
      }
    } catch (e) {
      if (e instanceof Refusal && !c.closed) {
        count(e.status);
        c.deadline(0);
        const res = refusal(e.status, e.message);
        const payload = new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
        await c.write(serialize(res, payload, false, false)).catch(() => {});
        await lingerClose(c);
      } else if (!(e instanceof Closed) && !c.closed) {
        // A bug, not a client's doing: answered as a server error when still possible.
        const res = options.onError(e);
        const payload = new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
        await c.write(serialize(res, payload, false, false)).catch(() => {});
      }
    } finally {
      c.close();
      conns.delete(c);
    }
  }

  /**
   * After a refusal the client may still be sending (a body over the limit): closing with unread
   * input would reset the connection and could destroy the answer before the client reads it.
   * So the write side is shut and the input discarded (not kept) until EOF, for at most 2 s.
   */
  async function lingerClose(c: Connection): Promise<void> {
    try {
      await c.conn.closeWrite();
    } catch {
      return;
    }
    c.deadline(2000);
    const sink = new Uint8Array(READ_CHUNK);
    try {
      while ((await c.conn.read(sink)) !== null) {
        // Discarded.
      }
    } catch {
      // Closed by the deadline, or reset by the client.
    }
  }

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (closing || e instanceof Deno.errors.BadResource) return; // the listener was closed
        // Out of file descriptors or the like: the connections open now end by their timeouts,
        // so accepting resumes shortly instead of stopping for good.
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (!closing && limits.maxConnections > 0 && conns.size >= limits.maxConnections) {
        // Full: the connection that has waited longest for a request (idle, or sending one
        // slowly) makes room, so clients that hold connections cannot lock others out.
        let oldest: Connection | undefined;
        for (const c of conns) {
          if (!c.handling && !c.closed && (!oldest || c.waitingSince < oldest.waitingSince)) {
            oldest = c;
          }
        }
        if (oldest) {
          count(503);
          oldest.close();
          conns.delete(oldest);
        }
      }
      if (closing || (limits.maxConnections > 0 && conns.size >= limits.maxConnections)) {
        count(503);
        try {
          conn.close();
        } catch {
          // Gone already.
        }
        continue;
      }
      const c = new Connection(conn);
      conns.add(c);
      serveConnection(c).catch(() => c.close()); // never an unhandled rejection
    }
  })();

  return {
    addr: listener.addr as Deno.NetAddr,
    refused,
    get connections() {
      return conns.size;
    },
    async shutdown(graceMs: number) {
      if (!closing) {
        closing = true;
        try {
          listener.close();
        } catch {
          // Already closed.
        }
      }
      await accepting;
      for (const c of conns) if (!c.busy) c.close();
      const deadline = Date.now() + graceMs;
      while (conns.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        for (const c of conns) if (!c.busy) c.close();
      }
      for (const c of conns) c.close();
    },
  };
}

const EMPTY = new Uint8Array(0);
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

function statusLine(status: number, statusText: string): string {
  return `HTTP/1.1 ${status} ${statusText || REASONS[status] || "Unknown"}\r\n`;
}

function serialize(
  res: Response,
  payload: Uint8Array,
  head: boolean,
  keepAlive: boolean,
): Uint8Array {
  let text = statusLine(res.status, res.statusText);
  let hasType = false;
  for (const [name, value] of res.headers) {
    if (name === "content-length" || name === "connection" || name === "transfer-encoding") {
      continue;
    }
    if (name === "content-type") hasType = true;
    text += `${name}: ${value}\r\n`;
  }
  const bodiless = res.status === 204 || res.status === 304 || res.status < 200;
  if (!hasType && payload.length > 0) text += "content-type: text/plain;charset=UTF-8\r\n";
  if (!bodiless) text += `content-length: ${payload.length}\r\n`;
  text += `date: ${new Date().toUTCString()}\r\n`;
  if (!keepAlive) text += "connection: close\r\n";
  text += "\r\n";
  const headBytes = encoder.encode(text);
  return head || bodiless ? headBytes : concat(headBytes, payload);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
