/**
 * SavedModels built for the executor tests with the graph builder and the writer:
 * - a slow one (a chain of 512×512 MatMuls against a shared constant), `y = x + 1`;
 * - a counter, as TF Serving's `saved_model_counter` test model: a float variable `counter`
 *   with signatures `incr_counter`, `incr_counter_by` (input `delta`), `get_counter` and
 *   `reset_counter`, each answering the counter's value under `output`.
 *
 * @module
 */
import { GraphBuilder, signatureDef, tensorInfo } from "../../src/graph/builder.ts";
import {
  addConst,
  addVariable,
  parseOpDefs,
  writeSavedModel,
} from "../../src/saved_model/writer.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { create } from "@bufbuild/protobuf";
import {
  PredictRequestSchema,
  type PredictResponse,
} from "../../src/proto/gen/tensorflow_serving/apis/predict_pb.ts";
import type { Model } from "../../src/runtime/model.ts";
import { preparePredict } from "../../src/servables/predict.ts";
import type { PreparedCall } from "../../src/servables/prepared.ts";
import { tensorToProto } from "../../src/tensor/tensor_proto.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { attrValue } from "../../src/graph/builder.ts";

const PREDICT = "tensorflow/serving/predict";

/** OpDefs (as TensorFlow registers them, allowed types left out) of the ops used here. */
const OP_DEFS = parseOpDefs(`
op {
  name: "MatMul"
  input_arg { name: "a" type_attr: "T" }
  input_arg { name: "b" type_attr: "T" }
  output_arg { name: "product" type_attr: "T" }
  attr { name: "transpose_a" type: "bool" default_value { b: false } }
  attr { name: "transpose_b" type: "bool" default_value { b: false } }
  attr { name: "T" type: "type" }
}
op {
  name: "Mean"
  input_arg { name: "input" type_attr: "T" }
  input_arg { name: "reduction_indices" type_attr: "Tidx" }
  output_arg { name: "output" type_attr: "T" }
  attr { name: "keep_dims" type: "bool" default_value { b: false } }
  attr { name: "T" type: "type" }
  attr { name: "Tidx" type: "type" default_value { type: DT_INT32 } }
}
op {
  name: "AddV2"
  input_arg { name: "x" type_attr: "T" }
  input_arg { name: "y" type_attr: "T" }
  output_arg { name: "z" type_attr: "T" }
  attr { name: "T" type: "type" }
  is_aggregate: true
  is_commutative: true
}
op {
  name: "AssignAdd"
  input_arg { name: "ref" type_attr: "T" is_ref: true }
  input_arg { name: "value" type_attr: "T" }
  output_arg { name: "output_ref" type_attr: "T" is_ref: true }
  attr { name: "T" type: "type" }
  attr { name: "use_locking" type: "bool" default_value { b: false } }
}
`);

/** The side of the square matrices the slow model multiplies. */
export const SLOW_SIDE = 512;

/**
 * Writes the slow model: `y = x + mean(A·W·W·…·W)` with A (`rows`×`side`) and W (`side`×`side`)
 * constant (A all ones, W all 1/side, so every product is all ones and y = x + 1). `matmuls`
 * sets the cost, `side` the weights.
 */
export async function writeSlowModel(
  exportDir: string,
  matmuls: number,
  side = SLOW_SIDE,
  rows = side,
): Promise<void> {
  const g = new GraphBuilder();
  const f = DataType.DT_FLOAT;
  const n = side;
  g.placeholder("x", f, [-1]);
  let a = addConst(g, "a", Tensor.float32(new Float32Array(rows * n).fill(1), [rows, n]));
  const w = addConst(g, "w", Tensor.float32(new Float32Array(n * n).fill(1 / n), [n, n]));
  for (let i = 0; i < matmuls; i++) {
    a = g.op(`matmul_${i}`, "MatMul", [a, w], { T: attrValue.type(f) });
  }
  const axes = addConst(g, "axes", Tensor.int32([0, 1], [2]));
  const mean = g.op("mean", "Mean", [a, axes], { T: attrValue.type(f) });
  const y = g.op("y", "AddV2", ["x:0", mean], { T: attrValue.type(f) });
  await writeSavedModel(exportDir, {
    nodes: g.nodes,
    signatures: {
      serving_default: signatureDef({ x: tensorInfo("x:0", f, [-1]) }, {
        y: tensorInfo(y, f, [-1]),
      }, PREDICT),
    },
    opDefs: OP_DEFS,
  });
}

/**
 * Writes the counter model (the variable starts at 0). `ballast` adds an unused constant of that
 * many elements, so the executor places the version as a large one (pinned to a worker).
 */
export async function writeCounterModel(exportDir: string, ballast = 0): Promise<void> {
  const g = new GraphBuilder();
  const f = DataType.DT_FLOAT;
  if (ballast > 0) addConst(g, "ballast", Tensor.float32(new Float32Array(ballast), [ballast]));
  const zero = addConst(g, "zeros", Tensor.float32([0], []));
  const v = addVariable(g, "counter", zero, f, []);
  const one = addConst(g, "one", Tensor.float32([1], []));
  const incr = g.op("incr", "AssignAdd", ["counter", one], { T: attrValue.type(f) });
  g.placeholder("delta", f, []);
  const incrBy = g.op("incr_by", "AssignAdd", ["counter", "delta:0"], { T: attrValue.type(f) });
  const reset = g.op("reset", "Assign", ["counter", zero], { T: attrValue.type(f) });
  const out = (name: string) => ({ output: tensorInfo(name, f, []) });
  await writeSavedModel(exportDir, {
    nodes: g.nodes,
    signatures: {
      incr_counter: signatureDef({}, out(incr), PREDICT),
      incr_counter_by: signatureDef({ delta: tensorInfo("delta:0", f, []) }, out(incrBy), PREDICT),
      get_counter: signatureDef({}, out(v.snapshot), PREDICT),
      reset_counter: signatureDef({}, out(reset), PREDICT),
    },
    variables: [{ name: "counter", value: Tensor.float32([0], []), initialValue: zero }],
    opDefs: OP_DEFS,
  });
}

/** A prepared Predict call of `model` (served as "m" version 1) with `inputs`. */
export function predictCall(
  model: Model,
  signatureName: string,
  inputs: Record<string, Tensor> = {},
): PreparedCall<PredictResponse> {
  const req = create(PredictRequestSchema, {
    modelSpec: { name: "m", signatureName },
    inputs: Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, tensorToProto(t)])),
  });
  return preparePredict(model, 1, "m", req);
}
