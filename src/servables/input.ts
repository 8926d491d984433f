/**
 * The `Input` of Classify, Regress and MultiInference into the one tensor their signatures take:
 * a DT_STRING vector of serialized tf.Examples (util.cc `InputToSerializedExampleTensor`), and
 * the feed type check TensorFlow's session applies to every fed tensor (feed_types.ts).
 *
 * With `example_list_with_context`, upstream does not merge messages: it writes the serialized
 * context and then the serialized example into one string. Parsing that string merges the two,
 * so the example's features are added to the context's, and a feature both name takes the
 * example's value (the later map entry wins). The same bytes are produced here.
 *
 * @module
 */
import { toBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { type Example, ExampleSchema } from "../proto/gen/tensorflow/core/example/example_pb.ts";
import type { Input } from "../proto/gen/tensorflow_serving/apis/input_pb.ts";
import { Code, ServingError } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import { DecodeBudget, STRING_ELEMENT_BYTES } from "../tensor/limits.ts";

export { checkFeedTypes, tfTypeString } from "./feed_types.ts";

const EMPTY: Uint8Array = new Uint8Array(0);

function emptyInput(): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, "Input is empty.");
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/**
 * Charges the examples tensor to the request's decode allowance before it is built: with a
 * context, every example carries a copy of the context's bytes, so a large context and many
 * small examples would otherwise multiply (upstream concatenates the same way).
 */
function chargeExamples(
  budget: DecodeBudget,
  count: number,
  contextBytes: number,
  exampleBytes: number,
): void {
  budget.charge(
    "the input's examples",
    count * (STRING_ELEMENT_BYTES + contextBytes) + exampleBytes,
    contextBytes + exampleBytes + 2 * count,
  );
}

function serializeAll(
  examples: readonly Example[],
  context: Uint8Array,
  budget: DecodeBudget,
): Uint8Array[] {
  // An Example serializes to at most what it took on the wire (unknown fields are not kept), so
  // the context copies are what needs charging first; the serialized sizes are charged after.
  chargeExamples(budget, examples.length, context.length, 0);
  const out: Uint8Array[] = new Array(examples.length);
  for (let i = 0; i < examples.length; i++) {
    out[i] = concat(context, toBinary(ExampleSchema, examples[i]));
  }
  return out;
}

/**
 * Turns a decoded `Input` into a DT_STRING tensor of shape `[num_examples]` holding one
 * serialized tf.Example per example (with the context's bytes in front of each, as upstream).
 *
 * @param input the request's input; undefined counts as empty (as an unset proto field does)
 * @param budget the request's decode allowance (defaults when omitted)
 * @throws ServingError INVALID_ARGUMENT `Input is empty.` when there are no examples,
 *   RESOURCE_EXHAUSTED when the examples with their context copies are over a decode limit
 *
 * @example
 * ```ts
 * const t = inputToExamplesTensor(request.input); // DT_STRING, shape [n]
 * ```
 */
export function inputToExamplesTensor(
  input: Input | undefined,
  budget: DecodeBudget = new DecodeBudget(),
): Tensor {
  const kind = input?.kind;
  let strings: Uint8Array[];
  switch (kind?.case) {
    case "exampleList":
      strings = serializeAll(kind.value.examples, EMPTY, budget);
      break;
    case "exampleListWithContext": {
      const ctx = kind.value.context;
      strings = serializeAll(
        kind.value.examples,
        ctx ? toBinary(ExampleSchema, ctx) : EMPTY,
        budget,
      );
      break;
    }
    default:
      strings = [];
  }
  if (strings.length === 0) throw emptyInput();
  return new Tensor(DataType.DT_STRING, [strings.length], strings);
}

/**
 * The same as {@link inputToExamplesTensor} for an `Input` still in wire format: the examples
 * are taken as byte ranges without decoding them (upstream's `SerializedInput` trick), so a
 * transport may skip building Example messages. The result's strings view `bytes`.
 *
 * Follows protobuf merge rules: of the two `kind` fields the last one present wins; a field
 * repeated appends its examples and merges its context.
 *
 * @param bytes a serialized `tensorflow.serving.Input`
 * @throws ServingError INVALID_ARGUMENT when the bytes do not parse or hold no examples
 */
export function serializedInputToExamplesTensor(
  bytes: Uint8Array,
  budget: DecodeBudget = new DecodeBudget(),
): Tensor {
  let kind = 0;
  let examples: Uint8Array[] = [];
  let context: Uint8Array = EMPTY;
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [field, wire] = r.tag();
      if ((field === 1 || field === 2) && wire === WireType.LengthDelimited) {
        if (field !== kind) {
          kind = field;
          examples = [];
          context = EMPTY;
        }
        const inner = new BinaryReader(r.bytes());
        while (inner.pos < inner.len) {
          const [f, w] = inner.tag();
          if (f === 1 && w === WireType.LengthDelimited) examples.push(inner.bytes());
          else if (f === 2 && w === WireType.LengthDelimited && kind === 2) {
            // A repeated singular message field merges: its bytes concatenate.
            context = concat(context, inner.bytes());
          } else inner.skip(w, f);
        }
      } else r.skip(wire, field);
    }
  } catch (e) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Could not parse Input: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  if (examples.length === 0) throw emptyInput();
  let exampleBytes = 0;
  for (const ex of examples) exampleBytes += ex.length;
  chargeExamples(budget, examples.length, context.length, exampleBytes);
  const strings = context.length === 0 ? examples : examples.map((ex) => concat(context, ex));
  return new Tensor(DataType.DT_STRING, [strings.length], strings);
}
