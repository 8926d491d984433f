/**
 * A JSON codec worker's entry point: decodes a big Predict body into tensors and encodes a big
 * Predict response to JSON, with the same functions (json_tensor.ts) the handler uses inline,
 * so the output bytes and the errors are the same. It never touches the network or the file
 * system.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { PredictRequestSchema } from "../../proto/gen/tensorflow_serving/apis/predict_pb.ts";
import { Code, ServingError } from "../../errors.ts";
import type { DataType } from "../../tensor/dtype.ts";
import { isSlab } from "../../tensor/arena.ts";
import { JsonParser } from "./json_parse.ts";
import { fillPredictRequestFromJson, makeJsonFromTensors } from "./json_tensor.ts";
import type { CodecError, FromCodec, ToCodec } from "./codec_protocol.ts";

/** The worker's side of its message port. */
const port = globalThis as unknown as {
  postMessage(message: FromCodec, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToCodec>) => void) | null;
};

/** As the handler's: nodes a parser may keep between jobs. */
const MAX_KEPT_PARSER_NODES = 1 << 22;
const DEFAULT_SIGNATURE = "serving_default";

let parser = new JsonParser();

function errorOf(e: unknown): CodecError {
  const err = ServingError.from(e);
  return { code: err.code, message: err.message };
}

/** The handler's `#inputTypes`, from the signatures looked up for this job. */
function infoMap(
  m: Extract<ToCodec, { type: "decode" }>,
): (signature: string) => ReadonlyMap<string, DataType> {
  return (signature) => {
    if (m.lookupError) throw new ServingError(m.lookupError.code, m.lookupError.message);
    const name = signature === "" ? DEFAULT_SIGNATURE : signature;
    const inputs = m.signatures?.get(name);
    if (!inputs) {
      throw new ServingError(
        Code.INVALID_ARGUMENT,
        `Serving signature name: "${name}" not found in signature def`,
      );
    }
    return inputs;
  };
}

function decode(m: Extract<ToCodec, { type: "decode" }>): void {
  const req = create(PredictRequestSchema, { modelSpec: { signatureName: m.signatureName } });
  try {
    const format = fillPredictRequestFromJson(m.body, infoMap(m), req, parser);
    const transfer = new Set<ArrayBuffer>();
    for (const t of Object.values(req.inputs)) {
      const b = t.tensorContent.buffer;
      // Never a slab tiny arrays share (tensor/arena.ts): moving it would empty the others.
      if (t.tensorContent.length > 0 && b instanceof ArrayBuffer && !isSlab(b)) transfer.add(b);
    }
    port.postMessage({
      job: m.job,
      decoded: { format, signatureName: req.modelSpec!.signatureName, inputs: req.inputs },
    }, [...transfer]);
  } catch (e) {
    port.postMessage({ job: m.job, error: errorOf(e) });
  } finally {
    if (parser.capacity > MAX_KEPT_PARSER_NODES) parser = new JsonParser();
  }
}

function encode(m: Extract<ToCodec, { type: "encode" }>): void {
  try {
    const text = makeJsonFromTensors(m.outputs, m.format);
    // A string is sent as its UTF-8 bytes: the bytes the HTTP server would write for it.
    const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
    const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength &&
      bytes.buffer instanceof ArrayBuffer;
    port.postMessage({ job: m.job, encoded: bytes }, whole ? [bytes.buffer as ArrayBuffer] : []);
  } catch (e) {
    port.postMessage({ job: m.job, error: errorOf(e) });
  }
}

port.onmessage = (e: MessageEvent<ToCodec>) => {
  const m = e.data;
  if (m.type === "decode") decode(m);
  else encode(m);
};
