/**
 * Builds GraphDefs and SavedModel protos in code: for benchmarks, tests, and the trainer's
 * export. Attr values are made with `attrValue`, the same builders the kernel tests use.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  type AttrValue,
  AttrValueSchema,
} from "../proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { type NodeDef, NodeDefSchema } from "../proto/gen/tensorflow/core/framework/node_def_pb.ts";
import { type GraphDef, GraphDefSchema } from "../proto/gen/tensorflow/core/framework/graph_pb.ts";
import {
  type SignatureDef,
  SignatureDefSchema,
  type TensorInfo,
  TensorInfoSchema,
} from "../proto/gen/tensorflow/core/protobuf/meta_graph_pb.ts";
import type { DataType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { shapeToProto, tensorToProto } from "../tensor/tensor_proto.ts";

const enc = new TextEncoder();

/** AttrValue builders. */
export const attrValue = {
  /** An int attr. */
  int: (v: number): AttrValue =>
    create(AttrValueSchema, { value: { case: "i", value: BigInt(v) } }),
  /** A float attr. */
  float: (v: number): AttrValue => create(AttrValueSchema, { value: { case: "f", value: v } }),
  /** A bool attr. */
  bool: (v: boolean): AttrValue => create(AttrValueSchema, { value: { case: "b", value: v } }),
  /** A string attr (UTF-8). */
  string: (v: string): AttrValue =>
    create(AttrValueSchema, { value: { case: "s", value: enc.encode(v) } }),
  /** A type attr. */
  type: (v: DataType): AttrValue => create(AttrValueSchema, { value: { case: "type", value: v } }),
  /** A shape attr; -1 for unknown dims. */
  shape: (v: readonly number[]): AttrValue =>
    create(AttrValueSchema, { value: { case: "shape", value: shapeToProto(v) } }),
  /** A tensor attr (numeric data in tensor_content). */
  tensor: (t: Tensor): AttrValue =>
    create(AttrValueSchema, { value: { case: "tensor", value: tensorToProto(t, true) } }),
  /** A func attr. */
  func: (name: string): AttrValue =>
    create(AttrValueSchema, { value: { case: "func", value: { name } } }),
  /** A list(int) attr. */
  ints: (v: number[]): AttrValue =>
    create(AttrValueSchema, { value: { case: "list", value: { i: v.map(BigInt) } } }),
  /** A list(float) attr. */
  floats: (v: number[]): AttrValue =>
    create(AttrValueSchema, { value: { case: "list", value: { f: v } } }),
  /** A list(type) attr. */
  types: (v: DataType[]): AttrValue =>
    create(AttrValueSchema, { value: { case: "list", value: { type: v } } }),
  /** A list(string) attr. */
  strings: (v: string[]): AttrValue =>
    create(AttrValueSchema, {
      value: { case: "list", value: { s: v.map((s) => enc.encode(s)) } },
    }),
  /** A list(shape) attr. */
  shapes: (v: number[][]): AttrValue =>
    create(AttrValueSchema, { value: { case: "list", value: { shape: v.map(shapeToProto) } } }),
};

/** Collects nodes; every method returns the name of the node's first output (`name:0`). */
export class GraphBuilder {
  /** The nodes so far. */
  readonly nodes: NodeDef[] = [];

  /** Adds a node of any op. Inputs are tensor names (`x:0`, `^init`). */
  op(
    name: string,
    op: string,
    inputs: readonly string[] = [],
    attr: Record<string, AttrValue> = {},
    device = "",
  ): string {
    this.nodes.push(create(NodeDefSchema, { name, op, input: [...inputs], attr, device }));
    return `${name}:0`;
  }

  /** A Placeholder. */
  placeholder(name: string, dtype: DataType, shape?: readonly number[]): string {
    return this.op(name, "Placeholder", [], {
      dtype: attrValue.type(dtype),
      ...(shape ? { shape: attrValue.shape(shape) } : {}),
    });
  }

  /** A Const holding `value`. */
  constant(name: string, value: Tensor): string {
    return this.op(name, "Const", [], {
      dtype: attrValue.type(value.dtype),
      value: attrValue.tensor(value),
    });
  }

  /** The GraphDef. */
  graph(producer = 1205): GraphDef {
    return create(GraphDefSchema, { node: this.nodes, versions: { producer } });
  }
}

/** A dense TensorInfo. */
export function tensorInfo(name: string, dtype: DataType, shape?: readonly number[]): TensorInfo {
  return create(TensorInfoSchema, {
    encoding: { case: "name", value: name },
    dtype,
    tensorShape: shape ? shapeToProto(shape) : { unknownRank: true },
  });
}

/** A SignatureDef. */
export function signatureDef(
  inputs: Record<string, TensorInfo>,
  outputs: Record<string, TensorInfo>,
  methodName: string,
): SignatureDef {
  return create(SignatureDefSchema, { inputs, outputs, methodName });
}
