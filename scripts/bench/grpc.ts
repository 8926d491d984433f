/**
 * gRPC benchmark (issue 10): Predict on half_plus_two served as users serve it (`deno task
 * serve`: launch.ts → server_main.ts), against a bare grpc-js service on the same Deno that
 * decodes nothing and answers a fixed PredictResponse (grpc_echo_server.ts), both loaded by
 * `h2load` with one thread, 4 connections × 16 streams, with the same request bytes, batch 1 and
 * a 64-row batch. Rounds interleave the targets; the table gives the best and the median round.
 *
 * @module
 */
import { CONFIG, freePort, here, spawn, stop } from "./process.ts";
import { GRPC_HEADERS, type H2loadOptions, measured, spread } from "./h2load.ts";
import { checkHp2Answer, grpcUnary, hp2PredictFrame, PREDICT_PATH, serveHp2 } from "./serving.ts";
import { table } from "./timing.ts";
import { v8FlagsArg } from "../../src/config/permissions.ts";

const ECHO = here("./grpc_echo_server.ts");
const OWN_ECHO = here("./grpc_own_echo_server.ts");

/** The batches measured. */
export const BATCHES = [1, 64] as const;

/**
 * Runs the section and returns its markdown report.
 *
 * @param seconds measured seconds per run (after a warm-up run)
 * @param rounds interleaved rounds
 */
export async function benchGrpc(seconds = 3, rounds = 3): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench_grpc_" });
  const files: Record<number, string> = {};
  for (const b of BATCHES) {
    files[b] = `${dir}/hp2_${b}.grpc`;
    await Deno.writeFile(files[b], hp2PredictFrame(b));
  }
  const port = freePort();
  const served = await serveHp2(port);
  // The baselines run under the server's V8 flags too, so the ratio compares the serving path.
  const flags = ["run", v8FlagsArg(), "--config", CONFIG, "-A"];
  const echo = spawn([...flags, ECHO, "--exit-on-stdin-close"]);
  const own = spawn([...flags, OWN_ECHO, "--exit-on-stdin-close"]);
  try {
    await echo.waitFor(/^\d+$/);
    const echoPort = Number(echo.lines.find((l) => /^\d+$/.test(l)));
    await own.waitFor(/^\d+$/);
    const ownPort = Number(own.lines.find((l) => /^\d+$/.test(l)));
    // A real client first: the server must answer these bytes correctly (grpc-status 0 and
    // y = x/2 + 2); the echo must answer OK. Their sizes check every h2load answer.
    const answerBytes: Record<string, number> = {};
    for (const b of BATCHES) {
      const frame = await Deno.readFile(files[b]);
      answerBytes[`server${b}`] = checkHp2Answer(await grpcUnary(port, PREDICT_PATH, frame), b);
      const e = await grpcUnary(echoPort, PREDICT_PATH, frame);
      if (e.status !== "0") throw new Error(`echo: grpc-status ${e.status}`);
      answerBytes[`echo${b}`] = e.body.length;
      const o = await grpcUnary(ownPort, PREDICT_PATH, frame);
      if (o.status !== "0") throw new Error(`own echo: grpc-status ${o.status}`);
      answerBytes[`own${b}`] = o.body.length;
    }
    const load = (b: number): H2loadOptions => ({
      clients: 4,
      streams: 16,
      seconds,
      data: files[b],
      headers: GRPC_HEADERS,
    });
    const qps: Record<string, number[]> = {};
    for (let r = 0; r < rounds; r++) {
      for (const b of BATCHES) {
        const targets = [["server", port], ["echo", echoPort], ["own", ownPort]] as const;
        for (const [name, p] of targets) {
          const url = `http://127.0.0.1:${p}${PREDICT_PATH}`;
          const rep = await measured(url, load(b), answerBytes[`${name}${b}`]);
          (qps[`${name}${b}`] ??= []).push(rep.qps);
        }
      }
    }
    const rows = BATCHES.map((b) => {
      const s = spread(qps[`server${b}`]);
      const e = spread(qps[`echo${b}`]);
      const o = spread(qps[`own${b}`]);
      const q = (x: { best: number; median: number; worst: number }) =>
        `${x.best.toFixed(0)} / ${x.median.toFixed(0)} (${x.worst.toFixed(0)})`;
      return [
        `batch ${b}`,
        q(s),
        q(e),
        q(o),
        `${(s.best / e.best).toFixed(2)} / ${(s.median / e.median).toFixed(2)}`,
        `${(s.best / o.best).toFixed(2)} / ${(s.median / o.median).toFixed(2)}`,
      ];
    });
    return [
      "### gRPC Predict, half_plus_two (h2load, 1 thread, 4 connections × 16 streams)",
      "",
      `The server as \`deno task serve\` starts it; the baselines, on the same Deno, answer a ` +
      "fixed PredictResponse: a bare grpc-js service (the issue's baseline) and a bare echo on " +
      `the server's own HTTP/2 transport; the same request bytes. ${rounds} interleaved ` +
      `rounds of ${seconds} s (after a warm-up run); QPS best / median (worst). Every answer ` +
      "was checked: 2xx with exactly the bytes of the correct answer (y = x/2 + 2, grpc-status 0, " +
      "checked once with a real client).",
      "",
      table(
        [
          "request",
          "server QPS",
          "grpc-js echo QPS",
          "own-transport echo QPS",
          "÷ grpc-js echo (best / median)",
          "÷ own echo (best / median)",
        ],
        rows,
      ),
    ].join("\n");
  } finally {
    await stop(echo);
    await stop(own);
    await stop(served.launcher);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  console.log(await benchGrpc());
}
