/**
 * The SavedModel `mnist_saved_model.py` exports, built node by node as TensorFlow 2.x names and
 * attributes them when the script runs with TF1 reference variables:
 *
 * ```text
 * tf_example (Placeholder, string) → ParseExample/ParseExampleV2 (feature "x", float [784])
 *   → x (Identity) → MatMul(x, Variable/read) → add (+ Variable_1/read) → y (Softmax)
 * y → TopKV2 (k = 10) → values: the classify scores
 *                     → indices → Cast (int64) → hash_table_Lookup/LookupTableFindV2: classes
 * index_to_string/hash_table (HashTableV2 int64 → string), filled by
 *   index_to_string/table_init/LookupTableImportV2 with keys 0..9 and values "0".."9",
 *   run by the main op init_all_tables
 * Variable (W, 784×10) and Variable_1 (b, 10): VariableV2 initialised from zeros / zeros_1
 * ```
 *
 * Signatures: `predict_images` (`images` = x:0 → `scores` = y:0) and `serving_default`
 * (classify: `inputs` = tf_example:0 → `classes`, `scores`). The training part of the script's
 * graph (the `y_` placeholder, the loss, its gradients and the accuracy) is not exported: serving
 * never runs it.
 *
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { AttrValueSchema } from "../proto/gen/tensorflow/core/framework/attr_value_pb.ts";
import type { OpDef } from "../proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { Code, ServingError } from "../errors.ts";
import { attrValue, GraphBuilder, signatureDef, tensorInfo } from "../graph/builder.ts";
import {
  addConst,
  addVariable,
  nodeListCollection,
  outputShapes,
  parseOpDefs,
  type SavedModelSpec,
  TABLE_INITIALIZERS_COLLECTION,
  type WriteOptions,
  writeSavedModel,
} from "../saved_model/writer.ts";
import { DataType } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import { NUM_CLASSES } from "./mnist_data.ts";
import {
  CLASSIFY_METHOD_NAME,
  DEFAULT_SERVING_SIGNATURE_DEF_KEY,
  PREDICT_METHOD_NAME,
} from "../servables/model_spec.ts";

/** Pixels per image. */
export const IMAGE_SIZE = 784;
/** The classify signature's key. */
const DEFAULT_SIGNATURE = DEFAULT_SERVING_SIGNATURE_DEF_KEY;
/** The predict signature's key. */
export const PREDICT_SIGNATURE = "predict_images";
/** The tensor the classify signature's `classes` output reads. */
export const CLASSES_TENSOR = "hash_table_Lookup/LookupTableFindV2:0";
/** The op that fills the class-name table. */
export const TABLE_INIT_OP = "index_to_string/table_init/LookupTableImportV2";

/**
 * OpDefs of the model's ops beyond the writer's own, as TensorFlow 2.14 registers them:
 * AddV2 and ParseExampleV2 verbatim from the TF 2.14 testdata model's `stripped_op_list`, the
 * others from TensorFlow's op history (`core/ops/compat/ops_history_v2/*.pbtxt`).
 */
export const MNIST_OP_DEFS: readonly OpDef[] = parseOpDefs(`
op {
  name: "AddV2"
  input_arg { name: "x" type_attr: "T" }
  input_arg { name: "y" type_attr: "T" }
  output_arg { name: "z" type_attr: "T" }
  attr { name: "T" type: "type" allowed_values { list { type: [DT_BFLOAT16, DT_HALF, DT_FLOAT, DT_DOUBLE, DT_UINT8, DT_UINT16, DT_UINT32, DT_UINT64, DT_INT8, DT_INT16, DT_INT32, DT_INT64, DT_COMPLEX64, DT_COMPLEX128] } } }
  is_commutative: true
  is_aggregate: true
}
op {
  name: "Cast"
  input_arg { name: "x" type_attr: "SrcT" }
  output_arg { name: "y" type_attr: "DstT" }
  attr { name: "SrcT" type: "type" }
  attr { name: "DstT" type: "type" }
  attr { name: "Truncate" type: "bool" default_value { b: false } }
}
op {
  name: "Fill"
  input_arg { name: "dims" type_attr: "index_type" }
  input_arg { name: "value" type_attr: "T" }
  output_arg { name: "output" type_attr: "T" }
  attr { name: "T" type: "type" }
  attr { name: "index_type" type: "type" default_value { type: DT_INT32 } allowed_values { list { type: [DT_INT32, DT_INT64] } } }
}
op {
  name: "HashTableV2"
  output_arg { name: "table_handle" type: DT_RESOURCE }
  attr { name: "container" type: "string" default_value { s: "" } }
  attr { name: "shared_name" type: "string" default_value { s: "" } }
  attr { name: "use_node_name_sharing" type: "bool" default_value { b: false } }
  attr { name: "key_dtype" type: "type" }
  attr { name: "value_dtype" type: "type" }
  is_stateful: true
}
op {
  name: "LookupTableFindV2"
  input_arg { name: "table_handle" type: DT_RESOURCE }
  input_arg { name: "keys" type_attr: "Tin" }
  input_arg { name: "default_value" type_attr: "Tout" }
  output_arg { name: "values" type_attr: "Tout" }
  attr { name: "Tin" type: "type" }
  attr { name: "Tout" type: "type" }
  is_stateful: true
}
op {
  name: "LookupTableImportV2"
  input_arg { name: "table_handle" type: DT_RESOURCE }
  input_arg { name: "keys" type_attr: "Tin" }
  input_arg { name: "values" type_attr: "Tout" }
  attr { name: "Tin" type: "type" }
  attr { name: "Tout" type: "type" }
  is_stateful: true
}
op {
  name: "MatMul"
  input_arg { name: "a" type_attr: "T" }
  input_arg { name: "b" type_attr: "T" }
  output_arg { name: "product" type_attr: "T" }
  attr { name: "transpose_a" type: "bool" default_value { b: false } }
  attr { name: "transpose_b" type: "bool" default_value { b: false } }
  attr { name: "T" type: "type" allowed_values { list { type: [DT_BFLOAT16, DT_HALF, DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_UINT8, DT_UINT16, DT_UINT32, DT_UINT64, DT_COMPLEX64, DT_COMPLEX128] } } }
}
op {
  name: "ParseExampleV2"
  input_arg { name: "serialized" type: DT_STRING }
  input_arg { name: "names" type: DT_STRING }
  input_arg { name: "sparse_keys" type: DT_STRING }
  input_arg { name: "dense_keys" type: DT_STRING }
  input_arg { name: "ragged_keys" type: DT_STRING }
  input_arg { name: "dense_defaults" type_list_attr: "Tdense" }
  output_arg { name: "sparse_indices" type: DT_INT64 number_attr: "num_sparse" }
  output_arg { name: "sparse_values" type_list_attr: "sparse_types" }
  output_arg { name: "sparse_shapes" type: DT_INT64 number_attr: "num_sparse" }
  output_arg { name: "dense_values" type_list_attr: "Tdense" }
  output_arg { name: "ragged_values" type_list_attr: "ragged_value_types" }
  output_arg { name: "ragged_row_splits" type_list_attr: "ragged_split_types" }
  attr { name: "Tdense" type: "list(type)" has_minimum: true allowed_values { list { type: [DT_FLOAT, DT_INT64, DT_STRING] } } }
  attr { name: "num_sparse" type: "int" has_minimum: true }
  attr { name: "sparse_types" type: "list(type)" has_minimum: true allowed_values { list { type: [DT_FLOAT, DT_INT64, DT_STRING] } } }
  attr { name: "ragged_value_types" type: "list(type)" has_minimum: true allowed_values { list { type: [DT_FLOAT, DT_INT64, DT_STRING] } } }
  attr { name: "ragged_split_types" type: "list(type)" has_minimum: true allowed_values { list { type: [DT_INT32, DT_INT64] } } }
  attr { name: "dense_shapes" type: "list(shape)" has_minimum: true }
}
op {
  name: "Range"
  input_arg { name: "start" type_attr: "Tidx" }
  input_arg { name: "limit" type_attr: "Tidx" }
  input_arg { name: "delta" type_attr: "Tidx" }
  output_arg { name: "output" type_attr: "Tidx" }
  attr { name: "Tidx" type: "type" default_value { type: DT_INT32 } allowed_values { list { type: [DT_BFLOAT16, DT_HALF, DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64] } } }
}
op {
  name: "Softmax"
  input_arg { name: "logits" type_attr: "T" }
  output_arg { name: "softmax" type_attr: "T" }
  attr { name: "T" type: "type" allowed_values { list { type: [DT_HALF, DT_BFLOAT16, DT_FLOAT, DT_DOUBLE] } } }
}
op {
  name: "TopKV2"
  input_arg { name: "input" type_attr: "T" }
  input_arg { name: "k" type: DT_INT32 }
  output_arg { name: "values" type_attr: "T" }
  output_arg { name: "indices" type: DT_INT32 }
  attr { name: "sorted" type: "bool" default_value { b: true } }
  attr { name: "T" type: "type" allowed_values { list { type: [DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_INT64, DT_BFLOAT16, DT_UINT16, DT_HALF, DT_UINT32, DT_UINT64] } } }
}
`);

/** The trained parameters. */
export interface MnistParameters {
  /** W, row-major `[784, 10]`. */
  readonly weights: Float32Array;
  /** b, `[10]`. */
  readonly biases: Float32Array;
}

/** Options of {@link mnistSavedModel}. */
export interface MnistExportOptions {
  /**
   * The class-name table's `shared_name` (TF makes `hash_table_<uuid4>`; default a fresh one).
   * Give a fixed one for byte-identical exports.
   */
  readonly tableSharedName?: string;
}

/**
 * The SavedModel spec of the MNIST model with the given parameters: graph, signatures,
 * variables, main op and collections, for {@link writeSavedModel}.
 *
 * @throws ServingError INVALID_ARGUMENT for parameters of the wrong size
 */
export function mnistSavedModel(
  params: MnistParameters,
  options: MnistExportOptions = {},
): SavedModelSpec {
  if (
    params.weights.length !== IMAGE_SIZE * NUM_CLASSES || params.biases.length !== NUM_CLASSES
  ) {
    throw new ServingError(
      Code.INVALID_ARGUMENT,
      `Cannot export the MNIST model: W has ${params.weights.length} values (want ` +
        `${IMAGE_SIZE * NUM_CLASSES}), b has ${params.biases.length} (want ${NUM_CLASSES})`,
    );
  }
  const F = DataType.DT_FLOAT;
  const S = DataType.DT_STRING;
  const I32 = DataType.DT_INT32;
  const I64 = DataType.DT_INT64;
  const batch = [-1, NUM_CLASSES];
  const g = new GraphBuilder();

  // serialized_tf_example = tf.compat.v1.placeholder(tf.string, name='tf_example')
  g.op("tf_example", "Placeholder", [], {
    dtype: attrValue.type(S),
    shape: create(AttrValueSchema, { value: { case: "shape", value: { unknownRank: true } } }),
    _output_shapes: outputShapes(undefined),
  });
  // tf.io.parse_example(serialized_tf_example, {'x': FixedLenFeature([784], tf.float32)})
  addConst(g, "ParseExample/Const", new Tensor(F, [0], new Float32Array(0)));
  addConst(g, "ParseExample/ParseExampleV2/names", Tensor.strings([], [0]));
  addConst(g, "ParseExample/ParseExampleV2/sparse_keys", Tensor.strings([], [0]));
  addConst(g, "ParseExample/ParseExampleV2/dense_keys", Tensor.strings(["x"], [1]));
  addConst(g, "ParseExample/ParseExampleV2/ragged_keys", Tensor.strings([], [0]));
  g.op("ParseExample/ParseExampleV2", "ParseExampleV2", [
    "tf_example",
    "ParseExample/ParseExampleV2/names",
    "ParseExample/ParseExampleV2/sparse_keys",
    "ParseExample/ParseExampleV2/dense_keys",
    "ParseExample/ParseExampleV2/ragged_keys",
    "ParseExample/Const",
  ], {
    Tdense: attrValue.types([F]),
    dense_shapes: attrValue.shapes([[IMAGE_SIZE]]),
    num_sparse: attrValue.int(0),
    ragged_split_types: attrValue.types([]),
    ragged_value_types: attrValue.types([]),
    sparse_types: attrValue.types([]),
    _output_shapes: outputShapes([-1, IMAGE_SIZE]),
  });
  // x = tf.identity(tf_example['x'], name='x')
  g.op("x", "Identity", ["ParseExample/ParseExampleV2"], {
    T: attrValue.type(F),
    _output_shapes: outputShapes([-1, IMAGE_SIZE]),
  });

  // w = tf.Variable(tf.zeros([784, 10])): 7840 zeros make a Fill (a Const only under 1000).
  addConst(g, "zeros/shape_as_tensor", Tensor.int32([IMAGE_SIZE, NUM_CLASSES]));
  addConst(g, "zeros/Const", Tensor.scalar(F, 0));
  g.op("zeros", "Fill", ["zeros/shape_as_tensor", "zeros/Const"], {
    T: attrValue.type(F),
    index_type: attrValue.type(I32),
    _output_shapes: outputShapes([IMAGE_SIZE, NUM_CLASSES]),
  });
  const w = addVariable(g, "Variable", "zeros", F, [IMAGE_SIZE, NUM_CLASSES]);
  // b = tf.Variable(tf.zeros([10]))
  addConst(g, "zeros_1", { dtype: F, shape: [NUM_CLASSES], fill: 0 });
  const b = addVariable(g, "Variable_1", "zeros_1", F, [NUM_CLASSES]);
  // sess.run(tf.compat.v1.global_variables_initializer())
  g.op("init", "NoOp", [`^${w.initializer}`, `^${b.initializer}`]);

  // y = tf.nn.softmax(tf.matmul(x, w) + b, name='y')
  g.op("MatMul", "MatMul", ["x", "Variable/read"], {
    T: attrValue.type(F),
    transpose_a: attrValue.bool(false),
    transpose_b: attrValue.bool(false),
    _output_shapes: outputShapes(batch),
  });
  g.op("add", "AddV2", ["MatMul", "Variable_1/read"], {
    T: attrValue.type(F),
    _output_shapes: outputShapes(batch),
  });
  g.op("y", "Softmax", ["add"], { T: attrValue.type(F), _output_shapes: outputShapes(batch) });

  // values, indices = tf.nn.top_k(y, 10)
  addConst(g, "TopKV2/k", Tensor.scalar(I32, NUM_CLASSES));
  g.op("TopKV2", "TopKV2", ["y", "TopKV2/k"], {
    T: attrValue.type(F),
    sorted: attrValue.bool(true),
    _output_shapes: outputShapes(batch, batch),
  });

  // table = lookup_ops.index_to_string_table_from_tensor(tf.constant([str(i) for i in range(10)]))
  addConst(g, "Const", Tensor.strings(Array.from({ length: NUM_CLASSES }, (_, i) => `${i}`)));
  // array_ops.size of a fully defined shape folds to a constant.
  addConst(g, "index_to_string/Size", Tensor.scalar(I32, NUM_CLASSES));
  addConst(g, "index_to_string/range/start", Tensor.scalar(I32, 0));
  addConst(g, "index_to_string/range/delta", Tensor.scalar(I32, 1));
  g.op("index_to_string/range", "Range", [
    "index_to_string/range/start",
    "index_to_string/Size",
    "index_to_string/range/delta",
  ], { Tidx: attrValue.type(I32), _output_shapes: outputShapes([NUM_CLASSES]) });
  g.op("index_to_string/Cast", "Cast", ["index_to_string/range"], {
    DstT: attrValue.type(I64),
    SrcT: attrValue.type(I32),
    Truncate: attrValue.bool(false),
    _output_shapes: outputShapes([NUM_CLASSES]),
  });
  addConst(g, "index_to_string/Const", Tensor.strings(["UNK"], []));
  g.op("index_to_string/hash_table", "HashTableV2", [], {
    container: attrValue.string(""),
    key_dtype: attrValue.type(I64),
    shared_name: attrValue.string(options.tableSharedName ?? `hash_table_${crypto.randomUUID()}`),
    use_node_name_sharing: attrValue.bool(false),
    value_dtype: attrValue.type(S),
    _output_shapes: outputShapes([]),
  });
  g.op(TABLE_INIT_OP, "LookupTableImportV2", [
    "index_to_string/hash_table",
    "index_to_string/Cast",
    "Const",
  ], { Tin: attrValue.type(I64), Tout: attrValue.type(S) });

  // prediction_classes = table.lookup(tf.dtypes.cast(indices, tf.int64))
  g.op("Cast", "Cast", ["TopKV2:1"], {
    DstT: attrValue.type(I64),
    SrcT: attrValue.type(I32),
    Truncate: attrValue.bool(false),
    _output_shapes: outputShapes(batch),
  });
  g.op("hash_table_Lookup/LookupTableFindV2", "LookupTableFindV2", [
    "index_to_string/hash_table",
    "Cast",
    "index_to_string/Const",
  ], { Tin: attrValue.type(I64), Tout: attrValue.type(S), _output_shapes: outputShapes(batch) });

  // main_op=tf.compat.v1.tables_initializer()
  g.op("init_all_tables", "NoOp", [`^${TABLE_INIT_OP}`]);

  return {
    nodes: g.nodes,
    signatures: {
      [PREDICT_SIGNATURE]: signatureDef(
        { images: tensorInfo("x:0", F, [-1, IMAGE_SIZE]) },
        { scores: tensorInfo("y:0", F, batch) },
        PREDICT_METHOD_NAME,
      ),
      [DEFAULT_SIGNATURE]: signatureDef(
        { inputs: tensorInfo("tf_example:0", S) },
        {
          classes: tensorInfo(CLASSES_TENSOR, S, batch),
          scores: tensorInfo("TopKV2:0", F, batch),
        },
        CLASSIFY_METHOD_NAME,
      ),
    },
    variables: [
      {
        name: "Variable",
        value: new Tensor(F, [IMAGE_SIZE, NUM_CLASSES], params.weights),
        initialValue: "zeros:0",
      },
      {
        name: "Variable_1",
        value: new Tensor(F, [NUM_CLASSES], params.biases),
        initialValue: "zeros_1:0",
      },
    ],
    mainOp: "init_all_tables",
    collections: { [TABLE_INITIALIZERS_COLLECTION]: nodeListCollection([TABLE_INIT_OP]) },
    opDefs: MNIST_OP_DEFS,
  };
}

/**
 * Writes the trained MNIST model to `exportDir` (`EXPORT_BASE/VERSION`) atomically.
 *
 * @throws ServingError ALREADY_EXISTS if `exportDir` exists and is not empty; the writer's
 *   file-system errors
 */
export async function exportMnistModel(
  exportDir: string,
  params: MnistParameters,
  options: MnistExportOptions & WriteOptions = {},
): Promise<void> {
  await writeSavedModel(exportDir, mnistSavedModel(params, options), options);
}
