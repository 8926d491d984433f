/**
 * Test helpers for kernels: build attrs and run one op on tensors, without a graph.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  type AttrValue,
  AttrValueSchema,
} from "../../src/proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { Attrs } from "../../src/kernels/attrs.ts";
import type { Kernel, KernelRun } from "../../src/kernels/kernel.ts";
import { Resources } from "../../src/runtime/resources.ts";
import type { DataType } from "../../src/tensor/dtype.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { shapeToProto, tensorToProto } from "../../src/tensor/tensor_proto.ts";

/** AttrValue builders. */
export const attr = {
  int: (v: number): AttrValue => create(AttrValueSchema, { value: { case: "i", value: BigInt(v) } }),
  float: (v: number): AttrValue => create(AttrValueSchema, { value: { case: "f", value: v } }),
  bool: (v: boolean): AttrValue => create(AttrValueSchema, { value: { case: "b", value: v } }),
  string: (v: string): AttrValue =>
    create(AttrValueSchema, { value: { case: "s", value: new TextEncoder().encode(v) } }),
  type: (v: DataType): AttrValue => create(AttrValueSchema, { value: { case: "type", value: v } }),
  shape: (v: number[]): AttrValue =>
    create(AttrValueSchema, { value: { case: "shape", value: shapeToProto(v) } }),
  tensor: (t: Tensor): AttrValue =>
    create(AttrValueSchema, { value: { case: "tensor", value: tensorToProto(t, true) } }),
  ints: (v: number[]): AttrValue =>
    create(AttrValueSchema, { value: { case: "list", value: { i: v.map(BigInt) } } }),
  floats: (v: number[]): AttrValue =>
    create(AttrValueSchema, { value: { case: "list", value: { f: v } } }),
  types: (v: DataType[]): AttrValue =>
    create(AttrValueSchema, { value: { case: "list", value: { type: v } } }),
  strings: (v: string[]): AttrValue =>
    create(AttrValueSchema, {
      value: { case: "list", value: { s: v.map((s) => new TextEncoder().encode(s)) } },
    }),
  shapes: (v: number[][]): AttrValue =>
    create(AttrValueSchema, { value: { case: "list", value: { shape: v.map(shapeToProto) } } }),
};

/** Compiles one node of `op` from `family` with `attrs`. */
export function compileOp(
  family: readonly Kernel[],
  op: string,
  attrs: Record<string, AttrValue> = {},
  numInputs = 0,
  resources = new Resources(),
): KernelRun {
  const kernel = family.find((k) => k.op === op);
  if (!kernel) throw new Error(`no kernel for ${op} in this family`);
  return kernel.compile({
    name: `test_${op}`,
    op,
    attr: new Attrs(`test_${op}`, attrs),
    numInputs,
    resources,
    compileFunction: () => {
      throw new Error("no functions in kernel tests");
    },
  });
}

/** Compiles and runs one op on `inputs`. */
export function runOp(
  family: readonly Kernel[],
  op: string,
  inputs: Tensor[],
  attrs: Record<string, AttrValue> = {},
  resources = new Resources(),
): Tensor[] {
  return compileOp(family, op, attrs, inputs.length, resources)(inputs);
}

/** Asserts two number lists agree within `tol` (absolute + relative). */
export function assertClose(
  actual: ArrayLike<number | bigint>,
  expected: ArrayLike<number | bigint>,
  tol = 1e-5,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`length ${actual.length} != ${expected.length}`);
  }
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]);
    const e = Number(expected[i]);
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (a === e) continue;
    if (!(Math.abs(a - e) <= tol + tol * Math.abs(e))) {
      throw new Error(`at ${i}: ${a} != ${e} (tol ${tol}); actual ${Array.from(actual)}`);
    }
  }
}
