/**
 * REST benchmark (issue 10): `:predict` on half_plus_two served as users serve it (`deno task
 * serve --rest_api_port=…`: launch.ts → server_main.ts), against a bare `Deno.serve` on the same
 * Deno that reads the body and answers a small fixed JSON (rest_echo_server.ts `--mode=read`),
 * both loaded by `h2load --h1` with one thread and 16 connections, with the same bodies
 * (`{"instances":[[1.0]]}` and a 64-row batch). The server's own `/healthz` is measured too (the
 * HTTP server and routing alone). Rounds interleave the targets; the table gives the best and the
 * median round.
 *
 * @module
 */
import { freePort, here, spawn, stop } from "./process.ts";
import { h2load, type H2loadOptions, type H2loadReport, measured, spread } from "./h2load.ts";
import { hp2Inputs, hp2RestBody, serveHp2 } from "./serving.ts";
import { BATCHES } from "./grpc.ts";
import { table } from "./timing.ts";
import { v8FlagsArg } from "../../src/config/permissions.ts";

const ECHO = here("./rest_echo_server.ts");

/** Connections h2load opens. */
const CONNECTIONS = 16;

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 when unknown). */
async function clockTicks(): Promise<number> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

/** A process's CPU time so far (user + system, all threads) in clock ticks, from /proc. */
async function cpuTicks(pid: number): Promise<number> {
  // Deno reads /proc only with --allow-all; `cat` needs just --allow-run.
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`], stdout: "piped" })
    .output();
  const stat = new TextDecoder().decode(out.stdout);
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

/**
 * A warm-up run, then a measured run (as {@link measured}) during which the CPU time of the
 * serving process `pid` is taken: its microseconds per request, a figure the other processes
 * of a loaded machine disturb far less than the rate.
 */
async function measuredWithCpu(
  url: string,
  o: H2loadOptions,
  answerBytes: number,
  pid: number,
  ticks: number,
): Promise<H2loadReport & { cpuUs: number }> {
  const warm = await h2load(url, {
    ...o,
    seconds: undefined,
    requests: Math.max(2000, o.clients * 64),
  });
  const requests = Math.max(
    o.clients * 4,
    Math.round((warm.qps * (o.seconds ?? 1)) / o.clients) * o.clients,
  );
  const c0 = await cpuTicks(pid);
  const rep = await measured(url, { ...o, seconds: undefined, requests }, answerBytes, 0);
  const c1 = await cpuTicks(pid);
  return { ...rep, cpuUs: ((c1 - c0) / ticks) * 1e6 / rep.done };
}

/** POSTs `body` and returns the answer's status and text. */
async function post(url: string, body: string): Promise<{ status: number; text: string }> {
  const r = await fetch(url, { method: "POST", body, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, text: await r.text() };
}

/**
 * Whether the server at `port` answers a keep-alive POST of `body` with `Connection: close`
 * (Deno.serve does after a body larger than its first read, denoland/deno#36657: then every
 * request of a load run pays a TCP connect).
 */
async function closesAfter(port: number, path: string, body: string): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // Head and body in one write, as h2load sends a small request.
    const length = new TextEncoder().encode(body).length;
    const request = new TextEncoder().encode(
      `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
        `content-length: ${length}\r\n\r\n${body}`,
    );
    for (let at = 0; at < request.length;) at += await conn.write(request.subarray(at));
    let head = "";
    const buf = new Uint8Array(4096);
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    return /^connection:\s*close/im.test(head.split("\r\n\r\n")[0]);
  } finally {
    conn.close();
  }
}

/**
 * Runs the section and returns its markdown report.
 *
 * @param seconds measured seconds per run (after a warm-up run)
 * @param rounds interleaved rounds
 */
export async function benchRest(seconds = 3, rounds = 3): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench_rest_" });
  const files: Record<number, string> = {};
  for (const b of BATCHES) {
    files[b] = `${dir}/hp2_${b}.json`;
    await Deno.writeTextFile(files[b], hp2RestBody(b));
  }
  const restPort = freePort();
  const served = await serveHp2(freePort(), restPort);
  const barePort = freePort();
  // The baselines run under the server's V8 flags too (its small young generation costs CPU per
  // request), so the ratio compares the serving path, not the heap settings.
  const bare = spawn([
    "run",
    v8FlagsArg(),
    "--allow-net",
    ECHO,
    `--port=${barePort}`,
    "--mode=read",
  ]);
  const ownPort = freePort();
  const own = spawn([
    "run",
    v8FlagsArg(),
    "--allow-net",
    ECHO,
    `--port=${ownPort}`,
    "--mode=read",
    "--server=http1",
  ]);
  try {
    await bare.waitFor(/^ready/);
    await own.waitFor(/^ready/);
    const urls = {
      server: `http://127.0.0.1:${restPort}/v1/models/half_plus_two:predict`,
      bare: `http://127.0.0.1:${barePort}/`,
      own: `http://127.0.0.1:${ownPort}/`,
      healthz: `http://127.0.0.1:${restPort}/healthz`,
    };
    // A real client first: the answers must be correct; their sizes check every h2load answer.
    const encoder = new TextEncoder();
    const answerBytes: Record<string, number> = {};
    const closes: string[] = [];
    for (const b of BATCHES) {
      const body = await Deno.readTextFile(files[b]);
      const s = await post(urls.server, body);
      const want = hp2Inputs(b).map((x) => [x / 2 + 2]);
      const got = s.status === 200 ? JSON.parse(s.text).predictions : undefined;
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        throw new Error(`server: ${s.status} ${s.text.slice(0, 200)}`);
      }
      answerBytes[`server${b}`] = encoder.encode(s.text).length;
      const e = await post(urls.bare, body);
      if (e.status !== 200) throw new Error(`bare: ${e.status}`);
      answerBytes[`bare${b}`] = encoder.encode(e.text).length;
      const o = await post(urls.own, body);
      if (o.status !== 200) throw new Error(`own: ${o.status}`);
      answerBytes[`own${b}`] = encoder.encode(o.text).length;
      for (
        const [name, port, path] of [["server", restPort, new URL(urls.server).pathname], [
          "bare",
          barePort,
          "/",
        ]] as const
      ) {
        if (await closesAfter(port, path, body)) closes.push(`${name}, batch ${b}`);
      }
    }
    const health = await fetch(urls.healthz, { signal: AbortSignal.timeout(10_000) });
    if (health.status !== 200) throw new Error(`/healthz: ${health.status}`);
    answerBytes.healthz = encoder.encode(await health.text()).length;

    const load = (b?: number): H2loadOptions => ({
      clients: CONNECTIONS,
      seconds,
      h1: true,
      data: b === undefined ? undefined : files[b],
      headers: b === undefined ? [] : ["content-type: application/json"],
    });
    const qps: Record<string, number[]> = {};
    const cpu: Record<string, number[]> = {};
    const ticks = await clockTicks();
    const pids = { server: served.serverPid, bare: bare.child.pid, own: own.child.pid };
    for (let r = 0; r < rounds; r++) {
      for (const b of BATCHES) {
        for (const name of ["server", "bare", "own"] as const) {
          const rep = await measuredWithCpu(
            urls[name],
            load(b),
            answerBytes[`${name}${b}`],
            pids[name],
            ticks,
          );
          (qps[`${name}${b}`] ??= []).push(rep.qps);
          (cpu[`${name}${b}`] ??= []).push(rep.cpuUs);
        }
      }
      const h = await measured(urls.healthz, load(), answerBytes.healthz);
      (qps.healthz ??= []).push(h.qps);
    }
    const fmt = (v: number[]) => {
      const s = spread(v);
      return `${s.best.toFixed(0)} / ${s.median.toFixed(0)} (${s.worst.toFixed(0)})`;
    };
    const median = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1];
    const cpuRows = BATCHES.map((b) => {
      const [s, e, o] = ["server", "bare", "own"].map((n) => median(cpu[`${n}${b}`]));
      return [
        `batch ${b}`,
        s.toFixed(1),
        e.toFixed(1),
        o.toFixed(1),
        (e / s).toFixed(2),
        (o / s).toFixed(2),
      ];
    });
    const rows = BATCHES.map((b) => {
      const s = spread(qps[`server${b}`]);
      const e = spread(qps[`bare${b}`]);
      const o = spread(qps[`own${b}`]);
      return [
        `batch ${b} (${encoder.encode(hp2RestBody(b)).length} B)`,
        fmt(qps[`server${b}`]),
        fmt(qps[`bare${b}`]),
        (s.best / e.best).toFixed(2),
        (s.median / e.median).toFixed(2),
        fmt(qps[`own${b}`]),
        `${(s.best / o.best).toFixed(2)} / ${(s.median / o.median).toFixed(2)}`,
      ];
    });
    return [
      `### REST \`:predict\`, half_plus_two (h2load --h1, 1 thread, ${CONNECTIONS} connections)`,
      "",
      "The server as `deno task serve --rest_api_port=…` starts it; the baseline: a bare " +
      "`Deno.serve` on the same Deno that reads the body and answers a small fixed JSON; the same " +
      `bodies \`{"instances":[[1.0],…]}\`. ${rounds} interleaved rounds of ${seconds} s (after a ` +
      "warm-up run); QPS best / median (worst). Every answer was checked: 2xx with exactly the " +
      "bytes of the correct answer (checked once with a real client).",
      "",
      table([
        "request",
        "server QPS",
        "bare QPS",
        "÷ bare (best)",
        "÷ bare (median)",
        "bare own-HTTP/1.1 QPS",
        "÷ it (best / median)",
      ], rows),
      "",
      "The second baseline is the same bare endpoint on the server's own HTTP/1.1 server " +
      "(src/api/rest/http1.ts), which keeps connections alive whatever the body size: what the " +
      "REST API costs above its HTTP server.",
      "",
      "CPU time of each serving process (user + system, all its threads, from /proc) per " +
      "request during the measured runs, median of the rounds: less disturbed than the rates " +
      "when other processes share the cores. The ratios are baseline ÷ server (1.0: the server " +
      "costs what the bare endpoint costs).",
      "",
      table([
        "request",
        "server µs/req",
        "bare Deno.serve µs/req",
        "bare own-HTTP/1.1 µs/req",
        "Deno.serve ÷ server",
        "own-HTTP/1.1 ÷ server",
      ], cpuRows),
      "",
      `The server's own \`GET /healthz\` (its HTTP/1.1 server and routing, no model): ${
        fmt(qps.healthz)
      } QPS.`,
      closes.length === 0
        ? ""
        : `\nAnswered with \`Connection: close\` (so each request of these runs ` +
          `paid a TCP connect): ${
            closes.join("; ")
          }. \`Deno.serve\` in Deno ${Deno.version.deno} ` +
          "drops HTTP/1.1 keep-alive after a request body larger than its first read " +
          "(denoland/deno#36657); those ratios are not comparable.",
    ].join("\n");
  } finally {
    await Promise.all([stop(served.launcher), stop(bare), stop(own)]);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  console.log(await benchRest());
}
