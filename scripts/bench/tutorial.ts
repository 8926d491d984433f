/**
 * Tutorial benchmark (issue: the tutorial): wall time of `train` for 1000 iterations, and the
 * MNIST client's throughput at `--concurrency=1` and `=32` against the served model, next to the
 * same client against the bare grpc-js echo service in the same run.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { table } from "./timing.ts";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const MAIN = here("../../main.ts");
const CONFIG = here("../../deno.json");
const ECHO = here("./grpc_echo_server.ts");

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

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

/** Spawns a server and resolves once `ready` shows in its output. */
async function spawn(
  args: string[],
  ready: RegExp,
): Promise<{ child: Deno.ChildProcess; text: () => string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", CONFIG, "-A", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const seen = Promise.withResolvers<void>();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) {
      text += dec.decode(c, { stream: true });
      if (ready.test(text)) seen.resolve();
    }
  };
  pump(child.stdout);
  pump(child.stderr);
  const timer = setTimeout(() => seen.reject(new Error(`not ready: ${text}`)), 30_000);
  await seen.promise.finally(() => clearTimeout(timer));
  return { child, text: () => text };
}

/** Runs the section and returns its markdown report. */
export async function benchTutorial(numTests = 5000): Promise<string> {
  const base = await Deno.makeTempDir({ prefix: "bench_mnist_" });
  const trained = await run(["train", "--training_iteration=1000", base]);
  const accuracy = /training accuracy (\S+)/.exec(trained.out)?.[1];

  const port = freePort();
  const server = await spawn(
    [MAIN, `--port=${port}`, "--model_name=mnist", `--model_base_path=${base}`],
    /Running gRPC ModelServer/,
  );
  const echo = await spawn([ECHO, "--exit-on-stdin-close"], /^\d+$/m);
  const echoPort = Number(/^(\d+)$/m.exec(echo.text())?.[1]);

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
  server.child.kill("SIGTERM");
  await server.child.status;
  await echo.child.stdin.close().catch(() => {});
  echo.child.kill("SIGTERM");
  await echo.child.status;
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
