/**
 * Tutorial benchmark (issue: the tutorial): wall time of `train` for 1000 iterations, and the
 * MNIST client's throughput at `--concurrency=1` and `=32` against the served model, next to the
 * same client against the bare grpc-js echo service in the same run.
 *
 * @module
 */
import { CONFIG, freePort, here, MAIN, spawn, stop } from "./process.ts";
import { table } from "./timing.ts";

const ECHO = here("./grpc_echo_server.ts");

async function run(args: string[]): Promise<{ ms: number; out: string }> {
  const t0 = performance.now();
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", CONFIG, "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const ms = performance.now() - t0;
  const dec = new TextDecoder();
  if (!r.success) throw new Error(dec.decode(r.stderr));
  return { ms, out: dec.decode(r.stdout) };
}

/** Runs the section and returns its markdown report. */
export async function benchTutorial(numTests = 5000): Promise<string> {
  const base = await Deno.makeTempDir({ prefix: "bench_mnist_" });
  const trained = await run(["train", "--training_iteration=1000", base]);
  const accuracy = /training accuracy (\S+)/.exec(trained.out)?.[1];

  const port = freePort();
  const server = spawn([
    "run",
    "--config",
    CONFIG,
    "-A",
    MAIN,
    `--port=${port}`,
    "--model_name=mnist",
    `--model_base_path=${base}`,
  ]);
  await server.waitFor(/Running gRPC ModelServer/);
  const echo = spawn(["run", "--config", CONFIG, "-A", ECHO, "--exit-on-stdin-close"]);
  await echo.waitFor(/^\d+$/);
  const echoPort = Number(echo.lines.find((l) => /^\d+$/.test(l)));

  const rows: (string | number)[][] = [];
  for (const c of [1, 32]) {
    const served = await run([
      "client",
      `--num_tests=${numTests}`,
      `--server=127.0.0.1:${port}`,
      `--concurrency=${c}`,
    ]);
    const rate = /Inference error rate: (\S+)%/.exec(served.out)?.[1];
    const baseline = Number.isFinite(echoPort)
      ? await run([
        "client",
        `--num_tests=${numTests}`,
        `--server=127.0.0.1:${echoPort}`,
        `--concurrency=${c}`,
      ])
      : undefined;
    rows.push([
      c,
      Math.round((numTests * 1000) / served.ms),
      baseline ? Math.round((numTests * 1000) / baseline.ms) : "-",
      baseline ? (baseline.ms / served.ms).toFixed(2) : "-",
      `${rate}%`,
    ]);
  }
  await stop(server);
  await stop(echo);
  await Deno.remove(base, { recursive: true });
  return [
    "### Tutorial",
    "",
    `Training, 1000 iterations (process start, MNIST read, training, export): ${
      (trained.ms / 1000).toFixed(1)
    } s wall; training accuracy ${accuracy}.`,
    "",
    `MNIST client, ${numTests} test images (whole client process, start-up included):`,
    "",
    table(
      ["concurrency", "calls/s (served model)", "calls/s (echo service)", "÷ echo", "error rate"],
      rows,
    ),
  ].join("\n");
}
