/**
 * What the serving sections (gRPC, REST, memory, start-up) share: the half_plus_two requests as
 * wire bytes, a real gRPC client call over `node:http2` that reads the trailers, the server
 * started as users start it (`deno task serve`: launch.ts, which runs server_main.ts in a child
 * with least privilege), and a process's resident memory.
 *
 * @module
 */
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  PredictRequestSchema,
  PredictResponseSchema,
} from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { DataType } from "../../src/proto/gen/tensorflow/core/framework/types_pb.ts";
import { CONFIG, here, type Proc, spawn, stop } from "./process.ts";
import { v8FlagsArg } from "../../src/config/permissions.ts";

/** TF Serving's half_plus_two (TF1, CPU): y = x / 2 + 2, x of shape [-1, 1]. */
export const HALF_PLUS_TWO: string = here(
  "../../../shared/testdata/tf-serving/saved_model_half_plus_two_cpu",
);
/** The launcher behind `deno task serve`, and the server it starts. */
export const LAUNCH: string = here("../../launch.ts");
export const SERVER_MAIN: string = here("../../server_main.ts");
/** The Predict method's path. */
export const PREDICT_PATH = "/tensorflow.serving.PredictionService/Predict";

/** The inputs of a half_plus_two batch: 1, 2, …, batch. */
export function hp2Inputs(batch: number): number[] {
  return Array.from({ length: batch }, (_, i) => i + 1);
}

/** A gRPC message frame: flag byte 0 (not compressed), uint32 big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const framed = new Uint8Array(5 + message.length);
  new DataView(framed.buffer).setUint32(1, message.length);
  framed.set(message, 5);
  return framed;
}

/** A half_plus_two PredictRequest (`x` of shape [batch, 1]) as a gRPC frame. */
export function hp2PredictFrame(batch: number): Uint8Array {
  return grpcFrame(toBinary(
    PredictRequestSchema,
    create(PredictRequestSchema, {
      modelSpec: { name: "half_plus_two" },
      inputs: {
        x: {
          dtype: DataType.DT_FLOAT,
          tensorShape: { dim: [{ size: BigInt(batch) }, { size: 1n }] },
          floatVal: hp2Inputs(batch),
        },
      },
    }),
  ));
}

/** The REST `:predict` body for a half_plus_two batch (`{"instances":[[1.0],[2.0],…]}`). */
export function hp2RestBody(batch: number): string {
  return `{"instances":[${hp2Inputs(batch).map((x) => `[${x.toFixed(1)}]`).join(",")}]}`;
}

/** One unary call's outcome. */
export interface GrpcAnswer {
  /** `grpc-status` (from the trailers, or the headers of a trailers-only answer). */
  readonly status: string;
  readonly message: string;
  /** The body bytes (all DATA frames). */
  readonly body: Uint8Array;
}

/** One unary gRPC call over a fresh HTTP/2 connection (rejects when it cannot connect). */
export function grpcUnary(
  port: number,
  path: string,
  frame: Uint8Array,
  timeoutMs = 10_000,
): Promise<GrpcAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => fail(new Error("timed out")), timeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      session.destroy();
      reject(e);
    };
    session.on("error", fail);
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    let status = "";
    let message = "";
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
    };
    req.on("response", take);
    req.on("trailers", take);
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("error", fail);
    req.on("end", () => {
      clearTimeout(timer);
      session.close();
      const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        body.set(c, at);
        at += c.length;
      }
      resolve({ status, message, body });
    });
    req.end(frame);
  });
}

/**
 * Checks a half_plus_two Predict answer: status OK, one frame holding `y` = x / 2 + 2 for the
 * batch's inputs.
 *
 * @returns the answer's body size (what every answer to the same request must carry)
 * @throws Error describing what is wrong
 */
export function checkHp2Answer(a: GrpcAnswer, batch: number): number {
  if (a.status !== "0") throw new Error(`grpc-status ${a.status}: ${a.message}`);
  const len = new DataView(a.body.buffer, a.body.byteOffset).getUint32(1);
  if (a.body.length !== 5 + len) throw new Error(`one frame expected, got ${a.body.length} bytes`);
  const res = fromBinary(PredictResponseSchema, a.body.subarray(5));
  const y = res.outputs.y;
  if (!y) throw new Error("no output y");
  const values = y.tensorContent.length > 0
    ? Array.from(
      new Float32Array(y.tensorContent.slice().buffer, 0, y.tensorContent.length / 4),
    )
    : y.floatVal;
  const want = hp2Inputs(batch).map((x) => x / 2 + 2);
  if (values.length !== batch || values.some((v, i) => v !== want[i])) {
    throw new Error(`wrong y: ${values.slice(0, 4)}…`);
  }
  return a.body.length;
}

/** A served model server: the launcher's process and the server's own pid. */
export interface Served {
  readonly launcher: Proc;
  /** The server process (launch.ts's child). */
  readonly serverPid: number;
}

/**
 * Starts half_plus_two as `deno task serve` does (launch.ts serve), on gRPC `port` and, if
 * given, REST `restPort`; resolves once the gRPC port is served.
 */
export function serveHp2(port: number, restPort = 0): Promise<Served> {
  return serveModel("half_plus_two", HALF_PLUS_TWO, port, restPort);
}

/**
 * The `deno` arguments of `deno task serve` (launch.ts serve) on gRPC `port` (and REST
 * `restPort` when given) with the server flags `flags` (the model).
 */
export function serveArgs(port: number, flags: readonly string[], restPort = 0): string[] {
  return [
    "run",
    // As `deno task serve`: the launcher under the server's V8 flags (a code cache made under
    // other flags is refused, so the shared modules would be recompiled at every start).
    v8FlagsArg(),
    "--config",
    CONFIG,
    "--allow-read",
    "--allow-run",
    "--no-prompt",
    LAUNCH,
    "serve",
    `--port=${port}`,
    ...(restPort > 0 ? [`--rest_api_port=${restPort}`] : []),
    ...flags,
  ];
}

/**
 * Starts the server as `deno task serve` does (launch.ts serve) with one model, on gRPC `port`
 * and, if given, REST `restPort`; resolves once the gRPC port (and the REST one) is served.
 */
export async function serveModel(
  name: string,
  basePath: string,
  port: number,
  restPort = 0,
  timeoutMs = 30_000,
): Promise<Served> {
  const launcher = spawn(
    serveArgs(port, [`--model_name=${name}`, `--model_base_path=${basePath}`], restPort),
  );
  try {
    await launcher.waitFor(/Running gRPC ModelServer/, timeoutMs);
    if (restPort > 0) await launcher.waitFor(/Exporting HTTP\/REST API/, timeoutMs);
  } catch (e) {
    await stop(launcher);
    throw e;
  }
  const line = launcher.lines.find((l) => /Starting the server \(pid \d+\)/.test(l));
  const pid = Number(/\(pid (\d+)\)/.exec(line ?? "")?.[1]);
  if (!pid) throw new Error(`no server pid in:\n${launcher.lines.join("\n")}`);
  return { launcher, serverPid: pid };
}

/** A process's memory in MiB: resident now (VmRSS) and its peak (VmHWM). */
export async function memoryMiB(pid: number): Promise<{ rss: number; peak: number }> {
  // Deno reads /proc only with --allow-all; `cat` needs just --allow-run.
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const text = new TextDecoder().decode(out.stdout);
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1]);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}
