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
 * - answer pipelined requests one after the other, in order, on the same connection: nothing
 *   more is read until the answers to the requests already read are written, so a client
 *   pipelining many requests is slowed by TCP flow control, never cut off.
 *
 * What it does not do: TLS, HTTP/2, upgrades, streaming request bodies to the handler (a body is
 * read whole, within the limits above). Responses are sent with `Content-Length`.
 *
 * How it stays cheap per request (a small request costs about what `Deno.serve` costs): each
 * connection reads into one reused buffer and parses every complete request in it before
 * reading again; a handler that answers synchronously with an {@link Http1Reply} has its head and
 * body encoded into one reused output buffer, and the answers to all the requests of one read go
 * out in one write. No timer is armed per request: each connection keeps a deadline, and one
 * sweep per server (every tenth of the shortest timeout, between 10 ms and 1 s) closes or answers
 * those past it, so a timeout fires at most two sweeps late, never early. Headers become a
 * `Headers` object, and the request an `AbortSignal`, only when a handler asks for them.
 *
 * @module
 */
/** One request, read whole. */
export interface Http1Request {
  /** The method, e.g. `POST`. */
  readonly method: string;
  /** The request target as sent (origin form: path and query). */
  readonly target: string;
  /** The headers (built on first use; {@link header} is cheaper for one field). */
  readonly headers: Headers;
  /**
   * One header field's value, as `Headers.get` gives it (repeated fields joined with `, `).
   *
   * @param name the field name, lower case
   * @returns the value, or null when the field is absent
   */
  header(name: string): string | null;
  /**
   * The body (empty when there is none), as received (not inflated). A small body may be a view
   * of the connection's read buffer: valid until the request is answered (copy it to keep it
   * longer).
   */
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

/**
 * An answer without a `Response` object (the cheap form): the status, the header fields in
 * order, and the body (a string is sent as UTF-8).
 */
export interface Http1Reply {
  /** The HTTP status. */
  readonly status: number;
  /** Header fields; `Content-Length`, `Connection` and `Transfer-Encoding` are the server's. */
  readonly headers: readonly (readonly [string, string])[];
  /** The body (`null`: none). */
  readonly body: string | Uint8Array | null;
}

/** Answers one request. A thrown error is answered with `onError`'s response. */
export type Http1Handler = (
  req: Http1Request,
) => Response | Http1Reply | Promise<Response | Http1Reply>;

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
  readonly onError: (e: unknown) => Response | Http1Reply;
  /**
   * The response to a request refused before its handler ran (413, 503, 408, 400, 431): the
   * status and a message. Default: a plain-text body.
   */
  readonly refusal?: (status: number, message: string) => Response | Http1Reply;
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
 * head is usually well under 1 KiB) and doubles while a head needs it; bodies that do not fit
 * are read straight into their own arrays.
 */
const INITIAL_BUFFER = 4 * 1024;
/** The output buffer of a connection starts this small, made on its first answer. */
const INITIAL_OUTPUT = 4 * 1024;
/** Answers gathered this large are written before the next request is parsed. */
const FLUSH_BYTES = 64 * 1024;
/** A body this large is written from its own array rather than copied into the output buffer. */
const DIRECT_BODY_BYTES = 32 * 1024;
/** A buffered body up to this size is handed over as a view of the read buffer. */
const VIEW_BODY_BYTES = 16 * 1024;
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

const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(1\.[01])$/;
const CLOSE_TOKEN = /(^|,)\s*close\s*(,|$)/;
const KEEP_ALIVE_TOKEN = /(^|,)\s*keep-alive\s*(,|$)/;

/** A request refused by the server itself: answered with `status`, then the connection closes. */
class Refusal extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The connection ended (EOF, reset, or closed by a deadline): nothing more to answer. */
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

/** Bytes as a latin1 string: a small head without a decoder call. */
function latin1String(b: Uint8Array, start: number, end: number): string {
  if (end - start > 2048) return latin1.decode(b.subarray(start, end));
  return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
}

/** Whether a string is ASCII (so its UTF-8 is as long as it is). */
function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** A status line and header fields, encoded once per frozen header array. */
interface HeadBlock {
  readonly text: string;
  readonly hasType: boolean;
}

const HEAD_BLOCKS = new WeakMap<object, Map<number, HeadBlock>>();

/** The status line and the reply's own header fields (names in lower case). */
function headBlock(status: number, headers: Http1Reply["headers"]): HeadBlock {
  const frozen = Object.isFrozen(headers);
  if (frozen) {
    const cached = HEAD_BLOCKS.get(headers)?.get(status);
    if (cached !== undefined) return cached;
  }
  let text = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
  let hasType = false;
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i];
    const lower = name.toLowerCase();
    if (lower === "content-length" || lower === "connection" || lower === "transfer-encoding") {
      continue;
    }
    if (lower === "content-type") hasType = true;
    text += `${lower}: ${value}\r\n`;
  }
  const block = { text, hasType };
  if (frozen) {
    let byStatus = HEAD_BLOCKS.get(headers);
    if (byStatus === undefined) HEAD_BLOCKS.set(headers, byStatus = new Map());
    byStatus.set(status, block);
  }
  return block;
}

/**
 * Answers encoded one after the other into one reused buffer (made on first use, dropped after
 * a large answer so an idle connection holds little).
 */
class Output {
  #buf: Uint8Array | undefined;
  length = 0;

  /** Room for `n` more bytes. */
  #reserve(n: number): Uint8Array {
    const buf = this.#buf;
    if (buf !== undefined && buf.length - this.length >= n) return buf;
    let size = buf?.length ?? INITIAL_OUTPUT;
    while (size - this.length < n) size *= 2;
    const grown = new Uint8Array(size);
    if (buf !== undefined) grown.set(buf.subarray(0, this.length));
    this.#buf = grown;
    return grown;
  }

  /** Appends a string as UTF-8. */
  #string(s: string): void {
    const buf = this.#reserve(s.length * 3);
    this.length += encoder.encodeInto(s, buf.subarray(this.length)).written;
  }

  /**
   * The bytes gathered, emptying the output; valid until the next append (the caller writes
   * them before appending again).
   */
  take(): Uint8Array {
    const n = this.length;
    this.length = 0;
    const buf = this.#buf!;
    if (buf.length > FLUSH_BYTES) this.#buf = undefined;
    return buf.subarray(0, n);
  }

  /**
   * Appends an answer's head, and its body unless it is large.
   *
   * @returns the body to write after the gathered bytes, when it is large
   */
  append(
    reply: Http1Reply,
    head: boolean,
    keepAlive: boolean,
    date: string,
  ): Uint8Array | undefined {
    const body = reply.body;
    const status = reply.status;
    const bodiless = status === 204 || status === 304 || status < 200;
    let { text, hasType } = headBlock(status, reply.headers);
    let bytes: Uint8Array | undefined;
    let length: number;
    if (body === null) {
      length = 0;
    } else if (typeof body === "string") {
      // Mostly ASCII: then its length is its byte length, without encoding it first.
      length = body.length <= DIRECT_BODY_BYTES && isAscii(body)
        ? body.length
        : (bytes = encoder.encode(body)).length;
    } else {
      bytes = body;
      length = body.length;
    }
    if (!hasType && length > 0) text += "content-type: text/plain;charset=UTF-8\r\n";
    if (!bodiless) text += `content-length: ${length}\r\n`;
    text += `date: ${date}\r\n`;
    if (!keepAlive) text += "connection: close\r\n";
    text += "\r\n";
    this.#string(text);
    if (head || bodiless || length === 0) return undefined;
    if (bytes === undefined) {
      this.#string(body as string);
      return undefined;
    }
    if (bytes.length > DIRECT_BODY_BYTES) return bytes;
    const buf = this.#reserve(bytes.length);
    buf.set(bytes, this.length);
    this.length += bytes.length;
    return undefined;
  }
}

/** What a connection is waiting for, which decides what its deadline does. */
const enum Wait {
  /** Nothing armed. */
  None,
  /** A request's first byte (keep-alive): closed silently. */
  Idle,
  /** The rest of a request head: 408. */
  Head,
  /** A request body: 408. */
  Body,
  /** A response write, or lingering after a refusal: closed. */
  Write,
}

/** The request line and header fields of one request. */
interface Head {
  method: string;
  target: string;
  version: string;
  /** The head as received; its fields start at `fieldsAt`. */
  text: string;
  fieldsAt: number;
  contentLength: string | null;
  transferEncoding: string | null;
  expect: string | null;
  connection: string | null;
  contentEncoding: string | null;
  origin: string | null;
}

/** The fields the server or the REST layer reads of every request, found while parsing. */
const KNOWN_FIELDS = [
  "content-length",
  "transfer-encoding",
  "expect",
  "connection",
  "content-encoding",
  "origin",
] as const;
type KnownField = typeof KNOWN_FIELDS[number];
const KNOWN_KEYS: Record<KnownField, keyof Head> = {
  "content-length": "contentLength",
  "transfer-encoding": "transferEncoding",
  "expect": "expect",
  "connection": "connection",
  "content-encoding": "contentEncoding",
  "origin": "origin",
};

/** Whether `text[at, at + name.length)` is `name` (lower case) in any case. */
function isName(text: string, at: number, name: string): boolean {
  for (let k = 0; k < name.length; k++) {
    let c = text.charCodeAt(at + k);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== name.charCodeAt(k)) return false;
  }
  return true;
}

/** The known field a name (`text[at, end)`) is, if any. */
function knownField(text: string, at: number, end: number): KnownField | undefined {
  const n = end - at;
  for (const name of KNOWN_FIELDS) {
    if (name.length === n && isName(text, at, name)) return name;
  }
  return undefined;
}

const TOKEN_AT = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;
/** A field value's characters (what `Headers` accepts). */
const VALUE_AT = /[^\0\r\n]*/y;

/**
 * Each field of a head, checked: `visit(nameStart, colon, end)` per line. Nothing is allocated
 * for a field nobody asks for.
 *
 * @throws Refusal 400 for a malformed field
 */
function eachField(
  text: string,
  from: number,
  visit: (at: number, colon: number, end: number) => void,
): void {
  let pos = from;
  while (pos < text.length) {
    let end = text.indexOf("\r\n", pos);
    if (end < 0) end = text.length;
    const colon = text.indexOf(":", pos);
    // No obsolete line folding, no space before the colon (RFC 9112 5.1, 5.2).
    if (colon < 0 || colon >= end || colon === pos) {
      throw new Refusal(400, "Malformed header field");
    }
    TOKEN_AT.lastIndex = pos;
    if (!TOKEN_AT.test(text) || TOKEN_AT.lastIndex !== colon) {
      throw new Refusal(400, "Malformed header field");
    }
    VALUE_AT.lastIndex = colon + 1;
    VALUE_AT.test(text);
    if (VALUE_AT.lastIndex !== end) throw new Refusal(400, "Malformed header field");
    visit(pos, colon, end);
    pos = end + 2;
  }
}

/** The value of the field `text[colon + 1, end)`, trimmed. */
function valueOf(text: string, colon: number, end: number): string {
  return text.slice(colon + 1, end).trim();
}

/**
 * Parses a head (request line and fields, without the final blank line).
 *
 * @throws Refusal 400 for a malformed request line or field
 */
function parseHead(text: string): Head {
  let eol = text.indexOf("\r\n");
  if (eol < 0) eol = text.length;
  const m = REQUEST_LINE.exec(text.slice(0, eol));
  if (!m) throw new Refusal(400, "Malformed request line");
  const head: Head = {
    method: m[1],
    target: m[2],
    version: m[3],
    text,
    fieldsAt: eol + 2,
    contentLength: null,
    transferEncoding: null,
    expect: null,
    connection: null,
    contentEncoding: null,
    origin: null,
  };
  eachField(text, eol + 2, (at, colon, end) => {
    const known = knownField(text, at, colon);
    if (known === undefined) return;
    const key = KNOWN_KEYS[known] as "contentLength";
    const value = valueOf(text, colon, end);
    // Repeated fields are joined as `Headers.get` joins them.
    const prev = head[key];
    head[key] = prev === null ? value : `${prev}, ${value}`;
  });
  return head;
}

/** Every field of a head: lower-case names and values, interleaved. */
function headFields(head: Head): string[] {
  const fields: string[] = [];
  const text = head.text;
  eachField(text, head.fieldsAt, (at, colon, end) => {
    fields.push(text.slice(at, colon).toLowerCase(), valueOf(text, colon, end));
  });
  return fields;
}

/** Joins repeated fields as `Headers.get` does. */
function fieldValue(fields: readonly string[], name: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === name) value = value === null ? fields[i + 1] : `${value}, ${fields[i + 1]}`;
  }
  return value;
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

  // One sweep for every deadline: a tenth of the shortest timeout, within [10 ms, 1 s].
  const timeouts = [limits.headerTimeoutMs, limits.bodyTimeoutMs, limits.idleTimeoutMs, 2000]
    .filter((t) => t > 0);
  const tick = Math.min(1000, Math.max(10, Math.floor(Math.min(...timeouts) / 10)));
  /**
   * The clock deadlines are set from (ms), one tick on so none fires early: refreshed by the
   * sweep, after each read and before each write.
   */
  let clock = performance.now();
  let date = new Date().toUTCString();
  let dateSecond = Math.floor(Date.now() / 1000);
  const sweep = setInterval(() => {
    clock = performance.now();
    const second = Math.floor(Date.now() / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      date = new Date(second * 1000).toUTCString();
    }
    for (const c of conns) {
      if (c.wait !== Wait.None && clock >= c.deadline) c.expire();
    }
  }, tick);

  class Connection {
    buf = new Uint8Array(INITIAL_BUFFER);
    start = 0;
    end = 0;
    /** Answers gathered for the next write. */
    readonly out = new Output();
    /** A request is being read or answered (not idle). */
    busy = false;
    /** The handler is running or its answer is being written (not evictable). */
    handling = false;
    /** When the connection last started waiting for a request (idle or reading one). */
    waitingSince = clock;
    closed = false;
    wait = Wait.None;
    deadline = 0;
    #aborter: AbortController | undefined;

    constructor(readonly conn: Deno.Conn) {}

    /** Aborted on close (each request's `signal`); made when first asked for. */
    get signal(): AbortSignal {
      this.#aborter ??= new AbortController();
      if (this.closed) this.#aborter.abort();
      return this.#aborter.signal;
    }

    get available(): number {
      return this.end - this.start;
    }

    close(): void {
      if (this.closed) return;
      this.closed = true;
      this.wait = Wait.None;
      this.#aborter?.abort();
      try {
        this.conn.close();
      } catch {
        // Already closed.
      }
    }

    /** Arms the deadline for what the connection now waits for (`ms` ≤ 0: none). */
    arm(wait: Wait, ms: number): void {
      if (ms <= 0) {
        this.wait = Wait.None;
        return;
      }
      this.wait = wait;
      this.deadline = clock + ms + tick;
    }

    /** The deadline passed (from the sweep). */
    expire(): void {
      const wait = this.wait;
      this.wait = Wait.None;
      if (wait !== Wait.Head && wait !== Wait.Body) return this.close();
      const status = 408;
      count(status);
      const message = wait === Wait.Head
        ? "Request headers not received in time"
        : "Request body not received in time";
      // Best effort: the 408 goes out if the client reads; the connection closes regardless.
      const done = () => this.close();
      const guard = setTimeout(done, 1000);
      encodeAnswer(refusal(status, message), false, false)
        .then((bytes) => this.conn.write(bytes))
        .then(done, done)
        .finally(() => clearTimeout(guard));
    }

    /** Reads more bytes (at least one) into the buffer; false at EOF or on an error. */
    async fill(): Promise<boolean> {
      if (this.start === this.end) this.start = this.end = 0;
      if (this.buf.length - this.end < 1024) {
        const live = this.end - this.start;
        if (live * 2 <= this.buf.length) {
          this.buf.copyWithin(0, this.start, this.end);
        } else {
          // Only a head (bounded by maxHeaderBytes) or a chunk-size line grows it.
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
        return false;
      }
      if (n === null) return false;
      this.end += n;
      // Fresh for the deadlines armed while this input is handled (the sweep's clock may be
      // stale after a long synchronous call, and a deadline must never fire early).
      clock = performance.now();
      return true;
    }

    /** As {@link fill}, throwing Closed at EOF; answers gathered so far are written first. */
    async more(): Promise<void> {
      await this.flush();
      if (!(await this.fill())) throw new Closed();
    }

    /** The offset of `\r\n\r\n` at or after `from`, or -1. */
    headEnd(from: number): number {
      const b = this.buf;
      for (let i = Math.max(this.start, from); i + 3 < this.end; i++) {
        if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
      }
      return -1;
    }

    /** The index (relative to start) of `\r\n`, or -1. */
    lineEnd(): number {
      const b = this.buf;
      for (let i = this.start; i + 1 < this.end; i++) {
        if (b[i] === 13 && b[i + 1] === 10) return i - this.start;
      }
      return -1;
    }

    /** Takes `n` buffered bytes as a string (latin1). */
    takeString(n: number): string {
      const s = latin1String(this.buf, this.start, this.start + n);
      this.start += n;
      return s;
    }

    /** Copies up to `n` buffered bytes into `out` at `at`; returns how many. */
    takeInto(out: Uint8Array, at: number, n: number): number {
      const k = Math.min(n, this.available);
      out.set(this.buf.subarray(this.start, this.start + k), at);
      this.start += k;
      return k;
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

    /** Lets a grown buffer shrink back once it is empty (after a large head). */
    shrink(): void {
      if (this.available === 0 && this.buf.length > INITIAL_BUFFER) {
        this.buf = new Uint8Array(INITIAL_BUFFER);
        this.start = this.end = 0;
      }
    }

    /** Writes `bytes` whole, under the idle timeout; throws Closed when the write fails. */
    async writeAll(bytes: Uint8Array): Promise<void> {
      const { handling, wait, deadline } = this;
      this.handling = true;
      clock = performance.now();
      this.arm(Wait.Write, limits.idleTimeoutMs);
      let off = 0;
      try {
        while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
      } catch {
        throw new Closed();
      } finally {
        // What the connection waited for before (a head's deadline runs on).
        this.wait = wait;
        this.deadline = deadline;
        this.handling = handling;
      }
    }

    /** Writes the gathered answers. */
    async flush(): Promise<void> {
      const out = this.out;
      if (out.length === 0) return;
      await this.writeAll(out.take());
    }

    /**
     * Sends an answer: gathered for the next flush (nothing to wait for), or written now when its
     * body is large (then a promise).
     */
    answer(reply: Http1Reply, head: boolean, keepAlive: boolean): Promise<void> | undefined {
      const large = this.out.append(reply, head, keepAlive, date);
      if (large === undefined) return undefined;
      return this.flush().then(() => this.writeAll(large));
    }
  }

  function count(status: number): void {
    refused.set(status, (refused.get(status) ?? 0) + 1);
  }

  /** One request as the handler sees it. */
  class Request1 implements Http1Request {
    held = 0;
    #headers: Headers | undefined;
    #fields: string[] | undefined;
    constructor(
      readonly head: Head,
      readonly body: Uint8Array,
      readonly c: Connection,
    ) {}
    get method(): string {
      return this.head.method;
    }
    get target(): string {
      return this.head.target;
    }
    get headers(): Headers {
      if (this.#headers === undefined) {
        const fields = this.#fields ??= headFields(this.head);
        const h = new Headers();
        for (let i = 0; i < fields.length; i += 2) h.append(fields[i], fields[i + 1]);
        this.#headers = h;
      }
      return this.#headers;
    }
    header(name: string): string | null {
      const key = KNOWN_KEYS[name as KnownField];
      if (key !== undefined && Object.hasOwn(KNOWN_KEYS, name)) {
        return this.head[key] as string | null;
      }
      return fieldValue(this.#fields ??= headFields(this.head), name);
    }
    hold(bytes: number): boolean {
      if (!budget.take(bytes)) return false;
      this.held += bytes;
      return true;
    }
    get signal(): AbortSignal {
      return this.c.signal;
    }
  }

  /**
   * Reads a request head, parsing in place when it is already buffered; undefined at a clean
   * EOF (or shutdown) between requests.
   */
  async function readHead(c: Connection): Promise<Head | undefined> {
    c.waitingSince = clock;
    if (c.available === 0) {
      // Idle until the first byte; then the header timeout runs.
      c.busy = false;
      if (closing) return undefined;
      c.arm(Wait.Idle, limits.idleTimeoutMs);
      if (!(await c.fill())) return undefined;
    }
    c.busy = true;
    c.arm(Wait.Head, limits.headerTimeoutMs);
    // RFC 9112 2.2: ignore empty lines before a request line.
    for (;;) {
      while (c.available < 2) await c.more();
      if (c.buf[c.start] === 13 && c.buf[c.start + 1] === 10) c.start += 2;
      else break;
    }
    let end: number;
    let searched = c.start;
    while ((end = c.headEnd(searched)) < 0) {
      if (c.available > limits.maxHeaderBytes) {
        throw new Refusal(431, "Request header fields too large");
      }
      const before = c.start;
      searched = Math.max(c.start, c.end - 3);
      await c.more();
      searched += c.start - before; // the buffer may have moved
    }
    if (end - c.start > limits.maxHeaderBytes) {
      throw new Refusal(431, "Request header fields too large");
    }
    const text = c.takeString(end - c.start);
    c.start += 4;
    return parseHead(text);
  }

  /** Reads the body the head declares, within the limits; the budget taken is returned. */
  async function readBody(
    c: Connection,
    head: Head,
    expectContinue: boolean,
  ): Promise<{ body: Uint8Array; taken: number }> {
    const te = head.transferEncoding;
    const cl = head.contentLength;
    if (te !== null) {
      // Only "chunked" alone is understood; with Content-Length as well the message is
      // ambiguous (request smuggling), so both are refused.
      if (te.trim().toLowerCase() !== "chunked") {
        throw new Refusal(501, `Transfer-Encoding ${te} is not supported`);
      }
      if (cl !== null) throw new Refusal(400, "Both Transfer-Encoding and Content-Length");
      if (expectContinue) await c.writeAll(CONTINUE);
      return await readChunked(c);
    }
    if (cl === null) return { body: EMPTY, taken: 0 };
    if (!/^[0-9]+$/.test(cl)) throw new Refusal(400, "Malformed Content-Length");
    const length = Number(cl);
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
      if (expectContinue) await c.writeAll(CONTINUE);
      c.arm(Wait.Body, limits.bodyTimeoutMs);
      const body = new Uint8Array(length);
      await c.readExactly(body, 0, length);
      return { body, taken: length };
    } catch (e) {
      budget.give(length);
      throw e;
    }
  }

  async function readChunked(c: Connection): Promise<{ body: Uint8Array; taken: number }> {
    c.arm(Wait.Body, limits.bodyTimeoutMs);
    const chunks: Uint8Array[] = [];
    let total = 0;
    const line = async (): Promise<string> => {
      let end;
      while ((end = c.lineEnd()) < 0) {
        if (c.available > MAX_CHUNK_LINE) throw new Refusal(400, "Malformed chunked body");
        await c.more();
      }
      const s = c.takeString(end);
      c.start += 2;
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
        await c.readExactly(chunk, 0, size);
        while (c.available < 2) await c.more();
        if (c.buf[c.start] !== 13 || c.buf[c.start + 1] !== 10) {
          throw new Refusal(400, "Malformed chunked body");
        }
        c.start += 2;
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

  /** A Response as an {@link Http1Reply}. */
  async function fromResponse(res: Response): Promise<Http1Reply> {
    const body = new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
    return { status: res.status, headers: [...res.headers], body };
  }

  /** A refusal's or error's answer, encoded whole (it closes the connection). */
  async function encodeAnswer(
    res: Response | Http1Reply,
    head: boolean,
    keepAlive: boolean,
  ): Promise<Uint8Array> {
    const out = new Output();
    const large = out.append(await toReply(res), head, keepAlive, date);
    const gathered = out.take();
    if (large === undefined) return gathered;
    const all = new Uint8Array(gathered.length + large.length);
    all.set(gathered, 0);
    all.set(large, gathered.length);
    return all;
  }

  async function serveConnection(c: Connection): Promise<void> {
    try {
      for (;;) {
        // The answers gathered go out before waiting for the client.
        if (c.available === 0 && c.out.length > 0) await c.flush();
        const head = await readHead(c);
        if (head === undefined) break;
        const { method, version } = head;
        const connection = head.connection === null ? "" : head.connection.toLowerCase();
        let keepAlive = version === "1.1"
          ? !CLOSE_TOKEN.test(connection)
          : KEEP_ALIVE_TOKEN.test(connection);
        const expect = head.expect;
        if (expect !== null && expect.toLowerCase() !== "100-continue") {
          throw new Refusal(417, `Expectation ${expect} is not supported`);
        }
        let body: Uint8Array;
        let taken: number;
        const cl = head.contentLength;
        const length = cl !== null && head.transferEncoding === null && expect === null &&
            /^[0-9]+$/.test(cl)
          ? Number(cl)
          : -1;
        if (length >= 0 && length <= c.available && length <= limits.maxBodyBytes) {
          // The whole body is buffered: no read, no await.
          if (length > 0 && !budget.take(length)) {
            throw new Refusal(503, "Too many request bytes are being received; try again later");
          }
          // A small body is a view of the read buffer, which is not read into again before
          // this request is answered; a larger one gets its own array.
          body = length === 0
            ? EMPTY
            : length <= VIEW_BODY_BYTES
            ? c.buf.subarray(c.start, c.start + length)
            : c.buf.slice(c.start, c.start + length);
          c.start += length;
          taken = length;
        } else {
          // Answers gathered so far go out before waiting for the client.
          await c.flush();
          ({ body, taken } = await readBody(c, head, expect !== null && version === "1.1"));
        }
        c.wait = Wait.None;
        c.handling = true;
        const req = new Request1(head, body, c);
        let reply: Http1Reply;
        try {
          let res: Response | Http1Reply | Promise<Response | Http1Reply>;
          try {
            res = handler(req);
            if (res instanceof Promise) {
              await c.flush();
              res = await res;
            }
          } catch (e) {
            res = options.onError(e);
          }
          reply = res instanceof Response ? await fromResponse(res) : res;
        } finally {
          budget.give(taken + req.held);
        }
        if (closing) keepAlive = false;
        const writing = c.answer(reply, method === "HEAD", keepAlive);
        if (writing !== undefined) await writing;
        c.handling = false;
        if (!keepAlive) {
          await c.flush();
          // Requests pipelined behind this one stay unanswered (RFC 9112 9.6); lingering keeps
          // them from resetting the connection before the client has read this answer.
          await lingerClose(c);
          break;
        }
        if (c.out.length >= FLUSH_BYTES) await c.flush();
        c.shrink();
      }
    } catch (e) {
      if (e instanceof Refusal && !c.closed) {
        count(e.status);
        c.wait = Wait.None;
        // The answers before this request go first, in order.
        await c.flush().catch(() => {});
        await c.answer(await toReply(refusal(e.status, e.message)), false, false)?.catch(() => {});
        await c.flush().catch(() => {});
        await lingerClose(c);
      } else if (!(e instanceof Closed) && !c.closed) {
        // A bug, not a client's doing: answered as a server error when still possible.
        await c.flush().catch(() => {});
        await c.answer(await toReply(options.onError(e)), false, false)?.catch(() => {});
        await c.flush().catch(() => {});
      }
    } finally {
      c.close();
      conns.delete(c);
    }
  }

  function toReply(res: Response | Http1Reply): Http1Reply | Promise<Http1Reply> {
    return res instanceof Response ? fromResponse(res) : res;
  }

  /**
   * After a refusal the client may still be sending (a body over the limit): closing with unread
   * input would reset the connection and could destroy the answer before the client reads it.
   * So the write side is shut and the input discarded (not kept) until EOF, for at most 2 s.
   */
  async function lingerClose(c: Connection): Promise<void> {
    if (c.closed) return;
    try {
      await c.conn.closeWrite();
    } catch {
      return;
    }
    c.arm(Wait.Write, 2000);
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
      clearInterval(sweep);
    },
  };
}

const EMPTY = new Uint8Array(0);
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");
