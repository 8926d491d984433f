/**
 * Einsum: one or two operands, reduced to transposes, sums and batched matrix products.
 *
 * @module
 */
import { Code, invalidArgument, ServingError } from "../errors.ts";
import { DataType, dtypeName, type NumericArray } from "../tensor/dtype.ts";
import { shapeString, sizeOf, Tensor } from "../tensor/tensor.ts";
import { broadcastShapes } from "./broadcast.ts";
import { checkAllowed, isFloat16, unsupportedDtype } from "./elementwise.ts";
import type { Kernel } from "./kernel.ts";
import { batchedGemm, gemmInput, gemmOutput, MATMUL_TYPES } from "./matmul.ts";
import { transposeTensor } from "./transpose.ts";

const T = DataType;

// ---------------------------------------------------------------------------------------------
// Einsum
// ---------------------------------------------------------------------------------------------

/** The label of an ellipsis in a parsed subscript. */
const ELLIPSIS = -1;

/** A parsed einsum equation: subscripts as label ids (in order of first appearance). */
interface EinsumEquation {
  readonly equation: string;
  readonly inputs: readonly (readonly number[])[];
  readonly output: readonly number[];
  /** The character of each named label. */
  readonly chars: readonly string[];
}

/**
 * Parses an equation as TensorFlow's ParseEinsumEquation (same messages), then refuses what we
 * do not compute: a label repeated within one subscript (generalized diagonals, `ii->i`) fails
 * UNIMPLEMENTED, an output label absent from the inputs INVALID_ARGUMENT.
 */
function parseEinsum(equation: string, node: string): EinsumEquation {
  const io = equation.split("->");
  if (io.length !== 2) {
    throw invalidArgument(`Expecting exactly one '->' in einsum equation: ${equation}`);
  }
  const ins = io[0].split(",");
  if (ins.length !== 1 && ins.length !== 2) {
    throw invalidArgument(
      `Expecting 1 or 2 input subscripts in equation '${equation}' but got: ${ins.length}`,
    );
  }
  const ids = new Map<string, number>();
  const chars: string[] = [];
  const labels = (sub: string): number[] => {
    const out: number[] = [];
    for (let i = 0; i < sub.length; i++) {
      const c = sub[i];
      if (c === ".") {
        out.push(ELLIPSIS);
        i += 2; // "..." is one ellipsis
        continue;
      }
      let id = ids.get(c);
      if (id === undefined) {
        ids.set(c, id = chars.length);
        chars.push(c);
      }
      out.push(id);
    }
    return out;
  };
  const inputs = ins.map(labels);
  const output = labels(io[1]);
  for (const sub of [...inputs, output]) {
    const named = sub.filter((l) => l !== ELLIPSIS);
    if (new Set(named).size !== named.length) {
      throw new ServingError(
        Code.UNIMPLEMENTED,
        `Einsum equation "${equation}" repeats a label within one subscript (generalized ` +
          `diagonals are not supported; node "${node}")`,
      );
    }
  }
  for (const l of output) {
    if (l !== ELLIPSIS && !inputs.some((sub) => sub.includes(l))) {
      throw invalidArgument(
        `Einsum equation "${equation}": output label '${chars[l]}' appears in no input ` +
          `(node "${node}")`,
      );
    }
  }
  return { equation, inputs, output, chars };
}

/** Sums the last `r` elements of each of `rows` rows (float in double, int64 as bigints). */
function sumTrailing(data: NumericArray, rows: number, r: number): NumericArray {
  if (r === 1) return data;
  const ctor = data.constructor as new (n: number) => NumericArray;
  const out = new ctor(rows);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const o = out as BigInt64Array;
    for (let i = 0, p = 0; i < rows; i++) {
      let s = 0n;
      for (let j = 0; j < r; j++, p++) s += data[p];
      o[i] = s;
    }
  } else {
    const d = data as Float64Array;
    const o = out as Float64Array;
    for (let i = 0, p = 0; i < rows; i++) {
      let s = 0;
      for (let j = 0; j < r; j++, p++) s += d[p];
      o[i] = s;
    }
  }
  return out;
}

/** Transposes `t` so its labels `from` come in the order `to` (a permutation of them). */
function permuteLabels(t: Tensor, from: readonly number[], to: readonly number[]): Tensor {
  return transposeTensor(t, to.map((l) => from.indexOf(l)));
}

/**
 * Einsum over one or two operands, as TensorFlow's EinsumOp computes it: labels of one operand
 * missing from the output are summed first; labels shared by both operands become the batch
 * (kept) or contracted dims of one batched matrix product; ellipsis dims broadcast as numpy's.
 * `x` holds the operands already in the working type (16-bit floats decoded).
 */
function einsum(eq: EinsumEquation, xs: Tensor[]): Tensor {
  if (xs.length !== eq.inputs.length) {
    throw invalidArgument(`Expected ${eq.inputs.length} inputs but got: ${xs.length}`);
  }
  const numNamed = eq.chars.length;
  const size = new Array<number>(numNamed).fill(0);
  // Expand each ellipsis into broadcast labels numNamed + p, p its right-aligned position.
  const nbs = xs.map((t, i) => {
    const labels = eq.inputs[i];
    if (!labels.includes(ELLIPSIS)) {
      if (t.rank !== labels.length) {
        throw invalidArgument(
          `Expected input ${i} to have rank ${labels.length} but got: ${t.rank}`,
        );
      }
      return 0;
    }
    if (t.rank + 1 < labels.length) {
      throw invalidArgument(
        `Expected input ${i} to have rank at least ${labels.length - 1} but got: ${t.rank}`,
      );
    }
    return t.rank - labels.length + 1;
  });
  const E = Math.max(0, ...nbs);
  const expanded = xs.map((t, i) => {
    const out: number[] = [];
    for (const l of eq.inputs[i]) {
      if (l === ELLIPSIS) { for (let q = 0; q < nbs[i]; q++) out.push(numNamed + E - nbs[i] + q); }
      else {
        const axis = out.length;
        const d = t.shape[axis];
        if (size[l] !== 0 && size[l] !== d) {
          throw invalidArgument(
            `Expected dimension ${size[l]} at axis ${axis} of the input shaped ${
              shapeString(t.shape)
            } but got dimension ${d}`,
          );
        }
        size[l] = d;
        out.push(l);
      }
    }
    return out;
  });
  const output: number[] = [];
  for (const l of eq.output) {
    if (l === ELLIPSIS) { for (let q = 0; q < E; q++) output.push(numNamed + q); }
    else output.push(l);
  }
  if (E > 0 && !eq.output.includes(ELLIPSIS)) {
    throw invalidArgument(
      `Output contains ${E} broadcasting dimension(s) but no ellipsis (...) was found in the ` +
        "output subscripts.",
    );
  }
  const inOut = (l: number) => output.includes(l);
  const dimOf = (t: Tensor, labels: readonly number[], l: number) => t.shape[labels.indexOf(l)];
  const prodOf = (t: Tensor, labels: readonly number[], ls: readonly number[]) =>
    ls.reduce((p, l) => p * dimOf(t, labels, l), 1);

  if (xs.length === 1) {
    // Keep the output labels (in output order), sum the rest.
    const [t] = xs;
    const labels = expanded[0];
    const reduce = labels.filter((l) => !inOut(l));
    const moved = permuteLabels(t, labels, [...output, ...reduce]);
    const r = prodOf(t, labels, reduce);
    const rows = prodOf(t, labels, output);
    return new Tensor(
      t.dtype,
      output.map((l) => dimOf(t, labels, l)),
      sumTrailing(moved.data as NumericArray, rows, r),
    );
  }

  const [x, y] = xs;
  const [lx, ly] = expanded;
  const named = (ls: readonly number[]) => ls.filter((l) => l < numNamed);
  const both = named(lx).filter((l) => ly.includes(l)).sort((a, b) => a - b);
  const batch = both.filter(inOut);
  const contract = both.filter((l) => !inOut(l));
  const bx = lx.filter((l) => l >= numNamed);
  const by = ly.filter((l) => l >= numNamed);
  const freeX = named(lx).filter((l) => !ly.includes(l) && inOut(l));
  const freeY = named(ly).filter((l) => !lx.includes(l) && inOut(l));
  const reduceX = named(lx).filter((l) => !ly.includes(l) && !inOut(l));
  const reduceY = named(ly).filter((l) => !lx.includes(l) && !inOut(l));

  // x → [bx, batch, freeX, contract] (reduceX summed away), y → [by, batch, contract, freeY].
  const xm = permuteLabels(x, lx, [...bx, ...batch, ...freeX, ...contract, ...reduceX]);
  const ym = permuteLabels(y, ly, [...by, ...batch, ...contract, ...freeY, ...reduceY]);
  const xBatch = [...bx, ...batch].map((l) => dimOf(x, lx, l));
  const yBatch = [...by, ...batch].map((l) => dimOf(y, ly, l));
  const M = prodOf(x, lx, freeX);
  const K = prodOf(x, lx, contract);
  const N = prodOf(y, ly, freeY);
  const a = sumTrailing(xm.data as NumericArray, sizeOf(xBatch) * M * K, prodOf(x, lx, reduceX));
  const b = sumTrailing(ym.data as NumericArray, sizeOf(yBatch) * K * N, prodOf(y, ly, reduceY));
  let shape: number[];
  try {
    shape = broadcastShapes(xBatch, yBatch);
  } catch {
    throw invalidArgument(
      `Invalid broadcasting dimensions: ${shapeString([...xBatch, M, K])} vs. ${
        shapeString([...yBatch, K, N])
      }`,
    );
  }
  const prod = batchedGemm(x.dtype, a, xBatch, b, yBatch, shape, M, K, N, false, false);
  // The product's labels: the broadcast ellipsis dims, the batch labels, then the free ones.
  const bcast = Array.from(
    { length: shape.length - batch.length },
    (_, q) => numNamed + E - (shape.length - batch.length) + q,
  );
  const labels = [...bcast, ...batch, ...freeX, ...freeY];
  const dims = [
    ...shape,
    ...freeX.map((l) => dimOf(x, lx, l)),
    ...freeY.map((l) => dimOf(y, ly, l)),
  ];
  return permuteLabels(new Tensor(x.dtype, dims, prod), labels, output);
}

/** Einsum: attr equation (one or two operands, no repeated labels within a subscript). */
const einsumKernel: Kernel = {
  op: "Einsum",
  compile(ctx) {
    const node = ctx.name;
    if (ctx.attr.has("T")) checkAllowed("Einsum", node, MATMUL_TYPES, ctx.attr.type("T"));
    const eq = parseEinsum(ctx.attr.string("equation"), node);
    return (inputs) => {
      const dtype = inputs[0].dtype;
      for (const t of inputs) {
        if (t.dtype !== dtype) {
          throw invalidArgument(
            `Einsum needs inputs of one type, got ${dtypeName(dtype)} and ` +
              `${dtypeName(t.dtype)} (node "${node}")`,
          );
        }
      }
      if (!MATMUL_TYPES.includes(dtype)) throw unsupportedDtype("Einsum", node, dtype);
      const work = isFloat16(dtype)
        ? inputs.map((t) => new Tensor(T.DT_FLOAT, t.shape, gemmInput(t)))
        : inputs;
      const out = einsum(eq, work);
      return [gemmOutput(dtype, out.shape, out.data as NumericArray)];
    };
  },
};

/** The einsum kernels: Einsum. */
export const einsumKernels: Kernel[] = [einsumKernel];
