/**
 * Fake quantization, as quantization-aware-trained graphs (edge detectors, TF Lite-bound exports)
 * keep it: FakeQuantWithMinMaxArgs, FakeQuantWithMinMaxVars and
 * FakeQuantWithMinMaxVarsPerChannel round float32 values to `2^num_bits` levels between a
 * nudged min and max, in float32 step by step as TensorFlow's functors
 * (core/kernels/fake_quant_ops_functor.h) compute them.
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { DataType } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { Kernel, KernelContext } from "./kernel.ts";
import { floatToBuffer } from "./summarize.ts";

const f = Math.fround;

/** The quantization range of a node: attrs num_bits (2 to 16) and narrow_range. */
function quantRange(ctx: KernelContext): [number, number] {
  const numBits = ctx.attr.int("num_bits", 8);
  if (!(numBits >= 2 && numBits <= 16)) {
    throw invalidArgument("num_bits must be between 2 and 16, inclusive");
  }
  const narrow = ctx.attr.bool("narrow_range", false);
  return [narrow ? 1 : 0, 2 ** numBits - 1];
}

/** TF's Nudge: the range moved so that zero is exactly representable, in float32. */
interface Nudged {
  min: number;
  max: number;
  scale: number;
  invScale: number;
}

function nudge(min: number, max: number, qmin: number, qmax: number): Nudged {
  const scale = f(f(max - min) / (qmax - qmin));
  const invScale = f((qmax - qmin) / f(max - min));
  const zeroFromMin = f(qmin - f(min / scale));
  // std::round of a value in [qmin, qmax] (non-negative): half away from zero.
  const zero = zeroFromMin < qmin ? qmin : zeroFromMin > qmax ? qmax : Math.round(zeroFromMin);
  return { min: f((qmin - zero) * scale), max: f((qmax - zero) * scale), scale, invScale };
}

/**
 * Quantizes `x[from…from+n)` with stride `step` into `out`. `divide` selects the Vars functor's
 * `/ scale` over the others' `* inv_scale`; min = max = 0 gives zeros (Vars, PerChannel).
 */
function quantize(
  x: Float32Array,
  out: Float32Array,
  from: number,
  n: number,
  step: number,
  min: number,
  max: number,
  [qmin, qmax]: [number, number],
  divide: boolean,
  zeroRange: boolean,
): void {
  if (zeroRange && min === 0 && max === 0) {
    for (let i = 0; i < n; i++) out[from + i * step] = 0;
    return;
  }
  const nu = nudge(min, max, qmin, qmax);
  const quantZero = Math.floor(f(f(-nu.min * nu.invScale) + 0.5));
  for (let i = 0; i < n; i++) {
    const k = from + i * step;
    // cwiseMin(nudged_max) then cwiseMax(nudged_min), as std::min/std::max order them.
    const v = x[k];
    const lo = nu.max < v ? nu.max : v;
    const c = lo < nu.min ? nu.min : lo;
    const shifted = f(c - nu.min);
    const scaled = divide ? f(shifted / nu.scale) : f(shifted * nu.invScale);
    out[k] = f(Math.floor(f(f(scaled - quantZero) + 0.5)) * nu.scale);
  }
}

function floatInput(op: string, t: Tensor, what: string): Float32Array {
  if (t.dtype !== DataType.DT_FLOAT) throw invalidArgument(`${op} needs a float ${what}`);
  return t.data as Float32Array;
}

const argsKernel: Kernel = {
  op: "FakeQuantWithMinMaxArgs",
  compile(ctx) {
    const min = f(ctx.attr.float("min", -6));
    const max = f(ctx.attr.float("max", 6));
    if (!(min < max)) {
      throw invalidArgument(
        `min has to be smaller than max, was: ${floatToBuffer(min)} >= ${floatToBuffer(max)}`,
      );
    }
    const range = quantRange(ctx);
    return (inputs) => {
      const x = floatInput(ctx.op, inputs[0], "input");
      const out = new Float32Array(x.length);
      quantize(x, out, 0, x.length, 1, min, max, range, false, false);
      return [new Tensor(DataType.DT_FLOAT, inputs[0].shape, out)];
    };
  },
};

const varsKernel: Kernel = {
  op: "FakeQuantWithMinMaxVars",
  compile(ctx) {
    const range = quantRange(ctx);
    return (inputs) => {
      const x = floatInput(ctx.op, inputs[0], "input");
      const min = floatInput(ctx.op, inputs[1], "min")[0];
      const max = floatInput(ctx.op, inputs[2], "max")[0];
      const out = new Float32Array(x.length);
      quantize(x, out, 0, x.length, 1, min, max, range, true, true);
      return [new Tensor(DataType.DT_FLOAT, inputs[0].shape, out)];
    };
  },
};

const perChannelKernel: Kernel = {
  op: "FakeQuantWithMinMaxVarsPerChannel",
  compile(ctx) {
    const range = quantRange(ctx);
    return (inputs) => {
      const [t, minT, maxT] = inputs;
      const x = floatInput(ctx.op, t, "input");
      const depth = t.rank > 0 ? t.shape[t.rank - 1] : 1;
      for (const [m, what] of [[minT, "min"], [maxT, "max"]] as const) {
        if (m.shape[0] !== depth) {
          throw invalidArgument(`${what} has incorrect size, expected ${depth} was ${m.shape[0]}`);
        }
      }
      const mins = floatInput(ctx.op, minT, "min");
      const maxs = floatInput(ctx.op, maxT, "max");
      const out = new Float32Array(x.length);
      const rows = depth > 0 ? x.length / depth : 0;
      for (let c = 0; c < depth; c++) {
        quantize(x, out, c, rows, depth, mins[c], maxs[c], range, false, true);
      }
      return [new Tensor(DataType.DT_FLOAT, t.shape, out)];
    };
  },
};

/** The fake-quantization kernels: FakeQuantWithMinMaxArgs, Vars and VarsPerChannel. */
export const fakeQuantKernels: Kernel[] = [argsKernel, varsKernel, perChannelKernel];
