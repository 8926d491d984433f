/**
 * Inference off the event loop, end to end: a real server with a slow model (hundreds of ms per
 * call), half_plus_two and a counter; real gRPC and HTTP clients. Every assertion is about
 * ordering or status, never about time.
 */
import assert from "node:assert/strict";
import { parseFlags } from "../../src/config/flags.ts";
import { Code } from "../../src/errors.ts";
import { QUEUE_FULL_MESSAGE } from "../../src/exec/executor.ts";
import { startServer } from "../../src/server.ts";
import { PredictionServiceClient } from "../../src/client/grpc_client.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { assertServingError } from "../assert.ts";
import { freePort, ServerProcess } from "../server_process.ts";
import { testdata } from "../testdata.ts";
import { writeCounterModel, writeSlowModel } from "./models.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A base path with the slow model (version 1), the counter, and a config serving them. */
async function setup(matmuls = 24): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "exec_server_" });
  await writeSlowModel(`${dir}/slow/1`, matmuls);
  await writeCounterModel(`${dir}/counter/1`);
  const model = (name: string, base: string) =>
    `config { name: "${name}" base_path: "${base}" model_platform: "tensorflow" }`;
  await Deno.writeTextFile(
    `${dir}/models.config`,
    `model_config_list {\n${
      [
        model("slow", `${dir}/slow`),
        model("counter", `${dir}/counter`),
        model("half_plus_two", testdata("saved_model_half_plus_two_cpu")),
      ].join("\n")
    }\n}\n`,
  );
  return dir;
}

const slowRequest = (x: number) => ({
  modelSpec: { name: "slow" },
  inputs: { x: tensorToProto(Tensor.float32([x], [1])) },
});

const halfRequest = {
  modelSpec: { name: "half_plus_two" },
  inputs: { x: tensorToProto(Tensor.float32([2], [1, 1])) },
};

Deno.test("a slow model runs off the event loop", opts, async (t) => {
  const dir = await setup();
  const restPort = freePort();
  const lines: string[] = [];
  const server = await startServer(
    parseFlags([
      `--port=${freePort()}`,
      `--rest_api_port=${restPort}`,
      `--model_config_file=${dir}/models.config`,
      "--file_system_poll_wait_seconds=0",
      "--rest_api_timeout_in_ms=50",
      "--tensorflow_session_parallelism=1",
    ]),
    {
      host: "127.0.0.1",
      log: (_l, m) => lines.push(m),
      maxQueuedPerModel: 8,
    },
  );
  const client = new PredictionServiceClient(`127.0.0.1:${server.grpcPort}`);
  try {
    await t.step(
      "a /healthz and a half_plus_two Predict sent during a call come first",
      async () => {
        const order: string[] = [];
        const slow = client.predict(slowRequest(1)).then((r) => {
          order.push("slow");
          return r;
        });
        // Let the slow call reach its worker.
        await new Promise((r) => setTimeout(r, 20));
        const health = fetch(`http://127.0.0.1:${restPort}/healthz`).then(async (r) => {
          await r.body?.cancel();
          order.push("healthz");
          return r.status;
        });
        const half = client.predict(halfRequest).then((r) => {
          order.push("half_plus_two");
          return r;
        });
        const [res, status, h] = await Promise.all([slow, health, half]);
        assert.deepEqual(res.outputs["y"].floatVal, [2]);
        assert.equal(status, 200);
        assert.deepEqual(h.outputs["y"].floatVal, [3]);
        assert.equal(order.at(-1), "slow", `answered in the order ${order.join(", ")}`);
      },
    );

    await t.step("a 50 ms deadline gets DEADLINE_EXCEEDED; the next call succeeds", async () => {
      await assertServingError(
        () => client.predict(slowRequest(1), { deadlineMs: 50 }),
        Code.DEADLINE_EXCEEDED,
      );
      const res = await client.predict(slowRequest(2));
      assert.deepEqual(res.outputs["y"].floatVal, [3]);
    });

    await t.step("the REST timeout answers 504 while the call runs", async () => {
      const r = await fetch(`http://127.0.0.1:${restPort}/v1/models/slow:predict`, {
        method: "POST",
        body: JSON.stringify({ instances: [1] }),
      });
      assert.equal(r.status, 504);
      assert.match((await r.json()).error, /Timed out/);
    });

    await t.step("200 calls beyond the queue bound get UNAVAILABLE; nothing leaks", async () => {
      // Calls answered at their deadline above may still be running: a call that succeeds
      // comes after them in the queue, so the worker is idle once it returns.
      await client.predict(slowRequest(0));
      const rss0 = Deno.memoryUsage().rss;
      // One running and 8 waiting fill the worker and the queue; then 200 more.
      const accepted = Array.from(
        { length: 9 },
        (_, i) => client.predict(slowRequest(i), { deadlineMs: 120_000 }),
      );
      await new Promise((r) => setTimeout(r, 50));
      const refused = await Promise.allSettled(
        Array.from({ length: 200 }, () => client.predict(slowRequest(0))),
      );
      for (const r of refused) {
        assert.equal(r.status, "rejected");
        assert.equal((r.reason as { code: number }).code, Code.UNAVAILABLE);
        assert.equal((r.reason as Error).message, QUEUE_FULL_MESSAGE);
      }
      const ys = (await Promise.all(accepted)).map((r) => r.outputs["y"].floatVal[0]);
      assert.deepEqual(ys, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // Refused calls hold nothing: memory stays within a generous bound.
      assert.ok(Deno.memoryUsage().rss - rss0 < 256 * 1024 * 1024);
    });

    await t.step("N concurrent AssignAdd calls leave the counter at N", async () => {
      const n = 64;
      const incr = { modelSpec: { name: "counter", signatureName: "incr_counter" } };
      await Promise.all(Array.from({ length: n }, () => client.predict(incr)));
      const res = await client.predict({
        modelSpec: { name: "counter", signatureName: "get_counter" },
      });
      assert.deepEqual(res.outputs["output"].floatVal, [n]);
    });
  } finally {
    client.close();
    await server.close(1000);
  }
});

Deno.test(
  "SIGTERM with calls queued and running: all finish or deadline, exit 0",
  opts,
  async () => {
    const dir = await setup();
    await using server = await ServerProcess.start([
      `--model_config_file=${dir}/models.config`,
      "--file_system_poll_wait_seconds=0",
      "--tensorflow_session_parallelism=1",
    ]);
    using client = new PredictionServiceClient(`127.0.0.1:${server.port}`);
    await client.predict(halfRequest);
    // One runs, two wait; one of those has a deadline it cannot meet.
    const calls = [
      client.predict(slowRequest(1), { deadlineMs: 60_000 }),
      client.predict(slowRequest(2), { deadlineMs: 60_000 }),
      client.predict(slowRequest(3), { deadlineMs: 100 }),
    ];
    await new Promise((r) => setTimeout(r, 30));
    const status = server.kill("SIGTERM");
    const results = await Promise.allSettled(calls);
    assert.equal(results[0].status, "fulfilled");
    assert.equal(results[1].status, "fulfilled");
    if (results[2].status === "rejected") {
      assert.equal((results[2].reason as { code: number }).code, Code.DEADLINE_EXCEEDED);
    }
    assert.equal((await status).code, 0);
    assert.match(server.log(), /Server shut down/);
  },
);

Deno.test("a gRPC call cancelled by its client leaves the queue before it runs", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "exec_cancel_" });
  await writeSlowModel(`${dir}/slow/1`, 24);
  // Ballast makes the counter a large version, pinned to the one worker behind the slow model.
  await writeCounterModel(`${dir}/counter/1`, 200_000);
  const model = (name: string) =>
    `config { name: "${name}" base_path: "${dir}/${name}" model_platform: "tensorflow" }`;
  await Deno.writeTextFile(
    `${dir}/models.config`,
    `model_config_list {\n${model("slow")}\n${model("counter")}\n}\n`,
  );
  const server = await startServer(
    parseFlags([
      `--port=${freePort()}`,
      `--model_config_file=${dir}/models.config`,
      "--file_system_poll_wait_seconds=0",
      "--tensorflow_session_parallelism=1",
    ]),
    { host: "127.0.0.1", log: () => {} },
  );
  const client = new PredictionServiceClient(`127.0.0.1:${server.grpcPort}`);
  try {
    const busy = client.predict(slowRequest(1));
    await new Promise((r) => setTimeout(r, 50));
    const gone = new AbortController();
    const incr = client.predict(
      { modelSpec: { name: "counter", signatureName: "incr_counter" } },
      { signal: gone.signal },
    );
    await new Promise((r) => setTimeout(r, 50));
    gone.abort();
    await assertServingError(() => incr, Code.CANCELLED);
    await busy;
    const res = await client.predict({
      modelSpec: { name: "counter", signatureName: "get_counter" },
    });
    assert.deepEqual(res.outputs["output"].floatVal, [0], "the cancelled AssignAdd never ran");
  } finally {
    client.close();
    await server.close(1000);
  }
});
