/**
 * The tutorial's client (`tensorflow_serving/example/mnist_client.py`): sends MNIST test images
 * in file order to a PredictionService as Predict calls (model `mnist`, signature
 * `predict_images`, input `images` float [1,784]) with at most `--concurrency` in flight, prints
 * a `.` per answer, and ends with `Inference error rate: X%` formatted as Python's `%s` would.
 *
 * @module
 */
import { Code, ServingError } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import {
  defaultMnistDir,
  readImages,
  readLabels,
  TEST_IMAGES,
  TEST_LABELS,
} from "../trainer/mnist_data.ts";
import { PredictionServiceClient } from "./grpc_client.ts";

/** Where the client writes. */
export interface ClientIO {
  /** Standard output (dots and the result line). */
  out(text: string): void;
  /** Standard error (messages). */
  err(text: string): void;
}

/** The flags of mnist_client.py, with its defaults. */
export interface ClientFlags {
  concurrency: number;
  numTests: number;
  server: string;
  workDir: string;
}

const USAGE = "Usage: deno task client --num_tests=N --server=host:port " +
  "[--concurrency=N] [--work_dir=DIR]";

/** Parses `--name=value` flags as absl/TF flags do; throws ServingError on a bad one. */
export function parseClientFlags(argv: readonly string[]): ClientFlags {
  const flags: ClientFlags = { concurrency: 1, numTests: 100, server: "", workDir: "" };
  for (const arg of argv) {
    if (arg === "--") continue;
    const m = /^--([a-z_]+)=(.*)$/.exec(arg);
    if (!m) throw new ServingError(Code.INVALID_ARGUMENT, `Unknown argument "${arg}". ${USAGE}`);
    const [, name, value] = m;
    const int = () => {
      if (!/^[+-]?\d+$/.test(value.trim())) {
        throw new ServingError(
          Code.INVALID_ARGUMENT,
          `Invalid value "${value}" for --${name}: expected an integer`,
        );
      }
      return Number(value);
    };
    if (name === "concurrency") flags.concurrency = int();
    else if (name === "num_tests") flags.numTests = int();
    else if (name === "server") flags.server = value;
    else if (name === "work_dir") flags.workDir = value;
    else throw new ServingError(Code.INVALID_ARGUMENT, `Unknown flag --${name}. ${USAGE}`);
  }
  return flags;
}

/**
 * Formats a float as Python's `str()` does (shortest round-trip digits; scientific notation
 * below 1e-4 and from 1e16; a `.0` on integral values).
 */
export function pythonFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mant, expStr] = x.toExponential().split("e");
  const exp = Number(expStr);
  if (exp < -4 || exp >= 16) {
    const sign = exp < 0 ? "-" : "+";
    return `${mant}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  let s: string;
  if (exp >= digits.length - 1) s = digits + "0".repeat(exp - digits.length + 1) + ".0";
  else if (exp >= 0) s = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  else s = `0.${"0".repeat(-exp - 1)}${digits}`;
  return neg ? `-${s}` : s;
}

/**
 * Runs the client.
 *
 * @returns the exit code: 0 when every call was made (failed calls count as errors), 1 when
 *   the server cannot be reached or the data cannot be read, 2 for bad flags
 */
export async function runClient(argv: readonly string[], io: ClientIO): Promise<number> {
  let flags: ClientFlags;
  try {
    flags = parseClientFlags(argv);
  } catch (e) {
    io.err(`${(e as Error).message}\n`);
    return 2;
  }
  if (flags.numTests > 10000) {
    io.err("num_tests should not be greater than 10k\n");
    return 2;
  }
  if (flags.numTests <= 0 || flags.concurrency <= 0) {
    io.err("--num_tests and --concurrency must be positive\n");
    return 2;
  }
  if (!flags.server) {
    io.err("please specify server host:port\n");
    return 2;
  }

  let images: Uint8Array;
  let labels: Uint8Array;
  try {
    const dir = flags.workDir || await defaultMnistDir();
    const img = await readImages(`${dir}/${TEST_IMAGES}`);
    images = img.pixels;
    labels = await readLabels(`${dir}/${TEST_LABELS}`);
    if (labels.length < flags.numTests) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `The MNIST test set in ${dir} has ${labels.length} images, fewer than --num_tests`,
      );
    }
  } catch (e) {
    io.err(`Cannot read the MNIST test set: ${(e as Error).message}\n`);
    return 1;
  }

  using client = new PredictionServiceClient(flags.server);
  let errors = 0;
  let unreachable: ServingError | undefined;
  const one = async (i: number) => {
    const pixels = new Float32Array(784);
    for (let p = 0; p < 784; p++) pixels[p] = images[i * 784 + p] / 255;
    try {
      const res = await client.predict({
        modelSpec: { name: "mnist", signatureName: "predict_images" },
        inputs: {
          images: {
            dtype: DataType.DT_FLOAT,
            tensorShape: { dim: [{ size: 1n }, { size: 784n }] },
            tensorContent: new Uint8Array(pixels.buffer),
          },
        },
      }, { deadlineMs: 5000 });
      io.out(".");
      const scores = res.outputs["scores"]?.floatVal ?? [];
      let best = 0;
      for (let k = 1; k < scores.length; k++) if (scores[k] > scores[best]) best = k;
      if (scores.length === 0 || best !== labels[i]) errors++;
    } catch (e) {
      const err = ServingError.from(e);
      if (err.code === Code.UNAVAILABLE) unreachable ??= err;
      errors++;
      io.err(`\n${Code[err.code]}: ${err.message}\n`);
    }
  };
  // At most `concurrency` calls in flight, in file order.
  let next = 0;
  const workers = Array.from({ length: Math.min(flags.concurrency, flags.numTests) }, async () => {
    while (next < flags.numTests && !unreachable) await one(next++);
  });
  await Promise.all(workers);
  if (unreachable) {
    io.err(`Cannot reach the PredictionService at ${flags.server}: ${unreachable.message}\n`);
    return 1;
  }
  io.out(`\nInference error rate: ${pythonFloat((errors / flags.numTests) * 100)}%\n`);
  return 0;
}
