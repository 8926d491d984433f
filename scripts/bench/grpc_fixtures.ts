/**
 * What the gRPC-facing bench sections share: the testdata path, a child's resident memory, one
 * closed-loop run of `grpc_load.ts` in its own process, and the two standard Predict requests
 * (the dense 784×10 model and half_plus_two) written as wire bytes for it.
 *
 * @module
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { PredictRequestSchema } from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import type { LoadReport } from "./grpc_load.ts";
import { random } from "./models.ts";
import { CONFIG, here } from "./process.ts";

/** TF Serving's testdata beside the repo. */
export const TESTDATA: string = here("../../../shared/testdata/tf-serving/");

const LOAD = here("./grpc_load.ts");

/** Resident memory of a process in MiB, from `ps` (reading /proc needs Deno's --allow-all). */
export async function rssMiB(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  return Number(new TextDecoder().decode(out.stdout).trim()) / 1024;
}

/** One closed-loop Predict run from another process (`grpc_load.ts`); its JSON report. */
export async function grpcLoad(
  target: string,
  request: string,
  concurrency: number,
  seconds: number,
): Promise<LoadReport> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      CONFIG,
      "-A",
      LOAD,
      `--target=${target}`,
      "--method=Predict",
      `--request=${request}`,
      `--concurrency=${concurrency}`,
      `--duration=${seconds}`,
      `--channels=${Math.min(concurrency, 4)}`,
      "--warmup=1",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop()!;
  return JSON.parse(text) as LoadReport;
}

/**
 * Writes the dense (`dense`, one random 784-float image) and half_plus_two (`x` = [[2]])
 * Predict requests into `dir`.
 *
 * @returns their paths
 */
export async function writeStandardRequests(dir: string): Promise<{ dense: string; hp2: string }> {
  const dense = `${dir}/dense.bin`;
  await Deno.writeFile(
    dense,
    toBinary(
      PredictRequestSchema,
      create(PredictRequestSchema, {
        modelSpec: { name: "dense", signatureName: "serving_default" },
        inputs: { images: tensorToProto(Tensor.float32(random(784, 7), [1, 784]), true) },
      }),
    ),
  );
  const hp2 = `${dir}/hp2.bin`;
  await Deno.writeFile(
    hp2,
    toBinary(
      PredictRequestSchema,
      create(PredictRequestSchema, {
        modelSpec: { name: "half_plus_two" },
        inputs: { x: tensorToProto(Tensor.float32([2], [1, 1])) },
      }),
    ),
  );
  return { dense, hp2 };
}
