/**
 * gRPC benchmark (issue: model server): a closed-loop load generator in a separate process sends
 * batch-1 Predict calls (half_plus_two, and a 784×10 softmax model) at concurrency 1, 8 and 64 to
 * the real server, and the same request bytes to a bare grpc-js echo service, in the same run.
 * Also: time from process start to the first model AVAILABLE, and resident memory with one
 * model loaded.
 *
 * @module
 */
import { CONFIG, freePort, here, MAIN, spawn, stop } from "./process.ts";
import { grpcLoad, rssMiB, TESTDATA, writeStandardRequests } from "./grpc_fixtures.ts";
import { writeDenseSoftmax } from "./models.ts";
import { table } from "./timing.ts";

const ECHO = here("./grpc_echo_server.ts");

/** Runs the section and returns its markdown report. */
export async function benchGrpc(seconds = 4): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench_grpc_" });
  await writeDenseSoftmax(`${dir}/dense/1`);
  const config = `${dir}/models.config`;
  await Deno.writeTextFile(
    config,
    `model_config_list {
  config { name: "dense" base_path: "${dir}/dense" model_platform: "tensorflow" }
  config { name: "half_plus_two" base_path: "${TESTDATA}saved_model_half_plus_two_cpu" model_platform: "tensorflow" }
}
`,
  );
  const { dense: denseReq, hp2: hp2Req } = await writeStandardRequests(dir);

  // Start-up and memory: one model, timed from spawn to its AVAILABLE log line.
  const solo = spawn([
    "run",
    "--config",
    CONFIG,
    "-A",
    MAIN,
    `--port=${freePort()}`,
    "--model_name=dense",
    `--model_base_path=${dir}/dense`,
  ]);
  const availableMs = await solo.waitFor(/Successfully loaded servable version/);
  const readyMs = await solo.waitFor(/Running gRPC ModelServer/);
  await new Promise((r) => setTimeout(r, 500));
  const rss = await rssMiB(solo.child.pid);
  await stop(solo);

  const port = freePort();
  const server = spawn([
    "run",
    "--config",
    CONFIG,
    "-A",
    MAIN,
    `--port=${port}`,
    `--model_config_file=${config}`,
  ]);
  await server.waitFor(/Running gRPC ModelServer/);
  const echo = spawn(["run", "--config", CONFIG, "-A", ECHO, "--exit-on-stdin-close"]);
  await echo.waitFor(/^\d+$/);
  const echoPort = Number(echo.lines.find((l) => /^\d+$/.test(l)));

  const rows: (string | number)[][] = [];
  for (const c of [1, 8, 64]) {
    const e = await grpcLoad(`127.0.0.1:${echoPort}`, denseReq, c, seconds);
    const d = await grpcLoad(`127.0.0.1:${port}`, denseReq, c, seconds);
    const h = await grpcLoad(`127.0.0.1:${port}`, hp2Req, c, seconds);
    for (
      const [name, r] of [["echo (baseline)", e], ["Predict dense 784×10", d], [
        "Predict half_plus_two",
        h,
      ]] as const
    ) {
      if (r.errors > 0) throw new Error(`${name}: ${r.errors} errors`);
      rows.push([
        c,
        name,
        Math.round(r.qps),
        r.p50Ms.toFixed(2),
        r.p99Ms.toFixed(2),
        name.startsWith("echo") ? "1.00" : (r.qps / e.qps).toFixed(2),
      ]);
    }
  }
  await stop(server);
  await stop(echo);
  await Deno.remove(dir, { recursive: true });
  return [
    `### gRPC Predict, batch 1 (closed loop from a separate process, ${seconds} s per row)`,
    "",
    table(["concurrency", "target", "QPS", "p50 ms", "p99 ms", "÷ echo QPS"], rows),
    "",
    `Start-up: first model AVAILABLE ${Math.round(availableMs)} ms after spawn, serving after ${
      Math.round(readyMs)
    } ms; resident memory with the dense model loaded: ${rss.toFixed(0)} MiB.`,
  ].join("\n");
}
