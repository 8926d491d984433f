/**
 * A closed-loop HTTP/1.1 load generator for the REST benchmark, run as its own process: each of
 * `--concurrency` keep-alive connections sends the same POST, waits for the whole response,
 * and sends the next, for `--duration` seconds after `--warmup` seconds. Requests are written
 * from prebuilt bytes and responses read with Content-Length framing over raw TCP, so the
 * generator spends little CPU per request. (h2load's `--duration` never ends with a request
 * body on HTTP/1.1 in nghttp2 1.52, hence this.) When the server answers `Connection: close`,
 * the connection is opened again for the next request, and that request's latency includes
 * the connect, as it would for any client.
 *
 * Prints one JSON line: {@link RestLoadReport}.
 *
 * ```sh
 * deno run -A scripts/bench/rest_load.ts --url=http://127.0.0.1:8501/v1/models/m:predict \
 *   --body=req.json --concurrency=64 --duration=4 --warmup=1
 * ```
 *
 * @module
 */

/** What one run measured. */
export interface RestLoadReport {
  /** Connections. */
  readonly concurrency: number;
  /** Completed requests in the measured window. */
  readonly requests: number;
  /** Requests per second over the measured window. */
  readonly qps: number;
  /** Median latency, milliseconds. */
  readonly p50Ms: number;
  /** 99th percentile latency, milliseconds. */
  readonly p99Ms: number;
  /** Responses with a status other than 200 (in the window). */
  readonly non200: number;
  /** Responses that closed the connection (`Connection: close`), in the window. */
  readonly closes: number;
}

function arg(name: string, fallback?: string): string {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  if (a) return a.slice(name.length + 3);
  if (fallback === undefined) throw new Error(`missing --${name}`);
  return fallback;
}

const CRLFCRLF = [13, 10, 13, 10];

function findHeaderEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = Math.max(from, 3); i < to; i++) {
    if (
      buf[i] === CRLFCRLF[3] && buf[i - 1] === CRLFCRLF[2] && buf[i - 2] === CRLFCRLF[1] &&
      buf[i - 3] === CRLFCRLF[0]
    ) return i + 1;
  }
  return -1;
}

const latin1 = new TextDecoder("latin1");

/** One keep-alive connection's loop. */
async function worker(
  host: string,
  port: number,
  request: Uint8Array,
  startAt: number,
  endAt: number,
  latencies: number[],
  counts: { done: number; non200: number; closes: number },
): Promise<void> {
  const connect = async () => {
    const c = await Deno.connect({ hostname: host, port });
    c.setNoDelay(true);
    return c;
  };
  let conn: Deno.TcpConn | undefined;
  let buf = new Uint8Array(1 << 16);
  let len = 0;
  try {
    while (performance.now() < endAt) {
      const t0 = performance.now();
      conn ??= await connect();
      for (let off = 0; off < request.length;) off += await conn.write(request.subarray(off));
      // Read the head.
      let headEnd = -1;
      let scanned = 0;
      for (;;) {
        headEnd = findHeaderEnd(buf, scanned, len);
        if (headEnd >= 0) break;
        scanned = Math.max(0, len - 3);
        if (len === buf.length) {
          const b = new Uint8Array(buf.length * 2);
          b.set(buf);
          buf = b;
        }
        const n = await conn.read(buf.subarray(len));
        if (n === null) throw new Error("connection closed");
        len += n;
      }
      const head = latin1.decode(buf.subarray(0, headEnd));
      const status = Number(head.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!m) throw new Error(`no content-length in response:\n${head}`);
      const total = headEnd + Number(m[1]);
      if (total > buf.length) {
        const b = new Uint8Array(total);
        b.set(buf.subarray(0, len));
        buf = b;
      }
      while (len < total) {
        const n = await conn.read(buf.subarray(len));
        if (n === null) throw new Error("connection closed");
        len += n;
      }
      // Keep anything past this response (there should be nothing).
      buf.copyWithin(0, total, len);
      len -= total;
      const t1 = performance.now();
      const close = /\r\nconnection:\s*close/i.test(head);
      if (t0 >= startAt && t1 <= endAt) {
        latencies.push(t1 - t0);
        counts.done++;
        if (status !== 200) counts.non200++;
        if (close) counts.closes++;
      }
      if (close) {
        conn.close();
        conn = undefined;
        len = 0;
      }
    }
  } finally {
    conn?.close();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Runs the load.
 *
 * @param url the target (http only)
 * @param body the request body
 */
export async function runLoad(
  url: string,
  body: Uint8Array,
  concurrency: number,
  seconds: number,
  warmupSeconds: number,
): Promise<RestLoadReport> {
  const u = new URL(url);
  const head = `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const h = new TextEncoder().encode(head);
  const request = new Uint8Array(h.length + body.length);
  request.set(h);
  request.set(body, h.length);
  const now = performance.now();
  const startAt = now + warmupSeconds * 1000;
  const endAt = startAt + seconds * 1000;
  const latencies: number[] = [];
  const counts = { done: 0, non200: 0, closes: 0 };
  await Promise.all(
    Array.from(
      { length: concurrency },
      () => worker(u.hostname, Number(u.port), request, startAt, endAt, latencies, counts),
    ),
  );
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    requests: counts.done,
    qps: counts.done / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    non200: counts.non200,
    closes: counts.closes,
  };
}

if (import.meta.main) {
  const report = await runLoad(
    arg("url"),
    await Deno.readFile(arg("body")),
    Number(arg("concurrency", "1")),
    Number(arg("duration", "4")),
    Number(arg("warmup", "1")),
  );
  console.log(JSON.stringify(report));
}
