/**
 * The load generator of the gRPC and REST sections: `h2load` (Debian's `nghttp2-client`), one
 * thread, so the load costs little CPU next to the server on a two-core machine (a Deno load
 * generator competed with the server for the cores and hid its cost).
 *
 * h2load counts an HTTP 2xx as a success, but a failed gRPC call is an HTTP 200 too (its
 * `grpc-status` is in the trailers). So every measured run is checked against the answer a real
 * client got for the same bytes: each answer must carry exactly as many DATA bytes as that
 * correct answer (a gRPC error answer carries none), and every status must be 2xx. The warm-up is
 * a separate run, because h2load adds the warm-up's bytes to its traffic but not its requests.
 *
 * @module
 */

/** What one h2load run reports. */
export interface H2loadReport {
  /** Requests per second over the measured time. */
  readonly qps: number;
  /** Requests done, succeeded (2xx), failed, errored and timed out. */
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  /** Answers with a 2xx status. */
  readonly status2xx: number;
  /** Body (DATA) bytes received. */
  readonly dataBytes: number;
}

/** One run's shape. */
export interface H2loadOptions {
  /** Connections (`-c`). */
  readonly clients: number;
  /** Streams per connection (`-m`, HTTP/2 only; 1 for HTTP/1.1). */
  readonly streams?: number;
  /** Measured seconds (`-D`); or a request count (`-n`). */
  readonly seconds?: number;
  readonly requests?: number;
  /** A file whose bytes every request posts (`-d`); GET without it. */
  readonly data?: string;
  /** Extra request headers (`-H`). */
  readonly headers?: readonly string[];
  /** HTTP/1.1 instead of HTTP/2 (`--h1`). */
  readonly h1?: boolean;
}

/** The h2load binary. */
export const H2LOAD = "h2load";

/** The request headers of a gRPC call. */
export const GRPC_HEADERS: readonly string[] = ["content-type: application/grpc", "te: trailers"];

/** Parses h2load's summary. */
export function parseH2load(text: string): H2loadReport {
  const num = (re: RegExp, what: string): number => {
    const m = re.exec(text);
    if (!m) throw new Error(`h2load printed no ${what}:\n${text}`);
    return Number(m[1]);
  };
  return {
    qps: num(/finished in [\d.]+\w+, ([\d.]+) req\/s/, "rate"),
    done: num(/requests: \d+ total, \d+ started, (\d+) done/, "request count"),
    succeeded: num(/(\d+) succeeded/, "success count"),
    failed: num(/(\d+) failed/, "failure count"),
    errored: num(/(\d+) errored/, "error count"),
    timeout: num(/(\d+) timeout/, "timeout count"),
    status2xx: num(/status codes: (\d+) 2xx/, "status codes"),
    dataBytes: num(/traffic: .*?\((\d+)\) data/, "data bytes"),
  };
}

/** Runs h2load once against `url`. */
export async function h2load(url: string, o: H2loadOptions): Promise<H2loadReport> {
  const args = ["-t1", `-c${o.clients}`, `-m${o.streams ?? 1}`];
  if (o.seconds !== undefined) args.push("-D", String(o.seconds));
  else args.push(`-n${o.requests ?? o.clients}`);
  if (o.data !== undefined) args.push("-d", o.data);
  for (const h of o.headers ?? []) args.push("-H", h);
  if (o.h1) args.push("--h1");
  args.push(url);
  let out;
  try {
    out = await new Deno.Command(H2LOAD, {
      args,
      stdout: "piped",
      stderr: "piped",
      // A server that stops answering must not hang the bench.
      signal: AbortSignal.timeout(120_000),
    }).output();
  } catch (e) {
    throw new Error(
      `Cannot run ${H2LOAD} (Debian package nghttp2-client): ${(e as Error).message}`,
    );
  }
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `h2load ${args.join(" ")} failed:\n${text}${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return parseH2load(text);
}

/**
 * Why a run cannot be trusted, or undefined when every answer was a 2xx carrying exactly
 * `answerBytes` of body (the size of the correct answer a real client got for the same bytes).
 */
export function runProblem(r: H2loadReport, answerBytes: number): string | undefined {
  if (r.done === 0) return "no request finished";
  if (r.failed + r.errored + r.timeout > 0) {
    return `${r.failed} failed, ${r.errored} errored, ${r.timeout} timed out`;
  }
  if (r.status2xx !== r.done) return `${r.done - r.status2xx} answers were not 2xx`;
  if (r.dataBytes !== r.done * answerBytes) {
    return `${r.dataBytes} body bytes for ${r.done} answers, expected ${answerBytes} each ` +
      "(some answers were not the correct one)";
  }
  return undefined;
}

/**
 * A warm-up run (not measured), then a measured run of as many requests as the warm-up's rate
 * gives in `o.seconds`, checked with {@linkcode runProblem}. Both runs are request counts: a
 * timed run stops with answers half received (so its bytes cannot be checked), and h2load 1.52's
 * timed HTTP/1.1 runs crash against a server that closes connections.
 *
 * @param warmupRequests requests of the warm-up run (default: 64 per connection and stream,
 *   at least 2000; 0: none)
 * @throws Error when the measured run is not all correct answers
 */
export async function measured(
  url: string,
  o: H2loadOptions,
  answerBytes: number,
  warmupRequests?: number,
): Promise<H2loadReport> {
  const inFlight = o.clients * (o.streams ?? 1);
  const warmup = warmupRequests ?? Math.max(2000, inFlight * 64);
  const warm = warmup > 0
    ? await h2load(url, { ...o, seconds: undefined, requests: warmup })
    : undefined;
  const requests = o.requests ??
    Math.max(
      inFlight * 4,
      Math.round(((warm?.qps ?? 1000) * (o.seconds ?? 1)) / inFlight) * inFlight,
    );
  const r = await h2load(url, { ...o, seconds: undefined, requests });
  const problem = runProblem(r, answerBytes);
  if (problem) throw new Error(`${url}: ${problem}`);
  return r;
}

/** The best, median and worst of a list of rates. */
export function spread(values: readonly number[]): { best: number; median: number; worst: number } {
  const s = [...values].sort((a, b) => b - a);
  return { best: s[0], median: s[s.length >> 1], worst: s[s.length - 1] };
}
