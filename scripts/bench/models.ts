/**
 * Small SavedModels made in code, for benchmarks and stress tests: a dense 784×10 softmax
 * layer with constant weights (the MNIST tutorial's shape, without training).
 *
 * @module
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { SavedModelSchema } from "../../src/proto/gen/tensorflow/core/protobuf/saved_model_pb.ts";
import { attrValue, GraphBuilder, signatureDef, tensorInfo } from "../../src/graph/builder.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

/** Deterministic pseudo-random floats in [-0.1, 0.1). */
export function random(n: number, seed: number): Float32Array {
  let s = seed;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.2;
  }
  return out;
}

/** The weights the dense model is written with. */
export function denseWeights(): { w: Float32Array; b: Float32Array } {
  return { w: random(784 * 10, 1), b: random(10, 2) };
}

/**
 * Writes a SavedModel version dir computing `scores = softmax(images·W + b)`, with the
 * signature under both `predict_images` and `serving_default`.
 */
export async function writeDenseSoftmax(dir: string): Promise<void> {
  const { w, b } = denseWeights();
  const g = new GraphBuilder();
  const x = g.placeholder("x", DataType.DT_FLOAT, [-1, 784]);
  const W = g.constant("W", new Tensor(DataType.DT_FLOAT, [784, 10], w));
  const B = g.constant("b", new Tensor(DataType.DT_FLOAT, [10], b));
  const T = { T: attrValue.type(DataType.DT_FLOAT) };
  const mm = g.op("MatMul", "MatMul", [x, W], T);
  const add = g.op("add", "AddV2", [mm, B], T);
  const y = g.op("y", "Softmax", [add], T);
  const sig = signatureDef(
    { images: tensorInfo(x, DataType.DT_FLOAT, [-1, 784]) },
    { scores: tensorInfo(y, DataType.DT_FLOAT, [-1, 10]) },
    "tensorflow/serving/predict",
  );
  const sm = create(SavedModelSchema, {
    savedModelSchemaVersion: 1n,
    metaGraphs: [{
      metaInfoDef: { tags: ["serve"] },
      graphDef: g.graph(),
      signatureDef: { predict_images: sig, serving_default: sig },
    }],
  });
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(`${dir}/saved_model.pb`, toBinary(SavedModelSchema, sm));
}
