/**
 * Runtime checks a graph makes on its own values: Assert (core/kernels/logging_ops.cc) and
 * CheckNumerics / CheckNumericsV2 (core/kernels/check_numerics_op.cc); and the logging ops: TF1's
 * Print, and TF2's tf.print as StringFormat + PrintV2 (string_format_op.cc, logging_ops.cc). A failed check fails the run with INVALID_ARGUMENT and TensorFlow's
 * message, so a request that trips an exported `tf.debugging.assert_*` gets the same answer it
 * would from TensorFlow Serving.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import { passThrough } from "./array_common.ts";
import { FLOATS } from "./dtypes.ts";
import { bfloat16BitsToNumber, halfBitsToNumber, unsupportedDtype } from "./elementwise.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { summarizeValue } from "./summarize.ts";

/**
 * Assert(condition, data...): nothing when the scalar `condition` is true, else
 * INVALID_ARGUMENT `assertion failed: [d0] [d1] ...`, each data tensor summarised to at most
 * `summarize` elements (attr, default 3; negative prints all).
 */
const assertKernel: Kernel = {
  op: "Assert",
  compile(ctx) {
    const summarize = ctx.attr.int("summarize", 3);
    return (inputs) => {
      const cond = inputs[0];
      // TensorShapeUtils::IsLegacyScalar: a scalar, or a vector of one element.
      if (!(cond.rank === 0 || (cond.rank === 1 && cond.shape[0] === 1))) {
        throw invalidArgument(`In[0] should be a scalar: ${shapeString(cond.shape)}`);
      }
      if (cond.dtype !== DataType.DT_BOOL) {
        throw unsupportedDtype("Assert", ctx.name, cond.dtype);
      }
      if ((cond.data as Uint8Array)[0] !== 0) return [];
      const parts = inputs.slice(1).map((t) => `[${summarizeValue(t, summarize)}]`);
      throw invalidArgument(`assertion failed: ${parts.join(" ")}`);
    };
  },
};

const INF = 1;
const NAN = 2;
const NEG_INF = 4;

/** The float values of a CheckNumerics input (half and bfloat16 widened). */
function floatValues(t: Tensor): ArrayLike<number> {
  if (t.dtype === DataType.DT_HALF) return Array.from(t.data as Uint16Array, halfBitsToNumber);
  if (t.dtype === DataType.DT_BFLOAT16) {
    return Array.from(t.data as Uint16Array, bfloat16BitsToNumber);
  }
  return t.data as Float32Array | Float64Array;
}

/** The anomalies of V1 as TF words them: `Inf and NaN`, `Inf`, `NaN`. */
function anomaliesV1(props: number): string {
  if (props & INF && props & NAN) return "Inf and NaN";
  return props & NAN ? "NaN" : "Inf";
}

/** The anomalies of V2 as TF words them: `-Inf, +Inf, and NaN`, `-Inf and NaN`, `+Inf`, … */
function anomaliesV2(props: number): string {
  const found: string[] = [];
  if (props & NEG_INF) found.push("-Inf");
  if (props & INF) found.push("+Inf");
  if (props & NAN) found.push("NaN");
  if (found.length === 3) return `${found[0]}, ${found[1]}, and ${found[2]}`;
  return found.join(" and ");
}

/**
 * CheckNumerics(tensor) → tensor, failing with INVALID_ARGUMENT `<message> : Tensor had <...>
 * values` if any element is Inf or NaN. V2 tells -Inf from +Inf.
 */
function checkNumericsKernel(op: "CheckNumerics" | "CheckNumericsV2"): Kernel {
  const v2 = op === "CheckNumericsV2";
  return {
    op,
    compile(ctx: KernelContext) {
      const message = ctx.attr.string("message");
      if (ctx.attr.has("T")) {
        const t = ctx.attr.type("T");
        if (!FLOATS.includes(t)) throw unsupportedDtype(op, ctx.name, t);
      }
      return (inputs) => {
        const t = inputs[0];
        if (!FLOATS.includes(t.dtype)) throw unsupportedDtype(op, ctx.name, t.dtype);
        const v = floatValues(t);
        let props = 0;
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          if (x - x === 0) continue; // finite
          if (Number.isNaN(x)) props |= NAN;
          else props |= v2 && x < 0 ? NEG_INF : INF;
        }
        if (props !== 0) {
          const what = v2 ? anomaliesV2(props) : anomaliesV1(props);
          throw invalidArgument(`${message} : Tensor had ${what} values`);
        }
        return [passThrough(t)];
      };
    },
  };
}

/**
 * Print(input, data...) → input, writing `message` and each data tensor summarised
 * (`[...]` per tensor, `summarize` elements) to standard error as TF's PrintOp does, for the
 * first `first_n` runs of the node (negative: every run).
 */
const printKernel: Kernel = {
  op: "Print",
  compile(ctx) {
    const message = ctx.attr.string("message", "");
    const firstN = ctx.attr.int("first_n", -1);
    const summarize = ctx.attr.int("summarize", 3);
    let calls = 0;
    const encoder = new TextEncoder();
    return (inputs) => {
      if (firstN < 0 || calls < firstN) {
        calls++;
        const parts = inputs.slice(1).map((t) => `[${summarizeValue(t, summarize)}]`);
        Deno.stderr.writeSync(encoder.encode(`${message}${parts.join("")}\n`));
      }
      return [passThrough(inputs[0])];
    };
  },
};

/**
 * StringFormat(inputs...) → a scalar string: `template` split at `placeholder`, each input
 * summarised in between in TF's print_v2 form (`summarize` elements at each end of every dim), as
 * tf.strings.format and tf.print build their text.
 */
const stringFormatKernel: Kernel = {
  op: "StringFormat",
  compile(ctx) {
    const template = ctx.attr.string("template", "%s");
    const placeholder = ctx.attr.string("placeholder", "%s");
    const summarize = ctx.attr.int("summarize", 3);
    const pieces = template.split(placeholder);
    if (pieces.length - 1 !== ctx.numInputs) {
      throw invalidArgument(
        `num placeholders in template and num inputs must match: ${
          pieces.length - 1
        } vs. ${ctx.numInputs}`,
      );
    }
    return (inputs) => {
      let text = pieces[0];
      for (let i = 0; i < inputs.length; i++) {
        text += summarizeValue(inputs[i], summarize, true) + pieces[i + 1];
      }
      return [Tensor.strings([text], [])];
    };
  },
};

/** The streams PrintV2 writes to, as TF lists them; log(...) goes to standard error here. */
const PRINT_STREAMS = ["stdout", "stderr", "log(info)", "log(warning)", "log(error)"];

/**
 * PrintV2(input) writes the scalar string `input` and `end` to `output_stream` (tf.print). An
 * unknown stream fails at load as TF words it; `file://…` (appending to a file on the server) is
 * refused at load with UNIMPLEMENTED.
 */
const printV2Kernel: Kernel = {
  op: "PrintV2",
  compile(ctx) {
    const stream = ctx.attr.string("output_stream", "stderr");
    if (stream.startsWith("file://")) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `PrintV2 node "${ctx.name}": attr output_stream="${stream}" is not supported ` +
          `(supported: ${PRINT_STREAMS.join(", ")})`,
      );
    }
    if (!PRINT_STREAMS.includes(stream)) {
      throw invalidArgument(
        `Unknown output stream: ${stream}, Valid streams are: ${PRINT_STREAMS.join(" ")}`,
      );
    }
    const end = ctx.attr.bytes("end", new TextEncoder().encode("\n"));
    const out = stream === "stdout" ? Deno.stdout : Deno.stderr;
    return (inputs) => {
      const t = inputs[0];
      if (t.dtype !== DataType.DT_STRING || t.rank !== 0) {
        throw invalidArgument(`Input is expected to be scalar, but got ${shapeString(t.shape)}`);
      }
      const text = (t.data as Uint8Array[])[0];
      const line = new Uint8Array(text.length + end.length);
      line.set(text);
      line.set(end, text.length);
      out.writeSync(line);
      return [];
    };
  },
};

/**
 * The check and logging kernels: Assert, CheckNumerics, CheckNumericsV2, Print, PrintV2,
 * StringFormat.
 */
export const checkKernels: Kernel[] = [
  assertKernel,
  printKernel,
  printV2Kernel,
  stringFormatKernel,
  checkNumericsKernel("CheckNumerics"),
  checkNumericsKernel("CheckNumericsV2"),
];
