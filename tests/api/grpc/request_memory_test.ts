/**
 * Large Predict requests read into reused shared memory (tensor/request_memory.ts) through the
 * real server: a model run on workers, a grpc-js client and a raw HTTP/2 connection. Calls in
 * flight at once, calls after others reused their memory, a request reset half-way and a call
 * answered at its deadline while it runs: each answer is its own input's.
 */
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { parseFlags } from "../../../src/config/flags.ts";
import { startServer } from "../../../src/server.ts";
import { PredictionServiceClient } from "../../../src/client/grpc_client.ts";
import { PREDICT_PATH } from "../../../src/api/grpc/server.ts";
import { ErrorCode, FrameType, Setting } from "../../../src/api/grpc/h2/frames.ts";
import {
  PredictRequestSchema,
  PredictResponseSchema,
} from "../../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { tensorToProto } from "../../../src/tensor/tensor_proto.ts";
import { freePort } from "../../server_process.ts";
import { writeSlowModel } from "../../exec/models.ts";
import { grpcHeaders, grpcMessage, RawH2, settings, statusOf, u32 } from "./h2_client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Elements of an input: 400 KB of floats, well above the pooled minimum. */
const N = 100_000;

/** Input `k`: distinct per call and per element, exact in float32 (and so is x + 1). */
function input(k: number): Float32Array {
  const x = new Float32Array(N);
  for (let i = 0; i < N; i++) x[i] = k * 1024 + (i % 1021);
  return x;
}

function request(k: number, content: boolean) {
  return create(PredictRequestSchema, {
    modelSpec: { name: "slow" },
    inputs: { x: tensorToProto(Tensor.float32(input(k), [N]), content) },
  });
}

/** Checks that `y` is input `k` + 1. */
function assertAnswer(y: ArrayLike<number>, k: number): void {
  const x = input(k);
  assert.equal(y.length, N);
  for (let i = 0; i < N; i++) {
    if (y[i] !== x[i] + 1) assert.fail(`call ${k}: y[${i}] = ${y[i]}, want ${x[i] + 1}`);
  }
}

function yOf(r: { outputs: Record<string, { floatVal: number[]; tensorContent: Uint8Array }> }) {
  const t = r.outputs["y"];
  if (t.floatVal.length > 0) return t.floatVal;
  const c = t.tensorContent;
  return new Float32Array(c.slice().buffer);
}

/** A raw connection with windows large enough for the answers. */
async function connect(port: number): Promise<RawH2> {
  const c = await RawH2.connect(port, {
    settings: settings([Setting.INITIAL_WINDOW_SIZE, 1 << 30]),
  });
  await c.send(FrameType.WINDOW_UPDATE, 0, 0, u32(1 << 30));
  return c;
}

/** DATA frames of at most the default frame size. */
async function sendData(c: RawH2, stream: number, bytes: Uint8Array, end: boolean) {
  for (let o = 0; o < bytes.length; o += 16384) {
    const last = o + 16384 >= bytes.length;
    await c.data(stream, bytes.subarray(o, Math.min(o + 16384, bytes.length)), end && last);
  }
}

Deno.test("large Predict requests in reused memory each get their own answer", opts, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "request_memory_" });
  await writeSlowModel(`${dir}/slow/1`, 1);
  const port = freePort();
  const server = await startServer(
    parseFlags([
      `--port=${port}`,
      `--model_name=slow`,
      `--model_base_path=${dir}/slow`,
      "--file_system_poll_wait_seconds=0",
      "--tensorflow_session_parallelism=2",
    ]),
    { host: "127.0.0.1", log: () => {} },
  );
  const client = new PredictionServiceClient(`127.0.0.1:${server.grpcPort}`);
  try {
    await t.step("calls at once, in rounds that reuse the memory of the last", async () => {
      for (let round = 0; round < 3; round++) {
        const ks = Array.from({ length: 6 }, (_, i) => round * 6 + i);
        const answers = await Promise.all(
          ks.map((k) => client.predict(request(k, k % 2 === 0))),
        );
        answers.forEach((r, i) => assertAnswer(yOf(r), ks[i]));
      }
    });

    await t.step("a request reset half-way leaves the next calls right", async () => {
      for (let i = 0; i < 3; i++) {
        using c = await connect(server.grpcPort);
        const body = grpcMessage(toBinary(PredictRequestSchema, request(100 + i, true)));
        await c.headers(1, grpcHeaders(PREDICT_PATH));
        await sendData(c, 1, body.subarray(0, body.length >> 1), false);
        await c.send(FrameType.RST_STREAM, 0, 1, u32(ErrorCode.CANCEL));
        // The same connection goes on: the next stream's answer is its own.
        await c.headers(3, grpcHeaders(PREDICT_PATH));
        await sendData(
          c,
          3,
          grpcMessage(toBinary(PredictRequestSchema, request(200 + i, true))),
          true,
        );
        const a = await c.answer(3);
        assert.equal(statusOf(a).code, 0, statusOf(a).message);
        assertAnswer(yOf(fromBinary(PredictResponseSchema, a.data.subarray(5))), 200 + i);
        const r = await client.predict(request(300 + i, false));
        assertAnswer(yOf(r), 300 + i);
      }
    });

    await t.step("a request whose first bytes come a few at a time is read right", async () => {
      using c = await connect(server.grpcPort);
      const body = grpcMessage(toBinary(PredictRequestSchema, request(600, true)));
      await c.headers(1, grpcHeaders(PREDICT_PATH));
      let o = 0;
      for (let n = 1; o < 3000; n++) {
        await c.data(1, body.subarray(o, o + n), false);
        o += n;
      }
      await sendData(c, 1, body.subarray(o), true);
      const a = await c.answer(1);
      assert.equal(statusOf(a).code, 0, statusOf(a).message);
      assertAnswer(yOf(fromBinary(PredictResponseSchema, a.data.subarray(5))), 600);
    });

    await t.step(
      "a call answered at its deadline while it runs leaves the next right",
      async () => {
        using c = await connect(server.grpcPort);
        const late = [1, 3, 5].map(async (stream, i) => {
          await c.headers(stream, grpcHeaders(PREDICT_PATH, ["grpc-timeout", "1m"]));
          await sendData(
            c,
            stream,
            grpcMessage(toBinary(PredictRequestSchema, request(400 + i, true))),
            true,
          );
        });
        await Promise.all(late);
        const answers = await Promise.all(
          [0, 1, 2, 3].map((i) => client.predict(request(500 + i, i % 2 === 0))),
        );
        answers.forEach((r, i) => assertAnswer(yOf(r), 500 + i));
        for (const stream of [1, 3, 5]) {
          const code = statusOf(await c.answer(stream)).code;
          assert.ok(code === 0 || code === 4, `stream ${stream}: ${code}`);
        }
      },
    );
  } finally {
    client.close();
    await server.close();
  }
});
