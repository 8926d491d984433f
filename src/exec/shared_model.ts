/**
 * A loaded model in a form other isolates can rebuild without copying its weights.
 *
 * - Constants: before the main isolate compiles anything, {@link shareConstants} moves every large
 *   `Const` value (`tensor_content`) into one SharedArrayBuffer, 16-byte aligned. Const kernels
 *   view `tensor_content` in place when it is aligned (`fromBytes`), so the main isolate and
 *   every worker read the same bytes.
 * - Variables: after restore, init and warmup, {@link modelImage} moves each numeric variable's
 *   value into a SharedArrayBuffer (the main isolate's variable then views it too) and lists
 *   them; a worker pre-creates the variables under the same resource keys before compiling, so
 *   its VariableV2 / VarHandleOp kernels find them. Values are replaced, never written in place
 *   (see `Variable`), so sharing the storage is safe.
 * - Packed weights: every shared buffer above gets a process-wide id (`shareBufferId`), listed
 *   in the image; a worker records the same ids before compiling, so the WebAssembly kernels of
 *   every isolate find one packed copy of each weight in the process's shared kernel memory
 *   (kernels/wasm/shared_memory.ts) instead of packing their own.
 * - Everything else a worker needs is the MetaGraphDef (structured-cloned: the shared
 *   `tensor_content` views stay shared) and the signatures.
 *
 * A model whose resources are not all variables (lookup tables, filled by the init op) cannot be
 * rebuilt this way and runs on the main isolate ({@link modelImage} returns undefined).
 *
 * @module
 */
import type { GraphDef } from "../proto/gen/tensorflow/core/framework/graph_pb.ts";
import type { NodeDef } from "../proto/gen/tensorflow/core/framework/node_def_pb.ts";
import type { AttrValue } from "../proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import type { SavedModelBundle } from "../saved_model/reader.ts";
import { compileModel, type Model } from "../runtime/model.ts";
import type { KernelRegistry } from "../kernels/registry.ts";
import { DataType, isNumeric, type NumericArray } from "../tensor/dtype.ts";
import { type Shape, Tensor, type TensorData, Variable } from "../tensor/tensor.ts";
import { shareBufferId, sharedBufferIdOf } from "../kernels/wasm/shared_memory.ts";
import type { SharedBufferPool } from "../tensor/request_memory.ts";

/** Constants smaller than this stay where they are (sharing them saves nothing). */
export const MIN_SHARED_CONST_BYTES = 1024;

const align16 = (n: number) => (n + 15) & ~15;

/** Every NodeDef of a graph, its function library's included. */
function* allNodes(graph: GraphDef | undefined): Generator<NodeDef> {
  if (!graph) return;
  yield* graph.node;
  for (const f of graph.library?.function ?? []) yield* f.nodeDef;
}

/** The `value` attr of a Const node whose `tensor_content` is worth sharing. */
function sharableContent(node: NodeDef): Uint8Array | undefined {
  if (node.op !== "Const") return undefined;
  const v = node.attr["value"]?.value;
  if (v?.case !== "tensor") return undefined;
  const bytes = v.value.tensorContent;
  return bytes.byteLength >= MIN_SHARED_CONST_BYTES ? bytes : undefined;
}

/**
 * Replaces every byte field under `value` (a decoded message: plain objects and arrays) that
 * views a larger, unshared buffer with a copy of just its bytes. Decoding leaves `bytes` fields
 * (small constants' `tensor_content`, string attrs, `string_val`) as views of the whole
 * `saved_model.pb`; each view keeps the file's buffer alive, and posting the graph to a worker
 * would copy that whole buffer into every worker (64 MiB per worker for a model with 64 MiB of
 * constants). Returns the bytes copied.
 */
export function compactBytes(value: unknown): number {
  let copied = 0;
  const seen = new Set<object>();
  const tight = (b: Uint8Array): Uint8Array => {
    if (b.buffer instanceof SharedArrayBuffer || b.byteLength === b.buffer.byteLength) return b;
    copied += b.byteLength;
    return b.slice();
  };
  const walk = (v: unknown): void => {
    if (typeof v !== "object" || v === null || ArrayBuffer.isView(v) || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const e = v[i];
        if (e instanceof Uint8Array) v[i] = tight(e);
        else walk(e);
      }
      return;
    }
    const o = v as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      const e = o[key];
      if (e instanceof Uint8Array) o[key] = tight(e);
      else walk(e);
    }
  };
  walk(value);
  return copied;
}

/**
 * Moves the large constants of a bundle's graph into one SharedArrayBuffer and copies the other
 * byte fields out of the file's buffer (`compactBytes`), a `loadModel` `prepare` hook. Returns
 * the number of bytes moved to shared memory.
 */
export function shareConstants(bundle: SavedModelBundle): number {
  const graph = bundle.metaGraph.graphDef;
  try {
    return shareLargeConstants(graph);
  } finally {
    compactBytes(bundle.metaGraph);
  }
}

function shareLargeConstants(graph: GraphDef | undefined): number {
  let total = 0;
  for (const n of allNodes(graph)) {
    const b = sharableContent(n);
    if (b) total += align16(b.byteLength);
  }
  if (total === 0) return 0;
  const shared = new SharedArrayBuffer(total);
  let offset = 0;
  for (const n of allNodes(graph)) {
    const b = sharableContent(n);
    if (!b) continue;
    const view = new Uint8Array(shared, offset, b.byteLength);
    view.set(b);
    (n.attr["value"] as AttrValue & { value: { case: "tensor" } }).value.value.tensorContent = view;
    offset += align16(b.byteLength);
  }
  shareBufferId(shared);
  return total;
}

/** A tensor as it crosses isolates: typed storage is structured-cloned (or shared). */
export interface TensorImage {
  readonly dtype: DataType;
  readonly shape: Shape;
  readonly data: NumericArray | Uint8Array[];
}

/** A variable's key, type, node name and value. */
export interface VariableImage {
  readonly key: string;
  readonly dtype: DataType;
  readonly name: string;
  readonly value?: TensorImage;
}

/** A shared buffer of a model's weights and the id its packed copies are shared under. */
export interface SharedBufferImage {
  readonly buffer: SharedArrayBuffer;
  readonly id: number;
}

/** What a worker needs to rebuild a loaded model. */
export interface ModelImage {
  /** The bundle, without what only loading needs (assets, restore, init). */
  readonly bundle: SavedModelBundle;
  /** Variables with their current values (numeric ones in shared memory). */
  readonly variables: readonly VariableImage[];
  /** The shared buffers of constants and variables, with their ids (see the module). */
  readonly sharedBuffers: readonly SharedBufferImage[];
}

/** The image of a tensor (its storage is structured-cloned when posted, or shared if it is). */
export function tensorImage(t: Tensor): TensorImage {
  if (t.dtype === DataType.DT_RESOURCE) {
    throw new Error("Cannot send a DT_RESOURCE tensor to another isolate");
  }
  return { dtype: t.dtype, shape: t.shape, data: t.data as NumericArray | Uint8Array[] };
}

/** Bytes of numeric storage from which {@link postedImage} shares instead of cloning. */
export const SHARE_POSTED_BYTES = 16384;

/**
 * The image of a tensor to post to another isolate (a call's feeds, its outputs): large numeric
 * storage is first copied into a SharedArrayBuffer, which the message then shares. That is one
 * copy, here, where a structured clone makes two (serialising, then deserialising in the
 * receiver's thread, e.g. 0.13 ms more per call for a 256×256×3 image); and a clone of a view
 * copies its whole buffer (a request's tensor_content is a view of the request bytes, a small
 * one of a 32 KiB slab of messages), so a smaller view of a larger buffer is copied out exactly.
 * Storage already shared (constants, variables) is posted as it is.
 */
export function postedImage(t: Tensor): TensorImage {
  return postedImageIn(t, undefined, undefined);
}

/**
 * {@link postedImage}, copying large storage into a buffer of `pool` when it has one of the
 * size (else a new one), listed in `taken`: the receiver gives those back once it no longer reads
 * them (a worker's outputs, returned when the call is answered).
 */
export function postedImageIn(
  t: Tensor,
  pool: SharedBufferPool | undefined,
  taken: SharedArrayBuffer[] | undefined,
): TensorImage {
  const image = tensorImage(t);
  const data = image.data;
  if (Array.isArray(data) || data.buffer instanceof SharedArrayBuffer) return image;
  const view = data as NumericArray;
  if (view.byteLength < SHARE_POSTED_BYTES) {
    if (view.byteLength === view.buffer.byteLength) return image;
    return { dtype: image.dtype, shape: image.shape, data: view.slice() as NumericArray };
  }
  const ctor = view.constructor as new (b: SharedArrayBuffer, o: number, n: number) => NumericArray;
  let buffer: SharedArrayBuffer;
  if (pool !== undefined && taken !== undefined) {
    buffer = pool.take(view.byteLength) ?? new SharedArrayBuffer(view.byteLength);
    taken.push(buffer);
  } else buffer = new SharedArrayBuffer(view.byteLength);
  const copy = new ctor(buffer, 0, view.length);
  (copy as Float32Array).set(view as Float32Array);
  return { dtype: image.dtype, shape: image.shape, data: copy };
}

/** A tensor from its image. */
export function tensorFromImage(t: TensorImage): Tensor {
  return new Tensor(t.dtype, t.shape, t.data as TensorData);
}

function toShared(data: NumericArray): NumericArray {
  if (data.buffer instanceof SharedArrayBuffer) return data;
  const ctor = data.constructor as new (b: SharedArrayBuffer, o: number, n: number) => NumericArray;
  const buffer = new SharedArrayBuffer(align16(data.byteLength) || 16);
  const out = new ctor(buffer, 0, data.length);
  (out as Float32Array).set(data as Float32Array);
  shareBufferId(buffer);
  return out;
}

/**
 * The image of a loaded model, moving its numeric variables' values into shared memory; or
 * undefined when the model holds resources other than variables (they cannot be rebuilt
 * elsewhere).
 */
export function modelImage(model: Model): ModelImage | undefined {
  const variables: VariableImage[] = [];
  for (const [key, r] of model.session.resources.entries()) {
    if (!(r instanceof Variable)) return undefined;
    const v = r.value;
    if (v !== undefined && isNumeric(v.dtype)) {
      r.value = new Tensor(v.dtype, v.shape, toShared(v.data as NumericArray));
    }
    variables.push({
      key,
      dtype: r.dtype,
      name: r.name,
      value: r.value === undefined ? undefined : tensorImage(r.value),
    });
  }
  const b = model.bundle;
  const mg = b.metaGraph;
  const sharedBuffers = new Map<SharedArrayBuffer, number>();
  const note = (buffer: ArrayBufferLike) => {
    const id = sharedBufferIdOf(buffer);
    if (id !== undefined) sharedBuffers.set(buffer as SharedArrayBuffer, id);
  };
  for (const n of allNodes(mg.graphDef)) {
    const v = n.attr["value"]?.value;
    if (n.op === "Const" && v?.case === "tensor") note(v.value.tensorContent.buffer);
  }
  for (const v of variables) {
    if (v.value && !Array.isArray(v.value.data)) note((v.value.data as NumericArray).buffer);
  }
  return {
    bundle: {
      exportDir: b.exportDir,
      // Collections and the object graph are for loading and saving, not running.
      metaGraph: { ...mg, collectionDef: {}, objectGraphDef: undefined, assetFileDef: [] },
      signatures: b.signatures,
      assets: [],
      assetsExtra: [],
    },
    variables,
    sharedBuffers: [...sharedBuffers].map(([buffer, id]) => ({ buffer, id })),
  };
}

/**
 * Rebuilds a model from its image (in a worker): its compiled plans and its variables.
 *
 * @param registry the kernels to compile with
 */
export function modelFromImage(image: ModelImage, registry: KernelRegistry): Model {
  for (const { buffer, id } of image.sharedBuffers) shareBufferId(buffer, id);
  const model = compileModel(image.bundle, registry);
  // Variable kernels look their variable up by key when compiled, and read its value when run:
  // whichever comes first creates it, and the value is set before any run.
  const resources = model.session.resources;
  for (const v of image.variables) {
    const variable = resources.lookupOrCreate(v.key, () => new Variable(v.key, v.dtype, v.name));
    if (v.value) variable.value = tensorFromImage(v.value);
  }
  return model;
}

/** Ops that change a variable or a table: a signature running one is stateful. */
const MUTATING_OPS = new Set([
  "Assign",
  "AssignAdd",
  "AssignSub",
  "AssignVariableOp",
  "AssignAddVariableOp",
  "AssignSubVariableOp",
  "ScatterUpdate",
  "ScatterAdd",
  "ScatterSub",
  "ScatterMul",
  "ScatterDiv",
  "ScatterMin",
  "ScatterMax",
  "ScatterNdUpdate",
  "ScatterNdAdd",
  "ScatterNdSub",
  "ResourceScatterUpdate",
  "ResourceScatterAdd",
  "ResourceScatterSub",
  "ResourceScatterMul",
  "ResourceScatterDiv",
  "ResourceScatterMin",
  "ResourceScatterMax",
  "ResourceScatterNdUpdate",
  "ResourceScatterNdAdd",
  "ResourceScatterNdSub",
  "LookupTableInsert",
  "LookupTableInsertV2",
  "LookupTableImport",
  "LookupTableImportV2",
  "LookupTableRemoveV2",
  "InitializeTable",
  "InitializeTableV2",
  "InitializeTableFromTextFile",
  "InitializeTableFromTextFileV2",
]);

/** Names of the functions an attr value refers to. */
function* funcNames(a: AttrValue): Generator<string> {
  if (a.value.case === "func") yield a.value.value.name;
  else if (a.value.case === "list") { for (const f of a.value.value.func) yield f.name; }
}

/** What the executor needs to know about a model to place it. */
export interface ModelTraits {
  /**
   * Running some signature may change state: a mutating op is reachable from a signature's
   * outputs through data or control inputs, or sits in a function a reachable node calls
   * (conservatively: every node of such a function counts).
   */
  readonly stateful: boolean;
  /**
   * Elements of every constant and variable of the graph (functions included): a proxy for a
   * call's cost before any call was measured.
   */
  readonly weightElements: number;
}

function shapeElements(a: AttrValue | undefined): number {
  if (a?.value.case !== "shape" || a.value.value.unknownRank) return 0;
  let n = 1;
  for (const d of a.value.value.dim) n *= Math.max(0, Number(d.size));
  return n;
}

function tensorElements(a: AttrValue | undefined): number {
  if (a?.value.case !== "tensor") return 0;
  const t = a.value.value;
  if (t.tensorShape === undefined) return 0;
  let n = 1;
  for (const d of t.tensorShape.dim) n *= Math.max(0, Number(d.size));
  return n;
}

/** Reads a bundle's {@link ModelTraits}. */
export function modelTraits(bundle: SavedModelBundle): ModelTraits {
  let weightElements = 0;
  for (const n of allNodes(bundle.metaGraph.graphDef)) {
    if (n.op === "Const") weightElements += tensorElements(n.attr["value"]);
    else if (n.op === "VariableV2" || n.op === "VarHandleOp" || n.op === "Variable") {
      weightElements += shapeElements(n.attr["shape"]);
    }
  }
  return { stateful: hasStatefulSignature(bundle), weightElements };
}

/** True if running some signature of the bundle may change state (see {@link ModelTraits}). */
export function hasStatefulSignature(bundle: SavedModelBundle): boolean {
  const graph = bundle.metaGraph.graphDef;
  if (!graph) return false;
  const byName = new Map(graph.node.map((n) => [n.name, n]));
  const functions = new Map(
    (graph.library?.function ?? []).map((f) => [f.signature?.name ?? "", f]),
  );
  const seenFunctions = new Set<string>();
  const functionMutates = (name: string): boolean => {
    if (seenFunctions.has(name)) return false;
    seenFunctions.add(name);
    const f = functions.get(name);
    if (!f) return false;
    for (const n of f.nodeDef) if (nodeMutates(n)) return true;
    return false;
  };
  const nodeMutates = (n: NodeDef): boolean => {
    if (MUTATING_OPS.has(n.op)) return true;
    if (functions.has(n.op) && functionMutates(n.op)) return true;
    for (const a of Object.values(n.attr)) {
      for (const f of funcNames(a)) if (functionMutates(f)) return true;
    }
    return false;
  };
  const stack: string[] = [];
  for (const def of bundle.signatures.values()) {
    for (const info of Object.values(def.outputs)) {
      if (info.encoding.case === "name") stack.push(info.encoding.value);
    }
  }
  const seen = new Set<string>();
  while (stack.length > 0) {
    const ref = stack.pop()!;
    const name = ref.replace(/^\^/, "").replace(/:\d+$/, "");
    if (seen.has(name)) continue;
    seen.add(name);
    const n = byName.get(name);
    if (!n) continue;
    if (nodeMutates(n)) return true;
    stack.push(...n.input);
  }
  return false;
}
