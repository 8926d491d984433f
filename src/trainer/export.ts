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
import { opDefsFor } from "../kernels/op_defs.ts";
import { attrValue, GraphBuilder, signatureDef, tensorInfo } from "../graph/builder.ts";
import {
  addConst,
  addVariable,
  nodeListCollection,
  outputShapes,
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
 * OpDefs of the model's ops beyond the writer's own, from the project's OpDef registry
 * (`kernels/op_defs.ts`: TensorFlow 2.14's definitions, what TF 2.14 writes in the
 * `stripped_op_list`).
 */
export const MNIST_OP_DEFS: readonly OpDef[] = opDefsFor([
  "AddV2",
  "Cast",
  "Fill",
  "HashTableV2",
  "LookupTableFindV2",
  "LookupTableImportV2",
  "MatMul",
  "ParseExampleV2",
  "Range",
  "Softmax",
  "TopKV2",
]);

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
