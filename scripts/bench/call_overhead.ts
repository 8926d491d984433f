/**
 * The per-call cost of Predict inside the server, without a transport: the server started on
 * half_plus_two (ports 0; default workers, which such cheap calls never start), then its service
 * called in a loop as the gRPC path calls it (`predictView` over request bytes) and as the REST
 * path does (`signatureInputTypes` + `predictTensors` over JSON-decoded tensors). Prints µs per call, the median of rounds.
 *
 *   deno run -A scripts/bench/call_overhead.ts [--rounds=15] [--calls=20000]
 *
 * @module
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { parseFlags } from "../../src/config/flags.ts";
import { startServer } from "../../src/server.ts";
import { PredictRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { ModelSpecSchema } from "../../src/proto/gen/tensorflow_serving/apis/model_pb.ts";
import { DataType } from "../../src/proto/gen/tensorflow/core/framework/types_pb.ts";
import { readPredictRequest } from "../../src/api/grpc/predict_codec.ts";
import { predictTensorsFromJson } from "../../src/api/rest/json_tensor.ts";
import { HALF_PLUS_TWO } from "./serving.ts";

const arg = (name: string, dflt: number) => {
  const a = Deno.args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};
const ROUNDS = arg("rounds", 15);
const CALLS = arg("calls", 20000);

// Ports 0 after parsing (the flags require a gRPC port): any free port.
const options = parseFlags([
  "--port=1",
  "--model_name=hpt",
  `--model_base_path=${HALF_PLUS_TWO}`,
]);
const server = await startServer({ ...options, port: 0 }, {
  log: () => {},
  inferenceWorkers: 0,
  host: "127.0.0.1",
});
const service = server.service;
const limits = { maxRequestBytes: 64 << 20, maxExpansion: 64, expansionFloorBytes: 1 << 20 };

const grpcBytes = toBinary(
  PredictRequestSchema,
  create(PredictRequestSchema, {
    modelSpec: { name: "hpt" },
    inputs: {
      x: {
        dtype: DataType.DT_FLOAT,
        tensorShape: { dim: [{ size: 1n }, { size: 1n }] },
        floatVal: [1],
      },
    },
  }),
);
const restBody = new TextEncoder().encode('{"instances": [1.0]}');

function grpcCall(): unknown {
  const view = readPredictRequest(grpcBytes, limits)!;
  return service.predictView(view, "grpc");
}
function restCall(): unknown {
  const spec = create(ModelSpecSchema, { name: "hpt" });
  const decoded = predictTensorsFromJson(
    restBody,
    (signature) =>
      service.signatureInputTypes(spec).get(signature === "" ? "serving_default" : signature)!,
    "",
  );
  return service.predictTensors({ modelSpec: spec, inputs: decoded.inputs }, "rest");
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}
function measure(fn: () => unknown): number {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < CALLS; i++) {
      const out = fn();
      if (out instanceof Promise) throw new Error("expected an inline call");
    }
    rounds.push(((performance.now() - t0) * 1000) / CALLS);
  }
  return median(rounds);
}
// Both paths must answer y = x/2 + 2 = 2.5 for x = 1 before anything is timed.
for (const [name, out] of [["gRPC", grpcCall()], ["REST", restCall()]] as const) {
  const tensors = (out as { tensors?: { data: ArrayLike<number> }[] }).tensors;
  const y = tensors?.[0]?.data[0];
  if (y !== 2.5) throw new Error(`${name}-style call answered ${y}, not 2.5`);
}
// Warm up, then interleave.
measure(grpcCall);
measure(restCall);
const g: number[] = [];
const r: number[] = [];
for (let i = 0; i < 3; i++) {
  g.push(measure(grpcCall));
  r.push(measure(restCall));
}
console.log(`gRPC-style predictView: ${median(g).toFixed(2)} µs/call`);
console.log(`REST-style predictTensors (+ JSON decode): ${median(r).toFixed(2)} µs/call`);
await server.close(0);
