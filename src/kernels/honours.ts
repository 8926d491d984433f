/**
 * What each kernel honours of its node's attrs: the declaration the load-time validation
 * (src/graph/validate.ts) holds every node that will run against, so an attr value a kernel
 * would silently ignore is refused with UNIMPLEMENTED instead of giving a wrong answer.
 *
 * Type attrs (`T`, `Tidx`, `dtype`, lists of types) and number attrs (`N`) need no declaration:
 * the validation checks them against the OpDef and the producers' dtypes, and each kernel
 * refuses a dtype it lacks when it is compiled; a kernel that declares the dtypes it has
 * (`T: { types: [...] }`, as the elementwise factories do) has them refused before that, with
 * the attr named. Every other attr of the op's OpDef is either declared (honoured for every
 * value, for listed values only, or ignored because no value changes a result on this runtime)
 * or must keep its OpDef default.
 *
 * A kernel may carry its own declaration (`Kernel.honours`), merged over this table's entry
 * for its op (the kernel's wins attr by attr); ops with neither are not checked (their kernels
 * validate their attrs when compiled).
 *
 * @module
 */
import type { DataType } from "../tensor/dtype.ts";

/**
 * How a kernel treats one attr: `"any"` honours every value the OpDef allows; `"ignored"`
 * means no value changes what this runtime computes (GPU, locking and scheduling hints, shape
 * annotations); a list names the only values honoured; `{ types }` names the dtypes a type
 * attr (or each entry of a list(type) attr) may take.
 */
export type HonouredValues =
  | "any"
  | "ignored"
  | readonly (string | number | boolean)[]
  | { readonly types: readonly DataType[] };

/** Attr name → how the kernel treats it. */
export type Honours = Readonly<Record<string, HonouredValues>>;

const ANY = "any" as const;
/** A value that changes nothing here: GPU choice, locking, scheduling, shape annotations. */
const IGNORED = "ignored" as const;

const REDUCE: Honours = { keep_dims: ANY };
const CONV: Honours = {
  strides: ANY,
  padding: ANY,
  explicit_paddings: ANY,
  data_format: ANY,
  dilations: ANY,
  use_cudnn_on_gpu: IGNORED,
};
const DEPTHWISE: Honours = {
  strides: ANY,
  padding: ANY,
  explicit_paddings: ANY,
  data_format: ANY,
  dilations: ANY,
};
const FUSED: Honours = { fused_ops: ANY, epsilon: ANY, leakyrelu_alpha: ANY };
const BATCH_NORM: Honours = {
  epsilon: ANY,
  exponential_avg_factor: ANY,
  data_format: ANY,
  is_training: ANY,
};
const TABLE: Honours = { container: ANY, shared_name: ANY, use_node_name_sharing: IGNORED };
const TEXT_FILE_INIT: Honours = {
  key_index: ANY,
  value_index: ANY,
  vocab_size: ANY,
  delimiter: ANY,
  offset: ANY,
};
const CALL: Honours = { f: ANY, config: IGNORED, config_proto: IGNORED, executor_type: IGNORED };
const IF: Honours = { then_branch: ANY, else_branch: ANY, output_shapes: IGNORED };
const CASE: Honours = { branches: ANY, output_shapes: IGNORED };
const WHILE: Honours = {
  cond: ANY,
  body: ANY,
  output_shapes: IGNORED,
  parallel_iterations: IGNORED,
};
const VARIABLE: Honours = { container: ANY, shared_name: ANY, shape: IGNORED };

/**
 * The shipped kernels' declarations, from reading each kernel's compile step: which attrs it
 * reads and acts on. Ops whose OpDef has only type and number attrs need none.
 */
export const KERNEL_HONOURS: Readonly<Record<string, Honours>> = {
  All: REDUCE,
  Any: REDUCE,
  Max: REDUCE,
  Mean: REDUCE,
  Min: REDUCE,
  Prod: REDUCE,
  Sum: REDUCE,
  AsString: { precision: ANY, scientific: ANY, shortest: ANY, width: ANY, fill: ANY },
  Assign: { validate_shape: ANY, use_locking: IGNORED },
  AssignAdd: { use_locking: IGNORED },
  AssignSub: { use_locking: IGNORED },
  AssignVariableOp: { validate_shape: ANY },
  AvgPool: { ksize: ANY, strides: ANY, padding: ANY, data_format: ANY },
  MaxPool: { ksize: ANY, strides: ANY, padding: ANY, explicit_paddings: ANY, data_format: ANY },
  MaxPoolV2: { padding: ANY, data_format: ANY },
  BatchMatMul: { adj_x: ANY, adj_y: ANY },
  BatchMatMulV2: { adj_x: ANY, adj_y: ANY },
  BatchMatMulV3: { adj_x: ANY, adj_y: ANY },
  MatMul: { transpose_a: ANY, transpose_b: ANY },
  _FusedMatMul: { transpose_a: ANY, transpose_b: ANY, ...FUSED },
  BiasAdd: { data_format: ANY },
  Cast: { Truncate: ANY },
  Const: { value: ANY },
  Conv2D: CONV,
  Conv2DBackpropInput: CONV,
  DepthwiseConv2dNative: DEPTHWISE,
  _FusedConv2D: { ...CONV, ...FUSED },
  _FusedDepthwiseConv2dNative: {
    strides: ANY,
    padding: ANY,
    data_format: ANY,
    dilations: ANY,
    ...FUSED,
  },
  Cumprod: { exclusive: ANY, reverse: ANY },
  Cumsum: { exclusive: ANY, reverse: ANY },
  DestroyResourceOp: { ignore_lookup_error: IGNORED },
  Einsum: { equation: ANY },
  EnsureShape: { shape: ANY },
  Equal: { incompatible_shape_error: ANY },
  NotEqual: { incompatible_shape_error: ANY },
  FusedBatchNorm: BATCH_NORM,
  FusedBatchNormV2: BATCH_NORM,
  FusedBatchNormV3: BATCH_NORM,
  // validate_indices is deprecated: TensorFlow's CPU kernel always validates.
  Gather: { validate_indices: IGNORED },
  GatherV2: { batch_dims: ANY },
  HashTable: TABLE,
  HashTableV2: TABLE,
  MutableHashTable: TABLE,
  MutableHashTableV2: TABLE,
  InitializeTableFromTextFile: TEXT_FILE_INIT,
  InitializeTableFromTextFileV2: TEXT_FILE_INIT,
  LeakyRelu: { alpha: ANY },
  MirrorPad: { mode: ANY },
  OneHot: { axis: ANY },
  Pack: { axis: ANY },
  Unpack: { axis: ANY },
  ParseExample: { dense_shapes: ANY },
  ParseExampleV2: { dense_shapes: ANY },
  ParseSingleExample: { sparse_keys: ANY, dense_keys: ANY, dense_shapes: ANY },
  PartitionedCall: CALL,
  StatefulPartitionedCall: CALL,
  If: IF,
  StatelessIf: IF,
  Case: CASE,
  StatelessCase: CASE,
  While: WHILE,
  StatelessWhile: WHILE,
  Placeholder: { shape: ANY },
  PlaceholderWithDefault: { shape: ANY },
  PreventGradient: { message: IGNORED },
  ReduceJoin: { keep_dims: ANY, separator: ANY },
  RegexReplace: { replace_global: ANY },
  StaticRegexFullMatch: { pattern: ANY },
  StaticRegexReplace: { pattern: ANY, rewrite: ANY, replace_global: ANY },
  ResizeBilinear: { align_corners: ANY, half_pixel_centers: ANY },
  ResizeNearestNeighbor: { align_corners: ANY, half_pixel_centers: ANY },
  Squeeze: { squeeze_dims: ANY },
  StridedSlice: {
    begin_mask: ANY,
    end_mask: ANY,
    ellipsis_mask: ANY,
    new_axis_mask: ANY,
    shrink_axis_mask: ANY,
  },
  StringJoin: { separator: ANY },
  TopKV2: { sorted: ANY },
  // Kernels added for real-world graphs (layout, NMS, random, TensorArray/TensorList, TF1 loops).
  BatchToSpace: { block_size: ANY },
  SpaceToBatch: { block_size: ANY },
  DepthToSpace: { block_size: ANY, data_format: ["NHWC"] },
  SpaceToDepth: { block_size: ANY, data_format: ["NHWC"] },
  CombinedNonMaxSuppression: { pad_per_class: ANY, clip_boxes: ANY },
  NonMaxSuppression: { iou_threshold: ANY },
  NonMaxSuppressionV4: { pad_to_max_output_size: ANY },
  NonMaxSuppressionV5: { pad_to_max_output_size: ANY },
  RandomStandardNormal: { seed: ANY, seed2: ANY },
  RandomUniform: { seed: ANY, seed2: ANY },
  RandomUniformInt: { seed: ANY, seed2: ANY },
  TruncatedNormal: { seed: ANY, seed2: ANY },
  // Iterations run one at a time, a valid schedule for any parallel_iterations.
  Enter: { frame_name: ANY, is_constant: ANY, parallel_iterations: IGNORED },
  RefEnter: { frame_name: ANY, is_constant: ANY, parallel_iterations: IGNORED },
  TensorArrayV3: {
    element_shape: ANY,
    dynamic_size: ANY,
    clear_after_read: ANY,
    identical_element_shapes: ANY,
    tensor_array_name: ANY,
  },
  TensorArrayConcatV3: { element_shape_except0: ANY },
  TensorArrayGatherV3: { element_shape: ANY },
  TensorListSetItem: { resize_if_index_out_of_bounds: ANY },
  TensorListStack: { num_elements: ANY },
  VarHandleOp: { container: ANY, shared_name: ANY, shape: IGNORED, allowed_devices: IGNORED },
  Variable: VARIABLE,
  VariableV2: VARIABLE,
};
