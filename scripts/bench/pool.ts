/**
 * Worker pool benchmark (issue: inference off the event loop). Every figure compares the server
 * with its inference workers against the same server running everything inline (`--workers=0`
 * of serve_with_workers.ts, the behaviour before the pool), in the same run:
 * - small models (784×10 softmax, half_plus_two): gRPC Predict QPS at concurrency 64, from a
 *   load generator in its own process;
 * - a heavy model (a chain of 512×512 MatMuls): calls per second with 1 and 2 concurrent
 *   clients, and `/healthz` latency while 2 clients keep it busy;
 * - resident memory with a model holding 64 MiB of constants, with 0, 1 and 2 workers;
 * - `--enable_batching` (max_batch_size 64, no timeout): 784×10 Predict QPS at concurrency 64,
 *   against the same server without batching.
 *
 * @module
 */
import { PredictionServiceClient } from "../../src/client/grpc_client.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { writeSlowModel } from "../../tests/exec/models.ts";
import { grpcLoad, rssMiB, TESTDATA, writeStandardRequests } from "./grpc_fixtures.ts";
import type { LoadReport } from "./grpc_load.ts";
import { writeDenseSoftmax } from "./models.ts";
import { CONFIG, freePort, here, spawn, stop } from "./process.ts";
import { table } from "./timing.ts";

const SERVE = here("./serve_with_workers.ts");
const CPUS = Math.max(1, navigator.hardwareConcurrency);

/** Starts a server with `workers` inference workers; resolves once it serves. */
async function serve(workers: number, flags: string[]) {
  const port = freePort();
  const restPort = freePort();
  const p = spawn([
    "run",
    "--config",
    CONFIG,
    "-A",
    SERVE,
    `--workers=${workers}`,
    `--port=${port}`,
    `--rest_api_port=${restPort}`,
    "--file_system_poll_wait_seconds=0",
    ...flags,
  ]);
  await p.waitFor(/Running gRPC ModelServer/, 120_000);
  return { p, port, restPort };
}

const slowRequest = {
  modelSpec: { name: "slow" },
  inputs: { x: tensorToProto(Tensor.float32([1], [1])) },
};

/** Closed loop of `clients` callers of the slow model for `seconds`; calls per second. */
async function heavyRate(port: number, clients: number, seconds: number): Promise<number> {
  const client = new PredictionServiceClient(`127.0.0.1:${port}`);
  try {
    await client.predict(slowRequest);
    const end = performance.now() + seconds * 1000;
    let calls = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        await client.predict(slowRequest);
        calls++;
      }
    }));
    return calls / ((performance.now() - t0) / 1000);
  } finally {
    client.close();
  }
}

/** `/healthz` latencies (ms, sorted) while `clients` callers keep the slow model busy. */
async function probeUnderLoad(
  port: number,
  restPort: number,
  clients: number,
  seconds: number,
): Promise<number[]> {
  const client = new PredictionServiceClient(`127.0.0.1:${port}`);
  const stopAt = performance.now() + seconds * 1000;
  const busy = Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < stopAt) await client.predict(slowRequest);
  }));
  const ms: number[] = [];
  await new Promise((r) => setTimeout(r, 200));
  while (performance.now() < stopAt) {
    const t0 = performance.now();
    const r = await fetch(`http://127.0.0.1:${restPort}/healthz`);
    await r.body?.cancel();
    ms.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  await busy;
  client.close();
  return ms.sort((a, b) => a - b);
}

const q = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

/**
 * Resident memory of a server holding the 64 MiB model (`wide`, written into `dir` if absent),
 * after every worker ran it: one row per pool size, `rounds` interleaved rounds (the machine is
 * shared, so each size is measured next to the others); each row [workers, RSS MiB per round].
 */
export async function poolMemory(
  dir: string,
  sizes: readonly number[] = [0, 1, 2],
  rounds = 1,
): Promise<(string | number)[][]> {
  try {
    await Deno.stat(`${dir}/wide/1`);
  } catch {
    await writeSlowModel(`${dir}/wide/1`, 4, 4096, 1);
  }
  const rss = new Map<number, number[]>(sizes.map((w) => [w, []]));
  for (let round = 0; round < rounds; round++) {
    for (const workers of sizes) {
      const s = await serve(workers, ["--model_name=wide", `--model_base_path=${dir}/wide`]);
      try {
        const client = new PredictionServiceClient(`127.0.0.1:${s.port}`);
        const req = { modelSpec: { name: "wide" }, inputs: slowRequest.inputs };
        // Enough concurrent calls that every worker has run the model.
        for (let i = 0; i < 4; i++) await Promise.all([1, 2, 3].map(() => client.predict(req)));
        client.close();
        await new Promise((r) => setTimeout(r, 500));
        rss.get(workers)!.push(await rssMiB(s.p.child.pid));
      } finally {
        await stop(s.p);
      }
    }
  }
  return sizes.map((w) => [w, rss.get(w)!.map((m) => m.toFixed(0)).join(" / ")]);
}

/** Runs the section and returns its markdown report. */
export async function benchPool(seconds = 4): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench_pool_" });
  await writeDenseSoftmax(`${dir}/dense/1`);
  await writeSlowModel(`${dir}/slow/1`, 24);
  await writeSlowModel(`${dir}/wide/1`, 4, 4096, 1);
  const config = `${dir}/models.config`;
  await Deno.writeTextFile(
    config,
    `model_config_list {
  config { name: "dense" base_path: "${dir}/dense" model_platform: "tensorflow" }
  config { name: "half_plus_two" base_path: "${TESTDATA}saved_model_half_plus_two_cpu" model_platform: "tensorflow" }
  config { name: "slow" base_path: "${dir}/slow" model_platform: "tensorflow" }
}
`,
  );
  const { dense: denseReq, hp2: hp2Req } = await writeStandardRequests(dir);

  const small: (string | number)[][] = [];
  const heavy: (string | number)[][] = [];
  const results = new Map<number, { dense: LoadReport; hp2: LoadReport }>();
  for (const workers of [0, CPUS]) {
    const s = await serve(workers, [`--model_config_file=${config}`]);
    try {
      const dense = await grpcLoad(`127.0.0.1:${s.port}`, denseReq, 64, seconds);
      const hp2 = await grpcLoad(`127.0.0.1:${s.port}`, hp2Req, 64, seconds);
      results.set(workers, { dense, hp2 });
      const one = await heavyRate(s.port, 1, seconds);
      const two = await heavyRate(s.port, 2, seconds);
      const probe = await probeUnderLoad(s.port, s.restPort, 2, seconds);
      heavy.push([
        workers === 0 ? "inline (0 workers)" : `pool (${workers} workers)`,
        one.toFixed(2),
        two.toFixed(2),
        (two / one).toFixed(2),
        q(probe, 0.5).toFixed(1),
        q(probe, 0.99).toFixed(1),
      ]);
    } finally {
      await stop(s.p);
    }
  }
  for (const [name, key] of [["dense 784×10", "dense"], ["half_plus_two", "hp2"]] as const) {
    const inline = results.get(0)![key];
    const pool = results.get(CPUS)![key];
    for (const r of [inline, pool]) if (r.errors > 0) throw new Error(`${name}: errors`);
    small.push([
      name,
      Math.round(inline.qps),
      Math.round(pool.qps),
      (pool.qps / inline.qps).toFixed(2),
      pool.p99Ms.toFixed(2),
    ]);
  }

  // Batching: the dense model at concurrency 64, with and without --enable_batching.
  await Deno.writeTextFile(
    `${dir}/batching.txt`,
    "max_batch_size { value: 64 }\nbatch_timeout_micros { value: 0 }\n" +
      "max_enqueued_batches { value: 64 }\n",
  );
  const batchingRows: (string | number)[][] = [];
  const batchingQps = new Map<string, number>();
  for (const on of [false, true]) {
    const s = await serve(CPUS, [
      "--model_name=dense",
      `--model_base_path=${dir}/dense`,
      ...(on ? ["--enable_batching", `--batching_parameters_file=${dir}/batching.txt`] : []),
    ]);
    try {
      const r = await grpcLoad(`127.0.0.1:${s.port}`, denseReq, 64, seconds);
      if (r.errors > 0) throw new Error(`batching ${on}: ${r.errors} errors`);
      batchingQps.set(String(on), r.qps);
      batchingRows.push([
        on ? "--enable_batching" : "no batching",
        Math.round(r.qps),
        r.p50Ms.toFixed(2),
        r.p99Ms.toFixed(2),
      ]);
    } finally {
      await stop(s.p);
    }
  }
  batchingRows[1].push((batchingQps.get("true")! / batchingQps.get("false")!).toFixed(2));
  batchingRows[0].push("1.00");

  const memory = await poolMemory(dir);
  await Deno.remove(dir, { recursive: true });
  return [
    `### Worker pool (${CPUS} CPUs; each row: ${seconds} s)`,
    "",
    "Small models, gRPC Predict batch 1 at concurrency 64 (load generator in its own process):",
    "",
    table(["model", "QPS inline", "QPS with pool", "pool ÷ inline", "p99 ms with pool"], small),
    "",
    "Heavy model (24 MatMuls 512×512, a few hundred ms per call), and `/healthz` while 2 " +
    "clients keep it busy:",
    "",
    table(
      ["server", "calls/s, 1 client", "calls/s, 2 clients", "2 ÷ 1", "healthz p50 ms", "p99 ms"],
      heavy,
    ),
    "",
    "Resident memory, model with 64 MiB of constants (x·W four times, W 4096×4096), after " +
    "every worker ran it:",
    "",
    table(["workers", "RSS MiB"], memory),
    "",
    "Batching (max_batch_size 64, batch_timeout_micros 0), dense 784×10 Predict at " +
    "concurrency 64:",
    "",
    table(["server", "QPS", "p50 ms", "p99 ms", "÷ no batching"], batchingRows),
  ].join("\n");
}
