/**
 * Transport stress: the fake API served from a separate Deno process takes (a) thousands of
 * concurrent Predict calls from another process, (b) connections dropped mid-call (destroyed
 * sessions and sockets, cancelled calls, a client process killed), (c) raw gRPC frames from
 * h2load; afterwards it must still be running and answer a normal call.
 *
 * Needs h2load (Debian package nghttp2-client). Everything is on 127.0.0.1, bounded in count
 * and time (well under a minute on two cores).
 */
import assert from "node:assert/strict";
import { PredictionServiceClient } from "../../src/client/grpc_client.ts";
import {
  type DropResult,
  findH2load,
  killLoadMidway,
  type LoadResult,
  runH2load,
  runLoadProcess,
  startServerProcess,
} from "./fixtures/stress.ts";
import { samplePredictRequest } from "./fixtures/grpc_load.ts";
import { writeDenseSoftmax } from "../../scripts/bench/models.ts";
import { freePort, taskCommand } from "../server_process.ts";

const SERVER_SCRIPT = new URL("./fixtures/fake_grpc_server.ts", import.meta.url).pathname;

// Child processes and grpc-js channels outlive single steps by design.
const opts = { sanitizeOps: false, sanitizeResources: false };

/** A normal call: the server is up and right. */
async function assertServes(port: number): Promise<void> {
  using client = new PredictionServiceClient(`127.0.0.1:${port}`, {
    channelOptions: { "grpc.use_local_subchannel_pool": 1 },
  });
  const res = await client.predict({
    modelSpec: { name: "after" },
    inputs: { x: { floatVal: [1, 2] } },
  }, { deadlineMs: 5000 });
  assert.equal(res.modelSpec?.name, "after");
  assert.deepEqual(res.outputs.x.floatVal, [1, 2]);
}

/** Runs the three stress rounds against a started server; returns the report lines. */
async function stressRounds(
  t: Deno.TestContext,
  server: Awaited<ReturnType<typeof startServerProcess>>,
  assertServes: (port: number) => Promise<void>,
): Promise<string[]> {
  const target = `127.0.0.1:${server.port}`;
  const report: string[] = [];
  const alive = () => assert.ok(server.alive(), `server process died:\n${server.stderr()}`);
  await t.step("(a) 6000 Predict calls, 64 concurrent, over 8 connections", async () => {
    const r = await runLoadProcess<LoadResult>(
      { mode: "load", target, calls: 6000, concurrency: 64, channels: 8 },
      40_000,
    );
    report.push(`load: ${JSON.stringify(r)}`);
    assert.equal(r.ok, 6000, JSON.stringify(r.codes));
    alive();
  });

  await t.step("(b) connections dropped mid-call, under load", async () => {
    // Drops while other connections carry load: the case that aborted the process on some
    // Deno releases.
    const [load, dropped] = await Promise.all([
      runLoadProcess<LoadResult>(
        { mode: "load", target, calls: 4000, concurrency: 32, channels: 4 },
        40_000,
      ),
      runLoadProcess<DropResult>(
        { mode: "drop", target, rounds: 10, channels: 8, "per-channel": 16, "drop-after-ms": 40 },
        30_000,
      ),
      (async () => {
        for (let i = 0; i < 3; i++) await killLoadMidway(target, 150);
      })(),
    ]);
    report.push(`load beside the drops: ${JSON.stringify(load)}`);
    report.push(`drop: ${JSON.stringify(dropped)}; 3 load processes SIGKILLed mid-run`);
    assert.equal(dropped.streams, 10 * 8 * 16);
    // Calls on connections nobody dropped are unaffected.
    assert.equal(load.ok, 4000, JSON.stringify(load.codes));
    alive();
    await assertServes(server.port);
  });

  await t.step("(c) h2load: raw gRPC Predict frames", async () => {
    for (let round = 0; round < 3; round++) {
      const r = await runH2load(server.port, { n: 5000, c: 16, m: 8 });
      report.push(`h2load round ${round + 1}: ${r.summary.replaceAll("\n", " | ")}`);
      assert.equal(r.succeeded, 5000, r.summary);
      assert.equal(r.status2xx, 5000, r.summary);
      assert.equal(r.failed + r.errored, 0, r.summary);
      alive();
    }
  });

  await t.step("the server is alive and answers a normal call", async () => {
    alive();
    await assertServes(server.port);
  });

  return report;
}

Deno.test("gRPC transport survives load, dropped connections and h2load", opts, async (t) => {
  // Fail up front, with the fix in the message, rather than after the other rounds.
  await findH2load();

  await using server = await startServerProcess(["run", "-A", SERVER_SCRIPT]);
  const report = await stressRounds(t, server, assertServes);
  const status = await server.stop(5000);
  console.log(report.join("\n"));
  assert.ok(status.success, `server exit ${status.code} ${status.signal}:\n${server.stderr()}`);
  // The fake server prints the calls it served on its way out: every h2load request reached
  // Predict as a decodable message.
  const served = /calls served: (\{.*\})/.exec(server.stderr());
  assert.ok(served, server.stderr());
  const calls = JSON.parse(served[1]) as Record<string, number>;
  console.log(`server served: ${served[1]}`);
  assert.ok(calls.predict >= 6000 + 4000 + 3 * 5000, served[1]);
});

Deno.test("the model server survives load, dropped connections and h2load", opts, async (t) => {
  await findH2load();
  // The stress clients name models "load", "drop", "h2load" and "after" and send a 1×784
  // "images" input to serving_default: serve a dense softmax model under each name.
  const dir = await Deno.makeTempDir({ prefix: "tfs_stress_" });
  await writeDenseSoftmax(`${dir}/dense/1`);
  const config = `${dir}/models.config`;
  await Deno.writeTextFile(
    config,
    `model_config_list {\n${
      ["load", "drop", "h2load", "after"].map((name) =>
        `  config { name: "${name}" base_path: "${dir}/dense" model_platform: "tensorflow" }`
      ).join("\n")
    }\n}\n`,
  );
  // As `deno task serve` runs it: the launcher, then main.ts with least privilege.
  await using server = await startServerProcess(
    taskCommand("serve", [`--model_config_file=${config}`, `--port=${freePort()}`]),
  );
  const report = await stressRounds(t, server, async (port) => {
    using client = new PredictionServiceClient(`127.0.0.1:${port}`, {
      channelOptions: { "grpc.use_local_subchannel_pool": 1 },
    });
    const res = await client.predict(samplePredictRequest("after"), { deadlineMs: 5000 });
    const scores = res.outputs["scores"];
    assert.equal(scores.floatVal.length, 10);
    assert.ok(Math.abs(scores.floatVal.reduce((a, b) => a + b, 0) - 1) < 1e-5);
  });
  const status = await server.stop(10_000);
  console.log(report.join("\n"));
  assert.ok(status.success, `server exit ${status.code} ${status.signal}:\n${server.stderr()}`);
});
