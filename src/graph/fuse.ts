/**
 * Graph rewrites done at plan time. One so far: the dense → bias → softmax chain of a softmax
 * regression (MatMul → Add/AddV2/BiasAdd → Softmax) becomes one `_FusedDenseSoftmax` node, so a
 * batch-1 call is one pass over the weights with no intermediate tensors.
 *
 * @module
 */
import { DataType } from "../tensor/dtype.ts";
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
