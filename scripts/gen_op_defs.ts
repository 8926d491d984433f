/**
 * Regenerates `src/kernels/op_defs_data.ts`: the OpDefs of the ops the project implements (or
 * is about to), taken verbatim from a TensorFlow release's `ops.pbtxt` (the OpList TensorFlow
 * generates from `tensorflow/core/ops/*.cc`), one op per line. The checked-in data came from the
 * copy TensorFlow Java generates when it builds against a release
 * (`tensorflow-core/tensorflow-core-native/src/gen/resources/org/tensorflow/ops.pbtxt` of the
 * tensorflow/java commit whose WORKSPACE builds `tensorflow-2.14.0`); its OpDefs equal, one for
 * one, those TensorFlow 2.14 writes in the testdata's `stripped_op_list` (tests/graph/).
 *
 * Usage: `deno run --allow-read --allow-write scripts/gen_op_defs.ts <ops.pbtxt> <tf version>`
 *
 * The op list below names every op to keep: the kernels of `src/kernels/mod.ts`, the ops the
 * SavedModel writer emits, and the ops of graphs the runtime is being taught (TF1 control flow,
 * TensorArray/TensorList, NMS, random ops, layout ops). Ops TensorFlow registers with a leading
 * underscore are not in `ops.pbtxt`; `op_defs.ts` holds those by hand.
 *
 * @module
 */
import { toText } from "@bufbuild/protobuf/txtpb";
import { fromText } from "@bufbuild/protobuf/txtpb";
import { OpDefSchema, OpListSchema } from "../src/proto/gen/tensorflow/core/framework/op_def_pb.ts";
import { defaultRegistry } from "../src/kernels/mod.ts";

/** Ops kept besides the registry's kernels. */
const EXTRA_OPS = [
  // What the SavedModel writer and TF's own savers put in graphs.
  "DisableCopyOnRead",
  "MergeV2Checkpoints",
  "SaveV2",
  "Save",
  "SaveSlices",
  "Restore",
  "RestoreSlice",
  // Common graph plumbing.
  "Assert",
  "Print",
  "PrintV2",
  "ControlTrigger",
  "Abort",
  // TF1 control flow.
  "Switch",
  "Merge",
  "Enter",
  "Exit",
  "NextIteration",
  "LoopCond",
  "RefSwitch",
  "RefMerge",
  "RefEnter",
  "RefExit",
  "RefNextIteration",
  "RefSelect",
  "RefIdentity",
  // Layout ops.
  "DepthToSpace",
  "SpaceToDepth",
  "SpaceToBatchND",
  "BatchToSpaceND",
  "SpaceToBatch",
  "BatchToSpace",
  "MirrorPad",
  // Non-max suppression.
  "NonMaxSuppression",
  "NonMaxSuppressionV2",
  "NonMaxSuppressionV3",
  "NonMaxSuppressionV4",
  "NonMaxSuppressionV5",
  "NonMaxSuppressionWithOverlaps",
  "CombinedNonMaxSuppression",
  // Random ops.
  "RandomUniform",
  "RandomStandardNormal",
  "TruncatedNormal",
  "RandomUniformInt",
  "RandomShuffle",
  "Multinomial",
  "StatelessRandomUniform",
  "StatelessRandomNormal",
  "StatelessTruncatedNormal",
  "StatelessRandomUniformInt",
  "StatelessRandomUniformFullInt",
  "StatelessRandomUniformV2",
  "StatelessRandomNormalV2",
  "StatelessTruncatedNormalV2",
  "StatelessRandomUniformIntV2",
  "StatelessRandomUniformFullIntV2",
  "StatelessRandomGetKeyCounter",
  "StatelessRandomGetAlg",
  "StatelessRandomGetKeyCounterAlg",
  "StatelessMultinomial",
  "StatelessParameterizedTruncatedNormal",
  "StatelessRandomBinomial",
  "StatelessRandomGammaV2",
  "StatelessRandomGammaV3",
  "StatelessRandomPoisson",
  "StatelessShuffle",
  // TensorArray (V3, what tf.TensorArray builds in TF1 graphs).
  "TensorArrayV3",
  "TensorArrayReadV3",
  "TensorArrayWriteV3",
  "TensorArrayGatherV3",
  "TensorArrayScatterV3",
  "TensorArrayConcatV3",
  "TensorArraySplitV3",
  "TensorArraySizeV3",
  "TensorArrayCloseV3",
  "TensorArrayGradV3",
  "TensorArrayGradWithShape",
  // TensorList (what tf.TensorArray builds in TF2 graphs).
  "EmptyTensorList",
  "TensorListConcat",
  "TensorListConcatLists",
  "TensorListConcatV2",
  "TensorListElementShape",
  "TensorListFromTensor",
  "TensorListGather",
  "TensorListGetItem",
  "TensorListLength",
  "TensorListPopBack",
  "TensorListPushBack",
  "TensorListPushBackBatch",
  "TensorListReserve",
  "TensorListResize",
  "TensorListScatter",
  "TensorListScatterIntoExistingList",
  "TensorListScatterV2",
  "TensorListSetItem",
  "TensorListSplit",
  "TensorListStack",
  // Inference ops real graphs use that a kernel may be added for (so a new kernel finds its
  // OpDef here): math, array, image, string, sparse, segment, quantization.
  "Acosh",
  "Asinh",
  "Atanh",
  "ApproximateEqual",
  "BiasAddGrad",
  "Bincount",
  "Bitcast",
  "BitwiseAnd",
  "BitwiseOr",
  "BitwiseXor",
  "BroadcastArgs",
  "BroadcastGradientArgs",
  "Bucketize",
  "CheckNumerics",
  "ClipByValue",
  "Complex",
  "ComplexAbs",
  "Conv2DBackpropFilter",
  "Conv3D",
  "Conv3DBackpropInputV2",
  "CropAndResize",
  "DataFormatDimMap",
  "DataFormatVecPermute",
  "DecodeBase64",
  "DecodeJpeg",
  "DecodePng",
  "DecodeImage",
  "DecodeRaw",
  "DenseBincount",
  "Dequantize",
  "Diag",
  "DiagPart",
  "Digamma",
  "Dilation2D",
  "DynamicPartition",
  "DynamicStitch",
  "EncodeBase64",
  "EncodeJpeg",
  "EncodePng",
  "ExtractImagePatches",
  "FakeQuantWithMinMaxArgs",
  "FakeQuantWithMinMaxVars",
  "FakeQuantWithMinMaxVarsPerChannel",
  "FloorDiv",
  "FusedPadConv2D",
  "FusedResizeAndPadConv2D",
  "HSVToRGB",
  "Igamma",
  "Igammac",
  "Imag",
  "InTopKV2",
  "InvertPermutation",
  "L2Loss",
  "LRN",
  "LeftShift",
  "Lgamma",
  "LinSpace",
  "ListDiff",
  "LowerBound",
  "MatrixBandPart",
  "MatrixDeterminant",
  "MatrixDiag",
  "MatrixDiagPart",
  "MatrixDiagPartV3",
  "MatrixDiagV3",
  "MatrixInverse",
  "MatrixSetDiag",
  "MatrixSetDiagV3",
  "MatrixSolve",
  "MatrixTriangularSolve",
  "MaxPool3D",
  "AvgPool3D",
  "MaxPoolWithArgmax",
  "NthElement",
  "ParallelConcat",
  "ParallelDynamicStitch",
  "ParameterizedTruncatedNormal",
  "PopulationCount",
  "QuantizeAndDequantizeV2",
  "QuantizeAndDequantizeV3",
  "QuantizeAndDequantizeV4",
  "QuantizeV2",
  "RGBToHSV",
  "RaggedGather",
  "RaggedRange",
  "RaggedTensorToTensor",
  "RandomGamma",
  "RandomPoissonV2",
  "Real",
  "Relu6",
  "ResizeArea",
  "ResizeBicubic",
  "ReverseSequence",
  "RightShift",
  "Roll",
  "ScatterNd",
  "SegmentMax",
  "SegmentMean",
  "SegmentMin",
  "SegmentProd",
  "SegmentSum",
  "SparseFillEmptyRows",
  "SparseReshape",
  "SparseSegmentMean",
  "SparseSegmentSqrtN",
  "SparseSegmentSum",
  "SparseTensorDenseMatMul",
  "SparseToDense",
  "StringFormat",
  "StringLength",
  "StringLower",
  "StringSplit",
  "StringSplitV2",
  "StringStrip",
  "StringToHashBucket",
  "StringToHashBucketFast",
  "StringToHashBucketStrong",
  "StringUpper",
  "Substr",
  "TensorScatterAdd",
  "TensorScatterMax",
  "TensorScatterMin",
  "TensorScatterSub",
  "TensorScatterUpdate",
  "TensorStridedSliceUpdate",
  "Timestamp",
  "UnicodeDecode",
  "UnicodeDecodeWithOffsets",
  "UnicodeEncode",
  "UnicodeTranscode",
  "Unique",
  "UniqueV2",
  "UniqueWithCounts",
  "UniqueWithCountsV2",
  "UnravelIndex",
  "UnsortedSegmentMax",
  "UnsortedSegmentMin",
  "UnsortedSegmentProd",
  "UnsortedSegmentSum",
  "UpperBound",
  "Xdivy",
  "Xlog1py",
  "Xlogy",
  "Zeta",
];

/** One OpDef as one line of text format, repeated scalars as `[a, b]` lists. */
function oneLine(text: string): string {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join(" ")
    .replace(/: \{/g, " {")
    .replace(
      /((?:type: DT_[A-Z0-9_]+ ?){2,})/g,
      (m) => `type: [${m.trim().split(/ ?type: /).filter((s) => s).join(", ")}] `,
    )
    .replace(/ +/g, " ")
    .replace(/ \}/g, " }")
    .trim();
}

if (import.meta.main) {
  const [path, version] = Deno.args;
  if (!path || !version) throw new Error("usage: gen_op_defs.ts <ops.pbtxt> <tf version>");
  const all = new Map(
    fromText(OpListSchema, await Deno.readTextFile(path)).op.map((o) => [o.name, o]),
  );
  const wanted = [...new Set([...defaultRegistry().ops(), ...EXTRA_OPS])]
    .filter((op) => !op.startsWith("_")).sort();
  const missing = wanted.filter((op) => !all.has(op));
  // Library-function call ops of the registry that are not TensorFlow ops would land here.
  if (missing.length > 0) console.error(`not in ${path}: ${missing.join(", ")}`);
  const lines = wanted.filter((op) => all.has(op)).map((op) => {
    const d = all.get(op)!;
    d.summary = "";
    d.description = "";
    for (const a of [...d.inputArg, ...d.outputArg, ...d.attr]) a.description = "";
    return oneLine(toText(OpDefSchema, d));
  });
  const out =
    `// Generated by scripts/gen_op_defs.ts from TensorFlow ${version}'s ops.pbtxt. Do not edit.
/**
 * OpDefs of TensorFlow ${version}, verbatim (without docs), for the ops the project implements:
 * one \`op { … }\` of an OpList's text format per line. Parsed once by \`op_defs.ts\`.
 *
 * @module
 */

/** The TensorFlow release the OpDefs come from. */
export const OP_DEFS_TF_VERSION = "${version}";

/** The OpList text. */
export const OP_DEFS_TEXT = String.raw\`
${lines.map((l) => `op { ${l} }`).join("\n")}
\`;
`;
  await Deno.writeTextFile(new URL("../src/kernels/op_defs_data.ts", import.meta.url), out);
  console.log(`${lines.length} OpDefs written`);
}
