/**
 * BiasAdd and BiasAddV1 (`bias_op.cc`): a per-channel vector added along the channel dimension
 * of NHWC or NCHW data, on every real type TensorFlow registers.
 *
 * @module
 */
import { DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext, KernelRun } from "./kernel.ts";
import { checkArity, checkTypeAttr, dtypeError, invalid } from "./nn_common.ts";

/** Types BiasAdd adds in plain numbers (storage conversion wraps integers as C++ does). */
const BIAS_NUMBER_TYPES: readonly DataType[] = [
  DataType.DT_FLOAT,
  DataType.DT_DOUBLE,
  DataType.DT_INT32,
  DataType.DT_INT16,
  DataType.DT_INT8,
  DataType.DT_UINT8,
  DataType.DT_UINT16,
  DataType.DT_UINT32,
];
const BIAS_TYPES: readonly DataType[] = [
  ...BIAS_NUMBER_TYPES,
  DataType.DT_INT64,
  DataType.DT_UINT64,
];

/** y = x + bias over layout [outer, channels, inner]. */
function biasAddLoop(
  x: NumericArray,
  b: NumericArray,
  y: NumericArray,
  outer: number,
  channels: number,
  inner: number,
): void {
  if (x instanceof BigInt64Array || x instanceof BigUint64Array) {
    const xb = x as BigInt64Array, bb = b as BigInt64Array, yb = y as BigInt64Array;
    // Storing into a 64-bit array wraps modulo 2^64, matching C++ overflow.
    for (let o = 0, i = 0; o < outer; o++) {
      for (let c = 0; c < channels; c++) {
        const bc = bb[c];
        for (let k = 0; k < inner; k++, i++) yb[i] = xb[i] + bc;
      }
    }
    return;
  }
  const xn = x as Float32Array, bn = b as Float32Array, yn = y as Float32Array;
  if (inner === 1) {
    for (let o = 0, i = 0; o < outer; o++, i += channels) {
      for (let c = 0; c < channels; c++) yn[i + c] = xn[i + c] + bn[c];
    }
    return;
  }
  for (let o = 0, i = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const bc = bn[c];
      for (let k = 0; k < inner; k++, i++) yn[i] = xn[i] + bc;
    }
  }
}

function biasAddKernel(op: string, hasFormat: boolean): Kernel {
  return {
    op,
    compile(ctx: KernelContext): KernelRun {
      checkTypeAttr(ctx, BIAS_TYPES);
      const format = hasFormat ? ctx.attr.string("data_format", "NHWC") : "NHWC";
      if (format !== "NHWC" && format !== "NCHW") {
        throw invalid(`Invalid data format "${format}" for ${op} node "${ctx.name}"`);
      }
      const nchw = format === "NCHW";
      return (inputs) => {
        checkArity(ctx, inputs, 2);
        const [input, bias] = inputs;
        if (!BIAS_TYPES.includes(input.dtype)) throw dtypeError(ctx, input.dtype, BIAS_TYPES);
        if (bias.dtype !== input.dtype) {
          throw invalid(
            `${op} node "${ctx.name}": bias is ${dtypeName(bias.dtype)} but the input is ` +
              dtypeName(input.dtype),
          );
        }
        const shape = input.shape;
        if (shape.length < 2) {
          throw invalid(`Input tensor must be at least 2D: ${shapeString(shape)}`);
        }
        if (bias.rank !== 1) throw invalid(`Biases must be 1D: ${shapeString(bias.shape)}`);
        // NCHW keeps channels in dimension 1 whatever the rank; NHWC in the last one.
        const cdim = nchw ? 1 : shape.length - 1;
        const channels = shape[cdim];
        if (bias.shape[0] !== channels) {
          throw invalid(
            "Must provide as many biases as the last dimension of the input tensor: " +
              `${shapeString(bias.shape)} vs. ${shapeString(shape)}`,
          );
        }
        const x = input.data as NumericArray;
        const y = new (x.constructor as new (n: number) => NumericArray)(x.length);
        let outer = 1, inner = 1;
        for (let i = 0; i < cdim; i++) outer *= shape[i];
        for (let i = cdim + 1; i < shape.length; i++) inner *= shape[i];
        biasAddLoop(x, bias.data as NumericArray, y, outer, channels, inner);
        return [new Tensor(input.dtype, shape, y)];
      };
    },
  };
}

/** The bias-add kernels. */
export const biasAddKernels: Kernel[] = [
  biasAddKernel("BiasAdd", true),
  biasAddKernel("BiasAddV1", false),
];
