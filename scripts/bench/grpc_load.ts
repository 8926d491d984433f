/**
 * A closed-loop gRPC load generator, meant to run in a process of its own: `concurrency`
 * workers each send a call, wait for the answer and send the next, for `duration` seconds.
 * The request is sent as the raw bytes of a file and the response is not decoded, so the
 * client costs as little as possible and the figure is the server's.
 *
 * Usage:
 *   deno run -A scripts/bench/grpc_load.ts --target=127.0.0.1:8500 --method=Predict \
 *     --request=predict.bin --concurrency=16 --duration=10 [--channels=4] [--warmup=1]
 *
 * Prints one JSON line: {qps, p50Ms, p99Ms, errors, calls, seconds, concurrency, channels}.
 * `--method` is a method name of PredictionService or ModelService (`Predict`,
 * `GetModelMetadata`, …) or a full path (`/tensorflow.serving.PredictionService/Predict`).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { methodPath } from "../../src/proto/rpc.ts";
import { PredictionService } from "../../src/proto/gen/tensorflow_serving/apis/prediction_service_pb.ts";
import { ModelService } from "../../src/proto/gen/tensorflow_serving/apis/model_service_pb.ts";

/** The result line. */
export interface LoadReport {
  /** Completed calls (successes and failures) per second. */
  qps: number;
  /** Median latency of successful calls. */
  p50Ms: number;
  /** 99th-percentile latency of successful calls. */
  p99Ms: number;
  /** Calls that failed (any non-OK status). */
  errors: number;
  /** Calls completed in the measured window. */
  calls: number;
  /** Length of the measured window. */
  seconds: number;
  concurrency: number;
  channels: number;
}

function flag(name: string, fallback?: string): string {
  const hit = Deno.args.find((a) => a.startsWith(`--${name}=`));
  if (hit !== undefined) return hit.slice(name.length + 3);
  if (fallback === undefined) throw new Error(`Missing --${name}=…`);
  return fallback;
}

/** The path for a method name or path. */
export function resolveMethod(method: string): string {
  if (method.startsWith("/")) return method;
  for (const m of [...PredictionService.methods, ...ModelService.methods]) {
    if (m.name === method) return methodPath(m);
  }
  throw new Error(`Unknown method "${method}"`);
}

/** The value at quantile `q` of sorted values. */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Runs the closed loop.
 *
 * @param target `host:port`
 * @param path the method path
 * @param request the request bytes
 * @param concurrency calls in flight
 * @param seconds the measured window
 * @param channels separate connections the workers are spread over
 * @param warmupSeconds unmeasured time first
 */
export async function closedLoop(
  target: string,
  path: string,
  request: Uint8Array,
  concurrency: number,
  seconds: number,
  channels = 1,
  warmupSeconds = 1,
): Promise<LoadReport> {
  const clients = Array.from(
    { length: channels },
    () =>
      new grpc.Client(target, grpc.credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
        // Never through an http_proxy from the environment: the figure is the server's.
        "grpc.enable_http_proxy": 0,
        "grpc.max_receive_message_length": -1,
        "grpc.max_send_message_length": -1,
      }),
  );
  const body = Buffer.from(request);
  const identity = (b: Buffer) => b;
  const call = (client: grpc.Client) =>
    new Promise<boolean>((resolve) => {
      client.makeUnaryRequest(path, () => body, identity, null, (err) => resolve(!err));
    });

  let latencies = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  let measuring = false;
  let stop = false;
  const worker = async (w: number) => {
    const client = clients[w % channels];
    while (!stop) {
      const t0 = performance.now();
      const ok = await call(client);
      if (!measuring) continue;
      if (!ok) {
        errors++;
        continue;
      }
      if (n === latencies.length) {
        const grown = new Float64Array(n * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[n++] = performance.now() - t0;
    }
  };
  const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  for (const c of clients) c.close();

  const sorted = latencies.subarray(0, n).sort();
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    qps: Math.round((n + errors) / elapsed),
    p50Ms: round(quantile(sorted, 0.5)),
    p99Ms: round(quantile(sorted, 0.99)),
    errors,
    calls: n + errors,
    seconds: round(elapsed),
    concurrency,
    channels,
  };
}

if (import.meta.main) {
  const report = await closedLoop(
    flag("target", "127.0.0.1:8500"),
    resolveMethod(flag("method", "Predict")),
    await Deno.readFile(flag("request")),
    Number(flag("concurrency", "16")),
    Number(flag("duration", "10")),
    Number(flag("channels", "1")),
    Number(flag("warmup", "1")),
  );
  console.log(JSON.stringify(report));
  // grpc-js keeps timers around; the work is done.
  Deno.exit(0);
}
