/**
 * Graph rewrites done at plan time (`fuseGraph`):
 * - the dense → bias → softmax chain of a softmax regression (MatMul → Add/AddV2/BiasAdd →
 *   Softmax) becomes one `_FusedDenseSoftmax` node, so a batch-1 call is one pass over the
 *   weights with no intermediate tensors;
 * - a convolution or product followed by its bias and an activation (Conv2D /
 *   DepthwiseConv2dNative / MatMul → BiasAdd, or Add/AddV2 of a constant vector of the output
 *   channels → optionally Relu, Relu6, Elu or LeakyRelu) becomes TensorFlow's own
 *   `_FusedConv2D` / `_FusedDepthwiseConv2dNative` / `_FusedMatMul` node, as grappler's remapper does, so the kernel adds the bias and applies the activation
 *   while the output is still in registers, with no intermediate tensors. Converted tfjs graphs
 *   (and TF1 graphs) carry the chains unfused.
 *
 * - Add(Mul(x, s), r) becomes one `_FusedMulAdd` node: x·s + r in one pass (`fuseMulAdd`).
 *
 * - A 1×1 convolution of a resized image becomes one `_FusedResizeConv2D` node whose kernel
 *   convolves first when the resize enlarges (`fuseResizeConv`): the two commute.
 *
 * - A convolution of Mul(x, s) becomes one `_FusedScaledConv2D` node whose kernel folds s into
 *   the filter when it is a per-channel scale (`fuseScaleConv`: a squeeze-and-excitation gate).
 *
 * - An AvgPool over a whole Add becomes one `_FusedAddAvgPool` node that never makes the sum
 *   (`fuseAddAvgPool`).
 *
 * - Keras' PReLU graph, AddV2(Relu(x), Mul(s, Relu(Neg(x)))), becomes one Relu node with the
 *   private attr `_prelu` and inputs x and s (`fusePrelu`): one pass instead of four.
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
  return fuseDenseSoftmax(nodes, pinned) + fuseConvolutions(nodes, pinned) +
    fuseHardSwish(nodes, pinned) + fuseResidualAdd(nodes, pinned) +
    fuseAddAfterActivation(nodes, pinned) + fusePrelu(nodes, pinned) + fuseMulAdd(nodes, pinned) +
    fuseScaleConv(nodes, pinned) + fuseResizeConv(nodes, pinned) + fuseAddAvgPool(nodes, pinned);
}

/**
 * Whether the tensor `ref` may disappear into a fusion: its one consumer is the node being
 * fused, it is neither fed nor fetched, and nothing waits on its producer by a control edge.
 */
function hideable(
  u: { consumers: Map<string, GraphNode[]>; controlled: Set<string> },
  pinned: ReadonlySet<string>,
  ref: TensorRef,
): boolean {
  const key = refName(ref);
  return u.consumers.get(key)?.length === 1 && !pinned.has(key) && !u.controlled.has(ref.node);
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

/** The attrs a fused convolution (or product) takes over from the convolution (or MatMul). */
const CONV_ATTRS = [
  "T",
  "strides",
  "padding",
  "explicit_paddings",
  "data_format",
  "dilations",
  "use_cudnn_on_gpu",
  "transpose_a",
  "transpose_b",
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
 * Rewrites convolution or MatMul → bias (→ activation) chains among `nodes` into `_FusedConv2D` /
 * `_FusedDepthwiseConv2dNative` / `_FusedMatMul` nodes (fused_ops [BiasAdd] or [BiasAdd, <activation>]), named
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
    const matmul = conv.op === "MatMul";
    if ((conv.op !== "Conv2D" && !depthwise && !matmul) || conv.inputs.length !== 2) continue;
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
      const transB = conv.attr["transpose_b"]?.value;
      const channels = filter === undefined
        ? undefined
        : matmul
        ? (filter.length === 2 ? filter[transB?.case === "b" && transB.value ? 0 : 1] : undefined)
        : filter.length !== 4
        ? undefined
        : depthwise
        ? filter[2] * filter[3]
        : filter[3];
      if (
        channels !== undefined && shape?.length === 1 &&
        add.inputs[1 - side].node === conv.name && other.node !== conv.name &&
        conv.inputs[1].index === 0 && other.index === 0 && shape[0] === channels
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
      op: matmul ? "_FusedMatMul" : depthwise ? "_FusedDepthwiseConv2dNative" : "_FusedConv2D",
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

/** The value of a float32 scalar Const (shape [] or [1]), or undefined. */
function constScalar(n: GraphNode | undefined): number | undefined {
  const shape = constShape(n);
  if (shape === undefined || shape.some((d) => d !== 1)) return undefined;
  const t = n!.attr["value"]!.value;
  if (t.case !== "tensor") return undefined;
  if (t.value.floatVal.length > 0) return t.value.floatVal[0];
  const bytes = t.value.tensorContent;
  if (bytes.length !== 4) return undefined;
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getFloat32(0, true);
}

/**
 * Folds the hard-swish of MobileNetV3-style graphs into the fused convolution before it:
 * y → {Mul(s, y), AddV2(y, o) → Relu6} → Mul(Mul, Relu6), with s and o float32 scalar
 * constants (1/6 and 3 in practice), where y is a `_FusedConv2D` / `_FusedDepthwiseConv2dNative`
 * with fused_ops [BiasAdd]. The node keeps its TensorFlow op and fused_ops and gains the private
 * attr `_hard_swish` = [s, o] (attrs starting with `_` are the runtime's own, as grappler's);
 * its kernel computes (v·s)·Relu6(v + o) in the same order as the four ops, so the floats are
 * the same. The fused node takes the name of the last Mul.
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of patterns folded
 */
export function fuseHardSwish(nodes: Map<string, GraphNode>, pinned: ReadonlySet<string>): number {
  const { consumers, controlled } = uses(nodes);
  const free = (n: GraphNode) => !pinned.has(`${n.name}:0`) && !controlled.has(n.name);
  const only = (n: GraphNode): GraphNode | undefined => {
    const list = consumers.get(`${n.name}:0`);
    return list?.length === 1 && free(n) ? list[0] : undefined;
  };
  // The scalar operand of a binary op whose other operand is `y`, or undefined.
  const scalarWith = (op: GraphNode, y: GraphNode): number | undefined => {
    if (op.inputs.length !== 2) return undefined;
    const side = op.inputs[0].node === y.name ? 1 : 0;
    if (op.inputs[1 - side].node !== y.name || op.inputs[1 - side].index !== 0) return undefined;
    if (op.inputs[side].index !== 0) return undefined;
    return constScalar(nodes.get(op.inputs[side].node));
  };
  let fused = 0;
  for (const y of [...nodes.values()]) {
    if (y.op !== "_FusedConv2D" && y.op !== "_FusedDepthwiseConv2dNative") continue;
    const ops = y.attr["fused_ops"]?.value;
    if (ops?.case !== "list" || ops.value.s.length !== 1 || y.attr["_hard_swish"]) continue;
    if (new TextDecoder().decode(ops.value.s[0]) !== "BiasAdd" || !free(y)) continue;
    const list = consumers.get(`${y.name}:0`);
    if (list?.length !== 2) continue;
    const mul = list.find((n) => n.op === "Mul");
    const add = list.find((n) => n.op === "AddV2" || n.op === "Add");
    if (mul === undefined || add === undefined) continue;
    const scale = scalarWith(mul, y), offset = scalarWith(add, y);
    if (scale === undefined || offset === undefined) continue;
    const relu6 = only(add);
    if (relu6?.op !== "Relu6" || relu6.inputs.length !== 1) continue;
    const last = only(relu6);
    if (last === undefined || last.op !== "Mul" || only(mul) !== last) continue;
    const ins = last.inputs.map((r) => r.index === 0 ? r.node : "");
    if (!(ins.includes(mul.name) && ins.includes(relu6.name))) continue;
    const node: GraphNode = {
      name: last.name,
      op: y.op,
      inputs: y.inputs,
      controlInputs: [
        ...new Set(
          [y, mul, add, relu6, last].flatMap((n) => n.controlInputs),
        ),
      ],
      attr: { ...y.attr, _hard_swish: attrValue.floats([scale, offset]) },
    };
    for (const n of [y, mul, add, relu6]) nodes.delete(n.name);
    nodes.set(node.name, node);
    fused++;
  }
  return fused;
}

/**
 * Folds a residual sum into the fused convolution before it: a `_FusedConv2D` with fused_ops
 * [BiasAdd] (NHWC, float32) whose one consumer is
 * Add/AddV2(y, r), optionally followed by Relu, Relu6, Elu or LeakyRelu, becomes fused_ops
 * [BiasAdd, Add(, activation)] with r as its fourth input (as grappler's remapper does for
 * Conv2D + BiasAdd + Add + Relu). The node gains the private attr `_broadcast_add`, so that when
 * r does not have the output's shape its kernel broadcasts as the Add did (TensorFlow's fused
 * kernel requires equal shapes, and keeps doing so for nodes without the attr).
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of sums folded
 */
export function fuseResidualAdd(
  nodes: Map<string, GraphNode>,
  pinned: ReadonlySet<string>,
): number {
  const { consumers, controlled } = uses(nodes);
  const only = (n: GraphNode): GraphNode | undefined => {
    const key = `${n.name}:0`;
    const list = consumers.get(key);
    return list?.length === 1 && !pinned.has(key) && !controlled.has(n.name) ? list[0] : undefined;
  };
  let fused = 0;
  for (const y of [...nodes.values()]) {
    // Depthwise convolutions are left alone: residual sums follow the projection convolutions.
    if (y.op !== "_FusedConv2D") continue;
    if (!nodes.has(y.name) || stringAttr(y, "data_format", "NHWC") !== "NHWC") continue;
    const ops = y.attr["fused_ops"]?.value;
    if (ops?.case !== "list" || ops.value.s.length !== 1 || y.attr["_hard_swish"]) continue;
    if (new TextDecoder().decode(ops.value.s[0]) !== "BiasAdd") continue;
    const t = y.attr["T"]?.value;
    if (t?.case !== "type" || t.value !== DataType.DT_FLOAT) continue;
    const add = only(y);
    if (add === undefined || (add.op !== "Add" && add.op !== "AddV2") || add.inputs.length !== 2) {
      continue;
    }
    const side = add.inputs[0].node === y.name && add.inputs[0].index === 0 ? 1 : 0;
    const other = add.inputs[side];
    if (other.node === y.name || add.inputs[1 - side].node !== y.name) continue;
    let act: GraphNode | undefined = only(add);
    if (act !== undefined && (!CONV_ACTIVATIONS.has(act.op) || act.inputs.length !== 1)) {
      act = undefined;
    }
    const last = act ?? add;
    const node: GraphNode = {
      name: last.name,
      op: y.op,
      inputs: [...y.inputs, other],
      controlInputs: [
        ...new Set([y, add, ...(act ? [act] : [])].flatMap((n) => n.controlInputs)),
      ],
      attr: {
        ...y.attr,
        num_args: attrValue.int(2),
        fused_ops: attrValue.strings(act ? ["BiasAdd", "Add", act.op] : ["BiasAdd", "Add"]),
        ...(act?.op === "LeakyRelu" && act.attr["alpha"]
          ? { leakyrelu_alpha: act.attr["alpha"] }
          : {}),
        _broadcast_add: attrValue.bool(true),
      },
    };
    nodes.delete(y.name);
    if (act !== undefined) nodes.delete(add.name);
    nodes.set(node.name, node);
    fused++;
  }
  return fused;
}

/**
 * Folds an Add/AddV2 of a fused depthwise convolution's activated output into it: a
 * `_FusedDepthwiseConv2dNative` (NHWC, float32, fused_ops [BiasAdd] or [BiasAdd, activation])
 * whose one consumer is Add/AddV2(y, r) takes r as one more input and the private attr
 * `_add_after_activation`; its kernel adds r (broadcasting as the Add did) after the
 * activation, in the same pass as the convolution when r has the output's shape. This is the
 * MediaPipe segmentation decoders' `x + Relu(depthwise(x))`. The node takes the Add's name.
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of sums folded
 */
export function fuseAddAfterActivation(
  nodes: Map<string, GraphNode>,
  pinned: ReadonlySet<string>,
): number {
  const { consumers, controlled } = uses(nodes);
  let fused = 0;
  for (const y of [...nodes.values()]) {
    if (y.op !== "_FusedDepthwiseConv2dNative" || !nodes.has(y.name)) continue;
    if (stringAttr(y, "data_format", "NHWC") !== "NHWC") continue;
    if (y.attr["_hard_swish"] || y.attr["_add_after_activation"] || y.inputs.length !== 3) continue;
    const ops = y.attr["fused_ops"]?.value;
    if (ops?.case !== "list" || ops.value.s.length < 1 || ops.value.s.length > 2) continue;
    const names = ops.value.s.map((b) => new TextDecoder().decode(b));
    if (names[0] !== "BiasAdd" || (names.length === 2 && !CONV_ACTIVATIONS.has(names[1]))) {
      continue;
    }
    const t = y.attr["T"]?.value;
    if (t?.case !== "type" || t.value !== DataType.DT_FLOAT) continue;
    const key = `${y.name}:0`;
    const list = consumers.get(key);
    if (list?.length !== 1 || pinned.has(key) || controlled.has(y.name)) continue;
    const add = list[0];
    if ((add.op !== "Add" && add.op !== "AddV2") || add.inputs.length !== 2) continue;
    const side = add.inputs[0].node === y.name && add.inputs[0].index === 0 ? 1 : 0;
    const other = add.inputs[side];
    if (other.node === y.name || add.inputs[1 - side].node !== y.name) continue;
    const node: GraphNode = {
      name: add.name,
      op: y.op,
      inputs: [...y.inputs, other],
      controlInputs: [...new Set([...y.controlInputs, ...add.controlInputs])],
      attr: { ...y.attr, _add_after_activation: attrValue.bool(true) },
    };
    nodes.delete(y.name);
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

/** The op name of the fused x·s + r node (see {@link fuseMulAdd}). */
export const FUSED_MUL_ADD = "_FusedMulAdd";

/**
 * Rewrites Add/AddV2(Mul(x, s), r), where the product has that one use, into one
 * `_FusedMulAdd` node (inputs x, s, r) named as the Add: a squeeze-and-excitation gate times a
 * feature map plus a skip connection, in one pass over the data instead of two, without the
 * product as a tensor. The node keeps the two original nodes (`replaces`) for the shapes and
 * types its fast path does not take (see `compileFusedMulAdd` in plan.ts); `biasFirst` says
 * that the product is the Add's second operand.
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of pairs fused
 */
export function fuseMulAdd(nodes: Map<string, GraphNode>, pinned: ReadonlySet<string>): number {
  const u = uses(nodes);
  let fused = 0;
  for (const add of [...nodes.values()]) {
    if ((add.op !== "Add" && add.op !== "AddV2") || add.inputs.length !== 2 || !isFloat(add)) {
      continue;
    }
    const side = [0, 1].find((i) => {
      const r = add.inputs[i];
      const m = nodes.get(r.node);
      return m?.op === "Mul" && r.index === 0 && m.inputs.length === 2 && isFloat(m) &&
        hideable(u, pinned, r);
    });
    if (side === undefined) continue;
    const mul = nodes.get(add.inputs[side].node)!;
    const node: FusedNode = {
      name: add.name,
      op: FUSED_MUL_ADD,
      inputs: [mul.inputs[0], mul.inputs[1], add.inputs[1 - side]],
      controlInputs: [...new Set([...mul.controlInputs, ...add.controlInputs])],
      attr: { T: attrValue.type(DataType.DT_FLOAT) },
      replaces: [mul, add],
      biasFirst: side === 1,
    };
    nodes.delete(mul.name);
    nodes.set(add.name, node);
    fused++;
  }
  return fused;
}

/**
 * Rewrites PReLU subgraphs, Add/AddV2(Relu(x), Mul(s, Relu(Neg(x)))) with either operand order
 * (Keras' PReLU layer; the corpus' conversion of tfjs' Prelu op), into one Relu node named as the
 * Add, with inputs x and s and the private attr `_prelu` (its kernel, in kernels/activation.ts,
 * computes Relu(x) + s·Relu(-x) with the Add's broadcasting: the same values as the four ops).
 * Every intermediate must have that one use (Neg(x) and both Relus included), all float32
 * or float64 alike, and s may be any tensor (a constant slope in practice).
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of subgraphs fused
 */
export function fusePrelu(nodes: Map<string, GraphNode>, pinned: ReadonlySet<string>): number {
  const { consumers, controlled } = uses(nodes);
  // The node behind `r` when `r` is its output 0, used once (by `by`), and hidden by nothing.
  const soleInput = (r: TensorRef, by: GraphNode): GraphNode | undefined => {
    const n = nodes.get(r.node);
    const key = refName(r);
    const list = consumers.get(key);
    return n !== undefined && r.index === 0 && list?.length === 1 && list[0] === by &&
        !pinned.has(key) && !controlled.has(n.name)
      ? n
      : undefined;
  };
  const typeOf = (n: GraphNode) => {
    const t = n.attr["T"]?.value;
    return t?.case === "type" ? t.value : undefined;
  };
  let fused = 0;
  for (const add of [...nodes.values()]) {
    if ((add.op !== "Add" && add.op !== "AddV2") || add.inputs.length !== 2) continue;
    const type = typeOf(add);
    if (type !== DataType.DT_FLOAT && type !== DataType.DT_DOUBLE) continue;
    for (const side of [0, 1]) {
      const relu = soleInput(add.inputs[side], add);
      const mul = soleInput(add.inputs[1 - side], add);
      if (relu?.op !== "Relu" || relu.inputs.length !== 1 || mul?.op !== "Mul") continue;
      if (mul.inputs.length !== 2) continue;
      const j = [0, 1].find((k) => nodes.get(mul.inputs[k].node)?.op === "Relu");
      if (j === undefined) continue;
      const relu2 = soleInput(mul.inputs[j], mul);
      if (relu2 === undefined || relu2.inputs.length !== 1) continue;
      const neg = soleInput(relu2.inputs[0], relu2);
      if (neg?.op !== "Neg" || neg.inputs.length !== 1) continue;
      const x = relu.inputs[0];
      if (neg.inputs[0].node !== x.node || neg.inputs[0].index !== x.index) continue;
      if ([relu, mul, relu2, neg].some((n) => typeOf(n) !== type)) continue;
      const node: GraphNode = {
        name: add.name,
        op: "Relu",
        inputs: [x, mul.inputs[1 - j]],
        controlInputs: [
          ...new Set([add, relu, mul, relu2, neg].flatMap((n) => n.controlInputs)),
        ],
        attr: { T: attrValue.type(type), _prelu: attrValue.bool(true) },
      };
      for (const n of [relu, mul, relu2, neg]) nodes.delete(n.name);
      nodes.set(node.name, node);
      fused++;
      break;
    }
  }
  return fused;
}

/** The op name of a resize and the 1×1 convolution of its output (see {@link fuseResizeConv}). */
export const FUSED_RESIZE_CONV = "_FusedResizeConv2D";

/** Whether `n` is an attr list of ints all equal to 1 (or absent: the op's default of ones). */
function allOnes(n: GraphNode, name: string): boolean {
  const v = n.attr[name]?.value;
  if (v === undefined) return true;
  return v.case === "list" && v.value.i.every((x) => x === 1n);
}

/**
 * Rewrites a 1×1 convolution of a resized image into one `_FusedResizeConv2D` node named as the
 * convolution, with inputs (images, size, filter[, bias]) and both original nodes kept
 * (`replaces`, resize first); see `compileResizeConv` in plan.ts, which runs the convolution
 * first when the resize enlarges the images.
 *
 * Why the order may change: a resize makes each output pixel from input pixels with weights
 * that sum to one (ResizeBilinear's a + (b − a)·t in both directions, whatever the corner and
 * half-pixel modes and the clamping at the edges; ResizeNearestNeighbor picks one pixel), and a
 * 1×1 convolution with its bias is the same affine map W·x + b at every pixel, so
 * W·Σwᵢxᵢ + b = Σwᵢ(W·xᵢ + b). Only the rounding differs. Run first, the convolution does its
 * work at the input's resolution (a quarter of it for a 2× upsampling, the MediaPipe
 * segmentation decoders' up_sampling2d → conv2d), and the resize moves its output channels.
 *
 * Taken: Conv2D, or `_FusedConv2D` with fused_ops [BiasAdd] and no private attrs (an activation
 * or a residual sum would not commute), float32, NHWC, strides and dilations 1, padding VALID or
 * SAME, a constant filter [1, 1, C, K]; its input a float32 ResizeBilinear or
 * ResizeNearestNeighbor with no other use, neither fed nor fetched nor waited on.
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of pairs fused
 */
export function fuseResizeConv(nodes: Map<string, GraphNode>, pinned: ReadonlySet<string>): number {
  const u = uses(nodes);
  let fused = 0;
  for (const conv of [...nodes.values()]) {
    const plain = conv.op === "Conv2D" && conv.inputs.length === 2;
    const biased = conv.op === "_FusedConv2D" && conv.inputs.length === 3;
    if ((!plain && !biased) || !isFloat(conv)) continue;
    if (biased) {
      const ops = conv.attr["fused_ops"]?.value;
      if (ops?.case !== "list" || ops.value.s.length !== 1) continue;
      if (new TextDecoder().decode(ops.value.s[0]) !== "BiasAdd") continue;
      if (Object.keys(conv.attr).some((k) => k.startsWith("_"))) continue;
    }
    const padding = stringAttr(conv, "padding", "");
    if (padding !== "VALID" && padding !== "SAME") continue;
    if (stringAttr(conv, "data_format", "NHWC") !== "NHWC") continue;
    if (!allOnes(conv, "strides") || !allOnes(conv, "dilations")) continue;
    const filter = constShape(nodes.get(conv.inputs[1].node));
    if (filter?.length !== 4 || filter[0] !== 1 || filter[1] !== 1) continue;
    const ref = conv.inputs[0];
    const resize = nodes.get(ref.node);
    if (
      resize === undefined || ref.index !== 0 || resize.inputs.length !== 2 ||
      (resize.op !== "ResizeBilinear" && resize.op !== "ResizeNearestNeighbor")
    ) continue;
    const t = resize.attr["T"]?.value;
    if (t?.case !== "type" || t.value !== DataType.DT_FLOAT) continue;
    if (!hideable(u, pinned, ref)) continue;
    const node: FusedNode = {
      name: conv.name,
      op: FUSED_RESIZE_CONV,
      inputs: [...resize.inputs, ...conv.inputs.slice(1)],
      controlInputs: [...new Set([...resize.controlInputs, ...conv.controlInputs])],
      attr: { T: attrValue.type(DataType.DT_FLOAT) },
      replaces: [resize, conv],
      biasFirst: false,
    };
    nodes.delete(resize.name);
    nodes.set(conv.name, node);
    fused++;
  }
  return fused;
}

/** The op name of a convolution of a product (see {@link fuseScaleConv}). */
export const FUSED_SCALE_CONV = "_FusedScaledConv2D";

/**
 * Rewrites a convolution (Conv2D or `_FusedConv2D`, float32, NHWC) whose input is Mul(a, b)
 * with that one use, neither fed nor fetched nor waited on, into one `_FusedScaledConv2D` node
 * named as the convolution: inputs a, the convolution's others, then b; attrs the
 * convolution's and the private `_scale_input`; both original nodes kept (`replaces`, Mul
 * first). See `compileScaledConv` in plan.ts: when one factor is a per-channel scale of the
 * other (a squeeze-and-excitation gate [1, 1, 1, C] times its feature map, which then goes to
 * the block's 1×1 projection), the convolution runs on the map with the scale folded into its
 * filter rows, conv(x·s) = x·(s ⊙ W), and the product is never made (selfie's six took
 * 5-38 µs each, alone on one core); else the Mul, then the convolution.
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of pairs fused
 */
export function fuseScaleConv(nodes: Map<string, GraphNode>, pinned: ReadonlySet<string>): number {
  const u = uses(nodes);
  let fused = 0;
  for (const conv of [...nodes.values()]) {
    if ((conv.op !== "Conv2D" && conv.op !== "_FusedConv2D") || !isFloat(conv)) continue;
    if (conv.attr["_scale_input"] || conv.inputs.length < 2) continue;
    if (stringAttr(conv, "data_format", "NHWC") !== "NHWC") continue;
    const ref = conv.inputs[0];
    const mul = nodes.get(ref.node);
    if (mul?.op !== "Mul" || ref.index !== 0 || mul.inputs.length !== 2 || !isFloat(mul)) continue;
    if (!hideable(u, pinned, ref)) continue;
    const node: FusedNode = {
      name: conv.name,
      op: FUSED_SCALE_CONV,
      inputs: [mul.inputs[0], ...conv.inputs.slice(1), mul.inputs[1]],
      controlInputs: [...new Set([...mul.controlInputs, ...conv.controlInputs])],
      attr: { ...conv.attr, _scale_input: attrValue.bool(true) },
      replaces: [mul, conv],
      biasFirst: false,
    };
    nodes.delete(mul.name);
    nodes.set(conv.name, node);
    fused++;
  }
  return fused;
}

/** The op name of an average pool of a sum (see {@link fuseAddAvgPool}). */
export const FUSED_ADD_AVG_POOL = "_FusedAddAvgPool";

/**
 * Rewrites AvgPool (float32, NHWC, VALID) of Add/AddV2(a, b), where the sum has that one use and
 * is neither fed nor fetched nor waited on, into one `_FusedAddAvgPool` node named as the pool,
 * with inputs a and b, the pool's attrs, and both original nodes kept (`replaces`, Add first).
 * See `compileAddAvgPool` in plan.ts: when the window is the whole image (a global average, as
 * the squeeze-and-excitation blocks of selfie's decoder take of their residual sums) and a and
 * b are float32 of one shape, the averages come from one pass over a and b (`addMeanF32`),
 * without the sum as a tensor; else the Add, then the pool.
 *
 * @param nodes the nodes that will run, by name (modified in place)
 * @param pinned tensors that are fed or fetched, which a fusion must not hide
 * @returns the number of pairs fused
 */
export function fuseAddAvgPool(nodes: Map<string, GraphNode>, pinned: ReadonlySet<string>): number {
  const u = uses(nodes);
  let fused = 0;
  for (const pool of [...nodes.values()]) {
    if (pool.op !== "AvgPool" || pool.inputs.length !== 1 || !isFloat(pool)) continue;
    if (stringAttr(pool, "data_format", "NHWC") !== "NHWC") continue;
    if (stringAttr(pool, "padding", "") !== "VALID") continue;
    const ref = pool.inputs[0];
    const add = nodes.get(ref.node);
    if (add === undefined || (add.op !== "Add" && add.op !== "AddV2") || ref.index !== 0) continue;
    if (add.inputs.length !== 2 || !isFloat(add)) continue;
    if (!hideable(u, pinned, ref)) continue;
    const node: FusedNode = {
      name: pool.name,
      op: FUSED_ADD_AVG_POOL,
      inputs: [...add.inputs],
      controlInputs: [...new Set([...add.controlInputs, ...pool.controlInputs])],
      attr: { ...pool.attr },
      replaces: [add, pool],
      biasFirst: false,
    };
    nodes.delete(add.name);
    nodes.set(pool.name, node);
    fused++;
  }
  return fused;
}
