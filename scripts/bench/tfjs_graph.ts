/**
 * Runs a SavedModel's graph on TensorFlow.js (the comparison of `deno task bench realmodels`):
 * the GraphDef is handed to tfjs-converter as an in-memory graph model (topology as protobuf
 * JSON, every Const as a weight), after the same convolution fusion the server does at plan
 * time, so tfjs sees the fused `_FusedConv2D` / `FusedDepthwiseConv2dNative` nodes its own
 * converter would have written. Backends: tfjs-backend-wasm (XNNPACK, SIMD, one thread) and
 * tfjs-backend-cpu.
 *
 * @module
 */
import { toJson } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import * as tfconv from "@tensorflow/tfjs-converter";
import { fuseConvolutions } from "../../src/graph/fuse.ts";
import { graphFromNodeDefs, type GraphNode } from "../../src/graph/graph.ts";
import { NodeDefSchema } from "../../src/proto/gen/tensorflow/core/framework/node_def_pb.ts";
import type { NodeDef } from "../../src/proto/gen/tensorflow/core/framework/node_def_pb.ts";
import { readSavedModelProto } from "../../src/saved_model/reader.ts";
import { DataType } from "../../src/tensor/dtype.ts";
import { tensorFromProto } from "../../src/tensor/tensor_proto.ts";

/** A loaded tfjs graph model with the signature's tensor names. */
export interface TfjsModel {
  model: tfconv.GraphModel;
  /** Signature key → graph tensor name, inputs and outputs. */
  inputs: Record<string, string>;
  outputs: Record<string, string>;
}

const TFJS_DTYPES: Partial<Record<DataType, tf.DataType>> = {
  [DataType.DT_FLOAT]: "float32",
  [DataType.DT_INT32]: "int32",
  [DataType.DT_INT64]: "int32",
  [DataType.DT_BOOL]: "bool",
};

/** Writes `n` back as a NodeDef, with its inputs in GraphDef spelling. */
function toNodeDef(n: GraphNode, device: string): Record<string, unknown> {
  const input = [
    ...n.inputs.map((r) => r.index === 0 ? r.node : `${r.node}:${r.index}`),
    ...n.controlInputs.map((c) => `^${c}`),
  ];
  const op = n.op === "_FusedDepthwiseConv2dNative" ? "FusedDepthwiseConv2dNative" : n.op;
  const json = toJson(NodeDefSchema, {
    $typeName: "tensorflow.NodeDef",
    name: n.name,
    op,
    input,
    device,
    attr: n.attr as NodeDef["attr"],
    experimentalType: undefined,
    experimentalDebugInfo: undefined,
  } as NodeDef) as Record<string, unknown>;
  return json;
}

/**
 * Loads the SavedModel at `dir` (signature `serving_default`) into tfjs, fusing convolutions as
 * the server does. Call `tf.setBackend` first: weights are made on the current backend.
 */
export async function loadTfjs(dir: string): Promise<TfjsModel> {
  const sm = await readSavedModelProto(dir);
  const mg = sm.metaGraphs[0];
  const sig = mg.signatureDef["serving_default"];
  const names = (m: typeof sig.inputs) =>
    Object.fromEntries(
      Object.entries(m).map(([k, v]) => [k, v.encoding.case === "name" ? v.encoding.value : ""]),
    );
  const inputs = names(sig.inputs), outputs = names(sig.outputs);
  const nodes = graphFromNodeDefs(mg.graphDef!.node);
  const pinned = new Set(
    [...Object.values(inputs), ...Object.values(outputs)].map((n) =>
      n.includes(":") ? n : `${n}:0`
    ),
  );
  fuseConvolutions(nodes, pinned);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const topology: Record<string, unknown>[] = [];
  for (const n of nodes.values()) {
    if (n.op === "Const") {
      const v = n.attr["value"]?.value;
      if (v?.case !== "tensor") throw new Error(`Const ${n.name} has no value`);
      const t = tensorFromProto(v.value, n.name);
      const dtype = TFJS_DTYPES[t.dtype];
      if (dtype === undefined) throw new Error(`Const ${n.name}: dtype ${t.dtype} not for tfjs`);
      let data: Uint8Array;
      if (t.dtype === DataType.DT_INT64) {
        const src = t.data as BigInt64Array;
        data = new Uint8Array(Int32Array.from(src, (x) => Number(x)).buffer);
      } else {
        const d = t.data as Float32Array | Int32Array | Uint8Array;
        data = new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice();
      }
      specs.push({ name: n.name, shape: [...t.shape], dtype });
      chunks.push(data);
      bytes += data.byteLength;
      // The topology keeps the Const's dtype; its value comes from the weights.
      topology.push(toNodeDef({ ...n, attr: { dtype: n.attr["dtype"] } }, ""));
    } else {
      topology.push(toNodeDef(n, ""));
    }
  }
  const weightData = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    weightData.set(c, at);
    at += c.byteLength;
  }
  const handler: tf.io.IOHandler = {
    load: () =>
      Promise.resolve({
        modelTopology: { node: topology, versions: {}, library: {} },
        weightSpecs: specs,
        weightData: weightData.buffer,
        format: "graph-model",
      }),
  };
  const model = await tfconv.loadGraphModel(handler);
  return { model, inputs, outputs };
}

/** Runs `m` on float or int inputs by signature key; returns the outputs' data by key. */
export function runTfjs(
  m: TfjsModel,
  feeds: Record<string, { data: Float32Array | Int32Array; shape: number[] }>,
): Record<string, Float32Array | Int32Array> {
  // Tensors out of tidy, data read after it: tidy walks its result looking for tensors, and
  // walking a typed array of outputs element by element would be timed too.
  const keys = Object.keys(m.outputs);
  const list = tf.tidy(() => {
    const inputs: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      inputs[m.inputs[k]] = tf.tensor(
        v.data,
        v.shape,
        v.data instanceof Int32Array ? "int32" : "float32",
      );
    }
    const out = m.model.execute(inputs, keys.map((k) => m.outputs[k]));
    return Array.isArray(out) ? out : [out];
  });
  const result = Object.fromEntries(
    keys.map((k, i) => [k, list[i].dataSync() as Float32Array | Int32Array]),
  );
  tf.dispose(list);
  return result;
}
