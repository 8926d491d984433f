/**
 * The default kernel registry: every op family the runtime ships.
 *
 * @module
 */
import { arrayKernels } from "./array.ts";
import { controlFlowKernels } from "./control_flow.ts";
import { functionalKernels } from "./functional.ts";
import { imageKernels } from "./image.ts";
import { ioKernels } from "./io.ts";
import { lookupKernels } from "./lookup.ts";
import { mathKernels } from "./math.ts";
import { nnKernels } from "./nn.ts";
import { parsingKernels } from "./parsing.ts";
import { randomKernels } from "./random.ts";
import { regexKernels } from "./regex.ts";
import { layoutKernels } from "./layout.ts";
import { nmsKernels } from "./nms.ts";
import { KernelRegistry } from "./registry.ts";
import { stateKernels } from "./state.ts";
import { stringKernels } from "./strings.ts";
import { tensorArrayKernels } from "./tensor_array.ts";
import { tensorListKernels } from "./tensor_list.ts";

export { KernelRegistry };

let registry: KernelRegistry | undefined;

/** The registry of every shipped kernel (built once). */
export function defaultRegistry(): KernelRegistry {
  registry ??= new KernelRegistry(
    arrayKernels,
    mathKernels,
    nnKernels,
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
