/**
 * The baseline the Predict path is measured against: a bare grpc-js server exposing
 * `/tensorflow.serving.PredictionService/Predict` that decodes nothing and answers every call
 * with the same small, pre-encoded PredictResponse. What a real Predict costs beyond this is
 * decoding, inference and encoding.
 *
 * Usage: deno run -A scripts/bench/grpc_echo_server.ts [--host=127.0.0.1] [--port=0]
 *   [--exit-on-stdin-close]
 * Prints the bound port on a line of its own; serves until SIGTERM/SIGINT (or, with
 * `--exit-on-stdin-close`, until its stdin closes: a parent that spawns it with a piped stdin
 * then never leaves it behind).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { create, toBinary } from "@bufbuild/protobuf";
import { methodPath } from "../../src/proto/rpc.ts";
import { PredictionService } from "../../src/proto/gen/tensorflow_serving/apis/prediction_service_pb.ts";
import { PredictResponseSchema } from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { DataType } from "../../src/proto/gen/tensorflow/core/framework/types_pb.ts";

/** A PredictResponse like MNIST's: ten class scores. */
export function fixedResponse(): Buffer {
  const bytes = toBinary(
    PredictResponseSchema,
    create(PredictResponseSchema, {
      modelSpec: { name: "echo", signatureName: "serving_default" },
      outputs: {
        scores: {
          dtype: DataType.DT_FLOAT,
          tensorShape: { dim: [{ size: 1n }, { size: 10n }] },
          floatVal: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
        },
      },
    }),
  );
  return Buffer.from(bytes);
}

/**
 * Starts the echo server.
 *
 * @param host the address to bind
 * @param port the port (0: any free one)
 * @returns the bound port and a stop function
 */
export async function startEchoServer(
  host = "127.0.0.1",
  port = 0,
): Promise<{ port: number; stop(): Promise<void> }> {
  // The same limits as the real transport, so only the work differs.
  const server = new grpc.Server({
    "grpc.max_receive_message_length": 2147483647,
    "grpc.max_send_message_length": -1,
  });
  const response = fixedResponse();
  const identity = (b: Buffer) => b;
  server.register<Buffer, Buffer>(
    methodPath(PredictionService.method.predict),
    (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
      callback(null, response),
    identity,
    identity,
    "unary",
  );
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${host}:${port}`,
      grpc.ServerCredentials.createInsecure(),
      (err, p) => (err ? reject(err) : resolve(p)),
    )
  );
  return {
    port: bound,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

if (import.meta.main) {
  const flag = (name: string, fallback: string) =>
    Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
  const server = await startEchoServer(flag("host", "127.0.0.1"), Number(flag("port", "0")));
  console.log(server.port);
  const stop = async () => {
    await server.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  if (Deno.args.includes("--exit-on-stdin-close")) {
    (async () => {
      const buf = new Uint8Array(64);
      try {
        while ((await Deno.stdin.read(buf)) !== null) { /* ignore input */ }
      } catch { /* closed */ }
      await stop();
    })();
  }
}
