/**
 * The default kernel registry: every op family the runtime ships.
 *
 * @module
 */
import { argMaxKernels } from "./arg_max.ts";
import { activationKernels } from "./activation.ts";
import { biasAddKernels } from "./bias_add.ts";
import { fusedMatMulKernels } from "./fused_matmul.ts";
import { convKernels } from "./conv.ts";
import { convBackpropKernels } from "./conv_backprop.ts";
import { poolingKernels } from "./pooling.ts";
import { batchNormKernels } from "./batch_norm.ts";
import { arithmeticKernels } from "./arithmetic.ts";
import { basicKernels } from "./basic.ts";
import { bincountKernels } from "./bincount.ts";
import { castKernels } from "./cast.ts";
import { checkKernels } from "./checks.ts";
import { concatSplitKernels } from "./concat_split.ts";
import { controlFlowKernels } from "./control_flow.ts";
import { createKernels } from "./create.ts";
import { cropAndResizeKernels } from "./crop_and_resize.ts";
import { einsumKernels } from "./einsum.ts";
import { fakeQuantKernels } from "./fake_quant.ts";
import { functionalKernels } from "./functional.ts";
import { gatherKernels } from "./gather.ts";
import { imageKernels } from "./image.ts";
import { ioKernels } from "./io.ts";
import { lookupKernels } from "./lookup.ts";
import { matMulKernels } from "./matmul.ts";
import { padKernels } from "./pad.ts";
import { parsingKernels } from "./parsing.ts";
import { randomKernels } from "./random.ts";
import { reductionKernels } from "./reduce.ts";
import { regexKernels } from "./regex.ts";
import { layoutKernels } from "./layout.ts";
import { nmsKernels } from "./nms.ts";
import { KernelRegistry } from "./registry.ts";
import { scanKernels } from "./scan.ts";
import { scatterKernels } from "./scatter.ts";
import { segmentKernels } from "./segment.ts";
import { selectKernels } from "./select.ts";
import { shapeKernels } from "./shape.ts";
import { sliceKernels } from "./slice.ts";
import { stateKernels } from "./state.ts";
import { stitchKernels } from "./stitch.ts";
import { stringKernels } from "./strings.ts";
import { tensorArrayKernels } from "./tensor_array.ts";
import { tensorListKernels } from "./tensor_list.ts";
import { topKKernels } from "./top_k.ts";
import { transposeKernels } from "./transpose.ts";

export { KernelRegistry };

let registry: KernelRegistry | undefined;

/** The registry of every shipped kernel (built once). */
export function defaultRegistry(): KernelRegistry {
  registry ??= new KernelRegistry(
    // Array ops.
    basicKernels,
    shapeKernels,
    concatSplitKernels,
    sliceKernels,
    transposeKernels,
    padKernels,
    createKernels,
    selectKernels,
    gatherKernels,
    scatterKernels,
    stitchKernels,
    topKKernels,
    // Math ops.
    arithmeticKernels,
    castKernels,
    matMulKernels,
    reductionKernels,
    argMaxKernels,
    scanKernels,
    segmentKernels,
    bincountKernels,
    fakeQuantKernels,
    einsumKernels,
    // Neural-network ops.
    activationKernels,
    biasAddKernels,
    fusedMatMulKernels,
    convKernels,
    convBackpropKernels,
    poolingKernels,
    batchNormKernels,
    // The other families.
    checkKernels,
    cropAndResizeKernels,
    stateKernels,
    functionalKernels,
    controlFlowKernels,
    imageKernels,
    ioKernels,
    parsingKernels,
    lookupKernels,
    stringKernels,
    layoutKernels,
    nmsKernels,
    randomKernels,
    tensorArrayKernels,
    tensorListKernels,
    regexKernels,
  );
  return registry;
}
