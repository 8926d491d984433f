/**
 * Reductions: Sum, Mean, Max, Min, Prod, All and Any over an axis input, with keep_dims. Max/Min
 * propagate NaN; sums accumulate as TensorFlow's do.
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { allocate, DataType, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, Tensor, toIntArray } from "../tensor/tensor.ts";
import { INT64_MIN, TWO_31 } from "./cast.ts";
import { REALS } from "./dtypes.ts";
import {
  checkAllowed,
  decodeFloat16,
  elementKind,
  encodeFloat16,
  isFloat16,
  specialize,
  unsupportedDtype,
} from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { reduceF32, WasmBinary } from "./wasm/elementwise.ts";
import { uninitialized } from "../tensor/arena.ts";

const T = DataType;

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

/** The smallest and largest value of a dtype (floats: ±Infinity). */
export function typeRange(dtype: DataType): [number | bigint, number | bigint] {
  switch (dtype) {
    case T.DT_INT8:
      return [-128, 127];
    case T.DT_INT16:
      return [-32768, 32767];
    case T.DT_INT32:
      return [-TWO_31, TWO_31 - 1];
    case T.DT_UINT8:
      return [0, 255];
    case T.DT_UINT16:
      return [0, 65535];
    case T.DT_UINT32:
      return [0, 2 ** 32 - 1];
    case T.DT_INT64:
      return [INT64_MIN, 2n ** 63n - 1n];
    case T.DT_UINT64:
      return [0n, 2n ** 64n - 1n];
    default:
      return [-Infinity, Infinity];
  }
}

/** One reduction: its dtypes, identity, and per-kind step functions. */
interface ReducerSpec {
  readonly op: string;
  readonly dtypes: readonly DataType[];
  /** The identity (the result over no elements, except Mean). */
  identity(dtype: DataType): number | bigint;
  readonly step: {
    readonly float?: (acc: number, x: number) => number;
    readonly int?: (acc: number, x: number) => number;
    readonly int64?: (acc: bigint, x: bigint) => bigint;
    readonly bool?: (acc: number, x: number) => number;
  };
  /** Divides by the count at the end (Mean). */
  readonly mean?: boolean;
}

export const zeroOf = (dtype: DataType) => (elementKind(dtype) === "int64" ? 0n : 0);
export const oneOf = (dtype: DataType) => (elementKind(dtype) === "int64" ? 1n : 1);

const sumSteps = {
  float: (acc: number, x: number) => acc + x,
  int: (acc: number, x: number) => (acc + x) | 0,
  int64: (acc: bigint, x: bigint) => acc + x,
};

const REDUCERS: readonly ReducerSpec[] = [
  { op: "Sum", dtypes: REALS, identity: zeroOf, step: sumSteps },
  { op: "Mean", dtypes: REALS, identity: zeroOf, step: sumSteps, mean: true },
  {
    op: "Prod",
    dtypes: REALS,
    identity: oneOf,
    step: {
      float: (acc, x) => acc * x,
      int: Math.imul,
      int64: (acc, x) => BigInt.asIntN(64, acc * x),
    },
  },
  {
    op: "Max",
    dtypes: REALS,
    identity: (d) => typeRange(d)[0],
    step: {
      float: (acc, x) => (x > acc || x !== x ? x : acc),
      int: (acc, x) => (x > acc ? x : acc),
      int64: (acc, x) => (x > acc ? x : acc),
    },
  },
  {
    op: "Min",
    dtypes: REALS,
    identity: (d) => typeRange(d)[1],
    step: {
      float: (acc, x) => (x < acc || x !== x ? x : acc),
      int: (acc, x) => (x < acc ? x : acc),
      int64: (acc, x) => (x < acc ? x : acc),
    },
  },
  { op: "All", dtypes: [T.DT_BOOL], identity: () => 1, step: { bool: (acc, x) => acc & x } },
  { op: "Any", dtypes: [T.DT_BOOL], identity: () => 0, step: { bool: (acc, x) => acc | x } },
];

interface ReduceLoops {
  /** Folds x[off..off+n) into `acc` and returns it. */
  run(x: NumericArray, off: number, n: number, acc: unknown): unknown;
  /** acc[ao+j] = step(acc[ao+j], x[off+j]) for j < n. */
  rows(x: NumericArray, off: number, n: number, acc: NumericArray, ao: number): void;
}

const REDUCE_SOURCE = `return {
  run(x, off, n, acc) { for (let i = off, e = off + n; i < e; i++) acc = step(acc, x[i]); return acc; },
  rows(x, off, n, acc, ao) { for (let j = 0; j < n; j++) acc[ao + j] = step(acc[ao + j], x[off + j]); },
};`;

/** How one reduction walks its input: runs of kept and reduced dims, as TensorFlow simplifies. */
interface ReducePlan {
  readonly inShape: readonly number[];
  readonly axes: readonly number[];
  readonly outShape: number[];
  readonly outSize: number;
  /** Input elements per output element. */
  readonly count: number;
  /** Alternating runs of collapsed dims; empty when nothing is reduced. */
  readonly runs: { size: number; reduced: boolean }[];
}

/** Reads and checks the axis input: scalar or vector, int32 or int64, in [-rank, rank). */
function readAxes(axis: Tensor, rank: number): number[] {
  if (axis.rank > 1) {
    throw invalidArgument(
      `Expected the reduction axes to be a scalar or a vector, got shape ${
        shapeString(axis.shape)
      }`,
    );
  }
  const axes = toIntArray(axis, "reduction axes");
  for (const a of axes) {
    if (a < -rank || a >= rank) {
      throw invalidArgument(
        `Invalid reduction dimension (${a} for input with ${rank} dimension(s)`,
      );
    }
  }
  return axes;
}

function planReduction(shape: readonly number[], axes: readonly number[], keep: boolean) {
  const rank = shape.length;
  const reduced = new Array<boolean>(rank).fill(false);
  for (const a of axes) reduced[a < 0 ? a + rank : a] = true;
  const outShape: number[] = [];
  let outSize = 1;
  let count = 1;
  for (let i = 0; i < rank; i++) {
    if (!reduced[i]) {
      outShape.push(shape[i]);
      outSize *= shape[i];
    } else {
      if (keep) outShape.push(1);
      count *= shape[i];
    }
  }
  // Dims of size 1 change nothing; adjacent dims of the same kind merge into one run.
  const runs: { size: number; reduced: boolean }[] = [];
  for (let i = 0; i < rank; i++) {
    if (shape[i] === 1) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.reduced === reduced[i]) last.size *= shape[i];
    else runs.push({ size: shape[i], reduced: reduced[i] });
  }
  const plan: ReducePlan = {
    inShape: shape,
    axes,
    outShape,
    outSize,
    count,
    runs: runs.some((r) => r.reduced) ? runs : [],
  };
  return plan;
}

/** Folds `x` into `acc` (one slot per output element) following `plan`. */
function reduceInto(
  loops: ReduceLoops,
  plan: ReducePlan,
  x: NumericArray,
  acc: NumericArray,
): void {
  const runs = plan.runs;
  const last = runs[runs.length - 1];
  const seg = last.size;
  const total = x.length;
  if (total === 0) return;
  // Output stride of each earlier run: kept runs are laid out row-major in the output.
  const outer = runs.length - 1;
  const os = new Array<number>(outer);
  let stride = last.reduced ? 1 : seg;
  for (let d = outer - 1; d >= 0; d--) {
    if (runs[d].reduced) os[d] = 0;
    else {
      os[d] = stride;
      stride *= runs[d].size;
    }
  }
  const idx = new Array<number>(outer).fill(0);
  let outOff = 0;
  const accArr = acc as unknown as unknown[];
  for (let off = 0; off < total; off += seg) {
    if (last.reduced) accArr[outOff] = loops.run(x, off, seg, accArr[outOff]);
    else loops.rows(x, off, seg, acc, outOff);
    for (let d = outer - 1; d >= 0; d--) {
      idx[d]++;
      outOff += os[d];
      if (idx[d] < runs[d].size) break;
      outOff -= os[d] * runs[d].size;
      idx[d] = 0;
    }
  }
}

/** A reduction kernel: inputs (input, axis); attrs keep_dims, T, Tidx. */
function reductionKernel(spec: ReducerSpec): Kernel {
  const loopsByType = new Map<DataType, ReduceLoops>();
  const loopsFor = (dtype: DataType): ReduceLoops => {
    let l = loopsByType.get(dtype);
    if (l === undefined) {
      const kind = elementKind(dtype) as keyof ReducerSpec["step"];
      l = specialize<ReduceLoops>(["step"], REDUCE_SOURCE, spec.step[kind]);
      loopsByType.set(dtype, l);
    }
    return l;
  };
  return {
    op: spec.op,
    compile(ctx) {
      const node = ctx.name;
      const keep = ctx.attr.bool("keep_dims", false);
      if (ctx.attr.has("T")) checkAllowed(spec.op, node, spec.dtypes, ctx.attr.type("T"));
      let cached: ReducePlan | undefined;
      return (inputs) => {
        const [input, axis] = inputs;
        const dtype = input.dtype;
        if (!spec.dtypes.includes(dtype)) throw unsupportedDtype(spec.op, node, dtype);
        const axes = readAxes(axis, input.rank);
        // Shapes and axes rarely change between calls of a node: reuse the last plan.
        let plan = cached;
        if (
          plan === undefined || !sameNumbers(plan.inShape, input.shape) ||
          !sameNumbers(plan.axes, axes)
        ) {
          plan = cached = planReduction(input.shape, axes, keep);
        }
        if (plan.runs.length === 0 && input.size > 0) {
          // Nothing is reduced (no axes, or only dims of size 1): the values are the input's.
          return [new Tensor(dtype, plan.outShape, input.data)];
        }
        if (dtype === T.DT_FLOAT && (spec.op === "Max" || spec.op === "Min")) {
          const y = middleMaxMin(spec.op, plan, input.data as Float32Array);
          if (y !== undefined) return [new Tensor(dtype, plan.outShape, y)];
        }
        const half = isFloat16(dtype);
        const work = half ? T.DT_FLOAT : dtype;
        const x = half ? decodeFloat16(input.data as Uint16Array, dtype) : input.numbers;
        const kind = elementKind(work);
        const acc: NumericArray = kind === "int64"
          ? allocate(work, plan.outSize)
          : new Float64Array(
            plan.outSize,
          );
        (acc as unknown as { fill(v: unknown): void }).fill(spec.identity(work));
        if (plan.runs.length > 0) reduceInto(loopsFor(work), plan, x, acc);
        let out: NumericArray;
        if (spec.mean) out = finishMean(work, acc, plan.count);
        else {
          out = allocate(work, plan.outSize);
          out.set(acc as never);
        }
        if (half) {
          return [new Tensor(dtype, plan.outShape, encodeFloat16(out as Float32Array, dtype))];
        }
        return [new Tensor(dtype, plan.outShape, out)];
      };
    },
  };
}

/**
 * A float32 Max or Min over one run of reduced dims followed by kept ones ([reduced, kept] or
 * [kept, reduced, kept] after collapsing), in WebAssembly: the same values as the JavaScript
 * loop (a maximum is exact), but for the sign of a zero. Undefined when the plan has another
 * form or the kernel declines.
 */
function middleMaxMin(op: string, plan: ReducePlan, x: Float32Array): Float32Array | undefined {
  const runs = plan.runs;
  const r = runs.length;
  if (r < 2 || r > 3 || runs[r - 1].reduced || !runs[r - 2].reduced) return undefined;
  if (r === 3 && runs[0].reduced) return undefined;
  const outer = r === 3 ? runs[0].size : 1, mid = runs[r - 2].size, inner = runs[r - 1].size;
  const y = uninitialized(Float32Array, plan.outSize);
  const code = op === "Max" ? WasmBinary.Max : WasmBinary.Min;
  return reduceF32(code, x, y, outer, mid, inner) ? y : undefined;
}

/**
 * Mean from sums. Floats divide (0/0 = NaN for an empty reduction, as TensorFlow gives). Integers
 * wrap the sum and the count to the type, then divide truncating; a zero count gives 0.
 */
function finishMean(dtype: DataType, sums: NumericArray, count: number): NumericArray {
  const n = sums.length;
  const out = allocate(dtype, n);
  if (elementKind(dtype) === "float") {
    for (let i = 0; i < n; i++) out[i] = (sums[i] as number) / count;
    return out;
  }
  out.set(sums as never);
  const c = allocate(dtype, 1);
  if (c instanceof BigInt64Array || c instanceof BigUint64Array) {
    c[0] = BigInt(count);
    const d = c[0];
    const o = out as BigInt64Array;
    for (let i = 0; i < n; i++) o[i] = d === 0n ? 0n : o[i] / d;
  } else {
    c[0] = count;
    const d = c[0];
    for (let i = 0; i < n; i++) out[i] = d === 0 ? 0 : Math.trunc((out[i] as number) / d);
  }
  return out;
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The reduction kernels: Sum, Mean, Max, Min, Prod, All, Any. */
export const reductionKernels: Kernel[] = REDUCERS.map(reductionKernel);
