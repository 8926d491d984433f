/**
 * Start-up benchmark (issue 10): process spawn → first correct Predict (half_plus_two, y = x/2 +
 * 2, grpc-status 0) for the server as `deno task serve` starts it (launch.ts, which starts
 * the server in a child with least privilege) and run directly, each from the bundle
 * (`deno task bundle`) and from the sources, next to an empty `deno run` (spawn → exit). This
 * process polls the port with TCP connects, then calls Predict with a real gRPC client. Rounds
 * interleave the five.
 *
 * Every server process runs with the server's V8 flags (`v8FlagsArg()`), as `deno task serve`
 * runs both the launcher and its child: V8 refuses a code cache made under other flags, so runs
 * alternating between flag sets would recompile (and rewrite the cache of) every module each
 * time, which no user's start-up pays.
 *
 * @module
 */
import { CONFIG, freePort } from "./process.ts";
import {
  checkHp2Answer,
  grpcUnary,
  HALF_PLUS_TWO,
  hp2PredictFrame,
  PREDICT_PATH,
  serveArgs,
  SERVER_MAIN,
} from "./serving.ts";
import { spread } from "./h2load.ts";
import { table } from "./timing.ts";
import { v8FlagsArg } from "../../src/config/permissions.ts";
import {
  BUNDLE_DIR,
  BUNDLE_ENTRY,
  BUNDLE_MANIFEST,
  freshBundle,
} from "../../src/config/server_bundle.ts";
import { bundleServer } from "../bundle_server.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/** The target of issue 10, in ms. */
export const STARTUP_TARGET_MS = 300;

/** Spawns `deno args` and resolves with the ms until a Predict on `port` is answered correctly. */
async function firstPredictMs(args: string[], port: number): Promise<number> {
  const frame = hp2PredictFrame(1);
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (;;) {
      if (performance.now() - t0 > 30_000) throw new Error(`no answer: deno ${args.join(" ")}`);
      // A cheap TCP connect until the port listens (an HTTP/2 session per try would take CPU
      // from the server starting beside it), then the call.
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      } catch {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
      try {
        checkHp2Answer(await grpcUnary(port, PREDICT_PATH, frame, 5_000), 1);
        return performance.now() - t0;
      } catch {
        // Listening, not serving yet.
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  } finally {
    await child.stdin.close().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
  }
}

/**
 * Runs the section and returns its markdown report. The bundle (`deno task bundle`) is built
 * first; the launcher runs it in the rounds where its manifest is in place and the sources in
 * the others (the manifest moved aside). A bundle that was not there before is removed after.
 *
 * @param rounds interleaved rounds
 */
export async function benchStartup(rounds = 7): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "bench_startup_" });
  const empty = `${dir}/empty.ts`;
  await Deno.writeTextFile(empty, "");
  const model = [`--model_name=half_plus_two`, `--model_base_path=${HALF_PLUS_TWO}`];
  const hadBundle = freshBundle(ROOT) !== undefined;
  await bundleServer();
  const manifest = `${ROOT}${BUNDLE_DIR}${BUNDLE_MANIFEST}`;
  const aside = `${dir}/${BUNDLE_MANIFEST}`;
  const bundleEntry = `${ROOT}${BUNDLE_DIR}${BUNDLE_ENTRY}`;
  const ms: Record<string, number[]> = {
    empty: [],
    direct: [],
    launcher: [],
    bundleDirect: [],
    bundleLauncher: [],
  };
  const launcher = (port: number) => serveArgs(port, model);
  try {
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      const out = await new Deno.Command(Deno.execPath(), { args: ["run", empty] }).output();
      if (!out.success) throw new Error("empty deno run failed");
      ms.empty.push(performance.now() - t0);
      const p1 = freePort();
      ms.direct.push(
        await firstPredictMs(
          ["run", v8FlagsArg(), "--config", CONFIG, "-A", SERVER_MAIN, `--port=${p1}`, ...model],
          p1,
        ),
      );
      const p2 = freePort();
      ms.bundleDirect.push(
        await firstPredictMs(
          ["run", v8FlagsArg(), "--config", CONFIG, "-A", bundleEntry, `--port=${p2}`, ...model],
          p2,
        ),
      );
      const p3 = freePort();
      ms.bundleLauncher.push(await firstPredictMs(launcher(p3), p3));
      await Deno.rename(manifest, aside);
      try {
        const p4 = freePort();
        ms.launcher.push(await firstPredictMs(launcher(p4), p4));
      } finally {
        await Deno.rename(aside, manifest);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    if (!hadBundle) await Deno.remove(`${ROOT}${BUNDLE_DIR}`, { recursive: true });
  }
  // Fastest first here: spread() sorts rates high to low, so negate.
  const fmt = (v: number[]) => {
    const s = spread(v.map((x) => -x));
    return [-s.best, -s.median, -s.worst].map((x) => x.toFixed(0));
  };
  const verdict = (v: number[]) => {
    const med = -spread(v.map((x) => -x)).median;
    return med <= STARTUP_TARGET_MS ? "met" : "**not met**";
  };
  const row = (name: string, v: number[]) => [name, ...fmt(v), verdict(v)];
  return [
    "### Start-up: spawn → first correct Predict (half_plus_two)",
    "",
    `${rounds} interleaved rounds; the port is polled every 2 ms with a TCP connect, then a real gRPC client calls Predict. ms fastest / ` +
    'median / slowest. Every server runs with the server\'s V8 flags; "bundle" is ' +
    "`deno task bundle`'s dist/server/, which `deno task serve` runs while it matches the sources.",
    "",
    table(
      ["process", "fastest", "median", "slowest", `target ≤ ${STARTUP_TARGET_MS} ms (median)`],
      [
        row("`deno task serve` with the bundle (launch.ts → dist/server/)", ms.bundleLauncher),
        row("`deno task serve` from sources (launch.ts → server_main.ts)", ms.launcher),
        row("dist/server/server_main.js run directly (`deno run -A`)", ms.bundleDirect),
        row("server_main.ts run directly (`deno run -A`)", ms.direct),
        ["an empty `deno run` (spawn → exit)", ...fmt(ms.empty), ""],
      ],
    ),
  ].join("\n");
}

if (import.meta.main) {
  console.log(await benchStartup());
}
