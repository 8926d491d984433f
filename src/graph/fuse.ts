/**
 * Graph rewrites done at plan time (`fuseGraph`):
 * - the dense → bias → softmax chain of a softmax regression (MatMul → Add/AddV2/BiasAdd →
 *   Softmax) becomes one `_FusedDenseSoftmax` node, so a batch-1 call is one pass over the
 *   weights with no intermediate tensors;
 * - a convolution followed by its bias and an activation (Conv2D / DepthwiseConv2dNative →
 *   BiasAdd, or Add/AddV2 of a constant vector of the output channels → optionally Relu, Relu6,
 *   Elu or LeakyRelu) becomes TensorFlow's own `_FusedConv2D` / `_FusedDepthwiseConv2dNative`
 *   node, as grappler's remapper does, so the kernel adds the bias and applies the activation
 *   while the output is still in registers, with no intermediate tensors. Converted tfjs graphs
 *   (and TF1 graphs) carry the chains unfused.
 *
 * A chain is fused only when every intermediate tensor has that one consumer, is neither fed nor
 * fetched, and no node waits on an intermediate node by a control edge; anything else keeps its
 * original nodes.
 *
 * @module
 */
import type { AttrValue } from "../proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { DataType } from "../tensor/dtype.ts";
import { attrValue } from "./builder.ts";
import { type GraphNode, refName, type TensorRef } from "./graph.ts";

/** The op name of the fused dense → bias → softmax kernel. */
export const FUSED_DENSE_SOFTMAX = "_FusedDenseSoftmax";

/** A fused node, with the nodes it replaces kept for the general case. */
export interface FusedNode extends GraphNode {
  /** The original chain, in order; run as it is when the fast path does not apply. */
  readonly replaces: readonly GraphNode[];
  /** True when the bias is the Add's first operand. */
  readonly biasFirst: boolean;
}

function isFloat(n: GraphNode): boolean {
  const t = n.attr["T"]?.value;
  return t === undefined || (t.case === "type" && t.value === DataType.DT_FLOAT);
}

/**
 * Runs every rewrite on `nodes` (see the module).
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of chains fused
 */
export function fuseGraph(nodes: Map<string, GraphNode>, pinned: ReadonlySet<string>): number {
  return fuseDenseSoftmax(nodes, pinned) + fuseConvolutions(nodes, pinned);
}

/** Data consumers per tensor, and the nodes something waits on by a control edge. */
function uses(nodes: Map<string, GraphNode>): {
  consumers: Map<string, GraphNode[]>;
  controlled: Set<string>;
} {
  const consumers = new Map<string, GraphNode[]>();
  const controlled = new Set<string>();
  for (const n of nodes.values()) {
    for (const r of n.inputs) {
      const key = refName(r);
      const list = consumers.get(key);
      if (list) list.push(n);
      else consumers.set(key, [n]);
    }
    for (const c of n.controlInputs) controlled.add(c);
  }
  return { consumers, controlled };
}

/** The ops whose output a fused convolution can apply, by TensorFlow's fused_ops names. */
const CONV_ACTIVATIONS = new Set(["Relu", "Relu6", "Elu", "LeakyRelu"]);

/** The attrs a fused convolution takes over from the convolution. */
const CONV_ATTRS = [
  "T",
  "strides",
  "padding",
  "explicit_paddings",
  "data_format",
  "dilations",
  "use_cudnn_on_gpu",
];

/** The static shape of a float32 Const's value, or undefined. */
function constShape(n: GraphNode | undefined): number[] | undefined {
  if (n === undefined || n.op !== "Const") return undefined;
  const v = n.attr["value"]?.value;
  if (v?.case !== "tensor" || v.value.dtype !== DataType.DT_FLOAT) return undefined;
  const shape = v.value.tensorShape;
  if (shape === undefined || shape.unknownRank) return undefined;
  return shape.dim.map((d) => Number(d.size));
}

/** The string value of attr `name`, or `fallback` when absent. */
function stringAttr(n: GraphNode, name: string, fallback: string): string {
  const v = n.attr[name]?.value;
  return v?.case === "s" ? new TextDecoder().decode(v.value) : fallback;
}

/**
 * Rewrites convolution → bias (→ activation) chains among `nodes` into `_FusedConv2D` /
 * `_FusedDepthwiseConv2dNative` nodes (fused_ops [BiasAdd] or [BiasAdd, <activation>]), named
 * as the chain's last node so its consumers need no change.
 *
 * The bias is a BiasAdd's (same data_format as the convolution), or an Add/AddV2 operand that
 * is a float32 Const of shape [C] on an NHWC convolution whose constant filter has C output
 * channels: broadcasting makes that Add the same sum as a BiasAdd (and the fused node a valid
 * TensorFlow node, whose bias must be 1-D).
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of chains fused
 */
export function fuseConvolutions(
  nodes: Map<string, GraphNode>,
  pinned: ReadonlySet<string>,
): number {
  const { consumers, controlled } = uses(nodes);
  // The one consumer of `n`'s output (these ops have one output), when a chain may go through it.
  const sole = (n: GraphNode): GraphNode | undefined => {
    const key = `${n.name}:0`;
    const list = consumers.get(key);
    if (list === undefined || list.length !== 1 || pinned.has(key) || controlled.has(n.name)) {
      return undefined;
    }
    return list[0];
  };
  let fused = 0;
  for (const conv of [...nodes.values()]) {
    const depthwise = conv.op === "DepthwiseConv2dNative";
    if ((conv.op !== "Conv2D" && !depthwise) || conv.inputs.length !== 2) continue;
    const t = conv.attr["T"]?.value;
    if (t?.case !== "type" || t.value !== DataType.DT_FLOAT) continue;
    const format = stringAttr(conv, "data_format", "NHWC");
    const add = sole(conv);
    if (add === undefined || !nodes.has(add.name) || add.inputs.length !== 2) continue;
    let bias: TensorRef | undefined;
    if (add.op === "BiasAdd") {
      if (add.inputs[0].node === conv.name && stringAttr(add, "data_format", "NHWC") === format) {
        bias = add.inputs[1];
      }
    } else if ((add.op === "Add" || add.op === "AddV2") && format === "NHWC") {
      const side = add.inputs[0].node === conv.name ? 1 : 0;
      const other = add.inputs[side];
      const filter = constShape(nodes.get(conv.inputs[1].node));
      const shape = constShape(nodes.get(other.node));
      if (
        filter?.length === 4 && shape?.length === 1 &&
        add.inputs[1 - side].node === conv.name && other.node !== conv.name &&
        conv.inputs[1].index === 0 && other.index === 0 &&
        shape[0] === (depthwise ? filter[2] * filter[3] : filter[3])
      ) {
        bias = other;
      }
    }
    if (bias === undefined) continue;
    let last = add;
    let act: GraphNode | undefined = sole(add);
    if (act !== undefined && (!CONV_ACTIVATIONS.has(act.op) || act.inputs.length !== 1)) {
      act = undefined;
    }
    if (act !== undefined) last = act;
    const attr: Record<string, AttrValue> = {};
    for (const k of CONV_ATTRS) if (conv.attr[k] !== undefined) attr[k] = conv.attr[k];
    const node: GraphNode = {
      name: last.name,
      op: depthwise ? "_FusedDepthwiseConv2dNative" : "_FusedConv2D",
      inputs: [conv.inputs[0], conv.inputs[1], bias],
      controlInputs: [
        ...new Set([...conv.controlInputs, ...add.controlInputs, ...(act?.controlInputs ?? [])]),
      ],
      attr: {
        ...attr,
        num_args: attrValue.int(1),
        fused_ops: attrValue.strings(act ? ["BiasAdd", act.op] : ["BiasAdd"]),
        ...(act?.op === "LeakyRelu" && act.attr["alpha"]
          ? { leakyrelu_alpha: act.attr["alpha"] }
          : {}),
      },
    };
    nodes.delete(conv.name);
    if (act !== undefined) nodes.delete(add.name);
    nodes.set(node.name, node);
    fused++;
  }
  return fused;
}

/**
 * Rewrites dense → bias → softmax chains among `nodes`.
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of chains fused
 */
export function fuseDenseSoftmax(
  nodes: Map<string, GraphNode>,
  pinned: ReadonlySet<string>,
): number {
  // Consumers per tensor and per node (data and control), among the nodes that run.
  const dataUses = new Map<string, number>();
  const controlled = new Set<string>();
  for (const n of nodes.values()) {
    for (const r of n.inputs) dataUses.set(refName(r), (dataUses.get(refName(r)) ?? 0) + 1);
    for (const c of n.controlInputs) controlled.add(c);
  }
  const soleUse = (r: TensorRef, node: GraphNode | undefined): node is GraphNode =>
    node !== undefined && r.index === 0 && dataUses.get(refName(r)) === 1 &&
    !pinned.has(refName(r)) && !controlled.has(node.name);

  let fused = 0;
  for (const sm of [...nodes.values()]) {
    if (sm.op !== "Softmax" || sm.inputs.length !== 1 || !isFloat(sm)) continue;
    const addRef = sm.inputs[0];
    const add = nodes.get(addRef.node);
    if (!soleUse(addRef, add) || add.inputs.length !== 2 || !isFloat(add)) continue;
    if (add.op !== "Add" && add.op !== "AddV2" && add.op !== "BiasAdd") continue;
    // For Add either operand may be the product; BiasAdd's bias is always input 1.
    const side = [0, 1].find((i) => {
      const m = nodes.get(add.inputs[i].node);
      return m?.op === "MatMul" && (add.op !== "BiasAdd" || i === 0);
    });
    if (side === undefined) continue;
    const mmRef = add.inputs[side];
    const mm = nodes.get(mmRef.node);
    if (!soleUse(mmRef, mm) || mm.inputs.length !== 2 || !isFloat(mm)) continue;
    const node: FusedNode = {
      name: sm.name,
      op: FUSED_DENSE_SOFTMAX,
      inputs: [mm.inputs[0], mm.inputs[1], add.inputs[1 - side]],
      controlInputs: [...new Set([...mm.controlInputs, ...add.controlInputs, ...sm.controlInputs])],
      attr: {
        ...(mm.attr["transpose_a"] ? { transpose_a: mm.attr["transpose_a"] } : {}),
        ...(mm.attr["transpose_b"] ? { transpose_b: mm.attr["transpose_b"] } : {}),
      },
      replaces: [mm, add, sm],
      biasFirst: side === 1,
    };
    nodes.delete(mm.name);
    nodes.delete(add.name);
    nodes.set(sm.name, node);
    fused++;
  }
  return fused;
}
