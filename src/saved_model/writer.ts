/**
 * Writes a TF1-style SavedModel as TensorFlow 2.x's `tf.compat.v1.saved_model.Builder` does
 * (`saved_model/builder_impl.py`, `training/saver.py`, `framework/meta_graph.py`):
 *
 * - `saved_model.pb`: a SavedModel with one MetaGraphDef: the graph, plus the sharded V2 saver
 *   subgraph TF's `Saver(sharded=True)` builds (`save/Const`, `save/SaveV2`, `save/RestoreV2`,
 *   `save/restore_all`, …) and its `saver_def`; the `variables`/`trainable_variables`
 *   collections (VariableDef bytes) and `saved_model_main_op`; `meta_info_def` with the
 *   `stripped_op_list` (the OpDef of every op used, sorted by name), tags and version strings;
 *   attrs equal to their OpDef default stripped (`strip_default_attrs=True`); maps written in
 *   key order, as `SerializeToString(deterministic=True)` does.
 * - `variables/variables.index` and `variables/variables.data-00000-of-00001`: the variables in
 *   a TensorBundle under their node names (see tensor_bundle.ts).
 *
 * Everything is written into a temp dir beside the target, fsynced, then renamed into place, so a
 * reader (or TF Serving's version watcher) never sees a partial version; an existing non-empty
 * target is refused.
 *
 * Variables are TF1 reference variables (`VariableV2` with `<name>/Assign` and `<name>/read`),
 * which this project's runtime restores through the saver's own restore op.
 *
 * @module
 */
import { create, equals, toBinary } from "@bufbuild/protobuf";
import { fromText } from "@bufbuild/protobuf/txtpb";
import { basename, dirname, join } from "node:path";
import {
  type AttrValue,
  AttrValueSchema,
} from "../proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import { type NodeDef, NodeDefSchema } from "../proto/gen/tensorflow/core/framework/node_def_pb.ts";
import { type OpDef, OpListSchema } from "../proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { TensorProtoSchema } from "../proto/gen/tensorflow/core/framework/tensor_pb.ts";
import { VariableDefSchema } from "../proto/gen/tensorflow/core/framework/variable_pb.ts";
import {
  type CollectionDef,
  CollectionDefSchema,
  type MetaGraphDef,
  MetaGraphDefSchema,
  type SignatureDef,
  SignatureDefSchema,
} from "../proto/gen/tensorflow/core/protobuf/meta_graph_pb.ts";
import {
  type SavedModel,
  SavedModelSchema,
} from "../proto/gen/tensorflow/core/protobuf/saved_model_pb.ts";
import {
  type SaverDef,
  SaverDef_CheckpointFormatVersion,
  SaverDefSchema,
} from "../proto/gen/tensorflow/core/protobuf/saver_pb.ts";
import { Code, ServingError } from "../errors.ts";
import { opDefsFor, registeredOpDef } from "../kernels/op_defs.ts";
import { attrValue, GraphBuilder } from "../graph/builder.ts";
import { DataType, dtypeName, isNumeric } from "../tensor/dtype.ts";
import { shapeString, sizeOf, Tensor } from "../tensor/tensor.ts";
import { shapeToProto, tensorToProto } from "../tensor/tensor_proto.ts";
import { MAIN_OP_COLLECTION, SAVED_MODEL_PB, VARIABLES_PREFIX } from "./reader.ts";
import { dataFileName, encodeBundle, indexFileName } from "./tensor_bundle.ts";

/** The TensorFlow release whose SavedModel layout is written (`tensorflow_version`). */
export const TENSORFLOW_VERSION = "2.14.0";
/** `GraphDef.versions` of that release (TF_GRAPH_DEF_VERSION, TF_GRAPH_DEF_VERSION_MIN_CONSUMER). */
export const GRAPH_DEF_VERSIONS = { producer: 1569, minConsumer: 12 } as const;
/** The tag set TF Serving loads (`tag_constants.SERVING`). */
export const SERVING_TAG = "serve";
/** `ops.GraphKeys.GLOBAL_VARIABLES`. */
export const VARIABLES_COLLECTION = "variables";
/** `ops.GraphKeys.TRAINABLE_VARIABLES`. */
export const TRAINABLE_VARIABLES_COLLECTION = "trainable_variables";
/** `ops.GraphKeys.TABLE_INITIALIZERS`. */
export const TABLE_INITIALIZERS_COLLECTION = "table_initializer";

/** The device string of `with ops.device("CPU")` (the saver's sharded-suffix ops). */
export const CPU_ANY = "/device:CPU:*";
/** The device string of `saveable_object_util.set_cpu0("")` (the saver's save/restore ops). */
export const CPU_0 = "/device:CPU:0";

/**
 * Parses OpDefs written in the text format of an `OpList` (`op { name: "…" … }`), the form of
 * TensorFlow's `ops.pbtxt`.
 *
 * @throws Error on malformed text (a programming error: the text is a constant)
 */
export function parseOpDefs(text: string): OpDef[] {
  return fromText(OpListSchema, text).op;
}

/** The ops the writer itself adds (variables and the saver) and the graph inputs most models use. */
export const WRITER_OPS: readonly string[] = [
  "Assign",
  "Const",
  "Identity",
  "MergeV2Checkpoints",
  "NoOp",
  "Pack",
  "Placeholder",
  "PlaceholderWithDefault",
  "RestoreV2",
  "SaveV2",
  "Select",
  "ShardedFilename",
  "StaticRegexFullMatch",
  "StringJoin",
  "VariableV2",
];

/**
 * OpDefs of {@link WRITER_OPS}, from the project's OpDef registry (`kernels/op_defs.ts`,
 * TensorFlow 2.14's definitions, the release whose layout the writer follows): what TensorFlow
 * writes in the `stripped_op_list` of the testdata SavedModels.
 */
export const WRITER_OP_DEFS: readonly OpDef[] = opDefsFor(WRITER_OPS);

// ---------------------------------------------------------------------------------------------
// Attr and node helpers, matching what TensorFlow's Python front end puts in a NodeDef.

/**
 * The `_output_shapes` attr TF adds to every node with outputs (`as_graph_def(add_shapes=True)`):
 * one shape per output, `-1` for an unknown dim, `undefined` for an unknown rank.
 */
export function outputShapes(...shapes: (readonly number[] | undefined)[]): AttrValue {
  return create(AttrValueSchema, {
    value: {
      case: "list",
      value: { shape: shapes.map((s) => (s ? shapeToProto(s) : { unknownRank: true })) },
    },
  });
}

/** The `_class` attr of an op colocated with `node` (`loc:@node`). */
export function colocatedWith(node: string): AttrValue {
  return attrValue.strings([`loc:@${node}`]);
}

/**
 * A Const's `value` attr as `tensor_util.make_tensor_proto` writes it: numeric tensors of more
 * than one element in `tensor_content`, smaller ones in the typed field, strings in `string_val`.
 */
export function constValue(t: Tensor): AttrValue {
  const proto = tensorToProto(t, isNumeric(t.dtype) && sizeOf(t.shape) > 1);
  return create(AttrValueSchema, { value: { case: "tensor", value: proto } });
}

/**
 * A Const's `value` attr for `tf.constant(value, shape=shape)`: one element in the typed field,
 * broadcast to `shape` by its readers (what `tf.zeros` of fewer than 1000 elements writes).
 */
export function filledConstValue(
  dtype: DataType,
  shape: readonly number[],
  value: number,
): AttrValue {
  const one = tensorToProto(Tensor.scalar(dtype, value));
  const proto = create(TensorProtoSchema, { ...one, tensorShape: shapeToProto(shape) });
  return create(AttrValueSchema, { value: { case: "tensor", value: proto } });
}

/**
 * Adds a Const as TF writes it (with `_output_shapes`) and returns its output name.
 *
 * @param value the tensor, or `{ dtype, shape, fill }` for a broadcast scalar
 */
export function addConst(
  g: GraphBuilder,
  name: string,
  value: Tensor | { dtype: DataType; shape: readonly number[]; fill: number },
  device = "",
): string {
  const v = value instanceof Tensor ? constValue(value) : filledConstValue(
    value.dtype,
    value.shape,
    value.fill,
  );
  return g.op(name, "Const", [], {
    dtype: attrValue.type(value.dtype),
    value: v,
    _output_shapes: outputShapes(value.shape),
  }, device);
}

/** The nodes of one TF1 reference variable. */
export interface VariableNodes {
  /** The VariableV2 node (`Variable`). */
  readonly variable: string;
  /** The initializer (`Variable/Assign`). */
  readonly initializer: string;
  /** The snapshot read by the model (`Variable/read:0`). */
  readonly snapshot: string;
}

/**
 * Adds a TF1 `tf.Variable(initial_value)` as `RefVariable` builds it: `name` (VariableV2),
 * `name/Assign` (Assign of `initialValue`, colocated with the variable) and `name/read`
 * (Identity, colocated).
 *
 * @param initialValue the tensor the variable is initialised with (`zeros:0`)
 */
export function addVariable(
  g: GraphBuilder,
  name: string,
  initialValue: string,
  dtype: DataType,
  shape: readonly number[],
): VariableNodes {
  const shapes = outputShapes(shape);
  g.op(name, "VariableV2", [], {
    container: attrValue.string(""),
    dtype: attrValue.type(dtype),
    shape: attrValue.shape(shape),
    shared_name: attrValue.string(""),
    _output_shapes: shapes,
  });
  g.op(`${name}/Assign`, "Assign", [name, initialValue], {
    T: attrValue.type(dtype),
    use_locking: attrValue.bool(true),
    validate_shape: attrValue.bool(true),
    _class: colocatedWith(name),
    _output_shapes: shapes,
  });
  g.op(`${name}/read`, "Identity", [name], {
    T: attrValue.type(dtype),
    _class: colocatedWith(name),
    _output_shapes: shapes,
  });
  return { variable: name, initializer: `${name}/Assign`, snapshot: `${name}/read:0` };
}

/** A variable as the saver sees it. */
export interface SaveableVariable {
  /** The VariableV2 node; also the tensor's key in the checkpoint. */
  readonly name: string;
  /** Its element type. */
  readonly dtype: DataType;
  /** Its shape. */
  readonly shape: readonly number[];
}

/**
 * Adds the saver subgraph of `tf.compat.v1.train.Saver(variables, sharded=True,
 * write_version=V2, allow_empty=True)` (what the SavedModel builder creates) under `save/`, node
 * by node as `BaseSaverBuilder._build_internal` makes it in TF 2.x: the filename placeholder
 * `save/Const`, the sharded save (`StaticRegexFullMatch`/`Select` choosing the temp suffix,
 * `ShardedFilename`, `SaveV2`, `MergeV2Checkpoints`, `save/Identity`) and the bulk restore (one
 * `RestoreV2` on CPU, an `Assign` per variable, `save/restore_shard`, `save/restore_all`).
 *
 * @param variables sorted here by name, as the saver sorts them
 * @returns the SaverDef naming the filename tensor, the save tensor and the restore op
 */
export function addSaver(g: GraphBuilder, variables: readonly SaveableVariable[]): SaverDef {
  if (variables.length === 0) {
    throw new ServingError(Code.INVALID_ARGUMENT, "Cannot build a saver without variables");
  }
  const vars = [...variables].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const str = attrValue.type(DataType.DT_STRING);
  const scalar = outputShapes([]);
  const names = Tensor.strings(vars.map((v) => v.name));
  const slices = Tensor.strings(vars.map(() => ""));
  const dtypes = attrValue.types(vars.map((v) => v.dtype));

  addConst(g, "save/filename/input", Tensor.strings(["model"], []));
  g.op("save/filename", "PlaceholderWithDefault", ["save/filename/input"], {
    dtype: str,
    shape: attrValue.shape([]),
    _output_shapes: scalar,
  });
  // "Keep the name 'Const' for backwards compatibility."
  g.op("save/Const", "PlaceholderWithDefault", ["save/filename"], {
    dtype: str,
    shape: attrValue.shape([]),
    _output_shapes: scalar,
  });

  // _AddShardedSaveOpsForV2: write to a temp prefix (".part" on S3), then merge.
  g.op("save/StaticRegexFullMatch", "StaticRegexFullMatch", ["save/Const"], {
    pattern: attrValue.string("^s3://.*"),
    _output_shapes: scalar,
  }, CPU_ANY);
  addConst(g, "save/Const_1", Tensor.strings([".part"], []), CPU_ANY);
  addConst(g, "save/Const_2", Tensor.strings(["_temp/part"], []), CPU_ANY);
  g.op("save/Select", "Select", ["save/StaticRegexFullMatch", "save/Const_1", "save/Const_2"], {
    T: str,
    _output_shapes: scalar,
  }, CPU_ANY);
  g.op("save/StringJoin", "StringJoin", ["save/Const", "save/Select"], {
    N: attrValue.int(2),
    separator: attrValue.string(""),
    _output_shapes: scalar,
  }, CPU_ANY);
  addConst(g, "save/num_shards", Tensor.scalar(DataType.DT_INT32, 1));
  addConst(g, "save/ShardedFilename/shard", Tensor.scalar(DataType.DT_INT32, 0), CPU_0);
  g.op(
    "save/ShardedFilename",
    "ShardedFilename",
    [
      "save/StringJoin",
      "save/ShardedFilename/shard",
      "save/num_shards",
    ],
    { _output_shapes: scalar },
    CPU_0,
  );
  addConst(g, "save/SaveV2/tensor_names", names, CPU_0);
  addConst(g, "save/SaveV2/shape_and_slices", slices, CPU_0);
  g.op(
    "save/SaveV2",
    "SaveV2",
    [
      "save/ShardedFilename",
      "save/SaveV2/tensor_names",
      "save/SaveV2/shape_and_slices",
      ...vars.map((v) => v.name),
    ],
    { dtypes },
    CPU_0,
  );
  g.op("save/control_dependency", "Identity", ["save/ShardedFilename", "^save/SaveV2"], {
    T: str,
    _class: colocatedWith("save/ShardedFilename"),
    _output_shapes: scalar,
  }, CPU_0);
  g.op("save/MergeV2Checkpoints/checkpoint_prefixes", "Pack", [
    "save/ShardedFilename",
    "^save/control_dependency",
  ], {
    N: attrValue.int(1),
    T: str,
    axis: attrValue.int(0),
    _output_shapes: outputShapes([1]),
  }, CPU_0);
  g.op(
    "save/MergeV2Checkpoints",
    "MergeV2Checkpoints",
    [
      "save/MergeV2Checkpoints/checkpoint_prefixes",
      "save/Const",
    ],
    { allow_missing_files: attrValue.bool(false), delete_old_dirs: attrValue.bool(true) },
    CPU_0,
  );
  g.op(
    "save/Identity",
    "Identity",
    [
      "save/Const",
      "^save/MergeV2Checkpoints",
      "^save/control_dependency",
    ],
    { T: str, _output_shapes: scalar },
    CPU_0,
  );

  // BulkSaverBuilder.bulk_restore: one RestoreV2 for every variable, on CPU:0.
  addConst(g, "save/RestoreV2/tensor_names", names, CPU_0);
  addConst(g, "save/RestoreV2/shape_and_slices", slices, CPU_0);
  g.op(
    "save/RestoreV2",
    "RestoreV2",
    [
      "save/Const",
      "save/RestoreV2/tensor_names",
      "save/RestoreV2/shape_and_slices",
    ],
    { dtypes, _output_shapes: outputShapes(...vars.map(() => undefined)) },
    CPU_0,
  );
  const assigns = vars.map((v, i) => {
    const name = i === 0 ? "save/Assign" : `save/Assign_${i}`;
    g.op(name, "Assign", [v.name, i === 0 ? "save/RestoreV2" : `save/RestoreV2:${i}`], {
      T: attrValue.type(v.dtype),
      use_locking: attrValue.bool(true),
      validate_shape: attrValue.bool(true),
      _class: colocatedWith(v.name),
      _output_shapes: outputShapes(v.shape),
    });
    return `^${name}`;
  });
  g.op("save/restore_shard", "NoOp", assigns);
  g.op("save/restore_all", "NoOp", ["^save/restore_shard"]);

  return create(SaverDefSchema, {
    filenameTensorName: "save/Const:0",
    saveTensorName: "save/Identity:0",
    restoreOpName: "save/restore_all",
    maxToKeep: 5,
    sharded: true,
    keepCheckpointEveryNHours: 10000,
    version: SaverDef_CheckpointFormatVersion.V2,
  });
}

// ---------------------------------------------------------------------------------------------
// The SavedModel proto.

/** A variable of the graph to save, with its value. */
export interface ExportVariable {
  /** The VariableV2 node (made with {@link addVariable}); also the checkpoint key. */
  readonly name: string;
  /** The value saved in `variables/`. Its dtype and shape must match the node's. */
  readonly value: Tensor;
  /** The tensor it is initialised from (`zeros:0`), for `VariableDef.initial_value_name`. */
  readonly initialValue?: string;
  /** Listed in `trainable_variables` too (default true, as `tf.Variable`). */
  readonly trainable?: boolean;
}

/** What to export. */
export interface SavedModelSpec {
  /** The graph's nodes, variables included, without a saver (one is added under `save/`). */
  readonly nodes: readonly NodeDef[];
  /** Signatures by key. */
  readonly signatures: Readonly<Record<string, SignatureDef>>;
  /** The variables to save and restore. */
  readonly variables?: readonly ExportVariable[];
  /** The op run after restoring (`main_op`; e.g. `init_all_tables`). */
  readonly mainOp?: string;
  /** More collections (e.g. `table_initializer`). */
  readonly collections?: Readonly<Record<string, CollectionDef>>;
  /**
   * OpDefs to write instead of the registry's (`kernels/op_defs.ts`), e.g. another release's;
   * every other op's comes from the registry.
   */
  readonly opDefs?: readonly OpDef[];
  /** The MetaGraphDef's tags (default `["serve"]`). */
  readonly tags?: readonly string[];
  /** Drop attrs equal to their OpDef default (default true, as TF Serving's examples do). */
  readonly stripDefaultAttrs?: boolean;
  /** `meta_info_def.tensorflow_version` (default {@link TENSORFLOW_VERSION}). */
  readonly tensorflowVersion?: string;
  /** `meta_info_def.tensorflow_git_version` (default `unknown`). */
  readonly tensorflowGitVersion?: string;
}

function invalid(message: string): ServingError {
  return new ServingError(Code.INVALID_ARGUMENT, message);
}

/** A `node_list` collection. */
export function nodeListCollection(names: readonly string[]): CollectionDef {
  return create(CollectionDefSchema, {
    kind: { case: "nodeList", value: { value: [...names] } },
  });
}

/** Sorts a string-keyed record by key (deterministic serialization writes maps in key order). */
function sortedRecord<T>(r: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k];
  return out;
}

function attrDefault(op: OpDef, attr: string): AttrValue | undefined {
  return op.attr.find((a) => a.name === attr)?.defaultValue;
}

/** Reads a VariableV2 node's dtype and shape attrs. */
function variableSignature(node: NodeDef): { dtype: DataType; shape: number[] } | undefined {
  const dtype = node.attr.dtype?.value;
  const shape = node.attr.shape?.value;
  if (dtype?.case !== "type" || shape?.case !== "shape" || shape.value.unknownRank) {
    return undefined;
  }
  return { dtype: dtype.value, shape: shape.value.dim.map((d) => Number(d.size)) };
}

/**
 * Builds the SavedModel proto (without writing anything): the graph with the saver added, the
 * collections, the stripped op list, default attrs stripped, maps in key order.
 *
 * @throws ServingError INVALID_ARGUMENT for a variable that is not a VariableV2 node of the
 *   graph or whose value does not match it, a `save/` node already in the graph, a signature or
 *   main op naming a missing node, or an op without an OpDef
 */
export function buildSavedModel(spec: SavedModelSpec): SavedModel {
  const nodes = new Map<string, NodeDef>();
  for (const n of spec.nodes) {
    if (nodes.has(n.name)) throw invalid(`Cannot export the graph: duplicate node "${n.name}"`);
    if (n.name === "save" || n.name.startsWith("save/")) {
      throw invalid(`Cannot add the saver: the graph already has a node "${n.name}"`);
    }
    nodes.set(n.name, n);
  }
  const variables = spec.variables ?? [];
  const seen = new Set<string>();
  for (const v of variables) {
    const node = nodes.get(v.name);
    if (seen.has(v.name)) throw invalid(`Cannot export variable "${v.name}" twice`);
    seen.add(v.name);
    if (!node || node.op !== "VariableV2") {
      throw invalid(
        `Cannot export variable "${v.name}": the graph has no VariableV2 node by that name`,
      );
    }
    const sig = variableSignature(node);
    if (
      !sig || sig.dtype !== v.value.dtype || shapeString(sig.shape) !== shapeString(v.value.shape)
    ) {
      throw invalid(
        `Cannot export variable "${v.name}": its value is ${dtypeName(v.value.dtype)} ` +
          `${shapeString(v.value.shape)}, the node holds ${
            sig ? `${dtypeName(sig.dtype)} ${shapeString(sig.shape)}` : "an unknown shape"
          }`,
      );
    }
    for (const suffix of ["/Assign", "/read"]) {
      if (!nodes.has(`${v.name}${suffix}`)) {
        throw invalid(`Cannot export variable "${v.name}": the graph has no "${v.name}${suffix}"`);
      }
    }
  }

  // The saver goes after the model's nodes, as the builder creates it last.
  const saver = new GraphBuilder();
  const saverDef = variables.length > 0
    ? addSaver(
      saver,
      variables.map((v) => ({ name: v.name, dtype: v.value.dtype, shape: v.value.shape })),
    )
    : undefined;
  const all = [...spec.nodes, ...saver.nodes];
  const names = new Set(all.map((n) => n.name));
  const mustExist = (tensor: string, what: string) => {
    const node = tensor.replace(/^\^/, "").replace(/:\d+$/, "");
    if (!names.has(node)) throw invalid(`Cannot export: ${what} names a missing node "${node}"`);
  };
  for (const n of all) for (const i of n.input) mustExist(i, `the input of node "${n.name}"`);
  for (const [key, sig] of Object.entries(spec.signatures)) {
    for (const [alias, info] of [...Object.entries(sig.inputs), ...Object.entries(sig.outputs)]) {
      if (info.encoding.case === "name") {
        mustExist(info.encoding.value, `tensor "${alias}" of signature "${key}"`);
      }
    }
  }
  if (spec.mainOp !== undefined) mustExist(spec.mainOp, "the main op");

  // stripped_op_list: every op used, sorted by name.
  const opDefs = new Map<string, OpDef>();
  const used = [...new Set(all.map((n) => n.op))].sort();
  for (const op of used) {
    const d = registeredOpDef(op);
    if (d) opDefs.set(op, d);
  }
  for (const d of spec.opDefs ?? []) opDefs.set(d.name, d);
  const missing = used.filter((op) => !opDefs.has(op));
  if (missing.length > 0) {
    throw invalid(`Cannot export: no OpDef for op(s) ${missing.join(", ")} (pass them in opDefs)`);
  }
  const strip = spec.stripDefaultAttrs ?? true;
  const graphNodes = all.map((n) => {
    const op = opDefs.get(n.op)!;
    const attr: Record<string, AttrValue> = {};
    for (const k of Object.keys(n.attr).sort()) {
      const dflt = attrDefault(op, k);
      if (strip && dflt !== undefined && equals(AttrValueSchema, n.attr[k], dflt)) continue;
      attr[k] = n.attr[k];
    }
    // Graph::ToGraphDef sorts control inputs by name, after the data inputs.
    const data = n.input.filter((i) => !i.startsWith("^"));
    const control = n.input.filter((i) => i.startsWith("^")).sort();
    return create(NodeDefSchema, { ...n, input: [...data, ...control], attr });
  });

  const collections: Record<string, CollectionDef> = { ...spec.collections };
  if (variables.length > 0) {
    const defs = variables.map((v) =>
      toBinary(
        VariableDefSchema,
        create(VariableDefSchema, {
          variableName: `${v.name}:0`,
          initialValueName: v.initialValue ?? "",
          initializerName: `${v.name}/Assign`,
          snapshotName: `${v.name}/read:0`,
          trainable: v.trainable ?? true,
        }),
      )
    );
    collections[VARIABLES_COLLECTION] = create(CollectionDefSchema, {
      kind: { case: "bytesList", value: { value: defs } },
    });
    const trainable = defs.filter((_, i) => variables[i].trainable ?? true);
    if (trainable.length > 0) {
      collections[TRAINABLE_VARIABLES_COLLECTION] = create(CollectionDefSchema, {
        kind: { case: "bytesList", value: { value: trainable } },
      });
    }
  }
  if (spec.mainOp !== undefined) {
    collections[MAIN_OP_COLLECTION] = nodeListCollection([spec.mainOp]);
  }

  const metaGraph: MetaGraphDef = create(MetaGraphDefSchema, {
    metaInfoDef: {
      strippedOpList: { op: used.map((op) => opDefs.get(op)!) },
      tags: [...(spec.tags ?? [SERVING_TAG])],
      tensorflowVersion: spec.tensorflowVersion ?? TENSORFLOW_VERSION,
      tensorflowGitVersion: spec.tensorflowGitVersion ?? "unknown",
      strippedDefaultAttrs: strip,
    },
    graphDef: { node: graphNodes, versions: GRAPH_DEF_VERSIONS },
    saverDef,
    collectionDef: sortedRecord(collections),
    signatureDef: sortedRecord(
      Object.fromEntries(
        Object.entries(spec.signatures).map(([k, sig]) => [
          k,
          create(SignatureDefSchema, {
            ...sig,
            inputs: sortedRecord(sig.inputs),
            outputs: sortedRecord(sig.outputs),
          }),
        ]),
      ),
    ),
  });
  return create(SavedModelSchema, { savedModelSchemaVersion: 1n, metaGraphs: [metaGraph] });
}

// ---------------------------------------------------------------------------------------------
// Writing.

/** Options of {@link writeSavedModel}. */
export interface WriteOptions {
  /**
   * Called with the staging directory once every file is written and synced, just before it is
   * renamed into place (tests use it to simulate a crash or a competing writer).
   */
  readonly onStaged?: (stagingDir: string) => void | Promise<void>;
}

function writeError(e: unknown, exportDir: string): ServingError {
  if (e instanceof ServingError) return e;
  const detail = e instanceof Error ? e.message : String(e);
  const code = e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
    ? Code.PERMISSION_DENIED
    : e instanceof Deno.errors.NotFound
    ? Code.NOT_FOUND
    : e instanceof Deno.errors.AlreadyExists
    ? Code.ALREADY_EXISTS
    : Code.UNKNOWN;
  return new ServingError(code, `Cannot write SavedModel to ${exportDir}: ${detail}`, {
    cause: e,
  });
}

function alreadyExists(exportDir: string): ServingError {
  // SavedModelBuilder's wording.
  return new ServingError(
    Code.ALREADY_EXISTS,
    `Export directory already exists, and isn't empty. Please choose a different export ` +
      `directory, or delete all the contents of the specified directory: ${exportDir}`,
  );
}

/**
 * Fails if `exportDir` exists and is not an empty directory, as SavedModelBuilder refuses it.
 *
 * @returns true if it exists (as an empty directory)
 * @throws ServingError ALREADY_EXISTS with TensorFlow's message
 */
export async function checkExportDir(exportDir: string): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(exportDir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw writeError(e, exportDir);
  }
  if (!info.isDirectory) throw alreadyExists(exportDir);
  for await (const _ of Deno.readDir(exportDir)) throw alreadyExists(exportDir);
  return true;
}

/** Writes a file and flushes it to disk before returning. */
async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  using f = await Deno.open(path, { write: true, createNew: true });
  let done = 0;
  while (done < bytes.length) done += await f.write(bytes.subarray(done));
  await f.sync();
}

/** Flushes a directory's entries (new files, a rename) to disk. */
async function syncDir(path: string): Promise<void> {
  using d = await Deno.open(path, { read: true });
  await d.sync();
}

function randomSuffix(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Writes a SavedModel version directory atomically: everything goes into
 * `<parent>/.tmp-<name>-<random>`, is fsynced, then renamed to `exportDir`, so the version
 * appears complete or not at all (TF Serving's watcher ignores non-numeric names). An existing
 * non-empty `exportDir` is never overwritten; an existing empty one is replaced, as
 * SavedModelBuilder accepts it. On failure the staging directory is removed.
 *
 * @example
 * ```ts
 * await writeSavedModel("/tmp/mnist/1", { nodes: g.nodes, signatures, variables, mainOp });
 * ```
 * @throws ServingError ALREADY_EXISTS for a non-empty target; the {@link buildSavedModel} errors;
 *   file-system errors (PERMISSION_DENIED, …) naming the export directory
 */
export async function writeSavedModel(
  exportDir: string,
  spec: SavedModelSpec,
  options: WriteOptions = {},
): Promise<void> {
  // Everything that can be checked is checked before the disk is touched.
  const bytes = toBinary(SavedModelSchema, buildSavedModel(spec));
  const variables = [...(spec.variables ?? [])].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  const bundle = variables.length > 0
    ? encodeBundle(variables.map((v) => [v.name, v.value] as const))
    : undefined;
  await checkExportDir(exportDir);

  const parent = dirname(exportDir);
  const staging = join(parent, `.tmp-${basename(exportDir)}-${randomSuffix()}`);
  try {
    await Deno.mkdir(parent, { recursive: true });
    await Deno.mkdir(staging);
  } catch (e) {
    throw writeError(e, exportDir);
  }
  try {
    const varsDir = join(staging, dirname(VARIABLES_PREFIX));
    await Deno.mkdir(varsDir);
    if (bundle) {
      const prefix = join(staging, VARIABLES_PREFIX);
      // Data before index, as TF's BundleWriter: a present index means complete data.
      await writeSynced(dataFileName(prefix, 0, 1), bundle.data);
      await writeSynced(indexFileName(prefix), bundle.index);
    }
    await syncDir(varsDir);
    await writeSynced(join(staging, SAVED_MODEL_PB), bytes);
    await syncDir(staging);
    await options.onStaged?.(staging);
    // Checked again: another writer may have won meanwhile. rename(2) itself refuses a
    // non-empty directory, so a race past this check still cannot overwrite a version.
    if (await checkExportDir(exportDir)) await Deno.remove(exportDir);
    try {
      await Deno.rename(staging, exportDir);
    } catch (e) {
      if (e instanceof Error && /not empty|exists/i.test(e.message)) throw alreadyExists(exportDir);
      throw e;
    }
  } catch (e) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw writeError(e, exportDir);
  }
  // The version is in place; persisting the rename is best effort.
  await syncDir(parent).catch(() => {});
}
