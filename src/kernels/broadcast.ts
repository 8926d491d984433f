/**
 * Broadcasting as TensorFlow does it (numpy rules), and strided iteration over broadcast operands
 * without per-element index arithmetic.
 *
 * A broadcast is described by a {@link StridedPlan}: the output dims, collapsed so that adjacent
 * dims that every operand walks the same way become one, and for each operand the element stride
 * along each collapsed dim (0 where the operand is broadcast). Kernels run a tight loop over the
 * last two collapsed dims (a "block") and let {@link forEachBlock} step through the rest.
 *
 * @module
 */
import { invalidArgument } from "../errors.ts";
import { type Shape, shapeString } from "../tensor/tensor.ts";

/**
 * The shape two operands broadcast to. Dims are matched from the right; a dim of 1 (or a missing
 * one) stretches to the other operand's size, including to 0.
 *
 * @throws ServingError INVALID_ARGUMENT `Incompatible shapes: [2,3] vs. [4]` as TensorFlow says it
 */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  const offA = n - a.length;
  const offB = n - b.length;
  for (let i = 0; i < n; i++) {
    const da = i < offA ? 1 : a[i - offA];
    const db = i < offB ? 1 : b[i - offB];
    if (da === db || db === 1) out[i] = da;
    else if (da === 1) out[i] = db;
    else throw invalidArgument(`Incompatible shapes: ${shapeString(a)} vs. ${shapeString(b)}`);
  }
  return out;
}

/** True if two shapes are equal dim by dim. */
export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** How a set of operands is walked to produce a broadcast output; see the module comment. */
export interface StridedPlan {
  /** The output shape, uncollapsed. */
  readonly shape: readonly number[];
  /** Number of output elements. */
  readonly size: number;
  /** Collapsed output dims, at least two (leading 1s pad short plans). */
  readonly dims: readonly number[];
  /** For each operand, its element stride along each collapsed dim; 0 where it is broadcast. */
  readonly strides: readonly (readonly number[])[];
}

/**
 * Plans the broadcast of `shapes` to their common shape (or to `outShape`, which must be what they
 * broadcast to — callers that already know it save the work).
 *
 * @throws ServingError INVALID_ARGUMENT if the shapes do not broadcast
 */
export function stridedPlan(shapes: readonly Shape[], outShape?: Shape): StridedPlan {
  const shape: readonly number[] = outShape ??
    shapes.reduce<number[]>((acc, s) => broadcastShapes(acc, s), []);
  const rank = shape.length;
  let size = 1;
  for (const d of shape) size *= d;

  // Per-operand strides over the full output rank: contiguous strides of the operand itself,
  // right-aligned, with 0 where the operand has size 1 (or lacks the dim).
  const full = shapes.map((s) => {
    const st = new Array<number>(rank).fill(0);
    let stride = 1;
    for (let i = s.length - 1; i >= 0; i--) {
      const d = s[i];
      st[rank - s.length + i] = d === 1 ? 0 : stride;
      stride *= d;
    }
    return st;
  });

  // Collapse: drop output dims of size 1 (they move nothing), then merge a dim into the one
  // before it when every operand steps through both as one contiguous (or one broadcast) run.
  const dims: number[] = [];
  const strides: number[][] = shapes.map(() => []);
  for (let i = 0; i < rank; i++) {
    const d = shape[i];
    if (d === 1) continue;
    const last = dims.length - 1;
    let merge = last >= 0;
    for (let op = 0; merge && op < full.length; op++) {
      if (strides[op][last] !== full[op][i] * d) merge = false;
    }
    if (merge) {
      dims[last] *= d;
      for (let op = 0; op < full.length; op++) strides[op][last] = full[op][i];
    } else {
      dims.push(d);
      for (let op = 0; op < full.length; op++) strides[op].push(full[op][i]);
    }
  }
  while (dims.length < 2) {
    dims.unshift(1);
    for (const st of strides) st.unshift(0);
  }
  return { shape, size, dims, strides };
}

/**
 * Calls `visit` once per block of a plan — a block is the last two collapsed dims — with the
 * offset of each operand's first element in the block (one entry per operand, reused between
 * calls: read it, don't keep it) and the block's offset in the row-major output. Blocks come in
 * output order, so the output offset grows by `dims[r-2] * dims[r-1]` each time.
 */
export function forEachBlock(
  plan: StridedPlan,
  visit: (offsets: readonly number[], outOffset: number) => void,
): void {
  const { dims, strides, size } = plan;
  if (size === 0) return;
  const r = dims.length;
  const block = dims[r - 2] * dims[r - 1];
  const outer = r - 2;
  const nOps = strides.length;
  const offsets = new Array<number>(nOps).fill(0);
  const idx = new Array<number>(outer).fill(0);
  for (let out = 0; out < size; out += block) {
    visit(offsets, out);
    // Odometer step over the outer dims, moving each operand's offset by its stride.
    for (let d = outer - 1; d >= 0; d--) {
      idx[d]++;
      for (let op = 0; op < nOps; op++) offsets[op] += strides[op][d];
      if (idx[d] < dims[d]) break;
      for (let op = 0; op < nOps; op++) offsets[op] -= strides[op][d] * dims[d];
      idx[d] = 0;
    }
  }
}
