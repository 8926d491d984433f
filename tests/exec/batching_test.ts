/**
 * Request batching: the parameters file, merging and splitting as batching_session.cc does,
 * and batched calls through the executor and a real server.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { PredictRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { Code, ServingError } from "../../src/errors.ts";
import {
  type BatchingParameters,
  defaultBatchingParameters,
  mergeInputs,
  parseBatchingParameters,
  readBatchingParametersFile,
  splitOutputs,
  taskSize,
} from "../../src/exec/batching.ts";
import { type BatchObserver, Executor } from "../../src/exec/executor.ts";
import { shareConstants } from "../../src/exec/shared_model.ts";
import { loadModel } from "../../src/runtime/model.ts";
import { preparePredict } from "../../src/servables/predict.ts";
import { runPrepared } from "../../src/servables/prepared.ts";
import { parseFlags } from "../../src/config/flags.ts";
import { startServer } from "../../src/server.ts";
import { PredictionServiceClient } from "../../src/client/grpc_client.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { assertServingError } from "../assert.ts";
import { freePort } from "../server_process.ts";
import { testdata } from "../testdata.ts";

const HALF = testdata("saved_model_half_plus_two_cpu/00000123");

function params(overrides: Partial<BatchingParameters>): BatchingParameters {
  return { ...defaultBatchingParameters(), ...overrides };
}

Deno.test("readBatchingParametersFile() reads TF Serving's testdata", async () => {
  const p = await readBatchingParametersFile(testdata("batching_config.txt"));
  assert.equal(p.maxBatchSize, 128);
  assert.equal(p.batchTimeoutMicros, 0);
  assert.equal(p.maxEnqueuedBatches, 1000000);
  assert.equal(p.numBatchThreads, 8);
  assert.deepEqual(p.allowedBatchSizes, []);
  assert.equal(p.padVariableLengthInputs, false);
});

Deno.test("parseBatchingParameters() checks as upstream does", async () => {
  const p = parseBatchingParameters(`
    max_batch_size { value: 8 }  # comment
    allowed_batch_sizes: 2
    allowed_batch_sizes: 4
    allowed_batch_sizes: 8
    pad_variable_length_inputs: true
    thread_pool_name { value: "pool" }`);
  assert.deepEqual(p.allowedBatchSizes, [2, 4, 8]);
  assert.equal(p.padVariableLengthInputs, true);
  assert.equal(p.threadPoolName, "pool");
  await assertServingError(
    () => parseBatchingParameters("max_batch_size { value: 8 } allowed_batch_sizes: 4"),
    Code.INVALID_ARGUMENT,
    "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; expected 8",
  );
  await assertServingError(
    () =>
      parseBatchingParameters(
        "max_batch_size { value: 4 } allowed_batch_sizes: 4 allowed_batch_sizes: 2 allowed_batch_sizes: 4",
      ),
    Code.INVALID_ARGUMENT,
    "allowed_batch_sizes entries must be monotonically increasing",
  );
  await assertServingError(
    () => parseBatchingParameters("max_batch_sizes { value: 4 }"),
    Code.INVALID_ARGUMENT,
    'unknown field "max_batch_sizes"',
  );
});

Deno.test("taskSize(), mergeInputs() and splitOutputs() follow batching_session.cc", async () => {
  await assertServingError(
    () => taskSize([Tensor.float32([1, 2], [2]), Tensor.float32([1], [1])]),
    Code.INVALID_ARGUMENT,
    "Batching Run() input tensors must have equal 0th-dimension size",
  );
  await assertServingError(
    () => taskSize([Tensor.float32([1], [])]),
    Code.INVALID_ARGUMENT,
    "Batching Run() input tensors must have at least one dimension",
  );
  // Padded to the next allowed size with the last call's first row.
  const calls = [[Tensor.float32([1, 2], [1, 2])], [Tensor.float32([3, 4, 5, 6], [2, 2])]];
  const p = params({ maxBatchSize: 4, allowedBatchSizes: [2, 4] });
  const merged = mergeInputs(calls, [1, 2], ["x:0"], p);
  assert.equal(merged.padding, 1);
  assert.deepEqual(merged.feeds[0].shape, [4, 2]);
  assert.deepEqual(Array.from(merged.feeds[0].data as Float32Array), [1, 2, 3, 4, 5, 6, 3, 4]);
  const split = splitOutputs([merged.feeds[0]], merged);
  assert.deepEqual(split.map((s) => Array.from(s[0].data as Float32Array)), [[1, 2], [
    3,
    4,
    5,
    6,
  ]]);
  await assertServingError(
    () => splitOutputs([Tensor.float32([1, 2], [2])], merged),
    Code.FAILED_PRECONDITION,
    "Batched output tensor's 0th dimension does not equal the sum",
  );
  // Different shapes: refused without padding, padded with it.
  const ragged = [[Tensor.float32([1, 2], [1, 2])], [Tensor.float32([3, 4, 5], [1, 3])]];
  await assertServingError(
    () => mergeInputs(ragged, [1, 1], ["x:0"], params({})),
    Code.FAILED_PRECONDITION,
    "Tensors with name 'x:0' from different tasks have different shapes and padding is turned off.",
  );
  const padded = mergeInputs(ragged, [1, 1], ["x:0"], params({ padVariableLengthInputs: true }));
  assert.deepEqual(padded.feeds[0].shape, [2, 3]);
  assert.deepEqual(Array.from(padded.feeds[0].data as Float32Array), [1, 2, 1, 3, 4, 5]);
});

function halfCall(model: Awaited<ReturnType<typeof loadModel>>, x: number[]) {
  return preparePredict(
    model,
    123,
    "half",
    create(PredictRequestSchema, {
      modelSpec: { name: "half" },
      inputs: { x: tensorToProto(Tensor.float32(x, [x.length, 1])) },
    }),
  );
}

Deno.test("32 concurrent single-row calls batch up to max_batch_size with the same outputs", async () => {
  const model = await loadModel(HALF, { prepare: shareConstants });
  const sizes: number[] = [];
  const observer: BatchObserver = {
    inputBatchSize: () => {},
    processedBatch: (n) => sizes.push(n),
    queuingLatency: () => {},
  };
  await using exec = new Executor({
    workers: 0,
    batching: params({ maxBatchSize: 8, maxEnqueuedBatches: 100 }),
    batchObserver: observer,
  });
  await exec.attach(model, "half");
  const xs = Array.from({ length: 32 }, (_, i) => i);
  const batched = await Promise.all(xs.map((x) => exec.run(model, halfCall(model, [x]))));
  const separate = xs.map((x) => runPrepared(model, halfCall(model, [x])));
  assert.deepEqual(
    batched.map((r) => r.outputs["y"].floatVal),
    separate.map((r) => r.outputs["y"].floatVal),
  );
  assert.ok(sizes.some((n) => n > 1), `batch sizes ${sizes}`);
  assert.ok(sizes.every((n) => n <= 8));
  assert.equal(sizes.reduce((a, b) => a + b, 0), 32);
});

Deno.test("batching refuses a call over max_batch_size and calls beyond the queue", async () => {
  const model = await loadModel(HALF, { prepare: shareConstants });
  await using exec = new Executor({
    workers: 0,
    batching: params({ maxBatchSize: 2, maxEnqueuedBatches: 2, numBatchThreads: 1 }),
  });
  await exec.attach(model, "half");
  await assertServingError(
    () => exec.run(model, halfCall(model, [1, 2, 3])),
    Code.INVALID_ARGUMENT,
    "Task size 3 is larger than maximum batch size 2",
  );
  // Two batches of two fit; the fifth call finds the queue full.
  const calls = [1, 2, 3, 4, 5].map((x) => exec.run(model, halfCall(model, [x])));
  const results = await Promise.allSettled(calls);
  assert.deepEqual(results.slice(0, 4).map((r) => r.status), Array(4).fill("fulfilled"));
  assert.equal(results[4].status, "rejected");
  const err = (results[4] as PromiseRejectedResult).reason as ServingError;
  assert.equal(err.code, Code.UNAVAILABLE);
  assert.equal(
    err.message,
    "The batch scheduling queue to which this task was submitted is full",
  );
});

Deno.test("--enable_batching on a real server: batched answers and upstream's metrics", async () => {
  const dir = await Deno.makeTempDir({ prefix: "batching_server_" });
  await Deno.writeTextFile(
    `${dir}/batching.txt`,
    "max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000 }\n" +
      "max_enqueued_batches { value: 100 }\nallowed_batch_sizes: 4\nallowed_batch_sizes: 8\n",
  );
  const restPort = freePort();
  const server = await startServer(
    parseFlags([
      `--port=${freePort()}`,
      `--rest_api_port=${restPort}`,
      "--model_name=half",
      `--model_base_path=${testdata("saved_model_half_plus_two_cpu")}`,
      "--enable_batching",
      `--batching_parameters_file=${dir}/batching.txt`,
      `--monitoring_config_file=${testdata("monitoring_config.txt")}`,
      "--file_system_poll_wait_seconds=0",
    ]),
    { host: "127.0.0.1", log: () => {} },
  );
  const client = new PredictionServiceClient(`127.0.0.1:${server.grpcPort}`);
  try {
    const xs = Array.from({ length: 32 }, (_, i) => i);
    const res = await Promise.all(xs.map((x) =>
      client.predict({
        modelSpec: { name: "half" },
        inputs: { x: tensorToProto(Tensor.float32([x], [1, 1])) },
      })
    ));
    assert.deepEqual(res.map((r) => r.outputs["y"].floatVal[0]), xs.map((x) => x / 2 + 2));
    const text = await (await fetch(
      `http://127.0.0.1:${restPort}/monitoring/prometheus/metrics`,
    )).text();
    for (
      const name of ["input_batch_size", "processed_batch_size", "padding_size", "queuing_latency"]
    ) {
      assert.match(text, new RegExp(`:tensorflow:serving:batching_session:${name}_count`));
    }
    // Only allowed sizes ran: 4 or 8, never 1.
    const processed = text.match(
      /:tensorflow:serving:batching_session:processed_batch_size_bucket\{le="2"\} (\d+)/,
    );
    assert.equal(processed?.[1], "0");
  } finally {
    client.close();
    await server.close(1000);
  }
});
