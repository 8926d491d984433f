/**
 * REST benchmark: `:predict` on the real server (`main.ts --rest_api_port`) for MNIST-shaped
 * requests (a 784×10 softmax model, input `images` [-1,784], output `scores`), batch 1 and
 * batch 64, at concurrency 1 and 64, next to bare `Deno.serve` baselines that receive the same
 * bodies: a JSON echo (parse and re-serialize the body) and a parse-only server. Load comes from
 * a separate process (scripts/bench/rest_load.ts); each figure is the best of `rounds` runs,
 * the targets measured in turn.
 *
 * @module
 */
import { CONFIG, freePort, here, MAIN, spawn, stop } from "./process.ts";
import type { RestLoadReport } from "./rest_load.ts";
import { writeDenseSoftmax } from "./models.ts";
import { table } from "./timing.ts";

const LOAD = here("./rest_load.ts");
const ECHO = here("./rest_echo_server.ts");

function image(seed: number): number[] {
  const px = new Float32Array(784);
  let s = seed;
  for (let y = 4; y < 24; y++) {
    for (let x = 6; x < 22; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      if (s % 100 < 55) px[y * 28 + x] = ((s >>> 8) % 256) / 255;
    }
  }
  return Array.from(px);
}

async function load(
  url: string,
  body: string,
  concurrency: number,
  seconds: number,
): Promise<RestLoadReport> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      CONFIG,
      "-A",
      LOAD,
      `--url=${url}`,
      `--body=${body}`,
      `--concurrency=${concurrency}`,
      `--duration=${seconds}`,
      "--warmup=1",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
  return JSON.parse(text) as RestLoadReport;
}

function ms(v: number): string {
  return v < 10 ? v.toFixed(2) : v.toFixed(1);
}

/**
 * Runs the section and returns its markdown report.
 *
 * @param seconds measured seconds per run (after 1 s of warm-up)
 * @param rounds runs per target and configuration (the best is reported)
 */
export async function benchRest(seconds = 3, rounds = 2): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench_rest_" });
  await writeDenseSoftmax(`${dir}/dense/1`);
  const bodies: Record<number, string> = {};
  for (const batch of [1, 64]) {
    const path = `${dir}/b${batch}.json`;
    const rows = Array.from({ length: batch }, (_, b) => image(100 + b));
    await Deno.writeTextFile(path, JSON.stringify({ instances: rows }));
    bodies[batch] = path;
  }

  const restPort = freePort();
  const server = spawn([
    "run",
    "--config",
    CONFIG,
    "-A",
    MAIN,
    `--port=${freePort()}`,
    `--rest_api_port=${restPort}`,
    "--model_name=dense",
    `--model_base_path=${dir}/dense`,
  ]);
  const echoPort = freePort();
  const echo = spawn(["run", "--allow-net", ECHO, `--port=${echoPort}`, "--mode=echo"]);
  const parsePort = freePort();
  const parse = spawn(["run", "--allow-net", ECHO, `--port=${parsePort}`, "--mode=parse"]);
  try {
    await server.waitFor(/Exporting HTTP\/REST API at:/);
    await echo.waitFor(/^ready/);
    await parse.waitFor(/^ready/);
    const targets = {
      rest: `http://127.0.0.1:${restPort}/v1/models/dense:predict`,
      echo: `http://127.0.0.1:${echoPort}/`,
      parse: `http://127.0.0.1:${parsePort}/`,
    };
    // Check the answer once.
    for (const batch of [1, 64]) {
      const r = await fetch(targets.rest, {
        method: "POST",
        body: await Deno.readFile(bodies[batch]),
      });
      const json = await r.json();
      if (r.status !== 200 || json.predictions?.length !== batch) {
        throw new Error(`unexpected answer: ${r.status} ${JSON.stringify(json).slice(0, 200)}`);
      }
    }
    const rows: (string | number)[][] = [];
    const closes: Record<string, number> = { rest: 0, echo: 0, parse: 0 };
    for (const batch of [1, 64]) {
      for (const concurrency of [1, 64]) {
        const best: Record<string, RestLoadReport | undefined> = {};
        for (let r = 0; r < rounds; r++) {
          for (const [name, url] of Object.entries(targets)) {
            const rep = await load(url, bodies[batch], concurrency, seconds);
            if (rep.non200 > 0) throw new Error(`${name}: ${rep.non200} non-200 answers`);
            closes[name] += rep.closes;
            if (!best[name] || rep.qps > best[name]!.qps) best[name] = rep;
          }
        }
        const [rest, e, p] = [best.rest!, best.echo!, best.parse!];
        rows.push([
          `batch ${batch}`,
          concurrency,
          rest.qps.toFixed(0),
          `${ms(rest.p50Ms)} / ${ms(rest.p99Ms)}`,
          e.qps.toFixed(0),
          `${ms(e.p50Ms)} / ${ms(e.p99Ms)}`,
          (rest.qps / e.qps).toFixed(2),
          p.qps.toFixed(0),
          (rest.qps / p.qps).toFixed(2),
        ]);
      }
    }
    const sizes = await Promise.all([1, 64].map(async (b) => (await Deno.stat(bodies[b])).size));
    return [
      "### REST `:predict` (784×10 softmax, MNIST-shaped JSON `instances`)",
      "",
      `Bodies: batch 1 = ${sizes[0]} B, batch 64 = ${
        sizes[1]
      } B. Closed-loop load from a separate ` +
      `process, ${seconds} s per run after 1 s of warm-up, best of ${rounds}. Latency p50 / p99 in ms. ` +
      "Baselines: a bare `Deno.serve` that parses the body and echoes it back (echo), and one " +
      "that only parses it (parse).",
      "",
      table(
        [
          "request",
          "concurrency",
          "REST QPS",
          "REST p50 / p99",
          "echo QPS",
          "echo p50 / p99",
          "REST ÷ echo",
          "parse QPS",
          "REST ÷ parse",
        ],
        rows,
      ),
      "",
      Object.values(closes).some((n) => n > 0)
        ? `Note: \`Connection: close\` answers: ${
          Object.entries(closes).map(([t, n]) => `${t} ${n}`).join(", ")
        }. \`Deno.serve\` (the baselines) in Deno ${Deno.version.deno} drops HTTP/1.1 keep-alive ` +
          "after a request body larger than its first read (denoland/deno#36657), so its figures " +
          "include a TCP connect per request; the REST server (its own HTTP/1.1) keeps connections."
        : "",
    ].join("\n");
  } finally {
    await Promise.all([stop(server), stop(echo), stop(parse)]);
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  console.log(await benchRest());
}
