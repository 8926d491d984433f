/**
 * Memory benchmark (issue 10): the resident memory (VmRSS, and the peak VmHWM) of the server
 * process itself — launch.ts's child, started as `deno task serve` starts it — with
 * half_plus_two loaded: idle, then after each load in turn (10k gRPC calls, a 64-way gRPC burst,
 * 10k REST calls, a 64-way REST burst, 6,400 concurrent gRPC streams). The launcher's own memory
 * is given apart. Each figure is read `settleMs` after the load ends.
 *
 * @module
 */
import { freePort } from "./process.ts";
import { stop } from "./process.ts";
import { GRPC_HEADERS, h2load, type H2loadOptions, measured } from "./h2load.ts";
import {
  checkHp2Answer,
  grpcUnary,
  hp2PredictFrame,
  hp2RestBody,
  memoryMiB,
  PREDICT_PATH,
  serveHp2,
} from "./serving.ts";
import { table } from "./timing.ts";

/** The targets of issue 10 (MB as `ps` and /proc count them: MiB). */
export const IDLE_TARGET_MIB = 120;
export const LOADED_TARGET_MIB = 150;

/**
 * Runs the section and returns its markdown report.
 *
 * @param settleMs how long after each load the memory is read
 */
export async function benchMemory(settleMs = 1000): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench_memory_" });
  const grpcFile = `${dir}/hp2_1.grpc`;
  await Deno.writeFile(grpcFile, hp2PredictFrame(1));
  const restFile = `${dir}/hp2_1.json`;
  await Deno.writeTextFile(restFile, hp2RestBody(1));
  const port = freePort();
  const restPort = freePort();
  const served = await serveHp2(port, restPort);
  const settle = () => new Promise((r) => setTimeout(r, settleMs));
  try {
    await settle();
    const rows: (string | number)[][] = [];
    const read = async (what: string, target: number) => {
      await settle();
      const m = await memoryMiB(served.serverPid);
      rows.push([
        what,
        m.rss.toFixed(0),
        m.peak.toFixed(0),
        `≤ ${target}: ${m.rss <= target ? "met" : "**not met**"}`,
      ]);
    };
    await read("idle, model loaded (no call yet)", IDLE_TARGET_MIB);
    const launcherIdle = await memoryMiB(served.launcher.child.pid);

    const grpcBytes = checkHp2Answer(
      await grpcUnary(port, PREDICT_PATH, await Deno.readFile(grpcFile)),
      1,
    );
    const restAnswer = await fetch(`http://127.0.0.1:${restPort}/v1/models/half_plus_two:predict`, {
      method: "POST",
      body: hp2RestBody(1),
      signal: AbortSignal.timeout(10_000),
    });
    const restText = await restAnswer.text();
    if (restAnswer.status !== 200) throw new Error(`REST: ${restAnswer.status} ${restText}`);
    const restBytes = new TextEncoder().encode(restText).length;
    const grpcUrl = `http://127.0.0.1:${port}${PREDICT_PATH}`;
    const restUrl = `http://127.0.0.1:${restPort}/v1/models/half_plus_two:predict`;
    const grpc = (clients: number, streams: number, requests: number): H2loadOptions => ({
      clients,
      streams,
      requests,
      data: grpcFile,
      headers: GRPC_HEADERS,
    });
    const rest = (clients: number, requests: number): H2loadOptions => ({
      clients,
      requests,
      h1: true,
      data: restFile,
      headers: ["content-type: application/json"],
    });
    // No warm-up runs: the counts are the loads.
    await measured(grpcUrl, grpc(4, 16, 10_000), grpcBytes, 0);
    await read("after 10,000 gRPC calls (4 connections × 16 streams)", LOADED_TARGET_MIB);
    await measured(grpcUrl, grpc(64, 1, 6_400), grpcBytes, 0);
    await read("after a 64-way gRPC burst (64 connections, 6,400 calls)", LOADED_TARGET_MIB);
    await measured(restUrl, rest(16, 10_000), restBytes, 0);
    await read("after 10,000 REST calls (16 connections)", LOADED_TARGET_MIB);
    await measured(restUrl, rest(64, 6_400), restBytes, 0);
    await read("after a 64-way REST burst (64 connections, 6,400 calls)", LOADED_TARGET_MIB);
    // Beyond the queue limit (128 waiting calls per model) calls are refused, so this run is
    // not checked; the note says how many answers were the correct one.
    const flood = await h2load(grpcUrl, grpc(64, 100, 12_800));
    await read(
      "after 6,400 concurrent gRPC calls (64 connections × 100 streams, 12,800 calls)",
      LOADED_TARGET_MIB,
    );
    const launcher = await memoryMiB(served.launcher.child.pid);
    const workers = served.launcher.lines.map((l) => /Started (\d+) inference worker/.exec(l))
      .find((m) => m !== null)?.[1];
    return [
      "### Memory: the server process with half_plus_two (`deno task serve`)",
      "",
      `Resident memory of the server process (launch.ts's child; /proc VmRSS, and the peak so far ` +
      `VmHWM) in MiB, read ${settleMs} ms after each load; the loads run one after another ` +
      "on the same server, every answer checked as in the gRPC and REST sections.",
      "",
      table(["after", "RSS MiB", "peak MiB", "target"], rows),
      "",
      `The launcher (launch.ts, which only forwards signals once the server runs): ` +
      `${launcherIdle.rss.toFixed(0)} MiB at start, ${launcher.rss.toFixed(0)} MiB at the end. ` +
      `Of the 12,800 calls sent 6,400 at a time, ${Math.floor(flood.dataBytes / grpcBytes)} got ` +
      "the correct answer; the others were refused (a per-model queue holds 128 calls). " +
      (workers
        ? `During the loads the server started ${workers} inference worker isolate(s) ` +
          "(src/exec/executor.ts moves a model to the pool once its calls are measured as costly), " +
          "each with its own heap."
        : "The server started no inference worker during the loads."),
    ].join("\n");
  } finally {
    await stop(served.launcher);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  console.log(await benchMemory());
}
